//! The command line: one subcommand per task.

use clap::{Parser, Subcommand};

use crate::cmd::analyze::AnalyzeArgs;
use crate::cmd::apply::ApplyArgs;
use crate::cmd::dashboard::DashboardArgs;
use crate::cmd::describe::XArgs;
use crate::cmd::install::InstallCommand;
use crate::cmd::kube_inject::KubeInjectArgs;
use crate::cmd::local::LocalArgs;
use crate::cmd::proxy_config::ProxyConfigArgs;
use crate::cmd::proxy_status::ProxyStatusArgs;
use crate::cmd::stat::StatArgs;
use crate::cmd::top::TopArgs;

#[derive(Debug, Parser)]
#[command(
    name = "meshctl",
    version,
    about = "Install, inspect, analyze and run mesh, the Rust service mesh that speaks Istio's config",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the cluster's mesh config, or files, as `istioctl analyze` does
    Analyze(AnalyzeArgs),
    /// Run the whole mesh on this machine: `local up <dir>`, `local status`, `local down`
    Local(LocalArgs),
    /// Check config files and hand them to the running local mesh (live, no restart)
    Apply(ApplyArgs),
    /// Remove what `apply -f` added to the running local mesh
    Delete(ApplyArgs),
    /// Show a proxy's live config from its admin port: routes, clusters, listeners,
    /// endpoints, secret or all
    ProxyConfig(ProxyConfigArgs),
    /// Per proxy and resource type: SYNCED, STALE, NOT SENT or NACKED (with the message)
    ProxyStatus(ProxyStatusArgs),
    /// Golden metrics per workload (success, rps, latency, TCP connections) over a window
    Stat(StatArgs),
    /// Every workload's golden metrics and the calls between them, refreshing
    Top(TopArgs),
    /// A web page of the live mesh: service graph, golden metrics, routes in force
    Dashboard(DashboardArgs),
    /// Experimental: `x describe pod <workload|pod>`, what applies to a pod and why
    X(XArgs),
    /// Add the sidecar to Pods and workload templates in YAML, offline, as the injector would
    KubeInject(KubeInjectArgs),
    /// install, uninstall, manifest generate, precheck, version: mesh on Kubernetes
    #[command(flatten)]
    Install(InstallCommand),
}
