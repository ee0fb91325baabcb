//! Citadel's own roots as a store holds them: the signing root, the trust bundle, and the
//! two in-between states of a rotation (a prepared next root; a retired previous root).

use super::authority::SigningMaterial;
use super::keys::KeyPem;
use super::root::RootPair;
use super::store::{Files, names};
use crate::bundle::{BundleError, TrustBundle};
use crate::pem::{self, PemError};

#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("{name} is missing")]
    Missing { name: &'static str },
    #[error("{name}: {source}")]
    Pem {
        name: &'static str,
        source: PemError,
    },
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootState {
    /// Signs everything.
    pub current: RootPair,
    /// Every root workloads trust; always holds `current` and `next`.
    pub bundle: TrustBundle,
    /// Rotation step 1 done: trusted, not yet signing.
    pub next: Option<RootPair>,
    /// Rotation step 2 done: no longer signing, still trusted until step 3.
    pub previous: Option<Vec<u8>>,
}

impl RootState {
    pub fn fresh(root: RootPair) -> Self {
        Self {
            bundle: TrustBundle::default().with(&root.cert),
            current: root,
            next: None,
            previous: None,
        }
    }

    pub fn from_files(files: &Files) -> Result<Self, RootsError> {
        let current =
            pair(files, names::ROOT_KEY, names::ROOT_CERT)?.ok_or(RootsError::Missing {
                name: names::ROOT_KEY,
            })?;
        let next = pair(files, names::NEXT_KEY, names::NEXT_CERT)?;
        let previous = match files.get(names::PREVIOUS_CERT) {
            Some(text) => Some(cert(names::PREVIOUS_CERT, text)?),
            None => None,
        };
        let mut bundle = match files.get(names::TRUST_BUNDLE) {
            Some(text) => TrustBundle::parse(text)?,
            None => TrustBundle::default(),
        };
        // A root that signs, or is about to, must be trusted: an edit or an interrupted
        // write that lost it would break every workload.
        for root in std::iter::once(&current).chain(&next) {
            bundle = bundle.with(&root.cert);
        }
        Ok(Self {
            current,
            bundle,
            next,
            previous,
        })
    }

    pub fn to_files(&self) -> Files {
        let mut files = Files::default();
        files.insert(names::ROOT_KEY, self.current.key.expose());
        files.insert(
            names::ROOT_CERT,
            &pem::encode("CERTIFICATE", &self.current.cert),
        );
        files.insert(names::TRUST_BUNDLE, &self.bundle.to_pem());
        if let Some(next) = &self.next {
            files.insert(names::NEXT_KEY, next.key.expose());
            files.insert(names::NEXT_CERT, &pem::encode("CERTIFICATE", &next.cert));
        }
        if let Some(previous) = &self.previous {
            files.insert(names::PREVIOUS_CERT, &pem::encode("CERTIFICATE", previous));
        }
        files
    }

    pub fn signing_material(&self) -> SigningMaterial {
        SigningMaterial {
            key: self.current.key.clone(),
            chain: vec![self.current.cert.clone()],
            bundle: self.bundle.clone(),
        }
    }
}

fn pair(
    files: &Files,
    key_name: &'static str,
    cert_name: &'static str,
) -> Result<Option<RootPair>, RootsError> {
    match (files.get(key_name), files.get(cert_name)) {
        (None, None) => Ok(None),
        (Some(key), Some(text)) => Ok(Some(RootPair {
            key: KeyPem::new(key.to_owned()),
            cert: cert(cert_name, text)?,
        })),
        (Some(_), None) => Err(RootsError::Missing { name: cert_name }),
        (None, Some(_)) => Err(RootsError::Missing { name: key_name }),
    }
}

fn cert(name: &'static str, text: &str) -> Result<Vec<u8>, RootsError> {
    pem::decode_one(text, "CERTIFICATE").map_err(|source| RootsError::Pem { name, source })
}
