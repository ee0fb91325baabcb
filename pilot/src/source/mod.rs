//! Where config comes from: a local directory ([`local`]) or the Kubernetes API
//! ([`kubernetes`]). Each source keeps its current [`Inputs`] and marks a [`Changes`] when
//! they change; the push loop reads them after its debounce.

pub mod entries;
pub mod kubernetes;
pub mod last_good;
pub mod local;

use std::collections::BTreeMap;
use std::sync::Arc;

use mesh_core::config::ConfigObject;
use mesh_core::diagnostic::Diagnostic;
use mesh_core::load::Located;
use mesh_core::model::Labels;
use serde::Serialize;
use tokio::sync::watch;

use crate::registry::Registry;

/// Everything translation needs, as a source sees it at one moment.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// The config objects in force: each is valid on its own (an invalid edit leaves the
    /// object's last good version here, see [`last_good`]).
    pub configs: Vec<Located<ConfigObject>>,
    /// Services and endpoints: Kubernetes Services and EndpointSlices, ServiceEntries and
    /// WorkloadEntries.
    pub registry: Registry,
    /// Namespaces and their labels (Kubernetes only; empty in local mode).
    pub namespaces: BTreeMap<String, Labels>,
    /// What was refused, kept back or looks wrong, for `/debug/config_status`.
    pub status: Vec<StatusEntry>,
}

/// One finding about one object, and what pilot did about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusEntry {
    #[serde(flatten)]
    pub diagnostic: Diagnostic,
    pub action: Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// The object is invalid and had no earlier good version: it is not used.
    Skipped,
    /// The object's new version is invalid: its last good version stays in force.
    KeptPrevious,
    /// A warning, or a problem across objects that no single object can be blamed for:
    /// the objects are used as they are, and a proxy that cannot resolve the result NACKs it.
    Used,
}

/// A source of [`Inputs`].
pub trait Source: Send + Sync + 'static {
    /// The current inputs. Cheap to call: a source rebuilds them when it changes.
    fn inputs(&self) -> Arc<Inputs>;
}

/// The signal a source raises when its inputs changed. Many marks before the push loop
/// looks coalesce into one.
#[derive(Clone)]
pub struct Changes(Arc<watch::Sender<u64>>);

impl Changes {
    pub fn new() -> (Self, watch::Receiver<u64>) {
        let (sender, receiver) = watch::channel(0);
        (Self(Arc::new(sender)), receiver)
    }

    pub fn mark(&self) {
        self.0.send_modify(|generation| *generation += 1);
    }
}
