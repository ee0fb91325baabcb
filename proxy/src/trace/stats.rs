//! What became of the spans: exported, dropped (queue full, export failed, tracing
//! reconfigured) and failed exports. Prometheus counters, and the same figures for the
//! admin endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

pub const SPANS_EXPORTED: &str = "mesh_trace_spans_exported_total";
pub const SPANS_DROPPED: &str = "mesh_trace_spans_dropped_total";
pub const EXPORT_FAILURES: &str = "mesh_trace_export_failures_total";

/// Why a span never reached the collector.
#[derive(Debug, Clone, Copy)]
pub enum Dropped {
    /// The export queue was full: the collector is slow or gone.
    QueueFull,
    /// It was in a batch the collector did not take.
    ExportFailed,
    /// Its exporter was stopped (tracing off, or another collector) before sending it.
    Stopped,
}

impl Dropped {
    fn label(self) -> &'static str {
        match self {
            Dropped::QueueFull => "queue_full",
            Dropped::ExportFailed => "export_failed",
            Dropped::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    exported: AtomicU64,
    dropped: AtomicU64,
    export_failures: AtomicU64,
}

/// The counters at one moment, for `/tracing`.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub spans_exported: u64,
    pub spans_dropped: u64,
    pub export_failures: u64,
}

impl Stats {
    /// Shows every series at 0 from the first scrape.
    pub fn register() {
        metrics::describe_counter!(SPANS_EXPORTED, "Spans the OTLP collector accepted.");
        metrics::describe_counter!(
            SPANS_DROPPED,
            "Spans never exported, by reason: queue_full (collector slow or gone), export_failed or stopped (tracing reconfigured)."
        );
        metrics::describe_counter!(
            EXPORT_FAILURES,
            "Span exports that failed or timed out; the exporter backs off after each."
        );
        metrics::counter!(SPANS_EXPORTED).increment(0);
        metrics::counter!(EXPORT_FAILURES).increment(0);
        for reason in [Dropped::QueueFull, Dropped::ExportFailed, Dropped::Stopped] {
            metrics::counter!(SPANS_DROPPED, "reason" => reason.label()).increment(0);
        }
    }

    pub fn exported(&self, spans: u64) {
        self.exported.fetch_add(spans, Ordering::Relaxed);
        metrics::counter!(SPANS_EXPORTED).increment(spans);
    }

    pub fn dropped(&self, spans: u64, why: Dropped) {
        self.dropped.fetch_add(spans, Ordering::Relaxed);
        metrics::counter!(SPANS_DROPPED, "reason" => why.label()).increment(spans);
    }

    pub fn export_failed(&self) {
        self.export_failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(EXPORT_FAILURES).increment(1);
    }

    pub fn figures(&self) -> Figures {
        Figures {
            spans_exported: self.exported.load(Ordering::Relaxed),
            spans_dropped: self.dropped.load(Ordering::Relaxed),
            export_failures: self.export_failures.load(Ordering::Relaxed),
        }
    }
}
