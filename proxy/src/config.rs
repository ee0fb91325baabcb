//! The proxy's own settings (not the mesh config it serves): flags with env fallbacks,
//! logged at start and shown on `/config_dump`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    name = "mesh-proxy",
    version,
    about = "mesh's sidecar and gateway proxy"
)]
pub struct Config {
    /// Serve the snapshot in this file (YAML or JSON), reloaded when it changes.
    #[arg(long, env = "MESH_SNAPSHOT")]
    pub snapshot: PathBuf,

    /// How often the snapshot file is checked for changes.
    #[arg(long, env = "MESH_SNAPSHOT_POLL", default_value = "200ms", value_parser = parse_duration)]
    #[serde(with = "duration_text")]
    pub snapshot_poll: Duration,

    /// Admin endpoints (config dump, routes, clusters, quitquitquit): keep on loopback.
    #[arg(long, env = "MESH_ADMIN_ADDR", default_value = "127.0.0.1:15000")]
    pub admin_addr: SocketAddr,

    /// Readiness, `/healthz/ready`, for the kubelet and load balancers.
    #[arg(long, env = "MESH_HEALTH_ADDR", default_value = "0.0.0.0:15021")]
    pub health_addr: SocketAddr,

    /// Prometheus metrics, `/stats/prometheus`.
    #[arg(long, env = "MESH_METRICS_ADDR", default_value = "0.0.0.0:15020")]
    pub metrics_addr: SocketAddr,

    /// This workload's name, namespace, app and version: the `source_*` labels of metrics.
    #[arg(long, env = "MESH_WORKLOAD", default_value = "unknown")]
    pub workload: String,
    #[arg(long, env = "POD_NAMESPACE", default_value = "unknown")]
    pub namespace: String,
    #[arg(long, env = "MESH_APP", default_value = "unknown")]
    pub app: String,
    #[arg(
        long = "app-version",
        env = "MESH_APP_VERSION",
        default_value = "unknown"
    )]
    pub app_version: String,

    /// Write a JSON access log line per request to stdout.
    #[arg(long, env = "MESH_ACCESS_LOG")]
    pub access_log: bool,

    /// On SIGTERM, how long in-flight requests may take before the proxy exits anyway.
    #[arg(long, env = "MESH_DRAIN_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    #[serde(with = "duration_text")]
    pub drain_timeout: Duration,

    /// Log filter, e.g. `info` or `mesh_proxy=debug`.
    #[arg(long, env = "MESH_LOG", default_value = "info")]
    pub log: String,
}

/// Durations on the command line use the config language's syntax ("200ms", "5s").
fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = mesh_core::config::Duration::parse(text).map_err(|e| e.to_string())?;
    parsed.to_std().ok_or_else(|| format!("{text} is negative"))
}

mod duration_text {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}ms", d.as_millis()))
    }
}
