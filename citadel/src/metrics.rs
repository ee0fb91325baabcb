//! citadel's Prometheus metrics, served on the monitoring port at `/metrics`.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const ROOT_EXPIRY: &str = "citadel_root_cert_expiry_timestamp_seconds";
pub const ISSUED: &str = "citadel_cert_issued_total";
pub const REFUSED: &str = "citadel_csr_refused_total";
pub const ISSUED_EXPIRY: &str = "citadel_issued_cert_expiry_timestamp_seconds";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("a metrics recorder is already installed in this process")]
    AlreadyInstalled,
}

/// Installs the process-wide recorder; the handle renders the text format.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
    describe();
    Ok(handle)
}

fn describe() {
    metrics::describe_gauge!(
        ROOT_EXPIRY,
        "When the root at the top of the signing chain expires (Unix seconds)."
    );
    metrics::describe_counter!(ISSUED, "Workload certificates issued.");
    metrics::describe_counter!(
        REFUSED,
        "Certificate requests refused, by reason: unauthenticated, not_workload, \
         auth_unavailable, malformed, bad_signature, unsupported_key, bad_san, \
         identity_mismatch, bad_ttl, ca_unavailable, internal."
    );
    metrics::describe_gauge!(
        ISSUED_EXPIRY,
        "When the most recently issued workload certificate expires (Unix seconds)."
    );
}

pub fn root_expiry(seconds: f64) {
    metrics::gauge!(ROOT_EXPIRY).set(seconds);
}

pub fn issued(expiry_seconds: f64) {
    metrics::counter!(ISSUED).increment(1);
    metrics::gauge!(ISSUED_EXPIRY).set(expiry_seconds);
}

pub fn refused(reason: &'static str) {
    metrics::counter!(REFUSED, "reason" => reason).increment(1);
}
