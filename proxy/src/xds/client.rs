//! The stream to pilot: say who we are and what we hold, apply each response whole or not
//! at all, answer it with an ACK or a NACK, and when the stream is lost keep serving and
//! come back with exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use mesh_core::compile::{CompileErrors, compile};
use mesh_proto::discovery::v1 as pb;
use pb::discovery_client::DiscoveryClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

use super::backoff::Backoff;
use super::status::PilotStatus;
use super::store::{Store, StoreError};
use crate::error_text::chain;
use crate::listeners::Listeners;
use crate::state::{Runtime, RuntimeError, State};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// pilot answers the stream's headers at once; one that does not is as good as gone.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings find a pilot that vanished without closing the connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum XdsError {
    #[error("pilot address {address:?}: {source}")]
    Address {
        address: String,
        source: tonic::transport::Error,
    },
    #[error("connecting to pilot: {0}")]
    Connect(#[source] tonic::transport::Error),
    #[error("opening the discovery stream: {0}")]
    Open(tonic::Status),
    #[error("pilot did not answer the discovery stream within {OPEN_TIMEOUT:?}")]
    OpenTimeout,
    #[error("discovery stream: {0}")]
    Stream(tonic::Status),
    #[error("pilot ended the discovery stream")]
    Ended,
}

/// Why a response was refused; the text is the NACK's message and names the resource and
/// the field.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compile(#[from] CompileErrors),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

type Opened = (
    mpsc::Sender<pb::DiscoveryRequest>,
    tonic::Streaming<pb::DiscoveryResponse>,
);

pub struct Client {
    endpoint: Endpoint,
    node: pb::Node,
    state: Arc<State>,
    listeners: Arc<Listeners>,
    status: Arc<PilotStatus>,
    store: Store,
}

