//! Certificates, keys and CA bundles read from PEM files a config names (DestinationRule
//! `tls`, Gateway server `tls`): every error names the config field and the file.

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum PemFileError {
    #[error("tls.{field}: cannot read {path}: {source}")]
    Read {
        field: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("tls.{field}: {path}: {problem}")]
    Invalid {
        field: &'static str,
        path: String,
        problem: String,
    },
}

impl PemFileError {
    pub fn invalid(field: &'static str, path: &str, problem: impl ToString) -> Self {
        Self::Invalid {
            field,
            path: path.to_owned(),
            problem: problem.to_string(),
        }
    }
}

fn read(field: &'static str, path: &str) -> Result<Vec<u8>, PemFileError> {
    std::fs::read(path).map_err(|source| PemFileError::Read {
        field,
        path: path.to_owned(),
        source,
    })
}

/// The certificates in the file, at least one.
pub fn certificates(
    field: &'static str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, PemFileError> {
    let pem = read(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemFileError::invalid(field, path, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(PemFileError::invalid(
            field,
            path,
            "holds no PEM certificate",
        ));
    }
    Ok(certs)
}

/// The file's certificates as trust anchors.
pub fn roots(field: &'static str, path: &str) -> Result<RootCertStore, PemFileError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(field, path)? {
        roots
            .add(cert)
            .map_err(|e| PemFileError::invalid(field, path, format!("a CA certificate: {e}")))?;
    }
    Ok(roots)
}

pub fn private_key(
    field: &'static str,
    path: &str,
) -> Result<PrivateKeyDer<'static>, PemFileError> {
    let pem = read(field, path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| PemFileError::invalid(field, path, format!("no PEM private key: {e}")))
}
