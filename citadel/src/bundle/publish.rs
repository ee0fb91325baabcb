//! Kubernetes: the trust bundle as ConfigMap `mesh-ca-root-cert` (key `root-cert.pem`) in
//! every namespace labelled `mesh-injection=enabled`, so sidecars can verify citadel before
//! they have a certificate. Applied (server-side apply) when a labelled namespace appears,
//! when the bundle changes, and every minute as a resync.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio_stream::StreamExt;

use crate::ca::Authority;

pub const CONFIG_MAP: &str = "mesh-ca-root-cert";
pub const KEY: &str = "root-cert.pem";
pub const NAMESPACE_SELECTOR: &str = "mesh-injection=enabled";
const FIELD_MANAGER: &str = "citadel";
const RESYNC: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("publishing the trust bundle to {namespace}/{CONFIG_MAP}: {source}")]
pub struct PublishError {
    namespace: String,
    source: kube::Error,
}

/// Applies the bundle ConfigMap to one namespace (creates it or updates it).
pub async fn publish(
    client: &Client,
    namespace: &str,
    bundle_pem: &str,
) -> Result<(), PublishError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIG_MAP.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([("app".to_owned(), "citadel".to_owned())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(KEY.to_owned(), bundle_pem.to_owned())])),
        ..ConfigMap::default()
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(CONFIG_MAP, &params, &Patch::Apply(&config_map))
        .await
        .map(|_| ())
        .map_err(|source| PublishError {
            namespace: namespace.to_owned(),
            source,
        })
}

/// Keeps every labelled namespace's ConfigMap equal to the authority's bundle, until the
/// authority's sender is dropped.
pub async fn run(client: Client, mut authority: watch::Receiver<Arc<Authority>>) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let config = watcher::Config::default().labels(NAMESPACE_SELECTOR);
    let mut events = Box::pin(watcher(namespaces, config).default_backoff());
    let mut known = BTreeSet::new();
    let mut bundle = authority.borrow().bundle().to_pem();
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        let targets: Vec<String> = tokio::select! {
            event = events.next() => match event {
                Some(event) => namespace_event(event, &mut known),
                None => return,
            },
            changed = authority.changed() => {
                if changed.is_err() {
                    return;
                }
                let current = authority.borrow_and_update().bundle().to_pem();
                if current == bundle {
                    continue;
                }
                bundle = current;
                known.iter().cloned().collect()
            }
            _ = resync.tick() => known.iter().cloned().collect(),
        };
        publish_all(&client, &targets, &bundle).await;
    }
}

/// Tracks the labelled namespaces; returns the one that needs the bundle now, if any.
fn namespace_event(
    event: Result<Event<Namespace>, watcher::Error>,
    known: &mut BTreeSet<String>,
) -> Vec<String> {
    match event {
        Ok(Event::Apply(ns) | Event::InitApply(ns)) => {
            known.insert(ns.name_any());
            vec![ns.name_any()]
        }
        Ok(Event::Delete(ns)) => {
            known.remove(&ns.name_any());
            vec![]
        }
        Ok(Event::Init | Event::InitDone) => vec![],
        Err(error) => {
            tracing::warn!(%error, "watching namespaces");
            vec![]
        }
    }
}

async fn publish_all(client: &Client, namespaces: &[String], bundle: &str) {
    for namespace in namespaces {
        match publish(client, namespace, bundle).await {
            Ok(()) => tracing::debug!(%namespace, "trust bundle published"),
            Err(error) => {
                tracing::warn!(%error, "trust bundle not published; retrying at the next resync")
            }
        }
    }
}
