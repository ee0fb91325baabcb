//! Wiring: the source, the push loop, the discovery server and the monitoring port.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::index::Settings;
use crate::monitoring::{self, Monitoring};
use crate::push::{self, Debounce};
use crate::source::kubernetes::KubernetesSource;
use crate::source::local::LocalSource;
use crate::source::{Changes, Source};
use crate::syncz::Syncz;
use crate::xds::DiscoveryService;

pub async fn run(config: Config) -> anyhow::Result<()> {
    tracing::info!(config = %serde_json::to_string(&config).unwrap_or_default(), "starting");
    let metrics = crate::metrics::install()?;
    let (changes, changed) = Changes::new();
    let source = start_source(&config, changes).await?;
    let settings = Settings {
        root_namespace: config.root_namespace.clone(),
        trust_domain: config.trust_domain.clone(),
        outbound_traffic_policy: config.outbound_traffic_policy.into(),
        mesh_config: mesh_config(&config)?,
    };
    let first = push::build(source.as_ref(), &settings, 1, Instant::now(), None);
    let (generations, generations_rx) = watch::channel(Arc::new(first));
    let debounce = Debounce {
        quiet: config.debounce,
        max: config.debounce_max,
    };
    tokio::spawn(push::run(changed, source, settings, debounce, generations));

    let grpc = TcpListener::bind(config.grpc_addr)
        .await
        .with_context(|| format!("binding the discovery port {}", config.grpc_addr))?;
    let monitoring_socket = TcpListener::bind(config.monitoring_addr)
        .await
        .with_context(|| format!("binding the monitoring port {}", config.monitoring_addr))?;
    // One line on stdout with the bound ports, for tests and scripts that use port 0.
    println!(
        "pilot ready grpc={} monitoring={}",
        grpc.local_addr()?,
        monitoring_socket.local_addr()?
    );
    let syncz = Arc::new(Syncz::default());
    tokio::spawn(monitoring::serve(
        monitoring_socket,
        Arc::new(Monitoring {
            metrics,
            syncz: syncz.clone(),
            generations: generations_rx.clone(),
        }),
    ));
    let service = DiscoveryService::new(generations_rx, syncz).into_server();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc);
    tonic::transport::Server::builder()
        // Notice dead proxies (and keep NATs open) on idle streams.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown())
        .await
        .context("serving discovery")?;
    tracing::info!("stopped");
    Ok(())
}

/// `--mesh-config`, parsed; an error names the file and the field.
fn mesh_config(config: &Config) -> anyhow::Result<mesh_core::config::MeshConfig> {
    let Some(path) = &config.mesh_config else {
        return Ok(Default::default());
    };
    // In Kubernetes the ConfigMap is optional: its mount is empty until someone creates it.
    if !path.exists() {
        tracing::info!(file = %path.display(), "no mesh config; only the built-in envoy access log provider");
        return Ok(Default::default());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--mesh-config {}: cannot read", path.display()))?;
    let mesh = mesh_core::config::MeshConfig::parse(&text, &path.display().to_string())?;
    let providers: Vec<&str> = mesh
        .extension_providers
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let ignored: Vec<&String> = mesh.ignored.keys().collect();
    tracing::info!(
        file = %path.display(),
        ?providers,
        defaults = %serde_json::to_string(&mesh.default_providers).unwrap_or_default(),
        ?ignored,
        "mesh config"
    );
    Ok(mesh)
}

async fn start_source(config: &Config, changes: Changes) -> anyhow::Result<Arc<dyn Source>> {
    if !config.config_dir.is_empty() {
        for dir in &config.config_dir {
            anyhow::ensure!(
                dir.is_dir(),
                "--config-dir {}: not a directory",
                dir.display()
            );
        }
        return Ok(LocalSource::start(
            config.config_dir.clone(),
            config.config_poll,
            changes,
        ));
    }
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let source = KubernetesSource::start(client, changes).await?;
    // Pushing a half-listed cluster would remove endpoints from every proxy: wait for the
    // first lists, but not forever (a watch refused by RBAC never completes).
    match tokio::time::timeout(config.sync_timeout, source.wait_until_ready()).await {
        Ok(ready) => ready?,
        Err(_) => tracing::warn!(
            timeout = ?config.sync_timeout,
            "not every watch finished its first list; serving what has arrived"
        ),
    }
    Ok(source)
}

async fn shutdown() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
    }
}
