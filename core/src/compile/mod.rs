//! Compiles a [`Snapshot`] into the runtime model ([`ProxyConfig`]), once, when it arrives:
//! regexes compiled, header names parsed, Istio's defaults applied, references checked.
//! A snapshot with any error is refused whole, with every error named by its path, so the
//! proxy can NACK it and keep serving the last good one.

mod cluster;
mod gateway;
mod listener;
mod route;
#[cfg(test)]
mod tests;
mod upstream_tls;

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{ListenerKind, ProxyConfig, RouteConfig, RouteTable};
use crate::snapshot::Snapshot;

use cluster::cluster;
use listener::listener;
use route::http_route;
pub use route::retry_on;

/// One reason a snapshot cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CompileError {
    /// Where in the snapshot, e.g. `routeConfigs[0].virtualHosts[1].routes[2].match[0].uri`.
    pub path: String,
    pub message: String,
}

/// Every error of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileErrors(pub Vec<CompileError>);

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&messages.join("; "))
    }
}

impl std::error::Error for CompileErrors {}

/// Collects errors while compiling goes on, so one pass reports them all.
#[derive(Default)]
pub(crate) struct Errors(Vec<CompileError>);

impl Errors {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(CompileError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// The value, or `None` after recording the error at `path`.
    pub(crate) fn check<T, E: fmt::Display>(
        &mut self,
        path: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|err| self.push(path, err.to_string())).ok()
    }
}

pub fn compile(snapshot: &Snapshot) -> Result<ProxyConfig, CompileErrors> {
    let mut errors = Errors::default();
    let mut config = ProxyConfig::default();
    config.version = snapshot.version.clone();
    for (i, spec) in snapshot.clusters.iter().enumerate() {
        let path = format!("clusters[{i}]");
        if let Some(cluster) = cluster(spec, &path, &mut errors)
            && !config.insert_cluster(cluster)
        {
            errors.push(
                path,
                format!("a second cluster for {}:{}", spec.host, spec.port),
            );
        }
    }
    for (i, spec) in snapshot.route_configs.iter().enumerate() {
        let path = format!("routeConfigs[{i}]");
        let tables = spec
            .virtual_hosts
            .iter()
            .enumerate()
            .map(|(j, host)| {
                let host_path = format!("{path}.virtualHosts[{j}]");
                let routes = host
                    .routes
                    .iter()
                    .enumerate()
                    .filter_map(|(k, r)| {
                        http_route(r, &format!("{host_path}.routes[{k}]"), &mut errors)
                    })
                    .collect();
                RouteTable {
                    name: host.name.clone(),
                    domains: host.domains.clone(),
                    routes,
                }
            })
            .collect();
        if config
            .route_configs
            .insert(spec.name.clone(), RouteConfig::new(tables))
            .is_some()
        {
            errors.push(path, format!("a second route config named {:?}", spec.name));
        }
    }
    for (i, spec) in snapshot.listeners.iter().enumerate() {
        if let Some(listener) = listener(spec, &format!("listeners[{i}]"), &config, &mut errors) {
            config.listeners.push(listener);
        }
    }
    check_destinations(&config, &mut errors);
    let policies = named(&snapshot.authorization_policies, |p| (&p.name, &p.spec));
    match crate::authz::Policies::compile(&policies) {
        Ok(authz) => config.authz = authz,
        Err(e) => policy_error(
            &mut errors,
            "authorizationPolicies",
            &policies,
            &e.policy,
            &e.field.to_string(),
            e.problem.to_string(),
        ),
    }
    let authentications = named(&snapshot.request_authentications, |p| (&p.name, &p.spec));
    match crate::authn::Authenticator::compile(&authentications) {
        Ok(authn) => config.authn = authn,
        Err(e) => policy_error(
            &mut errors,
            "requestAuthentications",
            &authentications,
            &e.policy,
            &e.field,
            e.problem,
        ),
    }
    if errors.0.is_empty() {
        Ok(config)
    } else {
        Err(CompileErrors(errors.0))
    }
}

/// A snapshot's named policies as the policy compilers take them: `(namespace/name, spec)`.
fn named<P, S: Clone>(policies: &[P], parts: impl Fn(&P) -> (&String, &S)) -> Vec<(String, S)> {
    policies
        .iter()
        .map(|p| {
            let (name, spec) = parts(p);
            (name.clone(), spec.clone())
        })
        .collect()
}

/// A policy compile error at its place in the snapshot: `<list>[<index>] (<name>).<field>`.
fn policy_error<S>(
    errors: &mut Errors,
    list: &str,
    policies: &[(String, S)],
    policy: &str,
    field: &str,
    problem: String,
) {
    let index = policies
        .iter()
        .position(|(name, _)| name == policy)
        .unwrap_or_default();
    errors.push(format!("{list}[{index}] ({policy}).{field}"), problem);
}

/// Every destination must resolve to a cluster: a typo must not become a silent 503.
fn check_destinations(config: &ProxyConfig, errors: &mut Errors) {
    let mut unresolved = BTreeMap::new();
    let routes = config.route_configs.iter().flat_map(|(name, rc)| {
        rc.tables().iter().flat_map(move |t| {
            t.routes.iter().enumerate().map(move |(i, r)| {
                let route = if r.name.is_empty() {
                    format!("routes[{i}]")
                } else {
                    format!("routes[{i}] ({:?})", r.name)
                };
                let place = format!("route config {name:?}, virtual host {:?}, {route}", t.name);
                (place, r)
            })
        })
    });
    for (place, route) in routes {
        if let crate::model::RouteAction::Route(destinations) = &route.action {
            for d in destinations {
                if resolve(config, &d.destination).is_err() {
                    unresolved.insert(place.clone(), d.destination.clone());
                }
            }
        }
    }
    for listener in &config.listeners {
        let routes: Vec<_> = match &listener.kind {
            ListenerKind::Tcp { routes } | ListenerKind::Auto { routes, .. } => {
                routes.iter().collect()
            }
            ListenerKind::GatewayTls(tls) => tls
                .tcp_routes
                .iter()
                .chain(tls.sni_routes.iter().flat_map(|r| &r.routes))
                .collect(),
            ListenerKind::Http { .. } => Vec::new(),
        };
        for d in routes {
            if resolve(config, &d.destination).is_err() {
                unresolved.insert(
                    format!("listener {:?}", listener.name),
                    d.destination.clone(),
                );
            }
        }
    }
    for (place, destination) in unresolved {
        if let Err(message) = resolve(config, &destination) {
            errors.push(place, message);
        }
    }
}

/// The cluster a destination goes to: its port's, or the host's only one.
pub fn resolve<'c>(
    config: &'c ProxyConfig,
    destination: &'c crate::model::Destination,
) -> Result<&'c crate::model::Cluster, String> {
    let host = &destination.host;
    let cluster = match destination.port {
        Some(port) => config
            .cluster(host, port)
            .ok_or_else(|| format!("no cluster for {host}:{port}"))?,
        None => {
            let clusters: Vec<_> = config.clusters_of(host).collect();
            match clusters.as_slice() {
                [only] => *only,
                [] => return Err(format!("no cluster for host {host}")),
                many => {
                    let ports: Vec<String> = many.iter().map(|c| c.port.to_string()).collect();
                    return Err(format!(
                        "{host} has ports {}: the destination must name one",
                        ports.join(", ")
                    ));
                }
            }
        }
    };
    if let Some(subset) = &destination.subset
        && cluster.subset(subset).is_none()
    {
        return Err(format!("{host} has no subset {subset:?}"));
    }
    Ok(cluster)
}
