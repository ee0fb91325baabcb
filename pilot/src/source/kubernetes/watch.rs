//! One reflector per resource: list, then watch, retried with kube-runtime's default
//! backoff; every event that changes a store bumps the generation and marks the changes.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio_stream::StreamExt;
use tracing::{debug, warn};

use crate::source::Changes;

/// kubectl's copy of the whole object, often the largest thing in its metadata.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What every reflector reports to: shared by all of them.
#[derive(Clone)]
pub(super) struct Signal {
    pub generation: Arc<AtomicU64>,
    pub changes: Changes,
    /// How many reflectors have not finished their first list yet.
    pub unsynced: Arc<watch::Sender<usize>>,
}

impl Signal {
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changes.mark();
    }

    fn synced(&self) {
        self.unsynced.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Spawns the reflector that keeps `writer`'s store in step with `api`. `trim` drops what
/// pilot never reads before the object is stored, to keep memory low in big clusters.
pub(super) fn spawn<K>(
    api: Api<K>,
    writer: Writer<K>,
    trim: fn(&mut K),
    signal: Signal,
    what: String,
) -> AbortHandle
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    // Like client-go's informers, list from the API server's cache rather than etcd.
    let config = watcher::Config::default().any_semantic();
    let stream = watcher(api, config)
        .modify(trim)
        .default_backoff()
        .reflect(writer);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut synced = false;
        while let Some(event) = stream.next().await {
            match event {
                // Buffered by the writer until InitDone: the store has not changed yet.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(watcher::Event::InitDone) => {
                    debug!(resource = %what, "listed");
                    if !std::mem::replace(&mut synced, true) {
                        signal.synced();
                    }
                    signal.changed();
                }
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => signal.changed(),
                Err(error) => warn!(resource = %what, %error, "watch failed; retrying"),
            }
        }
        warn!(resource = %what, "watch stream ended; this resource is no longer updated");
    })
    .abort_handle()
}

/// Managed fields and kubectl's last-applied copy: large, and never read.
pub(super) fn trim_metadata<K: ResourceExt>(object: &mut K) {
    object.managed_fields_mut().clear();
    object.annotations_mut().remove(LAST_APPLIED);
}

/// Of a Pod, pilot reads only its name, labels and service account.
pub(super) fn trim_pod(pod: &mut Pod) {
    trim_metadata(pod);
    let service_account_name = pod.spec.take().and_then(|s| s.service_account_name);
    pod.spec = Some(PodSpec {
        service_account_name,
        ..PodSpec::default()
    });
    pod.status = None;
}

/// A config object's status is written by controllers and never read by pilot.
pub(super) fn trim_config(object: &mut DynamicObject) {
    trim_metadata(object);
    if let Some(data) = object.data.as_object_mut() {
        data.remove("status");
    }
}
