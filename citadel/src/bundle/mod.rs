//! The trust bundle: every root a workload should trust. The current signing root plus any
//! other (a root being rotated in or out, a federated mesh's root). Every answer carries the
//! whole bundle, so a new root is trusted everywhere before it signs anything.

pub mod publish;

use std::fmt;

use crate::cert::{CertError, CertInfo};
use crate::pem::{self, PemError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("trust bundle: {0}")]
    Pem(#[from] PemError),
    #[error("trust bundle, certificate {index}: {source}")]
    Cert { index: usize, source: CertError },
    #[error("trust bundle, certificate {index} ({subject}) is not a CA certificate")]
    NotCa { index: usize, subject: String },
}

/// Roots in order, each once, kept as DER.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TrustBundle {
    roots: Vec<Vec<u8>>,
}

impl TrustBundle {
    /// Every CERTIFICATE block in `text`; each must be a CA certificate.
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        let mut bundle = Self::default();
        for (index, der) in pem::decode_all(text, "CERTIFICATE")?
            .into_iter()
            .enumerate()
        {
            let info =
                CertInfo::parse(&der).map_err(|source| BundleError::Cert { index, source })?;
            if !info.is_ca {
                let subject = info.subject;
                return Err(BundleError::NotCa { index, subject });
            }
            bundle = bundle.with(&der);
        }
        Ok(bundle)
    }

    pub fn roots(&self) -> &[Vec<u8>] {
        &self.roots
    }

    pub fn contains(&self, der: &[u8]) -> bool {
        self.roots.iter().any(|r| r == der)
    }

    /// This bundle with `der` added at the end (once).
    pub fn with(&self, der: &[u8]) -> Self {
        let mut roots = self.roots.clone();
        if !self.contains(der) {
            roots.push(der.to_vec());
        }
        Self { roots }
    }

    /// This bundle without `der`.
    pub fn without(&self, der: &[u8]) -> Self {
        let roots = self.roots.iter().filter(|r| *r != der).cloned().collect();
        Self { roots }
    }

    /// One PEM string per root, as `CertificateResponse.trust_bundle` carries them.
    pub fn pems(&self) -> Vec<String> {
        self.roots
            .iter()
            .map(|der| pem::encode("CERTIFICATE", der))
            .collect()
    }

    /// All roots in one text, as `trust-bundle.pem` and the ConfigMap hold them.
    pub fn to_pem(&self) -> String {
        self.pems().concat()
    }
}

impl fmt::Debug for TrustBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subjects: Vec<String> = self
            .roots
            .iter()
            .map(|der| CertInfo::parse(der).map_or_else(|e| e.to_string(), |i| i.subject))
            .collect();
        f.debug_tuple("TrustBundle").field(&subjects).finish()
    }
}
