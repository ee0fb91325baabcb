//! The trust bundle ConfigMap in every labelled namespace: created when a namespace appears,
//! updated when the bundle changes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mesh_citadel::bundle::publish;
use mesh_citadel::ca::Authority;
use mesh_citadel::ca::root;
use mesh_citadel::ca::roots::RootState;
use mesh_citadel::ca::rotation;
use serde_json::json;
use tokio::sync::watch;

use crate::fake_api::{FakeApi, namespace};
use crate::support::eventually;

fn config_map(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps/mesh-ca-root-cert")
}

fn new_root() -> root::RootPair {
    root::create(
        "cluster.local",
        Duration::from_secs(3600),
        SystemTime::now(),
    )
    .unwrap()
}

#[tokio::test]
async fn labelled_namespaces_get_the_bundle_and_its_updates() {
    let api = FakeApi::start().await;
    api.put(
        "/api/v1/namespaces/shop",
        namespace("shop", json!({"mesh-injection": "enabled"})),
    );
    api.put(
        "/api/v1/namespaces/default",
        namespace("default", json!({})),
    );
    api.put(
        "/api/v1/namespaces/off",
        namespace("off", json!({"mesh-injection": "disabled"})),
    );
    let events = api.namespace_events();
    let state = RootState::fresh(new_root());
    let authority = Authority::new(state.signing_material()).unwrap();
    let first_bundle = authority.bundle().to_pem();
    let (sender, receiver) = watch::channel(Arc::new(authority));
    tokio::spawn(publish::run(api.client.clone(), receiver));

    let has = |ns: &str, bundle: &str| {
        let object = api.get(&config_map(ns));
        let found = object
            .as_ref()
            .and_then(|o| o["data"]["root-cert.pem"].as_str());
        let matches = found == Some(bundle);
        async move { matches }
    };
    eventually("shop's ConfigMap", || has("shop", &first_bundle)).await;
    assert!(api.get(&config_map("default")).is_none());
    assert!(api.get(&config_map("off")).is_none());
    let patch = api
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert!(
        patch.query.contains("fieldManager=citadel"),
        "{}",
        patch.query
    );
    assert!(
        patch.content_type.contains("apply-patch"),
        "{}",
        patch.content_type
    );

    // A namespace labelled later gets it too.
    let mut labelled = namespace("payments", json!({"mesh-injection": "enabled"}));
    labelled["metadata"]["resourceVersion"] = json!("100");
    events
        .send(json!({"type": "ADDED", "object": labelled}))
        .await
        .unwrap();
    eventually("payments' ConfigMap", || has("payments", &first_bundle)).await;

    // A rotation's first step changes the bundle: every ConfigMap follows.
    let prepared = rotation::prepare(&state, new_root()).unwrap();
    let rotated = Authority::new(prepared.signing_material()).unwrap();
    let second_bundle = rotated.bundle().to_pem();
    assert_ne!(second_bundle, first_bundle);
    sender.send_replace(Arc::new(rotated));
    eventually("shop updated", || has("shop", &second_bundle)).await;
    eventually("payments updated", || has("payments", &second_bundle)).await;
}
