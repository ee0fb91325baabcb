//! ServiceEntries and WorkloadEntries as registry services and endpoints: how local mode
//! names its services, and how a cluster adds hosts outside Kubernetes Services.

use std::collections::BTreeMap;
use std::net::IpAddr;

use mesh_core::config::{
    ConfigObject, Object, Port, Resolution, ServiceEntrySpec, WorkloadEntrySpec,
};
use mesh_core::load::Located;
use mesh_core::model::selects;
use mesh_core::snapshot::DnsLookup;

use crate::registry::{
    DnsHost, Endpoint, Registry, Service, ServiceDns, ServiceOrigin, ServicePort, port_protocol,
};

/// Adds every ServiceEntry host among `configs` to `registry`, with its inline endpoints and
/// the WorkloadEntries its `workloadSelector` picks in its namespace.
///
/// Wildcard hosts name no endpoints and are left out. With `resolution: DNS` (or
/// `DNS_ROUND_ROBIN`) the endpoints are names the proxies resolve (the entry's own hosts
/// when it lists none); otherwise an endpoint whose address is not an IP is left out.
pub fn add_service_entries(configs: &[Located<ConfigObject>], registry: &mut Registry) {
    let workload_entries: Vec<&Object<WorkloadEntrySpec>> = configs
        .iter()
        .filter_map(|c| match &c.object {
            ConfigObject::WorkloadEntry(we) => Some(we),
            _ => None,
        })
        .collect();
    for located in configs {
        let ConfigObject::ServiceEntry(se) = &located.object else {
            continue;
        };
        let dns_lookup = dns_lookup(se.spec.resolution);
        let endpoints = if dns_lookup.is_some() {
            Vec::new()
        } else {
            service_entry_endpoints(se, &workload_entries)
        };
        for host in &se.spec.hosts {
            let hostname = mesh_core::host::resolve(host, &se.metadata.namespace);
            if hostname.starts_with('*') {
                continue;
            }
            let dns = dns_lookup.map(|lookup| ServiceDns {
                lookup,
                hosts: dns_hosts(se, &workload_entries, host),
            });
            let service = Service {
                hostname,
                namespace: se.metadata.namespace.clone(),
                ports: se.spec.ports.iter().filter_map(service_port).collect(),
                export_to: se.spec.export_to.clone(),
                addresses: se
                    .spec
                    .addresses
                    .iter()
                    .filter_map(|a| single_address(a))
                    .collect(),
                origin: ServiceOrigin::ServiceEntry,
                dns: dns.clone(),
                source: located.origin.clone(),
            };
            registry.insert(service, endpoints.clone());
        }
    }
}

/// An address, or a CIDR holding exactly one (`10.0.0.1/32`); wider blocks are not a
/// virtual IP.
fn single_address(text: &str) -> Option<std::net::IpAddr> {
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (text, None),
    };
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let full = if ip.is_ipv4() { "32" } else { "128" };
    prefix.is_none_or(|p| p == full).then_some(ip)
}

fn service_port(port: &Port) -> Option<ServicePort> {
    Some(ServicePort {
        name: port.name.clone(),
        number: u16::try_from(port.number).ok()?,
        protocol: port_protocol(Some(&port.protocol), &port.name),
    })
}

/// Whether the proxies resolve the entry's names: STRICT for `DNS`, LOGICAL for
/// `DNS_ROUND_ROBIN`.
fn dns_lookup(resolution: Resolution) -> Option<DnsLookup> {
    match resolution {
        Resolution::Dns => Some(DnsLookup::Strict),
        Resolution::DnsRoundRobin => Some(DnsLookup::Logical),
        Resolution::None | Resolution::Static => None,
    }
}

/// The names a DNS-resolution entry's proxies resolve for `host`: the entry's endpoints'
/// addresses (inline, then selected WorkloadEntries), or, with none, `host` itself, each on
/// the ports the endpoint names (else `targetPort`, else the port's number).
fn dns_hosts(
    se: &Object<ServiceEntrySpec>,
    workload_entries: &[&Object<WorkloadEntrySpec>],
    host: &str,
) -> Vec<DnsHost> {
    let namespace = &se.metadata.namespace;
    let selected = se.spec.workload_selector.iter().flat_map(|selector| {
        workload_entries
            .iter()
            .filter(|we| &we.metadata.namespace == namespace)
            .filter(|we| selects(&selector.labels, &we.spec.labels))
            .map(|we| &we.spec)
    });
    let entries: Vec<&WorkloadEntrySpec> = se.spec.endpoints.iter().chain(selected).collect();
    if entries.is_empty() {
        vec![DnsHost {
            hostname: host.to_owned(),
            ports: target_ports(&se.spec.ports, &WorkloadEntrySpec::default()),
            labels: Default::default(),
            weight: 0,
        }]
    } else {
        entries
            .into_iter()
            .filter(|e| !e.address.is_empty() && !e.address.starts_with("unix://"))
            .map(|entry| DnsHost {
                hostname: entry.address.clone(),
                ports: target_ports(&se.spec.ports, entry),
                labels: entry.labels.clone(),
                weight: entry.weight.unwrap_or(0),
            })
            .collect()
    }
}

