//! The local source: a directory of the YAML `meshctl analyze` accepts, watched for
//! changes. ServiceEntries and WorkloadEntries are the service registry.
//!
//! Polling, as the proxy's snapshot file: it sees in-place edits, atomic renames and
//! ConfigMap symlink swaps alike, and stat-ing a directory a few times a second costs
//! nothing. Only a changed fingerprint (name, size, mtime of every file) triggers a reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mesh_core::load::{config_files, load_paths};

use super::entries::add_service_entries;
use super::last_good::LastGood;
use super::{Changes, Inputs, Source};
use crate::registry::Registry;

pub struct LocalSource {
    dir: PathBuf,
    current: Mutex<Arc<Inputs>>,
    last_good: Mutex<LastGood>,
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

impl LocalSource {
    /// Loads `dir` now, then re-loads it every `poll` when a file changed, marking `changes`.
    pub fn start(dir: PathBuf, poll: Duration, changes: Changes) -> Arc<Self> {
        let source = Arc::new(Self {
            dir,
            current: Mutex::new(Arc::default()),
            last_good: Mutex::new(LastGood::default()),
        });
        let mut seen = fingerprint(&source.dir);
        source.reload();
        let watcher = source.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(poll);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let now = fingerprint(&watcher.dir);
                if now != seen {
                    seen = now;
                    watcher.reload();
                    changes.mark();
                }
            }
        });
        source
    }

    fn reload(&self) {
        let inputs = {
            let mut last_good = lock(&self.last_good);
            load_inputs(&self.dir, &mut last_good)
        };
        let errors = inputs
            .status
            .iter()
            .filter(|s| s.diagnostic.is_error())
            .count();
        tracing::info!(
            dir = %self.dir.display(),
            objects = inputs.configs.len(),
            services = inputs.registry.services.len(),
            errors,
            "config loaded"
        );
        for entry in inputs.status.iter().filter(|s| s.diagnostic.is_error()) {
            tracing::warn!(action = ?entry.action, "{}", entry.diagnostic);
        }
        *lock(&self.current) = Arc::new(inputs);
    }
}

impl Source for LocalSource {
    fn inputs(&self) -> Arc<Inputs> {
        lock(&self.current).clone()
    }
}

/// Loads and validates `dir`: the objects in force (keeping last good versions of broken
/// ones), the registry their ServiceEntries make, and the status of every finding.
pub fn load_inputs(dir: &Path, last_good: &mut LastGood) -> Inputs {
    let (configs, status) = last_good.admit(load_paths(&[dir]));
    let mut registry = Registry::default();
    add_service_entries(&configs, &mut registry);
    Inputs {
        configs,
        registry,
        namespaces: Default::default(),
        status,
    }
}

fn fingerprint(dir: &Path) -> Fingerprint {
    config_files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
