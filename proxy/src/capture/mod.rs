//! Capture mode (`--capture`): the pod's TCP is redirected here by iptables
//! ([`crate::iptables`]), outbound to one port (15001) and inbound to another (15006). Each
//! accepted connection's original destination ([`original_dst`]) picks the listener config
//! that serves it ([`table`]): outbound, a service's VIP:port (HTTP routed by Host, TCP to
//! the service's cluster, AUTO sniffed); inbound, the workload's port (mTLS mode, authz,
//! then the app on 127.0.0.1:<port>). A destination the mesh does not know is passed
//! through: the proxy connects to it as it is (its own connections, uid 1337, are not
//! redirected); under `outboundTrafficPolicy: REGISTRY_ONLY` (a `virtualOutbound` listener
//! routing to `BlackHoleCluster`) an outbound one is closed instead, counted and logged.

pub mod original_dst;
pub mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use original_dst::{OriginalDst, SoOriginalDst};
pub use table::{Slot, Table, Unknown, slot};

use crate::accept::accept_loop;
use crate::detect::{Auto, HttpSide, sniff};
use crate::drain::Drain;
use crate::inbound::Inbound;
use crate::tcp::Forwarder;

/// Connections passed through untouched, by `direction` (`inbound`, `outbound`).
pub const PASSTHROUGH: &str = "mesh_capture_passthrough_total";

/// Connections closed because the mesh does not know their destination, by `direction`
/// and `reason` (`registry_only`).
pub const BLACKHOLE: &str = "mesh_capture_blackhole_total";

/// How long a passthrough connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the capture ports listen.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ports {
    pub outbound: SocketAddr,
    pub inbound: SocketAddr,
}

/// What serves an outbound connection to a known destination.
pub enum Outbound {
    Http(HttpSide),
    Tcp(Arc<Forwarder>),
    Auto(Arc<Auto>),
}

pub type Handlers = Table<Arc<Inbound>, Outbound>;

/// The capture sockets' shared state: the current dispatch table and the seam that reads
/// original destinations.
pub struct Capture {
    pub table: ArcSwap<Handlers>,
    pub original: Arc<dyn OriginalDst>,
    /// The outbound capture port: a listener there is the non-capture entry point.
    pub outbound_port: u16,
}

impl Capture {
    pub fn new(original: Arc<dyn OriginalDst>, outbound_port: u16) -> Self {
        Self {
            table: ArcSwap::from_pointee(Table::default()),
            original,
            outbound_port,
        }
    }

    /// The original destination, or `None` (and the connection is dropped) when there is
    /// none: a connection made straight to a capture port would otherwise loop back here.
    fn destination(&self, stream: &TcpStream, peer: SocketAddr) -> Option<SocketAddr> {
        let local = stream.local_addr().ok()?;
        match self.original.original_dst(stream) {
            Ok(original) if table::normal(original) != table::normal(local) => Some(original),
            Ok(_) => {
                tracing::debug!(%peer, %local, "not redirected: a capture port serves only redirected connections");
                None
            }
            Err(error) => {
                tracing::debug!(%peer, %local, %error, "no original destination: connection closed");
                None
            }
        }
    }

    async fn outbound(&self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let Some(original) = self.destination(&stream, peer) else {
            return;
        };
        let table = self.table.load_full();
        match table.outbound(original) {
            Some(Outbound::Http(http)) => serve_http(http, stream, peer, original.port()).await,
            Some(Outbound::Tcp(tcp)) => {
                tcp.forward_stream(stream, peer, original.port(), None)
                    .await
            }
            Some(Outbound::Auto(auto)) => serve_auto(auto, stream, peer, original.port()).await,
            None => match table.unknown() {
                Unknown::Passthrough => passthrough(stream, original, "outbound").await,
                Unknown::Blackhole => blackhole(stream, peer, original),
            },
        }
    }

    async fn inbound(&self, stream: TcpStream, peer: SocketAddr) {
        let Some(original) = self.destination(&stream, peer) else {
            return;
        };
        let table = self.table.load_full();
        match table.inbound(original) {
            Some(inbound) => inbound.serve_redirected(stream, peer, original).await,
            None => passthrough(stream, original, "inbound").await,
        }
    }
}

/// Which traffic a capture socket takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    /// As `/listeners` names the socket.
    pub fn listener_name(self) -> &'static str {
        match self {
            Self::Outbound => "capture|outbound",
            Self::Inbound => "capture|inbound",
        }
    }
}

/// Binds a capture port. The default, `[::]`, takes IPv4 too (as mapped addresses); a
/// host without IPv6 gets `0.0.0.0` instead.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    match TcpListener::bind(address).await {
        Err(error) if address.is_ipv6() && address.ip().is_unspecified() => {
            tracing::warn!(%address, %error, "no IPv6 here: capturing IPv4 only");
            let v4 = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), address.port());
            TcpListener::bind(v4).await
        }
        bound => bound,
    }
}

/// Accepts redirected connections until stopped or draining.
pub async fn serve(
    listener: TcpListener,
    capture: Arc<Capture>,
    direction: Direction,
    drain: Drain,
    stop: watch::Receiver<bool>,
) {
    accept_loop(listener, drain, stop, move |stream, peer| {
        let capture = capture.clone();
        async move {
            match direction {
                Direction::Outbound => capture.outbound(stream, peer).await,
                Direction::Inbound => capture.inbound(stream, peer).await,
            }
        }
    })
    .await;
}

async fn serve_http(http: &HttpSide, stream: TcpStream, peer: SocketAddr, port: u16) {
    let connection = http.connection(&http.route_config, port, peer);
    crate::http::serve_connection(stream, connection, http.drain.clone()).await;
}

/// As an AUTO listener does, with the original port in place of the socket's.
async fn serve_auto(auto: &Auto, stream: TcpStream, peer: SocketAddr, port: u16) {
    let http = !auto.detect.server_first_ports.contains(&port)
        && sniff(&stream, auto.detect.timeout)
            .await
            .protocol()
            .is_http();
    if http {
        serve_http(&auto.http, stream, peer, port).await;
    } else {
        auto.tcp.forward_stream(stream, peer, port, None).await;
    }
}

/// Closes a connection to a destination REGISTRY_ONLY keeps out, as Istio's
/// BlackHoleCluster does.
fn blackhole(stream: TcpStream, peer: SocketAddr, original: SocketAddr) {
    metrics::counter!(BLACKHOLE, "direction" => "outbound", "reason" => "registry_only")
        .increment(1);
    tracing::info!(
        %peer,
        %original,
        "outbound connection refused: outboundTrafficPolicy REGISTRY_ONLY and no service of the mesh at this address (add a ServiceEntry)"
    );
    drop(stream);
}

/// Connects to `original` as it is and copies both ways until both sides close.
async fn passthrough(mut downstream: TcpStream, original: SocketAddr, direction: &'static str) {
    metrics::counter!(PASSTHROUGH, "direction" => direction).increment(1);
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(original)).await;
    let mut upstream = match connected {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(error)) => {
            tracing::debug!(%original, %error, direction, "passthrough connect failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%original, direction, "passthrough connect timed out");
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    if let Err(error) = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
        tracing::debug!(%original, %error, direction, "passthrough connection ended with an error");
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
