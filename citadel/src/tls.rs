//! citadel's own TLS: a serving certificate its CA issues to itself, replaced at half-life
//! and whenever the signing root changes, and the accept loop that hands tonic finished
//! handshakes (tonic's own TLS features are not used).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::ca::authority::IssueError;
use crate::ca::keys::{self, KeyError};
use crate::ca::{Authority, LeafKind};

/// Names every serving certificate carries, before `--serving-san`.
pub const DEFAULT_SANS: [&str; 3] = ["citadel.mesh-system.svc", "localhost", "127.0.0.1"];

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("serving certificate: {0}")]
    Key(#[from] KeyError),
    #[error("serving certificate: {0}")]
    Issue(#[from] IssueError),
    #[error("serving certificate: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The current serving certificate, swapped in place so the listener never restarts.
pub struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
    names: Vec<String>,
    lifetime: Duration,
}

impl ServingCert {
    /// Issues the first certificate for `names` from `authority`.
    pub fn new(
        authority: &Authority,
        names: Vec<String>,
        lifetime: Duration,
    ) -> Result<(Self, SystemTime), TlsError> {
        let (key, not_after) = issue(authority, &names, lifetime)?;
        let cert = Self {
            current: RwLock::new(key),
            names,
            lifetime,
        };
        Ok((cert, not_after))
    }

    /// Replaces the certificate with a new one from `authority`; returns its expiry.
    pub fn renew(&self, authority: &Authority) -> Result<SystemTime, TlsError> {
        let (key, not_after) = issue(authority, &self.names, self.lifetime)?;
        if let Ok(mut current) = self.current.write() {
            *current = key;
        }
        Ok(not_after)
    }

    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

impl ServingCert {
    /// The certificate handshakes get now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

impl fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServingCert")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

fn issue(
    authority: &Authority,
    names: &[String],
    lifetime: Duration,
) -> Result<(Arc<CertifiedKey>, SystemTime), TlsError> {
    let key = keys::generate()?;
    let kind = LeafKind::Serving {
        names: names.to_vec(),
    };
    let issued = authority.issue(&key, &kind, lifetime, SystemTime::now())?;
    let mut chain = vec![CertificateDer::from(issued.leaf_der)];
    chain.extend(
        authority
            .material()
            .chain
            .iter()
            .cloned()
            .map(CertificateDer::from),
    );
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signer = provider().key_provider.load_private_key(der)?;
    Ok((Arc::new(CertifiedKey::new(chain, signer)), issued.not_after))
}

/// Renews `cert` at half its life, and at once when the authority changes (a rotation).
pub async fn keep_fresh(
    cert: Arc<ServingCert>,
    mut authority: watch::Receiver<Arc<Authority>>,
    mut not_after: SystemTime,
) {
    loop {
        let left = not_after
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(left / 2) => {}
            changed = authority.changed() => if changed.is_err() { return },
        }
        let current = authority.borrow_and_update().clone();
        match cert.renew(&current) {
            Ok(expiry) => {
                not_after = expiry;
                tracing::info!(
                    expires = crate::cert::seconds(expiry),
                    "serving certificate renewed"
                );
            }
            Err(error) => {
                tracing::error!(%error, "serving certificate not renewed; retrying in 10s");
                not_after = SystemTime::now() + Duration::from_secs(20);
            }
        }
    }
}

/// Accepts TCP connections and completes TLS handshakes concurrently, yielding the finished
/// ones; a slow or failed handshake holds up nobody else.
pub fn incoming(
    listener: TcpListener,
    config: rustls::ServerConfig,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsIo, io::Error>> {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (ready, stream) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, ready) = (acceptor.clone(), ready.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = ready.send(Ok(TlsIo(tls))).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(stream)
}

/// A finished server-side TLS connection, as tonic's `serve_with_incoming` wants it.
pub struct TlsIo(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for TlsIo {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn names() -> Vec<String> {
        DEFAULT_SANS.map(str::to_owned).to_vec()
    }

    #[tokio::test]
    async fn the_serving_certificate_is_renewed_at_half_life() {
        let authority = Arc::new(crate::testing::authority());
        let (_sender, receiver) = watch::channel(authority.clone());
        let lifetime = Duration::from_secs(2);
        let (cert, not_after) = ServingCert::new(&authority, names(), lifetime).unwrap();
        let cert = Arc::new(cert);
        let first = cert.current().unwrap();
        tokio::spawn(keep_fresh(cert.clone(), receiver, not_after));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while Arc::ptr_eq(&first, &cert.current().unwrap()) {
            assert!(tokio::time::Instant::now() < deadline, "never renewed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_new_authority_renews_it_at_once() {
        let authority = Arc::new(crate::testing::authority());
        let (sender, receiver) = watch::channel(authority.clone());
        let day = Duration::from_secs(86400);
        let (cert, not_after) = ServingCert::new(&authority, names(), day).unwrap();
        let cert = Arc::new(cert);
        tokio::spawn(keep_fresh(cert.clone(), receiver, not_after));
        let rotated = Arc::new(crate::testing::authority());
        let new_root = rotated.material().chain[0].clone();
        sender.send_replace(rotated);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let served = cert.current().unwrap();
            if served.cert.last().map(|c| c.as_ref()) == Some(new_root.as_slice()) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "never renewed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn the_serving_certificate_names_citadel() {
        let authority = crate::testing::authority();
        let (cert, _) = ServingCert::new(&authority, names(), Duration::from_secs(60)).unwrap();
        let served = cert.current().unwrap();
        let leaf = crate::pem::encode("CERTIFICATE", served.cert[0].as_ref());
        let sans = crate::testing::sans_of(&leaf);
        assert_eq!(
            sans,
            [
                "DNSName(citadel.mesh-system.svc)",
                "DNSName(localhost)",
                "IPAddress(7f:00:00:01)"
            ]
        );
    }
}
