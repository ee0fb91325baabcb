//! The simulated proxies: one discovery stream each, all in this process, many streams
//! sharing each HTTP/2 connection (as tonic Channels do). Each applies what it receives to
//! what it holds, ACKs at once, and reports the response with the moment it arrived on one
//! channel the scenarios read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context;
use mesh_proto::discovery::v1 as pb;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::config::Key;
use super::wire::{self, ResourceHead, Response};

/// Streams per HTTP/2 connection: well under any server's concurrent-stream limit.
pub const STREAMS_PER_CONNECTION: usize = 100;
/// Responses with at most this many resources list their keys in the event.
const LISTED: usize = 16;

/// One response as a simulated proxy saw it, or the end of its stream.
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub proxy: usize,
    pub at: Option<Instant>,
    pub resources: usize,
    pub removed: usize,
    /// The resources' `(type, name)`, for small responses (updates) only.
    pub keys: Vec<Key>,
    /// The response's encoded size.
    pub bytes: usize,
    /// Set when the stream failed or ended instead.
    pub error: Option<String>,
}

pub struct Fleet {
    pub events: mpsc::UnboundedReceiver<Event>,
    pub connections: usize,
    tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// Opens `proxies` streams to pilot at once, nodes spread over `namespaces`.
    pub async fn connect(
        pilot: SocketAddr,
        proxies: usize,
        namespaces: usize,
    ) -> anyhow::Result<Fleet> {
        let connections = proxies.div_ceil(STREAMS_PER_CONNECTION).max(1);
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            let channel = Endpoint::from_shared(format!("http://{pilot}"))?
                .connect()
                .await
                .with_context(|| format!("connecting to pilot at {pilot}"))?;
            channels.push(channel);
        }
        let (sender, events) = mpsc::unbounded_channel();
        let tasks = (0..proxies)
            .map(|proxy| {
                let channel = channels[proxy % connections].clone();
                let node = node(proxy, namespaces);
                tokio::spawn(run_proxy(channel, node, proxy, sender.clone()))
            })
            .collect();
        Ok(Fleet {
            events,
            connections,
            tasks,
        })
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Proxy `index`'s identity; namespaces round-robin like the services'.
pub fn node(index: usize, namespaces: usize) -> pb::Node {
    let namespace = format!("ns-{}", index % namespaces.max(1));
    pb::Node {
        id: format!("proxy-{index}.{namespace}"),
        namespace,
        workload: format!("proxy-{index}"),
        outbound_address: "127.0.0.1:15001".into(),
        ..Default::default()
    }
}

async fn run_proxy(
    channel: Channel,
    node: pb::Node,
    proxy: usize,
    events: mpsc::UnboundedSender<Event>,
) {
    let error = match serve(channel, node, proxy, &events).await {
        Ok(()) => "the stream ended".to_owned(),
        Err(status) => format!("{}: {}", status.code(), status.message()),
    };
    let _ = events.send(Event {
        proxy,
        error: Some(error),
        ..Event::default()
    });
}

async fn serve(
    channel: Channel,
    node: pb::Node,
    proxy: usize,
    events: &mpsc::UnboundedSender<Event>,
) -> Result<(), tonic::Status> {
    let (requests, outbound) = mpsc::channel(4);
    let first = pb::DiscoveryRequest {
        node: Some(node),
        ..Default::default()
    };
    let _ = requests.send(first).await;
    let mut responses = wire::open(channel, ReceiverStream::new(outbound)).await?;
    let mut held: HashMap<Key, String> = HashMap::new();
    let mut pieces: Option<(usize, Response)> = None;
    while let Some((bytes, response)) = responses.message().await? {
        // A large update arrives in pieces: it counts, and is answered, at the last one.
        let Some((bytes, response)) = gather(&mut pieces, bytes, response) else {
            continue;
        };
        let at = Instant::now();
        let event = event(proxy, at, bytes, &response);
        let ack = pb::DiscoveryRequest {
            response_nonce: response.nonce.clone(),
            ..Default::default()
        };
        apply(&mut held, response);
        if requests.send(ack).await.is_err() {
            return Ok(());
        }
        let _ = events.send(event);
    }
    Ok(())
}

/// Adds a piece to the update being gathered; the whole update once its last piece is in.
fn gather(
    pieces: &mut Option<(usize, Response)>,
    bytes: usize,
    piece: Response,
) -> Option<(usize, Response)> {
    let (bytes, whole) = match pieces.take() {
        None => (bytes, piece),
        Some((so_far, mut gathered)) => {
            gathered.resources.extend(piece.resources);
            gathered.removed_resources.extend(piece.removed_resources);
            gathered.nonce = piece.nonce;
            gathered.system_version_info = piece.system_version_info;
            gathered.more = piece.more;
            (so_far + bytes, gathered)
        }
    };
    if whole.more {
        *pieces = Some((bytes, whole));
        None
    } else {
        Some((bytes, whole))
    }
}

/// What a proxy holds after `response`: types, names and versions (see [`wire`]).
fn apply(held: &mut HashMap<Key, String>, response: Response) {
    for removed in &response.removed_resources {
        held.remove(&(removed.r#type, removed.name.clone()));
    }
    for resource in response.resources {
        let kind = resource.resource_type() as i32;
        held.insert((kind, resource.name), resource.version);
    }
}

fn key(resource: &ResourceHead) -> Key {
    (resource.resource_type() as i32, resource.name.clone())
}

fn event(proxy: usize, at: Instant, bytes: usize, response: &Response) -> Event {
    let small = response.resources.len() <= LISTED;
    Event {
        proxy,
        at: Some(at),
        resources: response.resources.len(),
        removed: response.removed_resources.len(),
        keys: if small {
            response.resources.iter().map(key).collect()
        } else {
            Vec::new()
        },
        bytes,
        error: None,
    }
}
