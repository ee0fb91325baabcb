//! Traffic to hosts the mesh does not know: Istio's `outboundTrafficPolicy`. The mode is
//! the applying Sidecar's `outboundTrafficPolicy`, else the mesh-wide default
//! (`pilot --outbound-traffic-policy`, Istio's ALLOW_ANY).
//!
//! REGISTRY_ONLY: the outbound route config gets a catch-all `*` virtual host answering
//! 502 (Istio's BlackHoleCluster), so only hosts in the registry — Services and
//! ServiceEntries, MESH_EXTERNAL ones included — are reachable by name. ALLOW_ANY leaves
//! unknown hosts as they were: a captured connection to an unknown address passes through.

use mesh_core::config::{HttpBody, HttpDirectResponse, HttpRoute, OutboundMode};
use mesh_core::snapshot::VirtualHostSpec;

use super::Scope;
use crate::index::Index;

/// The name of the catch-all virtual host REGISTRY_ONLY adds.
pub const BLACKHOLE: &str = "block_all";

/// The mode in force for proxies of `scope`.
pub fn outbound_mode(index: &Index, scope: &Scope) -> OutboundMode {
    scope
        .outbound_mode
        .unwrap_or(index.settings.outbound_traffic_policy)
}

/// Under REGISTRY_ONLY, a `*` virtual host refusing what no other one serves (unless a
/// VirtualService already serves `*`).
pub fn add_blackhole(index: &Index, scope: &Scope, virtual_hosts: &mut Vec<VirtualHostSpec>) {
    if outbound_mode(index, scope) != OutboundMode::RegistryOnly {
        return;
    }
    if virtual_hosts
        .iter()
        .any(|h| h.domains.iter().any(|d| d == "*"))
    {
        return;
    }
    virtual_hosts.push(VirtualHostSpec {
        virtual_service: None,
        name: BLACKHOLE.into(),
        domains: vec!["*".into()],
        routes: vec![HttpRoute {
            name: BLACKHOLE.into(),
            direct_response: Some(HttpDirectResponse {
                status: 502,
                body: Some(HttpBody {
                    string: Some(
                        "outboundTrafficPolicy REGISTRY_ONLY: this host is not in the mesh's registry; add a ServiceEntry for it\n"
                            .into(),
                    ),
                    bytes: None,
                }),
            }),
            ..HttpRoute::default()
        }],
    });
}

#[cfg(test)]
mod tests {
    use mesh_core::snapshot::{ClusterSpec, DnsLookup};

    use super::*;
    use crate::index::Settings;
    use crate::translate::tests::index_with;
    use crate::translate::{Node, outbound_route_config};

    const EXTERNAL: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.external.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: 9000}}]
"#;

    const LOCKED: &str = r#"
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"#;

    /// The index of `config` (one file) under the mesh-wide outbound `mode`.
    fn index(config: &str, mode: OutboundMode) -> Index {
        let settings = Settings {
            outbound_traffic_policy: mode,
            ..Settings::default()
        };
        index_with(config, settings)
    }

    /// A sidecar in namespace `shop`.
    fn shop_node() -> Node {
        Node {
            namespace: "shop".into(),
            ..Node::default()
        }
    }

    fn hosts(config: &str, mesh_wide: OutboundMode) -> Vec<String> {
        let index = index(config, mesh_wide);
        let node = shop_node();
        let scope = Scope::of(&index, &node);
        let services = scope.visible_services(&index);
        let routes = outbound_route_config(&index, &scope, &services);
        let names = routes.virtual_hosts.iter().map(|h| h.name.clone());
        names.collect()
    }

    #[test]
    fn allow_any_adds_nothing_and_registry_only_a_catch_all_after_the_known_hosts() {
        assert_eq!(
            hosts(EXTERNAL, OutboundMode::AllowAny),
            ["api.external.com:80"]
        );
        assert_eq!(
            hosts(EXTERNAL, OutboundMode::RegistryOnly),
            ["api.external.com:80", BLACKHOLE]
        );
    }

    const DNS: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.external.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: TLS, targetPort: 8443}]
  endpoints:
  - {address: us.api.external.com, ports: {http: 8080}, labels: {region: us}}
  - {address: eu.api.external.com, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mirror, namespace: shop}
spec:
  hosts: [mirror.external.com, mirror2.external.com]
  resolution: DNS_ROUND_ROBIN
  ports: [{number: 443, name: tls, protocol: TLS}]
