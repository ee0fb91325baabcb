//! Intermediate mode: citadel signs with a CA certificate the user's own root issued
//! (`--ca-cert`, `--ca-key`, `--root-cert`). Answers then carry leaf, intermediate(s), root.

use std::path::{Path, PathBuf};

use super::authority::SigningMaterial;
use super::keys::KeyPem;
use crate::bundle::{BundleError, TrustBundle};
use crate::cert;
use crate::pem::{self, PemError};

#[derive(Debug, thiserror::Error)]
pub enum IntermediateError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("--ca-cert {path}: {source}")]
    Cert { path: String, source: PemError },
    #[error("--root-cert {path}: {source}")]
    Roots { path: String, source: BundleError },
    #[error(
        "no root in --root-cert {path} signed the last certificate in --ca-cert; \
         give the root that issued the intermediate"
    )]
    NoIssuingRoot { path: String },
}

/// The three files of intermediate mode.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IntermediateFiles {
    /// The intermediate certificate, optionally followed by the certificates above it.
    pub cert: PathBuf,
    /// Its PKCS#8 private key.
    pub key: PathBuf,
    /// The roots to trust (the one that issued the intermediate, and any others).
    pub roots: PathBuf,
}

impl IntermediateFiles {
    pub async fn load(&self) -> Result<SigningMaterial, IntermediateError> {
        let chain_text = read(&self.cert).await?;
        let key = KeyPem::new(read(&self.key).await?);
        let roots_text = read(&self.roots).await?;
        let chain = pem::decode_all(&chain_text, "CERTIFICATE").map_err(|source| {
            IntermediateError::Cert {
                path: self.cert.display().to_string(),
                source,
            }
        })?;
        let bundle =
            TrustBundle::parse(&roots_text).map_err(|source| IntermediateError::Roots {
                path: self.roots.display().to_string(),
                source,
            })?;
        let chain = complete(chain, &bundle).ok_or_else(|| IntermediateError::NoIssuingRoot {
            path: self.roots.display().to_string(),
        })?;
        Ok(SigningMaterial { key, chain, bundle })
    }
}

/// `chain` ending in a root from `bundle`: as given if it already does, else with the root
/// that signed its last certificate appended.
pub fn complete(mut chain: Vec<Vec<u8>>, bundle: &TrustBundle) -> Option<Vec<Vec<u8>>> {
    let last = chain.last()?;
    if bundle.contains(last) {
        return Some(chain);
    }
    let root = bundle
        .roots()
        .iter()
        .find(|root| cert::signed_by(last, root))?;
    chain.push(root.clone());
    Some(chain)
}

async fn read(path: &Path) -> Result<String, IntermediateError> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|source| IntermediateError::Read {
            path: path.display().to_string(),
            source,
        })
}
