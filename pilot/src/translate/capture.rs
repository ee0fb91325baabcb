//! Capture mode: a proxy whose pod's traffic iptables redirects (`mesh-proxy iptables`)
//! says so with `INTERCEPTION_MODE=REDIRECT` in its node metadata. It binds only its two
//! capture ports and dispatches each connection by its original destination, so it needs:
//!
//! - an inbound listener per port the workload serves (from the registry: the endpoints
//!   whose address is one of the node's IPs), at `0.0.0.0:<port>`: the proxy keys it by
//!   port, never binds it, and hands admitted traffic to the app on `127.0.0.1:<port>`;
//! - an outbound listener per service virtual IP and port (`VIP:port`), which the proxy
//!   uses for connections whose original destination is that address: HTTP ports route by
//!   Host through the shared outbound route config (whose domains include the VIPs, see
//!   [`super::routes`]), other ports forward as TCP to the service's cluster.
//!
//! Virtual IPs are the registry's service addresses: ServiceEntry `addresses` and
//! Kubernetes Services' cluster IPs.
//!
//! Under `outboundTrafficPolicy: REGISTRY_ONLY` ([`registry_only`]) it also gets Istio's
//! `virtualOutbound` listener with its `tcpRoute` to the empty `BlackHoleCluster`, which
//! tells the proxy to close captured connections to addresses no listener serves, and an
//! HTTP listener on every declared HTTP port at `0.0.0.0:<port>`, so that a host known by
//! name (a ServiceEntry without `addresses`) is still reached by Host through the outbound
//! route config, whose catch-all answers 502 for the rest.

use std::net::{IpAddr, SocketAddr};

use mesh_core::config::{Destination, OutboundMode, PortSelector, RouteDestination};
use mesh_core::snapshot::{
    AppProtocol, BLACKHOLE_CLUSTER, ClusterSpec, ListenerProtocol, ListenerSpec,
};

use super::listeners::OUTBOUND_ROUTE_CONFIG;
use super::{Node, Scope};
use crate::index::Index;
use crate::registry::Service;

/// The node metadata key, and the value, that ask for capture mode (Istio's names).
pub const INTERCEPTION_MODE: &str = "INTERCEPTION_MODE";
pub const REDIRECT: &str = "REDIRECT";

pub fn is_capture(node: &Node) -> bool {
    node.metadata
        .get(INTERCEPTION_MODE)
        .is_some_and(|mode| mode.eq_ignore_ascii_case(REDIRECT))
}

