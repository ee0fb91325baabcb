//! citadel's settings: flags with env fallbacks, logged at start and shown on `/config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::ca::TtlPolicy;
use crate::ca::intermediate::IntermediateFiles;
use crate::ca::rotation::Step;

#[derive(Parser, Debug)]
#[command(
    name = "citadel",
    version,
    about = "mesh's certificate authority: SPIFFE identities as short-lived X.509 certificates",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One step of a root rotation (prepare, activate, finish), or its status. Run the steps
    /// at least --max-cert-ttl apart; a running citadel picks each up within
    /// --ca-reload-interval.
    RotateRoot(RotateArgs),
}

#[derive(Args, Debug, Clone, Serialize)]
#[command(group(clap::ArgGroup::new("store").required(true).args(["ca_dir", "kubernetes"])))]
pub struct RotateArgs {
    pub action: RotateAction,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub root: RootArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
pub enum RotateAction {
    /// Step 1: add a new root to the trust bundle; the old root keeps signing.
    Prepare,
    /// Step 2: sign with the new root; the old root stays trusted.
    Activate,
    /// Step 3: drop the old root from the trust bundle.
    Finish,
    /// Show the roots and which step comes next.
    Status,
}

impl RotateAction {
    pub fn step(self) -> Option<Step> {
        match self {
            RotateAction::Prepare => Some(Step::Prepare),
            RotateAction::Activate => Some(Step::Activate),
            RotateAction::Finish => Some(Step::Finish),
            RotateAction::Status => None,
        }
    }
}

/// Where citadel's own root lives.
#[derive(Args, Debug, Clone, Serialize)]
pub struct StoreArgs {
    /// Local mode: keep the root in this directory (root-key.pem, root-cert.pem,
    /// trust-bundle.pem), created on first start.
    #[arg(long, env = "MESH_CA_DIR")]
    pub ca_dir: Option<PathBuf>,

    /// Kubernetes mode (in-cluster config or KUBECONFIG): the root in a Secret unless
    /// --ca-dir or --ca-cert is given, callers checked with TokenReview unless --token-file
    /// is given, and the bundle published to labelled namespaces.
    #[arg(long, env = "MESH_KUBERNETES")]
    pub kubernetes: bool,

    /// Kubernetes: the namespace of the CA Secret.
    #[arg(long, env = "MESH_CA_NAMESPACE", default_value = "mesh-system")]
    pub ca_namespace: String,

    /// Kubernetes: the CA Secret's name.
    #[arg(long, env = "MESH_CA_SECRET", default_value = "mesh-ca")]
    pub ca_secret: String,
}

/// How citadel makes a root.
#[derive(Args, Debug, Clone, Serialize)]
pub struct RootArgs {
    /// The SPIFFE trust domain: identities are spiffe://<trust-domain>/ns/<ns>/sa/<sa>.
    #[arg(long, env = "MESH_TRUST_DOMAIN", default_value = "cluster.local")]
    pub trust_domain: String,

    /// Lifetime of a root citadel creates.
    #[arg(long, env = "MESH_ROOT_CERT_TTL", default_value = "87600h", value_parser = parse_duration)]
    #[serde(with = "seconds")]
    pub root_cert_ttl: Duration,
}

#[derive(Args, Debug, Clone, Serialize)]
#[command(group(clap::ArgGroup::new("ca").required(true).multiple(true).args(["ca_dir", "kubernetes", "ca_cert"])))]
pub struct Config {
    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub root: RootArgs,

    /// Intermediate mode: sign with this CA certificate (optionally followed by the
    /// certificates above it) issued by your own root.
    #[arg(long, env = "MESH_CA_CERT", requires_all = ["ca_key", "root_cert"])]
    pub ca_cert: Option<PathBuf>,

    /// Intermediate mode: the CA certificate's PKCS#8 private key.
    #[arg(long, env = "MESH_CA_KEY", requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,

    /// Intermediate mode: the roots to trust (the one that issued --ca-cert, and any others).
    #[arg(long, env = "MESH_ROOT_CERT", requires = "ca_cert")]
    pub root_cert: Option<PathBuf>,

    /// Local credentials: lines of `<token> <namespace> <service-account>`.
    #[arg(long, env = "MESH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Kubernetes: the audience service-account tokens must be for.
    #[arg(long, env = "MESH_TOKEN_AUDIENCE", default_value = "mesh-ca")]
    pub token_audience: String,

    /// Certificate signing, gRPC over TLS.
    #[arg(long, env = "MESH_CA_ADDR", default_value = "0.0.0.0:8060")]
    pub addr: SocketAddr,

    /// `/metrics`, `/ready`, `/config`.
    #[arg(long, env = "MESH_MONITORING_ADDR", default_value = "0.0.0.0:15015")]
    pub monitoring_addr: SocketAddr,

