//! EndpointSlices (and the Pods they name) into a service's endpoints.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use kube::runtime::reflector::{ObjectRef, Store};

use crate::registry::{Endpoint, ServicePort};

/// The label that ties a slice to its service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// `(namespace, service name)`.
pub(super) type ServiceName = (String, String);

/// An endpoint and the DNS label its slice gives it (a StatefulSet pod's `hostname`), which
/// a headless service turns into a host of its own.
#[derive(Clone, Debug)]
pub(super) struct NamedEndpoint {
    pub hostname: Option<String>,
    pub endpoint: Endpoint,
}

/// Every slice, grouped by the service its label names; done once per rebuild so that
/// matching services to slices is not quadratic.
pub(super) fn slices_by_service(
    store: &Store<EndpointSlice>,
) -> HashMap<ServiceName, Vec<Arc<EndpointSlice>>> {
    let mut by_service: HashMap<ServiceName, Vec<Arc<EndpointSlice>>> = HashMap::new();
    for slice in store.state() {
        let metadata = &slice.metadata;
        let service = metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(SERVICE_NAME_LABEL));
        if let (Some(namespace), Some(service)) = (&metadata.namespace, service) {
            let key = (namespace.clone(), service.clone());
            by_service.entry(key).or_default().push(slice);
        }
    }
    by_service
}

/// The ready endpoints of one service across all its slices, each address once, in
/// address order. Not-ready endpoints (starting, failing their probe, or terminating) are
/// left out, as Istio does.
pub(super) fn service_endpoints(
    ports: &[ServicePort],
    slices: &[Arc<EndpointSlice>],
    pods: &Store<Pod>,
) -> Vec<NamedEndpoint> {
    let mut by_address = BTreeMap::new();
    for slice in slices {
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let target_ports = target_ports(ports, slice.ports.as_deref().unwrap_or_default());
        for entry in &slice.endpoints {
            let ready = entry.conditions.as_ref().and_then(|c| c.ready);
            // The API says an unknown readiness means ready.
            if ready == Some(false) {
                continue;
            }
            let pod = entry
                .target_ref
                .as_ref()
                .and_then(|r| pod_of(r, &namespace, pods));
            for address in entry
                .addresses
                .iter()
                .filter_map(|a| a.parse::<IpAddr>().ok())
            {
                by_address.entry(address).or_insert_with(|| NamedEndpoint {
                    hostname: entry.hostname.clone(),
                    endpoint: endpoint(address, &target_ports, &namespace, entry, pod.as_deref()),
                });
            }
        }
    }
    by_address.into_values().collect()
}

/// Service port number -> the slice's port of the same name: the resolved targetPort.
fn target_ports(ports: &[ServicePort], slice_ports: &[EndpointPort]) -> BTreeMap<u16, u16> {
    ports
        .iter()
        .filter_map(|port| {
            let slice_port = slice_ports
                .iter()
                .find(|p| p.name.as_deref().unwrap_or_default() == port.name)?;
            let target = u16::try_from(slice_port.port?).ok()?;
            Some((port.number, target))
        })
        .collect()
}

fn pod_of(target: &ObjectReference, namespace: &str, pods: &Store<Pod>) -> Option<Arc<Pod>> {
    if target.kind.as_deref() != Some("Pod") {
        return None;
    }
    let name = target.name.as_deref()?;
    let namespace = target.namespace.as_deref().unwrap_or(namespace);
    pods.get(&ObjectRef::new(name).within(namespace))
}

fn endpoint(
    address: IpAddr,
    ports: &BTreeMap<u16, u16>,
    namespace: &str,
    entry: &k8s_openapi::api::discovery::v1::Endpoint,
    pod: Option<&Pod>,
) -> Endpoint {
    let workload = entry.target_ref.as_ref().and_then(|r| r.name.clone());
    // A pod not listed yet gets its labels and identity on the rebuild its event causes.
    let labels = pod.and_then(|p| p.metadata.labels.clone());
    let service_account = pod
        .and_then(|p| p.spec.as_ref())
        .and_then(|spec| spec.service_account_name.clone());
    Endpoint {
        address,
        ports: ports.clone(),
        labels: labels.unwrap_or_default(),
        weight: 0,
        workload: workload.unwrap_or_default(),
        namespace: namespace.to_owned(),
        service_account: service_account.unwrap_or_else(|| "default".to_owned()),
    }
}
