//! What a proxy can see: the services, routes and policies exported to its namespace and,
//! when a Sidecar applies to it, only the hosts its egress section imports.

use mesh_core::config::OutboundMode;
use mesh_core::host::covers;
use mesh_core::model::{Labels, selects};

use super::Node;
use crate::index::Index;
use crate::registry::{Service, ServiceKey};

/// A proxy's view. Proxies with equal [`Scope::key`]s see the same services, routes and
/// clusters, so the push layer computes those once per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub namespace: String,
    pub root_namespace: String,
    /// The Sidecar that applies, as `namespace/name`.
    pub sidecar: Option<String>,
    /// Its egress hosts as `(namespace, host)` patterns; `None`: everything exported.
    egress: Option<Vec<(String, String)>>,
    /// Its `outboundTrafficPolicy` mode, if it sets one.
    pub(super) outbound_mode: Option<OutboundMode>,
}

pub struct VisibleService<'a> {
    pub key: &'a ServiceKey,
    pub service: &'a Service,
}

impl Scope {
    pub fn of(index: &Index, node: &Node) -> Self {
        let root = &index.settings.root_namespace;
        let sidecar = select_sidecar(index, &node.namespace, &node.labels, root);
        let egress = sidecar.and_then(|sc| {
            let hosts: Vec<(String, String)> = sc
                .spec
                .egress
                .iter()
                .flat_map(|e| &e.hosts)
                .filter_map(|h| h.split_once('/'))
                .map(|(ns, host)| (ns.to_owned(), host.to_ascii_lowercase()))
                .collect();
            // A Sidecar without egress listeners leaves egress as it was: everything.
            (!sc.spec.egress.is_empty()).then_some(hosts)
        });
        Self {
            namespace: node.namespace.clone(),
            root_namespace: root.clone(),
            sidecar: sidecar.map(|sc| format!("{}/{}", sc.metadata.namespace, sc.metadata.name)),
            egress,
            outbound_mode: sidecar
                .and_then(|sc| sc.spec.outbound_traffic_policy.as_ref())
                .map(|p| p.mode),
        }
    }

    /// Proxies with equal keys get equal routes and clusters.
    pub fn key(&self) -> (String, Option<String>) {
        (self.namespace.clone(), self.sidecar.clone())
    }

    /// Istio's `exportTo` of an object in `object_namespace`, seen from this proxy.
    pub fn exported(&self, export_to: &[String], object_namespace: &str) -> bool {
        export_to.is_empty()
            || export_to.iter().any(|to| match to.as_str() {
                "*" => true,
                "." => object_namespace == self.namespace,
                "~" => false,
                other => other == self.namespace,
            })
    }

    /// Whether the Sidecar's egress hosts import `hostname` from `namespace`.
    pub fn imports(&self, namespace: &str, hostname: &str) -> bool {
        let Some(egress) = &self.egress else {
            return true;
        };
        egress.iter().any(|(ns, host)| {
            let namespace_ok = match ns.as_str() {
                "*" => true,
                "." => namespace == self.namespace,
                "~" => false,
                other => other == namespace,
            };
            namespace_ok && covers(host, hostname)
        })
    }

    /// Services exported to this proxy and imported by its Sidecar, one per hostname: a
    /// host defined in the proxy's own namespace wins over the same host elsewhere.
    pub fn visible_services<'a>(&self, index: &'a Index) -> Vec<VisibleService<'a>> {
        let mut chosen: std::collections::BTreeMap<&str, VisibleService<'a>> = Default::default();
        for (key, service) in &index.registry().services {
            if !self.exported(&service.export_to, &service.namespace)
                || !self.imports(&service.namespace, &service.hostname)
            {
                continue;
            }
            let own = service.namespace == self.namespace;
            match chosen.get(service.hostname.as_str()) {
                Some(existing) if existing.service.namespace == self.namespace || !own => {}
                _ => {
                    chosen.insert(&service.hostname, VisibleService { key, service });
                }
            }
        }
        chosen.into_values().collect()
    }
}

/// Istio's choice: a Sidecar in the proxy's namespace whose selector matches it, else the
/// namespace's Sidecar without a selector, else the root namespace's.
pub(super) fn select_sidecar<'a>(
    index: &'a Index,
    namespace: &str,
    labels: &Labels,
    root: &str,
) -> Option<&'a mesh_core::config::Object<mesh_core::config::SidecarSpec>> {
    fn in_namespace<'a, 'n>(
        index: &'a Index,
        ns: &'n str,
    ) -> impl Iterator<Item = &'a mesh_core::config::Object<mesh_core::config::SidecarSpec>> + 'n
    where
        'a: 'n,
    {
        index
            .sidecars
            .iter()
            .filter(move |sc| sc.metadata.namespace == ns)
    }
    in_namespace(index, namespace)
        .find(|sc| {
            sc.spec
                .workload_selector
                .as_ref()
                .is_some_and(|sel| selects(&sel.labels, labels))
        })
        .or_else(|| in_namespace(index, namespace).find(|sc| sc.spec.workload_selector.is_none()))
        .or_else(|| in_namespace(index, root).find(|sc| sc.spec.workload_selector.is_none()))
}