impl Client {
    pub fn new(
        address: &str,
        node: pb::Node,
        state: Arc<State>,
        listeners: Arc<Listeners>,
        status: Arc<PilotStatus>,
    ) -> Result<Self, XdsError> {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|source| XdsError::Address {
                address: address.to_owned(),
                source,
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        Ok(Self {
            endpoint,
            node,
            state,
            listeners,
            status,
            store: Store::default(),
        })
    }

    /// Runs for as long as the proxy does.
    pub async fn run(mut self) {
        let mut backoff = Backoff::default();
        loop {
            let mut delivered = false;
            let Err(error) = self.session(&mut delivered).await;
            self.status.disconnected();
            if delivered {
                backoff.reset();
            }
            let wait = backoff.next_delay();
            let serving = self.state.status_snapshot().applied_version;
            tracing::warn!(
                error = %chain(&error),
                retry_in = ?wait,
                serving = serving.as_deref().unwrap_or("nothing yet"),
                "no stream to pilot; the last good config keeps serving"
            );
            tokio::time::sleep(wait).await;
            self.status.reconnecting();
        }
    }

    /// One stream, until it fails; `delivered` tells whether pilot sent anything on it.
    async fn session(
        &mut self,
        delivered: &mut bool,
    ) -> Result<std::convert::Infallible, XdsError> {
        let channel = self.endpoint.connect().await.map_err(XdsError::Connect)?;
        let (requests, mut responses) = self.open(channel).await?;
        self.status.connected();
        tracing::info!(
            address = %self.endpoint.uri(),
            held = self.store.len(),
            "discovery stream open"
        );
        let mut pieces: Option<pb::DiscoveryResponse> = None;
        loop {
            let response = responses
                .message()
                .await
                .map_err(XdsError::Stream)?
                .ok_or(XdsError::Ended)?;
            *delivered = true;
            // A large update arrives in pieces: hold them until the last, apply together.
            let Some(response) = gather(&mut pieces, response) else {
                continue;
            };
            let answer = self.answer(response).await;
            // The stream's receiving half went away: the next `message()` says why.
            let _ = requests.send(answer).await;
        }
    }

    /// Opens the stream with its first request sent; returns where to send the others and
    /// where pilot's responses arrive.
    async fn open(&self, channel: Channel) -> Result<Opened, XdsError> {
        let (requests, outgoing) = mpsc::channel(8);
        let first = first_request(&self.node, &self.store);
        // Cannot fail: the receiver is right here and the channel is empty.
        let _ = requests.send(first).await;
        // A large mesh's first response exceeds tonic's 4 MiB default (pilot allows 64).
        let mut client = DiscoveryClient::new(channel).max_decoding_message_size(64 << 20);
        let open = client.stream(ReceiverStream::new(outgoing));
        let responses = tokio::time::timeout(OPEN_TIMEOUT, open)
            .await
            .map_err(|_| XdsError::OpenTimeout)?
            .map_err(XdsError::Open)?
            .into_inner();
        Ok((requests, responses))
    }

    /// Applies `response` or refuses it, and says which to pilot.
    async fn answer(&mut self, response: pb::DiscoveryResponse) -> pb::DiscoveryRequest {
        let version = response.system_version_info.as_str();
        let nonce = response.nonce.as_str();
        match prepare(&self.store, &response, &self.state) {
            Ok((store, runtime)) => {
                self.state.apply(runtime);
                self.store = store;
                self.listeners.reconcile().await;
                tracing::info!(
                    version,
                    nonce,
                    resources = self.store.len(),
                    "pilot config applied"
                );
                self.status.acked(nonce, version);
                ack(nonce)
            }
            Err(error) => {
                let message = error.to_string();
                tracing::warn!(
                    version,
                    nonce,
                    error = %message,
                    "pilot config refused; the last good one keeps serving"
                );
                self.state.reject(format!(
                    "pilot version {version} (nonce {nonce}): {message}"
                ));
                self.status.nacked(nonce, &message);
                nack(nonce, message)
            }
        }
    }
}

/// What `response` makes of `store`: the resources to hold and the runtime to run, or why
/// not. Nothing changes until the caller applies both.
pub fn prepare(
    store: &Store,
    response: &pb::DiscoveryResponse,
    state: &State,
) -> Result<(Store, Runtime), ApplyError> {
    let next = store.updated(response)?;
    let snapshot = next.snapshot(&response.system_version_info)?;
    let config = compile(&snapshot)?;
    let runtime = Runtime::new(snapshot, config, state)?;
    Ok((next, runtime))
}

/// Adds `piece` to the update being gathered; returns the whole update once its last piece
/// (`more` unset) has arrived.
pub fn gather(
    pieces: &mut Option<pb::DiscoveryResponse>,
    piece: pb::DiscoveryResponse,
) -> Option<pb::DiscoveryResponse> {
    let whole = match pieces.take() {
        None => piece,
        Some(mut gathered) => {
            gathered.resources.extend(piece.resources);
            gathered.removed_resources.extend(piece.removed_resources);
            gathered.system_version_info = piece.system_version_info;
            gathered.nonce = piece.nonce;
            gathered.more = piece.more;
            gathered
        }
    };
    if whole.more {
        *pieces = Some(whole);
        None
    } else {
        Some(whole)
    }
}

/// A stream's first request: who we are and everything we hold.
pub fn first_request(node: &pb::Node, store: &Store) -> pb::DiscoveryRequest {
    pb::DiscoveryRequest {
        node: Some(node.clone()),
        initial_resource_versions: store.versions(),
        ..Default::default()
    }
}

pub fn ack(nonce: &str) -> pb::DiscoveryRequest {
    pb::DiscoveryRequest {
        response_nonce: nonce.to_owned(),
        ..Default::default()
    }
}

pub fn nack(nonce: &str, message: String) -> pb::DiscoveryRequest {
    pb::DiscoveryRequest {
        response_nonce: nonce.to_owned(),
        error_detail: Some(pb::Rejection { message }),
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
