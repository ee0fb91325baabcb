//! Wiring: the CA source, the authenticator, the serving certificate, the gRPC and
//! monitoring ports, the reload loop and (Kubernetes) the bundle publisher.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::auth::token_file::TokenFile;
use crate::auth::token_review::TokenReviewer;
use crate::ca::Authority;
use crate::ca::root;
use crate::ca::rotation;
use crate::ca::source::{CaSource, RootSettings};
use crate::ca::store::dir::DirStore;
use crate::ca::store::secret::SecretStore;
use crate::ca::store::{self, CaStore};
use crate::config::{Config, RotateArgs, StoreArgs};
use crate::monitoring::{self, Monitoring};
use crate::server::CaService;
use crate::tls::{self, ServingCert};

pub async fn run(config: Config) -> anyhow::Result<()> {
    let config_json = serde_json::to_string(&config).unwrap_or_default();
    tracing::info!(config = %config_json, "starting");
    let metrics = crate::metrics::install()?;
    let client = kube_client(config.store.kubernetes).await?;
    let (source, authority) = load_authority(&config, client.clone()).await?;
    let (authority_tx, authority_rx) = watch::channel(authority.clone());
    let tokens = match &config.token_file {
        Some(path) => Some(Arc::new(TokenFile::load(path).await?)),
        None => None,
    };
    let authenticator = authenticator(&config, tokens.clone(), client.clone())?;
    let interval = config.ca_reload_interval;
    tokio::spawn(reload(source, authority_tx, tokens, interval));
    if let Some(client) = client {
        tokio::spawn(crate::bundle::publish::run(client, authority_rx.clone()));
    }
    let tls_config = serving_tls(&config, &authority, authority_rx.clone())?;
    let (grpc, monitoring_socket) = bind(&config).await?;
    let monitoring = Monitoring {
        metrics,
        authority: authority_rx.clone(),
        config_json,
    };
    tokio::spawn(monitoring::serve(monitoring_socket, Arc::new(monitoring)));
    let service = CaService::new(
        authority_rx,
        authenticator,
        &config.root.trust_domain,
        config.ttl_policy(),
    );
    tonic::transport::Server::builder()
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(tls::incoming(grpc, tls_config), shutdown())
        .await
        .context("serving certificate requests")?;
    tracing::info!("stopped");
    Ok(())
}

/// The CA from its source, created on first start, checked before anything is served.
async fn load_authority(
    config: &Config,
    client: Option<kube::Client>,
) -> anyhow::Result<(CaSource, Arc<Authority>)> {
    let source = ca_source(config, client)?;
    let settings = RootSettings {
        trust_domain: config.root.trust_domain.clone(),
        ttl: config.root.root_cert_ttl,
    };
    let (material, created) = source.start(&settings).await.context("loading the CA")?;
    let authority = Arc::new(Authority::new(material).context("checking the CA")?);
    log_authority(&source, &authority, created);
    Ok((source, authority))
}

/// citadel's own serving certificate, kept fresh, in a rustls server config.
fn serving_tls(
    config: &Config,
    authority: &Authority,
    changes: watch::Receiver<Arc<Authority>>,
) -> anyhow::Result<rustls::ServerConfig> {
    let names = config.serving_names();
    let (serving, not_after) = ServingCert::new(authority, names, config.max_cert_ttl)?;
    let serving = Arc::new(serving);
    let tls_config = serving.server_config()?;
    tokio::spawn(tls::keep_fresh(serving, changes, not_after));
    Ok(tls_config)
}

/// Binds both ports and prints the one line tests and scripts using port 0 read.
async fn bind(config: &Config) -> anyhow::Result<(TcpListener, TcpListener)> {
    let grpc = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding the signing port {}", config.addr))?;
    let monitoring = TcpListener::bind(config.monitoring_addr)
        .await
        .with_context(|| format!("binding the monitoring port {}", config.monitoring_addr))?;
    println!(
        "citadel ready grpc={} monitoring={}",
        grpc.local_addr()?,
        monitoring.local_addr()?
    );
    Ok((grpc, monitoring))
}

