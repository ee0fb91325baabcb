//! Config from pilot: one discovery stream ([`client`]) feeding the resources held
//! ([`store`]) into [`crate::state`] whole, as the snapshot file does in standalone mode.
//! [`status`] is what `/config_dump` and the `mesh_xds_*` metrics show of it.

mod backoff;
pub mod client;
pub mod status;
pub mod store;

use mesh_proto::discovery::v1 as pb;

pub use client::{Client, XdsError};
pub use status::{PilotStatus, PilotView};
pub use store::Store;

use crate::config::Config;

/// Who this proxy is, as pilot learns it from the first request of every stream.
pub fn node(config: &Config) -> pb::Node {
    pb::Node {
        id: config.node_id(),
        namespace: config.namespace.clone(),
        workload: config.workload.clone(),
        service_account: config.service_account.clone(),
        labels: config
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ip_addresses: config.instance_ip.iter().map(ToString::to_string).collect(),
        outbound_address: config
            .outbound_addr
            .or(config.capture().map(|ports| ports.outbound))
            .map(|a| a.to_string())
            .unwrap_or_default(),
        proxy_version: env!("CARGO_PKG_VERSION").to_owned(),
        metadata: metadata(config),
    }
}

fn metadata(config: &Config) -> std::collections::BTreeMap<String, String> {
    let mut metadata = std::collections::BTreeMap::new();
    // pilot then sends the inbound listeners by workload port and the outbound ones by
    // service VIP that capture dispatches to.
    if config.capture().is_some() {
        metadata.insert(INTERCEPTION_MODE.to_owned(), "REDIRECT".to_owned());
    }
    // pilot then sends the Gateways' listeners instead of a sidecar's.
    if config.mode == crate::config::ProxyMode::Gateway {
        metadata.insert(PROXY_MODE.to_owned(), "gateway".to_owned());
    }
    metadata
}

/// The node metadata key that tells pilot the proxy captures traffic (Istio's name).
pub const INTERCEPTION_MODE: &str = "INTERCEPTION_MODE";
/// The node metadata key that tells pilot the proxy is a gateway (`gateway`).
pub const PROXY_MODE: &str = "PROXY_MODE";

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_capturing_proxy_says_so_and_where_it_takes_outbound_traffic() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(["mesh-proxy", "--pilot=p:1"].iter().chain(args))
                .expect("parses")
        };
        let captured = node(&parse(&["--capture", "--instance-ip=10.1.0.3"]));
        assert_eq!(
            captured.metadata.get(INTERCEPTION_MODE).map(String::as_str),
            Some("REDIRECT")
        );
        assert_eq!(captured.outbound_address, "[::]:15001");
        assert_eq!(captured.ip_addresses, ["10.1.0.3"]);
        let plain = node(&parse(&[]));
        assert!(plain.metadata.is_empty());
        let gateway = node(&parse(&["--mode", "Gateway"]));
        assert_eq!(
            gateway.metadata.get(PROXY_MODE).map(String::as_str),
            Some("gateway")
        );
        assert_eq!(plain.outbound_address, "");
        // An explicit outbound address wins over the capture socket's.
        let explicit = node(&parse(&["--capture", "--outbound-addr=127.0.0.1:15001"]));
        assert_eq!(explicit.outbound_address, "127.0.0.1:15001");
    }
}
