//! The HTTP listener: HTTP/1.1 and HTTP/2 (prior knowledge) on one socket, each request
//! routed by [`handle`].

mod body;
mod connect;
mod cors;
mod forward;
mod handle;
mod mirror;
mod secure;
mod sticky;
mod upgrade;
mod upstream;

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

pub use body::{Body, BoxError, Flag, RESPONSE_FLAGS, boxed, local_reply};
pub use handle::Connection;
pub use upstream::Upstreams;

use crate::accept::accept_loop;
use crate::drain::Drain;
use crate::metrics::Metrics;
use crate::state::State;

/// Accepts until `stop` fires or draining starts; each connection is served on its own task.
pub async fn serve(
    listener: TcpListener,
    route_config: String,
    state: Arc<State>,
    metrics: Arc<Metrics>,
    upstreams: Arc<Upstreams>,
    drain: Drain,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let local_port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let connection_drain = drain.clone();
    accept_loop(listener, drain, stop, move |stream, peer| {
        let _ = stream.set_nodelay(true);
        let connection = Arc::new(Connection {
            state: state.clone(),
            metrics: metrics.clone(),
            upstreams: upstreams.clone(),
            route_config: route_config.clone(),
            local_port,
            peer,
            inbound: None,
        });
        serve_connection(stream, connection, connection_drain.clone())
    })
    .await;
}

/// Serves one accepted connection (HTTP/1.1 or HTTP/2) until it closes, or gracefully
/// closes it when draining starts. AUTO listeners call this after detection.
pub async fn serve_connection<S>(stream: S, connection: Arc<Connection>, drain: Drain)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve_connection_with(stream, connection, drain, |_| {}).await;
}

/// As [`serve_connection`], with `prepare` seeing each request's headers first: how a
/// gateway states the client certificate it verified (`x-forwarded-client-cert`).
pub async fn serve_connection_with<S, P>(
    stream: S,
    connection: Arc<Connection>,
    drain: Drain,
    prepare: P,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    P: Fn(&mut http::HeaderMap) + Send + Sync + 'static,
{
    let peer = connection.peer;
    let service = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        prepare(req.headers_mut());
        handle::handle(connection.clone(), req)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        }
        _ = drain.started() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
