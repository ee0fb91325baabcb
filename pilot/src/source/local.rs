//! The local source: a directory of the YAML `meshctl analyze` accepts, watched for
//! changes. ServiceEntries and WorkloadEntries are the service registry.
//!
//! Polling, as the proxy's snapshot file: it sees in-place edits, atomic renames and
//! ConfigMap symlink swaps alike, and stat-ing a directory a few times a second costs
//! nothing. Only a changed fingerprint (name, size, mtime of every file) triggers a reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mesh_core::config::ConfigObject;
use mesh_core::diagnostic::Diagnostic;
use mesh_core::load::{ConfigSet, Located, config_files, load_file, load_paths};
use mesh_core::validate::validate_object;

use super::entries::add_service_entries;
use super::last_good::LastGood;
use super::{Changes, Inputs, Source};
use crate::lock::lock;
use crate::registry::Registry;

pub struct LocalSource {
    dir: PathBuf,
    current: Mutex<Arc<Inputs>>,
    loader: Mutex<Loader>,
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Loads and validates the directory, keeping each file's parse and its objects' own
/// checks while the file is unchanged: an edit to one file of a thousand re-reads one.
#[derive(Default)]
pub struct Loader {
    files: HashMap<PathBuf, LoadedFile>,
    last_good: LastGood,
}

struct LoadedFile {
    size: u64,
    modified: Option<SystemTime>,
    set: ConfigSet,
    own_checks: Vec<Diagnostic>,
}

impl LocalSource {
    /// Loads `dir` now, then re-loads it every `poll` when a file changed, marking `changes`.
    pub fn start(dir: PathBuf, poll: Duration, changes: Changes) -> Arc<Self> {
        let source = Arc::new(Self {
            dir,
            current: Mutex::new(Arc::default()),
            loader: Mutex::default(),
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
                    // Parsing and validating is CPU work: off the async workers.
                    let reloading = watcher.clone();
                    if tokio::task::spawn_blocking(move || reloading.reload())
                        .await
                        .is_ok()
                    {
                        changes.mark();
                    }
                }
            }
        });
        source
    }

    fn reload(&self) {
        let inputs = lock(&self.loader).load(&self.dir);
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

impl Loader {
    /// Loads and validates `dir`: the objects in force (keeping last good versions of
    /// broken ones), the registry their ServiceEntries make, and every finding's status.
    pub fn load(&mut self, dir: &Path) -> Inputs {
        let files = match config_files(dir) {
            Ok(files) => files,
            // Unreadable: fall back to the loader, whose error names the directory.
            Err(_) => return inputs_from(self.last_good.admit(load_paths(&[dir]))),
        };
        let mut set = ConfigSet::default();
        let mut own_checks = Vec::new();
        let mut kept = HashMap::new();
        for path in files {
            let loaded = self.load_file(path.clone());
            set.extend(loaded.set.clone());
            own_checks.extend(loaded.own_checks.iter().cloned());
            kept.insert(path, loaded);
        }
        self.files = kept;
        inputs_from(self.last_good.admit_checked(set, own_checks))
    }

    /// The cached load of `path` when its size and mtime are unchanged, else a new one.
    fn load_file(&mut self, path: PathBuf) -> LoadedFile {
        let meta = std::fs::metadata(&path).ok();
        let size = meta.as_ref().map_or(0, |m| m.len());
        let modified = meta.and_then(|m| m.modified().ok());
        if let Some(cached) = self.files.remove(&path)
            && cached.size == size
            && cached.modified == modified
            && modified.is_some()
        {
            return cached;
        }
        let set = load_file(&path);
        let own_checks = set.objects.iter().flat_map(validate_object).collect();
        LoadedFile {
            size,
            modified,
            set,
            own_checks,
        }
    }
}

fn inputs_from((configs, status): (Vec<Located<ConfigObject>>, Vec<super::StatusEntry>)) -> Inputs {
    let mut registry = Registry::default();
    add_service_entries(&configs, &mut registry);
    Inputs {
        configs,
        registry,
        namespaces: Default::default(),
        status,
    }
}

/// Loads and validates `dir` once (no cache kept): for tests and one-off translation.
pub fn load_inputs(dir: &Path, last_good: &mut LastGood) -> Inputs {
    inputs_from(last_good.admit(load_paths(&[dir])))
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
