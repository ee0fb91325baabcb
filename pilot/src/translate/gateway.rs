//! A proxy in gateway mode (`mesh-proxy --mode gateway`, node metadata `PROXY_MODE:
//! gateway`): the Gateways whose `selector` matches its labels become its listeners, one
//! per server port, and the VirtualServices bound to them (`gateways:`) their routes.
//!
//! Per port, by the servers' protocol (any case, as Istio accepts it):
//! - HTTP, HTTP2, GRPC: an HTTP listener; a virtual host per host the server and a bound
//!   VirtualService have in common; `tls.httpsRedirect` answers those hosts with a 301.
//! - HTTPS, and TLS: a listener whose `tls` lists the servers (their SNI hosts and TLS
//!   settings); each terminating HTTPS server gets a route config of its own hosts
//!   (`https.<port>.<i>`), PASSTHROUGH goes by the bound VirtualServices' `tls` routes, a
//!   terminated TLS server by their `tcp` routes.
//! - TCP: a TCP listener forwarding by the first bound `tcp` route.
//!
//! Hosts meet as Istio's do: a server host `ns/host` admits only VirtualServices from
//! `ns` (`.` the Gateway's own, `*` any), and where a server host and a VirtualService
//! host overlap the narrower of the two is served (`*.example.com` and `shop.example.com`
//! give `shop.example.com`). Each is served with or without a `:port` in the Host header.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mesh_core::config::{
    ConfigObject, GatewaySpec, HttpRedirect, HttpRoute, Object, RouteDestination, Server,
    ServerTlsMode, TcpRoute, TlsRoute, VirtualServiceSpec,
};
use mesh_core::host::{covers, resolve};
use mesh_core::model::{MESH_GATEWAY, selects};
use mesh_core::snapshot::{
    GatewayTlsSpec, ListenerProtocol, ListenerSpec, RouteConfigSpec, TlsServerSpec, VirtualHostSpec,
};

use super::Node;
use crate::index::Index;

/// The node metadata key a proxy's mode travels in, and the gateway mode's value.
pub const PROXY_MODE: &str = "PROXY_MODE";
pub const GATEWAY_MODE: &str = "gateway";

pub fn is_gateway(node: &Node) -> bool {
    node.metadata.get(PROXY_MODE).map(String::as_str) == Some(GATEWAY_MODE)
}

/// A gateway proxy's listeners and their route configs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatewayListeners {
    pub listeners: Vec<ListenerSpec>,
    pub route_configs: Vec<RouteConfigSpec>,
}

/// One server of a Gateway selecting this proxy.
struct Bound<'a> {
    gateway: &'a Object<GatewaySpec>,
    server: &'a Server,
}

impl Bound<'_> {
    /// `namespace/name`, as VirtualServices name their gateways once resolved.
    fn gateway_name(&self) -> String {
        let m = &self.gateway.metadata;
        format!("{}/{}", m.namespace, m.name)
    }

    fn protocol(&self) -> Protocol {
        Protocol::of(&self.server.port.protocol)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http,
    Https,
    Tls,
    Tcp,
}

impl Protocol {
    fn of(text: &str) -> Self {
        match text.to_ascii_uppercase().as_str() {
            "HTTPS" => Self::Https,
            "TLS" => Self::Tls,
            "TCP" | "MONGO" | "MYSQL" | "REDIS" => Self::Tcp,
            _ => Self::Http,
        }
    }
}

pub fn gateway_listeners(index: &Index, node: &Node) -> GatewayListeners {
    let mut by_port: BTreeMap<u16, Vec<Bound<'_>>> = BTreeMap::new();
    for gateway in gateways_for(index, node) {
        for server in &gateway.spec.servers {
            if let Ok(port) = u16::try_from(server.port.number) {
                by_port
                    .entry(port)
                    .or_default()
                    .push(Bound { gateway, server });
            }
        }
    }
    let mut out = GatewayListeners::default();
    for (port, servers) in &by_port {
        port_listener(index, node, *port, servers, &mut out);
    }
    out
}

