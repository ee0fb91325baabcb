//! JWKS for RequestAuthentication rules that name a `jwksUri`: pilot fetches the keys and
//! sends them inline, as istiod does, so proxies never reach out to an identity provider.
//!
//! One cache for the process (istiod's `jwksResolver` is one too): the first generation
//! that needs a URI starts a task that fetches it, refreshes it every
//! [`REFRESH_INTERVAL`] and retries failures with back-off; every change of what it holds
//! wakes the push loop ([`JwksResolver::updates`]). Until keys arrive the rule goes out
//! without them and proxies refuse that issuer's tokens, naming why. A refresh that fails
//! keeps the last good keys. `file://` URIs (local mode) are read at every generation.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_core::authn::Jwks;
use mesh_core::error_text::chain;
use tokio::sync::watch;

use crate::lock::lock;
use crate::metrics as m;

/// How often fetched keys are fetched again: Istio's `PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(20 * 60);
/// Istio's default `jwtRules[].timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A key set is small; anything bigger is not one.
const MAX_BODY: usize = 1 << 20;
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct JwksResolver {
    entries: Mutex<HashMap<String, Entry>>,
    updates: watch::Sender<u64>,
}

#[derive(Clone, Debug, PartialEq)]
enum Entry {
    Fetching,
    Ready(String),
    Failed(String),
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

impl JwksResolver {
    /// The process's resolver.
    pub fn global() -> &'static JwksResolver {
        static GLOBAL: OnceLock<JwksResolver> = OnceLock::new();
        GLOBAL.get_or_init(|| JwksResolver {
            entries: Mutex::default(),
            updates: watch::channel(0).0,
        })
    }

    /// Changes whenever fetched keys change: the push loop builds a new generation.
    pub fn updates(&self) -> watch::Receiver<u64> {
        self.updates.subscribe()
    }

    /// The key set at `uri` as JSON, or why there is none yet.
    pub fn resolve(&'static self, uri: &str, timeout: Option<Duration>) -> Result<String, String> {
        if let Some(path) = uri.strip_prefix("file://") {
            let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
            Jwks::parse(&text).map_err(|e| format!("{path}: {e}"))?;
            return Ok(text);
        }
        let mut entries = lock(&self.entries);
        match entries.get(uri) {
            Some(Entry::Ready(text)) => Ok(text.clone()),
            Some(Entry::Failed(error)) => Err(error.clone()),
            Some(Entry::Fetching) => Err(format!("the keys at {uri} are being fetched")),
            None => {
                // No runtime (a unit test indexing config): nothing can be fetched.
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return Err(format!("the keys at {uri} have not been fetched"));
                };
                entries.insert(uri.to_owned(), Entry::Fetching);
                let uri = uri.to_owned();
                runtime.spawn(self.keep_fetched(uri.clone(), timeout.unwrap_or(DEFAULT_TIMEOUT)));
                Err(format!("the keys at {uri} are being fetched"))
            }
        }
    }

    async fn keep_fetched(&'static self, uri: String, timeout: Duration) {
        let client = match client() {
            Ok(client) => client,
            Err(error) => {
                self.store(&uri, Err(error));
                return;
            }
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            let fetched = fetch(&client, &uri, timeout).await;
            let wait = if fetched.is_ok() {
                backoff = Duration::from_secs(1);
                REFRESH_INTERVAL
            } else {
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            };
            self.store(&uri, fetched);
            tokio::time::sleep(wait).await;
        }
    }

    fn store(&self, uri: &str, fetched: Result<String, String>) {
        let result = if fetched.is_ok() {
            "success"
        } else {
            "failure"
        };
        metrics::counter!(m::JWKS_FETCHES, "result" => result).increment(1);
        let changed = {
            let mut entries = lock(&self.entries);
            let previous = entries.get(uri).cloned();
            let next = match (fetched, previous.clone()) {
                (Ok(text), _) => Entry::Ready(text),
                // A failed refresh keeps the last good keys.
                (Err(error), Some(Entry::Ready(text))) => {
                    tracing::warn!(%uri, %error, "refreshing JWKS failed; keeping the last keys");
                    Entry::Ready(text)
                }
                (Err(error), _) => {
                    tracing::warn!(%uri, %error, "fetching JWKS failed; tokens of its issuer are refused until it succeeds");
                    Entry::Failed(error)
                }
            };
            let changed = previous.as_ref() != Some(&next);
            if changed && matches!(next, Entry::Ready(_)) {
                tracing::info!(%uri, "JWKS fetched");
            }
            entries.insert(uri.to_owned(), next);
            changed
        };
        if changed {
            self.updates.send_modify(|n| *n += 1);
        }
    }
}

fn client() -> Result<HttpsClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("loading the system's root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

async fn fetch(client: &HttpsClient, uri: &str, timeout: Duration) -> Result<String, String> {
    let parsed: http::Uri = uri.parse().map_err(|e| format!("{uri}: {e}"))?;
    let exchange = async {
        let response = client
            .get(parsed)
            .await
            .map_err(|e| format!("GET {uri}: {}", chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {uri}: HTTP {status}"));
        }
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("GET {uri}: reading the body: {e}"))?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| format!("GET {uri}: the body is not UTF-8"))
    };
    let text = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("GET {uri}: no answer within {timeout:?}"))??;
    Jwks::parse(&text).map_err(|e| format!("{uri}: {e}"))?;
    Ok(text)
}
