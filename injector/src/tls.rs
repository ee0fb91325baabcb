//! The webhook's serving certificate: from files (`--cert`/`--key`, e.g. a Secret that
//! citadel or cert-manager writes), or a self-signed pair made at start. Either way the
//! caBundle the API server needs comes with it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

/// The names a self-signed certificate carries: the injector's Service, and loopback.
pub const DEFAULT_NAMES: [&str; 4] = [
    "mesh-sidecar-injector.mesh-system.svc",
    "mesh-sidecar-injector.mesh-system.svc.cluster.local",
    "localhost",
    "127.0.0.1",
];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it ({reason})")]
    Certificate { path: String, reason: String },
    #[error("{path}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)")]
    Key { path: String },
    #[error("making a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
    #[error("the certificate and key do not make a TLS config: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A serving certificate chain and key, and the roots to put in the caBundle.
#[derive(Clone)]
pub struct ServingCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
    /// PEM: what the MutatingWebhookConfiguration's caBundle holds (base64 of it).
    pub ca_bundle_pem: String,
}

impl ServingCert {
    /// A self-signed certificate for `names`; it is its own caBundle.
    pub fn self_signed(names: &[String]) -> Result<Self, TlsError> {
        let certified = rcgen::generate_simple_self_signed(names.to_vec())?;
        let pem = certified.cert.pem();
        Ok(Self {
            chain: vec![certified.cert.der().clone()],
            key: Arc::new(PrivateKeyDer::Pkcs8(
                certified.signing_key.serialize_der().into(),
            )),
            ca_bundle_pem: pem,
        })
    }

    /// The chain and key from PEM files; the caBundle is `ca` or, without it, the chain's
    /// last certificate (its root, or the certificate itself when self-signed).
    pub fn from_files(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Self, TlsError> {
        let cert_pem = read(cert)?;
        let chain = certificates(&cert_pem, cert)?;
        let key_pem = read(key)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| TlsError::Key {
            path: key.display().to_string(),
        })?;
        let ca_bundle_pem = match ca {
            Some(ca) => {
                let text = read(ca)?;
                certificates(&text, ca)?;
                text
            }
            None => last_pem_block(&cert_pem),
        };
        Ok(Self {
            chain,
            key: Arc::new(key),
            ca_bundle_pem,
        })
    }

    /// rustls server config with ALPN h2 and http/1.1, as the API server may use either,
    /// serving this certificate for good.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        server_config(Resolver::new(self)?)
    }

    fn certified_key(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let signer = provider()
            .key_provider
            .load_private_key(self.key.clone_key())?;
        Ok(Arc::new(CertifiedKey::new(self.chain.clone(), signer)))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate handshakes get now, replaced in place when its files change.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    pub fn new(cert: &ServingCert) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(Self {
            current: RwLock::new(cert.certified_key()?),
        }))
    }

    pub fn replace(&self, cert: &ServingCert) -> Result<(), TlsError> {
        let key = cert.certified_key()?;
        if let Ok(mut current) = self.current.write() {
            *current = key;
        }
        Ok(())
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// rustls server config with ALPN h2 and http/1.1 serving what `resolver` holds.
pub fn server_config(resolver: Arc<Resolver>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificate files, read again every `every`: a rotated Secret (cert-manager, or a
/// renewal by hand) is served without a restart, and its roots go to the caBundle.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
}

impl CertFiles {
    pub fn load(&self) -> Result<ServingCert, TlsError> {
        ServingCert::from_files(&self.cert, &self.key, self.ca.as_deref())
    }

    /// Reloads forever; a file that does not load (half written) keeps the last good one.
    pub async fn watch(
        self,
        mut loaded: ServingCert,
        resolver: Arc<Resolver>,
        bundle: watch::Sender<String>,
        every: Duration,
    ) {
        // The files were read at start: the first reload is one period later.
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            match self.load() {
                Ok(cert)
                    if cert.chain != loaded.chain || cert.ca_bundle_pem != loaded.ca_bundle_pem =>
                {
                    if let Err(error) = resolver.replace(&cert) {
                        tracing::warn!(%error, "the new serving certificate does not load; keeping the old");
                        continue;
                    }
                    tracing::info!("serving certificate reloaded");
                    bundle.send_replace(cert.ca_bundle_pem.clone());
                    loaded = cert;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "reloading the serving certificate"),
            }
        }
    }
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn certificates(pem: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::Certificate {
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if chain.is_empty() {
        return Err(error("empty".to_owned()));
    }
    Ok(chain)
}

fn last_pem_block(pem: &str) -> String {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    match pem.rfind(BEGIN) {
        Some(start) => pem[start..].trim_end().to_owned() + "\n",
        None => pem.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_the_bundle_is_the_last_certificate() {
        let names: Vec<String> = DEFAULT_NAMES.iter().map(|n| (*n).to_owned()).collect();
        let made = rcgen::generate_simple_self_signed(names).expect("cert");
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        std::fs::write(&cert, made.cert.pem()).expect("write");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write");
        let serving = ServingCert::from_files(&cert, &key, None).expect("loads");
        assert_eq!(serving.chain.len(), 1);
        assert_eq!(serving.ca_bundle_pem.trim(), made.cert.pem().trim());
        assert!(serving.server_config().is_ok());
    }

    #[test]
    fn a_key_file_without_a_key_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        let made = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).expect("cert");
        std::fs::write(&cert, made.cert.pem()).expect("write");
        std::fs::write(&key, "not a key").expect("write");
        let error = ServingCert::from_files(&cert, &key, None)
            .err()
            .expect("an error");
        assert!(error.to_string().contains("tls.key"), "{error}");
    }
}
