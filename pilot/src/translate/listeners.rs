//! The proxy's listeners. Today: one outbound HTTP listener where the application's
//! requests arrive (redirected by iptables, or addressed directly in local mode), routed
//! by their Host header.

use std::net::{Ipv4Addr, SocketAddr};

use mesh_core::snapshot::{ListenerProtocol, ListenerSpec};

use super::Node;

pub const OUTBOUND_ROUTE_CONFIG: &str = "outbound";

/// Istio's outbound capture port.
const DEFAULT_OUTBOUND: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 15001);

pub fn outbound_listener(node: &Node) -> ListenerSpec {
    ListenerSpec {
        name: "outbound".into(),
        address: node.outbound_address.unwrap_or(DEFAULT_OUTBOUND),
        protocol: ListenerProtocol::Http,
        route_config: Some(OUTBOUND_ROUTE_CONFIG.into()),
        tcp_route: Vec::new(),
        app_protocol: None,
        server_first_ports: Vec::new(),
        detect_timeout: None,
        tls: None,
        inbound: None,
    }
}
