//! TLS to services outside the mesh: DestinationRule `SIMPLE` (verify the server) and
//! `MUTUAL` (also present the user's client certificate), with the user's PEM files.
//!
//! The files are read when a snapshot arrives ([`load_all`]): one that cannot be read or
//! parsed refuses the snapshot (a NACK to pilot; the last good config keeps serving), so a
//! mistake shows at once rather than as failed requests later. What is loaded is kept by
//! the settings it came from, for the data path to find from the compiled cluster alone;
//! each applied snapshot reloads the files and replaces the whole set.
//!
//! ALPN follows Istio: for SIMPLE and MUTUAL it offers `h2` only when the connection will
//! speak HTTP/2 (an HTTP/2 client, or `h2UpgradePolicy: UPGRADE`), and nothing otherwise,
//! so a server that knows no ALPN is never asked to choose. Mesh mTLS offers the one
//! protocol the caller speaks (see [`super::secure`]).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};

use mesh_core::model::{Cluster, ProxyConfig, UpstreamTls, UpstreamTlsMode};
use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client};

use super::config::provider;
use super::user_verify::{SkipVerify, SubjectAltNames};
use super::{TlsError, pem_files, roots};

/// One SIMPLE or MUTUAL setting, loaded: what a connection needs to originate TLS.
pub struct Origination {
    /// What it was loaded from; two equal settings make interchangeable connections.
    pub settings: UpstreamTls,
    /// Sent as SNI, and what the server's certificate must name without `subjectAltNames`.
    pub server_name: ServerName<'static>,
    /// Without ALPN (HTTP/1.1, TCP) and with `h2` only (HTTP/2).
    no_alpn: Arc<ClientConfig>,
    h2: Arc<ClientConfig>,
}

/// Why a SIMPLE or MUTUAL setting could not be loaded; names the field and the file.
#[derive(Debug, thiserror::Error)]
pub enum OriginationError {
    #[error(transparent)]
    File(#[from] super::pem_files::PemFileError),
    #[error("tls.mode MUTUAL needs tls.clientCertificate and tls.privateKey (PEM file paths)")]
    NoClientCertificate,
    #[error(
        "tls.caCertificates is not set and no system CA bundle was found (looked at {0}): set tls.caCertificates"
    )]
    NoSystemRoots(String),
    #[error("cannot send {0:?} as the TLS server name: set tls.sni to the server's DNS name")]
    ServerName(String),
    #[error("tls.clientCertificate and tls.privateKey: {0}")]
    ClientKey(rustls::Error),
}

/// A snapshot's SIMPLE or MUTUAL setting that could not be loaded, and where it is.
#[derive(Debug, thiserror::Error)]
#[error("cluster {cluster}: {source}")]
pub struct LoadError {
    pub cluster: String,
    pub source: OriginationError,
}

type Key = (UpstreamTls, String);

/// Loaded settings by what they were loaded from (with the cluster's host, which the
/// server name defaults to).
static LOADED: LazyLock<Mutex<HashMap<Key, Arc<Origination>>>> = LazyLock::new(Mutex::default);

/// Loads every SIMPLE and MUTUAL setting of `config` (clusters and subsets) and makes them
/// the set the data path reads; nothing changes if one fails. A `credentialName` is not
/// loaded: its connections are refused, and that is said here once per snapshot.
pub fn load_all(config: &ProxyConfig) -> Result<(), LoadError> {
    let mut loaded = HashMap::new();
    for cluster in config.clusters() {
        for (subset, tls) in settings_of(cluster) {
            if !tls.mode.is_some_and(UpstreamTlsMode::is_origination) {
                continue;
            }
            if let Some(secret) = &tls.credential_name {
                tracing::warn!(cluster = %cluster.name(subset), credential_name = %secret, "tls.credentialName is not supported yet: connections to this cluster are refused; set caCertificates (clientCertificate, privateKey) file paths instead");
                continue;
            }
            let key = (tls.clone(), cluster.host.clone());
            if loaded.contains_key(&key) {
                continue;
            }
            let origination =
                Origination::load(tls, &cluster.host).map_err(|source| LoadError {
                    cluster: cluster.name(subset),
                    source,
                })?;
            loaded.insert(key, Arc::new(origination));
        }
    }
    *LOADED.lock().unwrap_or_else(|p| p.into_inner()) = loaded;
    Ok(())
}

/// The loaded `tls` for a cluster of `host`. A setting [`load_all`] has not seen (a
/// request still on the config before the last one) is loaded now.
pub fn loaded(tls: &UpstreamTls, host: &str) -> Result<Arc<Origination>, OriginationError> {
    let key = (tls.clone(), host.to_owned());
    if let Some(found) = LOADED.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(found.clone());
    }
    let origination = Arc::new(Origination::load(tls, host)?);
    let mut map = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    map.insert(key, origination.clone());
    Ok(origination)
}

