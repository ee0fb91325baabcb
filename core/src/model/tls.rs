//! How the proxy secures a connection to an endpoint, and what the server must prove:
//! Istio's client-side rule, from the DestinationRule's `trafficPolicy.tls` and the endpoint
//! itself. Mesh mTLS (`ISTIO_MUTUAL`, auto-mTLS) checks SPIFFE identities with the mesh's
//! certificates; `SIMPLE` and `MUTUAL` originate TLS to services outside the mesh with the
//! user's files, which the proxy loads when the config arrives.

use super::Endpoint;

/// The label Istio's injector puts on pods with a sidecar; auto-mTLS trusts it.
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";
/// The value of [`TLS_MODE_LABEL`] meaning "has a sidecar that accepts mTLS".
pub const TLS_MODE_ISTIO: &str = "istio";

/// A DestinationRule `tls.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamTlsMode {
    /// Plaintext, whatever the endpoint.
    Disable,
    /// TLS that verifies the server (`caCertificates`, else the system's roots).
    Simple,
    /// As [`Self::Simple`], presenting the user's client certificate.
    Mutual,
    /// mTLS with the mesh's own certificates.
    IstioMutual,
}

impl UpstreamTlsMode {
    /// As the DestinationRule spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "DISABLE",
            Self::Simple => "SIMPLE",
            Self::Mutual => "MUTUAL",
            Self::IstioMutual => "ISTIO_MUTUAL",
        }
    }

    /// Whether the proxy originates TLS with the user's certificates.
    pub fn is_origination(self) -> bool {
        matches!(self, Self::Simple | Self::Mutual)
    }
}

/// A cluster's (or subset's) upstream TLS setting: `mode: None` when no DestinationRule
/// sets `tls`, which is auto-mTLS. The file fields are paths on the proxy's filesystem, as
/// Istio's are on the sidecar's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UpstreamTls {
    pub mode: Option<UpstreamTlsMode>,
    /// The DestinationRule's `subjectAltNames`. Mesh mTLS: they replace the endpoint's own
    /// identity as the identities the server may prove. SIMPLE and MUTUAL: the server's
    /// certificate must name one of them (DNS or URI SAN), instead of the SNI name.
    pub subject_alt_names: Vec<String>,
    /// PEM CA bundle that verifies the server; `None`: the system's roots.
    pub ca_certificates: Option<String>,
    /// PEM certificate chain presented by MUTUAL.
    pub client_certificate: Option<String>,
    /// PEM private key of `client_certificate`.
    pub private_key: Option<String>,
    /// A Kubernetes Secret with the files: not supported by the sidecar yet.
    pub credential_name: Option<String>,
    /// The server name sent; `None`: the destination host.
    pub sni: Option<String>,
    /// Accept any server certificate (SIMPLE and MUTUAL only).
    pub insecure_skip_verify: bool,
}

/// How one connection to one endpoint is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsDecision {
    Plaintext,
    /// mTLS; the server must prove one of these SPIFFE IDs.
    Mutual {
        identities: Vec<String>,
    },
    /// SIMPLE or MUTUAL: TLS with the user's certificates, as [`UpstreamTls`] says.
    Originate,
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
    #[error(
        "tls.credentialName {0:?}: certificates from a Kubernetes Secret are not supported by the sidecar yet; mount the files and set tls.caCertificates (and tls.clientCertificate, tls.privateKey for MUTUAL)"
    )]
    CredentialName(String),
}

impl UpstreamTls {
    /// Istio's rule: `ISTIO_MUTUAL` is mTLS, `DISABLE` plaintext, `SIMPLE` and `MUTUAL`
    /// originate TLS with the user's certificates; unset is auto-mTLS, mTLS to endpoints
    /// labelled `security.istio.io/tlsMode: istio`.
    ///
    /// Mesh identities are `subjectAltNames`, else the endpoint's `identity`. Auto-mTLS with
    /// neither is plaintext: auto-mTLS is a best-effort upgrade, and a control plane that
    /// does not (yet) send identities must not make every labelled endpoint unreachable.
    /// An explicit `ISTIO_MUTUAL` with neither is [`TlsRefusal::UnknownIdentity`].
    pub fn decide(&self, endpoint: &Endpoint) -> Result<TlsDecision, TlsRefusal> {
        match self.mode {
            Some(UpstreamTlsMode::Disable) => Ok(TlsDecision::Plaintext),
            Some(mode) if mode.is_origination() => match &self.credential_name {
                Some(name) => Err(TlsRefusal::CredentialName(name.clone())),
                None => Ok(TlsDecision::Originate),
            },
            Some(_) => match self.identities(endpoint) {
                identities if identities.is_empty() => {
                    Err(TlsRefusal::UnknownIdentity(endpoint.address))
                }
                identities => Ok(TlsDecision::Mutual { identities }),
            },
            None => match self.identities(endpoint) {
                identities if has_sidecar(endpoint) && !identities.is_empty() => {
                    Ok(TlsDecision::Mutual { identities })
                }
                _ => Ok(TlsDecision::Plaintext),
            },
        }
    }

    /// The name a SIMPLE or MUTUAL handshake sends as SNI and, without `subjectAltNames`,
    /// checks the server's certificate against: `sni`, else the destination `host`.
    pub fn server_name<'a>(&'a self, host: &'a str) -> &'a str {
        self.sni.as_deref().unwrap_or(host)
    }

    /// What is in force, as the admin views show it: the mode, or `auto` (auto-mTLS).
    pub fn mode_name(&self) -> &'static str {
        self.mode.map_or("auto", UpstreamTlsMode::as_str)
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
