//! `mesh-echo`: parse flags, start the server, print where it listens, stop on a signal.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::Parser as _;
use mesh_echo::cli::Args;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let config = args.config()?;
    tracing::info!(config = %serde_json::to_string(&config)?, "starting");

    let stop = stop_signal()?;
    let server = mesh_echo::start(config.clone())
        .await
        .with_context(|| format!("failed to start on {}", config.listen))?;
    // The one line on stdout; tests and scripts read the address from it.
    println!(
        "mesh-echo {} {} listening on {}",
        config.name,
        config.version,
        server.addr()
    );

    stop.await;
    tracing::info!("shutting down");
    if tokio::time::timeout(args.drain_timeout, server.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?args.drain_timeout, "connections still open; exiting anyway");
    }
    Ok(())
}

/// SIGTERM (how Kubernetes and test harnesses stop a process) or ctrl-c. Returns a future
/// whose handlers are already installed: a signal that arrives before it is awaited (say,
/// right after the address is printed) still counts instead of killing the process.
#[cfg(unix)]
fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("failed to watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("failed to watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    Ok(async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "failed to watch ctrl-c; stopping");
        }
    })
}
