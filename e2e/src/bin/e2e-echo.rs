//! The sample app as the local-mode test runs it: mesh-echo's flags and its one stdout line,
//! built from the echo library (its `main` is not a library function).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = mesh_echo::cli::Args::parse();
    let config = args.config()?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let server = mesh_echo::start(config.clone()).await?;
    println!(
        "mesh-echo {} {} listening on {}",
        config.name,
        config.version,
        server.addr()
    );
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = tokio::time::timeout(args.drain_timeout, server.shutdown()).await;
    Ok(())
}