/// The TLS in force for `cluster` and each of its subsets, for `/clusters` and
/// `/config_dump`: the mode (`auto`: auto-mTLS) and for SIMPLE and MUTUAL what is used,
/// and whether it is loaded or why connections are refused. Off the data path: it may
/// read the files of a setting not loaded yet.
pub fn cluster_view(cluster: &Cluster) -> serde_json::Value {
    let mut view = setting_view(&cluster.tls, &cluster.host);
    let subsets: serde_json::Map<String, serde_json::Value> = cluster
        .subsets
        .iter()
        .filter(|s| s.tls != cluster.tls)
        .map(|s| (s.subset.name.clone(), setting_view(&s.tls, &cluster.host)))
        .collect();
    if !subsets.is_empty() {
        view["subsets"] = subsets.into();
    }
    view
}

fn setting_view(tls: &UpstreamTls, host: &str) -> serde_json::Value {
    let mut view = serde_json::json!({ "mode": tls.mode_name() });
    if !tls.subject_alt_names.is_empty() {
        view["subjectAltNames"] = tls.subject_alt_names.clone().into();
    }
    if !tls.mode.is_some_and(UpstreamTlsMode::is_origination) {
        return view;
    }
    view["sni"] = tls.server_name(host).into();
    view["caCertificates"] = tls
        .ca_certificates
        .as_deref()
        .unwrap_or("system roots")
        .into();
    if let Some(cert) = &tls.client_certificate {
        view["clientCertificate"] = cert.as_str().into();
    }
    if tls.insecure_skip_verify {
        view["insecureSkipVerify"] = true.into();
    }
    view["status"] = match &tls.credential_name {
        Some(secret) => format!("refused: credentialName {secret:?} is not supported yet").into(),
        None => match loaded(tls, host) {
            Ok(_) => "loaded".into(),
            Err(error) => format!("refused: {error}").into(),
        },
    };
    view
}

/// The cluster's own setting and each subset's, with the subset's name.
fn settings_of(cluster: &Cluster) -> impl Iterator<Item = (Option<&str>, &UpstreamTls)> {
    std::iter::once((None, &cluster.tls)).chain(
        cluster
            .subsets
            .iter()
            .map(|s| (Some(s.subset.name.as_str()), &s.tls)),
    )
}

impl Origination {
    /// Reads the files `tls` names and builds the client configs.
    pub fn load(tls: &UpstreamTls, host: &str) -> Result<Self, OriginationError> {
        let name = tls.server_name(host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| OriginationError::ServerName(name.to_owned()))?;
        let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
            Arc::new(SkipVerify(provider()))
        } else {
            let roots = match &tls.ca_certificates {
                Some(path) => Arc::new(pem_files::roots("caCertificates", path)?),
                None => roots::system().map_err(OriginationError::NoSystemRoots)?,
            };
            if tls.subject_alt_names.is_empty() {
                WebPkiServerVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| {
                        let path = tls.ca_certificates.as_deref().unwrap_or_default();
                        pem_files::PemFileError::invalid("caCertificates", path, e)
                    })?
            } else {
                Arc::new(SubjectAltNames::new(
                    roots,
                    tls.subject_alt_names.clone(),
                    provider(),
                ))
            }
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = if tls.mode == Some(UpstreamTlsMode::Mutual) {
            let (Some(cert), Some(key)) = (&tls.client_certificate, &tls.private_key) else {
                return Err(OriginationError::NoClientCertificate);
            };
            builder
                .with_client_auth_cert(
                    pem_files::certificates("clientCertificate", cert)?,
                    pem_files::private_key("privateKey", key)?,
                )
                .map_err(OriginationError::ClientKey)?
        } else {
            builder.with_no_client_auth()
        };
        let mut h2 = config.clone();
        h2.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            settings: tls.clone(),
            server_name,
            no_alpn: Arc::new(config),
            h2: Arc::new(h2),
        })
    }

    /// The client handshake on `tcp`; `h2` when the connection will speak HTTP/2.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        h2: bool,
    ) -> Result<client::TlsStream<TcpStream>, TlsError> {
        let config = if h2 { &self.h2 } else { &self.no_alpn };
        let connector = TlsConnector::from(config.clone());
        connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(TlsError::originate)
    }

    /// `SIMPLE` or `MUTUAL`.
    pub fn mode(&self) -> &'static str {
        self.settings.mode_name()
    }
}

impl PartialEq for Origination {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings && self.server_name == other.server_name
    }
}

impl Eq for Origination {}

impl Hash for Origination {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.settings.hash(state);
        self.server_name.to_str().hash(state);
    }
}

impl std::fmt::Debug for Origination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origination")
            .field("mode", &self.mode())
            .field("server_name", &self.server_name.to_str())
            .finish()
    }
}

#[cfg(test)]
#[path = "origination_tests.rs"]
mod tests;
