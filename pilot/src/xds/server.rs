//! The discovery service: accepts a proxy's stream, checks who it says it is, and hands
//! the stream to its own task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mesh_proto::discovery::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::generation::Generation;
use super::held::Held;
use super::stream::Stream;
use super::wire::{DiscoveryServer, WireResponse};
use crate::syncz::Syncz;
use crate::translate::Node;

pub struct DiscoveryService {
    generations: watch::Receiver<Arc<Generation>>,
    syncz: Arc<Syncz>,
    next_id: AtomicU64,
}

impl DiscoveryService {
    pub fn new(generations: watch::Receiver<Arc<Generation>>, syncz: Arc<Syncz>) -> Self {
        Self {
            generations,
            syncz,
            next_id: AtomicU64::new(1),
        }
    }

    pub fn into_server(self) -> DiscoveryServer {
        DiscoveryServer(Arc::new(self))
    }

    /// Accepts a proxy's stream: reads its first request, checks the node, and hands the
    /// stream to its own task.
    pub async fn open(
        &self,
        request: Request<Streaming<pb::DiscoveryRequest>>,
    ) -> Result<Response<ReceiverStream<Result<WireResponse, Status>>>, Status> {
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the stream ended before the first request"))?;
        let node = node_from(first.node)?;
        // Small: a piece waits here until the stream takes it, so a slow proxy holds at
        // most a few pieces of buffered config.
        let (outbound, responses) = mpsc::channel(2);
        let stream = Stream {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            node,
            held: Held::from_initial(&first.initial_resource_versions),
            generations: self.generations.clone(),
            inbound,
            outbound,
            syncz: self.syncz.clone(),
            own: None,
        };
        tokio::spawn(stream.run());
        Ok(Response::new(ReceiverStream::new(responses)))
    }
}

/// The proxy's identity from its first request; what pilot cannot use is refused here
/// with a message that says which field.
pub fn node_from(node: Option<pb::Node>) -> Result<Node, Status> {
    let node =
        node.ok_or_else(|| Status::invalid_argument("the first request must carry the node"))?;
    if node.id.is_empty() {
        return Err(Status::invalid_argument("node.id must not be empty"));
    }
    if node.namespace.is_empty() {
        return Err(Status::invalid_argument("node.namespace must not be empty"));
    }
    let outbound_address = if node.outbound_address.is_empty() {
        None
    } else {
        Some(node.outbound_address.parse::<SocketAddr>().map_err(|e| {
            Status::invalid_argument(format!(
                "node.outbound_address {:?}: {e}",
                node.outbound_address
            ))
        })?)
    };
    let mut metadata: std::collections::BTreeMap<String, String> =
        node.metadata.into_iter().collect();
    if !node.proxy_version.is_empty() {
        metadata.insert("proxyVersion".into(), node.proxy_version);
    }
    if !node.ip_addresses.is_empty() {
        metadata.insert("ipAddresses".into(), node.ip_addresses.join(","));
    }
    Ok(Node {
        id: node.id,
        namespace: node.namespace,
        workload: node.workload,
        service_account: node.service_account,
        labels: node.labels.into_iter().collect(),
        outbound_address,
        metadata,
    })
}