    /// The longest workload certificate citadel issues.
    #[arg(long, env = "MESH_MAX_CERT_TTL", default_value = "24h", value_parser = parse_duration)]
    #[serde(with = "seconds")]
    pub max_cert_ttl: Duration,

    /// The lifetime when a request asks for 0.
    #[arg(long, env = "MESH_DEFAULT_CERT_TTL", default_value = "24h", value_parser = parse_duration)]
    #[serde(with = "seconds")]
    pub default_cert_ttl: Duration,

    /// More names for citadel's serving certificate (DNS names or IP addresses), beyond
    /// citadel.mesh-system.svc, localhost and 127.0.0.1.
    #[arg(long, env = "MESH_SERVING_SAN", value_delimiter = ',')]
    pub serving_san: Vec<String>,

    /// How often the CA (directory, Secret or intermediate files) and the token file are
    /// re-read, to pick up a rotation step or new tokens.
    #[arg(long, env = "MESH_CA_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    #[serde(with = "seconds")]
    pub ca_reload_interval: Duration,

    /// Log filter, e.g. `info` or `mesh_citadel=debug`.
    #[arg(long, env = "MESH_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    pub fn ttl_policy(&self) -> TtlPolicy {
        TtlPolicy {
            default: self.default_cert_ttl,
            max: self.max_cert_ttl,
        }
    }

    pub fn intermediate(&self) -> Option<IntermediateFiles> {
        match (&self.ca_cert, &self.ca_key, &self.root_cert) {
            (Some(cert), Some(key), Some(roots)) => Some(IntermediateFiles {
                cert: cert.clone(),
                key: key.clone(),
                roots: roots.clone(),
            }),
            _ => None,
        }
    }

    /// The serving certificate's names: the defaults, then --serving-san.
    pub fn serving_names(&self) -> Vec<String> {
        let mut names: Vec<String> = crate::tls::DEFAULT_SANS.map(str::to_owned).to_vec();
        for name in &self.serving_san {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = mesh_core::config::Duration::parse(text).map_err(|e| e.to_string())?;
    match parsed.to_std() {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{text} must be positive")),
    }
}

/// Durations shown as `NNNs` (or `NNNms` below a second) in the logged config.
mod seconds {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos() == 0 {
            s.collect_str(&format_args!("{}s", d.as_secs()))
        } else {
            s.collect_str(&format_args!("{}ms", d.as_millis()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("citadel").chain(args.iter().copied()))
    }

    #[test]
    fn serve_needs_a_ca_and_has_the_documented_defaults() {
        assert!(parse(&[]).is_err());
        let cli = parse(&["--ca-dir", "/tmp/ca", "--token-file", "/tmp/t"]).expect("valid");
        assert!(cli.command.is_none());
        let config = cli.serve;
        assert_eq!(config.addr, "0.0.0.0:8060".parse().expect("addr"));
        assert_eq!(config.monitoring_addr.port(), 15015);
        assert_eq!(config.max_cert_ttl, Duration::from_secs(86400));
        assert_eq!(config.root.root_cert_ttl, Duration::from_secs(87600 * 3600));
        assert_eq!(config.root.trust_domain, "cluster.local");
    }

    #[test]
    fn intermediate_mode_needs_all_three_files() {
        assert!(parse(&["--ca-cert", "c.pem", "--ca-key", "k.pem"]).is_err());
        let cli = parse(&[
            "--ca-cert",
            "c",
            "--ca-key",
            "k",
            "--root-cert",
            "r",
            "--token-file",
            "t",
        ]);
        assert!(cli.expect("valid").serve.intermediate().is_some());
    }

    #[test]
    fn rotate_root_takes_a_step_and_a_store() {
        let cli = parse(&["rotate-root", "prepare", "--ca-dir", "/tmp/ca"]).expect("valid");
        let Some(Command::RotateRoot(args)) = cli.command else {
            panic!("not rotate-root");
        };
        assert_eq!(args.action.step(), Some(Step::Prepare));
        assert!(parse(&["rotate-root", "prepare"]).is_err());
        assert!(parse(&["rotate-root", "sideways", "--ca-dir", "x"]).is_err());
    }

    #[test]
    fn serving_sans_add_to_the_defaults() {
        let cli = parse(&["--ca-dir", "d", "--serving-san", "ca.example,10.0.0.9"]).expect("valid");
        let names = cli.serve.serving_names();
        assert_eq!(names[..3], DEFAULT_NAMES);
        assert_eq!(names[3..], ["ca.example", "10.0.0.9"]);
    }

    const DEFAULT_NAMES: [&str; 3] = crate::tls::DEFAULT_SANS;
}
