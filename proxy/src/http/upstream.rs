//! Connections to upstream endpoints.
//!
//! HTTP/1.1: hyper-util's pooled client keeps idle connections per endpoint and, when a
//! pooled connection turns out to be closed before the request was written, retries it on a
//! new one, so the classic intermittent "503 on keep-alive" cannot happen here.
//!
//! HTTP/2 (gRPC, and every HTTP/2 client): one multiplexed connection per endpoint,
//! carrying the request's own `:authority`, replaced when it closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::body::Body;
use super::secure::SecurePools;
use crate::identity::CertificateManager;
use crate::tls::{Expected, TlsError};

type HttpClient = Client<HttpConnector, Body>;

/// Istio's default idle timeout for upstream connections.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// How to reach one endpoint: the cluster's settings that shape its connections.
#[derive(Debug, Clone)]
pub struct Dial {
    pub endpoint: SocketAddr,
    pub connect_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub http2: bool,
    /// False with `maxRequestsPerConnection: 1`: each HTTP/1.1 connection carries one request.
    pub keep_alive: bool,
    /// mTLS, and who the endpoint must prove to be; `None`: plaintext.
    pub tls: Expected,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error(transparent)]
    Http1(#[from] hyper_util::client::legacy::Error),
    /// Any hyper connection error (HTTP/2, and HTTP/1.1 over mTLS).
    #[error(transparent)]
    Http2(#[from] hyper::Error),
    #[error(transparent)]
    Tls(TlsError),
}

impl UpstreamError {
    /// Whether the connection closed (or was reset) before a response head came back: on a
    /// pooled connection, the upstream closed it (its idle timeout) as the request went out.
    pub fn closed_before_response(&self) -> bool {
        if self.is_connect() {
            return false;
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = source {
            if let Some(hyper_error) = error.downcast_ref::<hyper::Error>()
                && (hyper_error.is_incomplete_message() || hyper_error.is_canceled())
            {
                return true;
            }
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                )
            {
                return true;
            }
            source = error.source();
        }
        false
    }

    /// Whether the request never reached the endpoint (Envoy's "connect failure").
    pub fn is_connect(&self) -> bool {
        match self {
            UpstreamError::Connect(_) | UpstreamError::ConnectTimeout | UpstreamError::Tls(_) => {
                true
            }
            UpstreamError::Http1(e) => e.is_connect(),
            UpstreamError::Http2(_) => false,
        }
    }
}

#[derive(Default)]
pub struct Upstreams {
    /// One HTTP/1.1 client per (connect timeout, idle timeout), created on first use.
    http1: Mutex<HashMap<(Duration, Option<Duration>), HttpClient>>,
    http2: Mutex<HashMap<SocketAddr, http2::SendRequest<Body>>>,
    /// mTLS connections, pooled apart.
    secure: SecurePools,
    /// The workload certificate for mTLS upstreams; `None` without `--ca-addr`.
    certs: Option<Arc<CertificateManager>>,
}

impl Upstreams {
    pub fn new(certs: Option<Arc<CertificateManager>>) -> Self {
        Self {
            certs,
            ..Self::default()
        }
    }

    /// Sends `request` (its URI names the endpoint for HTTP/1.1, the authority for HTTP/2),
    /// over mTLS when `dial.tls` says so.
    pub async fn send(
        &self,
        dial: &Dial,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        if let Some(expected) = &dial.tls {
            return self
                .secure
                .send(self.certs.as_ref(), dial, expected, request)
                .await;
        }
        if dial.http2 {
            let mut sender = self.http2_sender(dial).await?;
            return Ok(sender.send_request(request).await?);
        }
        Ok(self.http1_client(dial).request(request).await?)
    }

    fn http1_client(&self, dial: &Dial) -> HttpClient {
        let mut clients = self.http1.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry((dial.connect_timeout, dial.idle_timeout))
            .or_insert_with(|| {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(dial.connect_timeout));
                connector.set_nodelay(true);
                connector.enforce_http(true);
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(dial.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT))
                    .retry_canceled_requests(true)
                    .build(connector)
            })
            .clone()
    }

    async fn http2_sender(&self, dial: &Dial) -> Result<http2::SendRequest<Body>, UpstreamError> {
        let existing = {
            let senders = self.http2.lock().unwrap_or_else(|p| p.into_inner());
            senders
                .get(&dial.endpoint)
                .filter(|s| !s.is_closed())
                .cloned()
        };
        if let Some(sender) = existing {
            return Ok(sender);
        }
        // Two requests may race to dial; the later one's connection simply replaces the
        // earlier in the map, and both work.
        let stream = tokio::time::timeout(dial.connect_timeout, TcpStream::connect(dial.endpoint))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout)?
            .map_err(UpstreamError::Connect)?;
        let _ = stream.set_nodelay(true);
        let sender = handshake_http2(stream, dial).await?;
        let mut senders = self.http2.lock().unwrap_or_else(|p| p.into_inner());
        senders.insert(dial.endpoint, sender.clone());
        Ok(sender)
    }
}

/// An HTTP/2 client connection over `io` (plaintext or mTLS), its driver spawned, with the
/// cluster's keepalive: the sender to pool.
pub(super) async fn handshake_http2<IO>(
    io: IO,
    dial: &Dial,
) -> Result<http2::SendRequest<Body>, UpstreamError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    if let Some(idle) = dial.idle_timeout {
        builder
            .keep_alive_interval(Some(idle))
            .keep_alive_while_idle(false);
    }
    let (sender, connection) = builder.handshake(TokioIo::new(io)).await?;
    let endpoint = dial.endpoint;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%endpoint, %error, "upstream HTTP/2 connection ended");
        }
    });
    Ok(sender)
}
