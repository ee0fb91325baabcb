//! Whether the proxy speaks mTLS to an endpoint, and which identities the endpoint may
//! prove: Istio's client-side rule, from the DestinationRule's `trafficPolicy.tls` and the
//! endpoint itself.

use super::Endpoint;

/// The label Istio's injector puts on pods with a sidecar; auto-mTLS trusts it.
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";
/// The value of [`TLS_MODE_LABEL`] meaning "has a sidecar that accepts mTLS".
pub const TLS_MODE_ISTIO: &str = "istio";

/// A DestinationRule `tls.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTlsMode {
    /// Plaintext, whatever the endpoint.
    Disable,
    /// mTLS with the mesh's own certificates.
    IstioMutual,
    /// SIMPLE or MUTUAL (as spelt): TLS with the user's certificates, not supported yet.
    /// Connections fail rather than go out in plaintext.
    Unsupported(&'static str),
}

/// A cluster's (or subset's) upstream TLS setting: `mode: None` when no DestinationRule
/// sets `tls`, which is auto-mTLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    pub mode: Option<UpstreamTlsMode>,
    /// The DestinationRule's `subjectAltNames`: when set, they replace the endpoint's own
    /// identity as the identities the server may prove.
    pub subject_alt_names: Vec<String>,
}

/// How one connection to one endpoint is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsDecision {
    Plaintext,
    /// mTLS; the server must prove one of these SPIFFE IDs.
    Mutual {
        identities: Vec<String>,
    },
}

impl TlsDecision {
    pub fn is_mutual(&self) -> bool {
        matches!(self, Self::Mutual { .. })
    }
}

/// Why no connection may be made: going out in plaintext would silently drop what the
/// DestinationRule asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsRefusal {
    /// `ISTIO_MUTUAL` to an endpoint whose identity nobody knows: the server cannot be
    /// verified.
    #[error(
        "tls.mode ISTIO_MUTUAL to {0}, whose identity is unknown: set tls.subjectAltNames or the endpoint's identity"
    )]
    UnknownIdentity(std::net::SocketAddr),
    #[error("tls.mode {0} (TLS with your own certificates) is not supported yet")]
    Unsupported(&'static str),
}

impl UpstreamTls {
    /// Istio's rule: `ISTIO_MUTUAL` is mTLS, `DISABLE` plaintext; unset is auto-mTLS, mTLS
    /// to endpoints labelled `security.istio.io/tlsMode: istio`.
    ///
    /// Identities are `subjectAltNames`, else the endpoint's `identity`. Auto-mTLS with
    /// neither is plaintext: auto-mTLS is a best-effort upgrade, and a control plane that
    /// does not (yet) send identities must not make every labelled endpoint unreachable.
    /// An explicit `ISTIO_MUTUAL` with neither is [`TlsRefusal::UnknownIdentity`].
    pub fn decide(&self, endpoint: &Endpoint) -> Result<TlsDecision, TlsRefusal> {
        let identities = self.identities(endpoint);
        match self.mode {
            Some(UpstreamTlsMode::Disable) => Ok(TlsDecision::Plaintext),
            Some(UpstreamTlsMode::Unsupported(mode)) => Err(TlsRefusal::Unsupported(mode)),
            Some(UpstreamTlsMode::IstioMutual) if identities.is_empty() => {
                Err(TlsRefusal::UnknownIdentity(endpoint.address))
            }
            Some(UpstreamTlsMode::IstioMutual) => Ok(TlsDecision::Mutual { identities }),
            None if has_sidecar(endpoint) && !identities.is_empty() => {
                Ok(TlsDecision::Mutual { identities })
            }
            None => Ok(TlsDecision::Plaintext),
        }
    }

    fn identities(&self, endpoint: &Endpoint) -> Vec<String> {
        if self.subject_alt_names.is_empty() {
            endpoint.identity.iter().cloned().collect()
        } else {
            self.subject_alt_names.clone()
        }
    }
}

/// Whether the endpoint carries Istio's marker of a sidecar.
pub fn has_sidecar(endpoint: &Endpoint) -> bool {
    endpoint.labels.get(TLS_MODE_LABEL).map(String::as_str) == Some(TLS_MODE_ISTIO)
}

#[cfg(test)]
mod tests;
