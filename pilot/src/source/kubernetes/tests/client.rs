//! [`KubernetesSource`] against a fake API server: kube's real client, discovery and
//! watchers over real HTTP.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::fake_api::{FakeApiServer, State, list};
use super::fixture_values;
use crate::source::Inputs;
use crate::source::kubernetes::KubernetesSource;
use crate::source::{Changes, Source};

const DEADLINE: Duration = Duration::from_secs(20);

/// A fixture's documents as the JSON the API server sends.
fn items(fixture: &str) -> Vec<Value> {
    let values = fixture_values(fixture);
    values
        .into_iter()
        .map(|v| serde_json::to_value(v).expect("JSON"))
        .collect()
}

/// The built-in resources, listed from the fixtures.
fn builtin_routes() -> HashMap<String, Value> {
    HashMap::from([
        (
            "/api/v1/services".into(),
            list("v1", "Service", items("services.yaml")),
        ),
        ("/api/v1/pods".into(), list("v1", "Pod", items("pods.yaml"))),
        (
            "/api/v1/namespaces".into(),
            list("v1", "Namespace", items("namespaces.yaml")),
        ),
        (
            "/apis/discovery.k8s.io/v1/endpointslices".into(),
            list(
                "discovery.k8s.io/v1",
                "EndpointSlice",
                items("endpointslices.yaml"),
            ),
        ),
    ])
}

/// Istio's networking group served at v1 (preferred) and v1beta1, with VirtualServices.
fn istio_routes() -> HashMap<String, Value> {
    let version =
        |v: &str| json!({"groupVersion": format!("networking.istio.io/{v}"), "version": v});
    let groups = json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
        "name": "networking.istio.io",
        "versions": [version("v1"), version("v1beta1")],
        "preferredVersion": version("v1"),
    }]});
    let resources = |v: &str| {
        json!({"kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": format!("networking.istio.io/{v}"), "resources": [
            {"name": "virtualservices", "singularName": "virtualservice", "namespaced": true,
             "kind": "VirtualService", "shortNames": ["vs"], "categories": ["istio-io"],
             "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]},
            {"name": "virtualservices/status", "singularName": "", "namespaced": true,
             "kind": "VirtualService", "verbs": ["get", "patch", "update"]},
        ]})
    };
    let mut virtual_services: Vec<Value> = items("configs.yaml")
        .into_iter()
        .filter(|item| item["kind"] == "VirtualService")
        .collect();
    // The same object, served under the version asked for.
    virtual_services[0]["apiVersion"] = json!("networking.istio.io/v1");
    HashMap::from([
        ("/apis".into(), groups),
        ("/apis/networking.istio.io/v1".into(), resources("v1")),
        (
            "/apis/networking.istio.io/v1beta1".into(),
            resources("v1beta1"),
        ),
        (
            "/apis/networking.istio.io/v1/virtualservices".into(),
            list("networking.istio.io/v1", "VirtualService", virtual_services),
        ),
    ])
}

async fn ready(source: &KubernetesSource) {
    tokio::time::timeout(DEADLINE, source.wait_until_ready())
        .await
        .expect("every resource listed before the deadline")
        .expect("the source is running");
    assert!(source.has_synced());
}

#[tokio::test]
async fn start_discovers_lists_retries_and_the_result_reaches_inputs() {
    let mut routes = builtin_routes();
    routes.extend(istio_routes());
    let server = FakeApiServer::start(State {
        routes,
        fail_once: Mutex::new(HashSet::from(["/api/v1/pods".to_owned()])),
        ..State::default()
    })
    .await;
    let (changes, marks) = Changes::new();
    let source = KubernetesSource::start(server.client.clone(), changes)
        .await
        .expect("discovery succeeds");
    let watched: Vec<_> = source
        .resources()
        .iter()
        .map(|r| r.resource.api_version.as_str())
        .collect();
    assert_eq!(watched, ["networking.istio.io/v1"]);
    ready(&source).await;
    assert!(
        marks.has_changed().expect("source alive"),
        "events marked the changes"
    );

    let inputs = source.inputs();
    let key = (
        "bookinfo".to_owned(),
        "reviews.bookinfo.svc.cluster.local".to_owned(),
    );
    let endpoints = inputs.registry.endpoints(&key);
    assert_eq!(endpoints.len(), 3);
    assert_eq!(
        endpoints[0].service_account, "bookinfo-reviews",
        "pods were listed after the retry"
    );
    assert_eq!(inputs.configs.len(), 1);
    assert_eq!(inputs.configs[0].origin.name, "reviews");

    let requests = server.requests();
    let pod_lists = requests
        .iter()
        .filter(|r| r.starts_with("/api/v1/pods?") && !r.contains("watch"))
        .count();
    assert!(pod_lists >= 2, "the failed list was retried: {requests:#?}");
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/apis/networking.istio.io/v1/virtualservices"))
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.starts_with("/apis/networking.istio.io/v1beta1/virtualservices"))
    );
}

