//! The Kubernetes source: Services, EndpointSlices, Pods, Namespaces and the mesh and
//! Istio CRDs, watched through kube-runtime reflectors and turned into [`Inputs`].
//!
//! # Public API
//!
//! - [`KubernetesSource::start`] discovers which config CRDs the cluster serves, starts one
//!   reflector per resource and returns the running source (or an [`Error`] when discovery
//!   keeps failing). It is a [`Source`](super::Source): `inputs()` rebuilds only when a
//!   watch event arrived since the last call, and every event marks the
//!   [`Changes`](super::Changes) it was given. The watches stop when it is dropped.
//! - [`KubernetesSource::has_synced`] and [`KubernetesSource::wait_until_ready`]: every
//!   reflector has finished its first list, so pilot never pushes a half-listed cluster.
//! - [`inputs_from`]: the pure conversion from reflector [`Store`]s (in [`Stores`]) to
//!   [`Inputs`], which tests drive with reflector `Writer`s and no cluster.
//! - [`choose_resources`]: which (group, version, kind) to watch, given what discovery found.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use mesh_pilot::source::{Changes, Source, kubernetes::KubernetesSource};
//! let (changes, _marks) = Changes::new();
//! let source = KubernetesSource::start(kube::Client::try_default().await?, changes).await?;
//! tokio::time::timeout(std::time::Duration::from_secs(60), source.wait_until_ready()).await??;
//! let inputs = source.inputs();
//! # Ok(())
//! # }
//! ```
//!
//! # Rules (Istio's)
//!
//! - A Service `name.ns` is the host `name.ns.svc.cluster.local` with its TCP ports; its
//!   `networking.istio.io/exportTo` annotation is its export list. ExternalName services
//!   are not routed (a status warning says so).
//! - Its endpoints are the ready addresses of the EndpointSlices labelled
//!   `kubernetes.io/service-name`, with the target port of each service port found by port
//!   name, and the labels and service account of the Pod each one names.
//! - In a headless service, an endpoint with a `hostname` (a StatefulSet pod) also gets its
//!   own host `hostname.name.ns.svc.cluster.local`.
//! - CRD objects go through [`LastGood`]: an invalid edit keeps the previous version and a
//!   broken object never hides the others.

mod crds;
mod discovery;
mod endpoints;
mod runtime;
mod services;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::Store;
use mesh_core::config::Kind;
use mesh_core::model::Labels;

use super::Inputs;
use super::last_good::LastGood;
use crate::registry::Registry;

pub use discovery::{ConfigResource, ServedGroup, choose_resources, config_groups};
pub use runtime::{Error, KubernetesSource};

/// The reflector caches the inputs are built from.
#[derive(Clone)]
pub struct Stores {
    pub services: Store<Service>,
    pub endpoint_slices: Store<EndpointSlice>,
    pub pods: Store<Pod>,
    pub namespaces: Store<Namespace>,
    /// One store per watched config CRD (one version per group and kind).
    pub configs: Vec<ConfigStore>,
}

/// The cache of one config CRD, at the version chosen by [`choose_resources`].
#[derive(Clone)]
pub struct ConfigStore {
    pub kind: Kind,
    /// Its group, version and plural, as discovery reported them.
    pub resource: ApiResource,
    pub store: Store<DynamicObject>,
}

/// Everything the stores hold now, as [`Inputs`]. `last_good` carries each config
/// object's last valid version from one call to the next.
pub fn inputs_from(stores: &Stores, last_good: &mut LastGood) -> Inputs {
    let mut set = crds::config_set(&stores.configs);
    // Validation checks that routed hosts exist: Kubernetes Services define them too.
    set.skipped
        .extend(services::known_services(&stores.services));
    let (configs, mut status) = last_good.admit(set);

    let mut registry = Registry::default();
    status.extend(services::add_services(stores, &mut registry));
    super::entries::add_service_entries(&configs, &mut registry);
    Inputs {
        configs,
        registry,
        namespaces: namespaces(&stores.namespaces),
        status,
    }
}

fn namespaces(store: &Store<Namespace>) -> BTreeMap<String, Labels> {
    store
        .state()
        .iter()
        .filter_map(|ns| {
            let name = ns.metadata.name.clone()?;
            Some((name, ns.metadata.labels.clone().unwrap_or_default()))
        })
        .collect()
}
