//! Private keys and randomness. A key is held as [`KeyPem`], whose `Debug` shows nothing, and
//! errors about keys never include the key's text.

use std::fmt;

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("generating a P-256 key failed")]
    Generate,
    #[error(
        "the private key is not an unencrypted PKCS#8 PEM (\"BEGIN PRIVATE KEY\") key; \
         convert it with `openssl pkcs8 -topk8 -nocrypt`"
    )]
    Parse,
    #[error("the private key does not match the certificate's public key")]
    Mismatch,
    #[error("the system random number generator failed")]
    Random,
}

/// A PKCS#8 private key in PEM. Only [`KeyPem::expose`] reveals it, for the store.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPem(String);

impl KeyPem {
    pub fn new(pem: String) -> Self {
        Self(pem)
    }

    /// The key's text, for writing it to its store and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn key_pair(&self) -> Result<KeyPair, KeyError> {
        KeyPair::from_pem(&self.0).map_err(|_| KeyError::Parse)
    }
}

impl fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyPem([redacted])")
    }
}

/// A new ECDSA P-256 key.
pub fn generate() -> Result<KeyPair, KeyError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|_| KeyError::Generate)
}

pub fn to_pem(key: &KeyPair) -> KeyPem {
    KeyPem(key.serialize_pem())
}

/// A random positive 128-bit serial number (RFC 5280 allows up to 20 octets).
pub fn random_serial() -> Result<rcgen::SerialNumber, KeyError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| KeyError::Random)?;
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

/// Refuses a key that cannot sign for the certificate holding `public_key`.
pub fn check_matches(key: &KeyPair, public_key: &[u8]) -> Result<(), KeyError> {
    if key.public_key_raw() == public_key {
        Ok(())
    } else {
        Err(KeyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn debug_and_errors_never_show_the_key() {
        let key = to_pem(&generate().expect("key"));
        let body: String = key
            .expose()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(!format!("{key:?}").contains(&body[..20]));
        let broken = KeyPem::new(key.expose().replace('A', "*"));
        let error = broken.key_pair().unwrap_err();
        assert!(!error.to_string().contains(&body[..20]));
    }

    #[test]
    fn serials_are_sixteen_random_bytes() {
        let a = random_serial().expect("serial");
        let b = random_serial().expect("serial");
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }
}
