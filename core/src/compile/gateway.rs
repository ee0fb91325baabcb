//! A gateway listener's `tls` -> [`model::GatewayTls`]: each server's mode and the files
//! it needs checked here, so a mistake is a refused snapshot that names the server, not a
//! handshake that fails later.

use std::sync::Arc;

use super::listener::{route_config, tcp_destination};
use super::{Errors, route};
use crate::config::{ServerTlsMode, ServerTlsSettings};
use crate::model::{self, ListenerKind, ProxyConfig, SniRoute, TlsServer};
use crate::snapshot::{GatewayTlsSpec, ListenerSpec};

pub(super) fn listener(
    spec: &ListenerSpec,
    tls: &GatewayTlsSpec,
    path: &str,
    config: &ProxyConfig,
    errors: &mut Errors,
) -> Option<model::Listener> {
    let before = errors.0.len();
    if spec.inbound.is_some() {
        errors.push(
            format!("{path}.tls"),
            "a gateway TLS listener cannot also be an inbound listener: drop one of them",
        );
    }
    if tls.servers.is_empty() {
        errors.push(
            format!("{path}.tls.servers"),
            "needs at least one server: which certificate, or PASSTHROUGH",
        );
    }
    let route_config = match &spec.route_config {
        Some(_) => route_config(spec, path, config, errors),
        None => None,
    };
    let tcp_routes: Vec<_> = spec.tcp_route.iter().map(tcp_destination).collect();
    let servers: Vec<_> = tls
        .servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let at = format!("{path}.tls.servers[{i}]");
            check_server(&s.tls, &at, errors);
            let own = s.route_config.as_ref().filter(|name| {
                let known = config.route_configs.contains_key(*name);
                if !known {
                    errors.push(
                        format!("{at}.routeConfig"),
                        format!("no route config named {name:?}"),
                    );
                }
                known
            });
            let terminates = !matches!(
                s.tls.mode,
                ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
            );
            if terminates && own.is_none() && route_config.is_none() && tcp_routes.is_empty() {
                errors.push(
                    format!("{at}.routeConfig"),
                    "a server that terminates TLS needs a routeConfig (its own or the listener's, HTTPS) or the listener's tcpRoute (TLS)",
                );
            }
            TlsServer {
                hosts: s.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                tls: s.tls.clone(),
                route_config: own.cloned(),
            }
        })
        .collect();
    let sni_routes = tls
        .tls_routes
        .iter()
        .map(|r| SniRoute {
            sni_hosts: r
                .matches
                .iter()
                .flat_map(|m| m.sni_hosts.iter().map(|h| h.to_ascii_lowercase()))
                .collect(),
            routes: route::weighted(&r.route.iter().map(tcp_destination).collect::<Vec<_>>()),
        })
        .collect();
    if errors.0.len() > before {
        return None;
    }
    Some(model::Listener {
        name: spec.name.clone(),
        address: spec.address,
        kind: ListenerKind::GatewayTls(Arc::new(model::GatewayTls {
            servers,
            sni_routes,
            route_config,
            tcp_routes: route::weighted(&tcp_routes),
        })),
        inbound: None,
    })
}

/// What a server's mode needs: certificate and key files to terminate, a CA to verify
/// clients (MUTUAL). ISTIO_MUTUAL uses the proxy's own mesh certificate; PASSTHROUGH and
/// AUTO_PASSTHROUGH terminate nothing.
fn check_server(tls: &ServerTlsSettings, path: &str, errors: &mut Errors) {
    match tls.mode {
        ServerTlsMode::Passthrough
        | ServerTlsMode::AutoPassthrough
        | ServerTlsMode::IstioMutual => {
            return;
        }
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {}
    }
    // A credentialName is resolved by the proxy, from its credentials directory.
    if tls
        .credential_name
        .as_deref()
        .is_some_and(|n| !n.is_empty())
    {
        return;
    }
    let missing = |field: &str, value: &Option<String>, errors: &mut Errors| {
        if value.as_deref().is_none_or(str::is_empty) {
            errors.push(
                format!("{path}.tls.{field}"),
                "is required: set it to a PEM file path, or set credentialName",
            );
        }
    };
    missing("serverCertificate", &tls.server_certificate, errors);
    missing("privateKey", &tls.private_key, errors);
    if tls.mode != ServerTlsMode::Simple {
        missing("caCertificates", &tls.ca_certificates, errors);
    }
}
