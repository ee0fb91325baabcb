//! A snapshot's listener -> [`model::Listener`]: the protocol settled where it can be, the
//! references checked.

use super::{Errors, route};
use crate::config::RouteDestination;
use crate::model::{
    self, DEFAULT_DETECT_TIMEOUT, DEFAULT_SERVER_FIRST_PORTS, Detect, ListenerKind, ProxyConfig,
};
use crate::snapshot::{AppProtocol, ListenerProtocol, ListenerSpec};

/// A listener, its protocol settled: an AUTO listener whose `appProtocol` is known compiles
/// to HTTP or TCP, so the proxy sniffs only when it has to.
pub(super) fn listener(
    spec: &ListenerSpec,
    path: &str,
    config: &ProxyConfig,
    errors: &mut Errors,
) -> Option<model::Listener> {
    if let Some(tls) = &spec.tls {
        return super::gateway::listener(spec, tls, path, config, errors);
    }
    let hint = spec.app_protocol.map(AppProtocol::is_http);
    let kind = match (spec.protocol, hint) {
        (ListenerProtocol::Http, Some(false)) | (ListenerProtocol::Tcp, Some(true)) => {
            errors.push(
                format!("{path}.appProtocol"),
                "contradicts the listener's protocol: set protocol AUTO (the hint then decides) or make them agree",
            );
            return None;
        }
        (ListenerProtocol::Http, _) | (ListenerProtocol::Auto, Some(true)) => ListenerKind::Http {
            route_config: route_config(spec, path, config, errors)?,
        },
        (ListenerProtocol::Tcp, _) | (ListenerProtocol::Auto, Some(false)) => ListenerKind::Tcp {
            routes: tcp_routes(spec, path, errors)?,
        },
        (ListenerProtocol::Auto, None) => {
            let route_config = route_config(spec, path, config, errors);
            let routes = tcp_routes(spec, path, errors);
            ListenerKind::Auto {
                route_config: route_config?,
                routes: routes?,
                detect: detect(spec, path, errors)?,
            }
        }
    };
    Some(model::Listener {
        name: spec.name.clone(),
        address: spec.address,
        kind,
        inbound: spec.inbound,
    })
}

/// The listener's route config, which must exist.
pub(super) fn route_config(
    spec: &ListenerSpec,
    path: &str,
    config: &ProxyConfig,
    errors: &mut Errors,
) -> Option<String> {
    match &spec.route_config {
        Some(name) if config.route_configs.contains_key(name) => Some(name.clone()),
        Some(name) => {
            errors.push(
                format!("{path}.routeConfig"),
                format!("no route config named {name:?}"),
            );
            None
        }
        None => {
            errors.push(
                format!("{path}.routeConfig"),
                "a listener that serves HTTP needs a routeConfig",
            );
            None
        }
    }
}

/// The listener's TCP destinations: at least one, or every connection would be dropped.
fn tcp_routes(
    spec: &ListenerSpec,
    path: &str,
    errors: &mut Errors,
) -> Option<Vec<model::WeightedDestination>> {
    if spec.tcp_route.is_empty() {
        errors.push(
            format!("{path}.tcpRoute"),
            "a listener that forwards TCP needs at least one tcpRoute destination",
        );
        return None;
    }
    let destinations: Vec<_> = spec.tcp_route.iter().map(tcp_destination).collect();
    Some(route::weighted(&destinations))
}

fn detect(spec: &ListenerSpec, path: &str, errors: &mut Errors) -> Option<Detect> {
    let timeout = match spec.detect_timeout {
        None => DEFAULT_DETECT_TIMEOUT,
        Some(timeout) => match timeout.to_std().filter(|t| !t.is_zero()) {
            Some(timeout) => timeout,
            None => {
                errors.push(
                    format!("{path}.detectTimeout"),
                    "must be positive: a client that sends nothing is only known after it",
                );
                return None;
            }
        },
    };
    let mut server_first_ports = DEFAULT_SERVER_FIRST_PORTS.to_vec();
    server_first_ports.extend(&spec.server_first_ports);
    server_first_ports.sort_unstable();
    server_first_ports.dedup();
    Some(Detect {
        timeout,
        server_first_ports,
    })
}

