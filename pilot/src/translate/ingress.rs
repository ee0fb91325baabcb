//! Inbound listeners from the Sidecar's `ingress` section: where peers reach this
//! workload when traffic is not captured by iptables (local mode, VMs), as Istio configures
//! them. Each port becomes a listener at `bind:port` that forwards to the app at
//! `defaultEndpoint` (default `127.0.0.1:<port>`), with the PeerAuthentication mode for that
//! port; the workload's AuthorizationPolicies apply to it. A proxy in capture mode gets
//! listeners for the ports its workload serves without a Sidecar ([`super::capture`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mesh_core::config::{
    Destination, HttpRetry, HttpRoute, HttpRouteDestination, IngressListener, MtlsMode,
    PortSelector,
};
use mesh_core::model::selects;
use mesh_core::snapshot::{
    AppProtocol, ClusterSpec, EndpointSpec, InboundSpec, ListenerProtocol, ListenerSpec, PeerMode,
    RouteConfigSpec, VirtualHostSpec,
};

use super::scope::select_sidecar;
use super::{Node, capture};
use crate::index::Index;
use crate::registry::port_protocol;

/// The inbound side of one proxy: its listeners, their route configs and the local app's
/// clusters; in capture mode also its outbound listeners by virtual IP, which like the
/// inbound ones are the proxy's own (they depend on its IPs and mode, not only its scope).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inbound {
    pub listeners: Vec<ListenerSpec>,
    pub route_configs: Vec<RouteConfigSpec>,
    pub clusters: Vec<ClusterSpec>,
}

pub fn inbound(index: &Index, node: &Node) -> Inbound {
    let root = &index.settings.root_namespace;
    let mut inbound = Inbound::default();
    let sidecar = select_sidecar(index, &node.namespace, &node.labels, root);
    for ingress in sidecar.iter().flat_map(|sc| &sc.spec.ingress) {
        if let Some(local) = ingress_listener(index, node, ingress) {
            inbound.add(local);
        }
    }
    if capture::is_capture(node) {
        add_captured(index, node, &mut inbound);
    }
    inbound
}

/// Capture mode ([`capture`]): an inbound listener for every port the workload serves that
/// no Sidecar ingress already covers, and the outbound listeners by virtual IP.
fn add_captured(index: &Index, node: &Node, inbound: &mut Inbound) {
    for (port, protocol) in capture::workload_ports(index, node) {
        let covered = inbound.listeners.iter().any(|l| l.address.port() == port);
        if !covered {
            let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            let app = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            inbound.add(local_listener(index, node, bind, app, protocol));
        }
    }
    let scope = super::Scope::of(index, node);
    inbound
        .listeners
        .extend(capture::outbound_vip_listeners(index, &scope));
    if let Some((listeners, cluster)) = capture::registry_only(index, &scope) {
        inbound.listeners.extend(listeners);
        inbound.clusters.push(cluster);
    }
}

impl Inbound {
    fn add(&mut self, (listener, cluster): (ListenerSpec, ClusterSpec)) {
        if let Some(route) = &listener.route_config {
            self.route_configs.push(local_routes(route, &cluster));
        }
        self.listeners.push(listener);
        self.clusters.push(cluster);
    }
}

fn ingress_listener(
    index: &Index,
    node: &Node,
    ingress: &IngressListener,
) -> Option<(ListenerSpec, ClusterSpec)> {
    let port = u16::try_from(ingress.port.number).ok()?;
    let bind: IpAddr = match &ingress.bind {
        Some(bind) => bind.parse().ok()?,
        None => node_ip(node).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    };
    let app: SocketAddr = match &ingress.default_endpoint {
        // `unix://` endpoints are not supported by the proxy: leave the port out.
        Some(endpoint) => endpoint.parse().ok()?,
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    };
    let protocol = port_protocol(Some(&ingress.port.protocol), &ingress.port.name);
    Some(local_listener(
        index,
        node,
        SocketAddr::new(bind, port),
        app,
        protocol,
    ))
}

