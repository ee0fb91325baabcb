//! A tiny HTTP/1.1 forward proxy standing in for a sidecar's outbound listener: it takes
//! absolute-form requests, looks the target's host up in a fixed table (so the names need
//! no DNS, as with the mesh's service names), tags the request and forwards it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Added to every request the proxy forwards, so a test can see a call went through it.
pub const VIA: &str = "x-via-test-proxy";

pub struct ForwardProxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    routes: HashMap<String, SocketAddr>,
    /// The request targets as received, e.g. `http://reviews:9080/x`.
    targets: Mutex<Vec<String>>,
    connections: AtomicUsize,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl ForwardProxy {
    /// Serves until dropped; `routes` maps a host name to the address that serves it.
    pub async fn start(routes: &[(&str, SocketAddr)]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            routes: routes
                .iter()
                .map(|(host, addr)| ((*host).to_owned(), *addr))
                .collect(),
            targets: Mutex::default(),
            connections: AtomicUsize::new(0),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let task = tokio::spawn(accept(listener, Arc::clone(&state)));
        Self { addr, state, task }
    }

    pub fn targets(&self) -> Vec<String> {
        self.state.targets.lock().expect("not poisoned").clone()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        state.connections.fetch_add(1, Ordering::SeqCst);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| forward(Arc::clone(&state), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state
        .targets
        .lock()
        .expect("not poisoned")
        .push(req.uri().to_string());
    let upstream = req
        .uri()
        .host()
        .and_then(|host| state.routes.get(host).copied());
    let Some(upstream) = upstream else {
        return Ok(plain(StatusCode::BAD_GATEWAY, "no route"));
    };
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{upstream}{path}")
        .parse::<Uri>()
        .expect("a valid upstream URI");
    parts
        .headers
        .insert(VIA, "1".parse().expect("header value"));
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = match state
        .client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(response) => response,
        Err(_) => return Ok(plain(StatusCode::BAD_GATEWAY, "upstream failed")),
    };
    let (parts, body) = answer.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
