//! Wiring: take the config from its source (a file, loaded before anything else, or pilot,
//! which may come later), open the ports, serve until told to stop, then drain.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::admin::{Admin, Health, LogControl, serve_admin, serve_health, serve_metrics};
use crate::config::{Config, Source};
use crate::drain::Drain;
use crate::identity::{CaClient, CertificateManager, Policy};
use crate::listeners::Listeners;
use crate::metrics::{Identity, Metrics};
use crate::snapshot_file;
use crate::state::State;
use crate::xds::{self, PilotStatus};

pub async fn run(config: Config, log_control: LogControl) -> anyhow::Result<()> {
    tracing::info!(config = %serde_json::to_string(&config).unwrap_or_default(), "starting");
    let source = config.source()?;
    let state = Arc::new(State::default());
    state
        .tracer
        .set_identity(crate::trace::NodeIdentity::from_config(&config));
    // A bad file at start is a startup error; pilot's first snapshot may come any time.
    let loaded = match &source {
        Source::File(path) => Some(load_file(path, &state)?),
        Source::Pilot(_) => None,
    };
    let metrics = Metrics::install(identity(&config), config.access_log)?;
    // Without a resolver the proxy still serves everything but DNS clusters, which stay
    // without endpoints (their requests fail with no healthy upstream).
    match crate::dns::refresh::resolver(config.dns_server) {
        Ok(resolver) => {
            tokio::spawn(crate::dns::refresh::run(state.clone(), resolver));
        }
        Err(error) => tracing::warn!(%error, "resolution: DNS ServiceEntries cannot be served"),
    }
    // Before readiness, which waits for the first certificate.
    let certs = start_certificates(&config)?;
    let drain = Drain::default();
    let listeners = Arc::new(
        Listeners::new(state.clone(), metrics.clone(), drain.clone(), certs.clone())
            .with_credentials(config.credentials_dir.clone())
            .as_gateway(config.mode == crate::config::ProxyMode::Gateway),
    );
    if let Some(ports) = config.capture() {
        let original = Arc::new(crate::capture::SoOriginalDst);
        let bound = listeners
            .start_capture(ports, original)
            .await
            .with_context(|| format!("binding the capture ports {ports:?}"))?;
        tracing::info!(outbound = %bound.outbound, inbound = %bound.inbound, "capture mode: serving redirected traffic");
    }
    listeners.reconcile().await;

    let ports = Ports::bind(&config).await?;
    // Before announcing readiness: a SIGTERM that arrives right after must drain, not kill.
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    ports.announce()?;
    let pilot = match &source {
        Source::Pilot(address) => Some(start_pilot(address, &config, &state, &listeners)?),
        Source::File(path) => {
            let content = loaded.unwrap_or_default();
            start_file_watch(path.clone(), &config, content, &state, &listeners);
            None
        }
    };
    let quit = Arc::new(Notify::new());
    let admin = Arc::new(Admin {
        config: config.clone(),
        log_control,
        state: state.clone(),
        listeners,
        pilot,
        certs: certs.clone(),
        quit: quit.clone(),
    });
    let health = Health {
        state,
        drain: drain.clone(),
        certs,
        app_probers: Arc::new(crate::app_probe::AppProbers::from_env()?),
    };
    ports.serve(admin, health, metrics);

    wait_for_stop(terminate, &quit).await;
    finish(&drain, &config).await;
    Ok(())
}

fn identity(config: &Config) -> Identity {
    Identity {
        workload: config.workload.clone(),
        namespace: config.namespace.clone(),
        app: config.app.clone(),
        version: config.app_version.clone(),
        principal: match (&config.ca_addr, config.identity()) {
            (Some(_), Ok(identity)) => identity.to_string(),
            _ => "unknown".to_owned(),
        },
    }
}

