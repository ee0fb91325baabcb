//! Metadata exchange: how the destination side learns which workload sent a request.
//!
//! A certificate names a service account, not a workload, so Istio's sidecars exchange
//! peer metadata to label each request with both workloads. Here the outbound sidecar adds
//! one header to every request it sends over mesh mTLS to a meshed endpoint:
//!
//! ```text
//! x-mesh-peer-metadata: w=<workload>;n=<namespace>;a=<app>;v=<version>
//! ```
//!
//! The inbound sidecar believes it only when the connection is mTLS and the namespace it
//! claims is the namespace of the peer's verified SPIFFE identity: a peer can then only
//! claim workloads of its own namespace. It fills the request's `source_workload`,
//! `source_app` and `source_version`; the namespace and principal always come from the
//! certificate. Believed or not, the header is removed before the request reaches the app,
//! and the outbound side removes any the app sent before adding its own, so the header
//! never reaches an app and never leaves the mesh. Values are Kubernetes names and label
//! values (`[A-Za-z0-9._-]`, at most 253 bytes); anything else makes the whole header
//! ignored, so a peer cannot put arbitrary text into label values.

use http::{HeaderMap, HeaderValue};

use super::Identity;

pub const HEADER: &str = "x-mesh-peer-metadata";

/// Longer than any four valid values need: a bound on what is parsed per request.
const MAX_LEN: usize = 4 * (253 + 3);

/// The header this proxy sends, built once; `None` when a value is not sendable (then
/// peers label its requests `unknown`, as before).
pub fn encode(identity: &Identity) -> Option<HeaderValue> {
    let parts = [
        ("w", &identity.workload),
        ("n", &identity.namespace),
        ("a", &identity.app),
        ("v", &identity.version),
    ];
    if !parts.iter().all(|(_, value)| valid(value)) {
        return None;
    }
    let text = parts
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(";");
    HeaderValue::from_str(&text).ok()
}

/// A believed header's values, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerRef<'a> {
    pub workload: &'a str,
    pub namespace: &'a str,
    pub app: &'a str,
    pub version: &'a str,
}

/// Parses a header value; `None` unless it has a valid workload and namespace (app and
/// version default to `unknown`). Unknown keys are skipped, for later additions.
pub fn decode(value: &HeaderValue) -> Option<PeerRef<'_>> {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_LEN {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut peer = PeerRef {
        workload: "",
        namespace: "",
        app: "unknown",
        version: "unknown",
    };
    for pair in text.split(';') {
        let (key, value) = pair.split_once('=')?;
        if !valid(value) {
            return None;
        }
        match key {
            "w" => peer.workload = value,
            "n" => peer.namespace = value,
            "a" => peer.app = value,
            "v" => peer.version = value,
            _ => {}
        }
    }
    (!peer.workload.is_empty() && !peer.namespace.is_empty()).then_some(peer)
}

/// Removes the header from an inbound request and keeps it only if the peer may say it:
/// mTLS, and the claimed namespace is the one of `peer_identity`.
pub fn take_inbound(
    headers: &mut HeaderMap,
    mtls: bool,
    peer_identity: Option<&str>,
) -> Option<HeaderValue> {
    let value = headers.remove(HEADER)?;
    let namespace = peer_identity.and_then(mesh_core::model::spiffe_namespace)?;
    let believed = mtls && decode(&value).is_some_and(|peer| peer.namespace == namespace);
    if !believed {
        tracing::debug!(peer = ?peer_identity, mtls, "peer metadata ignored");
    }
    believed.then_some(value)
}

fn valid(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            workload: "productpage-v1".into(),
            namespace: "shop".into(),
            app: "productpage".into(),
            version: "v1".into(),
            principal: "unknown".into(),
        }
    }

    const PEER: &str = "spiffe://cluster.local/ns/shop/sa/productpage";

    #[test]
    fn what_is_sent_is_read_back() {
        let value = encode(&identity()).expect("valid identity");
        assert_eq!(value, "w=productpage-v1;n=shop;a=productpage;v=v1");
        let peer = decode(&value).expect("decodes");
        assert_eq!(
            (peer.workload, peer.namespace, peer.app, peer.version),
            ("productpage-v1", "shop", "productpage", "v1")
        );
    }

    #[test]
    fn a_value_outside_label_syntax_is_not_sent() {
        let mut odd = identity();
        odd.app = "my app".into();
        assert_eq!(encode(&odd), None);
    }

    #[test]
    fn bad_headers_are_ignored_whole() {
        for bad in [
            "",
            "w=a",
            "n=shop",
            "w=a;n=shop;a=x y",
            "w=a;n=shop;garbage",
            "w=;n=shop",
            &format!("w={};n=shop", "a".repeat(254)),
            &format!("w=a;n=shop;x={}", "b".repeat(MAX_LEN)),
        ] {
            let value = HeaderValue::from_str(bad).expect("header");
            assert_eq!(decode(&value), None, "{bad:?}");
        }
        let extra = HeaderValue::from_static("w=a;n=shop;z=later");
        assert_eq!(decode(&extra).map(|p| p.app), Some("unknown"));
    }

    #[test]
    fn inbound_believes_only_mtls_peers_of_the_claimed_namespace() {
        let take = |value: &str, mtls: bool, peer: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, HeaderValue::from_str(value).expect("header"));
            let kept = take_inbound(&mut headers, mtls, peer);
            assert!(!headers.contains_key(HEADER), "always stripped");
            kept.is_some()
        };
        let good = "w=productpage-v1;n=shop";
        assert!(take(good, true, Some(PEER)));
        assert!(!take(good, false, Some(PEER)), "plaintext");
        assert!(!take(good, true, None), "no identity");
        let other = "spiffe://cluster.local/ns/other/sa/x";
        assert!(!take(good, true, Some(other)), "another namespace");
        assert!(!take("w=a;n=shop;a=b c", true, Some(PEER)), "malformed");
    }
}
