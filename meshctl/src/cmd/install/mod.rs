//! Kubernetes installation: `install`, `uninstall`, `manifest generate`, `precheck`,
//! `version`. Everything installed comes from one description, [`manifest::render`] of
//! [`values::Values`]; the Helm chart's templates are generated from it
//! ([`chart`], `cargo xtask codegen`), and a test renders both and compares.

pub mod apply;
pub mod chart;
pub mod crds;
pub mod dashboards;
pub mod gateways;
pub mod kinds;
pub mod manifest;
pub mod precheck;
pub mod rbac;
pub mod values;
pub mod version;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::Status;
use apply::InstallOptions;
use values::Values;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Values(#[from] values::ValuesError),
    #[error(transparent)]
    Render(#[from] manifest::ManifestError),
    #[error("{0}; this is a bug in meshctl's manifest")]
    Manifest(String),
    #[error("cannot reach a cluster (set KUBECONFIG, or run inside a pod)")]
    NoCluster(#[source] kube::Error),
    #[error("{what}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("cannot write the report")]
    Write(#[from] std::io::Error),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// The values flags every command that renders the manifest takes.
#[derive(Debug, Clone, Args)]
pub struct ValuesArgs {
    /// A value, as Helm's --set: `--set pilot.replicas=2` (see charts/mesh/values.yaml)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// A values file, as Helm's -f; several are merged in order, then --set
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also install CRDs for Istio's groups (skipped when Istio is installed), so existing
    /// Istio YAML applies unchanged; the same as --set istioApi=true
    #[arg(long)]
    pub istio_api: bool,
}

impl ValuesArgs {
    pub fn values(&self) -> Result<Values, InstallError> {
        let mut values = Values::load(&self.files, &self.sets)?;
        values.istio_api |= self.istio_api;
        Ok(values)
    }
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub values: ValuesArgs,
    /// Send everything with the API server's dry run: validated, nothing changed
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for the control plane to be ready, seconds
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub values: ValuesArgs,
    /// Also delete the CRDs (and with them every mesh config object in the cluster) and
    /// the mesh-system namespace (and with it the CA's root)
    #[arg(long)]
    pub purge: bool,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    #[command(subcommand)]
    pub action: ManifestAction,
}

#[derive(Debug, Subcommand)]
pub enum ManifestAction {
    /// Print every object `install` applies, as YAML
    Generate(ValuesArgs),
}

#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    /// Install the CRDs and the control plane (citadel, pilot, injector) into mesh-system
    Install(InstallArgs),
    /// Remove what `install` added (the CRDs and the CA's root only with --purge)
    Uninstall(UninstallArgs),
    /// The objects `install` applies: `manifest generate`
    Manifest(ManifestArgs),
    /// Check the cluster before installing: version, permissions, other injectors, Istio
    Precheck(ValuesArgs),
    /// This meshctl's version, and the control plane's
    Version,
}

pub fn run(command: &InstallCommand, out: &mut impl Write) -> Result<Status, InstallError> {
    match command {
        InstallCommand::Manifest(ManifestArgs {
            action: ManifestAction::Generate(args),
        }) => {
            let manifest = manifest::render(&args.values()?)?;
            out.write_all(manifest.to_yaml().as_bytes())?;
            Ok(Status::Success)
        }
        InstallCommand::Install(args) => {
            let manifest = manifest::render(&args.values.values()?)?;
            let options = InstallOptions {
                dry_run: args.dry_run,
                timeout: Duration::from_secs(args.timeout),
            };
            with_cluster(|client| async move {
                apply::install(&client, &manifest, &options, out).await?;
                Ok(Status::Success)
            })
        }
        InstallCommand::Uninstall(args) => {
            let manifest = manifest::render(&args.values.values()?)?;
            with_cluster(|client| async move {
                apply::uninstall(&client, &manifest, args.purge, out).await?;
                Ok(Status::Success)
            })
        }
        InstallCommand::Precheck(args) => {
            let manifest = manifest::render(&args.values()?)?;
            with_cluster(|client| async move { precheck::precheck(&client, &manifest, out).await })
        }
        InstallCommand::Version => {
            writeln!(out, "{}", version::client_line())?;
            with_cluster(|client| async move {
                version::control_plane(&client, out).await?;
                Ok(Status::Success)
            })
        }
    }
}

/// Runs `work` with a client for the cluster KUBECONFIG (or the pod) names.
fn with_cluster<F, Fut>(work: F) -> Result<Status, InstallError>
where
    F: FnOnce(kube::Client) -> Fut,
    Fut: Future<Output = Result<Status, InstallError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(InstallError::Runtime)?;
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .map_err(InstallError::NoCluster)?;
        work(client).await.map_err(|error| match error {
            InstallError::Kube { source, .. } if crate::cause::cluster_unreachable(&source) => {
                InstallError::NoCluster(source)
            }
            other => other,
        })
    })
}
