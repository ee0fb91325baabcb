//! The view of an incoming request that routing and balancing decide on.

use std::borrow::Cow;
use std::net::IpAddr;

use super::Labels;
use super::query::query_param;
use http::header::HOST;
use http::request::Parts;
use http::{HeaderMap, HeaderName};

/// The gateway name Istio gives the sidecars (`gateways: [mesh]`).
pub const MESH_GATEWAY: &str = "mesh";

/// What the proxy knows about the connection a request arrived on: who sent it and where it
/// was going. Built once per connection, borrowed by every request on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downstream {
    /// The port the request was sent to (the original destination or the listener's port).
    pub port: u16,
    /// Whether the connection was TLS, which decides the scheme when the request has none.
    pub tls: bool,
    pub source_ip: Option<IpAddr>,
    /// The calling workload's labels, when the proxy knows them (its own, for a sidecar's
    /// outbound traffic).
    pub source_labels: Labels,
    pub source_namespace: Option<String>,
    /// The gateway this proxy is, or [`MESH_GATEWAY`] for a sidecar.
    pub gateway: String,
}

impl Downstream {
    /// A plaintext connection into a sidecar, to `port`, from an unknown caller.
    pub fn sidecar(port: u16) -> Self {
        Self {
            port,
            tls: false,
            source_ip: None,
            source_labels: Labels::new(),
            source_namespace: None,
            gateway: MESH_GATEWAY.to_owned(),
        }
    }
}

/// Everything a route match or hash policy may look at, borrowed from the request and its
/// connection. Cheap to build: no allocation, no parsing beyond what `http` already did.
///
/// The path is matched as given; normalising it (`..`, `//`, percent-encoding) is the
/// proxy's job before it builds this view, as Envoy normalises before routing.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    /// `:authority`, or the `Host` header for HTTP/1 origin-form requests; may be empty.
    pub authority: &'a str,
    /// Path and query string, e.g. `/search?q=x`.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    /// The port the request was sent to.
    pub port: u16,
    pub source_ip: Option<IpAddr>,
    pub source_labels: &'a Labels,
    pub source_namespace: Option<&'a str>,
    pub gateway: &'a str,
}

impl<'a> RequestInfo<'a> {
    pub fn new(parts: &'a Parts, downstream: &'a Downstream) -> Self {
        let scheme = match parts.uri.scheme_str() {
            Some(scheme) => scheme,
            None if downstream.tls => "https",
            None => "http",
        };
        let authority = match parts.uri.authority() {
            Some(authority) => authority.as_str(),
            None => parts
                .headers
                .get(HOST)
                .and_then(|host| host.to_str().ok())
                .unwrap_or(""),
        };
        let path = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
        Self {
            method: parts.method.as_str(),
            scheme,
            authority,
            path,
            headers: &parts.headers,
            port: downstream.port,
            source_ip: downstream.source_ip,
            source_labels: &downstream.source_labels,
            source_namespace: downstream.source_namespace.as_deref(),
            gateway: &downstream.gateway,
        }
    }

    /// The path without the query string: what `uri` matches compare against.
    pub fn path_only(&self) -> &'a str {
        self.path
            .split_once('?')
            .map_or(self.path, |(path, _)| path)
    }

    /// The raw query string, without the `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.path.split_once('?').map(|(_, query)| query)
    }

    /// The authority without its port.
    pub fn host(&self) -> &'a str {
        split_port(self.authority).0
    }

    /// A header's value as Envoy's matchers see it: several values joined with `,`, bytes
    /// that are not UTF-8 replaced (so they can fail a match but never panic).
    pub fn header(&self, name: &HeaderName) -> Option<Cow<'a, str>> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?.as_bytes();
        let Some(second) = values.next() else {
            return Some(String::from_utf8_lossy(first));
        };
        let mut joined = first.to_vec();
        for value in std::iter::once(second).chain(values) {
            joined.push(b',');
            joined.extend_from_slice(value.as_bytes());
        }
        Some(Cow::Owned(String::from_utf8_lossy(&joined).into_owned()))
    }

    /// The percent-decoded value of the first query parameter called `name`; `Some("")`
    /// for a bare `?name`.
    pub fn query_param(&self, name: &str) -> Option<Cow<'a, str>> {
        query_param(self.query()?, name)
    }
}

/// Splits `host:port` (including `[v6]:port`) into host and port text. A bare IPv6 address
/// without brackets has no port.
pub(crate) fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parts(request: http::request::Builder) -> Parts {
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn http1_origin_form_takes_authority_from_host() {
        let parts = parts(
            http::Request::get("/a/b?x=1")
                .header("host", "reviews:9080")
                .header("x-user", "jason"),
        );
        let downstream = Downstream::sidecar(9080);
        let req = RequestInfo::new(&parts, &downstream);
        assert_eq!(req.method, "GET");
        assert_eq!(req.scheme, "http");
        assert_eq!(req.authority, "reviews:9080");
        assert_eq!(req.host(), "reviews");
        assert_eq!(req.path, "/a/b?x=1");
        assert_eq!(req.path_only(), "/a/b");
        assert_eq!(req.query(), Some("x=1"));
        assert_eq!(req.port, 9080);
        assert_eq!(req.gateway, MESH_GATEWAY);
    }

    #[test]
    fn absolute_form_and_tls() {
        let parts = parts(http::Request::post("https://api.example.com/v1"));
        let downstream = Downstream {
            tls: true,
            ..Downstream::sidecar(443)
        };
        let req = RequestInfo::new(&parts, &downstream);
        assert_eq!(req.scheme, "https");
        assert_eq!(req.authority, "api.example.com");
        assert_eq!(req.query(), None);

        let parts = self::parts(http::Request::get("/"));
        let req = RequestInfo::new(&parts, &downstream);
        assert_eq!(req.scheme, "https");
        assert_eq!(req.authority, "");
    }

    #[test]
    fn header_values_are_joined() {
        let parts = parts(
            http::Request::get("/?a=%41")
                .header("x-a", "1")
                .header("x-a", "2")
                .header("x-b", "3"),
        );
        let downstream = Downstream::sidecar(80);
        let req = RequestInfo::new(&parts, &downstream);
        let name = |n: &'static str| HeaderName::from_static(n);
        assert_eq!(req.header(&name("x-a")).as_deref(), Some("1,2"));
        assert_eq!(req.header(&name("x-b")).as_deref(), Some("3"));
        assert_eq!(req.header(&name("x-c")), None);
        assert_eq!(req.query_param("a").as_deref(), Some("A"));
    }

    #[test]
    fn split_port_handles_ipv6() {
        assert_eq!(split_port("a:80"), ("a", Some("80")));
        assert_eq!(split_port("a"), ("a", None));
        assert_eq!(split_port("[::1]:80"), ("[::1]", Some("80")));
        assert_eq!(split_port("[::1]"), ("[::1]", None));
        assert_eq!(split_port("::1"), ("::1", None));
        assert_eq!(split_port("a:"), ("a:", None));
    }
}
