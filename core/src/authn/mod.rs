//! Request authentication: Istio's RequestAuthentication, a JWT checked per request.
//!
//! Istio's semantics (<https://istio.io/latest/docs/reference/config/security/request_authentication/>),
//! as Envoy's `jwt_authn` filter with `requires_any` of the providers and `allow_missing`:
//!
//! - The rules of every RequestAuthentication that selects the workload are merged.
//! - A token is looked for where its rules say (`fromHeaders`, `fromParams`, `fromCookies`);
//!   a rule that says nothing reads `Authorization: Bearer <token>` and the `access_token`
//!   query parameter.
//! - **No token** anywhere: the request goes on, with no request principal; an
//!   AuthorizationPolicy decides whether that is enough.
//! - **A token** is checked by the rule of its `iss` (among those that read the place it
//!   was found): signature against the rule's JWKS, `exp` and `nbf` with 60 s of clock
//!   skew, `aud` against the rule's `audiences` when it lists any. One valid token admits
//!   the request; otherwise the request is refused (401), also when no rule names the
//!   token's issuer.
//! - After success the token is removed from the header it came in unless
//!   `forwardOriginalToken`, the payload is written base64url to `outputPayloadToHeader`,
//!   and `outputClaimToHeaders` copies claims into headers.

pub mod issuer;
mod jwks;
mod token;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

pub use jwks::{Jwks, JwksError};
use token::Token;

use crate::config::{JwtRule, RequestAuthenticationSpec};

/// How far `exp` and `nbf` may be off: Envoy's default `clock_skew_seconds`.
pub const CLOCK_SKEW_SECONDS: u64 = 60;

/// The compiled JWT rules of one workload; empty when no RequestAuthentication selects it.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    providers: Vec<Provider>,
}

#[derive(Debug, Clone)]
struct Provider {
    /// `namespace/name` of the RequestAuthentication, for logs.
    policy: String,
    issuer: String,
    audiences: Vec<String>,
    /// The keys, or why there are none (the JWKS could not be fetched or parsed): tokens
    /// of this issuer are then refused, as Istio does.
    keys: Result<Jwks, String>,
    locations: Vec<Location>,
    forward: bool,
    payload_header: Option<HeaderName>,
    claim_headers: Vec<(HeaderName, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Header { name: HeaderName, prefix: String },
    Param(String),
    Cookie(String),
}

/// What the request's tokens come to.
#[derive(Debug)]
pub enum Outcome {
    /// No token where any rule looks: authorization decides with no request principal.
    NoToken,
    Authenticated(Authenticated),
    /// A token was there and none was valid: 401.
    Refused(Refusal),
}

#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The verified payload: `request.auth.claims`, and the request principal `iss/sub`.
    pub claims: Value,
    pub policy: String,
}

#[derive(Debug, Clone)]
pub struct Refusal {
    /// The RequestAuthentication whose rule refused it; `None` for an unknown issuer.
    pub policy: Option<String>,
    pub failure: Failure,
}

/// Why a token was refused; the texts are Envoy's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("Jwt is not in the form of Header.Payload.Signature: {0}")]
    Malformed(String),
    #[error("Jwt has no iss claim")]
    MissingIssuer,
    #[error("Jwt issuer is not configured: {0}")]
    UnknownIssuer(String),
    #[error("Jwks for issuer {issuer} is not available: {reason}")]
    NoKeys { issuer: String, reason: String },
    #[error("Jwks doesn't have key to match kid or alg from Jwt (alg {alg}, kid {kid:?})")]
    NoKey { alg: String, kid: Option<String> },
    #[error("Jwt verification fails")]
    BadSignature,
    #[error("Jwt is expired")]
    Expired,
    #[error("Jwt not yet valid")]
    NotYetValid,
    #[error("Audiences in Jwt are not allowed")]
    Audience,
}

impl Failure {
    /// A short label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::Malformed(_) => "malformed",
            Failure::MissingIssuer => "missing_issuer",
            Failure::UnknownIssuer(_) => "unknown_issuer",
            Failure::NoKeys { .. } => "jwks_unavailable",
            Failure::NoKey { .. } => "no_matching_key",
            Failure::BadSignature => "bad_signature",
            Failure::Expired => "expired",
            Failure::NotYetValid => "not_yet_valid",
            Failure::Audience => "audience",
        }
    }
}