/// The listener at `address` for the local app at `app`, and the app's cluster.
fn local_listener(
    index: &Index,
    node: &Node,
    address: SocketAddr,
    app: SocketAddr,
    protocol: Option<AppProtocol>,
) -> (ListenerSpec, ClusterSpec) {
    let port = address.port();
    let name = format!("inbound|{port}");
    let cluster = ClusterSpec {
        host: name.clone(),
        port: app.port(),
        endpoints: vec![EndpointSpec {
            address: app,
            labels: BTreeMap::new(),
            weight: None,
            identity: None,
            workload: None,
        }],
        traffic_policy: None,
        subsets: Vec::new(),
        destination_rule: None,
        dns: None,
    };
    let (protocol, route_config, tcp_route) = match protocol {
        Some(p) if !p.is_http() => (ListenerProtocol::Tcp, None, vec![to(&cluster)]),
        Some(_) => (ListenerProtocol::Http, Some(name.clone()), Vec::new()),
        None => (
            ListenerProtocol::Auto,
            Some(name.clone()),
            vec![to(&cluster)],
        ),
    };
    let listener = ListenerSpec {
        name,
        address,
        protocol,
        route_config,
        tcp_route: tcp_route
            .into_iter()
            .map(|destination| mesh_core::config::RouteDestination {
                destination,
                weight: None,
            })
            .collect(),
        app_protocol: None,
        server_first_ports: Vec::new(),
        detect_timeout: None,
        tls: None,
        inbound: Some(InboundSpec {
            mtls: peer_mode(index, node, port),
        }),
    };
    (listener, cluster)
}

fn to(cluster: &ClusterSpec) -> Destination {
    Destination {
        host: cluster.host.clone(),
        subset: None,
        port: Some(PortSelector {
            number: u32::from(cluster.port),
        }),
    }
}

/// Every request on the inbound port goes to the local app, once: as in Istio, the
/// inbound side never retries (the caller's sidecar owns retries, and retrying here too
/// would multiply attempts and hide the app's failures from the caller's policy).
fn local_routes(name: &str, cluster: &ClusterSpec) -> RouteConfigSpec {
    RouteConfigSpec {
        name: name.to_owned(),
        virtual_hosts: vec![VirtualHostSpec {
            virtual_service: None,
            name: name.to_owned(),
            domains: vec!["*".into()],
            routes: vec![HttpRoute {
                name: "local".into(),
                route: vec![HttpRouteDestination {
                    destination: to(cluster),
                    ..HttpRouteDestination::default()
                }],
                retries: Some(HttpRetry::default()),
                ..HttpRoute::default()
            }],
        }],
    }
}

fn node_ip(node: &Node) -> Option<IpAddr> {
    node.metadata
        .get("ipAddresses")?
        .split(',')
        .find_map(|ip| ip.trim().parse().ok())
}

/// Istio's PeerAuthentication inheritance for `port` of this workload: the workload's own
/// policy (a port-level setting first), then its namespace's, then the mesh's (root
/// namespace); UNSET defers to the next; PERMISSIVE when nothing decides.
pub fn peer_mode(index: &Index, node: &Node, port: u16) -> PeerMode {
    let root = &index.settings.root_namespace;
    let policies = &index.peer_authentications;
    let workload = policies.iter().find(|p| {
        p.metadata.namespace == node.namespace
            && p.spec
                .selector
                .as_ref()
                .is_some_and(|s| selects(&s.match_labels, &node.labels))
    });
    let namespace = policies
        .iter()
        .find(|p| p.metadata.namespace == node.namespace && p.spec.selector.is_none());
    let mesh = policies
        .iter()
        .find(|p| &p.metadata.namespace == root && p.spec.selector.is_none());
    let port_level = workload.and_then(|p| p.spec.port_level_mtls.get(&port.to_string()));
    let modes = [
        port_level.map(|m| m.mode),
        workload.and_then(|p| p.spec.mtls.as_ref()).map(|m| m.mode),
        namespace.and_then(|p| p.spec.mtls.as_ref()).map(|m| m.mode),
        mesh.and_then(|p| p.spec.mtls.as_ref()).map(|m| m.mode),
    ];
    match modes.into_iter().flatten().find(|m| *m != MtlsMode::Unset) {
        Some(MtlsMode::Strict) => PeerMode::Strict,
        Some(MtlsMode::Disable) => PeerMode::Disable,
        _ => PeerMode::Permissive,
    }
}
