//! Distributed tracing: a span per request and hop, exported over OTLP.
//!
//! A request's trace context comes in as W3C `traceparent` or B3 ([`context`]) or is
//! started here; whether it is recorded follows the caller's decision or
//! `sampling_percentage` ([`sampling`]). The proxy's span goes upstream as the new parent
//! ([`headers`]), carries Istio's tags ([`span`]) and ends with the response body
//! ([`body`]); finished spans wait in a bounded queue for a background task that sends
//! them to the collector ([`export`], [`otlp`]) and counts what became of them ([`stats`]).
//!
//! It all follows `snapshot.telemetry.tracing` of the applied snapshot ([`Tracer::configure`],
//! from [`crate::state::State::apply`]): on, off, a new sampling rate or collector, live.

mod body;
pub mod context;
mod export;
pub mod headers;
mod otlp;
pub mod sampling;
mod span;
pub mod stats;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use http::request::Parts;
use mesh_core::snapshot::TracingSpec;
use serde::Serialize;
use serde_json::{Value, json};

pub use body::attach;
pub use export::{EXPORT_TIMEOUT, ExportError, MAX_BATCH, QUEUE_CAPACITY};
pub use span::{ActiveSpan, Kind, Span};

use context::{SpanId, TraceId};
use export::Exporter;
use span::Ids;
use stats::Stats;

/// Who this proxy is, on every span: Istio's node tags and the service name.
#[derive(Debug, Clone, Serialize)]
pub struct NodeIdentity {
    pub node_id: String,
    /// Istio's mesh id; its default is the trust domain.
    pub mesh_id: String,
    pub namespace: String,
    /// The app (`app` label), Istio's canonical service.
    pub canonical_service: String,
    /// The version (`version` label), Istio's canonical revision.
    pub canonical_revision: String,
    /// A gateway reports its spans as the client of the upstream, as Istio's gateway
    /// listeners do (their traffic direction is outbound).
    pub gateway: bool,
}

impl Default for NodeIdentity {
    fn default() -> Self {
        let unknown = || "unknown".to_owned();
        Self {
            node_id: unknown(),
            mesh_id: "cluster.local".into(),
            namespace: unknown(),
            canonical_service: unknown(),
            canonical_revision: unknown(),
            gateway: false,
        }
    }
}

impl NodeIdentity {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            node_id: config.node_id(),
            mesh_id: config.trust_domain.clone(),
            namespace: config.namespace.clone(),
            canonical_service: config.app.clone(),
            canonical_revision: config.app_version.clone(),
            gateway: config.mode == crate::config::ProxyMode::Gateway,
        }
    }

    /// `<app>.<namespace>`, how Istio names a workload's traces.
    pub fn service_name(&self) -> String {
        format!("{}.{}", self.canonical_service, self.namespace)
    }
}

/// Tracing as configured now: the spec and where its spans go.
struct Active {
    spec: TracingSpec,
    identity: Arc<NodeIdentity>,
    exporter: Exporter,
}

/// The proxy's tracer; off until a snapshot turns it on.
#[derive(Default)]
pub struct Tracer {
    identity: ArcSwap<NodeIdentity>,
    active: ArcSwapOption<Active>,
    stats: Arc<Stats>,
    /// Why the current spec is not in force, for `/tracing`.
    error: Mutex<Option<String>>,
}

impl Tracer {
    /// Set once at start, before the first snapshot.
    pub fn set_identity(&self, identity: NodeIdentity) {
        self.identity.store(Arc::new(identity));
    }