pub(super) fn tcp_destination(route: &RouteDestination) -> (model::Destination, Option<u32>) {
    (route::destination(&route.destination), route.weight)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::compile::compile;
    use crate::model::{DEFAULT_DETECT_TIMEOUT, ListenerKind};
    use crate::snapshot::Snapshot;

    /// A snapshot with one route config, one cluster and the given listener (YAML mapping).
    fn with_listener(listener: &str) -> Snapshot {
        let text = format!(
            r#"
listeners:
- {listener}
routeConfigs:
- {{name: web, virtualHosts: [{{name: web, domains: ["*"]}}]}}
clusters:
- {{host: db, port: 5432, endpoints: [{{address: "127.0.0.1:5432"}}]}}
"#
        );
        Snapshot::from_yaml(&text).expect("parses")
    }

    fn kind(listener: &str) -> ListenerKind {
        let config = compile(&with_listener(listener)).expect("compiles");
        config.listeners[0].kind.clone()
    }

    fn errors(listener: &str) -> Vec<(String, String)> {
        compile(&with_listener(listener))
            .expect_err("refused")
            .0
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect()
    }

    const AUTO: &str = "{name: l, address: \"127.0.0.1:0\", protocol: AUTO, routeConfig: web, tcpRoute: [{destination: {host: db}}]";

    #[test]
    fn auto_keeps_both_paths_and_merges_server_first_ports_with_the_defaults() {
        let ListenerKind::Auto {
            route_config,
            routes,
            detect,
        } = kind(&format!("{AUTO}, serverFirstPorts: [4444, 3306]}}"))
        else {
            panic!("auto")
        };
        assert_eq!(route_config, "web");
        assert_eq!(routes[0].destination.host, "db");
        assert_eq!(routes[0].weight, 100);
        assert_eq!(detect.timeout, DEFAULT_DETECT_TIMEOUT);
        assert_eq!(
            detect.server_first_ports,
            [25, 3306, 4444, 5432, 6379, 27017]
        );
    }

    #[test]
    fn auto_takes_a_detect_timeout_and_refuses_zero() {
        let ListenerKind::Auto { detect, .. } = kind(&format!("{AUTO}, detectTimeout: 2s}}"))
        else {
            panic!("auto")
        };
        assert_eq!(detect.timeout, Duration::from_secs(2));
        let refused = errors(&format!("{AUTO}, detectTimeout: 0s}}"));
        assert_eq!(refused[0].0, "listeners[0].detectTimeout", "{refused:?}");
    }

    #[test]
    fn an_app_protocol_hint_settles_auto_without_sniffing() {
        for http in ["http", "http2", "grpc", "grpc-web"] {
            let kind = kind(&format!("{AUTO}, appProtocol: {http}}}"));
            assert!(
                matches!(kind, ListenerKind::Http { .. }),
                "{http}: {kind:?}"
            );
        }
        for opaque in ["tcp", "tls", "https", "mysql", "mongo", "redis"] {
            let kind = kind(&format!("{AUTO}, appProtocol: {opaque}}}"));
            assert!(
                matches!(kind, ListenerKind::Tcp { .. }),
                "{opaque}: {kind:?}"
            );
        }
        // Only what the hint's path needs is required.
        let kind = kind(
            "{name: l, address: \"127.0.0.1:0\", protocol: AUTO, appProtocol: tcp, tcpRoute: [{destination: {host: db}}]}",
        );
        assert!(matches!(kind, ListenerKind::Tcp { .. }));
    }

    #[test]
    fn a_hint_that_contradicts_the_protocol_is_refused() {
        let refused =
            errors("{name: l, address: \"127.0.0.1:0\", routeConfig: web, appProtocol: mysql}");
        assert_eq!(refused[0].0, "listeners[0].appProtocol", "{refused:?}");
        assert!(refused[0].1.contains("AUTO"), "{refused:?}");
        let refused = errors(
            "{name: l, address: \"127.0.0.1:0\", protocol: TCP, appProtocol: grpc, tcpRoute: [{destination: {host: db}}]}",
        );
        assert_eq!(refused[0].0, "listeners[0].appProtocol", "{refused:?}");
    }

    #[test]
    fn auto_needs_both_a_route_config_and_a_tcp_route() {
        let refused = errors("{name: l, address: \"127.0.0.1:0\", protocol: AUTO}");
        let paths: Vec<&str> = refused.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["listeners[0].routeConfig", "listeners[0].tcpRoute"],
            "both named in one pass"
        );
    }

    #[test]
    fn a_tcp_listener_without_destinations_is_refused() {
        let refused = errors("{name: l, address: \"127.0.0.1:0\", protocol: TCP}");
        assert_eq!(refused[0].0, "listeners[0].tcpRoute", "{refused:?}");
    }

    #[test]
    fn auto_tcp_destinations_must_resolve() {
        let refused = errors(
            "{name: l, address: \"127.0.0.1:0\", protocol: AUTO, routeConfig: web, tcpRoute: [{destination: {host: nowhere}}]}",
        );
        assert!(
            refused
                .iter()
                .any(|(p, m)| p == "listener \"l\"" && m.contains("nowhere")),
            "{refused:?}"
        );
    }
}
