//! One proxy's discovery stream: send what it lacks, wait for its ACK or NACK, repeat when
//! the config moves. At most one response is outstanding, so a slow proxy gets fewer,
//! larger updates and never holds up anyone else: every stream runs on its own task and
//! reads the newest generation from a watch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mesh_proto::discovery::v1 as pb;
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

use super::generation::{Desired, Generation, Resources};
use super::held::Held;
use super::wire::WireResponse;
use crate::metrics as m;
use crate::syncz::{Nack, Syncz, now};
use crate::translate::Node;

pub struct Stream {
    pub id: u64,
    pub node: Node,
    pub held: Held,
    pub generations: watch::Receiver<Arc<Generation>>,
    pub inbound: Streaming<pb::DiscoveryRequest>,
    pub outbound: mpsc::Sender<Result<WireResponse, Status>>,
    pub syncz: Arc<Syncz>,
    /// This proxy's own resources, kept across generations while they do not change.
    pub own: Option<(u64, Resources)>,
}

struct Pending {
    nonce: String,
    desired: Desired,
    /// When the change behind it was noticed; `None` for a proxy's first push.
    changed_at: Option<Instant>,
}

static NONCES: AtomicU64 = AtomicU64::new(1);

impl Stream {
    pub async fn run(mut self) {
        self.syncz.connected(self.id, &self.node);
        metrics::gauge!(m::CONNECTED).increment(1.0);
        tracing::info!(proxy = %self.node.id, held = self.held.len(), "proxy connected");
        let reason = self.serve().await;
        tracing::info!(proxy = %self.node.id, %reason, "proxy disconnected");
        metrics::gauge!(m::CONNECTED).decrement(1.0);
        self.syncz.disconnected(self.id);
    }

    async fn serve(&mut self) -> String {
        let mut pending: Option<Pending> = None;
        let mut dirty = true;
        let mut first = true;
        loop {
            if pending.is_none() && dirty {
                dirty = false;
                let generation = self.generations.borrow_and_update().clone();
                match self.push(&generation, first).await {
                    Ok(sent) => pending = sent,
                    Err(reason) => return reason,
                }
                first = false;
            }
            tokio::select! {
                changed = self.generations.changed() => {
                    if changed.is_err() {
                        return "pilot is shutting down".into();
                    }
                    dirty = true;
                }
                request = self.inbound.message() => match request {
                    Ok(Some(request)) => self.answered(request, &mut pending),
                    Ok(None) => return "stream closed by the proxy".into(),
                    Err(status) => return format!("stream error: {}", status.message()),
                },
            }
        }
    }

    /// Sends what the proxy lacks for `generation`, if anything.
    async fn push(
        &mut self,
        generation: &Generation,
        first: bool,
    ) -> Result<Option<Pending>, String> {
        let desired = generation.desired_reusing(&self.node, &mut self.own);
        let update = self.held.update_for(&desired);
        // The generation changes in the same update as the versions, so a reader of syncz
        // never sees the new generation beside the previous version's ack.
        let (number, resources) = (generation.number, desired.len());
        if update.is_empty() && !first {
            // The proxy already holds all of it (say, a refused change was reverted):
            // this version is in force without a push, sent and acknowledged at once.
            self.held.synced(&desired);
            let version = desired.version.clone();
            self.syncz.update(self.id, |s| {
                s.generation = number;
                s.resources = resources;
                s.version_sent = Some(version.clone());
                s.version_acked = Some(version);
            });
            return Ok(None);
        }
        let nonce = NONCES.fetch_add(1, Ordering::Relaxed).to_string();
        metrics::counter!(m::PUSHES).increment(1);
        metrics::counter!(m::PUSHED_RESOURCES).increment(update.resources.len() as u64);
        tracing::debug!(
            proxy = %self.node.id,
            version = %desired.version,
            %nonce,
            resources = update.resources.len(),
            removed = update.removed.len(),
            "push"
        );
        let (version, sent_nonce) = (desired.version.clone(), nonce.clone());
        self.syncz.update(self.id, |s| {
            s.generation = number;
            s.resources = resources;
            s.version_sent = Some(version);
            s.nonce_sent = Some(sent_nonce);
        });
        let pieces =
            WireResponse::pieces(&desired.version, &nonce, &update.resources, update.removed);
        for piece in pieces {
            if self.outbound.send(Ok(piece)).await.is_err() {
                return Err("the proxy's stream closed".into());
            }
        }
        Ok(Some(Pending {
            nonce,
            desired,
            changed_at: (!first).then_some(generation.changed_at),
        }))
    }

    fn answered(&mut self, request: pb::DiscoveryRequest, pending: &mut Option<Pending>) {
        let Some(sent) = pending.take_if(|p| p.nonce == request.response_nonce) else {
            // An answer to a response we no longer wait for (or a stray request): ignore.
            return;
        };
        match request.error_detail {
            None => {
                self.held.acked(&sent.desired);
                metrics::counter!(m::ACKS).increment(1);
                if let Some(changed_at) = sent.changed_at {
                    metrics::histogram!(m::CONVERGENCE).record(changed_at.elapsed().as_secs_f64());
                }
                let version = sent.desired.version.clone();
                self.syncz.update(self.id, |s| {
                    s.version_acked = Some(version);
                    s.nonce_acked = Some(sent.nonce.clone());
                });
            }
            Some(rejection) => {
                let reason = m::nack_reason(&rejection.message);
                metrics::counter!(m::NACKS, "reason" => reason).increment(1);
                tracing::warn!(
                    proxy = %self.node.id,
                    nonce = %sent.nonce,
                    version = %sent.desired.version,
                    message = %rejection.message,
                    "proxy refused the config (NACK); it keeps running its previous one"
                );
                let nack = Nack {
                    nonce: sent.nonce.clone(),
                    version: sent.desired.version.clone(),
                    message: rejection.message,
                    at: now(),
                };
                self.syncz.update(self.id, |s| {
                    s.last_nack = Some(nack);
                    s.nacks += 1;
                });
            }
        }
    }
}
