//! A workload certificate ready for rustls: the chain, the key it certifies, the identity it
//! proves and the roots peers are checked against, validated once when it is made.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::Serialize;

use super::spiffe::Identity;
use super::x509::{self, CertInfo, X509Error};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{what}: no PEM certificate found")]
    NoPem { what: &'static str },
    #[error("{what}: bad PEM: {reason}")]
    Pem { what: &'static str, reason: String },
    #[error("{what}: {source}")]
    X509 {
        what: &'static str,
        source: X509Error,
    },
    #[error("the private key: {0}")]
    Key(#[source] rustls::Error),
    #[error("the certificate does not certify this private key: {0}")]
    KeyMismatch(#[source] rustls::Error),
    #[error("trust bundle root {index}: {source}")]
    Root { index: usize, source: rustls::Error },
}

/// The roots a proxy trusts for its peers. During a root rotation it holds the old and the
/// new root, and peers with a chain to either are accepted.
#[derive(Clone)]
pub struct TrustBundle {
    roots: Arc<RootCertStore>,
    info: Vec<CertInfo>,
}

impl TrustBundle {
    pub fn new(ders: Vec<CertificateDer<'static>>) -> Result<Self, CertError> {
        if ders.is_empty() {
            return Err(CertError::NoPem {
                what: "trust bundle",
            });
        }
        let mut roots = RootCertStore::empty();
        let mut info = Vec::with_capacity(ders.len());
        for (index, der) in ders.into_iter().enumerate() {
            info.push(describe("trust bundle", &der)?);
            roots
                .add(der)
                .map_err(|source| CertError::Root { index, source })?;
        }
        Ok(Self {
            roots: Arc::new(roots),
            info,
        })
    }

    /// Every certificate in every PEM text (a ConfigMap file or citadel's `trust_bundle`).
    pub fn from_pem<S: AsRef<str>>(pems: &[S]) -> Result<Self, CertError> {
        Self::new(certs_from_pem("trust bundle", pems)?)
    }

    pub fn roots(&self) -> &Arc<RootCertStore> {
        &self.roots
    }

    pub fn info(&self) -> &[CertInfo] {
        &self.info
    }
}

/// The proxy's own certificate. Holds the private key inside rustls' signing key, which
/// never prints it; this type has no `Debug` that could.
pub struct WorkloadCertificate {
    identity: Identity,
    certified: Arc<CertifiedKey>,
    chain: Vec<CertInfo>,
    bundle: TrustBundle,
}

impl WorkloadCertificate {
    /// `chain` is leaf first, then intermediates, then optionally the root (not presented
    /// to peers: they have it). The leaf must carry one SPIFFE ID and certify `key`.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        bundle: TrustBundle,
    ) -> Result<Self, CertError> {
        let leaf = chain.first().ok_or(CertError::NoPem {
            what: "certificate chain",
        })?;
        let identity = x509::spiffe_id(leaf).map_err(|source| CertError::X509 {
            what: "the leaf certificate",
            source,
        })?;
        let info = chain
            .iter()
            .map(|der| describe("certificate chain", der))
            .collect::<Result<Vec<_>, _>>()?;
        let presented = without_root(chain)?;
        let signer =
            rustls::crypto::ring::sign::any_supported_type(&key).map_err(CertError::Key)?;
        let certified = CertifiedKey::new(presented, signer);
        certified.keys_match().map_err(CertError::KeyMismatch)?;
        Ok(Self {
            identity,
            certified: Arc::new(certified),
            chain: info,
            bundle,
        })
    }

    /// As [`WorkloadCertificate::new`], from PEM texts as citadel sends them.
    pub fn from_pem<S: AsRef<str>>(
        chain: &[S],
        key: PrivateKeyDer<'static>,
        bundle: &[S],
    ) -> Result<Self, CertError> {
        let chain = certs_from_pem("certificate chain", chain)?;
        Self::new(chain, key, TrustBundle::from_pem(bundle)?)
    }

    /// The same certificate and key, trusting `bundle` instead: a root rotation announced
    /// between renewals.
    pub fn with_bundle(&self, bundle: TrustBundle) -> Self {
        Self {
            identity: self.identity.clone(),
            certified: self.certified.clone(),
            chain: self.chain.clone(),
            bundle,
        }
    }

    /// The SPIFFE ID in the leaf.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// What rustls presents in handshakes: leaf and intermediates, and the key.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.certified
    }

    pub fn leaf(&self) -> &CertInfo {
        // `new` refuses an empty chain.
        &self.chain[0]
    }

    pub fn chain(&self) -> &[CertInfo] {
        &self.chain
    }

    pub fn bundle(&self) -> &TrustBundle {
        &self.bundle
    }

    pub fn not_before(&self) -> SystemTime {
        self.leaf().not_before()
    }

    pub fn not_after(&self) -> SystemTime {
        self.leaf().not_after()
    }

    /// What `/certs` shows: everything but the key.
    pub fn view(&self) -> CertificateView<'_> {
        CertificateView {
            identity: &self.identity,
            serial: &self.leaf().serial,
            not_before: x509::format_rfc3339(self.leaf().not_before),
            not_after: x509::format_rfc3339(self.leaf().not_after),
            chain: &self.chain,
            trust_bundle: self.bundle.info(),
        }
    }
}

