//! rustls configs for mesh traffic: TLS 1.3 only, ALPN `h2` and `http/1.1`, the proxy's
//! certificate and trust bundle read from the manager at each handshake.

use std::sync::{Arc, LazyLock};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::server::NoServerSessionStorage;
use rustls::{ClientConfig, ServerConfig};

use super::resolve::ManagerResolver;
use super::verify::{ClientVerifier, ServerVerifier};
use crate::identity::{CertificateManager, Identity};

/// Offered and accepted in this order of preference.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Whether inbound TLS requires a client certificate: PeerAuthentication's STRICT and
/// PERMISSIVE. PERMISSIVE also lets plaintext through, but that is decided before TLS, by
/// [`super::is_tls_client_hello`]; a TLS client in PERMISSIVE may come without a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Strict,
    Permissive,
}

static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));

pub(crate) fn provider() -> Arc<CryptoProvider> {
    PROVIDER.clone()
}

/// Inbound: present the proxy's certificate, check the client's against the bundle.
///
/// Session resumption is off, so every connection's peer identity comes from a chain
/// verified in its own handshake.
pub fn server_config(manager: &Arc<CertificateManager>, mode: Mode) -> Arc<ServerConfig> {
    let verifier = ClientVerifier {
        manager: manager.clone(),
        mandatory: mode == Mode::Strict,
        provider: provider(),
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(ManagerResolver(manager.clone())));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

/// Outbound: present the proxy's certificate, and accept a server only if its certificate
/// chains to the bundle and names one of `expected` (the destination's service accounts).
pub fn client_config(
    manager: &Arc<CertificateManager>,
    expected: &[Identity],
) -> Arc<ClientConfig> {
    let verifier = ServerVerifier {
        manager: manager.clone(),
        expected: expected.to_vec(),
        provider: provider(),
    };
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(ManagerResolver(manager.clone())));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    Arc::new(config)
}
