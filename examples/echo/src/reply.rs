//! The JSON echo body. Public and `Deserialize` so the proxy's tests can parse what the
//! upstream saw (which headers the proxy added, which version answered) with one call.

use std::collections::BTreeMap;

use http::HeaderValue;
use http::header::InvalidHeaderValue;
use http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::calls::Call;
use crate::peer;

/// What the server saw of a request, and who answered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoReply {
    /// The server's name (`EchoConfig::name`).
    pub service: String,
    /// The server's version label (`EchoConfig::version`).
    pub version: String,
    pub hostname: String,
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: Option<String>,
    /// The `:authority` (HTTP/2) or `Host` header (HTTP/1.1), as a router saw it.
    pub authority: Option<String>,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`: shows what a proxy spoke to the upstream.
    pub protocol: String,
    /// Request headers by lower-case name; repeated headers are joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// Bytes in the request body.
    pub body_bytes: u64,
    /// The caller's identity as the sidecar verified it: the last `URI=` of
    /// `x-forwarded-client-cert`, e.g. `spiffe://cluster.local/ns/shop/sa/productpage`.
    #[serde(default)]
    pub peer: Option<String>,
    /// The upstream calls made for this request (`EchoConfig::calls`), in order.
    #[serde(default)]
    pub calls: Vec<Call>,
}

/// Who is answering; fixed for a server's lifetime. The header values are checked once, at
/// start, so answering a request never has to handle a name that is not a valid header.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub name: String,
    pub version: String,
    pub hostname: String,
    pub name_header: HeaderValue,
    pub version_header: HeaderValue,
}

impl Identity {
    pub fn new(name: &str, version: &str, hostname: &str) -> Result<Self, InvalidHeaderValue> {
        Ok(Self {
            name: name.to_owned(),
            version: version.to_owned(),
            hostname: hostname.to_owned(),
            name_header: HeaderValue::from_str(name)?,
            version_header: HeaderValue::from_str(version)?,
        })
    }
}

impl EchoReply {
    pub(crate) fn new(identity: &Identity, parts: &Parts, body_bytes: u64) -> Self {
        let authority = parts
            .uri
            .authority()
            .map(ToString::to_string)
            .or_else(|| header_text(parts.headers.get(http::header::HOST)));
        Self {
            service: identity.name.clone(),
            version: identity.version.clone(),
            hostname: identity.hostname.clone(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            authority,
            protocol: format!("{:?}", parts.version),
            headers: headers(&parts.headers),
            body_bytes,
            peer: peer::from_headers(&parts.headers),
            calls: Vec::new(),
        }
    }
}

pub(crate) fn headers(map: &http::HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::<String, String>::new();
    for (name, value) in map {
        let value = String::from_utf8_lossy(value.as_bytes());
        out.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}

fn header_text(value: Option<&HeaderValue>) -> Option<String> {
    value.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_request() {
        let (parts, ()) = http::Request::post("/a/b?x=1")
            .header("host", "svc.local")
            .header("x-tag", "one")
            .header("x-tag", "two")
            .header("x-bin", HeaderValue::from_bytes(b"caf\xe9").expect("value"))
            .header(peer::XFCC, "By=spiffe://me;URI=spiffe://caller")
            .body(())
            .expect("request")
            .into_parts();
        let identity = Identity::new("echo", "v2", "host").expect("identity");
        assert!(Identity::new("bad\nname", "v1", "host").is_err());
        let reply = EchoReply::new(&identity, &parts, 7);
        assert_eq!(reply.version, "v2");
        assert_eq!(reply.method, "POST");
        assert_eq!(reply.path, "/a/b");
        assert_eq!(reply.query.as_deref(), Some("x=1"));
        assert_eq!(reply.authority.as_deref(), Some("svc.local"));
        assert_eq!(reply.protocol, "HTTP/1.1");
        assert_eq!(reply.headers["x-tag"], "one, two");
        assert_eq!(reply.headers["x-bin"], "caf\u{fffd}");
        assert_eq!(reply.body_bytes, 7);
        assert_eq!(reply.peer.as_deref(), Some("spiffe://caller"));
        assert!(reply.calls.is_empty());
    }

    #[test]
    fn older_answers_without_peer_or_calls_still_parse() {
        let json = r#"{"service":"echo","version":"v1","hostname":"h","method":"GET","path":"/",
            "query":null,"authority":null,"protocol":"HTTP/1.1","headers":{},"body_bytes":0}"#;
        let reply: EchoReply = serde_json::from_str(json).expect("parses");
        assert_eq!((reply.peer, reply.calls), (None, Vec::new()));
    }
}
