//! `meshctl kube-inject -f FILE`: the injector's patch applied offline, as `istioctl
//! kube-inject` does: Pods and the pod templates of workloads in multi-document YAML get
//! the sidecar; every other document is printed as it was.

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Args;
use mesh_injector::config::Config;
use mesh_injector::kube_inject::inject_yaml;

use super::CommandError;
use crate::Status;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  meshctl kube-inject -f deployment.yaml | kubectl apply -f -
  meshctl kube-inject -f app.yaml --config injector-config.yaml -o app-injected.yaml")]
pub struct KubeInjectArgs {
    /// The YAML to inject (`-` for stdin); multi-document, `List`s too
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub filename: PathBuf,
    /// The injector's config (the `mesh-sidecar-injector` ConfigMap's `config.yaml`):
    /// images, addresses, resources [default: the injector's defaults]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Write here instead of stdout
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum KubeInjectCommandError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] mesh_injector::config::ConfigError),
    #[error("{path}: {source}")]
    Inject {
        path: String,
        source: Box<mesh_injector::kube_inject::KubeInjectError>,
    },
}

pub fn run(args: &KubeInjectArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    let injected = inject(args).map_err(|e| CommandError::KubeInject(Box::new(e)))?;
    match &args.output {
        Some(path) => std::fs::write(path, injected)?,
        None => out.write_all(injected.as_bytes())?,
    }
    Ok(Status::Success)
}

fn inject(args: &KubeInjectArgs) -> Result<String, KubeInjectCommandError> {
    let shown = args.filename.display().to_string();
    let read_error = |source| KubeInjectCommandError::Read {
        path: shown.clone(),
        source,
    };
    let input = if args.filename.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(read_error)?;
        text
    } else {
        std::fs::read_to_string(&args.filename).map_err(read_error)?
    };
    let config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    inject_yaml(&input, &config).map_err(|source| KubeInjectCommandError::Inject {
        path: shown.clone(),
        source: Box::new(source),
    })
}
