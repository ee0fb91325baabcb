//! Where citadel's own root lives: a directory (local mode) or a Secret (Kubernetes). Both
//! hold the same named PEM files; [`load_or_create`] and [`rotate`] are written once against
//! the [`CaStore`] trait.

pub mod dir;
pub mod secret;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use super::root::{RootError, RootPair};
use super::roots::{RootState, RootsError};
use super::rotation::{self, RotationError, Step};

/// The names of the files (directory) or data keys (Secret).
pub mod names {
    pub const ROOT_KEY: &str = "root-key.pem";
    pub const ROOT_CERT: &str = "root-cert.pem";
    pub const TRUST_BUNDLE: &str = "trust-bundle.pem";
    pub const NEXT_KEY: &str = "next-root-key.pem";
    pub const NEXT_CERT: &str = "next-root-cert.pem";
    pub const PREVIOUS_CERT: &str = "previous-root-cert.pem";
    pub const ALL: [&str; 6] = [
        ROOT_KEY,
        ROOT_CERT,
        TRUST_BUNDLE,
        NEXT_KEY,
        NEXT_CERT,
        PREVIOUS_CERT,
    ];

    /// Files that hold a private key (mode 0600 in a directory).
    pub fn is_key(name: &str) -> bool {
        name == ROOT_KEY || name == NEXT_KEY
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{name} is not UTF-8 text")]
    NotText { name: String },
    #[error("{store}: {message}")]
    Kubernetes { store: String, message: String },
    #[error("{store} changed while it was being updated; run the command again")]
    Conflict { store: String },
    #[error("{store} has no CA yet; start citadel once to create it")]
    Empty { store: String },
    #[error("{store}: {source}")]
    Roots { store: String, source: RootsError },
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    Rotation(#[from] RotationError),
}

/// Named PEM texts. `Debug` lists the names only: some values are keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Files(BTreeMap<String, String>);

impl Files {
    pub fn insert(&mut self, name: &str, text: &str) {
        self.0.insert(name.to_owned(), text.to_owned());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for Files {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What a store returned, and the version to replace it at (a Secret's resourceVersion).
#[derive(Debug)]
pub struct Snapshot {
    pub files: Files,
    pub version: Option<String>,
}

pub trait CaStore: Send + Sync {
    /// The stored files, or `None` when no CA has been created.
    fn read(&self) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;
    /// Stores a new CA unless one exists; `false` when another writer was first.
    fn create(&self, files: &Files) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Replaces what was read at `version`; [`StoreError::Conflict`] if it changed since.
    fn replace(
        &self,
        files: &Files,
        version: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// For messages: `directory /var/lib/citadel`, `Secret mesh-system/mesh-ca`.
    fn describe(&self) -> String;
}

/// The stored roots, or `None` when the store is empty.
pub async fn load<S: CaStore>(store: &S) -> Result<Option<RootState>, StoreError> {
    let Some(snapshot) = store.read().await? else {
        return Ok(None);
    };
    let state = RootState::from_files(&snapshot.files).map_err(|source| StoreError::Roots {
        store: store.describe(),
        source,
    })?;
    Ok(Some(state))
}

/// The stored roots; on first start, a root from `create_root` stored first. When two
/// replicas race, the one that stored first wins and the other loads its root.
pub async fn load_or_create<S: CaStore>(
    store: &S,
    create_root: impl FnOnce() -> Result<RootPair, RootError>,
) -> Result<(RootState, bool), StoreError> {
    if let Some(state) = load(store).await? {
        return Ok((state, false));
    }
    let state = RootState::fresh(create_root()?);
    if store.create(&state.to_files()).await? {
        return Ok((state, true));
    }
    let state = load(store).await?.ok_or_else(|| StoreError::Empty {
        store: store.describe(),
    })?;
    Ok((state, false))
}

/// Runs one rotation step against the store and returns the new state.
pub async fn rotate<S: CaStore>(
    store: &S,
    step: Step,
    create_root: impl FnOnce() -> Result<RootPair, RootError>,
) -> Result<RootState, StoreError> {
    let empty = || StoreError::Empty {
        store: store.describe(),
    };
    let snapshot = store.read().await?.ok_or_else(empty)?;
    let state = RootState::from_files(&snapshot.files).map_err(|source| StoreError::Roots {
        store: store.describe(),
        source,
    })?;
    let rotated = match step {
        Step::Prepare => {
            rotation::can_prepare(&state)?;
            rotation::prepare(&state, create_root()?)?
        }
        Step::Activate => rotation::activate(&state)?,
        Step::Finish => rotation::finish(&state)?,
    };
    store
        .replace(&rotated.to_files(), snapshot.version.as_deref())
        .await?;
    Ok(rotated)
}