/// The node's IPs, as it reported them.
pub fn node_ips(node: &Node) -> Vec<IpAddr> {
    node.metadata
        .get("ipAddresses")
        .map(|ips| {
            ips.split(',')
                .filter_map(|ip| ip.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The ports the node's workload serves, with their declared protocol: the target ports of
/// the registry endpoints at one of its IPs, in the node's namespace.
pub fn workload_ports(index: &Index, node: &Node) -> Vec<(u16, Option<AppProtocol>)> {
    let ips = node_ips(node);
    let registry = index.registry();
    let mut ports: Vec<(u16, Option<AppProtocol>)> = Vec::new();
    for (key, service) in &registry.services {
        let endpoints = registry.endpoints(key).iter().filter(|e| {
            ips.contains(&e.address) && (e.namespace.is_empty() || e.namespace == node.namespace)
        });
        for endpoint in endpoints {
            for (service_port, target) in &endpoint.ports {
                let protocol = service
                    .ports
                    .iter()
                    .find(|p| p.number == *service_port)
                    .and_then(|p| p.protocol);
                if !ports.iter().any(|(p, _)| p == target) {
                    ports.push((*target, protocol));
                }
            }
        }
    }
    ports.sort_by_key(|(port, _)| *port);
    ports
}

/// A listener per visible service VIP and port.
pub fn outbound_vip_listeners(index: &Index, scope: &Scope) -> Vec<ListenerSpec> {
    let mut listeners = Vec::new();
    for visible in scope.visible_services(index) {
        let service = visible.service;
        for &vip in &service.addresses {
            for port in &service.ports {
                listeners.push(vip_listener(
                    service,
                    SocketAddr::new(vip, port.number),
                    port.protocol,
                ));
            }
        }
    }
    listeners
}

fn vip_listener(
    service: &Service,
    address: SocketAddr,
    protocol: Option<AppProtocol>,
) -> ListenerSpec {
    let to_service = || {
        vec![RouteDestination {
            destination: Destination {
                host: service.hostname.clone(),
                subset: None,
                port: Some(PortSelector {
                    number: u32::from(address.port()),
                }),
            },
            weight: None,
        }]
    };
    let (protocol, route_config, tcp_route) = match protocol {
        Some(p) if p.is_http() => (
            ListenerProtocol::Http,
            Some(OUTBOUND_ROUTE_CONFIG.into()),
            Vec::new(),
        ),
        Some(_) => (ListenerProtocol::Tcp, None, to_service()),
        None => (
            ListenerProtocol::Auto,
            Some(OUTBOUND_ROUTE_CONFIG.into()),
            to_service(),
        ),
    };
    ListenerSpec {
        name: format!("outbound|{address}"),
        address,
        protocol,
        route_config,
        tcp_route,
        app_protocol: None,
        server_first_ports: Vec::new(),
        detect_timeout: None,
        tls: None,
        inbound: None,
    }
}

/// Istio's name for the capture port's listener, whose default route decides what happens
/// to connections no other listener serves.
pub const VIRTUAL_OUTBOUND: &str = "virtualOutbound";

/// Under REGISTRY_ONLY: the `virtualOutbound` listener routing to `BlackHoleCluster`, the
/// `0.0.0.0:<port>` HTTP listeners, and the (endpoint-less) cluster; nothing under
/// ALLOW_ANY, where unknown destinations pass through.
pub fn registry_only(index: &Index, scope: &Scope) -> Option<(Vec<ListenerSpec>, ClusterSpec)> {
    if super::outbound_mode(index, scope) != OutboundMode::RegistryOnly {
        return None;
    }
    let blackhole = RouteDestination {
        destination: Destination {
            host: BLACKHOLE_CLUSTER.into(),
            subset: None,
            port: None,
        },
        weight: None,
    };
    let any = |port| SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port);
    let mut virtual_outbound = plain_listener(VIRTUAL_OUTBOUND.into(), any(15001));
    virtual_outbound.protocol = ListenerProtocol::Tcp;
    virtual_outbound.tcp_route = vec![blackhole];
    let mut listeners = vec![virtual_outbound];
    let mut http_ports: Vec<u16> = scope
        .visible_services(index)
        .iter()
        .flat_map(|v| &v.service.ports)
        .filter(|p| p.protocol.is_some_and(AppProtocol::is_http))
        .map(|p| p.number)
        .collect();
    http_ports.sort_unstable();
    http_ports.dedup();
    for port in http_ports {
        let address = any(port);
        let mut http = plain_listener(format!("outbound|{address}"), address);
        http.route_config = Some(OUTBOUND_ROUTE_CONFIG.into());
        listeners.push(http);
    }
    let cluster = ClusterSpec {
        host: BLACKHOLE_CLUSTER.into(),
        ..ClusterSpec::default()
    };
    Some((listeners, cluster))
}

/// An HTTP listener with nothing set but its name and address.
pub(super) fn plain_listener(name: String, address: SocketAddr) -> ListenerSpec {
    ListenerSpec {
        name,
        address,
        protocol: ListenerProtocol::Http,
        route_config: None,
        tcp_route: Vec::new(),
        app_protocol: None,
        server_first_ports: Vec::new(),
        detect_timeout: None,
        tls: None,
        inbound: None,
    }
}
