//! Wiring: load the snapshot, open the ports, serve until told to stop, then drain.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::admin::{Admin, serve_admin, serve_health, serve_metrics};
use crate::config::Config;
use crate::drain::Drain;
use crate::listeners::Listeners;
use crate::metrics::{Identity, Metrics};
use crate::snapshot_file;
use crate::state::State;

pub async fn run(config: Config, log_control: crate::admin::LogControl) -> anyhow::Result<()> {
    tracing::info!(config = %serde_json::to_string(&config).unwrap_or_default(), "starting");
    let state = Arc::new(State::default());
    let content = snapshot_file::read(&config.snapshot).map_err(anyhow::Error::msg)?;
    let runtime = snapshot_file::runtime_from(&config.snapshot, &content, &state)
        .map_err(anyhow::Error::msg)?;
    state.apply(runtime);

    let metrics = Metrics::install(
        Identity {
            workload: config.workload.clone(),
            namespace: config.namespace.clone(),
            app: config.app.clone(),
            version: config.app_version.clone(),
        },
        config.access_log,
    )?;
    let drain = Drain::default();
    let listeners = Arc::new(Listeners::new(
        state.clone(),
        metrics.clone(),
        drain.clone(),
    ));
    listeners.reconcile().await;

    let admin_socket = TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("binding the admin port {}", config.admin_addr))?;
    let health_socket = TcpListener::bind(config.health_addr)
        .await
        .with_context(|| format!("binding the health port {}", config.health_addr))?;
    let metrics_socket = TcpListener::bind(config.metrics_addr)
        .await
        .with_context(|| format!("binding the metrics port {}", config.metrics_addr))?;
    // Before announcing readiness: a SIGTERM that arrives right after must drain, not kill.
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    // One line on stdout with the bound ports: tests and scripts that start the proxy with
    // port 0 read it.
    println!(
        "mesh-proxy ready admin={} health={} metrics={}",
        admin_socket.local_addr()?,
        health_socket.local_addr()?,
        metrics_socket.local_addr()?
    );
    let quit = Arc::new(Notify::new());
    let admin = Arc::new(Admin {
        config: config.clone(),
        log_control,
        state: state.clone(),
        listeners: listeners.clone(),
        quit: quit.clone(),
    });
    tokio::spawn(serve_admin(admin_socket, admin));
    tokio::spawn(serve_health(health_socket, state.clone(), drain.clone()));
    tokio::spawn(
        metrics
            .clone()
            .run_upkeep_every(std::time::Duration::from_secs(5)),
    );
    tokio::spawn(serve_metrics(metrics_socket, metrics));

    let (applied, mut applied_rx) = watch::channel(0u64);
    tokio::spawn(snapshot_file::watch_file(
        config.snapshot.clone(),
        config.snapshot_poll,
        content,
        state.clone(),
        applied,
    ));
    let reconciler = listeners.clone();
    tokio::spawn(async move {
        while applied_rx.changed().await.is_ok() {
            reconciler.reconcile().await;
        }
    });

    wait_for_stop(terminate, &quit).await;
    tracing::info!(timeout = ?config.drain_timeout, "draining");
    let left = drain.drain(config.drain_timeout).await;
    if left > 0 {
        tracing::warn!(
            connections = left,
            "drain deadline passed with connections open"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_stop(mut terminate: tokio::signal::unix::Signal, quit: &Notify) {
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        _ = quit.notified() => tracing::info!("/quitquitquit"),
    }
}
