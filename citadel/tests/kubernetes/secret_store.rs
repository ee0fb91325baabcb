//! The CA Secret: created on first start, loaded after, replaced at the version it was read.

use std::time::{Duration, SystemTime};

use mesh_citadel::ca::root;
use mesh_citadel::ca::rotation::Step;
use mesh_citadel::ca::source::{CaSource, RootSettings};
use mesh_citadel::ca::store::secret::SecretStore;
use mesh_citadel::ca::store::{self, CaStore, StoreError};
use serde_json::json;

use crate::fake_api::FakeApi;

const SECRET: &str = "/api/v1/namespaces/mesh-system/secrets/mesh-ca";

fn settings() -> RootSettings {
    RootSettings {
        trust_domain: "cluster.local".into(),
        ttl: Duration::from_secs(3600),
    }
}

fn new_root() -> Result<root::RootPair, root::RootError> {
    root::create(
        "cluster.local",
        Duration::from_secs(3600),
        SystemTime::now(),
    )
}

#[tokio::test]
async fn first_start_creates_the_secret_and_later_starts_load_it() {
    let api = FakeApi::start().await;
    let source = || {
        CaSource::Secret(Box::new(SecretStore::new(
            api.client.clone(),
            "mesh-system",
            "mesh-ca",
        )))
    };
    let (first, created) = source().start(&settings()).await.unwrap();
    assert!(created);
    let secret = api.get(SECRET).expect("the Secret exists");
    assert_eq!(secret["type"], "Opaque");
    let keys: Vec<&str> = secret["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["root-cert.pem", "root-key.pem", "trust-bundle.pem"]);

    let (second, created) = source().start(&settings()).await.unwrap();
    assert!(!created);
    assert_eq!(second, first, "the same root, loaded");
    let posts = api.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn a_replica_that_loses_the_race_loads_the_winners_root() {
    let api = FakeApi::start().await;
    let winner = SecretStore::new(api.client.clone(), "mesh-system", "mesh-ca");
    let loser = SecretStore::new(api.client.clone(), "mesh-system", "mesh-ca");
    let (winning, _) = store::load_or_create(&winner, new_root).await.unwrap();
    // The loser read "no Secret" before the winner stored it: its POST gets a 409.
    let raced = loser.create(&winning.to_files()).await.unwrap();
    assert!(!raced);
    let (loaded, created) = store::load_or_create(&loser, || panic!("must not create"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(loaded, winning);
}

#[tokio::test]
async fn rotation_replaces_at_the_version_read_and_refuses_a_concurrent_change() {
    let api = FakeApi::start().await;
    let store = SecretStore::new(api.client.clone(), "mesh-system", "mesh-ca");
    store::load_or_create(&store, new_root).await.unwrap();
    let prepared = store::rotate(&store, Step::Prepare, new_root)
        .await
        .unwrap();
    assert_eq!(prepared.bundle.roots().len(), 2);
    let secret = api.get(SECRET).unwrap();
    assert!(secret["data"].get("next-root-key.pem").is_some());
    let put = api
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("a PUT");
    assert_eq!(put.path, SECRET);
    assert!(
        put.body["metadata"]["resourceVersion"].is_string(),
        "optimistic locking"
    );

    let error = store
        .replace(&prepared.to_files(), Some("stale"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error}");
    assert!(
        error.to_string().contains("run the command again"),
        "{error}"
    );
    api.put(SECRET, json!({"metadata": {"name": "mesh-ca"}, "data": {}}));
    let error = store::rotate(&store, Step::Activate, new_root)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("root-key.pem is missing"),
        "{error}"
    );
}
