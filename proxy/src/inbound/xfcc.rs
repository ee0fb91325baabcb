//! `x-forwarded-client-cert` to the local app, as Istio's sidecar sets it after mTLS.
//!
//! Istio's value is `By=<own id>;Hash=<sha256 of the peer leaf>;URI=<peer id>`. `Hash` is
//! left out: no SHA-256 is a direct dependency of the proxy.

use http::{HeaderMap, HeaderValue};

use super::Peer;

pub const XFCC: &str = "x-forwarded-client-cert";

/// Drops what the client sent (a client must not claim a certificate), then states the
/// verified peer, when there is one.
pub fn apply(headers: &mut HeaderMap, peer: &Peer) {
    headers.remove(XFCC);
    let Some(uri) = &peer.identity else {
        return;
    };
    let value = match &peer.own_identity {
        Some(by) => format!("By={by};URI={uri}"),
        None => format!("URI={uri}"),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(XFCC, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(identity: Option<&str>) -> Peer {
        Peer {
            identity: identity.map(Into::into),
            own_identity: Some("spiffe://cluster.local/ns/shop/sa/cart".into()),
            address: ([127, 0, 0, 1], 1).into(),
            local: ([127, 0, 0, 1], 2).into(),
            mtls: identity.is_some(),
        }
    }

    #[test]
    fn a_client_sent_value_is_replaced_by_the_verified_peer() {
        let mut headers = HeaderMap::new();
        headers.insert(XFCC, HeaderValue::from_static("URI=spiffe://evil"));
        apply(
            &mut headers,
            &peer(Some("spiffe://cluster.local/ns/shop/sa/web")),
        );
        assert_eq!(
            headers[XFCC],
            "By=spiffe://cluster.local/ns/shop/sa/cart;URI=spiffe://cluster.local/ns/shop/sa/web"
        );
    }

    #[test]
    fn plaintext_peers_get_no_value_and_a_client_sent_one_is_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(XFCC, HeaderValue::from_static("URI=spiffe://evil"));
        apply(&mut headers, &peer(None));
        assert!(!headers.contains_key(XFCC));
    }
}
