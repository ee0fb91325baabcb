//! A fake API server on 127.0.0.1 for the client tests: real HTTP, JSON as the API server
//! sends it, a log of the requests. Watch requests are held open, as a quiet cluster's
//! would be; the first Services watch streams the events a test sends.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

#[derive(Default)]
pub(super) struct State {
    pub routes: HashMap<String, Value>,
    /// Paths whose first request fails with a 500, to prove the watchers retry.
    pub fail_once: Mutex<HashSet<String>>,
    pub requests: Mutex<Vec<String>>,
    /// Watch events for the first Services watch, as the test sends them.
    pub service_events: Mutex<Option<mpsc::Receiver<Value>>>,
}

type Body = BoxBody<Bytes, Infallible>;

pub(super) struct FakeApiServer {
    state: Arc<State>,
    pub client: kube::Client,
}

impl FakeApiServer {
    pub async fn start(state: State) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        let state = Arc::new(state);
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = serving.clone();
                let service = hyper::service::service_fn(move |r| answer(r, state.clone()));
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::spawn(connection);
            }
        });
        let url = format!("http://{address}").parse().expect("URL");
        let client = kube::Client::try_from(kube::Config::new(url)).expect("client");
        Self { state, client }
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().expect("lock").clone()
    }
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    state
        .requests
        .lock()
        .expect("lock")
        .push(format!("{path}?{query}"));
    if query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1")
    {
        let events = if path == "/api/v1/services" {
            state.service_events.lock().expect("lock").take()
        } else {
            None
        };
        match events {
            Some(events) => return Ok(watch_response(events)),
            None => std::future::pending::<()>().await,
        }
    }
    if state.fail_once.lock().expect("lock").remove(&path) {
        return Ok(json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            status(500, "etcd timeout"),
        ));
    }
    Ok(match state.routes.get(&path) {
        Some(body) => json_response(StatusCode::OK, body.clone()),
        None => json_response(
            StatusCode::NOT_FOUND,
            status(404, "the server could not find the requested resource"),
        ),
    })
}

fn json_response(code: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(BoxBody::new(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = code;
    with_json(response)
}

/// A watch: one JSON event per line, for as long as the test keeps its sender.
fn watch_response(events: mpsc::Receiver<Value>) -> Response<Body> {
    let frames =
        ReceiverStream::new(events).map(|event| Ok(Frame::data(Bytes::from(format!("{event}\n")))));
    with_json(Response::new(BoxBody::new(StreamBody::new(frames))))
}

fn with_json(mut response: Response<Body>) -> Response<Body> {
    let json = "application/json".parse().expect("header");
    response.headers_mut().insert("content-type", json);
    response
}

fn status(code: u16, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": "InternalError", "code": code})
}

pub(super) fn list(api_version: &str, kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"),
           "metadata": {"resourceVersion": "49500"}, "items": items})
}
