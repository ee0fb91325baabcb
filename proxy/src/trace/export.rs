//! Sends finished spans to the OTLP/gRPC collector from a task of its own. The request
//! path only ever `try_send`s into a bounded queue: when the collector is slow or gone the
//! queue fills and further spans are dropped and counted, so the proxy neither waits on the
//! collector nor grows with the backlog. Each export has a deadline; after a failure the
//! exporter backs off (exponentially, capped) before the next.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio::sync::{mpsc, watch};
use tonic::transport::{Channel, Endpoint};

use super::otlp;
use super::span::Span;
use super::stats::{Dropped, Stats};

/// Spans waiting for export, at most.
pub const QUEUE_CAPACITY: usize = 2048;
/// Spans per export request, at most.
pub const MAX_BATCH: usize = 512;
/// How long one export may take before it counts as failed.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);
/// After the first span of a batch, how long more may gather before it goes.
const LINGER: Duration = Duration::from_millis(100);
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "telemetry.tracing.collector {collector:?}: {reason}; give the OTLP/gRPC collector as host:port"
    )]
    Address { collector: String, reason: String },
    #[error("no tokio runtime to export spans on")]
    NoRuntime,
}

/// The queue into one collector's export task. The task ends when [`Exporter::stop`] is
/// called (tracing off, or another collector): what it still holds is dropped and counted,
/// so that a dead collector's backlog does not outlive its config.
#[derive(Clone)]
pub struct Exporter {
    queue: mpsc::Sender<Span>,
    stop: Arc<watch::Sender<bool>>,
    stats: Arc<Stats>,
}

impl Exporter {
    pub fn start(
        collector: &str,
        service_name: String,
        stats: Arc<Stats>,
    ) -> Result<Self, ExportError> {
        let endpoint = endpoint(collector)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ExportError::NoRuntime)?;
        let _entered = runtime.enter();
        let client = TraceServiceClient::new(endpoint.connect_lazy());
        let (queue, spans) = mpsc::channel(QUEUE_CAPACITY);
        let (stop, stopped) = watch::channel(false);
        let task = Task {
            spans,
            stopped,
            in_flight: 0,
            client,
            service_name,
            collector: collector.to_owned(),
            stats: stats.clone(),
        };
        runtime.spawn(task.run());
        Ok(Self {
            queue,
            stop: Arc::new(stop),
            stats,
        })
    }

    /// Ends the export task; spans submitted afterwards are dropped.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Spans waiting in the queue now.
    pub fn queued(&self) -> usize {
        QUEUE_CAPACITY - self.queue.capacity()
    }

    /// Never waits: a span that finds the queue full is dropped and counted.
    pub fn submit(&self, span: Span) {
        if self.queue.try_send(span).is_err() {
            self.stats.dropped(1, Dropped::QueueFull);
        }
    }
}

/// `host:port`, nothing else.
pub(super) fn endpoint(collector: &str) -> Result<Endpoint, ExportError> {
    let bad = |reason: &str| ExportError::Address {
        collector: collector.to_owned(),
        reason: reason.to_owned(),
    };
    if collector.contains('/') {
        return Err(bad("a scheme or path is not allowed"));
    }
    let uri: http::Uri = format!("http://{collector}")
        .parse()
        .map_err(|_| bad("not a host:port"))?;
    if uri.port_u16().is_none() {
        return Err(bad("no port"));
    }
    Ok(Endpoint::from(uri)
        .connect_timeout(EXPORT_TIMEOUT)
        .timeout(EXPORT_TIMEOUT))
}

struct Task {
    spans: mpsc::Receiver<Span>,
    stopped: watch::Receiver<bool>,
    /// The spans of the export under way, dropped with it if the task stops.
    in_flight: u64,
    client: TraceServiceClient<Channel>,
    service_name: String,
    collector: String,
    stats: Arc<Stats>,
}

impl Task {
    async fn run(mut self) {
        let mut stopped = self.stopped.clone();
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => {}
            _ = self.export_all() => {}
        }
        // Whatever is left (a batch being sent, the queue) goes with the task.
        self.spans.close();
        let mut left = self.in_flight;
        while self.spans.try_recv().is_ok() {
            left += 1;
        }
        self.stats.dropped(left, Dropped::Stopped);
        tracing::debug!(collector = %self.collector, dropped = left, "span exporter stopped");
    }

    /// Until every handle is gone: batches out, with a pause after each failure.
    async fn export_all(&mut self) {
        let mut failures = 0u32;
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            if self.spans.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
            if batch.len() < MAX_BATCH {
                tokio::time::sleep(LINGER).await;
                while batch.len() < MAX_BATCH {
                    let Ok(span) = self.spans.try_recv() else {
                        break;
                    };
                    batch.push(span);
                }
            }
            if self.export(std::mem::take(&mut batch)).await {
                if failures > 0 {
                    tracing::info!(collector = %self.collector, "span export recovered");
                }
                failures = 0;
                continue;
            }
            failures = failures.saturating_add(1);
            tokio::time::sleep(backoff(failures)).await;
        }
    }

    /// Whether the collector took the batch; the spans are counted either way.
    async fn export(&mut self, batch: Vec<Span>) -> bool {
        let count = batch.len() as u64;
        self.in_flight = count;
        let request = otlp::request(&self.service_name, batch);
        let result = tokio::time::timeout(EXPORT_TIMEOUT, self.client.export(request)).await;
        self.in_flight = 0;
        let error = match result {
            Ok(Ok(response)) => {
                let rejected = response
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0));
                let rejected = rejected.min(count);
                self.stats.exported(count - rejected);
                if rejected > 0 {
                    self.stats.dropped(rejected, Dropped::ExportFailed);
                }
                return true;
            }
            Ok(Err(status)) => status.to_string(),
            Err(_) => format!("no answer within {EXPORT_TIMEOUT:?}"),
        };
        self.stats.export_failed();
        self.stats.dropped(count, Dropped::ExportFailed);
        tracing::warn!(collector = %self.collector, spans = count, %error, "span export failed");
        false
    }
}

/// `base * 2^(failures - 1)`, at most the cap, with up to a quarter of jitter.
fn backoff(failures: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let jitter = ceiling.mul_f64(rand::random::<f64>() / 4.0);
    ceiling - jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collectors_are_host_and_port() {
        assert!(endpoint("otel-collector.istio-system:4317").is_ok());
        assert!(endpoint("127.0.0.1:4317").is_ok());
        assert!(endpoint("[::1]:4317").is_ok());
        for bad in [
            "collector",
            "http://collector:4317",
            "collector:4317/v1",
            "a b:1",
            "",
        ] {
            let error = endpoint(bad).err().map(|e| e.to_string());
            assert!(
                error.as_deref().is_some_and(|e| e.contains("collector")),
                "{bad:?}: {error:?}"
            );
        }
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        assert!(backoff(1) <= BACKOFF_BASE && backoff(1) >= BACKOFF_BASE * 3 / 4);
        assert!(backoff(3) > BACKOFF_BASE * 2);
        assert!(backoff(60) <= BACKOFF_CAP && backoff(60) >= BACKOFF_CAP * 3 / 4);
    }
}
