//! How Istio names hosts: short names resolve to FQDNs in the namespace of the object that
//! wrote them, and a wildcard host covers the hosts under it. Shared by validation, pilot's
//! translation and the proxy's route matching, so they agree.

/// The cluster's DNS suffix that short names resolve under.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// The FQDN a host names when written in `namespace`: short names (no dot) are expanded
/// to `name.namespace.svc.cluster.local`, as Istio does; the result is lower case without
/// a trailing dot.
pub fn resolve(host: &str, namespace: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.contains('.') || host == "*" || host.starts_with('*') {
        host
    } else {
        format!("{host}.{namespace}.{CLUSTER_DOMAIN}")
    }
}

/// Whether host `pattern` (possibly a wildcard: `*`, `*.example.com`, `*example.com`)
/// covers the concrete or wildcard host `host`. Both must be resolved (lower case).
pub fn covers(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        None => pattern == host,
        Some("") => true,
        Some(suffix) => match host.strip_prefix('*') {
            // A wildcard host is covered only by a wildcard at least as wide.
            Some(host_suffix) => host_suffix.ends_with(suffix),
            None => host.len() > suffix.len() && host.ends_with(suffix),
        },
    }
}
