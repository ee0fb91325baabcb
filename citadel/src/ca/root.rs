//! A new self-signed root: ECDSA P-256, CA:true with pathlen 0 (it signs workloads and
//! citadel's own serving certificate, never another CA), key usage certSign and cRLSign.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyUsagePurpose,
};

use super::keys::{self, KeyError, KeyPem};

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("creating the root key: {0}")]
    Key(#[from] KeyError),
    #[error("signing the root certificate: {0}")]
    Sign(#[from] rcgen::Error),
}

/// A root CA's key and certificate.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RootPair {
    pub key: KeyPem,
    pub cert: Vec<u8>,
}

/// Creates a root valid from a minute ago (clock skew) for `ttl`.
pub fn create(trust_domain: &str, ttl: Duration, now: SystemTime) -> Result<RootPair, RootError> {
    let key = keys::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name(trust_domain, now);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(keys::random_serial()?);
    params.not_before = (now - Duration::from_secs(60)).into();
    params.not_after = (now + ttl).into();
    let cert = params.self_signed(&key)?;
    Ok(RootPair {
        key: keys::to_pem(&key),
        cert: cert.der().to_vec(),
    })
}

/// Distinct per root (the creation time is in the name), so a bundle holding the old and the
/// new root during a rotation shows which is which.
fn name(trust_domain: &str, now: SystemTime) -> DistinguishedName {
    let created = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, trust_domain);
    name.push(DnType::CommonName, format!("mesh root CA {created}"));
    name
}
