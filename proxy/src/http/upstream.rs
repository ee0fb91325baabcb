//! Pooled connections to upstream endpoints.
//!
//! hyper-util's client keeps idle connections per endpoint and, when a pooled connection
//! turns out to be closed before the request was written, retries it on a new one: the
//! classic intermittent "503 on keep-alive" cannot happen here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::body::Body;

pub type HttpClient = Client<HttpConnector, Body>;

/// Istio's default idle timeout for upstream connections.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// One client per (connect timeout, idle timeout), cluster settings, created on first use.
#[derive(Default)]
pub struct Upstreams {
    clients: Mutex<HashMap<(Duration, Option<Duration>), HttpClient>>,
}

impl Upstreams {
    pub fn client(&self, connect_timeout: Duration, idle_timeout: Option<Duration>) -> HttpClient {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry((connect_timeout, idle_timeout))
            .or_insert_with(|| {
                new_client(
                    connect_timeout,
                    idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
                )
            })
            .clone()
    }
}

fn new_client(connect_timeout: Duration, idle_timeout: Duration) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(idle_timeout)
        .retry_canceled_requests(true)
        .build(connector)
}
