//! A JWT issuer: a key pair, its JWKS and signed tokens. For tests, and for demos that
//! need tokens without an identity provider.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

/// A 2048-bit RSA key made once with `openssl genpkey` (ring cannot generate RSA keys).
/// It signs test tokens only: it is public, so nothing may trust it.
const TEST_RSA_PKCS8: &[u8] = include_bytes!("test-rsa-key.p8.der");

pub struct Issuer {
    /// The `iss` of its tokens.
    pub issuer: String,
    kid: String,
    key: Key,
    rng: SystemRandom,
}

enum Key {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

#[derive(Debug, thiserror::Error)]
#[error("could not make a signing key: {0}")]
pub struct IssuerError(&'static str);

impl Issuer {
    /// A fresh ES256 key pair.
    pub fn es256(issuer: &str, kid: &str) -> Result<Self, IssuerError> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| IssuerError("ES256"))?;
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .map_err(|_| IssuerError("ES256"))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            kid: kid.to_owned(),
            key: Key::Ec(pair),
            rng,
        })
    }

    /// RS256 with the fixed test key: every such issuer shares it.
    pub fn rs256_test_key(issuer: &str, kid: &str) -> Result<Self, IssuerError> {
        let pair = RsaKeyPair::from_pkcs8(TEST_RSA_PKCS8).map_err(|_| IssuerError("RS256"))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            kid: kid.to_owned(),
            key: Key::Rsa(pair),
            rng: SystemRandom::new(),
        })
    }

    /// The public key as a JSON Web Key Set.
    pub fn jwks(&self) -> String {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let key = match &self.key {
            Key::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Key::Rsa(pair) => {
                let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                       "n": b64(&public.n), "e": b64(&public.e)})
            }
        };
        json!({ "keys": [key] }).to_string()
    }

    /// A token with these claims; `iss` is added when absent.
    pub fn token(&self, claims: &Value) -> String {
        let mut claims = claims.clone();
        if let Some(map) = claims.as_object_mut() {
            map.entry("iss")
                .or_insert_with(|| self.issuer.clone().into());
        }
        let alg = match self.key {
            Key::Ec(_) => "ES256",
            Key::Rsa(_) => "RS256",
        };
        let header = json!({"alg": alg, "typ": "JWT", "kid": self.kid});
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match &self.key {
            Key::Ec(pair) => pair
                .sign(&self.rng, signed.as_bytes())
                .map(|s| s.as_ref().to_vec())
                .unwrap_or_default(),
            Key::Rsa(pair) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    signed.as_bytes(),
                    &mut out,
                )
                .map(|()| out)
                .unwrap_or_default()
            }
        };
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// Seconds since the Unix epoch, `offset` seconds from now: for `exp` and `nbf`.
pub fn unix_time(offset: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    now + offset
}
