//! PeerAuthentication on one inbound port: how a peer may connect, and who it is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mesh_core::snapshot::PeerMode;
use rustls::ServerConfig;
use tokio::net::TcpStream;

use super::{Peer, Stream};
use crate::detect::{Protocol, sniff};

/// Connections a STRICT port closed because they did not start with a TLS ClientHello.
pub const PLAINTEXT_REFUSED: &str = "mesh_inbound_plaintext_refused_total";
/// TLS handshakes an inbound port failed, by `listener` and `reason`: `expired`,
/// `unknown_ca` (another root), `no_client_certificate` (STRICT), `timeout`, ... (see
/// [`crate::tls::TlsError::reason`]).
pub const TLS_HANDSHAKE_FAILURES: &str = "mesh_inbound_tls_handshake_failures_total";

/// How long a STRICT port waits for a ClientHello, and any port for a handshake: far longer
/// than detection, since a peer that chose TLS will speak first.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Security {
    pub listener: String,
    pub mode: PeerMode,
    /// The server side of mTLS, from the certificate manager; `None` without `--ca-addr`.
    pub tls: Option<Arc<ServerConfig>>,
    pub own_identity: Option<Arc<str>>,
    /// How long PERMISSIVE waits for a client's first bytes before taking it as plaintext.
    pub detect_timeout: Duration,
    /// Whether STRICT without certificates has said why it refuses everything.
    pub warned: AtomicBool,
}

impl Security {
    /// The stream to serve and its peer, or `None` when the connection was refused (and
    /// already closed by dropping it). `local` is the address the peer connected to (the
    /// original destination when iptables redirected it).
    pub async fn secure(
        &self,
        tcp: TcpStream,
        address: SocketAddr,
        local: SocketAddr,
    ) -> Option<(Stream, Peer)> {
        let peer = Peer {
            identity: None,
            own_identity: self.own_identity.clone(),
            local,
            address,
            mtls: false,
        };
        match self.mode {
            PeerMode::Disable => Some((Stream::Plain(tcp), peer)),
            PeerMode::Strict => self.strict(tcp, peer).await,
            PeerMode::Permissive => self.permissive(tcp, peer).await,
        }
    }

    async fn strict(&self, tcp: TcpStream, peer: Peer) -> Option<(Stream, Peer)> {
        let Some(config) = &self.tls else {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(listener = %self.listener, "STRICT mTLS without a workload certificate (no --ca-addr): every connection is refused");
            }
            return None;
        };
        if sniff(&tcp, HANDSHAKE_TIMEOUT).await.protocol() != Protocol::Tls {
            tracing::debug!(listener = %self.listener, peer = %peer.address, "plaintext refused: the port is STRICT mTLS");
            metrics::counter!(PLAINTEXT_REFUSED, "listener" => self.listener.clone()).increment(1);
            return None;
        }
        self.terminate(tcp, peer, config.clone()).await
    }

    async fn permissive(&self, tcp: TcpStream, peer: Peer) -> Option<(Stream, Peer)> {
        if sniff(&tcp, self.detect_timeout).await.protocol() != Protocol::Tls {
            return Some((Stream::Plain(tcp), peer));
        }
        match &self.tls {
            Some(config) => self.terminate(tcp, peer, config.clone()).await,
            // Without a certificate there is nothing to terminate with: the bytes go to
            // the app as they are, as DISABLE would.
            None => Some((Stream::Plain(tcp), peer)),
        }
    }

    async fn terminate(
        &self,
        tcp: TcpStream,
        mut peer: Peer,
        config: Arc<ServerConfig>,
    ) -> Option<(Stream, Peer)> {
        let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, crate::tls::accept(tcp, config));
        match accepted.await {
            Ok(Ok((stream, identity))) => {
                peer.identity = identity.map(|id| Arc::from(id.to_string()));
                peer.mtls = true;
                Some((Stream::Tls(Box::new(stream)), peer))
            }
            Ok(Err(error)) => {
                tracing::debug!(listener = %self.listener, peer = %peer.address, %error, "inbound mTLS refused");
                self.handshake_failed(error.reason());
                None
            }
            Err(_) => {
                tracing::debug!(listener = %self.listener, peer = %peer.address, "inbound mTLS handshake timed out");
                self.handshake_failed("timeout");
                None
            }
        }
    }

    fn handshake_failed(&self, reason: &'static str) {
        metrics::counter!(TLS_HANDSHAKE_FAILURES, "listener" => self.listener.clone(), "reason" => reason)
            .increment(1);
    }
}
