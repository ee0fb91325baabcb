//! AUTO listeners: one port for HTTP and everything else, told apart per connection.
//!
//! A connection to a server-first port is forwarded as TCP at once: its client waits for a
//! greeting and would send nothing to sniff. Otherwise the first bytes are peeked (never
//! consumed) for up to the listener's detect timeout ([`sniff`]): an HTTP/1.x request line
//! or the HTTP/2 preface goes to the HTTP path, anything else, including silence until the
//! deadline, to the TCP path ([`crate::tcp`]). TLS is recognised but forwarded as opaque
//! TCP until routing by SNI exists.

pub mod classify;
pub mod sniff;

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_core::model::Detect;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use classify::{Protocol, Verdict, classify};
pub use sniff::{Sniffed, sniff};

use crate::accept::accept_loop;
use crate::drain::Drain;
use crate::http::{Connection, Upstreams};
use crate::metrics::Metrics;
use crate::state::State;
use crate::tcp::Forwarder;

/// What every connection of one AUTO listener shares.
pub struct Auto {
    pub detect: Detect,
    pub tcp: Arc<Forwarder>,
    pub http: HttpSide,
}

/// What the HTTP path needs to serve a detected connection.
pub struct HttpSide {
    pub route_config: String,
    pub state: Arc<State>,
    pub metrics: Arc<Metrics>,
    pub upstreams: Arc<Upstreams>,
    pub drain: Drain,
}

impl HttpSide {
    /// What the requests of one accepted, non-inbound connection share, served by the
    /// route table `route_config`.
    pub fn connection(
        &self,
        route_config: &str,
        local_port: u16,
        peer: SocketAddr,
    ) -> Arc<Connection> {
        Arc::new(Connection {
            state: self.state.clone(),
            metrics: self.metrics.clone(),
            upstreams: self.upstreams.clone(),
            route_config: route_config.to_owned(),
            local_port,
            peer,
            inbound: None,
        })
    }
}

/// Accepts until `stop` fires or draining starts; each connection is detected and served on
/// its own task.
pub async fn serve(
    listener: TcpListener,
    auto: Arc<Auto>,
    drain: Drain,
    stop: watch::Receiver<bool>,
) {
    accept_loop(listener, drain, stop, move |stream, peer| {
        let auto = auto.clone();
        async move { auto.serve_connection(stream, peer).await }
    })
    .await;
}

impl Auto {
    async fn serve_connection(&self, stream: TcpStream, peer: SocketAddr) {
        // The port the client connected to; with iptables redirection this becomes the
        // original destination's port.
        let port = stream.local_addr().map_or(0, |a| a.port());
        let sniffed = if self.detect.server_first_ports.contains(&port) {
            None
        } else {
            Some(sniff(&stream, self.detect.timeout).await)
        };
        tracing::debug!(%peer, port, ?sniffed, "protocol detected");
        match sniffed.map(Sniffed::protocol) {
            Some(protocol) if protocol.is_http() => self.serve_http(stream, peer, port).await,
            Some(Protocol::Tls) => {
                tracing::debug!(%peer, "TLS forwarded as opaque TCP: no routing by SNI yet");
                self.tcp.forward(stream, peer).await;
            }
            _ => self.tcp.forward(stream, peer).await,
        }
    }

    async fn serve_http(&self, stream: TcpStream, peer: SocketAddr, local_port: u16) {
        let http = &self.http;
        let connection = http.connection(&http.route_config, local_port, peer);
        crate::http::serve_connection(stream, connection, http.drain.clone()).await;
    }
}