"#;

    fn dns_of(config: &str, host: &str, port: u16) -> ClusterSpec {
        let index = index(config, Settings::default().outbound_traffic_policy);
        let snapshot = crate::translate::snapshot(&index, &shop_node());
        let cluster = snapshot
            .clusters
            .iter()
            .find(|c| c.host == host && c.port == port);
        cluster.cloned().expect("the entry's cluster")
    }

    #[test]
    fn dns_service_entries_send_names_with_their_ports_not_ip_endpoints() {
        let http = dns_of(DNS, "api.external.com", 80);
        assert!(http.endpoints.is_empty(), "{:?}", http.endpoints);
        let dns = http.dns.expect("a DNS cluster");
        assert_eq!(dns.lookup, DnsLookup::Strict);
        let names: Vec<_> = dns
            .endpoints
            .iter()
            .map(|e| (e.hostname.as_str(), e.port, e.weight))
            .collect();
        // The endpoint's own port for `http` wins; the other keeps the port's number.
        assert_eq!(
            names,
            [
                ("us.api.external.com", 8080, None),
                ("eu.api.external.com", 80, Some(3))
            ]
        );
        assert_eq!(dns.endpoints[0].labels["region"], "us");
        // targetPort when the endpoint names no port.
        let tls = dns_of(DNS, "api.external.com", 443)
            .dns
            .expect("a DNS cluster");
        let ports: Vec<u16> = tls.endpoints.iter().map(|e| e.port).collect();
        assert_eq!(ports, [8443, 8443]);
    }

    #[test]
    fn a_dns_entry_without_endpoints_resolves_its_own_hosts() {
        let mirror = dns_of(DNS, "mirror.external.com", 443);
        let dns = mirror.dns.expect("a DNS cluster");
        assert_eq!(dns.lookup, DnsLookup::Logical);
        let names: Vec<_> = dns
            .endpoints
            .iter()
            .map(|e| (e.hostname.as_str(), e.port))
            .collect();
        // Each host's cluster resolves that host.
        assert_eq!(names, [("mirror.external.com", 443)]);
        let second = dns_of(DNS, "mirror2.external.com", 443).dns;
        let second: Vec<_> = second.iter().flat_map(|d| &d.endpoints).collect();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].hostname, "mirror2.external.com");
        // A STATIC entry stays a cluster of IP endpoints.
        let fixed = dns_of(EXTERNAL, "api.external.com", 80);
        assert!(fixed.dns.is_none());
        assert_eq!(fixed.endpoints[0].address.to_string(), "127.0.0.1:9000");
    }

    /// A capture-mode proxy's snapshot under the mesh-wide `mode`.
    fn captured(config: &str, mode: OutboundMode) -> mesh_core::snapshot::Snapshot {
        let index = index(config, mode);
        let mut node = shop_node();
        let capture = (
            crate::translate::INTERCEPTION_MODE,
            crate::translate::REDIRECT,
        );
        node.metadata.insert(capture.0.into(), capture.1.into());
        crate::translate::snapshot(&index, &node)
    }

    #[test]
    fn registry_only_in_capture_mode_routes_the_unmatched_to_the_blackhole() {
        use mesh_core::snapshot::BLACKHOLE_CLUSTER;
        let open = captured(EXTERNAL, OutboundMode::AllowAny);
        assert!(!open.listeners.iter().any(|l| l.name == "virtualOutbound"));
        assert!(!open.clusters.iter().any(|c| c.host == BLACKHOLE_CLUSTER));

        let locked = captured(EXTERNAL, OutboundMode::RegistryOnly);
        let virtual_outbound = locked
            .listeners
            .iter()
            .find(|l| l.name == "virtualOutbound")
            .expect("the virtualOutbound listener");
        assert_eq!(
            virtual_outbound.tcp_route[0].destination.host,
            BLACKHOLE_CLUSTER
        );
        let blackhole = locked.clusters.iter().find(|c| c.host == BLACKHOLE_CLUSTER);
        assert!(blackhole.expect("the cluster").endpoints.is_empty());
        // The external host has no VIP: port 80 by Host, on any address.
        let any_80 = locked
            .listeners
            .iter()
            .find(|l| l.address.to_string() == "0.0.0.0:80")
            .expect("an HTTP listener on port 80");
        assert_eq!(any_80.route_config.as_deref(), Some("outbound"));
        // The proxy takes it as it is.
        mesh_core::compile::compile(&locked).expect("the snapshot compiles");
    }

    #[test]
    fn a_sidecar_overrides_the_mesh_wide_default() {
        let locked = format!("{EXTERNAL}{LOCKED}");
        assert_eq!(
            hosts(&locked, OutboundMode::AllowAny),
            ["api.external.com:80", BLACKHOLE]
        );
        let open = locked.replace("REGISTRY_ONLY", "ALLOW_ANY");
        assert_eq!(
            hosts(&open, OutboundMode::RegistryOnly),
            ["api.external.com:80"]
        );
    }
}
