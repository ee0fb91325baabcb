//! The command line: flags, logging, the runtime. `main.rs` (and the end-to-end test
//! crate's copy of the binary) call [`main`].

use clap::Parser;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt, reload};

/// Parses the flags, sets up logging and runs the proxy until it stops; `mesh-proxy
/// iptables ...` programs the pod's redirection instead ([`crate::iptables`]), and
/// `mesh-proxy wait` waits until a running proxy is ready ([`crate::wait`]).
pub fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os();
    let program = args.next();
    let rest: Vec<_> = args.collect();
    if rest.first().is_some_and(|a| a == "iptables") {
        return crate::iptables::main(rest.into_iter().skip(1));
    }
    if rest.first().is_some_and(|a| a == "wait") {
        return crate::wait::main(rest.into_iter().skip(1));
    }
    let config = crate::config::Config::parse_from(program.into_iter().chain(rest));
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, reload_handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_writer(std::io::stderr))
        .init();
    // `/logging?level=` swaps the filter while the proxy runs.
    let log_control: crate::admin::LogControl = Box::new(move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        reload_handle.reload(filter).map_err(|e| e.to_string())
    });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(crate::app::run(config, log_control))
}
