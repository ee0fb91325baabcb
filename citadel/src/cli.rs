//! The command line: flags, logging, the runtime. `main.rs` calls [`main`].

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::config::{Cli, Command};

/// Parses the flags, sets up logging and runs citadel (or one `rotate-root` step).
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.serve.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::RotateRoot(args)) => runtime.block_on(crate::app::rotate_root(args)),
        None => runtime.block_on(crate::app::run(cli.serve)),
    }
}