/// `citadel rotate-root <step>`: one step against the store, then the state in words.
pub async fn rotate_root(args: RotateArgs) -> anyhow::Result<()> {
    let client = kube_client(args.store.kubernetes && args.store.ca_dir.is_none()).await?;
    match (&args.store.ca_dir, client) {
        (Some(dir), _) => rotate_in(&DirStore::new(dir), &args).await,
        (None, Some(client)) => rotate_in(&secret_store(&args.store, client), &args).await,
        (None, None) => anyhow::bail!("give --ca-dir or --kubernetes"),
    }
}

async fn rotate_in<S: CaStore>(store: &S, args: &RotateArgs) -> anyhow::Result<()> {
    let state = match args.action.step() {
        Some(step) => {
            let root = &args.root;
            let create = || root::create(&root.trust_domain, root.root_cert_ttl, SystemTime::now());
            let state = store::rotate(store, step, create).await?;
            println!("{step}: done in {}", store.describe());
            state
        }
        None => store::load(store)
            .await?
            .with_context(|| format!("{} has no CA yet", store.describe()))?,
    };
    println!("{}", rotation::status(&state));
    Ok(())
}

async fn kube_client(wanted: bool) -> anyhow::Result<Option<kube::Client>> {
    if !wanted {
        return Ok(None);
    }
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    Ok(Some(client))
}

fn secret_store(store: &StoreArgs, client: kube::Client) -> SecretStore {
    SecretStore::new(client, &store.ca_namespace, &store.ca_secret)
}

fn ca_source(config: &Config, client: Option<kube::Client>) -> anyhow::Result<CaSource> {
    if let Some(files) = config.intermediate() {
        return Ok(CaSource::Intermediate(files));
    }
    match (&config.store.ca_dir, client) {
        (Some(dir), _) => Ok(CaSource::Dir(DirStore::new(dir))),
        (None, Some(client)) => Ok(CaSource::Secret(Box::new(secret_store(
            &config.store,
            client,
        )))),
        (None, None) => {
            anyhow::bail!("give --ca-dir, --kubernetes, or --ca-cert/--ca-key/--root-cert")
        }
    }
}

fn authenticator(
    config: &Config,
    tokens: Option<Arc<TokenFile>>,
    client: Option<kube::Client>,
) -> anyhow::Result<Arc<dyn Authenticator>> {
    match (tokens, client) {
        (Some(tokens), _) => Ok(tokens),
        (None, Some(client)) => Ok(Arc::new(TokenReviewer::new(client, &config.token_audience))),
        (None, None) => anyhow::bail!(
            "local mode needs --token-file (lines of `<token> <namespace> <service-account>`)"
        ),
    }
}

fn log_authority(source: &CaSource, authority: &Authority, created: bool) {
    let root = authority.root();
    crate::metrics::root_expiry(root.not_after_seconds());
    tracing::info!(
        source = %source.describe(),
        created,
        signer = %authority.signer().subject,
        root = %root.subject,
        root_expires = root.not_after_seconds(),
        trusted_roots = authority.bundle().roots().len(),
        "CA loaded"
    );
}

/// Re-reads the CA and the token file every `interval`; a changed CA replaces the authority
/// (and with it the serving certificate and the published bundle). Errors keep what works.
async fn reload(
    source: CaSource,
    authority: watch::Sender<Arc<Authority>>,
    tokens: Option<Arc<TokenFile>>,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Some(tokens) = &tokens
            && let Err(error) = tokens.reload().await
        {
            tracing::warn!(%error, "token file not reloaded; keeping the previous tokens");
        }
        let material = match source.current().await {
            Ok(material) => material,
            Err(error) => {
                tracing::warn!(%error, "CA not reloaded; keeping the current one");
                continue;
            }
        };
        if &material == authority.borrow().material() {
            continue;
        }
        match Authority::new(material) {
            Ok(new) => {
                log_authority(&source, &new, false);
                authority.send_replace(Arc::new(new));
            }
            Err(error) => tracing::warn!(%error, "changed CA refused; keeping the current one"),
        }
    }
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