#[tokio::test]
async fn a_cluster_without_config_crds_still_works() {
    let mut routes = builtin_routes();
    routes.insert(
        "/apis".into(),
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
    );
    let server = FakeApiServer::start(State {
        routes,
        ..State::default()
    })
    .await;
    let (changes, _marks) = Changes::new();
    let source = KubernetesSource::start(server.client.clone(), changes)
        .await
        .expect("discovery succeeds");
    assert!(source.resources().is_empty());
    ready(&source).await;
    let inputs = source.inputs();
    assert!(inputs.configs.is_empty());
    assert_eq!(inputs.namespaces.len(), 2);
    assert!(!inputs.registry.services.is_empty());
}

#[tokio::test]
async fn a_watch_event_marks_changes_and_inputs_rebuild_only_then() {
    let (events, service_events) = mpsc::channel(4);
    let server = FakeApiServer::start(State {
        routes: builtin_routes(),
        service_events: Mutex::new(Some(service_events)),
        ..State::default()
    })
    .await;
    let (changes, mut marks) = Changes::new();
    let source = KubernetesSource::watch(server.client.clone(), Vec::new(), changes);
    ready(&source).await;
    let before = source.inputs();
    assert!(
        Arc::ptr_eq(&before, &source.inputs()),
        "nothing changed: no rebuild"
    );

    let ratings = json!({"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "ratings", "namespace": "bookinfo", "resourceVersion": "49601",
        "uid": "3d6f0a2c-8b1e-4c57-9a3d-5e7b2c9f1a48"},
        "spec": {"clusterIP": "10.96.7.40", "type": "ClusterIP",
                 "ports": [{"name": "http", "port": 9080, "protocol": "TCP", "targetPort": 9080}]}});
    let event = json!({"type": "ADDED", "object": ratings});
    events
        .send(event)
        .await
        .expect("the Services watch is open");
    let host = (
        "bookinfo".to_owned(),
        "ratings.bookinfo.svc.cluster.local".to_owned(),
    );
    let after = eventually(&source, &mut marks, |i| {
        i.registry.services.contains_key(&host)
    })
    .await;
    assert!(!Arc::ptr_eq(&before, &after));
    assert!(after.registry.services.len() > before.registry.services.len());
    assert_eq!(
        after.registry.services[&host].addresses,
        [std::net::IpAddr::from([10, 96, 7, 40])],
        "the cluster IP is the service's virtual IP"
    );
}

/// Reads `inputs()` each time the source marks a change, until `done` holds.
async fn eventually(
    source: &KubernetesSource,
    marks: &mut watch::Receiver<u64>,
    done: impl Fn(&Inputs) -> bool,
) -> Arc<Inputs> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let inputs = source.inputs();
        if done(&inputs) {
            return inputs;
        }
        tokio::time::timeout_at(deadline, marks.changed())
            .await
            .expect("the change reached inputs before the deadline")
            .expect("source running");
    }
}

/// From the API server to the proxy's view: the listed Services, EndpointSlices, Pods and
/// VirtualService translate into a proxy's snapshot; with no DestinationRule for the
/// route's subsets in this cluster, the proxy would refuse it, naming the subset.
#[tokio::test]
async fn what_the_cluster_lists_becomes_a_proxys_snapshot() {
    use crate::index::Settings;
    use crate::translate::{Node, snapshot};

    let mut routes = builtin_routes();
    routes.extend(istio_routes());
    let server = FakeApiServer::start(State {
        routes,
        ..State::default()
    })
    .await;
    let (changes, _marks) = Changes::new();
    let source = KubernetesSource::start(server.client.clone(), changes)
        .await
        .expect("discovery succeeds");
    ready(&source).await;
    let generation = crate::push::build(
        source.as_ref(),
        &Settings::default(),
        1,
        std::time::Instant::now(),
        None,
    );
    let node = Node {
        id: "productpage-v1.bookinfo".into(),
        namespace: "bookinfo".into(),
        ..Node::default()
    };
    let snapshot = snapshot(&generation.index, &node);

    let reviews = snapshot
        .clusters
        .iter()
        .find(|c| c.host == "reviews.bookinfo.svc.cluster.local" && c.port == 9080)
        .expect("a cluster for the reviews Service's http port");
    assert_eq!(reviews.endpoints.len(), 3);
    assert!(reviews.endpoints.iter().all(|e| e.address.port() == 8080));
    let host = snapshot.route_configs[0]
        .virtual_hosts
        .iter()
        .find(|h| h.name == "reviews.bookinfo.svc.cluster.local:9080")
        .expect("a virtual host for reviews:9080");
    assert!(host.domains.iter().any(|d| d == "reviews:9080"));
    let weights: Vec<_> = host.routes[0].route.iter().map(|d| d.weight).collect();
    assert_eq!(weights, [Some(90), Some(10)], "the VirtualService's split");

    let refused = mesh_core::compile::compile(&snapshot).expect_err("no DestinationRule");
    let refused = refused.to_string();
    assert!(
        refused.contains("virtual host \"reviews.bookinfo.svc.cluster.local:9080\"")
            && refused.contains("has no subset"),
        "{refused}"
    );
}
