//! The local source: directories of the YAML `meshctl analyze` accepts, watched for
//! changes and merged into one config set. ServiceEntries and WorkloadEntries are the
//! service registry. Local mode (`meshctl local up`) gives pilot the user's directory, the
//! topology it generates and the objects `meshctl apply` wrote, each in its own directory.
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
    dirs: Vec<PathBuf>,
    current: Mutex<Arc<Inputs>>,
    loader: Mutex<Loader>,
}

type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Loads and validates the directories, keeping each file's parse and its objects' own
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
    /// Loads `dirs` now, then re-loads them every `poll` when a file changed, marking
    /// `changes`. Every reload reads all of them: one consistent set.
    pub fn start(dirs: Vec<PathBuf>, poll: Duration, changes: Changes) -> Arc<Self> {
        let source = Arc::new(Self {
            dirs,
            current: Mutex::new(Arc::default()),
            loader: Mutex::default(),
        });
        let mut seen = fingerprint(&source.dirs);
        source.reload();
        let watcher = source.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(poll);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let now = fingerprint(&watcher.dirs);
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
        let inputs = lock(&self.loader).load(&self.dirs);
        let errors = inputs
            .status
            .iter()
            .filter(|s| s.diagnostic.is_error())
            .count();
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        tracing::info!(
            dirs = %dirs.join(","),
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
    /// Loads and validates `dirs`, in order, as one set: the objects in force (keeping
    /// last good versions of broken ones), the registry their ServiceEntries make, and
    /// every finding's status. A file reached through two of them is read once.
    pub fn load<P: AsRef<Path>>(&mut self, dirs: &[P]) -> Inputs {
        let mut set = ConfigSet::default();
        let mut own_checks = Vec::new();
        let mut kept = HashMap::new();
        for dir in dirs {
            let dir = dir.as_ref();
            let files = match config_files(dir) {
                Ok(files) => files,
                // Unreadable: the loader's error names the directory; the others still load.
                Err(_) => {
                    set.extend(load_paths(&[dir]));
                    continue;
                }
            };
            for path in files {
                if kept.contains_key(&path) {
                    continue;
                }
                let loaded = self.load_file(path.clone());
                set.extend(loaded.set.clone());
                own_checks.extend(loaded.own_checks.iter().cloned());
                kept.insert(path, loaded);
            }
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

fn fingerprint(dirs: &[PathBuf]) -> Fingerprint {
    dirs.iter()
        .flat_map(|dir| config_files(dir).unwrap_or_default())
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

#[cfg(test)]
mod tests;
