//! HTTPS on 15017: `POST /inject` takes an AdmissionReview, `GET /healthz` says the
//! injector is up. HTTP/1.1 and HTTP/2, as the API server may use either.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::webhook::Injector;

/// The API server sends at most a few hundred kilobytes; this bounds a hostile client.
const MAX_BODY: usize = 8 * 1024 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Reply = Response<Full<Bytes>>;

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, injector: Arc<Injector>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let injector = injector.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "TLS handshake");
                        return;
                    }
                    Err(_) => return,
                };
            let service = service_fn(move |request| {
                let injector = injector.clone();
                async move { Ok::<_, Infallible>(handle(request, &injector).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // A client that opens a request and never finishes its headers is let go.
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(request: Request<Incoming>, injector: &Injector) -> Reply {
    match (request.method(), request.uri().path()) {
        (&Method::POST, "/inject") => {
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("reading the body: {error}\n"),
                    );
                }
            };
            let answer = injector.review(&body).await;
            let mut reply = Response::new(Full::new(Bytes::from(answer)));
            reply.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            reply
        }
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".to_owned()),
        _ => text(
            StatusCode::NOT_FOUND,
            "injector: POST /inject (AdmissionReview v1), GET /healthz\n".to_owned(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply
}
