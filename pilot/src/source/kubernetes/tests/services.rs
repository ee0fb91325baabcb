//! Services, EndpointSlices, Pods and Namespaces into the registry.

use std::collections::BTreeMap;

use mesh_core::snapshot::AppProtocol;

use super::{ALL_FIXTURES, Cluster, Object, fixture_object};
use crate::registry::{Endpoint, Registry, ServiceKey, ServiceOrigin, ServicePort};
use crate::source::Action;

fn key(host: &str) -> ServiceKey {
    ("bookinfo".to_owned(), host.to_owned())
}

fn addresses(registry: &Registry, host: &str) -> Vec<String> {
    let endpoints = registry.endpoints(&key(host));
    endpoints.iter().map(|e| e.address.to_string()).collect()
}

fn endpoint<'a>(registry: &'a Registry, host: &str, address: &str) -> &'a Endpoint {
    let endpoints = registry.endpoints(&key(host));
    let found = endpoints.iter().find(|e| e.address.to_string() == address);
    found.expect("endpoint present")
}

const REVIEWS: &str = "reviews.bookinfo.svc.cluster.local";
const WEB: &str = "web.bookinfo.svc.cluster.local";

#[test]
fn services_become_hosts_with_their_tcp_ports_and_protocols() {
    let registry = Cluster::listed(ALL_FIXTURES).inputs().registry;
    let reviews = &registry.services[&key(REVIEWS)];
    // appProtocol wins over the name; the UDP statsd port is left to kube-proxy.
    assert_eq!(
        reviews.ports,
        vec![
            ServicePort {
                name: "http".into(),
                number: 9080,
                protocol: Some(AppProtocol::Http)
            },
            ServicePort {
                name: "api".into(),
                number: 9090,
                protocol: Some(AppProtocol::Grpc)
            },
        ]
    );
    assert_eq!(reviews.origin, ServiceOrigin::Kubernetes);
    assert_eq!(reviews.namespace, "bookinfo");
    assert_eq!(
        (reviews.source.kind.as_str(), reviews.source.name.as_str()),
        ("Service", "reviews")
    );
    assert!(reviews.source.file.is_empty() && reviews.source.index.is_none());
}

#[test]
fn export_to_comes_from_the_annotation_and_defaults_to_everywhere() {
    let registry = Cluster::listed(ALL_FIXTURES).inputs().registry;
    assert_eq!(
        registry.services[&key(REVIEWS)].export_to,
        vec!["bookinfo".to_owned(), "istio-system".to_owned()]
    );
    assert!(registry.services[&key(WEB)].export_to.is_empty());
}

#[test]
fn external_name_services_are_skipped_with_a_status_entry() {
    let inputs = Cluster::listed(ALL_FIXTURES).inputs();
    let host = key("legacy-db.bookinfo.svc.cluster.local");
    assert!(!inputs.registry.services.contains_key(&host));
    let entry = inputs
        .status
        .iter()
        .find(|s| s.diagnostic.origin.name == "legacy-db")
        .expect("a status entry for the ExternalName service");
    assert_eq!(entry.action, Action::Skipped);
    assert_eq!(entry.diagnostic.field, "spec.type");
    assert!(entry.diagnostic.message.contains("ServiceEntry"));
}

#[test]
fn endpoints_are_ready_addresses_of_all_slices_once_each() {
    let registry = Cluster::listed(ALL_FIXTURES).inputs().registry;
    // 10.244.2.7 is starting and 10.244.3.9 terminating (ready: false); 10.244.1.5 is in
    // two slices; 10.244.3.14 has no conditions, which the API defines as ready.
    assert_eq!(
        addresses(&registry, REVIEWS),
        ["10.244.1.5", "10.244.3.14", "fd00:10:244:1::5"]
    );
}

#[test]
fn endpoints_map_service_ports_to_target_ports_and_carry_pod_identity() {
    let registry = Cluster::listed(ALL_FIXTURES).inputs().registry;
    let v1 = endpoint(&registry, REVIEWS, "10.244.1.5");
    assert_eq!(v1.ports, BTreeMap::from([(9080, 8080), (9090, 50051)]));
    assert_eq!(v1.workload, "reviews-v1-5b4d7c9f8d-x2k4p");
    assert_eq!(v1.namespace, "bookinfo");
    assert_eq!(v1.service_account, "bookinfo-reviews");
    assert_eq!(v1.labels["version"], "v1");
    assert_eq!(v1.labels["app"], "reviews");
    // The IPv6 address of the same pod is the same workload.
    let v1_ipv6 = endpoint(&registry, REVIEWS, "fd00:10:244:1::5");
    assert_eq!(v1_ipv6.labels, v1.labels);
    // A pod the reflector has not listed yet: named, but no labels or identity yet.
    let unlisted = endpoint(&registry, REVIEWS, "10.244.3.14");
    assert_eq!(unlisted.workload, "reviews-v3-6d8c5b7f9-h2p6d");
    assert!(unlisted.labels.is_empty());
    assert_eq!(unlisted.service_account, "default");
}

