//! The outbound route configuration: a virtual host per HTTP service port the proxy can
//! see, carrying the VirtualService for that host (or a default route to the service).
//!
//! Destinations are rewritten as the proxy needs them: short hosts resolved in the
//! VirtualService's namespace, and a missing port set to the port the request came in on
//! (Istio's rule), when the destination service has that port.

use mesh_core::config::{
    Destination, HttpRoute, HttpRouteDestination, Object, PortSelector, VirtualServiceSpec,
};
use mesh_core::host::resolve;
use mesh_core::snapshot::{RouteConfigSpec, VirtualHostSpec};

use super::listeners::OUTBOUND_ROUTE_CONFIG;
use super::{Scope, VisibleService};
use crate::index::Index;
use crate::registry::{Service, ServicePort};

const CLUSTER_SUFFIX: &str = ".svc.cluster.local";

pub fn outbound_route_config(
    index: &Index,
    scope: &Scope,
    services: &[VisibleService<'_>],
) -> RouteConfigSpec {
    let mut virtual_hosts = Vec::new();
    for visible in services {
        let service = visible.service;
        let http_ports: Vec<&ServicePort> = service
            .ports
            .iter()
            .filter(|p| p.protocol.is_none_or(|protocol| protocol.is_http()))
            .collect();
        let virtual_service = virtual_service_for(index, scope, &service.hostname);
        let vips = &service.addresses;
        for port in &http_ports {
            let routes = match virtual_service {
                Some(vs) => vs_routes(vs, port.number, services),
                None => vec![default_route(service, port.number)],
            };
            virtual_hosts.push(VirtualHostSpec {
                name: format!("{}:{}", service.hostname, port.number),
                domains: domains(scope, service, vips, port.number, http_ports.len() == 1),
                routes,
                virtual_service: virtual_service
                    .map(|vs| format!("{}/{}", vs.metadata.namespace, vs.metadata.name)),
            });
        }
    }
    super::egress::add_blackhole(index, scope, &mut virtual_hosts);
    RouteConfigSpec {
        name: OUTBOUND_ROUTE_CONFIG.into(),
        virtual_hosts,
    }
}

/// The VirtualService bound to sidecars (`mesh`) for `hostname`: an exact host beats a
/// wildcard, the proxy's own namespace beats others, then name order.
fn virtual_service_for<'a>(
    index: &'a Index,
    scope: &Scope,
    hostname: &str,
) -> Option<&'a Object<VirtualServiceSpec>> {
    let mut candidates: Vec<(bool, &Object<VirtualServiceSpec>)> = index
        .virtual_service_hosts
        .matching(hostname)
        .into_iter()
        .map(|(position, exact)| (exact, &index.virtual_services[position]))
        .filter(|(_, vs)| {
            vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh")
        })
        .filter(|(_, vs)| scope.exported(&vs.spec.export_to, &vs.metadata.namespace))
        .collect();
    // Name order among equals, as the index keeps them.
    candidates.sort_by_key(|(exact, vs)| {
        (
            !exact,
            vs.metadata.namespace != scope.namespace,
            (vs.metadata.namespace.clone(), vs.metadata.name.clone()),
        )
    });
    candidates.first().map(|(_, vs)| *vs)
}

fn default_route(service: &Service, port: u16) -> HttpRoute {
    HttpRoute {
        name: "default".into(),
        route: vec![HttpRouteDestination {
            destination: Destination {
                host: service.hostname.clone(),
                subset: None,
                port: Some(PortSelector {
                    number: u32::from(port),
                }),
            },
            ..HttpRouteDestination::default()
        }],
        ..HttpRoute::default()
    }
}

/// The VirtualService's routes for requests that came in on `port`: matches naming another
/// port are dropped (and a route left without matches with them), destinations resolved.
fn vs_routes(
    vs: &Object<VirtualServiceSpec>,
    port: u16,
    services: &[VisibleService<'_>],
) -> Vec<HttpRoute> {
    let namespace = &vs.metadata.namespace;
    vs.spec
        .http
        .iter()
        .filter_map(|route| {
            let mut route = route.clone();
            if !route.matches.is_empty() {
                route
                    .matches
                    .retain(|m| m.port.is_none_or(|p| p == u32::from(port)));
                if route.matches.is_empty() {
                    return None;
                }
            }
            for destination in route.route.iter_mut().map(|d| &mut d.destination) {
                resolve_destination(destination, namespace, port, services);
            }
            if let Some(mirror) = &mut route.mirror {
                resolve_destination(mirror, namespace, port, services);
            }
            for mirror in &mut route.mirrors {
                resolve_destination(&mut mirror.destination, namespace, port, services);
            }
            Some(route)
        })
        .collect()
}

fn resolve_destination(
    destination: &mut Destination,
    namespace: &str,
    port: u16,
    services: &[VisibleService<'_>],
) {
    destination.host = resolve(&destination.host, namespace);
    if destination.port.is_none() {
        let has_port = services.iter().any(|v| {
            v.service.hostname == destination.host
                && v.service.ports.len() > 1
                && v.service.ports.iter().any(|p| p.number == port)
        });
        if has_port {
            destination.port = Some(PortSelector {
                number: u32::from(port),
            });
        }
    }
}

/// The names a request's Host may use for this service port: the hostname and, for a
/// cluster-local name, `name.namespace.svc`, `name.namespace` and (from the same
/// namespace) `name`, and its virtual IPs (a redirected request to `http://10.96.0.10/`
/// carries the IP as its Host); each with `:port`, and bare when the port is 80 or the
/// service's only HTTP port.
fn domains(
    scope: &Scope,
    service: &Service,
    vips: &[std::net::IpAddr],
    port: u16,
    only_port: bool,
) -> Vec<String> {
    let hostname = &service.hostname;
    let mut names = vec![hostname.clone()];
    if let Some((name, namespace)) = hostname
        .strip_suffix(CLUSTER_SUFFIX)
        .and_then(|rest| rest.split_once('.'))
        .filter(|(_, namespace)| !namespace.contains('.'))
    {
        names.push(format!("{name}.{namespace}.svc"));
        names.push(format!("{name}.{namespace}"));
        if namespace == scope.namespace {
            names.push(name.to_owned());
        }
    }
    let mut domains: Vec<String> = names.iter().map(|n| format!("{n}:{port}")).collect();
    // `SocketAddr` spells an IPv6 VIP with brackets, as a Host header does.
    domains.extend(
        vips.iter()
            .map(|vip| std::net::SocketAddr::new(*vip, port).to_string()),
    );
    names.extend(vips.iter().map(|vip| match vip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        std::net::IpAddr::V4(v4) => v4.to_string(),
    }));
    if port == 80 || only_port {
        domains.extend(names);
    }
    domains
}
