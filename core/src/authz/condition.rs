//! `when` conditions: Istio's attribute keys, each compiled to the matcher its values need.
//! <https://istio.io/latest/docs/reference/config/security/conditions/>

use http::HeaderName;
use serde_json::Value;

use super::cidr::Cidr;
use super::compile::{Located, cidr, field, jwt_principal, pattern, port};
use super::error::Problem;
use super::pattern::{JwtPrincipal, Pattern};
use super::request::Facts;
use super::rule::{Field, namespace, principal, request_principal};
use crate::config;
use crate::validate::FieldPath;

#[derive(Debug, Clone)]
pub(super) enum Condition {
    SourceIp(Field<Cidr>),
    RemoteIp(Field<Cidr>),
    SourceNamespace(Field<Pattern>),
    SourcePrincipal(Field<Pattern>),
    DestinationIp(Field<Cidr>),
    DestinationPort(Field<u16>),
    Sni(Field<Pattern>),
    // HTTP only, from here on.
    Header(Header, Field<Pattern>),
    RequestPrincipal(Field<JwtPrincipal>),
    /// The `aud` claim.
    Audiences(Field<Pattern>),
    /// The `azp` claim.
    Presenter(Field<Pattern>),
    /// A claim by path: `[realm][roles]`.
    Claim(Vec<Box<str>>, Field<Pattern>),
}

/// The header a `request.headers[...]` key names; Envoy also exposes the pseudo-headers.
#[derive(Debug, Clone)]
pub(super) enum Header {
    Named(HeaderName),
    Authority,
    Method,
    Path,
}

/// Compiles one `when` entry at `at` (`spec.rules[0].when[1]`).
pub(super) fn compile(condition: &config::Condition, at: &FieldPath) -> Result<Condition, Located> {
    let values = Values { condition, at };
    let key = condition.key.as_str();
    let unsupported = |problem: Problem| Err((at.field("key"), problem));
    Ok(match key {
        "source.ip" => Condition::SourceIp(values.parse(cidr)?),
        "remote.ip" => Condition::RemoteIp(values.parse(cidr)?),
        "destination.ip" => Condition::DestinationIp(values.parse(cidr)?),
        "destination.port" => Condition::DestinationPort(values.parse(port)?),
        "source.namespace" => Condition::SourceNamespace(values.parse(pattern)?),
        "source.principal" => Condition::SourcePrincipal(values.parse(pattern)?),
        "connection.sni" => Condition::Sni(values.parse(pattern)?),
        "request.auth.principal" => Condition::RequestPrincipal(values.parse(jwt_principal)?),
        "request.auth.audiences" => Condition::Audiences(values.parse(pattern)?),
        "request.auth.presenter" => Condition::Presenter(values.parse(pattern)?),
        _ if key.starts_with("experimental.envoy.filters.") => {
            return unsupported(Problem::Experimental(key.to_owned()));
        }
        _ => {
            if let Some(brackets) = key.strip_prefix("request.headers") {
                let Some(name) = header(brackets) else {
                    return unsupported(Problem::HeaderName(key.to_owned()));
                };
                Condition::Header(name, values.parse(pattern)?)
            } else if let Some(brackets) = key.strip_prefix("request.auth.claims") {
                let Some(path) = claim_path(brackets) else {
                    return unsupported(Problem::ClaimPath(key.to_owned()));
                };
                Condition::Claim(path, values.parse(pattern)?)
            } else {
                return unsupported(Problem::UnknownKey(key.to_owned()));
            }
        }
    })
}

/// A condition's `values` and `notValues`.
struct Values<'c> {
    condition: &'c config::Condition,
    at: &'c FieldPath,
}

impl Values<'_> {
    fn parse<M>(&self, parse: impl Fn(&str) -> Result<M, Problem>) -> Result<Field<M>, Located> {
        let c = self.condition;
        field(
            ["values", "notValues"],
            [&c.values, &c.not_values],
            self.at,
            parse,
        )
    }
}