/// With `--ca-addr`: the manager that gets the workload certificate from citadel and
/// renews it, running from now on.
fn start_certificates(config: &Config) -> anyhow::Result<Option<Arc<CertificateManager>>> {
    let Some(address) = &config.ca_addr else {
        return Ok(None);
    };
    let identity = config.identity().context("the workload identity")?;
    let bundle = config
        .trust_bundle
        .clone()
        .context("--ca-addr needs --trust-bundle, the roots that verify the CA")?;
    let client = CaClient::new(address, bundle, config.ca_token_file.clone())?;
    crate::metrics::certs::register();
    tracing::info!(%identity, ca = address, "requesting the workload certificate");
    let policy = Policy::new(config.cert_ttl);
    let (manager, _renewal) = CertificateManager::start(identity, Arc::new(client), policy);
    Ok(Some(manager))
}

/// Applies the snapshot file; returns its content, what the watch compares against.
fn load_file(path: &Path, state: &State) -> anyhow::Result<Vec<u8>> {
    let content = snapshot_file::read(path).map_err(anyhow::Error::msg)?;
    let runtime = snapshot_file::runtime_from(path, &content, state).map_err(anyhow::Error::msg)?;
    state.apply(runtime);
    Ok(content)
}

/// Reloads the file when it changes, and keeps the sockets in step with it.
fn start_file_watch(
    path: PathBuf,
    config: &Config,
    content: Vec<u8>,
    state: &Arc<State>,
    listeners: &Arc<Listeners>,
) {
    let (applied, mut applied_rx) = watch::channel(0u64);
    tokio::spawn(snapshot_file::watch_file(
        path,
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
}

/// Starts the discovery stream; it reconciles the sockets itself before each ACK.
fn start_pilot(
    address: &str,
    config: &Config,
    state: &Arc<State>,
    listeners: &Arc<Listeners>,
) -> anyhow::Result<Arc<PilotStatus>> {
    let status = Arc::new(PilotStatus::new(address.to_owned(), config.node_id()));
    let client = xds::Client::new(
        address,
        xds::node(config),
        state.clone(),
        listeners.clone(),
        status.clone(),
    )?;
    tokio::spawn(client.run());
    Ok(status)
}

/// The admin, health and metrics sockets, bound before anything is announced.
struct Ports {
    admin: TcpListener,
    health: TcpListener,
    metrics: TcpListener,
}

impl Ports {
    async fn bind(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            admin: bind(config.admin_addr, "admin").await?,
            health: bind(config.health_addr, "health").await?,
            metrics: bind(config.metrics_addr, "metrics").await?,
        })
    }

    /// One line on stdout with the bound ports: tests and scripts that start the proxy with
    /// port 0 read it.
    fn announce(&self) -> anyhow::Result<()> {
        println!(
            "mesh-proxy ready admin={} health={} metrics={}",
            self.admin.local_addr()?,
            self.health.local_addr()?,
            self.metrics.local_addr()?
        );
        Ok(())
    }

    fn serve(self, admin: Arc<Admin>, health: Health, metrics: Arc<Metrics>) {
        tokio::spawn(serve_admin(self.admin, admin));
        tokio::spawn(serve_health(self.health, health));
        tokio::spawn(
            metrics
                .clone()
                .run_upkeep_every(std::time::Duration::from_secs(5)),
        );
        tokio::spawn(serve_metrics(self.metrics, metrics));
    }
}

async fn bind(address: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the {name} port {address}"))
}

async fn wait_for_stop(mut terminate: tokio::signal::unix::Signal, quit: &Notify) {
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        _ = quit.notified() => tracing::info!("/quitquitquit"),
    }
}

async fn finish(drain: &Drain, config: &Config) {
    tracing::info!(timeout = ?config.drain_timeout, "draining");
    let left = drain.drain(config.drain_timeout).await;
    if left > 0 {
        tracing::warn!(
            connections = left,
            "drain deadline passed with connections open"
        );
    }
    tracing::info!("stopped");
}
