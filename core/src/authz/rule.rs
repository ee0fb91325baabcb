//! Compiled rules and how one matches: every section of a rule, any entry of a section,
//! every field of an entry, any value of a field and none of its `not` values.

use super::cidr::Cidr;
use super::condition::Condition;
use super::path::PathMatch;
use super::pattern::{JwtPrincipal, Pattern};
use super::request::Facts;

/// One field and its `not` form: `principals` and `notPrincipals`.
#[derive(Debug, Clone)]
pub(super) struct Field<M> {
    pub any_of: Vec<M>,
    pub none_of: Vec<M>,
}

impl<M> Field<M> {
    pub(super) fn is_set(&self) -> bool {
        !self.any_of.is_empty() || !self.none_of.is_empty()
    }

    /// An unset field matches everything. `test` is false for an attribute the request does
    /// not have, so a missing attribute fails `values` and passes `notValues`: Envoy's
    /// `not` of a failed match, which is why `notPrincipals` matches plaintext peers
    /// (ISTIO-SECURITY-2021-004).
    pub(super) fn matches(&self, test: impl Fn(&M) -> bool) -> bool {
        (self.any_of.is_empty() || self.any_of.iter().any(&test)) && !self.none_of.iter().any(&test)
    }

    /// [`Self::matches`] for a field Istio defines for HTTP only. On TCP it matches: an ALLOW
    /// rule that uses one never gets here (see [`Rule::matches`]), and a DENY or AUDIT rule
    /// is meant to be "more restrictive", Istio ignoring the field it cannot evaluate.
    pub(super) fn matches_http(&self, facts: &Facts<'_>, test: impl Fn(&M) -> bool) -> bool {
        facts.is_tcp() || self.matches(test)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Source {
    pub principals: Field<Pattern>,
    pub request_principals: Field<JwtPrincipal>,
    pub namespaces: Field<Pattern>,
    pub service_accounts: Field<ServiceAccount>,
    pub ip_blocks: Field<Cidr>,
    pub remote_ip_blocks: Field<Cidr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServiceAccount {
    pub namespace: Box<str>,
    pub name: Box<str>,
}

#[derive(Debug, Clone)]
pub(super) struct Operation {
    pub hosts: Field<Pattern>,
    pub ports: Field<u16>,
    pub methods: Field<Pattern>,
    pub paths: Field<PathMatch>,
}

#[derive(Debug, Clone)]
pub(super) struct Rule {
    /// Empty: any source. Likewise `to` and `when`.
    pub from: Vec<Source>,
    pub to: Vec<Operation>,
    pub when: Vec<Condition>,
    /// Whether any field or condition is HTTP-only (Istio's `requestPrincipals`, `hosts`,
    /// `methods`, `paths`, `request.*` keys), for TCP traffic.
    pub uses_http: bool,
}

impl Rule {
    /// `strict` is true for ALLOW: on TCP, Istio drops an ALLOW rule that uses an HTTP-only
    /// field, so it never matches ("the rule becomes invalid"); a DENY or AUDIT rule keeps its
    /// other fields and matches more.
    pub(super) fn matches(&self, facts: &Facts<'_>, strict: bool) -> bool {
        if strict && self.uses_http && facts.is_tcp() {
            return false;
        }
        any_or_empty(&self.from, |s| s.matches(facts))
            && any_or_empty(&self.to, |o| o.matches(facts))
            && self.when.iter().all(|c| c.matches(facts))
    }
}

fn any_or_empty<T>(entries: &[T], test: impl Fn(&T) -> bool) -> bool {
    entries.is_empty() || entries.iter().any(test)
}

impl Source {
    fn matches(&self, facts: &Facts<'_>) -> bool {
        self.principals.matches(|p| principal(facts, p))
            && self.namespaces.matches(|p| namespace(facts, p))
            && self
                .service_accounts
                .matches(|sa| service_account(facts, sa))
            && self.ip_blocks.matches(|c| c.contains(facts.source_ip))
            && self
                .remote_ip_blocks
                .matches(|c| c.contains(facts.remote_ip))
            && self
                .request_principals
                .matches_http(facts, |p| request_principal(facts, p))
    }
}

impl Operation {
    fn matches(&self, facts: &Facts<'_>) -> bool {
        let http = facts.http.as_ref();
        self.ports.matches(|port| *port == facts.destination_port)
            && self.hosts.matches_http(facts, |p| {
                http.is_some_and(|h| p.matches_ignore_case(h.authority))
            })
            && self
                .methods
                .matches_http(facts, |p| http.is_some_and(|h| p.matches(h.method)))
            && self
                .paths
                .matches_http(facts, |p| http.is_some_and(|h| p.matches(h.path)))
    }
}

pub(super) fn principal(facts: &Facts<'_>, pattern: &Pattern) -> bool {
    facts.principal.is_some_and(|p| pattern.matches(p))
}

pub(super) fn namespace(facts: &Facts<'_>, pattern: &Pattern) -> bool {
    facts.namespace.is_some_and(|ns| pattern.matches(ns))
}

fn service_account(facts: &Facts<'_>, sa: &ServiceAccount) -> bool {
    facts.namespace == Some(&*sa.namespace) && facts.service_account == Some(&*sa.name)
}

pub(super) fn request_principal(facts: &Facts<'_>, pattern: &JwtPrincipal) -> bool {
    facts
        .jwt_issuer_subject()
        .is_some_and(|(iss, sub)| pattern.matches(iss, sub))
}
