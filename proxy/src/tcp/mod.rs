//! Opaque TCP: a connection is forwarded whole to one endpoint, bytes copied both ways.
//!
//! Per connection: pick a destination of the listener's `tcpRoute` by weight, resolve its
//! cluster in the current snapshot, pick an endpoint with the cluster's balancer and connect
//! ([`connect`], falling over to other endpoints), then copy until both sides have closed
//! or the connection sat idle for the cluster's `idleTimeout` ([`idle`]). Each connection is
//! counted in Istio's TCP metrics ([`record`]) and in the drain.

mod connect;
mod idle;
mod record;

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_core::model::WeightedDestination;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use self::idle::Outcome;
use crate::accept::accept_loop;
use crate::drain::Drain;
use crate::http::Flag;
use crate::inbound::Peer;
use crate::state::State;

pub use record::{
    CONNECTIONS_CLOSED, CONNECTIONS_OPENED, RECEIVED_BYTES, SENT_BYTES, SourceIdentity,
};

/// What every TCP connection of one listener shares.
pub struct Forwarder {
    pub state: Arc<State>,
    /// The listener's `tcpRoute`, as compiled with the snapshot that started it (a change
    /// restarts the listener).
    pub routes: Arc<[WeightedDestination]>,
    pub identity: Arc<SourceIdentity>,
    /// The workload certificate, for endpoints reached over mTLS; `None` without `--ca-addr`.
    pub certs: Option<Arc<crate::identity::CertificateManager>>,
}

/// Accepts until `stop` fires or draining starts. Open connections are not cut on drain:
/// they hold the drain open until they finish or the drain deadline ends the process.
pub async fn serve(
    listener: TcpListener,
    forwarder: Arc<Forwarder>,
    drain: Drain,
    stop: watch::Receiver<bool>,
) {
    accept_loop(listener, drain, stop, move |stream, peer| {
        let forwarder = forwarder.clone();
        async move { forwarder.forward(stream, peer).await }
    })
    .await;
}

impl Forwarder {
    /// Forwards one accepted connection until both directions have closed.
    pub async fn forward(&self, downstream: TcpStream, peer: SocketAddr) {
        let _ = downstream.set_nodelay(true);
        let local_port = downstream.local_addr().map_or(0, |a| a.port());
        self.forward_stream(downstream, peer, local_port, None)
            .await;
    }

    /// Forwards a connection already accepted (and perhaps decrypted) by someone else;
    /// `inbound` labels its metrics with the peer's identity and security.
    pub async fn forward_stream<S>(
        &self,
        downstream: S,
        peer: SocketAddr,
        local_port: u16,
        inbound: Option<&Peer>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(runtime) = self.state.current() else {
            self.identity.refused(None, Flag::NoCluster, inbound);
            return;
        };
        let Some(target) = connect::target(&runtime, &self.routes) else {
            self.identity.refused(None, Flag::NoCluster, inbound);
            return;
        };
        let destination = (target.cluster.host.as_str(), target.subset);
        let upstream = match connect::connect(&target, peer, local_port, self.certs.as_ref()).await
        {
            Ok(upstream) => upstream,
            Err(flag) => {
                tracing::debug!(%peer, cluster = %target.cluster.name(target.subset), flag = flag.code(), "TCP connection refused");
                self.identity.refused(Some(destination), flag, inbound);
                return;
            }
        };
        let reached = (upstream.workload.as_deref(), upstream.mesh_mtls);
        let record = self.identity.opened(destination, inbound, reached);
        let idle_timeout = idle::idle_timeout(&runtime.snapshot, target.cluster, target.subset);
        let endpoint = upstream.endpoint;
        // Not needed while bytes flow: a long-lived connection must not keep an old
        // snapshot and its balancers alive.
        drop(runtime);
        tracing::debug!(%peer, %endpoint, "TCP connection forwarded");
        let outcome = idle::copy(downstream, upstream.stream, &record, idle_timeout).await;
        drop(upstream.in_flight);
        drop(upstream.admission);
        match outcome {
            Outcome::Closed { received, sent } => {
                tracing::debug!(%peer, %endpoint, received, sent, "TCP connection closed");
            }
            Outcome::Failed(error) => {
                tracing::debug!(%peer, %endpoint, %error, "TCP connection failed");
            }
            Outcome::Idle => {
                tracing::debug!(%peer, %endpoint, ?idle_timeout, "TCP connection idle: closed");
            }
        }
    }
}
