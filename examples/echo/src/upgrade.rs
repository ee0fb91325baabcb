//! HTTP/1.1 upgrades (`Upgrade: websocket` or any other protocol): answered with 101, after
//! which the connection echoes bytes both ways, so a proxy's upgrade support can be tested
//! without a WebSocket implementation on either side.

use std::sync::Arc;

use http::header::{CONNECTION, HeaderValue, UPGRADE};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::body::EchoBody;
use crate::http::{ConnCtx, Shared, identify};
use crate::tcp;

/// Whether the request asks to switch protocols. Only HTTP/1.1 can (HTTP/2 has no `Upgrade`).
/// `h2c` is left out: a client asking for it would then speak HTTP/2, not expect an echo, so
/// it gets an ordinary answer, which is how servers decline that upgrade.
pub(crate) fn requested<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req
            .headers()
            .get(UPGRADE)
            .is_some_and(|protocol| !protocol.as_bytes().eq_ignore_ascii_case(b"h2c"))
}

/// Answers 101, naming the requested protocol, and echoes on the connection once hyper hands
/// it over. The echo holds the connection's context, so the connection counts as open and a
/// graceful shutdown waits until the echo ends.
pub(crate) fn accept(
    shared: &Shared,
    conn: Arc<ConnCtx>,
    request_headers: &HeaderMap,
    on_upgrade: OnUpgrade,
) -> Response<EchoBody> {
    shared.stats.record_upgrade();
    let stats = Arc::clone(&shared.stats);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let mut shutdown = conn.shutdown.clone();
                tcp::echo(TokioIo::new(upgraded), &stats, &mut shutdown).await;
            }
            Err(error) => tracing::debug!(%error, "upgrade did not complete"),
        }
        drop(conn);
    });

    let mut response = Response::new(EchoBody::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    identify(&shared.identity, headers);
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(protocol) = request_headers.get(UPGRADE) {
        headers.insert(UPGRADE, protocol.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, upgrade: Option<&str>) -> Request<()> {
        let mut builder = Request::get("/ws").version(version);
        if let Some(protocol) = upgrade {
            builder = builder.header(UPGRADE, protocol);
        }
        builder.body(()).expect("request")
    }

    #[test]
    fn which_requests_upgrade() {
        assert!(requested(&request(Version::HTTP_11, Some("websocket"))));
        assert!(requested(&request(Version::HTTP_11, Some("anything/1"))));
        assert!(!requested(&request(Version::HTTP_11, Some("H2C"))));
        assert!(!requested(&request(Version::HTTP_11, None)));
        assert!(!requested(&request(Version::HTTP_10, Some("websocket"))));
        assert!(!requested(&request(Version::HTTP_2, Some("websocket"))));
    }
}
