//! The command line: flags, logging, the runtime. `main.rs` (and the end-to-end test
//! crate's copy of the binary) call [`main`].

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Parses the flags, sets up logging and runs pilot until it stops.
pub fn main() -> anyhow::Result<()> {
    let config = crate::config::Config::parse();
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(crate::app::run(config))
}
