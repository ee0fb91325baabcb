//! The binary's flags and wiring: config, certificate, namespace labels, the caBundle
//! keeper, the HTTPS server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Serialize;
use tokio::sync::watch;

use crate::config::Config;
use crate::namespaces::Namespaces;
use crate::tls::{CertFiles, DEFAULT_NAMES, Resolver, ServingCert};
use crate::webhook::Injector;

#[derive(Parser, Debug, Clone, Serialize)]
#[command(
    name = "injector",
    version,
    about = "mesh's sidecar injector: the mutating admission webhook"
)]
pub struct Args {
    /// Where to serve HTTPS (`/inject`, `/healthz`).
    #[arg(long, env = "MESH_INJECTOR_ADDR", default_value = "0.0.0.0:15017")]
    pub addr: SocketAddr,
    /// The injection config (YAML, the mounted ConfigMap); defaults without it.
    #[arg(long, env = "MESH_INJECTOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// The serving certificate chain (PEM); without it a self-signed one is made.
    #[arg(long, env = "MESH_INJECTOR_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    #[arg(long, env = "MESH_INJECTOR_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The roots for the caBundle, when not the last certificate of `--cert`.
    #[arg(long, env = "MESH_INJECTOR_CA_BUNDLE", requires = "cert")]
    pub ca_bundle: Option<PathBuf>,
    /// Names for the self-signed certificate, added to the Service's and loopback's.
    #[arg(long = "san", env = "MESH_INJECTOR_SANS", value_delimiter = ',')]
    pub sans: Vec<String>,
    /// No Kubernetes API: trust the webhook's namespaceSelector for the namespace label and
    /// leave the caBundle alone. For local runs and benchmarks.
    #[arg(long, env = "MESH_INJECTOR_STANDALONE")]
    pub standalone: bool,
    /// How often the certificate files are read again and the caBundle is checked and
    /// repaired, seconds.
    #[arg(long, env = "MESH_INJECTOR_CA_BUNDLE_EVERY", default_value_t = 60)]
    pub ca_bundle_every: u64,
    /// Log filter.
    #[arg(long, env = "MESH_LOG", default_value = "info")]
    pub log: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    tracing::info!(
        args = %serde_json::to_string(&args).unwrap_or_default(),
        config = %serde_json::to_string(&config).unwrap_or_default(),
        "starting"
    );
    let cert = serving_cert(&args)?;
    let resolver = Resolver::new(&cert)?;
    let tls = crate::tls::server_config(resolver.clone())?;
    let every = Duration::from_secs(args.ca_bundle_every.max(1));
    let (bundle, bundle_rx) = watch::channel(cert.ca_bundle_pem.clone());
    if let Some(files) = cert_files(&args) {
        tokio::spawn(files.watch(cert.clone(), resolver, bundle, every));
    }
    let namespaces = if args.standalone {
        Namespaces::TrustSelector
    } else {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the Kubernetes API (or run with --standalone)")?;
        let (namespaces, watch) = Namespaces::watch(client.clone());
        tokio::spawn(watch);
        tokio::spawn(crate::ca_bundle::keep_current(
            client,
            config.webhook_configuration.clone(),
            bundle_rx,
            config.failure_policy,
            every,
        ));
        namespaces
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    // One line on stdout with the bound address: tests and the bench start it on port 0.
    println!("injector ready addr={}", listener.local_addr()?);
    let injector = Arc::new(Injector {
        config: Arc::new(config),
        namespaces,
    });
    tokio::select! {
        () = crate::server::serve(listener, tls, injector) => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        () = terminate() => tracing::info!("SIGTERM"),
    }
    Ok(())
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

fn cert_files(args: &Args) -> Option<CertFiles> {
    Some(CertFiles {
        cert: args.cert.clone()?,
        key: args.key.clone()?,
        ca: args.ca_bundle.clone(),
    })
}

fn serving_cert(args: &Args) -> anyhow::Result<ServingCert> {
    match cert_files(args) {
        Some(files) => Ok(files.load()?),
        None => {
            let names: Vec<String> = DEFAULT_NAMES
                .iter()
                .map(|n| (*n).to_owned())
                .chain(args.sans.iter().cloned())
                .collect();
            tracing::info!(?names, "self-signed serving certificate");
            Ok(ServingCert::self_signed(&names)?)
        }
    }
}
