//! Kubernetes Services and their EndpointSlices into registry services.

use k8s_openapi::api::core::v1::Service as KubeService;
use kube::runtime::reflector::Store;
use mesh_core::diagnostic::{Diagnostic, Origin};
use mesh_core::host::CLUSTER_DOMAIN;
use mesh_core::load::Skipped;

use super::Stores;
use super::endpoints::{NamedEndpoint, service_endpoints, slices_by_service};
use crate::registry::{Registry, Service, ServiceOrigin, ServicePort, port_protocol};
use crate::source::{Action, StatusEntry};

/// Istio's per-service visibility annotation: a comma-separated `exportTo` list.
const EXPORT_TO_ANNOTATION: &str = "networking.istio.io/exportTo";

/// Adds every Service and its ready endpoints to `registry`, plus one host per named
/// endpoint of a headless service. Returns a status entry for each Service left out.
pub(super) fn add_services(stores: &Stores, registry: &mut Registry) -> Vec<StatusEntry> {
    let slices = slices_by_service(&stores.endpoint_slices);
    let mut status = Vec::new();
    for kube_service in stores.services.state() {
        let origin = origin(&kube_service);
        if is_external_name(&kube_service) {
            status.push(external_name_skipped(&origin));
            continue;
        }
        let key = (origin.namespace.clone(), origin.name.clone());
        let service = service(&kube_service, origin);
        let slices = slices.get(&key).map_or(&[][..], Vec::as_slice);
        let endpoints = service_endpoints(&service.ports, slices, &stores.pods);
        if is_headless(&kube_service) {
            add_pod_hosts(&service, &key.1, &endpoints, registry);
        }
        registry.insert(service, endpoints.into_iter().map(|e| e.endpoint).collect());
    }
    // The store's order is a hash order: sort so that the status reads the same each time.
    status.sort_by_key(|entry| {
        let origin = &entry.diagnostic.origin;
        (origin.namespace.clone(), origin.name.clone())
    });
    status
}

/// The Services routes may name, for validation's "is this host defined" check.
pub(super) fn known_services(store: &Store<KubeService>) -> Vec<Skipped> {
    store
        .state()
        .iter()
        .filter(|service| !is_external_name(service))
        .map(|service| Skipped {
            origin: origin(service),
            api_version: "v1".to_owned(),
        })
        .collect()
}

fn origin(service: &KubeService) -> Origin {
    Origin {
        file: String::new(),
        index: None,
        kind: "Service".to_owned(),
        namespace: service.metadata.namespace.clone().unwrap_or_default(),
        name: service.metadata.name.clone().unwrap_or_default(),
    }
}

fn service(kube_service: &KubeService, source: Origin) -> Service {
    let spec = kube_service.spec.as_ref();
    let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    Service {
        hostname: format!("{}.{}.{CLUSTER_DOMAIN}", source.name, source.namespace),
        namespace: source.namespace.clone(),
        ports: ports.iter().filter_map(service_port).collect(),
        export_to: export_to(kube_service),
        addresses: cluster_ips(kube_service),
        origin: ServiceOrigin::Kubernetes,
        dns: None,
        source,
    }
}

fn service_port(port: &k8s_openapi::api::core::v1::ServicePort) -> Option<ServicePort> {
    // The proxy carries TCP only; a UDP twin of a TCP port (DNS's 53) would also collide
    // with it by number.
    if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
        return None;
    }
    let name = port.name.clone().unwrap_or_default();
    Some(ServicePort {
        protocol: port_protocol(port.app_protocol.as_deref(), &name),
        number: u16::try_from(port.port).ok()?,
        name,
    })
}

/// The annotation's namespaces; none means everywhere.
fn export_to(service: &KubeService) -> Vec<String> {
    let annotations = service.metadata.annotations.as_ref();
    let Some(list) = annotations.and_then(|a| a.get(EXPORT_TO_ANNOTATION)) else {
        return Vec::new();
    };
    list.split(',')
        .map(str::trim)
        .filter(|namespace| !namespace.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `web-0.web.default.svc.cluster.local` for each endpoint with a hostname, so a client can
/// reach one StatefulSet pod by its stable name.
fn add_pod_hosts(
    service: &Service,
    name: &str,
    endpoints: &[NamedEndpoint],
    registry: &mut Registry,
) {
    for named in endpoints {
        let Some(hostname) = named.hostname.as_deref().filter(|h| !h.is_empty()) else {
            continue;
        };
        let pod_host = Service {
            hostname: format!("{hostname}.{name}.{}.{CLUSTER_DOMAIN}", service.namespace),
            ..service.clone()
        };
        registry.insert(pod_host, vec![named.endpoint.clone()]);
    }
}

/// `spec.clusterIPs` (dual-stack), else `spec.clusterIP`; none for a headless Service.
fn cluster_ips(service: &KubeService) -> Vec<std::net::IpAddr> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let listed = spec.cluster_ips.as_deref().unwrap_or_default();
    let single = spec.cluster_ip.as_slice();
    let texts = if listed.is_empty() { single } else { listed };
    texts.iter().filter_map(|ip| ip.parse().ok()).collect()
}

fn is_headless(service: &KubeService) -> bool {
    let spec = service.spec.as_ref();
    spec.and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn is_external_name(service: &KubeService) -> bool {
    let spec = service.spec.as_ref();
    spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName")
}

/// ExternalName is a DNS alias kube-proxy does not route either; mesh would need DNS
/// resolution in the proxy to honour it, so it says so instead of guessing.
fn external_name_skipped(origin: &Origin) -> StatusEntry {
    StatusEntry {
        diagnostic: Diagnostic::warning(
            origin,
            "spec.type",
            "ExternalName services are not routed by mesh yet; \
             write a ServiceEntry with resolution: DNS for the external host",
        ),
        action: Action::Skipped,
    }
}