fn service_entry_endpoints(
    se: &Object<ServiceEntrySpec>,
    workload_entries: &[&Object<WorkloadEntrySpec>],
) -> Vec<Endpoint> {
    let namespace = &se.metadata.namespace;
    let inline = se
        .spec
        .endpoints
        .iter()
        .map(|e| (se.metadata.name.as_str(), e));
    let selected = se.spec.workload_selector.iter().flat_map(|selector| {
        workload_entries
            .iter()
            .filter(|we| &we.metadata.namespace == namespace)
            .filter(|we| selects(&selector.labels, &we.spec.labels))
            .map(|we| (we.metadata.name.as_str(), &we.spec))
    });
    inline
        .chain(selected)
        .filter_map(|(workload, entry)| endpoint(&se.spec.ports, workload, namespace, entry))
        .collect()
}

/// For each service port number, the port `entry` listens on: the entry's port of the same
/// name, then the ServiceEntry's `targetPort`, then the number itself.
fn target_ports(ports: &[Port], entry: &WorkloadEntrySpec) -> BTreeMap<u16, u16> {
    ports
        .iter()
        .filter_map(|port| {
            let number = u16::try_from(port.number).ok()?;
            let target = entry
                .ports
                .get(&port.name)
                .copied()
                .or(port.target_port)
                .unwrap_or(port.number);
            Some((number, u16::try_from(target).ok()?))
        })
        .collect()
}

fn endpoint(
    ports: &[Port],
    workload: &str,
    namespace: &str,
    entry: &WorkloadEntrySpec,
) -> Option<Endpoint> {
    let address: IpAddr = entry.address.parse().ok()?;
    Some(Endpoint {
        address,
        ports: target_ports(ports, entry),
        labels: entry.labels.clone(),
        weight: entry.weight.unwrap_or(0),
        workload: workload.to_owned(),
        namespace: namespace.to_owned(),
        service_account: entry
            .service_account
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_of(yaml: &str) -> Registry {
        let set = mesh_core::load::load_str(yaml, "test.yaml");
        assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
        let mut registry = Registry::default();
        add_service_entries(&set.objects, &mut registry);
        registry
    }

    const CANARY: &str = r#"
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: canary}
spec: {address: 127.0.0.1, ports: {http: 9081}, labels: {app: reviews, version: v1}, serviceAccount: reviews}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: canary}
spec: {address: 127.0.0.2, labels: {app: reviews, version: v2}, weight: 3}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {name: elsewhere, namespace: other}
spec: {address: 127.0.0.9, labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: reviews, namespace: canary}
spec:
  hosts: [reviews, reviews.example.com, "*.wild.example.com"]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP, targetPort: 9090}]
  workloadSelector: {labels: {app: reviews}}
  endpoints: [{address: 10.0.0.1}, {address: not-an-ip.example.com}]
"#;

    #[test]
    fn service_entries_become_services_with_their_selected_workloads() {
        let registry = registry_of(CANARY);
        let hosts: Vec<_> = registry.services.keys().cloned().collect();
        assert_eq!(
            hosts,
            vec![
                ("canary".into(), "reviews.canary.svc.cluster.local".into()),
                ("canary".into(), "reviews.example.com".into()),
            ]
        );
        let key = ("canary".to_owned(), "reviews.example.com".to_owned());
        let service = &registry.services[&key];
        assert_eq!(service.ports[0].number, 9080);
        assert_eq!(
            service.ports[0].protocol,
            Some(mesh_core::snapshot::AppProtocol::Http)
        );
        let endpoints = registry.endpoints(&key);
        let found: Vec<_> = endpoints
            .iter()
            .map(|e| {
                (
                    e.workload.as_str(),
                    e.address.to_string(),
                    e.ports[&9080],
                    e.weight,
                )
            })
            .collect();
        // Inline first, then selected entries of the same namespace only; the named port
        // beats targetPort; a name instead of an IP is left out.
        assert_eq!(
            found,
            vec![
                ("reviews", "10.0.0.1".to_owned(), 9090, 0),
                ("reviews-v1", "127.0.0.1".to_owned(), 9081, 0),
                ("reviews-v2", "127.0.0.2".to_owned(), 9090, 3),
            ]
        );
        assert_eq!(endpoints[1].service_account, "reviews");
        assert_eq!(endpoints[2].service_account, "default");
    }
}
