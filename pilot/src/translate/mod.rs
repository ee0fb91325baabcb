//! Translation: for one proxy, the index becomes the snapshot it runs. Pure functions of
//! the index and the proxy's identity, split per resource kind; the push layer encodes and
//! caches their output, `/debug/config_dump` and `meshctl` show it.

mod capture;
mod clusters;
mod egress;
mod gateway;
mod inbound;
mod ingress;
mod listeners;
mod routes;
mod scope;
mod telemetry;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mesh_core::model::Labels;
use mesh_core::snapshot::Snapshot;

use crate::index::Index;

pub use capture::{INTERCEPTION_MODE, REDIRECT, is_capture};
pub use clusters::{cluster_spec, endpoint_specs};
pub use egress::{BLACKHOLE, outbound_mode};
pub use gateway::{GATEWAY_MODE, GatewayListeners, PROXY_MODE, gateway_listeners, is_gateway};
pub use inbound::{InboundPolicy, inbound_policy};
pub use ingress::{Inbound, inbound, peer_mode};
pub use listeners::{OUTBOUND_ROUTE_CONFIG, outbound_listener};
pub use routes::outbound_route_config;
pub use scope::{Scope, VisibleService};
pub use telemetry::telemetry;

/// Who a proxy is, as it said on its first request.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub id: String,
    pub namespace: String,
    pub workload: String,
    pub service_account: String,
    pub labels: Labels,
    /// Where the outbound listener binds.
    pub outbound_address: Option<SocketAddr>,
    pub metadata: BTreeMap<String, String>,
}

/// Everything `node` runs: its listeners, its route table, and a cluster (with endpoints)
/// for every service it can see.
pub fn snapshot(index: &Index, node: &Node) -> Snapshot {
    let scope = Scope::of(index, node);
    let services = scope.visible_services(index);
    let mut clusters = Vec::new();
    for visible in &services {
        for port in &visible.service.ports {
            let mut spec = cluster_spec(index, &scope, visible.service, port.number);
            spec.endpoints = endpoint_specs(index, visible, port.number);
            clusters.push(spec);
        }
    }
    let (listeners, route_configs) = if is_gateway(node) {
        // A gateway has no app beside it: no outbound or inbound listeners of a sidecar.
        let gateway = gateway_listeners(index, node);
        (gateway.listeners, gateway.route_configs)
    } else {
        let local = inbound(index, node);
        let mut listeners = vec![outbound_listener(node)];
        listeners.extend(local.listeners);
        let mut route_configs = vec![outbound_route_config(index, &scope, &services)];
        route_configs.extend(local.route_configs);
        clusters.extend(local.clusters);
        (listeners, route_configs)
    };
    let inbound = inbound_policy(index, node);
    Snapshot {
        telemetry: telemetry(index, node),
        version: String::new(),
        listeners,
        route_configs,
        clusters,
        authorization_policies: inbound
            .authorization_policies
            .into_iter()
            .map(|p| mesh_core::snapshot::NamedPolicy {
                name: p.name,
                spec: p.spec,
            })
            .collect(),
        request_authentications: inbound
            .request_authentications
            .into_iter()
            .map(|p| mesh_core::snapshot::NamedRequestAuthentication {
                name: p.name,
                spec: p.spec,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
