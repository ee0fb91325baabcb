//! Inbound listeners: traffic from peers to the local workload.
//!
//! Per connection: the port's PeerAuthentication mode decides how the peer may speak
//! ([`secure`]): STRICT terminates mutual TLS and refuses anything else, PERMISSIVE peeks
//! at the first bytes and terminates TLS or lets plaintext through, DISABLE takes the bytes
//! as they come. The stream then goes down the listener's usual path (HTTP, TCP or AUTO
//! detection) with the peer's identity attached. On HTTP the workload's
//! RequestAuthentications check the request's JWT first ([`authn::authenticate`]); then its
//! AuthorizationPolicies decide per HTTP request ([`authz::decide`] in the HTTP handler) or
//! per TCP connection before anything is forwarded.

pub mod authn;
pub mod authz;
mod rewind;
mod secure;
mod stream;
pub mod xfcc;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use secure::{PLAINTEXT_REFUSED, Security};
pub use stream::Stream;

use crate::accept::accept_loop;
use crate::detect::{self, Auto, HttpSide};
use crate::drain::Drain;
use crate::http::Connection;
use crate::state::State;
use crate::tcp::Forwarder;

/// Who is on the other end of an inbound connection, as policies and the app see it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The SPIFFE ID of the peer's verified certificate.
    pub identity: Option<Arc<str>>,
    /// This proxy's SPIFFE ID, for `x-forwarded-client-cert`.
    pub own_identity: Option<Arc<str>>,
    pub address: SocketAddr,
    /// The address the peer connected to.
    pub local: SocketAddr,
    /// Whether TLS was terminated (`connection_security_policy="mutual_tls"`).
    pub mtls: bool,
}

/// What the listener serves once the peer is admitted.
pub enum App {
    Http(HttpSide),
    Tcp(Arc<Forwarder>),
    Auto(Arc<Auto>),
}

pub struct Inbound {
    pub security: Security,
    pub app: App,
}

pub async fn serve(
    listener: TcpListener,
    inbound: Arc<Inbound>,
    drain: Drain,
    stop: watch::Receiver<bool>,
) {
    accept_loop(listener, drain, stop, move |stream, peer| {
        let inbound = inbound.clone();
        async move {
            if let Ok(local) = stream.local_addr() {
                inbound.serve_connection(stream, peer, local).await;
            }
        }
    })
    .await;
}

impl Inbound {
    /// A connection redirected here by iptables ([`crate::capture`]): `original` is where
    /// the peer connected, what policies and metrics see as the local address.
    pub async fn serve_redirected(
        &self,
        tcp: TcpStream,
        address: SocketAddr,
        original: SocketAddr,
    ) {
        self.serve_connection(tcp, address, original).await;
    }

    async fn serve_connection(&self, tcp: TcpStream, address: SocketAddr, local: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let Some((stream, peer)) = self.security.secure(tcp, address, local).await else {
            return;
        };
        match &self.app {
            App::Http(http) => serve_http(http, stream, peer).await,
            App::Tcp(tcp) => serve_tcp(tcp, stream, peer).await,
            App::Auto(auto) => serve_auto(auto, stream, peer).await,
        }
    }
}

async fn serve_http<S>(http: &HttpSide, stream: S, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = Arc::new(Connection {
        state: http.state.clone(),
        metrics: http.metrics.clone(),
        upstreams: http.upstreams.clone(),
        route_config: http.route_config.clone(),
        local_port: peer.local.port(),
        peer: peer.address,
        inbound: Some(peer),
    });
    crate::http::serve_connection(stream, connection, http.drain.clone()).await;
}

/// Authorized once, before the upstream is dialled: a denied peer never reaches the app.
async fn serve_tcp<S>(tcp: &Forwarder, stream: S, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if !allowed(&tcp.state, &peer) {
        return;
    }
    tcp.forward_stream(stream, peer.address, peer.local.port(), Some(&peer))
        .await;
}

/// Plaintext is peeked at as on any AUTO listener; decrypted bytes cannot be, so they are
/// read, classified and replayed ([`rewind`]).
async fn serve_auto(auto: &Auto, stream: Stream, peer: Peer) {
    if auto.detect.server_first_ports.contains(&peer.local.port()) {
        return serve_tcp(&auto.tcp, stream, peer).await;
    }
    match stream {
        Stream::Plain(tcp) => {
            let sniffed = detect::sniff(&tcp, auto.detect.timeout).await;
            if sniffed.protocol().is_http() {
                serve_http(&auto.http, tcp, peer).await;
            } else {
                serve_tcp(&auto.tcp, tcp, peer).await;
            }
        }
        Stream::Tls(tls) => {
            let (protocol, stream) = rewind::detect(tls, auto.detect.timeout).await;
            tracing::debug!(peer = %peer.address, ?protocol, "inbound mTLS protocol detected");
            if protocol.is_http() {
                serve_http(&auto.http, stream, peer).await;
            } else {
                serve_tcp(&auto.tcp, stream, peer).await;
            }
        }
    }
}

fn allowed(state: &State, peer: &Peer) -> bool {
    authz::decide(state, peer, None, None).is_allowed()
}
