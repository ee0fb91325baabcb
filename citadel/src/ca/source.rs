//! Where the signing material comes from, whichever the mode: citadel's own root in a
//! directory or a Secret (created on first start), or the user's intermediate files.

use std::time::{Duration, SystemTime};

use super::authority::SigningMaterial;
use super::intermediate::{IntermediateError, IntermediateFiles};
use super::root;
use super::store::dir::DirStore;
use super::store::secret::SecretStore;
use super::store::{self, CaStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intermediate(#[from] IntermediateError),
}

/// How a new root is made, on first start and by `rotate-root prepare`.
#[derive(Clone, Debug)]
pub struct RootSettings {
    pub trust_domain: String,
    pub ttl: Duration,
}

pub enum CaSource {
    Dir(DirStore),
    Secret(Box<SecretStore>),
    Intermediate(IntermediateFiles),
}

impl CaSource {
    /// The material to sign with, creating citadel's root if the store is empty. The flag
    /// says whether a root was created.
    pub async fn start(
        &self,
        settings: &RootSettings,
    ) -> Result<(SigningMaterial, bool), SourceError> {
        match self {
            CaSource::Dir(store) => start_store(store, settings).await,
            CaSource::Secret(store) => start_store(store.as_ref(), settings).await,
            CaSource::Intermediate(files) => Ok((files.load().await?, false)),
        }
    }

    /// The material as stored now (a rotation step may have changed it); never creates.
    pub async fn current(&self) -> Result<SigningMaterial, SourceError> {
        match self {
            CaSource::Dir(store) => current_store(store).await,
            CaSource::Secret(store) => current_store(store.as_ref()).await,
            CaSource::Intermediate(files) => Ok(files.load().await?),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            CaSource::Dir(store) => store.describe(),
            CaSource::Secret(store) => store.describe(),
            CaSource::Intermediate(files) => format!(
                "intermediate {} (roots {})",
                files.cert.display(),
                files.roots.display()
            ),
        }
    }
}

async fn start_store<S: CaStore>(
    store: &S,
    settings: &RootSettings,
) -> Result<(SigningMaterial, bool), SourceError> {
    let create = || root::create(&settings.trust_domain, settings.ttl, SystemTime::now());
    let (state, created) = store::load_or_create(store, create).await?;
    Ok((state.signing_material(), created))
}

async fn current_store<S: CaStore>(store: &S) -> Result<SigningMaterial, SourceError> {
    let state = store::load(store).await?.ok_or_else(|| StoreError::Empty {
        store: store.describe(),
    })?;
    Ok(state.signing_material())
}
