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

/// One client per connect timeout (a cluster setting), created on first use.
#[derive(Default)]
pub struct Upstreams {
    clients: Mutex<HashMap<Duration, HttpClient>>,
}

impl Upstreams {
    pub fn client(&self, connect_timeout: Duration) -> HttpClient {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(connect_timeout)
            .or_insert_with(|| new_client(connect_timeout))
            .clone()
    }
}

fn new_client(connect_timeout: Duration) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .retry_canceled_requests(true)
        .build(connector)
}
