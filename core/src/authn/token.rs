//! One compact JWS (RFC 7515) JWT: split, decoded, and its signature checked with ring.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

use super::Failure;
use super::jwks::{Curve, Jwks, PublicKey};

/// A token whose parts decode; nothing about it is trusted yet.
#[derive(Debug)]
pub(super) struct Token<'a> {
    alg: String,
    kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    signed: &'a [u8],
    signature: Vec<u8>,
    pub payload: Value,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

impl<'a> Token<'a> {
    pub fn decode(text: &'a str) -> Result<Self, Failure> {
        let malformed = |why: &str| Failure::Malformed(why.to_owned());
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three dot-separated parts"));
        };
        let part = |text: &str, name: &str| {
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| Failure::Malformed(format!("the {name} is not base64url")))
        };
        let header: Header = serde_json::from_slice(&part(header, "header")?)
            .map_err(|_| malformed("the header is not a JSON object with \"alg\""))?;
        let payload: Value = serde_json::from_slice(&part(payload, "payload")?)
            .map_err(|_| malformed("the payload is not JSON"))?;
        if !payload.is_object() {
            return Err(malformed("the payload is not a JSON object"));
        }
        let signed_len = text.len() - signature.len() - 1;
        Ok(Self {
            alg: header.alg,
            kid: header.kid,
            signed: &text.as_bytes()[..signed_len],
            signature: part(signature, "signature")?,
            payload,
        })
    }

    /// The `iss` claim, which picks the rule (and the keys) to verify with.
    pub fn issuer(&self) -> Option<&str> {
        self.payload.get("iss")?.as_str()
    }

    /// True when one of the set's keys (the one named by `kid`, when the token names one)
    /// verifies the signature with the token's algorithm.
    pub fn verify(&self, jwks: &Jwks) -> Result<(), Failure> {
        let candidates = jwks
            .keys
            .iter()
            .filter(|k| self.kid.is_none() || k.kid.is_none() || k.kid == self.kid);
        let mut tried = false;
        for key in candidates {
            if key.alg.as_deref().is_some_and(|alg| alg != self.alg) {
                continue;
            }
            let Some(verified) = self.verify_with(&key.key) else {
                continue;
            };
            tried = true;
            if verified {
                return Ok(());
            }
        }
        if tried {
            Err(Failure::BadSignature)
        } else {
            Err(Failure::NoKey {
                alg: self.alg.clone(),
                kid: self.kid.clone(),
            })
        }
    }

    /// `None` when the key cannot be used with the token's algorithm.
    fn verify_with(&self, key: &PublicKey) -> Option<bool> {
        let (message, sig) = (self.signed, self.signature.as_slice());
        Some(match (self.alg.as_str(), key) {
            (alg, PublicKey::Rsa { n, e }) => {
                let params: &signature::RsaParameters = match alg {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                    "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                    "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                    "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return None,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            (
                "ES256",
                PublicKey::Ec {
                    curve: Curve::P256,
                    point,
                },
            ) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok(),
            (
                "ES384",
                PublicKey::Ec {
                    curve: Curve::P384,
                    point,
                },
            ) => UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, sig)
                .is_ok(),
            ("EdDSA", PublicKey::Ed25519(x)) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok(),
            _ => return None,
        })
    }
}
