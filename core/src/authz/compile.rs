//! From the config API (`AuthorizationPolicySpec`) to matchers, once per config change: CIDRs
//! parsed, patterns split, ports as numbers, so evaluation only compares.

use std::sync::Arc;

use super::cidr::Cidr;
use super::condition;
use super::error::{AuthzError, Problem};
use super::path::PathMatch;
use super::pattern::{JwtPrincipal, Pattern};
use super::rule::{Field, Operation, Rule, ServiceAccount, Source};
use super::{Action, Policy};
use crate::config::{self, AuthorizationAction, AuthorizationPolicySpec};
use crate::validate::FieldPath;

/// A problem and where it is, before the policy's name is attached.
pub(super) type Located = (FieldPath, Problem);

/// Compiles one policy named `namespace/name`.
pub(super) fn policy(name: &str, spec: &AuthorizationPolicySpec) -> Result<Policy, AuthzError> {
    let at = FieldPath::spec();
    let located = |(field, problem): Located| AuthzError {
        policy: name.to_owned(),
        field,
        problem,
    };
    let action = match spec.action {
        AuthorizationAction::Allow => Action::Allow,
        AuthorizationAction::Deny => Action::Deny,
        AuthorizationAction::Audit => Action::Audit,
        // Skipping it would let through what the provider might refuse: refuse instead.
        AuthorizationAction::Custom => return Err(located((at.field("action"), Problem::Custom))),
    };
    // A bare service account is in the policy's own namespace.
    let namespace = name.split_once('/').map_or("", |(ns, _)| ns);
    let rules = spec
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule(r, &at.item("rules", i), namespace))
        .collect::<Result<_, _>>()
        .map_err(located)?;
    Ok(Policy {
        name: Arc::from(name),
        action,
        rules,
    })
}

fn rule(rule: &config::Rule, at: &FieldPath, namespace: &str) -> Result<Rule, Located> {
    let from: Vec<Source> = (rule.from.iter().enumerate())
        .map(|(i, f)| source(&f.source, &at.item("from", i).field("source"), namespace))
        .collect::<Result<_, _>>()?;
    let to: Vec<Operation> = (rule.to.iter().enumerate())
        .map(|(i, t)| operation(&t.operation, &at.item("to", i).field("operation")))
        .collect::<Result<_, _>>()?;
    let when: Vec<condition::Condition> = (rule.when.iter().enumerate())
        .map(|(i, c)| condition::compile(c, &at.item("when", i)))
        .collect::<Result<_, _>>()?;
    let uses_http = from.iter().any(|s| s.request_principals.is_set())
        || to
            .iter()
            .any(|o| o.hosts.is_set() || o.methods.is_set() || o.paths.is_set())
        || when.iter().any(condition::Condition::is_http_only);
    Ok(Rule {
        from,
        to,
        when,
        uses_http,
    })
}

fn source(s: &config::Source, at: &FieldPath, namespace: &str) -> Result<Source, Located> {
    let sa = |v: &str| service_account(v, namespace);
    Ok(Source {
        principals: field(
            ["principals", "notPrincipals"],
            [&s.principals, &s.not_principals],
            at,
            pattern,
        )?,
        request_principals: field(
            ["requestPrincipals", "notRequestPrincipals"],
            [&s.request_principals, &s.not_request_principals],
            at,
            jwt_principal,
        )?,
        namespaces: field(
            ["namespaces", "notNamespaces"],
            [&s.namespaces, &s.not_namespaces],
            at,
            pattern,
        )?,
        service_accounts: field(
            ["serviceAccounts", "notServiceAccounts"],
            [&s.service_accounts, &s.not_service_accounts],
            at,
            sa,
        )?,
        ip_blocks: field(
            ["ipBlocks", "notIpBlocks"],
            [&s.ip_blocks, &s.not_ip_blocks],
            at,
            cidr,
        )?,
        remote_ip_blocks: field(
            ["remoteIpBlocks", "notRemoteIpBlocks"],
            [&s.remote_ip_blocks, &s.not_remote_ip_blocks],
            at,
            cidr,
        )?,
    })
}

fn operation(o: &config::Operation, at: &FieldPath) -> Result<Operation, Located> {
    Ok(Operation {
        hosts: field(["hosts", "notHosts"], [&o.hosts, &o.not_hosts], at, pattern)?,
        ports: field(["ports", "notPorts"], [&o.ports, &o.not_ports], at, port)?,
        methods: field(
            ["methods", "notMethods"],
            [&o.methods, &o.not_methods],
            at,
            pattern,
        )?,
        paths: field(
            ["paths", "notPaths"],
            [&o.paths, &o.not_paths],
            at,
            PathMatch::parse,
        )?,
    })
}

/// Parses a field and its `not` form, named as YAML names them (`["ports", "notPorts"]`);
/// an error names the value, e.g. `notPorts[1]`.
pub(super) fn field<M>(
    names: [&str; 2],
    lists: [&Vec<String>; 2],
    at: &FieldPath,
    parse: impl Fn(&str) -> Result<M, Problem>,
) -> Result<Field<M>, Located> {
    let parse_list = |name: &str, values: &Vec<String>| {
        (values.iter().enumerate())
            .map(|(i, value)| {
                let here = || at.item(name, i);
                match value.is_empty() {
                    true => Err((here(), Problem::EmptyValue)),
                    false => parse(value).map_err(|problem| (here(), problem)),
                }
            })
            .collect::<Result<Vec<M>, Located>>()
    };
    Ok(Field {
        any_of: parse_list(names[0], lists[0])?,
        none_of: parse_list(names[1], lists[1])?,
    })
}

pub(super) fn pattern(value: &str) -> Result<Pattern, Problem> {
    Ok(Pattern::parse(value))
}

pub(super) fn jwt_principal(value: &str) -> Result<JwtPrincipal, Problem> {
    Ok(JwtPrincipal::parse(value))
}

pub(super) fn cidr(value: &str) -> Result<Cidr, Problem> {
    Cidr::parse(value).ok_or_else(|| Problem::Ip(value.to_owned()))
}

/// 1..=65535, digits only (Go's `ParseUint`, which Istio uses, takes no sign).
pub(super) fn port(value: &str) -> Result<u16, Problem> {
    let digits = value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<u16>() {
        Ok(port) if digits && port != 0 => Ok(port),
        _ => Err(Problem::Port(value.to_owned())),
    }
}

/// `ns/sa` or `sa`, exactly: Istio refuses wildcards here.
fn service_account(value: &str, namespace: &str) -> Result<ServiceAccount, Problem> {
    let (ns, name) = value.split_once('/').unwrap_or((namespace, value));
    let valid = |part: &str| !part.is_empty() && !part.contains(['/', '*']);
    match valid(ns) && valid(name) {
        true => Ok(ServiceAccount {
            namespace: ns.into(),
            name: name.into(),
        }),
        false => Err(Problem::ServiceAccount(value.to_owned())),
    }
}
