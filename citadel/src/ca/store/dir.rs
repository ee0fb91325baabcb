//! Local mode's store: a directory of PEM files, keys readable by their owner only. Each file
//! is replaced atomically (written aside, then renamed); creation claims the directory by
//! linking the root key into place, which fails if another citadel was first.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::{CaStore, Files, Snapshot, StoreError, names};
use crate::ca::roots::RootsError;

pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` next to its final place; the caller renames or links it there.
    async fn write_aside(&self, name: &str, text: &str) -> Result<PathBuf, StoreError> {
        let aside = self.path(&format!(".{name}.{}.tmp", std::process::id()));
        let mode = if names::is_key(name) { 0o600 } else { 0o644 };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&aside)
            .await
            .map_err(io(&aside))?;
        file.write_all(text.as_bytes()).await.map_err(io(&aside))?;
        file.sync_all().await.map_err(io(&aside))?;
        Ok(aside)
    }

    async fn write(&self, name: &str, text: &str) -> Result<(), StoreError> {
        let aside = self.write_aside(name, text).await?;
        let target = self.path(name);
        tokio::fs::rename(&aside, &target)
            .await
            .map_err(io(&target))
    }

    async fn remove(&self, name: &str) -> Result<(), StoreError> {
        let path = self.path(name);
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Links the root key into place: `false` if one is already there.
    async fn claim(&self, files: &Files) -> Result<bool, StoreError> {
        let key = files
            .get(names::ROOT_KEY)
            .ok_or_else(|| StoreError::Roots {
                store: self.describe(),
                source: RootsError::Missing {
                    name: names::ROOT_KEY,
                },
            })?;
        let aside = self.write_aside(names::ROOT_KEY, key).await?;
        let target = self.path(names::ROOT_KEY);
        let linked = tokio::fs::hard_link(&aside, &target).await;
        tokio::fs::remove_file(&aside).await.map_err(io(&aside))?;
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(&target)(e)),
        }
    }
}

impl CaStore for DirStore {
    async fn read(&self) -> Result<Option<Snapshot>, StoreError> {
        let mut files = Files::default();
        for name in names::ALL {
            let path = self.path(name);
            match tokio::fs::read(&path).await {
                Ok(bytes) => {
                    let text = String::from_utf8(bytes).map_err(|_| StoreError::NotText {
                        name: path.display().to_string(),
                    })?;
                    files.insert(name, &text);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        if files.get(names::ROOT_KEY).is_none() {
            return Ok(None);
        }
        Ok(Some(Snapshot {
            files,
            version: None,
        }))
    }

    async fn create(&self, files: &Files) -> Result<bool, StoreError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io(&self.dir))?;
        if !self.claim(files).await? {
            return Ok(false);
        }
        for (name, text) in files.iter().filter(|(n, _)| *n != names::ROOT_KEY) {
            self.write(name, text).await?;
        }
        let private = std::fs::Permissions::from_mode(0o700);
        if let Err(e) = tokio::fs::set_permissions(&self.dir, private).await {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not make the CA directory private");
        }
        Ok(true)
    }

    /// Each file is replaced atomically, the set is not: a step interrupted between the root
    /// key and its certificate leaves a pair that the next start refuses (the key does not
    /// match) rather than one it signs with. A prepared root is written before the bundle.
    async fn replace(&self, files: &Files, _version: Option<&str>) -> Result<(), StoreError> {
        for (name, text) in files.iter() {
            self.write(name, text).await?;
        }
        for name in names::ALL.iter().filter(|n| files.get(n).is_none()) {
            self.remove(name).await?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}
