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
    let sidecar = scope.sidecar.as_deref().and_then(|name| {
        index
            .sidecars
            .iter()
            .find(|s| format!("{}/{}", s.metadata.namespace, s.metadata.name) == name)
    });
    sidecar
        .and_then(|s| s.spec.outbound_traffic_policy.as_ref())
        .map_or(index.settings.outbound_traffic_policy, |p| p.mode)
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
    use std::sync::Arc;

    use super::*;
    use crate::index::Settings;
    use crate::source::last_good::LastGood;
    use crate::source::local::load_inputs;
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

    fn hosts(config: &str, mesh_wide: OutboundMode) -> Vec<String> {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.yaml"), config).expect("write config");
        let inputs = load_inputs(dir.path(), &mut LastGood::default());
        let settings = Settings {
            outbound_traffic_policy: mesh_wide,
            ..Settings::default()
        };
        let index = Index::new(settings, Arc::new(inputs));
        let node = Node {
            namespace: "shop".into(),
            ..Node::default()
        };
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