    /// Follows a newly applied snapshot's tracing. The same collector keeps its exporter
    /// (and queue); a new one gets a new exporter, the old one finishes what it holds.
    pub fn configure(&self, spec: Option<&TracingSpec>) {
        let current = self.active.load_full();
        let Some(spec) = spec else {
            if let Some(current) = current {
                tracing::info!("tracing off");
                current.exporter.stop();
            }
            self.active.store(None);
            self.set_error(None);
            return;
        };
        let spec = sanitized(spec);
        if current.as_ref().is_some_and(|c| c.spec == spec) {
            return;
        }
        let identity = self.identity.load_full();
        let exporter = match &current {
            Some(c) if c.spec.collector == spec.collector => c.exporter.clone(),
            _ => {
                if let Some(old) = &current {
                    old.exporter.stop();
                }
                Stats::register();
                match Exporter::start(&spec.collector, identity.service_name(), self.stats.clone())
                {
                    Ok(exporter) => exporter,
                    Err(error) => {
                        tracing::warn!(%error, "tracing off");
                        self.active.store(None);
                        self.set_error(Some(error.to_string()));
                        return;
                    }
                }
            }
        };
        tracing::info!(collector = %spec.collector, sampling = spec.sampling_percentage, "tracing on");
        self.active.store(Some(Arc::new(Active {
            spec,
            identity,
            exporter,
        })));
        self.set_error(None);
    }

    /// Opens the span of a request that just arrived and rewrites its trace headers for
    /// the upstream. `None` when tracing is off (the headers pass untouched) or the request
    /// is not sampled (the context still goes on, marked unsampled).
    pub fn start(&self, parts: &mut Parts, peer: SocketAddr, inbound: bool) -> Option<ActiveSpan> {
        let active = self.active.load_full()?;
        let incoming = context::extract(&parts.headers);
        let sampled = sampling::decide(
            incoming.sampled,
            active.spec.sampling_percentage,
            rand::random::<f64>(),
        );
        let trace_id = incoming
            .parent
            .as_ref()
            .map_or_else(TraceId::random, |p| p.trace_id);
        let span_id = SpanId::random();
        headers::inject(
            &mut parts.headers,
            &headers::Outgoing {
                trace_id,
                span_id,
                sampled,
                incoming: &incoming,
            },
        );
        if !sampled {
            return None;
        }
        let kind = if inbound { Kind::Server } else { Kind::Client };
        let parent = incoming.parent;
        let ids = Ids {
            trace_id,
            span_id,
            parent: parent.as_ref().map(|p| p.span_id),
            trace_state: parent.and_then(|p| p.trace_state),
        };
        Some(ActiveSpan::open(active, parts, peer, kind, ids))
    }

    /// For `/tracing`: the spec in force, where spans go and what became of them.
    pub fn status(&self) -> Value {
        let active = self.active.load_full();
        let identity = self.identity.load_full();
        json!({
            "enabled": active.is_some(),
            "spec": active.as_ref().map(|a| &a.spec),
            "service_name": identity.service_name(),
            "node": &*identity,
            "queue_capacity": QUEUE_CAPACITY,
            "queued": active.as_ref().map_or(0, |a| a.exporter.queued()),
            "max_batch": MAX_BATCH,
            "export_timeout_ms": EXPORT_TIMEOUT.as_millis() as u64,
            "error": self.error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            "stats": self.stats.figures(),
        })
    }

    fn set_error(&self, error: Option<String>) {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }
}

/// Refuses a snapshot whose tracing collector is not `host:port`, before it is applied.
pub fn check(telemetry: Option<&mesh_core::snapshot::TelemetrySpec>) -> Result<(), ExportError> {
    match telemetry.and_then(|t| t.tracing.as_ref()) {
        Some(tracing) => export::endpoint(&tracing.collector).map(|_| ()),
        None => Ok(()),
    }
}

/// A percentage outside 0..=100 (or NaN) is clamped, never trusted.
fn sanitized(spec: &TracingSpec) -> TracingSpec {
    let percentage = spec.sampling_percentage;
    TracingSpec {
        sampling_percentage: if percentage.is_nan() {
            0.0
        } else {
            percentage.clamp(0.0, 100.0)
        },
        ..spec.clone()
    }
}
