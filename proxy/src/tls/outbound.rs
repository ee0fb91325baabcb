//! Outbound TLS: how a connection to an endpoint is secured ([`expected`]) and the client
//! handshake on it ([`secure`]).

use std::sync::Arc;

use mesh_core::model::{Cluster, Endpoint, TlsDecision};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client};

use super::origination::{self, Origination};
use super::{TlsError, client_config};
use crate::identity::{CertificateManager, Identity};

/// How one upstream connection is secured; `None`: plaintext.
pub type Expected = Option<Security>;

/// A secured upstream connection: what is presented and what the server must prove.
/// Equal values make interchangeable connections, so pools key on them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Security {
    /// Mesh mTLS with the workload certificate: the server must prove one of these
    /// SPIFFE identities.
    Mesh(Arc<[Identity]>),
    /// TLS with the user's certificates (DestinationRule SIMPLE or MUTUAL).
    Originate(Arc<Origination>),
    /// What the DestinationRule asks cannot be done (the reason is logged when decided):
    /// no connection is made, and nothing goes out in plaintext.
    Refused,
}

impl Security {
    /// As the DestinationRule spells the mode, for logs and metrics.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Mesh(_) => "ISTIO_MUTUAL",
            Self::Originate(origination) => origination.mode(),
            Self::Refused => "refused",
        }
    }
}

/// Istio's client-side rule for one endpoint of `cluster` (or `subset`). An endpoint that
/// may not be reached (ISTIO_MUTUAL without a known identity, a `credentialName`, an
/// identity that does not parse) gets [`Security::Refused`]: [`secure`] then refuses to
/// connect, and the reason is logged here.
pub fn expected_or_refused(
    cluster: &Cluster,
    subset: Option<&str>,
    endpoint: &Endpoint,
) -> Expected {
    expected(cluster, subset, endpoint).unwrap_or_else(|error| {
        tracing::warn!(endpoint = %endpoint.address, cluster = %cluster.name(subset), %error, "upstream TLS: not connecting");
        Some(Security::Refused)
    })
}

/// Istio's client-side rule for one endpoint of `cluster` (or `subset`).
pub fn expected(
    cluster: &Cluster,
    subset: Option<&str>,
    endpoint: &Endpoint,
) -> Result<Expected, String> {
    let tls = cluster.tls_of(subset);
    let decision = tls.decide(endpoint).map_err(|e| e.to_string())?;
    let identities = match decision {
        TlsDecision::Plaintext => return Ok(None),
        TlsDecision::Originate => {
            let loaded = origination::loaded(tls, &cluster.host).map_err(|e| e.to_string())?;
            return Ok(Some(Security::Originate(loaded)));
        }
        TlsDecision::Mutual { identities } => identities,
    };
    identities
        .iter()
        .map(|id| {
            id.parse::<Identity>()
                .map_err(|e| format!("identity {id:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|ids| Some(Security::Mesh(ids.into())))
}

/// The client side of TLS on `tcp`. Mesh mTLS offers only `alpn` (HTTP: the one protocol
/// the caller will speak; opaque TCP: none), and needs the workload certificate (none
/// without `--ca-addr`). SIMPLE and MUTUAL offer `h2` when `alpn` has it, else nothing.
pub async fn secure(
    tcp: TcpStream,
    certs: Option<&Arc<CertificateManager>>,
    security: &Security,
    alpn: &[&[u8]],
) -> Result<client::TlsStream<TcpStream>, TlsError> {
    let expected = match security {
        Security::Refused => return Err(TlsError::Refused),
        Security::Originate(origination) => {
            return origination.connect(tcp, alpn.contains(&&b"h2"[..])).await;
        }
        Security::Mesh(expected) if expected.is_empty() => return Err(TlsError::Refused),
        Security::Mesh(expected) => expected,
    };
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

/// Outbound handshakes that failed, by `mode` (ISTIO_MUTUAL, SIMPLE, MUTUAL) and `reason`
/// ([`TlsError::reason`], or `timeout`).
pub const UPSTREAM_HANDSHAKE_FAILURES: &str = "mesh_upstream_tls_handshake_failures_total";

/// Counts and logs a failed outbound handshake. A certificate the proxy refused is a
/// warning (a wrong CA, an expired or misnamed server: what the user must fix); the rest
/// is debug.
pub fn upstream_failure(endpoint: std::net::SocketAddr, security: &Security, error: &TlsError) {
    let reason = error.reason();
    match error {
        TlsError::Refused => return,
        TlsError::NoCaAddr => tracing::warn!(
            %endpoint,
            "upstream wants mTLS, which needs --ca-addr (a workload certificate); refusing to send plaintext"
        ),
        _ if matches!(
            reason,
            "expired" | "not_yet_valid" | "unknown_ca" | "bad_name" | "bad_certificate"
        ) =>
        {
            tracing::warn!(%endpoint, mode = security.mode(), %error, "upstream TLS: server certificate refused")
        }
        _ => {
            tracing::debug!(%endpoint, mode = security.mode(), %error, "upstream TLS handshake failed")
        }
    }
    metrics::counter!(UPSTREAM_HANDSHAKE_FAILURES, "mode" => security.mode(), "reason" => reason)
        .increment(1);
}

/// Counts a handshake that outlived the connect timeout.
pub fn upstream_timeout(endpoint: std::net::SocketAddr, security: &Security) {
    tracing::debug!(%endpoint, mode = security.mode(), "upstream TLS handshake timed out");
    metrics::counter!(UPSTREAM_HANDSHAKE_FAILURES, "mode" => security.mode(), "reason" => "timeout")
        .increment(1);
}