/// A rule the proxy cannot apply; pilot's validation catches these first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{policy}: {field}: {problem}")]
pub struct CompileError {
    pub policy: String,
    pub field: String,
    pub problem: String,
}

impl Authenticator {
    /// Compiles the `(namespace/name, spec)` RequestAuthentications selecting a workload.
    /// A JWKS that is missing or does not parse is not an error here: its issuer's tokens
    /// are refused, naming why.
    pub fn compile(policies: &[(String, RequestAuthenticationSpec)]) -> Result<Self, CompileError> {
        let mut providers = Vec::new();
        for (policy, spec) in policies {
            for (i, rule) in spec.jwt_rules.iter().enumerate() {
                let at = format!("spec.jwtRules[{i}]");
                let error = |field: String, problem: String| CompileError {
                    policy: policy.clone(),
                    field,
                    problem,
                };
                providers.push(provider(policy, rule, &at).map_err(|(f, p)| error(f, p))?);
            }
        }
        Ok(Self { providers })
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Checks the request's tokens at `now` and, on success, rewrites its headers as the
    /// rule says (token removed, payload and claims written).
    pub fn authenticate(&self, parts: &mut Parts, now: SystemTime) -> Outcome {
        let mut found: Vec<(String, Vec<usize>)> = Vec::new();
        for (index, provider) in self.providers.iter().enumerate() {
            for location in &provider.locations {
                let Some(token) = location.extract(parts) else {
                    continue;
                };
                match found.iter_mut().find(|(t, _)| *t == token) {
                    Some((_, readers)) => readers.push(index),
                    None => found.push((token, vec![index])),
                }
            }
        }
        if found.is_empty() {
            return Outcome::NoToken;
        }
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut first_refusal = None;
        for (text, readers) in &found {
            match self.check(text, readers, now) {
                Ok((provider, claims)) => {
                    provider.rewrite(parts, text, &claims);
                    return Outcome::Authenticated(Authenticated {
                        claims,
                        policy: provider.policy.clone(),
                    });
                }
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        Outcome::Refused(first_refusal.unwrap_or(Refusal {
            policy: None,
            failure: Failure::Malformed("empty".into()),
        }))
    }

    fn check(
        &self,
        text: &str,
        readers: &[usize],
        now: u64,
    ) -> Result<(&Provider, Value), Refusal> {
        let refuse = |policy: Option<&str>, failure| Refusal {
            policy: policy.map(str::to_owned),
            failure,
        };
        let token = Token::decode(text).map_err(|f| refuse(None, f))?;
        let issuer = token
            .issuer()
            .ok_or_else(|| refuse(None, Failure::MissingIssuer))?;
        let provider = readers
            .iter()
            .map(|&i| &self.providers[i])
            .find(|p| p.issuer == issuer)
            .ok_or_else(|| refuse(None, Failure::UnknownIssuer(issuer.to_owned())))?;
        let refused = |failure| refuse(Some(&provider.policy), failure);
        let keys = provider.keys.as_ref().map_err(|reason| {
            refused(Failure::NoKeys {
                issuer: issuer.to_owned(),
                reason: reason.clone(),
            })
        })?;
        token.verify(keys).map_err(refused)?;
        check_times(&token.payload, now).map_err(refused)?;
        if !provider.audiences.is_empty() && !audience_matches(&token.payload, &provider.audiences)
        {
            return Err(refused(Failure::Audience));
        }
        Ok((provider, token.payload))
    }
}

fn provider(policy: &str, rule: &JwtRule, at: &str) -> Result<Provider, (String, String)> {
    let header_name = |field: String, name: &str| {
        HeaderName::try_from(name.to_ascii_lowercase())
            .map_err(|_| (field, format!("{name:?} is not a valid header name")))
    };
    let mut locations = Vec::new();
    for (j, header) in rule.from_headers.iter().enumerate() {
        locations.push(Location::Header {
            name: header_name(format!("{at}.fromHeaders[{j}].name"), &header.name)?,
            prefix: header.prefix.clone().unwrap_or_default(),
        });
    }
    locations.extend(rule.from_params.iter().cloned().map(Location::Param));
    locations.extend(rule.from_cookies.iter().cloned().map(Location::Cookie));
    if locations.is_empty() {
        locations = vec![
            Location::Header {
                name: http::header::AUTHORIZATION,
                prefix: "Bearer ".into(),
            },
            Location::Param("access_token".into()),
        ];
    }
    let payload_header = rule
        .output_payload_to_header
        .as_deref()
        .map(|h| header_name(format!("{at}.outputPayloadToHeader"), h))
        .transpose()?;
    let mut claim_headers = Vec::new();
    for (j, c) in rule.output_claim_to_headers.iter().enumerate() {
        let name = header_name(format!("{at}.outputClaimToHeaders[{j}].header"), &c.header)?;
        claim_headers.push((name, c.claim.clone()));
    }
    let keys = match &rule.jwks {
        Some(text) => Jwks::parse(text).map_err(|e| e.to_string()),
        None => Err(match &rule.jwks_uri {
            Some(uri) => format!("the keys at {uri} have not been fetched"),
            None => "the rule has neither jwks nor jwksUri".to_owned(),
        }),
    };
    Ok(Provider {
        policy: policy.to_owned(),
        issuer: rule.issuer.clone(),
        audiences: rule.audiences.clone(),
        keys,
        locations,
        forward: rule.forward_original_token,
        payload_header,
        claim_headers,
    })
}

impl Location {
    fn extract(&self, parts: &Parts) -> Option<String> {
        match self {
            Location::Header { name, prefix } => parts.headers.get_all(name).iter().find_map(|v| {
                let value = v.to_str().ok()?.trim();
                // The scheme of `Authorization: Bearer` is case-insensitive (RFC 9110).
                let rest = match value.get(..prefix.len()) {
                    Some(head) if head.eq_ignore_ascii_case(prefix) => &value[prefix.len()..],
                    _ => return None,
                };
                let token = rest.trim();
                (!token.is_empty()).then(|| token.to_owned())
            }),
            Location::Param(name) => parts.uri.query()?.split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key == name && !value.is_empty()).then(|| value.to_owned())
            }),
            Location::Cookie(name) => parts
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    (key == name && !value.is_empty()).then(|| value.to_owned())
                }),
        }
    }
}