#[test]
fn a_pod_event_updates_its_endpoints_labels() {
    let mut cluster = Cluster::listed(ALL_FIXTURES);
    let Object::Pod(mut pod) = fixture_object("pods.yaml", "reviews-v1-5b4d7c9f8d-x2k4p") else {
        panic!("a Pod")
    };
    let labels = pod.metadata.labels.get_or_insert_default();
    labels.insert("version".into(), "v1-canary".into());
    cluster.apply(Object::Pod(pod));
    let registry = cluster.inputs().registry;
    let v1 = endpoint(&registry, REVIEWS, "10.244.1.5");
    assert_eq!(v1.labels["version"], "v1-canary");
}

#[test]
fn deleting_a_slice_removes_only_the_endpoints_no_other_slice_lists() {
    let mut cluster = Cluster::listed(ALL_FIXTURES);
    cluster.delete(fixture_object("endpointslices.yaml", "reviews-v6q4t"));
    let registry = cluster.inputs().registry;
    assert_eq!(addresses(&registry, REVIEWS), ["10.244.1.5", "10.244.3.14"]);

    // 10.244.1.5 is still in reviews-zm7fp.
    cluster.delete(fixture_object("endpointslices.yaml", "reviews-8x2kq"));
    let registry = cluster.inputs().registry;
    assert_eq!(addresses(&registry, REVIEWS), ["10.244.1.5", "10.244.3.14"]);

    cluster.delete(fixture_object("endpointslices.yaml", "reviews-zm7fp"));
    let registry = cluster.inputs().registry;
    assert!(addresses(&registry, REVIEWS).is_empty());
    assert!(
        registry.services.contains_key(&key(REVIEWS)),
        "the service stays"
    );
}

#[test]
fn a_headless_service_gives_each_named_pod_a_host_of_its_own() {
    let registry = Cluster::listed(ALL_FIXTURES).inputs().registry;
    assert_eq!(addresses(&registry, WEB), ["10.244.1.20", "10.244.2.21"]);
    let web_0 = "web-0.web.bookinfo.svc.cluster.local";
    assert_eq!(addresses(&registry, web_0), ["10.244.1.20"]);
    assert_eq!(
        addresses(&registry, "web-1.web.bookinfo.svc.cluster.local"),
        ["10.244.2.21"]
    );
    let service = &registry.services[&key(web_0)];
    assert_eq!(service.ports[0].number, 80);
    assert_eq!(service.ports[0].protocol, Some(AppProtocol::Http));
    let endpoint = endpoint(&registry, web_0, "10.244.1.20");
    assert_eq!(endpoint.ports, BTreeMap::from([(80, 8080)]));
    assert_eq!(endpoint.workload, "web-0");
    assert_eq!(
        endpoint.labels["statefulset.kubernetes.io/pod-name"],
        "web-0"
    );
    let web_1 = endpoint_of(&registry, "web-1.web.bookinfo.svc.cluster.local");
    assert_eq!(web_1.service_account, "web-sa");
    // A ClusterIP service gets no per-pod hosts.
    let hosts: Vec<_> = registry
        .services
        .keys()
        .map(|(_, host)| host.as_str())
        .collect();
    assert_eq!(
        hosts,
        [
            "payments.example.com",
            REVIEWS,
            "web-0.web.bookinfo.svc.cluster.local",
            "web-1.web.bookinfo.svc.cluster.local",
            WEB,
        ]
    );
}

fn endpoint_of<'a>(registry: &'a Registry, host: &str) -> &'a Endpoint {
    let endpoints = registry.endpoints(&key(host));
    endpoints.first().expect("one endpoint")
}

#[test]
fn namespaces_keep_their_labels() {
    let namespaces = Cluster::listed(ALL_FIXTURES).inputs().namespaces;
    assert_eq!(
        namespaces.keys().collect::<Vec<_>>(),
        ["bookinfo", "default"]
    );
    assert_eq!(namespaces["bookinfo"]["mesh-injection"], "enabled");
}

#[test]
fn a_list_in_progress_is_invisible_and_a_relist_replaces_the_stores() {
    let mut cluster = Cluster::listed(&["services.yaml"]);
    assert!(
        cluster
            .inputs()
            .registry
            .services
            .contains_key(&key(REVIEWS))
    );

    // A watch restart: objects arrive as InitApply and count only at InitDone. Until then
    // the stores keep the previous list.
    cluster.begin_list(&["namespaces.yaml"]);
    let inputs = cluster.inputs();
    assert!(inputs.registry.services.contains_key(&key(REVIEWS)));
    assert!(inputs.namespaces.is_empty());

    cluster.finish_list();
    let inputs = cluster.inputs();
    assert!(
        inputs.registry.services.is_empty(),
        "reviews was not relisted"
    );
    assert_eq!(inputs.namespaces.len(), 2);
}
