//! Clusters: one per service port, with the DestinationRule that applies to it from this
//! proxy's namespace, and its endpoints (sent as their own resource).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mesh_core::config::{DestinationRuleSpec, Object};
use mesh_core::host::resolve;
use mesh_core::snapshot::{ClusterSpec, DnsEndpointSpec, DnsSpec, EndpointSpec};

use super::{Scope, VisibleService};
use crate::index::Index;
use crate::registry::{Service, ServiceDns};

pub fn cluster_spec(index: &Index, scope: &Scope, service: &Service, port: u16) -> ClusterSpec {
    let rule = destination_rule(index, scope, service);
    ClusterSpec {
        host: service.hostname.clone(),
        port,
        endpoints: Vec::new(),
        traffic_policy: rule.and_then(|r| r.spec.traffic_policy.clone()),
        subsets: rule.map(|r| r.spec.subsets.clone()).unwrap_or_default(),
        destination_rule: rule.map(|r| format!("{}/{}", r.metadata.namespace, r.metadata.name)),
        dns: service.dns.as_ref().map(|dns| dns_spec(dns, port)),
    }
}

/// A DNS-resolution ServiceEntry's names for one of its ports: the proxy resolves them
/// (Envoy's STRICT_DNS, or LOGICAL_DNS for `DNS_ROUND_ROBIN`).
fn dns_spec(dns: &ServiceDns, port: u16) -> DnsSpec {
    DnsSpec {
        lookup: dns.lookup,
        endpoints: dns
            .hosts
            .iter()
            .filter_map(|host| {
                Some(DnsEndpointSpec {
                    hostname: host.hostname.clone(),
                    port: *host.ports.get(&port)?,
                    labels: host.labels.clone(),
                    weight: (host.weight > 0).then_some(host.weight),
                })
            })
            .collect(),
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
                workload: Some(workload_name(&endpoint.workload, &endpoint.labels))
                    .filter(|name| !name.is_empty()),
            })
        })
        .collect()
}

/// The workload a pod belongs to, as the injector names the proxy's own (`MESH_WORKLOAD`),
/// so that both sides of a request agree: a Deployment's pod `reviews-v1-5b4d7c9f8d-x2k4p`
/// (`pod-template-hash=5b4d7c9f8d`) is `reviews-v1`, a StatefulSet's `web-0` is `web`, a
/// Job's pod is its `job-name`. Anything else (a WorkloadEntry) keeps its name.
fn workload_name(name: &str, labels: &BTreeMap<String, String>) -> String {
    if let Some(hash) = labels.get("pod-template-hash")
        && let Some((deployment, _)) = name.split_once(&format!("-{hash}-"))
    {
        return deployment.to_owned();
    }
    if labels
        .get("statefulset.kubernetes.io/pod-name")
        .map(String::as_str)
        == Some(name)
        && let Some((set, ordinal)) = name.rsplit_once('-')
        && ordinal.bytes().all(|b| b.is_ascii_digit())
    {
        return set.to_owned();
    }
    if let Some(job) = labels.get("job-name") {
        // A CronJob's Job is `<cronjob>-<scheduled minute>`: one workload, not one per run.
        return match job.rsplit_once('-') {
            Some((cron, minute))
                if minute.len() >= 8 && minute.bytes().all(|b| b.is_ascii_digit()) =>
            {
                cron.to_owned()
            }
            _ => job.clone(),
        };
    }
    name.to_owned()
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

#[cfg(test)]
mod workload_tests {
    use super::workload_name;

    fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pods_are_named_by_their_controller() {
        let deployment = labels(&[("app", "reviews"), ("pod-template-hash", "5b4d7c9f8d")]);
        assert_eq!(
            workload_name("reviews-v1-5b4d7c9f8d-x2k4p", &deployment),
            "reviews-v1"
        );
        let set = labels(&[("statefulset.kubernetes.io/pod-name", "web-0")]);
        assert_eq!(workload_name("web-0", &set), "web");
        let cron = labels(&[("job-name", "backup-28947360")]);
        assert_eq!(workload_name("backup-28947360-abcde", &cron), "backup");
        let job = labels(&[("job-name", "migrate")]);
        assert_eq!(workload_name("migrate-abcde", &job), "migrate");
        // A WorkloadEntry, or a pod whose labels do not say.
        assert_eq!(workload_name("vm-1", &labels(&[("app", "db")])), "vm-1");
        let stale = labels(&[("pod-template-hash", "other")]);
        assert_eq!(
            workload_name("reviews-v1-5b4d7c9f8d-x2k4p", &stale),
            "reviews-v1-5b4d7c9f8d-x2k4p"
        );
    }
}