impl Provider {
    fn rewrite(&self, parts: &mut Parts, token: &str, claims: &Value) {
        if !self.forward {
            for location in &self.locations {
                if let Location::Header { name, .. } = location
                    && parts
                        .headers
                        .get_all(name)
                        .iter()
                        .any(|v| v.to_str().is_ok_and(|v| v.contains(token)))
                {
                    parts.headers.remove(name);
                }
            }
        }
        if let Some(header) = &self.payload_header {
            let encoded = URL_SAFE_NO_PAD.encode(claims.to_string());
            if let Ok(value) = HeaderValue::from_str(&encoded) {
                parts.headers.insert(header.clone(), value);
            }
        }
        for (header, claim) in &self.claim_headers {
            let text = match claims.get(claim) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                _ => continue,
            };
            if let Ok(value) = HeaderValue::from_str(&text) {
                parts.headers.insert(header.clone(), value);
            }
        }
    }
}

fn check_times(payload: &Value, now: u64) -> Result<(), Failure> {
    let seconds = |claim: &str| payload.get(claim).and_then(Value::as_f64);
    if let Some(exp) = seconds("exp")
        && (now as f64) > exp + CLOCK_SKEW_SECONDS as f64
    {
        return Err(Failure::Expired);
    }
    if let Some(nbf) = seconds("nbf")
        && (now as f64) + (CLOCK_SKEW_SECONDS as f64) < nbf
    {
        return Err(Failure::NotYetValid);
    }
    Ok(())
}

/// `aud` is a string or a list of strings (RFC 7519 §4.1.3).
fn audience_matches(payload: &Value, accepted: &[String]) -> bool {
    match payload.get("aud") {
        Some(Value::String(aud)) => accepted.contains(aud),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| accepted.iter().any(|a| a == aud)),
        _ => false,
    }
}
