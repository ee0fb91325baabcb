//! Istio's TCP metrics: connections opened and closed, bytes each way, labelled as Istio
//! labels them so TCP dashboards work unchanged.

use metrics::{Counter, Label};

use crate::http::Flag;
use crate::inbound::Peer;
use crate::metrics::Identity;
use crate::metrics::exchange::PeerRef;
use mesh_core::model::WorkloadMeta;

/// Bytes sent to the client (the response direction).
pub const SENT_BYTES: &str = "mesh_tcp_sent_bytes_total";
/// Bytes received from the client (the request direction).
pub const RECEIVED_BYTES: &str = "mesh_tcp_received_bytes_total";
pub const CONNECTIONS_OPENED: &str = "mesh_tcp_connections_opened_total";
pub const CONNECTIONS_CLOSED: &str = "mesh_tcp_connections_closed_total";

/// The `source_*` labels of this proxy's TCP metrics.
pub struct SourceIdentity(Identity);

/// `(service host, subset)` a connection went to.
pub(super) type Destination<'a> = (&'a str, Option<&'a str>);

impl SourceIdentity {
    pub fn new(identity: Identity) -> Self {
        metrics::describe_counter!(SENT_BYTES, "Bytes sent to clients on TCP connections.");
        metrics::describe_counter!(
            RECEIVED_BYTES,
            "Bytes received from clients on TCP connections."
        );
        metrics::describe_counter!(CONNECTIONS_OPENED, "TCP connections opened.");
        metrics::describe_counter!(CONNECTIONS_CLOSED, "TCP connections closed.");
        Self(identity)
    }

    /// A connection forwarded to `destination`: counted opened now, closed when the record
    /// drops, so every exit path counts it once. `reached`: the endpoint's workload (its
    /// `destination_*` labels) and whether the connection to it is mesh mTLS.
    pub(super) fn opened(
        &self,
        destination: Destination,
        peer: Option<&Peer>,
        reached: (Option<&WorkloadMeta>, bool),
    ) -> ConnectionRecord {
        let labels = self.labels(Some(destination), "-", peer, reached);
        metrics::counter!(CONNECTIONS_OPENED, labels.clone()).increment(1);
        ConnectionRecord { labels }
    }

    /// A connection accepted but never forwarded, counted opened and closed with the
    /// reason, as Envoy reports it.
    pub(super) fn refused(
        &self,
        destination: Option<Destination>,
        flag: Flag,
        peer: Option<&Peer>,
    ) {
        let labels = self.labels(destination, flag.code(), peer, (None, false));
        metrics::counter!(CONNECTIONS_OPENED, labels.clone()).increment(1);
        metrics::counter!(CONNECTIONS_CLOSED, labels).increment(1);
    }

    /// `peer`: on inbound listeners, who connected and whether with mTLS. TCP has no
    /// metadata exchange: inbound, the peer's workload stays `unknown`.
    fn labels(
        &self,
        destination: Option<Destination>,
        flags: &str,
        peer: Option<&Peer>,
        (workload, mesh_mtls): (Option<&WorkloadMeta>, bool),
    ) -> Vec<Label> {
        let peer = peer.map(|p| (p.identity.as_deref(), p.mtls));
        let remote = workload.filter(|_| peer.is_none()).map(|w| PeerRef {
            workload: &w.name,
            namespace: &w.namespace,
            app: &w.app,
            version: &w.version,
        });
        let principal = workload.filter(|_| mesh_mtls).map(|w| w.principal.as_str());
        let mut labels = crate::metrics::workload_labels(
            &self.0,
            destination,
            peer,
            mesh_mtls,
            remote,
            principal,
        );
        labels.extend([
            ("request_protocol", "tcp".to_owned()),
            ("response_flags", flags.to_owned()),
        ]);
        labels.into_iter().map(|(k, v)| Label::new(k, v)).collect()
    }
}

/// One forwarded connection's labels; counts it closed when dropped.
pub(super) struct ConnectionRecord {
    labels: Vec<Label>,
}

impl ConnectionRecord {
    /// The counter of bytes from the client.
    pub(super) fn received(&self) -> Counter {
        metrics::counter!(RECEIVED_BYTES, self.labels.clone())
    }

    /// The counter of bytes to the client.
    pub(super) fn sent(&self) -> Counter {
        metrics::counter!(SENT_BYTES, self.labels.clone())
    }
}

impl Drop for ConnectionRecord {
    fn drop(&mut self) {
        metrics::counter!(CONNECTIONS_CLOSED, std::mem::take(&mut self.labels)).increment(1);
    }
}
