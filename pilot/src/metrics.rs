//! pilot's Prometheus metrics, served on the monitoring port at `/metrics`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CONNECTED: &str = "pilot_xds_connected";
pub const PUSHES: &str = "pilot_xds_pushes_total";
pub const PUSHED_RESOURCES: &str = "pilot_xds_pushed_resources_total";
pub const ACKS: &str = "pilot_xds_acks_total";
pub const NACKS: &str = "pilot_xds_nacks_total";
pub const CONVERGENCE: &str = "pilot_proxy_convergence_seconds";
pub const GENERATION_BUILD: &str = "pilot_generation_build_seconds";
pub const GENERATION: &str = "pilot_generation";
pub const CONFIG_ERRORS: &str = "pilot_config_errors";
pub const JWKS_FETCHES: &str = "pilot_jwks_fetches_total";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("building the Prometheus recorder: {0}")]
    Build(#[from] metrics_exporter_prometheus::BuildError),
    #[error("a metrics recorder is already installed in this process")]
    AlreadyInstalled,
}

/// Installs the process-wide recorder; the handle renders the text format.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    let buckets = [
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
    describe();
    Ok(handle)
}

fn describe() {
    metrics::describe_gauge!(CONNECTED, "Proxies with an open discovery stream.");
    metrics::describe_counter!(PUSHES, "Discovery responses sent.");
    metrics::describe_counter!(PUSHED_RESOURCES, "Resources sent in discovery responses.");
    metrics::describe_counter!(ACKS, "Discovery responses a proxy applied.");
    metrics::describe_counter!(
        NACKS,
        "Discovery responses a proxy refused, by the kind of resource its error names."
    );
    metrics::describe_histogram!(
        CONVERGENCE,
        "From noticing a config change to a proxy ACKing the result."
    );
    metrics::describe_histogram!(GENERATION_BUILD, "Time to index a new config generation.");
    metrics::describe_gauge!(GENERATION, "The config generation being pushed.");
    metrics::describe_gauge!(
        CONFIG_ERRORS,
        "Config problems, by what pilot did: skipped, keptPrevious, used."
    );
    metrics::describe_counter!(
        JWKS_FETCHES,
        "Fetches of RequestAuthentication jwksUri key sets, by result."
    );
}

/// A short, bounded label for a NACK message: the resource kind it starts with.
pub fn nack_reason(message: &str) -> &'static str {
    const KINDS: [(&str, &str); 6] = [
        ("listener", "listener"),
        ("route", "route"),
        ("cluster", "cluster"),
        ("endpoints", "endpoints"),
        ("inbound", "inbound"),
        ("virtualhost", "route"),
    ];
    let lower = message.trim_start().to_ascii_lowercase();
    KINDS
        .iter()
        .find(|(prefix, _)| lower.starts_with(prefix))
        .map_or("other", |(_, reason)| reason)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nack_reasons_are_few() {
        use super::nack_reason;
        assert_eq!(
            nack_reason("routeConfigs[0].virtualHosts[1]: no cluster"),
            "route"
        );
        assert_eq!(nack_reason("clusters[3]: bad"), "cluster");
        assert_eq!(nack_reason("listener outbound: cannot bind"), "listener");
        assert_eq!(nack_reason("something new"), "other");
    }
}
