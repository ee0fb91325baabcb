//! pilot's own settings: flags with env fallbacks, logged at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    name = "pilot",
    version,
    about = "mesh's control plane: config from Kubernetes or a directory, pushed to every proxy"
)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config_dir", "kubernetes"])))]
pub struct Config {
    /// Local mode: serve the config in this directory (the YAML `meshctl analyze` accepts),
    /// reloaded when it changes. ServiceEntries and WorkloadEntries are the registry.
    /// Repeat the flag to merge several directories into one config set.
    #[arg(long, env = "MESH_CONFIG_DIR")]
    pub config_dir: Vec<PathBuf>,

    /// Kubernetes mode: watch the cluster (in-cluster config or KUBECONFIG).
    #[arg(long, env = "MESH_KUBERNETES")]
    pub kubernetes: bool,

    /// Config discovery for proxies (plaintext gRPC).
    #[arg(long, env = "MESH_GRPC_ADDR", default_value = "0.0.0.0:15010")]
    pub grpc_addr: SocketAddr,

    /// Metrics and `/debug/*`.
    #[arg(long, env = "MESH_MONITORING_ADDR", default_value = "0.0.0.0:15014")]
    pub monitoring_addr: SocketAddr,

    /// Push once changes have been quiet this long...
    #[arg(long, env = "MESH_DEBOUNCE", default_value = "100ms", value_parser = parse_duration)]
    #[serde(with = "millis")]
    pub debounce: Duration,

    /// ...or this long after the first change, whichever is first.
    #[arg(long, env = "MESH_DEBOUNCE_MAX", default_value = "1s", value_parser = parse_duration)]
    #[serde(with = "millis")]
    pub debounce_max: Duration,

    /// Local mode: how often the directory is checked for changes.
    #[arg(long, env = "MESH_CONFIG_POLL", default_value = "100ms", value_parser = parse_duration)]
    #[serde(with = "millis")]
    pub config_poll: Duration,

    /// Kubernetes mode: how long to wait for the first list of every watched resource
    /// before serving proxies anyway.
    #[arg(long, env = "MESH_SYNC_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    #[serde(with = "millis")]
    pub sync_timeout: Duration,

    /// Config in this namespace applies mesh-wide (Istio's istio-system).
    #[arg(long, env = "MESH_ROOT_NAMESPACE", default_value = "mesh-system")]
    pub root_namespace: String,

    /// The trust domain of the mesh's SPIFFE identities.
    #[arg(long, env = "MESH_TRUST_DOMAIN", default_value = "cluster.local")]
    pub trust_domain: String,

    /// Mesh-wide default for hosts not in the registry: `ALLOW_ANY` (Istio's default)
    /// passes them through, `REGISTRY_ONLY` refuses them (502); a Sidecar's
    /// `outboundTrafficPolicy` overrides it for its workloads.
    #[arg(
        long,
        env = "MESH_OUTBOUND_TRAFFIC_POLICY",
        value_enum,
        ignore_case = true,
        default_value = "ALLOW_ANY"
    )]
    pub outbound_traffic_policy: OutboundTrafficPolicy,

    /// Istio's MeshConfig (YAML): the telemetry providers Telemetry resources name
    /// (`extensionProviders`, `defaultProviders`). Read at start; in Kubernetes the `mesh`
    /// ConfigMap in mesh-system, mounted as a file. No flag, or no file there (the ConfigMap
    /// is optional): only the built-in `envoy` access log provider.
    #[arg(long, env = "MESH_MESH_CONFIG")]
    pub mesh_config: Option<PathBuf>,

    /// Log filter, e.g. `info` or `mesh_pilot=debug`.
    #[arg(long, env = "MESH_LOG", default_value = "info")]
    pub log: String,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = mesh_core::config::Duration::parse(text).map_err(|e| e.to_string())?;
    parsed.to_std().ok_or_else(|| format!("{text} is negative"))
}

/// Durations shown as `NNNms` in the logged config and on the debug pages.
pub(crate) mod millis {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}ms", d.as_millis()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("pilot").chain(args.iter().copied()))
    }

    #[test]
    fn config_dir_repeats_and_a_source_is_required() {
        let config = parse(&["--config-dir", "a", "--config-dir", "b"]).expect("parses");
        assert_eq!(config.config_dir, [PathBuf::from("a"), PathBuf::from("b")]);
        assert!(parse(&[]).is_err(), "no source");
        assert!(parse(&["--config-dir", "a", "--kubernetes"]).is_err());
        assert!(parse(&["--kubernetes"]).is_ok());
    }
}

/// `--outbound-traffic-policy`, as Istio's MeshConfig spells it.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[clap(rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundTrafficPolicy {
    AllowAny,
    RegistryOnly,
}

impl From<OutboundTrafficPolicy> for mesh_core::config::OutboundMode {
    fn from(policy: OutboundTrafficPolicy) -> Self {
        match policy {
            OutboundTrafficPolicy::AllowAny => Self::AllowAny,
            OutboundTrafficPolicy::RegistryOnly => Self::RegistryOnly,
        }
    }
}
