//! Mutual TLS between sidecars, on the certificates [`crate::identity`] keeps fresh.
//!
//! Inbound, a listener sniffs the first bytes ([`is_tls_client_hello`]); for TLS it
//! [`accept`]s with a [`server_config`] of the port's [`Mode`] and learns the peer's SPIFFE
//! ID. Outbound, [`connect`] checks that the server is one of the identities the
//! destination may have. Both present the manager's current certificate and trust its
//! current bundle, so rotations of either need no new config.
//!
//! Services outside the mesh get TLS with the user's certificates instead (DestinationRule
//! `SIMPLE` and `MUTUAL`, [`origination`]); [`secure`] does either, as [`Security`] says.
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
pub mod origination;
mod outbound;
pub mod pem_files;
mod resolve;
mod roots;
mod sniff;
mod user_verify;
mod verify;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{CertificateError, CommonState, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

pub(crate) use config::provider;
pub use config::{ALPN, Mode, client_config, server_config};
pub use origination::{LoadError, Origination, OriginationError, cluster_view, load_all};
pub use outbound::{
    Expected, Security, UPSTREAM_HANDSHAKE_FAILURES, expected, expected_or_refused, secure,
    upstream_failure, upstream_timeout,
};
pub use resolve::ManagerResolver;
pub use sniff::{SNIFF_LEN, Sniff, is_tls_client_hello, sniff};
pub use user_verify::SanMismatch;
pub(crate) use user_verify::ip_text;
pub use verify::{ClientVerifier, ServerVerifier, UnexpectedIdentity};

use crate::identity::{CertificateManager, Identity, x509};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no workload certificate yet: mTLS waits for the CA to issue one")]
    NoCertificate,
    #[error("mTLS to this endpoint needs a workload certificate: start the proxy with --ca-addr")]
    NoCaAddr,
    #[error(
        "the DestinationRule's TLS settings cannot be met (logged when decided): not connecting"
    )]
    Refused,
    #[error("mTLS refused: {0}")]
    UnexpectedIdentity(UnexpectedIdentity),
    #[error("mTLS handshake: {0}")]
    Handshake(std::io::Error),
    /// SIMPLE or MUTUAL: the server's certificate names none of `subjectAltNames`.
    #[error("TLS refused: {0}")]
    SubjectAltNames(SanMismatch),
    /// SIMPLE or MUTUAL: the handshake with a server outside the mesh failed.
    #[error("TLS handshake: {0}")]
    Originate(std::io::Error),
}

impl TlsError {
    /// A failed SIMPLE or MUTUAL handshake, with a `subjectAltNames` mismatch lifted out of
    /// rustls' wrapping.
    fn originate(error: std::io::Error) -> Self {
        match certificate_error::<SanMismatch>(&error) {
            Some(mismatch) => Self::SubjectAltNames(mismatch),
            None => Self::Originate(error),
        }
    }
}

/// A verifier's own error of type `E` inside a failed handshake's I/O error.
fn certificate_error<E: std::error::Error + Clone + 'static>(error: &std::io::Error) -> Option<E> {
    let rustls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    match rustls {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            other.0.downcast_ref::<E>().cloned()
        }
        _ => None,
    }
}

impl TlsError {
    /// Why a handshake failed, as a metric label: `expired`, `unknown_ca`, `bad_name`, ...
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoCertificate | Self::NoCaAddr => "no_certificate",
            Self::Refused => "refused",
            Self::UnexpectedIdentity(_) | Self::SubjectAltNames(_) => "bad_name",
            Self::Handshake(error) | Self::Originate(error) => io_reason(error),
        }
    }
}

fn io_reason(error: &std::io::Error) -> &'static str {
    let Some(rustls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return "connection_closed";
    };
    match rustls {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not_yet_valid"
            }
            CertificateError::UnknownIssuer => "unknown_ca",
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "bad_name"
            }
            CertificateError::Other(other)
                if other.0.downcast_ref::<UnexpectedIdentity>().is_some()
                    || other.0.downcast_ref::<SanMismatch>().is_some() =>
            {
                "bad_name"
            }
            _ => "bad_certificate",
        },
        rustls::Error::NoCertificatesPresented => "no_client_certificate",
        rustls::Error::AlertReceived(_) => "refused_by_peer",
        rustls::Error::NoApplicationProtocol => "alpn",
        _ => "handshake",
    }
}

impl From<std::io::Error> for TlsError {
    /// Lifts the identity mismatch out of rustls' wrapping, so callers and logs see it
    /// plainly.
    fn from(error: std::io::Error) -> Self {
        match certificate_error::<UnexpectedIdentity>(&error) {
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
