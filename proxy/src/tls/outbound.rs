//! Outbound mTLS: which endpoints get it ([`expected`]) and the client handshake on an
//! upstream connection ([`secure`]).

use std::sync::Arc;

use mesh_core::model::{Cluster, Endpoint, TlsDecision};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client};

use super::{TlsError, client_config};
use crate::identity::{CertificateManager, Identity};

/// The identities an upstream server must prove; `None`: plaintext.
pub type Expected = Option<Arc<[Identity]>>;

/// Istio's client-side rule for one endpoint of `cluster` (or `subset`). An endpoint that
/// may not be reached (ISTIO_MUTUAL without a known identity, SIMPLE/MUTUAL, an identity
/// that does not parse) gets an empty list: [`secure`] then refuses to connect, and the
/// reason is logged here.
pub fn expected_or_refused(
    cluster: &Cluster,
    subset: Option<&str>,
    endpoint: &Endpoint,
) -> Expected {
    expected(cluster, subset, endpoint).unwrap_or_else(|error| {
        tracing::warn!(endpoint = %endpoint.address, cluster = %cluster.name(subset), %error, "upstream TLS: not connecting");
        Some(Arc::from([]))
    })
}

/// Istio's client-side rule for one endpoint of `cluster` (or `subset`).
pub fn expected(
    cluster: &Cluster,
    subset: Option<&str>,
    endpoint: &Endpoint,
) -> Result<Expected, String> {
    let decision = cluster
        .tls_of(subset)
        .decide(endpoint)
        .map_err(|e| e.to_string())?;
    let TlsDecision::Mutual { identities } = decision else {
        return Ok(None);
    };
    identities
        .iter()
        .map(|id| {
            id.parse::<Identity>()
                .map_err(|e| format!("identity {id:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|ids| Some(ids.into()))
}

/// The client side of mTLS on `tcp`, offering only `alpn` (HTTP: the one protocol the
/// caller will speak; opaque TCP: none). Without a manager (no `--ca-addr`) there is no certificate to present.
pub async fn secure(
    tcp: TcpStream,
    certs: Option<&Arc<CertificateManager>>,
    expected: &[Identity],
    alpn: &[&[u8]],
) -> Result<client::TlsStream<TcpStream>, TlsError> {
    if expected.is_empty() {
        return Err(TlsError::NoIdentity);
    }
    let Some(manager) = certs else {
        return Err(TlsError::NoCaAddr);
    };
    if manager.current().is_none() {
        return Err(TlsError::NoCertificate);
    }
    let mut config = (*client_config(manager, expected)).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::IpAddress(std::net::IpAddr::from([0, 0, 0, 0]).into());
    Ok(TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}
