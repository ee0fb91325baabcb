//! The config the data path reads, and how a new one replaces it.
//!
//! A [`Runtime`] is a compiled snapshot plus what is built from it (balancers). It is
//! swapped in whole through an `ArcSwap`: a request holds the `Arc` it started with, so it
//! finishes on that config while new requests see the new one, and a reload drops nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use mesh_core::balance::Balancer;
use mesh_core::model::{Cluster, ProxyConfig};
use mesh_core::snapshot::Snapshot;
use serde::Serialize;

use crate::resilience::{ClusterHealth, HealthRegistry};

/// One applied snapshot, ready for the data path.
pub struct Runtime {
    pub snapshot: Snapshot,
    pub config: ProxyConfig,
    /// What is built per cluster, by host then port: looked up by `&str` on every request,
    /// without allocating.
    clusters: HashMap<String, Vec<(u16, ClusterRuntime)>>,
}

/// A cluster's balancers (the whole cluster, and each subset) and its health.
struct ClusterRuntime {
    whole: ClusterBalancer,
    subsets: HashMap<String, ClusterBalancer>,
    health: Arc<ClusterHealth>,
}

/// A balancer and the in-flight counters of its endpoints, in the same order.
pub struct ClusterBalancer {
    pub balancer: Balancer,
    pub loads: Vec<Arc<AtomicU32>>,
    /// The endpoints' addresses, in the same order: what outlier detection counts over,
    /// built once per snapshot rather than per request.
    pub addresses: Vec<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cluster {cluster}: {source}")]
    Balance {
        cluster: String,
        source: mesh_core::balance::BalanceError,
    },
    /// A SIMPLE or MUTUAL certificate file that cannot be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::LoadError),
    /// `telemetry.tracing` names no usable collector.
    #[error(transparent)]
    Tracing(#[from] crate::trace::ExportError),
}

impl Runtime {
    pub fn new(
        snapshot: Snapshot,
        mut config: ProxyConfig,
        state: &State,
    ) -> Result<Self, RuntimeError> {
        // DNS clusters balance over the addresses their names resolve to now.
        state.dns.fill(&mut config);
        let mut clusters: HashMap<String, Vec<(u16, ClusterRuntime)>> = HashMap::new();
        for cluster in config.clusters() {
            let build = |subset: Option<&str>, lb, endpoints: Vec<_>| {
                let loads = endpoints
                    .iter()
                    .map(|e: &mesh_core::model::Endpoint| state.loads.counter(e.address))
                    .collect();
                let addresses = endpoints.iter().map(|e| e.address).collect();
                let balancer =
                    Balancer::new(lb, endpoints).map_err(|source| RuntimeError::Balance {
                        cluster: cluster.name(subset),
                        source,
                    })?;
                Ok::<_, RuntimeError>(ClusterBalancer {
                    balancer,
                    loads,
                    addresses,
                })
            };
            let whole = build(None, &cluster.lb, cluster.endpoints.clone())?;
            let mut subsets = HashMap::new();
            for s in &cluster.subsets {
                let members = cluster
                    .endpoints
                    .iter()
                    .filter(|e| s.subset.contains(e))
                    .cloned()
                    .collect();
                subsets.insert(
                    s.subset.name.clone(),
                    build(Some(&s.subset.name), &s.lb, members)?,
                );
            }
            let runtime = ClusterRuntime {
                whole,
                subsets,
                health: state.health.cluster(&cluster.name(None)),
            };
            clusters
                .entry(cluster.host.clone())
                .or_default()
                .push((cluster.port, runtime));
        }
        crate::trace::check(snapshot.telemetry.as_ref())?;
        // Last, so that a snapshot refused for another reason leaves the loaded set alone.
        crate::tls::load_all(&config)?;
        Ok(Self {
            snapshot,
            config,
            clusters,
        })
    }

    fn cluster_runtime(&self, cluster: &Cluster) -> Option<&ClusterRuntime> {
        self.clusters
            .get(cluster.host.as_str())?
            .iter()
            .find(|(port, _)| *port == cluster.port)
            .map(|(_, runtime)| runtime)
    }

    /// The circuit breaker and outlier state of a cluster of this snapshot.
    pub fn health(&self, cluster: &Cluster) -> Option<&Arc<ClusterHealth>> {
        self.cluster_runtime(cluster).map(|c| &c.health)
    }

    pub fn balancer(&self, cluster: &Cluster, subset: Option<&str>) -> Option<&ClusterBalancer> {
        let runtime = self.cluster_runtime(cluster)?;
        match subset {
            None => Some(&runtime.whole),
            Some(name) => runtime.subsets.get(name),
        }
    }
}

/// Requests in flight per endpoint address, kept across snapshots so least-request
/// balancing does not forget load on every reload.
#[derive(Default)]
pub struct EndpointLoads(Mutex<HashMap<SocketAddr, Arc<AtomicU32>>>);

impl EndpointLoads {
    fn counter(&self, address: SocketAddr) -> Arc<AtomicU32> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(address).or_default().clone()
    }

    pub fn in_flight(&self, address: SocketAddr) -> u32 {
        let map = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&address).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Counts a request in flight on an endpoint for as long as it lives.
pub struct InFlight(Arc<AtomicU32>);

impl InFlight {
    pub fn start(counter: &Arc<AtomicU32>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What happened to the snapshots offered so far, for `/config_dump` and logs.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SnapshotStatus {
    pub applied_version: Option<String>,
    pub applied_at: Option<u64>,
    pub applied_count: u64,
    pub rejected_count: u64,
    /// The last snapshot refused, and why; the proxy kept serving the one before it.
    pub last_rejection: Option<String>,
}

/// The proxy's shared state.
#[derive(Default)]
pub struct State {
    current: ArcSwapOption<Runtime>,
    pub loads: EndpointLoads,
    pub health: HealthRegistry,
    /// The answers for the names of DNS clusters.
    pub dns: crate::dns::DnsTable,
    status: Mutex<SnapshotStatus>,
    /// Tracing, following each applied snapshot's `telemetry.tracing`.
    pub tracer: crate::trace::Tracer,
}

impl State {
    pub fn current(&self) -> Option<Arc<Runtime>> {
        self.current.load_full()
    }

    pub fn apply(&self, runtime: Runtime) {
        let version = runtime.config.version.clone();
        crate::access_log::configure(runtime.snapshot.telemetry.as_ref());
        let telemetry = runtime.snapshot.telemetry.as_ref();
        self.tracer
            .configure(telemetry.and_then(|t| t.tracing.as_ref()));
        self.current.store(Some(Arc::new(runtime)));
        let mut status = self.status();
        status.applied_version = Some(version);
        status.applied_at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs());
        status.applied_count += 1;
        drop(status);
        // It may name hosts not resolved yet.
        self.dns.wake.notify_one();
    }

    /// Puts `next` in place of `current` if nothing replaced `current` meanwhile (a DNS
    /// refresh must not undo a newer snapshot); true if it did.
    pub fn replace(&self, current: &Arc<Runtime>, next: Runtime) -> bool {
        let previous = self
            .current
            .compare_and_swap(&Some(current.clone()), Some(Arc::new(next)));
        previous
            .as_ref()
            .is_some_and(|previous| Arc::ptr_eq(previous, current))
    }

    pub fn reject(&self, reason: String) {
        let mut status = self.status();
        status.rejected_count += 1;
        status.last_rejection = Some(reason);
    }

    pub fn status_snapshot(&self) -> SnapshotStatus {
        self.status().clone()
    }

    fn status(&self) -> std::sync::MutexGuard<'_, SnapshotStatus> {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
