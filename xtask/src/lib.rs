//! mesh's development tasks, behind `cargo xtask`. Each task is a module that the binary
//! and the tests drive alike.

pub mod codegen;
pub mod demo;

use std::path::{Path, PathBuf};

/// The workspace root: xtask lives one level below it.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}
