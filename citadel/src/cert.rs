//! What citadel reads from a certificate: validity, CA-ness, key, issuer signature.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::prelude::{FromDer, X509Certificate};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    #[error("not a valid X.509 certificate: {0}")]
    Parse(String),
    #[error("trailing bytes after the certificate")]
    Trailing,
}

/// The parts of a parsed certificate citadel decides on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub is_ca: bool,
    /// The subject public key (the BIT STRING's bytes), to match a private key against.
    pub public_key: Vec<u8>,
}

impl CertInfo {
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        let cert = parse(der)?;
        let validity = cert.validity();
        Ok(Self {
            subject: cert.subject().to_string(),
            not_before: to_system_time(validity.not_before.timestamp()),
            not_after: to_system_time(validity.not_after.timestamp()),
            is_ca: cert.is_ca(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        })
    }

    /// Seconds since the epoch, for the expiry gauges.
    pub fn not_after_seconds(&self) -> f64 {
        seconds(self.not_after)
    }
}

/// Whether `issuer` signed `child` (signature only: no validity or name checks).
pub fn signed_by(child: &[u8], issuer: &[u8]) -> bool {
    let (Ok(child), Ok(issuer)) = (parse(child), parse(issuer)) else {
        return false;
    };
    child.verify_signature(Some(issuer.public_key())).is_ok()
}

pub fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| CertError::Parse(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::Trailing);
    }
    Ok(cert)
}

fn to_system_time(timestamp: i64) -> SystemTime {
    match u64::try_from(timestamp) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH,
    }
}
