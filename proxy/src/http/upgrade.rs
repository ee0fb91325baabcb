//! HTTP/1.1 upgrades (WebSocket and any other `Upgrade:` protocol): the request goes
//! upstream with its upgrade headers, and on `101 Switching Protocols` both upgraded
//! connections are spliced until either side closes.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// The protocol a request asks to upgrade to, if it asks (`Connection: upgrade` and
/// `Upgrade: <protocol>`; HTTP/2 has no such mechanism).
pub fn requested(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// Puts the upgrade headers back after hop-by-hop stripping.
pub fn restore(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

/// Once both sides have switched protocols, copies bytes both ways; `hold` (circuit
/// breaker slot, load counter) lives as long as the tunnel.
pub fn splice<B, H: Send + 'static>(downstream: OnUpgrade, upstream: &mut Response<B>, hold: H) {
    if upstream.status() != StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    let upstream = hyper::upgrade::on(upstream);
    tokio::spawn(async move {
        let _hold = hold;
        match tokio::try_join!(downstream, upstream) {
            Ok((down, up)) => {
                let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
                match tokio::io::copy_bidirectional(&mut down, &mut up).await {
                    Ok((sent, received)) => {
                        tracing::debug!(sent, received, "upgraded connection closed")
                    }
                    Err(error) => {
                        tracing::debug!(%error, "upgraded connection ended with an error")
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "upgrade failed"),
        }
    });
}