/// Gateways whose selector matches the node's labels (an empty selector matches every
/// gateway proxy), in name order.
fn gateways_for<'a>(index: &'a Index, node: &Node) -> Vec<&'a Object<GatewaySpec>> {
    let mut found: Vec<_> = index
        .inputs
        .configs
        .iter()
        .filter_map(|located| match &located.object {
            ConfigObject::Gateway(g) if selects(&g.spec.selector, &node.labels) => Some(g),
            _ => None,
        })
        .collect();
    found.sort_by_key(|g| (g.metadata.namespace.clone(), g.metadata.name.clone()));
    found
}

fn port_listener(
    index: &Index,
    node: &Node,
    port: u16,
    servers: &[Bound<'_>],
    out: &mut GatewayListeners,
) {
    let address = bind_address(node, servers, port);
    let name = format!("{}_{port}", address.ip());
    let mut listener = super::capture::plain_listener(name.clone(), address);
    let protocols: Vec<Protocol> = servers.iter().map(Bound::protocol).collect();
    if protocols.iter().all(|p| *p == Protocol::Tcp) {
        listener.protocol = ListenerProtocol::Tcp;
        listener.tcp_route = tcp_routes(index, servers).unwrap_or_default();
        if listener.tcp_route.is_empty() {
            tracing::debug!(listener = %name, "TCP gateway port without a bound tcp route: not served");
            return;
        }
        out.listeners.push(listener);
        return;
    }
    let tls_servers: Vec<&Bound<'_>> = servers
        .iter()
        .filter(|s| matches!(s.protocol(), Protocol::Https | Protocol::Tls))
        .collect();
    if tls_servers.is_empty() {
        let route_name = format!("http.{port}");
        out.route_configs.push(RouteConfigSpec {
            name: route_name.clone(),
            virtual_hosts: virtual_hosts(index, servers, port),
        });
        listener.route_config = Some(route_name);
        out.listeners.push(listener);
        return;
    }
    // Each HTTPS server routes only its own hosts, as Envoy's filter chain per server: a
    // request cannot reach a MUTUAL server's hosts through a SIMPLE server's handshake.
    let mut specs = Vec::new();
    for (i, bound) in tls_servers.iter().enumerate() {
        let mut spec = tls_server(bound);
        if bound.protocol() == Protocol::Https && spec.tls.mode != ServerTlsMode::Passthrough {
            let route_name = format!("https.{port}.{i}");
            out.route_configs.push(RouteConfigSpec {
                name: route_name.clone(),
                virtual_hosts: virtual_hosts(index, std::slice::from_ref(*bound), port),
            });
            spec.route_config = Some(route_name);
        }
        specs.push(spec);
    }
    if let Some(routes) = tcp_routes(index, servers) {
        listener.tcp_route = routes;
    }
    listener.tls = Some(GatewayTlsSpec {
        servers: specs,
        tls_routes: tls_routes(index, servers),
    });
    out.listeners.push(listener);
}

/// `server.bind` when set, else the node's own address (local mode runs several proxies on
/// one machine, the gateway on an address of its own), else every address.
fn bind_address(node: &Node, servers: &[Bound<'_>], port: u16) -> SocketAddr {
    let ip = servers
        .iter()
        .find_map(|s| s.server.bind.as_deref()?.parse::<IpAddr>().ok())
        .or(node.outbound_address.map(|a| a.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    SocketAddr::new(ip, port)
}

fn tls_server(bound: &Bound<'_>) -> TlsServerSpec {
    let mut tls = bound.server.tls.clone().unwrap_or_default();
    tls.https_redirect = false;
    TlsServerSpec {
        hosts: bound
            .server
            .hosts
            .iter()
            .map(|h| split_host(h).1.to_owned())
            .collect(),
        tls,
        route_config: None,
    }
}

/// `ns/host` -> (`Some(ns)`, `host`); a bare host admits every namespace.
fn split_host(host: &str) -> (Option<&str>, &str) {
    match host.split_once('/') {
        Some((ns, host)) => (Some(ns), host),
        None => (None, host),
    }
}

/// The VirtualServices bound to `bound`'s Gateway, each with the hosts it serves there.
fn bound_services<'a>(
    index: &'a Index,
    bound: &Bound<'_>,
) -> Vec<(&'a Object<VirtualServiceSpec>, Vec<String>)> {
    let gateway = bound.gateway_name();
    index
        .virtual_services
        .iter()
        .filter(|vs| binds(vs, &gateway))
        .filter_map(|vs| {
            let hosts = served_hosts(bound, vs);
            (!hosts.is_empty()).then_some((vs, hosts))
        })
        .collect()
}

/// Whether `vs` names `gateway` (`namespace/name`; a bare name is in the VirtualService's
/// namespace; `mesh` is the sidecars).
fn binds(vs: &Object<VirtualServiceSpec>, gateway: &str) -> bool {
    vs.spec
        .gateways
        .iter()
        .any(|g| g != MESH_GATEWAY && qualified(g, &vs.metadata.namespace) == gateway)
}

/// Whether a match naming `gateways` (none: all of the VirtualService's) applies on
/// `gateway`, the names resolved in the VirtualService's `namespace`.
fn applies_on(gateways: &[String], namespace: &str, gateway: &str) -> bool {
    gateways.is_empty() || gateways.iter().any(|g| qualified(g, namespace) == gateway)
}

fn qualified(gateway: &str, namespace: &str) -> String {
    if gateway.contains('/') {
        gateway.to_owned()
    } else {
        format!("{namespace}/{gateway}")
    }
}

/// The hosts `vs` serves on this server: each overlap of a server host and a VirtualService
/// host, the narrower of the two.
fn served_hosts(bound: &Bound<'_>, vs: &Object<VirtualServiceSpec>) -> Vec<String> {
    let vs_namespace = &vs.metadata.namespace;
    let mut hosts = Vec::new();
    for server_host in &bound.server.hosts {
        let (namespace, pattern) = split_host(server_host);
        let admitted = match namespace {
            None | Some("*") => true,
            Some(".") => *vs_namespace == bound.gateway.metadata.namespace,
            Some(ns) => ns == vs_namespace,
        };
        if !admitted {
            continue;
        }
        let pattern = pattern.to_ascii_lowercase();
        for host in &vs.spec.hosts {
            let host = resolve(host, vs_namespace);
            let overlap = if covers(&pattern, &host) {
                Some(host)
            } else if covers(&host, &pattern) {
                Some(pattern.clone())
            } else {
                None
            };
            if let Some(overlap) = overlap.filter(|h| !hosts.contains(h)) {
                hosts.push(overlap);
            }
        }
    }
    hosts
}

/// The virtual hosts of an HTTP or HTTPS port: for each host, the first bound
/// VirtualService's routes (name order), or a 301 to HTTPS on an `httpsRedirect` server.
fn virtual_hosts(index: &Index, servers: &[Bound<'_>], port: u16) -> Vec<VirtualHostSpec> {
    // Per host: its routes, and the VirtualService they come from.
    let mut hosts: BTreeMap<String, (Vec<HttpRoute>, Option<String>)> = BTreeMap::new();
    for bound in servers
        .iter()
        .filter(|s| matches!(s.protocol(), Protocol::Http | Protocol::Https))
    {
        let redirect = bound.protocol() == Protocol::Http
            && bound.server.tls.as_ref().is_some_and(|t| t.https_redirect);
        let gateway = bound.gateway_name();
        let services = bound_services(index, bound);
        if redirect {
            let mut names: Vec<String> = services.into_iter().flat_map(|(_, h)| h).collect();
            if names.is_empty() {
                names = bound
                    .server
                    .hosts
                    .iter()
                    .map(|h| split_host(h).1.to_ascii_lowercase())
                    .collect();
            }
            for name in names {
                hosts
                    .entry(name)
                    .or_insert_with(|| (vec![https_redirect()], None));
            }
            continue;
        }
        for (vs, names) in services
            .into_iter()
            .filter(|(vs, _)| !vs.spec.http.is_empty())
        {
            let routes = http_routes(vs, &gateway, port);
            let origin = format!("{}/{}", vs.metadata.namespace, vs.metadata.name);
            for name in names {
                hosts
                    .entry(name)
                    .or_insert_with(|| (routes.clone(), Some(origin.clone())));
            }
        }
    }
    hosts
        .into_iter()
        .map(|(host, (routes, virtual_service))| VirtualHostSpec {
            name: host.clone(),
            domains: domains(&host),
            routes,
            virtual_service,
        })
        .collect()
}

fn domains(host: &str) -> Vec<String> {
    if host == "*" {
        vec![host.to_owned()]
    } else {
        vec![host.to_owned(), format!("{host}:*")]
    }
}

fn https_redirect() -> HttpRoute {
    HttpRoute {
        name: "https-redirect".into(),
        redirect: Some(HttpRedirect {
            scheme: Some("https".into()),
            redirect_code: Some(301),
            ..HttpRedirect::default()
        }),
        ..HttpRoute::default()
    }
}

/// The VirtualService's HTTP routes as this gateway sees them: matches for other gateways
/// or another port dropped (a route left without matches with them), destination hosts
/// resolved in the VirtualService's namespace.
fn http_routes(vs: &Object<VirtualServiceSpec>, gateway: &str, port: u16) -> Vec<HttpRoute> {
    let namespace = &vs.metadata.namespace;
    vs.spec
        .http
        .iter()
        .filter_map(|route| {
            let mut route = route.clone();
            if !route.matches.is_empty() {
                route.matches.retain(|m| {
                    m.port.is_none_or(|p| p == u32::from(port))
                        && applies_on(&m.gateways, namespace, gateway)
                });
                if route.matches.is_empty() {
                    return None;
                }
                for m in &mut route.matches {
                    m.gateways.clear();
                    m.port = None;
                }
            }
            for d in &mut route.route {
                d.destination.host = resolve(&d.destination.host, namespace);
            }
            if let Some(mirror) = &mut route.mirror {
                mirror.host = resolve(&mirror.host, namespace);
            }
            for mirror in &mut route.mirrors {
                mirror.destination.host = resolve(&mirror.destination.host, namespace);
            }
            Some(route)
        })
        .collect()
}

fn resolved(routes: &[RouteDestination], namespace: &str) -> Vec<RouteDestination> {
    routes
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.destination.host = resolve(&r.destination.host, namespace);
            r
        })
        .collect()
}

/// PASSTHROUGH: the bound VirtualServices' `tls` routes, SNI hosts as written.
fn tls_routes(index: &Index, servers: &[Bound<'_>]) -> Vec<TlsRoute> {
    let mut routes = Vec::new();
    for bound in servers.iter().filter(|s| {
        s.server
            .tls
            .as_ref()
            .is_none_or(|t| t.mode == ServerTlsMode::Passthrough)
            && s.protocol() != Protocol::Http
    }) {
        let gateway = bound.gateway_name();
        for (vs, _) in bound_services(index, bound) {
            let namespace = &vs.metadata.namespace;
            for route in &vs.spec.tls {
                let matches: Vec<_> = route
                    .matches
                    .iter()
                    .filter(|m| applies_on(&m.gateways, namespace, &gateway))
                    .cloned()
                    .map(|mut m| {
                        m.gateways.clear();
                        m
                    })
                    .collect();
                if matches.is_empty() {
                    continue;
                }
                routes.push(TlsRoute {
                    matches,
                    route: resolved(&route.route, namespace),
                });
            }
        }
    }
    routes
}

/// TCP and terminated TLS: the first bound VirtualService's first `tcp` route that applies
/// on this gateway.
fn tcp_routes(index: &Index, servers: &[Bound<'_>]) -> Option<Vec<RouteDestination>> {
    servers.iter().find_map(|bound| {
        let gateway = bound.gateway_name();
        bound_services(index, bound)
            .into_iter()
            .find_map(|(vs, _)| {
                let namespace = &vs.metadata.namespace;
                vs.spec
                    .tcp
                    .iter()
                    .find(|r: &&TcpRoute| {
                        r.matches.is_empty()
                            || r.matches
                                .iter()
                                .any(|m| applies_on(&m.gateways, namespace, &gateway))
                    })
                    .map(|r| resolved(&r.route, namespace))
            })
    })
}

#[cfg(test)]
#[path = "gateway_tests.rs"]
mod tests;