/// `[User-Agent]`: header names are case-insensitive, so they are stored lower-case.
fn header(brackets: &str) -> Option<Header> {
    let name = brackets
        .strip_prefix('[')?
        .strip_suffix(']')?
        .to_ascii_lowercase();
    match name.as_str() {
        ":authority" | "host" => Some(Header::Authority),
        ":method" => Some(Header::Method),
        ":path" => Some(Header::Path),
        _ => HeaderName::from_bytes(name.as_bytes())
            .ok()
            .map(Header::Named),
    }
}

/// `[a]`, or `[a][b]` for nested claims, as Istio's `extractNameInNestedBrackets` reads it.
fn claim_path(mut brackets: &str) -> Option<Vec<Box<str>>> {
    let mut path = Vec::new();
    while !brackets.is_empty() {
        let (name, rest) = brackets.strip_prefix('[')?.split_once(']')?;
        if name.is_empty() || name.contains('[') {
            return None;
        }
        path.push(name.into());
        brackets = rest;
    }
    (!path.is_empty()).then_some(path)
}

impl Condition {
    pub(super) fn is_http_only(&self) -> bool {
        matches!(
            self,
            Self::Header(..)
                | Self::RequestPrincipal(_)
                | Self::Audiences(_)
                | Self::Presenter(_)
                | Self::Claim(..)
        )
    }

    pub(super) fn matches(&self, facts: &Facts<'_>) -> bool {
        match self {
            Self::SourceIp(f) => f.matches(|c| c.contains(facts.source_ip)),
            Self::RemoteIp(f) => f.matches(|c| c.contains(facts.remote_ip)),
            Self::DestinationIp(f) => f.matches(|c| c.contains(facts.destination_ip)),
            Self::DestinationPort(f) => f.matches(|p| *p == facts.destination_port),
            Self::SourceNamespace(f) => f.matches(|p| namespace(facts, p)),
            Self::SourcePrincipal(f) => f.matches(|p| principal(facts, p)),
            Self::Sni(f) => f.matches(|p| facts.sni.is_some_and(|sni| p.matches(sni))),
            Self::Header(h, f) => f.matches_http(facts, |p| header_matches(facts, h, p)),
            Self::RequestPrincipal(f) => f.matches_http(facts, |p| request_principal(facts, p)),
            Self::Audiences(f) => f.matches_http(facts, |p| claim_matches(facts, &["aud"], p)),
            Self::Presenter(f) => f.matches_http(facts, |p| claim_matches(facts, &["azp"], p)),
            Self::Claim(path, f) => f.matches_http(facts, |p| claim_matches(facts, path, p)),
        }
    }
}

/// Istio's header matcher: `*` is Envoy's `present_match`, true even for an empty value.
fn header_matches(facts: &Facts<'_>, header: &Header, pattern: &Pattern) -> bool {
    let Some(http) = facts.http.as_ref() else {
        return false;
    };
    let value = match header {
        Header::Named(name) => http.header(name),
        Header::Authority => Some(http.authority.into()),
        Header::Method => Some(http.method.into()),
        Header::Path => Some(http.path.into()),
    };
    match (pattern, value) {
        (_, None) => false,
        (Pattern::Present, Some(_)) => true,
        (pattern, Some(value)) => pattern.matches(&value),
    }
}

/// A string claim matches as a string; a list claim when one of its strings does (Istio
/// supports "string typed and list-of-string typed JWT claims"). Other JSON never matches.
fn claim_matches(facts: &Facts<'_>, path: &[impl AsRef<str>], pattern: &Pattern) -> bool {
    let Some(mut value) = facts.claims else {
        return false;
    };
    for key in path {
        match value.get(key.as_ref()) {
            Some(inner) => value = inner,
            None => return false,
        }
    }
    match value {
        Value::String(s) => pattern.matches(s),
        Value::Array(items) => items
            .iter()
            .any(|item| item.as_str().is_some_and(|s| pattern.matches(s))),
        _ => false,
    }
}
