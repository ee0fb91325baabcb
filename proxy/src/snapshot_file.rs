//! Standalone mode: the snapshot comes from a file, checked for changes on an interval.
//! (pilot's gRPC stream will feed [`State`] the same way.)
//!
//! Polling, not inotify: it sees edits, atomic renames and ConfigMap symlink swaps alike,
//! and reading one small file a few times a second costs nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mesh_core::compile::compile;
use mesh_core::snapshot::Snapshot;
use tokio::sync::watch;

use crate::state::{Runtime, State};

pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// Parses and compiles a snapshot file's content. The error names the file and the field.
pub fn runtime_from(path: &Path, content: &[u8], state: &State) -> Result<Runtime, String> {
    let compiled = std::str::from_utf8(content)
        .map_err(|e| e.to_string())
        .and_then(|text| Snapshot::from_yaml(text).map_err(|e| e.to_string()))
        .and_then(|snapshot| {
            let config = compile(&snapshot).map_err(|e| e.to_string())?;
            Runtime::new(snapshot, config, state).map_err(|e| e.to_string())
        });
    compiled.map_err(|e| format!("{}: {e}", path.display()))
}

/// Applies the file whenever its content differs from `last_seen`; a bad version is logged
/// and refused, and the last good one keeps serving. Each applied snapshot bumps `applied`.
pub async fn watch_file(
    path: PathBuf,
    every: Duration,
    mut last_seen: Vec<u8>,
    state: Arc<State>,
    applied: watch::Sender<u64>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Ok(content) = std::fs::read(&path) else {
            continue; // mid-rename, or removed: keep the last good config
        };
        if content == last_seen {
            continue;
        }
        match runtime_from(&path, &content, &state) {
            Ok(runtime) => {
                tracing::info!(version = %runtime.config.version, file = %path.display(), "snapshot applied");
                state.apply(runtime);
                applied.send_modify(|g| *g += 1);
            }
            Err(error) => {
                tracing::warn!(%error, "snapshot rejected; still serving the last good one");
                state.reject(error);
            }
        }
        last_seen = content;
    }
}
