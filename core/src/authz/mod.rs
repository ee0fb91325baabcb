//! Authorization: Istio's AuthorizationPolicy, compiled once and evaluated per request.
//!
//! ```
//! use mesh_core::authz::{Policies, Request};
//! # fn demo(specs: &[(String, mesh_core::config::AuthorizationPolicySpec)]) {
//! let policies = Policies::compile(specs).expect("pilot validated them");
//! let request = Request {
//!     peer_identity: Some("spiffe://cluster.local/ns/default/sa/sleep"),
//!     jwt_claims: None,
//!     source_ip: "10.0.0.5".parse().unwrap(),
//!     remote_ip: None,
//!     destination: "10.0.1.1:8080".parse().unwrap(),
//!     sni: None,
//!     http: None, // a TCP connection; `HttpRequest::from_parts` for a request
//! };
//! let decision = policies.evaluate(&request);
//! if !decision.is_allowed() { /* 403, or close the connection */ }
//! # }
//! ```
//!
//! The semantics, with their sources:
//!
//! - **Order** (<https://istio.io/latest/docs/reference/config/security/authorization-policy/>):
//!   CUSTOM first (refused at compile time here, see [`Problem::Custom`]); then if any DENY
//!   policy matches, deny; if no ALLOW policy applies to the workload, allow; if any ALLOW
//!   policy matches, allow; else deny. AUDIT policies never change the decision; the first one
//!   that matches is reported in the [`Decision`].
//! - **Rules**: a policy matches when one of its rules does; `rules` unset never matches, so
//!   `spec: {}` is "allow nothing" (deny all) and a DENY without rules denies nothing, while
//!   `rules: [{}]` matches everything ("an empty rule is always matched"). A rule matches
//!   when one of its `from`, one of its `to` and all of its `when` match; an unset section
//!   matches anything. Within a source or operation every set field must match; a field
//!   matches when one of its values does and none of its `not` values do.
//! - **Missing attributes**: a request without mTLS has no principal or namespace, one without
//!   a JWT no request principal or claims. A value never matches a missing attribute, so a
//!   `not` form always does: `notNamespaces: [foo]` admits plaintext from `foo`, as Istio
//!   warns (<https://istio.io/latest/news/security/istio-security-2021-004/>).
//! - **Strings** are exact, prefix `abc*`, suffix `*abc` or presence `*` (non-empty); hosts
//!   compare case-insensitively; header presence `*` holds for an empty header too (Envoy's
//!   `present_match`). Principals are written without `spiffe://`; request principals
//!   (`<iss>/<sub>`) split at the pattern's last `/` as Istio does. Paths holding `{*}` or
//!   `{**}` are Envoy URI templates; paths never include the query.
//! - **TCP** (<https://istio.io/latest/docs/tasks/security/authorization/authz-tcp/>):
//!   `requestPrincipals`, `hosts`, `methods`, `paths` and the `request.*` conditions are
//!   HTTP-only. An ALLOW rule using one is invalid for TCP and never matches; a DENY (or AUDIT)
//!   rule ignores them and keeps its other fields, so it matches more ("due to its
//!   restrictive nature it denies all the traffic"): Istio's `checkError` in
//!   `pilot/pkg/security/authz/model/model.go`.
//! - **Conditions** (<https://istio.io/latest/docs/reference/config/security/conditions/>):
//!   every key but `experimental.envoy.filters.*`, which is refused; claims may be nested
//!   (`request.auth.claims[realm][roles]`) and match a string or any string of a list.

mod cidr;
mod compile;
mod condition;
mod decision;
mod error;
mod path;
mod pattern;
mod request;
mod rule;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use decision::{Decision, DenyReason, Matched};
pub use error::{AuthzError, Problem};
pub use request::{HttpRequest, Request};

use crate::config::AuthorizationPolicySpec;
use request::Facts;
use rule::Rule;

/// The AuthorizationPolicies that apply to one workload, compiled. The default (none) allows
/// everything, as a workload without policies does.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    allow: Vec<Policy>,
    deny: Vec<Policy>,
    audit: Vec<Policy>,
}

#[derive(Debug, Clone)]
struct Policy {
    name: Arc<str>,
    action: Action,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Allow,
    Deny,
    Audit,
}

impl Policies {
    /// Compiles `(namespace/name, spec)` pairs, as pilot picks them for a workload. Fails on
    /// the first policy mesh cannot enforce exactly, naming it and the field.
    pub fn compile(policies: &[(String, AuthorizationPolicySpec)]) -> Result<Self, AuthzError> {
        let mut compiled = Self::default();
        for (name, spec) in policies {
            let policy = compile::policy(name, spec)?;
            match policy.action {
                Action::Allow => compiled.allow.push(policy),
                Action::Deny => compiled.deny.push(policy),
                Action::Audit => compiled.audit.push(policy),
            }
        }
        Ok(compiled)
    }

    /// Whether no policy applies: every request is allowed and none audited.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty() && self.audit.is_empty()
    }

    /// Istio's decision for `request`; see the module docs.
    pub fn evaluate(&self, request: &Request<'_>) -> Decision {
        let facts = Facts::new(request);
        let audit = first_match(&self.audit, &facts);
        if let Some(denied) = first_match(&self.deny, &facts) {
            return Decision::Deny {
                reason: DenyReason::Denied(denied),
                audit,
            };
        }
        if self.allow.is_empty() {
            return Decision::Allow {
                policy: None,
                audit,
            };
        }
        match first_match(&self.allow, &facts) {
            Some(allowed) => Decision::Allow {
                policy: Some(allowed),
                audit,
            },
            None => Decision::Deny {
                reason: DenyReason::NotAllowed,
                audit,
            },
        }
    }
}

fn first_match(policies: &[Policy], facts: &Facts<'_>) -> Option<Matched> {
    policies.iter().find_map(|policy| {
        let strict = policy.action == Action::Allow;
        let rule = policy.rules.iter().position(|r| r.matches(facts, strict))?;
        Some(Matched {
            policy: policy.name.clone(),
            rule,
        })
    })
}
