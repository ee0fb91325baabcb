//! The Kubernetes source against a real cluster: objects created through the API server
//! reach `inputs()`. Needs a cluster where the caller may create namespaces:
//!
//! ```text
//! KUBECONFIG=... cargo test -p mesh-pilot --test kubernetes_cluster -- --ignored
//! ```
//!
//! The VirtualService part runs only when the cluster serves a VirtualService CRD
//! (networking.mesh.io or networking.istio.io); a cluster without them still tests the rest.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use mesh_core::config::Kind;
use mesh_pilot::source::kubernetes::KubernetesSource;
use mesh_pilot::source::{Changes, Inputs, Source};
use serde_json::json;
use tokio::sync::watch;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG=... cargo test -p mesh-pilot --test kubernetes_cluster -- --ignored"]
async fn objects_created_in_the_cluster_reach_the_inputs() {
    let client = Client::try_default()
        .await
        .expect("a kubeconfig or in-cluster config");
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let namespace = format!("mesh-e2e-{seconds}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": namespace}})).expect("Namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");

    let outcome = tokio::spawn(exercise(client.clone(), namespace.clone())).await;
    // Clean up before reporting, pass or fail.
    let deleted = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    outcome.expect("the test body did not panic");
    deleted.expect("delete namespace");
}

async fn exercise(client: Client, namespace: String) {
    let (changes, mut marks) = Changes::new();
    let source = KubernetesSource::start(client.clone(), changes)
        .await
        .expect("start");
    tokio::time::timeout(DEADLINE, source.wait_until_ready())
        .await
        .expect("initial lists before the deadline")
        .expect("source running");

    create_service(&client, &namespace).await;
    let virtual_service = source
        .resources()
        .iter()
        .find(|r| r.kind == Kind::VirtualService)
        .map(|r| r.resource.clone());
    if let Some(resource) = &virtual_service {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, resource);
        let object = DynamicObject::new("echo", resource).within(&namespace).data(json!({
            "spec": {"hosts": ["echo"], "http": [{"route": [{"destination": {"host": "echo"}}]}]}
        }));
        api.create(&PostParams::default(), &object)
            .await
            .expect("create VirtualService");
    } else {
        eprintln!("no VirtualService CRD in this cluster: checking Services only");
    }

    let host = format!("echo.{namespace}.svc.cluster.local");
    let key = (namespace.clone(), host);
    let wants_config = virtual_service.is_some();
    let seen = eventually(&source, &mut marks, |inputs| {
        let endpoints = inputs.registry.endpoints(&key);
        let has_endpoint = endpoints
            .iter()
            .any(|e| e.address.to_string() == "10.1.2.3");
        let has_config = inputs
            .configs
            .iter()
            .any(|c| c.origin.namespace == namespace);
        has_endpoint && (has_config || !wants_config)
    })
    .await;
    let endpoint = &seen.registry.endpoints(&key)[0];
    assert_eq!(endpoint.ports.get(&80), Some(&8080));
    assert!(seen.namespaces.contains_key(&namespace));
}

/// A selector-less Service and the EndpointSlice a controller would write for it.
async fn create_service(client: &Client, namespace: &str) {
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "echo"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .expect("Service");
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    services
        .create(&PostParams::default(), &service)
        .await
        .expect("create Service");

    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "echo-1", "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.2.3"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
    .expect("EndpointSlice");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
    slices
        .create(&PostParams::default(), &slice)
        .await
        .expect("create EndpointSlice");
}

/// Reads `inputs()` each time the source marks a change, until `done` holds; fails at the
/// deadline.
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
            .expect("inputs did not show the objects before the deadline")
            .expect("source running");
    }
}
