//! Why a set of AuthorizationPolicies could not be compiled.

use crate::validate::FieldPath;

/// A policy that cannot be enforced as written: which one, where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AuthorizationPolicy {policy}: {field}: {problem}")]
pub struct AuthzError {
    /// `namespace/name`.
    pub policy: String,
    /// e.g. `spec.rules[0].from[1].source.ipBlocks[2]`.
    pub field: FieldPath,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(
        "action CUSTOM delegates to an external authorization provider, which mesh does not support yet; use ALLOW or DENY"
    )]
    Custom,
    #[error("value must not be empty")]
    EmptyValue,
    #[error("{0:?} is not an IP address or CIDR block; write e.g. 10.0.0.1 or 10.0.0.0/16")]
    Ip(String),
    #[error("{0:?} is not a port; write a number in 1..65535")]
    Port(String),
    #[error(
        "{0:?} is not a service account; write <namespace>/<name>, or <name> for the policy's namespace, without wildcards"
    )]
    ServiceAccount(String),
    #[error("{path:?} is not a valid path template: {why}")]
    PathTemplate { path: String, why: &'static str },
    #[error("{0:?} is not a valid HTTP header name")]
    HeaderName(String),
    #[error(
        "key {0:?} must name claims in brackets, e.g. request.auth.claims[groups] or request.auth.claims[realm][roles]"
    )]
    ClaimPath(String),
    #[error(
        "key {0:?} is not supported by mesh; use request.headers[...] or request.auth.claims[...] instead"
    )]
    Experimental(String),
    #[error(
        "key {0:?} is not a condition mesh knows; see https://istio.io/latest/docs/reference/config/security/conditions/"
    )]
    UnknownKey(String),
}
