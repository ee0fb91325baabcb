//! Helpers for the unit tests: CSRs with chosen SANs, a fresh CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use rcgen::string::Ia5String;
use rcgen::{CertificateParams, KeyPair, SanType};

use crate::ca::root::{self, RootPair};
use crate::ca::roots::RootState;
use crate::ca::{Authority, SigningMaterial};

pub const REVIEWS: &str = "spiffe://cluster.local/ns/shop/sa/reviews";

pub fn uri(text: &str) -> SanType {
    SanType::URI(Ia5String::try_from(text).unwrap())
}

pub fn dns(text: &str) -> SanType {
    SanType::DnsName(Ia5String::try_from(text).unwrap())
}

/// A PEM CSR for `sans`, signed by a new P-256 key.
pub fn csr(sans: Vec<SanType>) -> String {
    let key = KeyPair::generate().unwrap();
    csr_with_key(sans, &key)
}

pub fn csr_with_key(sans: Vec<SanType>, key: &KeyPair) -> String {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    params.serialize_request(key).unwrap().pem().unwrap()
}

pub fn new_root(ttl: Duration) -> RootPair {
    root::create("cluster.local", ttl, SystemTime::now()).unwrap()
}

/// A CA with a fresh ten-year root.
pub fn authority() -> Authority {
    let state = RootState::fresh(new_root(Duration::from_secs(10 * 365 * 86400)));
    Authority::new(state.signing_material()).unwrap()
}

pub fn material(root: &RootPair) -> SigningMaterial {
    RootState::fresh(root.clone()).signing_material()
}

/// Verifies `chain` (PEM, leaf first) against `roots` (DER) as webpki does for a TLS client
/// certificate: signatures, validity, CA constraints, EKU clientAuth.
pub fn verify_client_chain(chain: &[String], roots: &[Vec<u8>]) -> Result<(), rustls::Error> {
    verify_chain_at(chain, roots, SystemTime::now())
}

pub fn verify_chain_at(
    chain: &[String],
    roots: &[Vec<u8>],
    at: SystemTime,
) -> Result<(), rustls::Error> {
    use rustls::pki_types::{CertificateDer, UnixTime};
    use std::sync::Arc;
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(CertificateDer::from(root.clone()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
    let ders: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|p| CertificateDer::from(crate::pem::decode_one(p, "CERTIFICATE").unwrap()))
        .collect();
    let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    verifier
        .verify_client_cert(
            &ders[0],
            &ders[1..],
            UnixTime::since_unix_epoch(since_epoch),
        )
        .map(|_| ())
}

/// The URI SANs and other SANs of a PEM certificate.
pub fn sans_of(pem_text: &str) -> Vec<String> {
    use x509_parser::prelude::*;
    let der = crate::pem::decode_one(pem_text, "CERTIFICATE").unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().expect("has SANs");
    san.value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect()
}
