//! What a policy can ask about a request or connection, borrowed from the proxy's own state.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::request::Parts;
use serde_json::Value;

/// One inbound request (HTTP) or connection (TCP), as the proxy knows it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The peer's SPIFFE ID from its certificate, `spiffe://<td>/ns/<ns>/sa/<sa>`; `None`
    /// without mTLS. `source.principal`, `source.namespace` and service accounts derive from it.
    pub peer_identity: Option<&'a str>,
    /// The payload of the JWT a RequestAuthentication validated; `None` without one. The
    /// request principal is its `iss` and `sub`: `<iss>/<sub>`.
    pub jwt_claims: Option<&'a Value>,
    /// The immediate peer's address (`ipBlocks`, `source.ip`).
    pub source_ip: IpAddr,
    /// The original client as X-Forwarded-For or PROXY protocol tell it (`remoteIpBlocks`,
    /// `remote.ip`); `None` means the immediate peer is the client.
    pub remote_ip: Option<IpAddr>,
    /// The address the connection was made to (`destination.ip`, `ports`, `destination.port`).
    pub destination: SocketAddr,
    /// The TLS server name the peer asked for (`connection.sni`).
    pub sni: Option<&'a str>,
    /// `None` for TCP: HTTP-only rules then follow Istio's TCP rules (see the module docs).
    pub http: Option<HttpRequest<'a>>,
}

/// The HTTP attributes: `hosts`, `methods`, `paths`, `request.headers[...]`.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `:authority` (HTTP/2) or `Host` (HTTP/1.1), as sent, port included if sent.
    pub authority: &'a str,
    pub method: &'a str,
    /// `:path`, query included; `paths` match the part before `?`.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

impl<'a> HttpRequest<'a> {
    /// The attributes of a request as `http` parsed it: the authority from the URI, else
    /// from the `Host` header.
    pub fn from_parts(parts: &'a Parts) -> Self {
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| parts.headers.get(http::header::HOST)?.to_str().ok())
            .unwrap_or_default();
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
        Self {
            authority,
            method: parts.method.as_str(),
            path,
            headers: &parts.headers,
        }
    }

    /// A header's value for matching: repeated headers joined with `,`, as Envoy's header
    /// matcher sees them. `None` when absent.
    pub(super) fn header(&self, name: &http::HeaderName) -> Option<Cow<'a, str>> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        match (values.next(), first.to_str()) {
            (None, Ok(only)) => Some(Cow::Borrowed(only)),
            _ => {
                let all: Vec<_> = self
                    .headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect();
                Some(Cow::Owned(
                    String::from_utf8_lossy(&all.join(&b","[..])).into_owned(),
                ))
            }
        }
    }
}

/// The request as the matchers read it, derived once per evaluation.
pub(super) struct Facts<'a> {
    /// The peer identity without `spiffe://`: Istio writes principals that way.
    pub principal: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub service_account: Option<&'a str>,
    pub source_ip: IpAddr,
    pub remote_ip: IpAddr,
    pub destination_ip: IpAddr,
    pub destination_port: u16,
    pub sni: Option<&'a str>,
    pub http: Option<HttpRequest<'a>>,
    pub claims: Option<&'a Value>,
}

impl<'a> Facts<'a> {
    pub(super) fn new(request: &Request<'a>) -> Self {
        // Istio's matchers assume the `spiffe://` scheme; any other identity matches nothing.
        let principal = request
            .peer_identity
            .and_then(|id| id.strip_prefix("spiffe://"));
        let path = principal
            .and_then(|p| p.split_once('/'))
            .map(|(_, path)| path);
        let source_ip = request.source_ip.to_canonical();
        Self {
            principal,
            namespace: path.and_then(|p| segment_after(p, "ns")),
            service_account: path.and_then(|p| segment_after(p, "sa")),
            source_ip,
            remote_ip: request.remote_ip.map_or(source_ip, |ip| ip.to_canonical()),
            destination_ip: request.destination.ip().to_canonical(),
            destination_port: request.destination.port(),
            sni: request.sni,
            http: request.http,
            claims: request.jwt_claims,
        }
    }

    pub(super) fn is_tcp(&self) -> bool {
        self.http.is_none()
    }

    /// The `iss` and `sub` claims, when both are strings.
    pub(super) fn jwt_issuer_subject(&self) -> Option<(&'a str, &'a str)> {
        let claims = self.claims?;
        Some((claims.get("iss")?.as_str()?, claims.get("sub")?.as_str()?))
    }
}

/// The segment after `key` in `ns/foo/sa/bar`, as Istio's `.*/ns/<ns>/.*` reads it.
fn segment_after<'a>(path: &'a str, key: &str) -> Option<&'a str> {
    let mut segments = path.split('/');
    segments.find(|s| *s == key)?;
    segments.next().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use http::HeaderName;

    use super::*;

    fn parts(builder: http::request::Builder) -> Parts {
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn from_parts_reads_authority_and_path() {
        let origin = parts(http::Request::get("/a?b=1").header("host", "web:8080"));
        let http = HttpRequest::from_parts(&origin);
        assert_eq!(
            (http.authority, http.method, http.path),
            ("web:8080", "GET", "/a?b=1")
        );
        let absolute =
            parts(http::Request::post("http://api.example.com/x").header("host", "other"));
        let http = HttpRequest::from_parts(&absolute);
        assert_eq!(
            (http.authority, http.method, http.path),
            ("api.example.com", "POST", "/x")
        );
    }

    #[test]
    fn repeated_headers_join_with_commas() {
        let p = parts(
            http::Request::get("/")
                .header("x-a", "1")
                .header("x-a", "2")
                .header("x-b", "b"),
        );
        let http = HttpRequest::from_parts(&p);
        let value = |name| {
            http.header(&HeaderName::from_static(name))
                .map(Cow::into_owned)
        };
        assert_eq!(value("x-a").as_deref(), Some("1,2"));
        assert_eq!(value("x-b").as_deref(), Some("b"));
        assert_eq!(value("x-c"), None);
    }

    #[test]
    fn the_peer_identity_splits_into_namespace_and_account() {
        let request = Request {
            peer_identity: Some("spiffe://td/ns/foo/sa/bar"),
            jwt_claims: None,
            source_ip: "::ffff:10.0.0.1".parse().unwrap(),
            remote_ip: None,
            destination: "10.0.0.2:80".parse().unwrap(),
            sni: None,
            http: None,
        };
        let facts = Facts::new(&request);
        assert_eq!(facts.principal, Some("td/ns/foo/sa/bar"));
        assert_eq!(
            (facts.namespace, facts.service_account),
            (Some("foo"), Some("bar"))
        );
        assert_eq!(facts.remote_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        let other = Facts::new(&Request {
            peer_identity: Some("spiffe://td/workload"),
            ..request
        });
        assert_eq!(
            (other.principal, other.namespace),
            (Some("td/workload"), None)
        );
    }
}