#[derive(Serialize)]
pub struct CertificateView<'a> {
    pub identity: &'a Identity,
    pub serial: &'a str,
    pub not_before: String,
    pub not_after: String,
    pub chain: &'a [CertInfo],
    pub trust_bundle: &'a [CertInfo],
}

/// The chain minus a trailing self-issued root.
fn without_root(
    mut chain: Vec<CertificateDer<'static>>,
) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let ends_in_root = match chain.last() {
        Some(last) if chain.len() > 1 => {
            x509::is_self_issued(last).map_err(|source| CertError::X509 {
                what: "certificate chain",
                source,
            })?
        }
        _ => false,
    };
    if ends_in_root {
        chain.pop();
    }
    Ok(chain)
}

fn describe(what: &'static str, der: &CertificateDer<'_>) -> Result<CertInfo, CertError> {
    CertInfo::parse(der).map_err(|source| CertError::X509 { what, source })
}

/// Every certificate of every PEM text, in order.
pub fn certs_from_pem<S: AsRef<str>>(
    what: &'static str,
    pems: &[S],
) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let mut certs = Vec::new();
    for pem in pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_ref().as_bytes()) {
            certs.push(cert.map_err(|error| CertError::Pem {
                what,
                reason: error.to_string(),
            })?);
        }
    }
    if certs.is_empty() {
        return Err(CertError::NoPem { what });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256, SanType,
    };
    use rustls::pki_types::PrivatePkcs8KeyDer;

    use super::*;

    const ID: &str = "spiffe://cluster.local/ns/shop/sa/cart";

    /// A root and a leaf for `uri` it signed, as DER, and the leaf's key.
    fn issued(uri: Option<&str>) -> (CertificateDer<'static>, CertificateDer<'static>, KeyPair) {
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut root = CertificateParams::new(Vec::<String>::new()).expect("params");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root_cert = root.self_signed(&root_key).expect("signs");
        let issuer = Issuer::new(root, root_key);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
        if let Some(uri) = uri {
            leaf.subject_alt_names = vec![SanType::URI(uri.try_into().expect("ascii"))];
        }
        let leaf_cert = leaf.signed_by(&key, &issuer).expect("signs");
        (root_cert.der().clone(), leaf_cert.der().clone(), key)
    }

    fn der(key: &KeyPair) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
    }

    #[test]
    fn presents_the_chain_without_its_root_and_keeps_it_for_display() {
        let (root, leaf, key) = issued(Some(ID));
        let bundle = TrustBundle::new(vec![root.clone()]).expect("bundle");
        let cert =
            WorkloadCertificate::new(vec![leaf.clone(), root], der(&key), bundle).expect("valid");
        assert_eq!(cert.identity().to_string(), ID);
        assert_eq!(cert.certified_key().cert, vec![leaf]);
        assert_eq!(cert.chain().len(), 2);
        assert_eq!(cert.bundle().info().len(), 1);
        let view = serde_json::to_value(cert.view()).expect("serializes");
        assert_eq!(view["identity"], ID);
        assert_eq!(view["serial"], cert.leaf().serial.as_str());
    }

    #[test]
    fn refuses_a_key_the_leaf_does_not_certify() {
        let (root, leaf, _) = issued(Some(ID));
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let bundle = TrustBundle::new(vec![root]).expect("bundle");
        let error = WorkloadCertificate::new(vec![leaf], der(&other), bundle);
        assert!(matches!(error, Err(CertError::KeyMismatch(_))));
    }

    #[test]
    fn refuses_a_leaf_without_a_spiffe_id_and_empty_inputs() {
        let (root, leaf, key) = issued(None);
        let bundle = TrustBundle::new(vec![root]).expect("bundle");
        let error = WorkloadCertificate::new(vec![leaf], der(&key), bundle.clone());
        assert!(matches!(error, Err(CertError::X509 { .. })));
        let error = WorkloadCertificate::new(Vec::new(), der(&key), bundle);
        assert!(matches!(error, Err(CertError::NoPem { .. })));
        assert!(matches!(
            TrustBundle::new(Vec::new()),
            Err(CertError::NoPem { .. })
        ));
        let empty: [&str; 1] = ["not PEM at all"];
        assert!(matches!(
            TrustBundle::from_pem(&empty),
            Err(CertError::NoPem { .. })
        ));
    }
}
