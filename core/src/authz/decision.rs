//! The outcome of evaluating a request against a workload's policies.

use std::fmt;
use std::sync::Arc;

/// A policy rule that matched: what logs, metrics and `meshctl` explanations name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// `namespace/name`.
    pub policy: Arc<str>,
    /// The index of the first matching rule in the policy's `rules`.
    pub rule: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        /// The ALLOW policy that admitted the request; `None` when no ALLOW policy applies to
        /// the workload (and none denied it).
        policy: Option<Matched>,
        /// The first AUDIT policy that matched, if any: log it; it never changes the decision.
        audit: Option<Matched>,
    },
    Deny {
        reason: DenyReason,
        audit: Option<Matched>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// A DENY policy matched (the first, in the order the policies were given).
    Denied(Matched),
    /// ALLOW policies apply to the workload and none matched.
    NotAllowed,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }

    /// The AUDIT policy that matched, whatever the decision.
    pub fn audit(&self) -> Option<&Matched> {
        match self {
            Self::Allow { audit, .. } | Self::Deny { audit, .. } => audit.as_ref(),
        }
    }

    /// The policy that decided: the ALLOW that admitted or the DENY that refused.
    pub fn policy(&self) -> Option<&Matched> {
        match self {
            Self::Allow { policy, .. } => policy.as_ref(),
            Self::Deny {
                reason: DenyReason::Denied(matched),
                ..
            } => Some(matched),
            Self::Deny { .. } => None,
        }
    }
}

impl fmt::Display for Matched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rules[{}]", self.policy, self.rule)
    }
}

/// For access logs and `meshctl`: `allowed by ns/name rules[0]`, `denied: no ALLOW policy
/// matched`.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow { policy: None, .. } => f.write_str("allowed: no ALLOW policy applies"),
            Self::Allow {
                policy: Some(by), ..
            } => write!(f, "allowed by {by}"),
            Self::Deny {
                reason: DenyReason::Denied(by),
                ..
            } => write!(f, "denied by {by}"),
            Self::Deny {
                reason: DenyReason::NotAllowed,
                ..
            } => f.write_str("denied: no ALLOW policy matched"),
        }?;
        match self.audit() {
            Some(audit) => write!(f, " (audited by {audit})"),
            None => Ok(()),
        }
    }
}
