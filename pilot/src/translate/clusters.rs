//! Clusters: one per service port, with the DestinationRule that applies to it from this
//! proxy's namespace, and its endpoints (sent as their own resource).

use std::net::SocketAddr;

use mesh_core::config::{DestinationRuleSpec, Object};
use mesh_core::host::resolve;
use mesh_core::snapshot::{ClusterSpec, EndpointSpec};

use super::{Scope, VisibleService};
use crate::index::Index;
use crate::registry::Service;

pub fn cluster_spec(index: &Index, scope: &Scope, service: &Service, port: u16) -> ClusterSpec {
    let rule = destination_rule(index, scope, service);
    ClusterSpec {
        host: service.hostname.clone(),
        port,
        endpoints: Vec::new(),
        traffic_policy: rule.and_then(|r| r.spec.traffic_policy.clone()),
        subsets: rule.map(|r| r.spec.subsets.clone()).unwrap_or_default(),
        destination_rule: rule.map(|r| format!("{}/{}", r.metadata.namespace, r.metadata.name)),
    }
}

/// The endpoints serving `port`, at the port each workload listens on.
pub fn endpoint_specs(index: &Index, visible: &VisibleService<'_>, port: u16) -> Vec<EndpointSpec> {
    index
        .registry()
        .endpoints(visible.key)
        .iter()
        .filter_map(|endpoint| {
            let target = endpoint.ports.get(&port)?;
            Some(EndpointSpec {
                address: SocketAddr::new(endpoint.address, *target),
                labels: endpoint.labels.clone(),
                weight: (endpoint.weight > 0).then_some(endpoint.weight),
                // Who the endpoint must prove to be when the proxy originates mTLS to it.
                identity: Some(format!(
                    "spiffe://{}/ns/{}/sa/{}",
                    index.settings.trust_domain, endpoint.namespace, endpoint.service_account
                )),
            })
        })
        .collect()
}

/// Istio's lookup order: a rule in the proxy's namespace, then in the service's, then in
/// the root namespace; within one namespace an exact host beats the narrowest wildcard.
fn destination_rule<'a>(
    index: &'a Index,
    scope: &Scope,
    service: &Service,
) -> Option<&'a Object<DestinationRuleSpec>> {
    let candidates: Vec<(bool, &Object<DestinationRuleSpec>)> = index
        .destination_rule_hosts
        .matching(&service.hostname)
        .into_iter()
        .map(|(position, exact)| (exact, &index.destination_rules[position]))
        .filter(|(_, rule)| scope.exported(&rule.spec.export_to, &rule.metadata.namespace))
        .collect();
    let namespaces = [
        scope.namespace.as_str(),
        service.namespace.as_str(),
        scope.root_namespace.as_str(),
    ];
    namespaces.into_iter().find_map(|namespace| {
        candidates
            .iter()
            .filter(|(_, rule)| rule.metadata.namespace == namespace)
            // Exact first, then the longest (narrowest) wildcard; name order among equals.
            .min_by_key(|(exact, rule)| {
                let host = resolve(&rule.spec.host, &rule.metadata.namespace);
                (!exact, std::cmp::Reverse(host.len()))
            })
            .map(|(_, rule)| *rule)
    })
}
