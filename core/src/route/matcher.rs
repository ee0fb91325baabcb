//! Whether one [`RequestMatch`] admits a request, and if not, which condition refused it.

use std::fmt;

use http::HeaderName;

use crate::model::{RequestInfo, RequestMatch, StringMatch, ValueMatch, selects};

/// The first condition of a [`RequestMatch`] that a request failed; what `meshctl` and debug
/// logs print to explain why a route was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch<'m> {
    Port,
    Gateway,
    SourceLabels,
    SourceNamespace,
    Method,
    Scheme,
    Authority,
    Uri,
    Header(&'m HeaderName),
    WithoutHeader(&'m HeaderName),
    QueryParam(&'m str),
}

impl fmt::Display for Mismatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Port => f.write_str("port"),
            Self::Gateway => f.write_str("gateways"),
            Self::SourceLabels => f.write_str("sourceLabels"),
            Self::SourceNamespace => f.write_str("sourceNamespace"),
            Self::Method => f.write_str("method"),
            Self::Scheme => f.write_str("scheme"),
            Self::Authority => f.write_str("authority"),
            Self::Uri => f.write_str("uri"),
            Self::Header(name) => write!(f, "headers.{name}"),
            Self::WithoutHeader(name) => write!(f, "withoutHeaders.{name}"),
            Self::QueryParam(name) => write!(f, "queryParams.{name}"),
        }
    }
}

/// Whether every condition of `m` holds for `req`.
pub fn matches(m: &RequestMatch, req: &RequestInfo) -> bool {
    first_mismatch(m, req).is_none()
}

/// The first condition of `m` that `req` fails, or `None` if `m` admits it. Conditions are
/// checked cheapest first; which one is reported when several fail is not part of the API.
pub fn first_mismatch<'m>(m: &'m RequestMatch, req: &RequestInfo) -> Option<Mismatch<'m>> {
    if m.port.is_some_and(|port| port != req.port) {
        return Some(Mismatch::Port);
    }
    if let Some(mismatch) = source_mismatch(m, req) {
        return Some(mismatch);
    }
    let string_checks = [
        (&m.method, req.method, Mismatch::Method),
        (&m.scheme, req.scheme, Mismatch::Scheme),
        (&m.authority, req.authority, Mismatch::Authority),
    ];
    for (expected, actual, mismatch) in string_checks {
        if expected.as_ref().is_some_and(|e| !e.matches(actual)) {
            return Some(mismatch);
        }
    }
    if m.uri
        .as_ref()
        .is_some_and(|uri| !uri_matches(uri, m.ignore_uri_case, req))
    {
        return Some(Mismatch::Uri);
    }
    header_mismatch(m, req).or_else(|| query_mismatch(m, req))
}

/// Istio's `sourceMatchHTTP`: a condition naming gateways is decided by the gateway alone;
/// otherwise by source labels and namespace.
fn source_mismatch<'m>(m: &'m RequestMatch, req: &RequestInfo) -> Option<Mismatch<'m>> {
    if !m.gateways.is_empty() {
        return (!m.gateways.iter().any(|g| g == req.gateway)).then_some(Mismatch::Gateway);
    }
    if !selects(&m.source_labels, req.source_labels) {
        return Some(Mismatch::SourceLabels);
    }
    match &m.source_namespace {
        Some(ns) if req.source_namespace != Some(ns.as_str()) => Some(Mismatch::SourceNamespace),
        _ => None,
    }
}

fn uri_matches(uri: &StringMatch, ignore_case: bool, req: &RequestInfo) -> bool {
    let path = req.path_only();
    if ignore_case {
        uri.matches_ignore_case(path)
    } else {
        uri.matches(path)
    }
}

fn header_mismatch<'m>(m: &'m RequestMatch, req: &RequestInfo) -> Option<Mismatch<'m>> {
    for (name, expected) in &m.headers {
        let admitted = match (expected, req.header(name)) {
            (ValueMatch::Present, value) => value.is_some(),
            (ValueMatch::Value(expected), Some(value)) => expected.matches(&value),
            (ValueMatch::Value(_), None) => false,
        };
        if !admitted {
            return Some(Mismatch::Header(name));
        }
    }
    for (name, refused) in &m.without_headers {
        let refused = match refused {
            ValueMatch::Present => req.headers.contains_key(name),
            ValueMatch::Value(refused) => refused.matches(&req.header(name).unwrap_or_default()),
        };
        if refused {
            return Some(Mismatch::WithoutHeader(name));
        }
    }
    None
}

fn query_mismatch<'m>(m: &'m RequestMatch, req: &RequestInfo) -> Option<Mismatch<'m>> {
    m.query_params.iter().find_map(|(name, expected)| {
        let admitted = match (expected, req.query_param(name)) {
            (ValueMatch::Present, value) => value.is_some(),
            (ValueMatch::Value(expected), Some(value)) => expected.matches(&value),
            (ValueMatch::Value(_), None) => false,
        };
        (!admitted).then_some(Mismatch::QueryParam(name.as_str()))
    })
}
