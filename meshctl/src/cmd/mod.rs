//! The commands, one module each.

pub mod analyze;
pub mod apply;
pub mod dashboard;
pub mod describe;
pub mod install;
pub mod kube_inject;
pub mod local;
pub mod proxy_config;
pub mod proxy_status;
pub mod stat;
pub mod top;

/// Why a command could not finish.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot write the report")]
    Write(#[source] std::io::Error),
    #[error("cannot encode the report as JSON")]
    Json(#[source] serde_json::Error),
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
    #[error(transparent)]
    Inspect(#[from] proxy_config::locate::InspectError),
    #[error(transparent)]
    Install(#[from] install::InstallError),
    #[error(transparent)]
    Analyze(#[from] analyze::cluster::ClusterError),
    #[error(transparent)]
    Observe(#[from] crate::observe::ObserveError),
    #[error(transparent)]
    KubeInject(Box<kube_inject::KubeInjectCommandError>),
}

impl CommandError {
    pub fn is_broken_pipe(&self) -> bool {
        let kind = match self {
            CommandError::Write(err) => Some(err.kind()),
            CommandError::Json(err) => err.io_error_kind(),
            CommandError::Install(install::InstallError::Write(err)) => Some(err.kind()),
            CommandError::Local(_) | CommandError::Inspect(_) | CommandError::KubeInject(_) => None,
            CommandError::Observe(_) | CommandError::Analyze(_) => None,
            CommandError::Install(_) => None,
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    }
}

impl From<std::io::Error> for CommandError {
    fn from(err: std::io::Error) -> Self {
        CommandError::Write(err)
    }
}

impl From<serde_json::Error> for CommandError {
    fn from(err: serde_json::Error) -> Self {
        CommandError::Json(err)
    }
}
