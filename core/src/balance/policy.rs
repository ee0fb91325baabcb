//! Load-balancing policy (DestinationRule `trafficPolicy.loadBalancer`) and hash keys.

use std::net::IpAddr;
use std::time::Duration;

use http::HeaderName;
use http::header::COOKIE;

use super::Maglev;
use super::hash::stable_hash;
use crate::model::RequestInfo;

/// How a cluster's endpoints are chosen (Istio `LoadBalancerSettings`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LbPolicy {
    RoundRobin,
    /// Istio's default when a DestinationRule sets no policy.
    #[default]
    LeastRequest,
    Random,
    ConsistentHash(ConsistentHash),
}

/// Istio `ConsistentHashLB`. Both of Istio's algorithms are served by Maglev (see the
/// [module docs](super)): `maglev.tableSize` maps to `table_size`; for `ringHash`, use a
/// prime at least `minimumRingSize` (or the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistentHash {
    pub key: HashPolicy,
    /// A prime; [`Maglev::DEFAULT_TABLE_SIZE`] unless configured.
    pub table_size: usize,
}

impl ConsistentHash {
    pub fn new(key: HashPolicy) -> Self {
        Self {
            key,
            table_size: Maglev::DEFAULT_TABLE_SIZE,
        }
    }
}

/// What part of a request a consistent hash is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashPolicy {
    /// Istio `httpHeaderName`; several values are joined with `,`.
    Header(HeaderName),
    /// Istio `httpCookie`.
    Cookie(HashCookie),
    /// Istio `useSourceIp`.
    SourceIp,
    /// Istio `httpQueryParameterName`; the first occurrence, percent-decoded.
    QueryParameter(String),
}

/// Istio `HTTPCookie`: the cookie whose value is hashed.
///
/// `path` and `ttl` only matter when the request has no such cookie: Envoy then (if `ttl` is
/// set) makes one up and sets it on the response so the client sticks from its next request.
/// That is the proxy's job; [`HashPolicy::key`] returns `None` here and the request is
/// balanced at random, as Envoy balances the first request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashCookie {
    pub name: String,
    pub path: Option<String>,
    pub ttl: Option<Duration>,
}

impl HashPolicy {
    /// The request's hash key, or `None` if the request lacks the header, cookie, parameter
    /// or source address; callers then balance without a key (at random, as Envoy does).
    pub fn key(&self, req: &RequestInfo) -> Option<u64> {
        match self {
            Self::Header(name) => req.header(name).map(|v| stable_hash(v.as_bytes())),
            Self::Cookie(cookie) => cookie_value(req, &cookie.name).map(stable_hash),
            Self::SourceIp => req.source_ip.map(|ip| stable_hash(&ip_bytes(ip))),
            Self::QueryParameter(name) => req.query_param(name).map(|v| stable_hash(v.as_bytes())),
        }
    }
}

/// The value of the first cookie called `name` across all `Cookie` headers, without the
/// optional surrounding quotes (RFC 6265 `cookie-value`).
fn cookie_value<'a>(req: &RequestInfo<'a>, name: &str) -> Option<&'a [u8]> {
    req.headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|header| header.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            let (key, value) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            (key.trim_ascii() == name.as_bytes()).then(|| unquote(value.trim_ascii()))
        })
}

fn unquote(value: &[u8]) -> &[u8] {
    value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value)
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    }
}
