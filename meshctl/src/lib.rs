//! meshctl: the command line of mesh. `main.rs` only parses flags and calls [`run`]; each
//! command lives in [`cmd`] so that tests and later commands can drive it directly.

mod cause;
pub mod cli;
pub mod cmd;
pub mod local;
pub mod observe;

use std::io::Write;
use std::process::ExitCode;

pub use cli::{Cli, Command};

/// How a command ended, as the process exit code scripts see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Done, nothing to report (warnings allowed).
    Success,
    /// Done, and what was checked has errors.
    Failed,
}

impl Status {
    /// The exit code when a command could not do its work (e.g. its output is closed);
    /// clap uses the same code for usage errors.
    pub const INTERNAL_ERROR: u8 = 2;
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        match status {
            Status::Success => ExitCode::SUCCESS,
            Status::Failed => ExitCode::FAILURE,
        }
    }
}

/// Runs the command `cli` names, writing its report to `out`.
pub fn run(cli: &Cli, out: &mut impl Write) -> Result<Status, cmd::CommandError> {
    match &cli.command {
        Command::Analyze(args) => cmd::analyze::run(args, out),
        Command::Local(args) => cmd::local::run(args, out),
        Command::Apply(args) => cmd::apply::apply(args, out),
        Command::Delete(args) => cmd::apply::delete(args, out),
        Command::ProxyConfig(args) => cmd::proxy_config::run(args, out),
        Command::ProxyStatus(args) => cmd::proxy_status::run(args, out),
        Command::Stat(args) => cmd::stat::run(args, out),
        Command::Top(args) => cmd::top::run(args, out),
        Command::Dashboard(args) => cmd::dashboard::run(args, out),
        Command::X(args) => cmd::describe::run(args, out),
        Command::Install(command) => Ok(cmd::install::run(command, out)?),
        Command::KubeInject(args) => cmd::kube_inject::run(args, out),
    }
}

/// The whole program, for `main.rs` and for test binaries built from it: parse the
/// command line, run, print any error with its causes on stderr.
pub fn main() -> ExitCode {
    use clap::Parser;
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match run(&cli, &mut stdout) {
        Ok(status) => status.into(),
        // A reader that stops early (`| head`) is not a failure worth a message.
        Err(err) if err.is_broken_pipe() => ExitCode::from(Status::INTERNAL_ERROR),
        Err(err) => {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("error: {message}");
            ExitCode::from(Status::INTERNAL_ERROR)
        }
    }
}
