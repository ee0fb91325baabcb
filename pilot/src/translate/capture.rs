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

use std::net::{IpAddr, SocketAddr};

use mesh_core::config::{Destination, PortSelector, RouteDestination};
use mesh_core::snapshot::{AppProtocol, ListenerProtocol, ListenerSpec};

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
