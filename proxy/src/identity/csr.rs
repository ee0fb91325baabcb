//! A fresh key pair per certificate and the CSR that asks citadel to sign it: ECDSA P-256,
//! an empty subject and exactly one SAN, the URI SPIFFE ID, as Istio's agents send.

use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256, SanType};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::spiffe::Identity;

#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("generating the ECDSA P-256 key: {0}")]
    Key(#[source] rcgen::Error),
    #[error("the identity {0} is not a valid URI SAN")]
    San(String),
    #[error("writing the CSR: {0}")]
    Request(#[source] rcgen::Error),
}

/// A private key and its CSR. The key never leaves the process and is never printed:
/// `Debug` shows only the CSR.
pub struct KeyAndCsr {
    key: KeyPair,
    /// PEM-encoded PKCS#10.
    pub csr_pem: String,
}

impl std::fmt::Debug for KeyAndCsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAndCsr")
            .field("csr_pem", &self.csr_pem)
            .finish_non_exhaustive()
    }
}

impl KeyAndCsr {
    /// The key in the form rustls loads (PKCS#8 DER).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()))
    }
}

/// A new key pair and a CSR for `identity`.
pub fn generate(identity: &Identity) -> Result<KeyAndCsr, CsrError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CsrError::Key)?;
    let uri = identity
        .to_string()
        .try_into()
        .map_err(|_| CsrError::San(identity.to_string()))?;
    let mut params = CertificateParams::default();
    // The identity is the SAN; a subject would only be something for the CA to ignore.
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(uri)];
    let csr = params.serialize_request(&key).map_err(CsrError::Request)?;
    let csr_pem = csr.pem().map_err(CsrError::Request)?;
    Ok(KeyAndCsr { key, csr_pem })
}

#[cfg(test)]
mod tests {
    use rcgen::CertificateSigningRequestParams;

    use super::*;

    #[test]
    fn the_csr_carries_exactly_the_spiffe_id() {
        let identity: Identity = "spiffe://cluster.local/ns/shop/sa/cart"
            .parse()
            .expect("valid");
        let generated = generate(&identity).expect("generates");
        assert!(
            generated
                .csr_pem
                .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
        );
        // Parsing also checks the CSR's signature.
        let parsed = CertificateSigningRequestParams::from_pem(&generated.csr_pem)
            .expect("a valid, self-signed CSR");
        let sans: Vec<String> = parsed
            .params
            .subject_alt_names
            .iter()
            .map(|san| match san {
                SanType::URI(uri) => format!("URI:{}", uri.as_str()),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(sans, [format!("URI:{identity}")]);
        assert_eq!(parsed.params.distinguished_name.iter().count(), 0);
        assert_eq!(parsed.public_key.algorithm(), &PKCS_ECDSA_P256_SHA256);
    }

    #[test]
    fn each_csr_has_a_new_key_that_debug_does_not_show() {
        let identity: Identity = "spiffe://td/ns/a/sa/b".parse().expect("valid");
        let first = generate(&identity).expect("generates");
        let second = generate(&identity).expect("generates");
        assert_ne!(
            first.private_key().secret_der(),
            second.private_key().secret_der()
        );
        let shown = format!("{first:?}");
        assert!(shown.contains("CERTIFICATE REQUEST"));
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}
