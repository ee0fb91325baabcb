//! The running source: discovery, one reflector per resource, and inputs rebuilt only
//! when something changed since they were last asked for.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::Store;
use kube::runtime::reflector::store::Writer;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use super::discovery::{ConfigResource, discover};
use super::watch::{Signal, spawn, trim_config, trim_metadata, trim_pod};
use super::{ConfigStore, Stores, inputs_from};
use crate::source::last_good::LastGood;
use crate::source::{Changes, Inputs, Source};

/// Discovery is retried this many times at start before giving up.
const DISCOVERY_ATTEMPTS: u32 = 5;

/// Services, EndpointSlices, Pods and Namespaces: watched in every cluster.
const BUILTIN_KINDS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot discover the config CRDs the API server serves \
         (is it reachable, and may pilot list API groups?): {0}"
    )]
    Discovery(#[source] kube::Error),
    #[error("the Kubernetes source stopped before its first list completed")]
    Stopped,
}

/// Config from the Kubernetes API. See the [module documentation](super).
pub struct KubernetesSource {
    stores: Stores,
    resources: Vec<ConfigResource>,
    /// Bumped by every event that changed a store.
    generation: Arc<AtomicU64>,
    built: Mutex<Built>,
    unsynced: watch::Receiver<usize>,
    tasks: Vec<AbortHandle>,
}

/// The inputs as last built, and the generation they were built at.
#[derive(Default)]
struct Built {
    generation: Option<u64>,
    inputs: Arc<Inputs>,
    last_good: LastGood,
}

impl KubernetesSource {
    /// Discovers which config CRDs the cluster serves, then starts watching. Discovery is
    /// retried for about 15 s (an API server restarting with pilot), then fails with an
    /// error rather than hang. Must run inside a tokio runtime; the watches stop when the
    /// source drops.
    pub async fn start(client: Client, changes: Changes) -> Result<Arc<Self>, Error> {
        let resources = discover_with_retry(&client).await?;
        info!(
            watched = ?resources
                .iter()
                .map(|r| format!("{}/{}", r.resource.api_version, r.resource.kind))
                .collect::<Vec<_>>(),
            "watching config CRDs"
        );
        Ok(Arc::new(Self::watch(client, resources, changes)))
    }

    /// Starts watching the built-in resources and the given config resources, for a caller
    /// that did its own discovery.
    pub fn watch(client: Client, resources: Vec<ConfigResource>, changes: Changes) -> Self {
        let (unsynced_tx, unsynced) = watch::channel(BUILTIN_KINDS + resources.len());
        let generation = Arc::new(AtomicU64::new(0));
        let signal = Signal {
            generation: generation.clone(),
            changes,
            unsynced: Arc::new(unsynced_tx),
        };
        let (stores, tasks) = spawn_all(&client, &resources, &signal);
        Self {
            stores,
            resources,
            generation,
            built: Mutex::default(),
            unsynced,
            tasks,
        }
    }

    /// The config resources being watched, one version per group and kind.
    pub fn resources(&self) -> &[ConfigResource] {
        &self.resources
    }

    /// Whether every reflector has finished its first list.
    pub fn has_synced(&self) -> bool {
        *self.unsynced.borrow() == 0
    }

    /// Returns once every reflector has finished its first list. A watch the API server
    /// keeps refusing (RBAC) keeps this waiting: callers put a deadline on it.
    pub async fn wait_until_ready(&self) -> Result<(), Error> {
        let mut unsynced = self.unsynced.clone();
        unsynced
            .wait_for(|n| *n == 0)
            .await
            .map(|_| ())
            .map_err(|_| Error::Stopped)
    }
}

impl Source for KubernetesSource {
    fn inputs(&self) -> Arc<Inputs> {
        // Read before building: an event during the build bumps it again and the next call
        // rebuilds, so nothing is missed.
        let generation = self.generation.load(Ordering::Acquire);
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if built.generation != Some(generation) {
            let inputs = inputs_from(&self.stores, &mut built.last_good);
            debug!(generation, configs = inputs.configs.len(), "rebuilt inputs");
            built.inputs = Arc::new(inputs);
            built.generation = Some(generation);
        }
        built.inputs.clone()
    }
}

impl Drop for KubernetesSource {
    fn drop(&mut self) {
        self.tasks.iter().for_each(AbortHandle::abort);
    }
}

async fn discover_with_retry(client: &Client) -> Result<Vec<ConfigResource>, Error> {
    let mut delay = Duration::from_secs(1);
    let mut attempt = 1;
    loop {
        match discover(client).await {
            Ok(resources) => return Ok(resources),
            Err(error) if attempt < DISCOVERY_ATTEMPTS => {
                warn!(%error, attempt, "API discovery failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(error) => return Err(Error::Discovery(error)),
        }
    }
}

fn spawn_all(
    client: &Client,
    resources: &[ConfigResource],
    signal: &Signal,
) -> (Stores, Vec<AbortHandle>) {
    let mut tasks = Vec::new();
    let services = typed(client, trim_metadata::<Service>, signal, &mut tasks);
    let endpoint_slices = typed(client, trim_metadata::<EndpointSlice>, signal, &mut tasks);
    let pods = typed(client, trim_pod, signal, &mut tasks);
    let namespaces = typed(client, trim_metadata::<Namespace>, signal, &mut tasks);
    let configs = resources
        .iter()
        .map(|config| {
            let writer = Writer::new(config.resource.clone());
            let store = writer.as_reader();
            let api = Api::<DynamicObject>::all_with(client.clone(), &config.resource);
            let what = format!("{}/{}", config.resource.api_version, config.resource.kind);
            tasks.push(spawn(api, writer, trim_config, signal.clone(), what));
            ConfigStore {
                kind: config.kind,
                resource: config.resource.clone(),
                store,
            }
        })
        .collect();
    let stores = Stores {
        services,
        endpoint_slices,
        pods,
        namespaces,
        configs,
    };
    (stores, tasks)
}

/// Starts the reflector of a built-in kind, across all namespaces.
fn typed<K>(
    client: &Client,
    trim: fn(&mut K),
    signal: &Signal,
    tasks: &mut Vec<AbortHandle>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let writer = Writer::default();
    let store = writer.as_reader();
    let what = K::kind(&()).into_owned();
    tasks.push(spawn(
        Api::all(client.clone()),
        writer,
        trim,
        signal.clone(),
        what,
    ));
    store
}
