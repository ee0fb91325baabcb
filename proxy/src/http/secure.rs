//! Upstream connections over TLS (mesh mTLS, or SIMPLE/MUTUAL origination), pooled apart
//! from plaintext ones: by endpoint and by [`Security`] (the identities the server must
//! prove, or the user's TLS settings), so a connection verified for one never carries a
//! request meant for another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::body::Body;
use super::upstream::{Dial, UpstreamError, handshake_http2};
use crate::identity::CertificateManager;
use crate::tls::{self, Security, TlsError};

type Key = (std::net::SocketAddr, Security);

/// Idle HTTP/1.1 connections kept per key; more are closed after their request.
const MAX_IDLE_HTTP1: usize = 32;

#[derive(Default)]
pub(super) struct SecurePools {
    http1: Mutex<HashMap<Key, Vec<http1::SendRequest<Body>>>>,
    http2: Mutex<HashMap<Key, http2::SendRequest<Body>>>,
}

impl SecurePools {
    pub(super) async fn send(
        &self,
        certs: Option<&Arc<CertificateManager>>,
        dial: &Dial,
        expected: &Security,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let key = (dial.endpoint, expected.clone());
        if dial.http2 {
            let mut sender = match self.idle_http2(&key) {
                Some(sender) => sender,
                None => self.dial_http2(certs, dial, key).await?,
            };
            return Ok(sender.send_request(request).await?);
        }
        let mut sender = match self.idle_http1(&key) {
            Some(sender) => sender,
            None => dial_http1(certs, dial, expected).await?,
        };
        let response = sender.send_request(origin_form(request)).await?;
        if dial.keep_alive {
            let mut pools = self.http1.lock().unwrap_or_else(|p| p.into_inner());
            let idle = pools.entry(key).or_default();
            if idle.len() < MAX_IDLE_HTTP1 {
                idle.push(sender);
            }
        }
        Ok(response)
    }

    /// A pooled HTTP/1.1 connection done with its last response; closed ones are dropped.
    fn idle_http1(&self, key: &Key) -> Option<http1::SendRequest<Body>> {
        let mut pools = self.http1.lock().unwrap_or_else(|p| p.into_inner());
        let idle = pools.get_mut(key)?;
        idle.retain(|s| !s.is_closed());
        let ready = idle.iter().position(http1::SendRequest::is_ready)?;
        Some(idle.swap_remove(ready))
    }

    fn idle_http2(&self, key: &Key) -> Option<http2::SendRequest<Body>> {
        let senders = self.http2.lock().unwrap_or_else(|p| p.into_inner());
        senders.get(key).filter(|s| !s.is_closed()).cloned()
    }

    async fn dial_http2(
        &self,
        certs: Option<&Arc<CertificateManager>>,
        dial: &Dial,
        key: Key,
    ) -> Result<http2::SendRequest<Body>, UpstreamError> {
        let stream = dial_tls(certs, dial, &key.1, &[b"h2"]).await?;
        let sender = handshake_http2(stream, dial).await?;
        let mut senders = self.http2.lock().unwrap_or_else(|p| p.into_inner());
        senders.insert(key, sender.clone());
        Ok(sender)
    }
}

async fn dial_http1(
    certs: Option<&Arc<CertificateManager>>,
    dial: &Dial,
    expected: &Security,
) -> Result<http1::SendRequest<Body>, UpstreamError> {
    let stream = dial_tls(certs, dial, expected, &[b"http/1.1"]).await?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    let endpoint = dial.endpoint;
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%endpoint, %error, "upstream mTLS HTTP/1.1 connection ended");
        }
    });
    Ok(sender)
}

/// TCP then the TLS handshake, each bounded by the cluster's connect timeout.
async fn dial_tls(
    certs: Option<&Arc<CertificateManager>>,
    dial: &Dial,
    expected: &Security,
    alpn: &[&[u8]],
) -> Result<TlsStream<TcpStream>, UpstreamError> {
    // Refused by the DestinationRule (logged when decided): not even dialled.
    if *expected == Security::Refused {
        return Err(UpstreamError::Tls(TlsError::Refused));
    }
    let tcp = tokio::time::timeout(dial.connect_timeout, TcpStream::connect(dial.endpoint))
        .await
        .map_err(|_| UpstreamError::ConnectTimeout)?
        .map_err(UpstreamError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let secured = tokio::time::timeout(
        dial.connect_timeout,
        tls::secure(tcp, certs, expected, alpn),
    )
    .await;
    match secured {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => {
            tls::upstream_failure(dial.endpoint, expected, &error);
            Err(UpstreamError::Tls(error))
        }
        Err(_) => {
            tls::upstream_timeout(dial.endpoint, expected);
            Err(UpstreamError::ConnectTimeout)
        }
    }
}

/// HTTP/1.1 on a connection of its own sends the path, not the absolute URI the pooled
/// client dials by; Host already names the service.
fn origin_form(mut request: Request<Body>) -> Request<Body> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = path.parse().unwrap_or_else(|_| Uri::from_static("/"));
    request
}
