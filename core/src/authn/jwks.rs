//! JSON Web Key Sets (RFC 7517): the issuer's public keys, parsed once when the config
//! arrives so that a request only verifies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The signing keys of one issuer. Keys the mesh cannot use (encryption keys, symmetric
/// keys, unknown curves) are left out; a set with none left is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwks {
    pub(super) keys: Vec<Jwk>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Jwk {
    pub kid: Option<String>,
    /// The one algorithm the key is for, when the set says so.
    pub alg: Option<String>,
    pub key: PublicKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PublicKey {
    /// Modulus and exponent, big-endian.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point, `04 || x || y`.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    P256,
    P384,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwksError {
    #[error("not a JSON Web Key Set ({0}); expected {{\"keys\": [...]}}")]
    Json(String),
    #[error("keys[{index}]: {problem}")]
    Key { index: usize, problem: String },
    #[error(
        "no signing key the mesh can use (RSA, EC P-256 or P-384, Ed25519; \"use\" not \"enc\")"
    )]
    NoUsableKey,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl Jwks {
    pub fn parse(text: &str) -> Result<Self, JwksError> {
        let raw: RawSet = serde_json::from_str(text).map_err(|e| JwksError::Json(e.to_string()))?;
        let mut keys = Vec::new();
        for (index, key) in raw.keys.into_iter().enumerate() {
            if key.usage.as_deref() == Some("enc") {
                continue;
            }
            let problem = |problem: String| JwksError::Key { index, problem };
            let Some(public) = public_key(&key).map_err(problem)? else {
                continue;
            };
            keys.push(Jwk {
                kid: key.kid,
                alg: key.alg,
                key: public,
            });
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(Self { keys })
    }

    /// How many signing keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// `None` for a kind of key the mesh does not verify with (it is skipped, as Envoy does);
/// an error for a key of a known kind that is broken.
fn public_key(key: &RawKey) -> Result<Option<PublicKey>, String> {
    let field = |name: &str, value: &Option<String>| -> Result<Vec<u8>, String> {
        let text = value
            .as_deref()
            .ok_or_else(|| format!("{} key without \"{name}\"", key.kty))?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| format!("\"{name}\" is not base64url ({e})"))
    };
    Ok(Some(match key.kty.as_str() {
        "RSA" => PublicKey::Rsa {
            n: field("n", &key.n)?,
            e: field("e", &key.e)?,
        },
        "EC" => {
            let (curve, size) = match key.crv.as_deref() {
                Some("P-256") => (Curve::P256, 32),
                Some("P-384") => (Curve::P384, 48),
                _ => return Ok(None),
            };
            let (x, y) = (field("x", &key.x)?, field("y", &key.y)?);
            if x.len() != size || y.len() != size {
                return Err(format!("{:?} coordinates must be {size} bytes", key.crv));
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::Ec { curve, point }
        }
        "OKP" if key.crv.as_deref() == Some("Ed25519") => PublicKey::Ed25519(field("x", &key.x)?),
        _ => return Ok(None),
    }))
}
