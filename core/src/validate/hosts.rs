//! Host names as Istio accepts them: short names (`reviews`), FQDNs, wildcards in the first
//! label (`*.example.com`, `*`), and the `namespace/host` form of gateways and sidecars.
//!
//! Hosts compare case-insensitively (as Envoy matches domains), so upper case is accepted.

use super::names::is_dns_label;
use super::net::is_ip;

pub(crate) use crate::host::{covers, resolve};

/// A host that may carry a wildcard first label (`*`, `*.example.com`, `*-api.example.com`),
/// as in VirtualService, DestinationRule and ServiceEntry hosts.
pub(super) fn check_wildcard_domain(host: &str) -> Result<(), String> {
    check_shape(host)?;
    let (first, rest) = match host.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (host, None),
    };
    // Istio accepts `*`, `*label` and `*-label` as a first label.
    let bare = first
        .strip_prefix("*-")
        .or_else(|| first.strip_prefix('*'))
        .unwrap_or(first);
    let first_ok = first == "*" || is_host_label(bare);
    if !first_ok {
        return Err(bad_label(host, first));
    }
    match rest {
        Some(rest) => check_labels(host, rest),
        None => Ok(()),
    }
}

/// A host without wildcards: a short name or an FQDN.
pub(super) fn check_domain(host: &str) -> Result<(), String> {
    check_shape(host)?;
    check_labels(host, host)
}

/// Problems of form that deserve their own message: empty, spaces, scheme, path, port, a
/// wildcard out of place.
fn check_shape(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("host must not be empty; write a service name such as reviews or reviews.default.svc.cluster.local".into());
    }
    if host.len() > 255 {
        return Err(format!(
            "host {host:?} is too long (at most 255 characters)"
        ));
    }
    if host.chars().any(char::is_whitespace) {
        return Err(format!("host {host:?} contains whitespace; remove it"));
    }
    if host.contains("://") {
        return Err(format!(
            "host {host:?} must not include a scheme; write the host name only"
        ));
    }
    if host.contains('/') {
        return Err(format!(
            "host {host:?} must not include a path; write the host name only and match paths with match[].uri"
        ));
    }
    if host.contains(':') {
        return Err(format!(
            "host {host:?} must not include a port; write the host name only and select ports with port fields"
        ));
    }
    let wildcard_later = host.split('.').skip(1).any(|label| label.contains('*'));
    let wildcard_inside = host
        .split('.')
        .next()
        .is_some_and(|l| l.len() > 1 && l[1..].contains('*'));
    if wildcard_later || wildcard_inside {
        return Err(format!(
            "host {host:?} has a wildcard out of place; '*' is allowed only at the start of the first label, as in *.example.com"
        ));
    }
    Ok(())
}

/// Checks every label of `domain`, part of `host`; an empty last label (a trailing dot,
/// `example.com.`) is allowed as in DNS.
fn check_labels(host: &str, domain: &str) -> Result<(), String> {
    let labels: Vec<&str> = domain.split('.').collect();
    let last = labels.len() - 1;
    for (i, label) in labels.iter().enumerate() {
        if i == last && label.is_empty() && i > 0 {
            break;
        }
        if !is_host_label(label) {
            return Err(bad_label(host, label));
        }
    }
    let tld = labels
        .iter()
        .rev()
        .find(|l| !l.is_empty())
        .copied()
        .unwrap_or_default();
    if !tld.is_empty() && tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "host {host:?} is not a valid DNS name: its last label {tld:?} is all digits (an IP address is not allowed here)"
        ));
    }
    Ok(())
}

fn is_host_label(label: &str) -> bool {
    super::names::is_istio_label(label)
}

fn bad_label(host: &str, label: &str) -> String {
    format!(
        "host {host:?} is not a valid DNS name: label {label:?} must use letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
    )
}

/// Where a `namespace/host` entry appears: gateways accept the bare host and IPs too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    Gateway,
    Sidecar,
}

/// A gateway server host (`[namespace/]dnsName`) or a sidecar egress host (`namespace/dnsName`).
pub(super) fn check_namespaced_host(entry: &str, scope: Scope) -> Result<(), String> {
    let (namespace, host) = match (entry.split_once('/'), scope) {
        (Some((namespace, host)), _) => (Some(namespace), host),
        (None, Scope::Gateway) => (None, entry),
        (None, Scope::Sidecar) => {
            return Err(format!(
                "host {entry:?} must be of the form namespace/dnsName, e.g. ./{entry} (this namespace), */{entry} (any) or istio-system/*"
            ));
        }
    };
    if let Some(namespace) = namespace {
        let special = match scope {
            Scope::Gateway => matches!(namespace, "*" | "."),
            Scope::Sidecar => matches!(namespace, "*" | "." | "~"),
        };
        if namespace.is_empty() || host.is_empty() {
            return Err(format!(
                "host {entry:?} must name both a namespace and a DNS name, e.g. ./reviews.default.svc.cluster.local or */*"
            ));
        }
        if !special && !is_dns_label(namespace) {
            return Err(format!(
                "host {entry:?} has an invalid namespace {namespace:?}; use '*', '.', or a namespace name"
            ));
        }
    }
    if scope == Scope::Gateway && is_ip(host) {
        return Ok(());
    }
    if host != "*" && !host.contains('.') {
        return Err(format!(
            "host {entry:?} is a short name, which is not allowed here; use the fully qualified name, e.g. {host}.default.svc.cluster.local, or '*'"
        ));
    }
    if host != "*" && host.contains('*') && !host.starts_with("*.") {
        return Err(format!(
            "host {entry:?} has a partial wildcard; only '*' or a first label of '*' (*.example.com) is allowed here"
        ));
    }
    check_wildcard_domain(host)
}

#[cfg(test)]
mod tests;
