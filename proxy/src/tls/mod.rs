//! Mutual TLS between sidecars, on the certificates [`crate::identity`] keeps fresh.
//!
//! Inbound, a listener sniffs the first bytes ([`is_tls_client_hello`]); for TLS it
//! [`accept`]s with a [`server_config`] of the port's [`Mode`] and learns the peer's SPIFFE
//! ID. Outbound, [`connect`] checks that the server is one of the identities the
//! destination may have. Both present the manager's current certificate and trust its
//! current bundle, so rotations of either need no new config.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use mesh_proxy::identity::{CertificateManager, Identity};
//! # use mesh_proxy::tls::{self, Mode};
//! # async fn example(manager: Arc<CertificateManager>, listener: tokio::net::TcpListener,
//! #     expected: Vec<Identity>) -> Result<(), Box<dyn std::error::Error>> {
//! // Inbound, per port: one config, many connections.
//! let config = tls::server_config(&manager, Mode::Strict);
//! let (tcp, _) = listener.accept().await?;
//! let mut first = [0u8; tls::SNIFF_LEN];
//! let n = tcp.peek(&mut first).await?;
//! if tls::is_tls_client_hello(&first[..n]) {
//!     let (stream, peer) = tls::accept(tcp, config.clone()).await?;
//!     // `peer`: the client's SPIFFE ID, for AuthorizationPolicy's `principals`.
//! }
//! // Outbound, per upstream connection: `expected` from the destination's service accounts.
//! let tcp = tokio::net::TcpStream::connect("10.0.0.7:15006").await?;
//! let stream = tls::connect(tcp, &manager, &expected).await?;
//! let alpn = stream.get_ref().1.alpn_protocol(); // Some(b"h2") or Some(b"http/1.1")
//! # Ok(()) }
//! ```

mod config;
mod outbound;
mod resolve;
mod sniff;
mod verify;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{CertificateError, CommonState, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

pub use config::{ALPN, Mode, client_config, server_config};
pub use outbound::{Expected, expected, expected_or_refused, secure};
pub use resolve::ManagerResolver;
pub use sniff::{SNIFF_LEN, Sniff, is_tls_client_hello, sniff};
pub use verify::{ClientVerifier, ServerVerifier, UnexpectedIdentity};

use crate::identity::{CertificateManager, Identity, x509};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no workload certificate yet: mTLS waits for the CA to issue one")]
    NoCertificate,
    #[error("mTLS to this endpoint needs a workload certificate: start the proxy with --ca-addr")]
    NoCaAddr,
    #[error("no identity to verify the upstream against: not connecting")]
    NoIdentity,
    #[error("mTLS refused: {0}")]
    UnexpectedIdentity(UnexpectedIdentity),
    #[error("mTLS handshake: {0}")]
    Handshake(std::io::Error),
}

impl From<std::io::Error> for TlsError {
    /// Lifts the identity mismatch out of rustls' wrapping, so callers and logs see it
    /// plainly.
    fn from(error: std::io::Error) -> Self {
        let unexpected = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .and_then(|rustls| match rustls {
                rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                    other.0.downcast_ref::<UnexpectedIdentity>().cloned()
                }
                _ => None,
            });
        match unexpected {
            Some(unexpected) => Self::UnexpectedIdentity(unexpected),
            None => Self::Handshake(error),
        }
    }
}

/// Completes the server side of a handshake; returns the stream and the client's SPIFFE
/// ID (`None` when a PERMISSIVE port let a client without a certificate in).
pub async fn accept<S>(
    stream: S,
    config: Arc<ServerConfig>,
) -> Result<(server::TlsStream<S>, Option<Identity>), TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let stream = TlsAcceptor::from(config).accept(stream).await?;
    let peer = peer_identity(stream.get_ref().1);
    Ok((stream, peer))
}

/// Completes the client side of a handshake with a server that must prove one of
/// `expected`. No SNI is sent: the server is checked by identity, not by name.
pub async fn connect<S>(
    stream: S,
    manager: &Arc<CertificateManager>,
    expected: &[Identity],
) -> Result<client::TlsStream<S>, TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if manager.current().is_none() {
        return Err(TlsError::NoCertificate);
    }
    let connector = TlsConnector::from(client_config(manager, expected));
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into());
    Ok(connector.connect(name, stream).await?)
}

/// The SPIFFE ID of the peer's verified leaf certificate, on either side of a connection
/// (`&ServerConnection` or `&ClientConnection`).
pub fn peer_identity(connection: &CommonState) -> Option<Identity> {
    let leaf = connection.peer_certificates()?.first()?;
    x509::spiffe_id(leaf).ok()
}
