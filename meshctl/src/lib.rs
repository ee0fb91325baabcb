//! meshctl: the command line of mesh. `main.rs` only parses flags and calls [`run`]; each
//! command lives in [`cmd`] so that tests and later commands can drive it directly.

pub mod cli;
pub mod cmd;

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
    }
}
