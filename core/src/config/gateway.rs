//! Gateway: a load balancer at the edge of the mesh and the ports, hosts and TLS it serves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{Port, Unsupported};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema, kube::CustomResource))]
#[cfg_attr(
    feature = "crd",
    kube(
        group = "networking.mesh.io",
        version = "v1",
        kind = "Gateway",
        namespaced,
        schema = "derived"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// The ports, protocols and hosts the gateway serves.
    #[serde(default)]
    pub servers: Vec<Server>,
    /// Labels of the gateway workloads (`istio: ingressgateway` selects mesh's too).
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    /// Port and protocol: HTTP, HTTPS, HTTP2, GRPC, TCP or TLS (any case).
    pub port: Port,
    /// Address to listen on instead of all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// `host`, `*.example.com`, `*`, optionally prefixed `namespace/`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// TLS for HTTPS and TLS servers; `httpsRedirect` for HTTP ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    #[serde(default, skip_serializing)]
    pub default_endpoint: Option<Unsupported>,
    /// A name unique among the servers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerTlsSettings {
    /// Answer plain HTTP with a 301 to HTTPS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub https_redirect: bool,
    /// Istio's zero value is PASSTHROUGH, which is why `tls: {httpsRedirect: true}`
    /// alone is valid on an HTTP server.
    #[serde(default)]
    pub mode: ServerTlsMode,
    /// Path of the server certificate (local mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<String>,
    /// Path of the server key (local mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// Path of the CA bundle that verifies clients (MUTUAL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    /// Secret with the certificate and key (and CA for MUTUAL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
    /// Several secrets, e.g. an RSA and an ECDSA certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_names: Vec<String>,
    /// Client identities accepted (MUTUAL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    #[serde(default, skip_serializing)]
    pub verify_certificate_spki: Option<Unsupported>,
    #[serde(default, skip_serializing)]
    pub verify_certificate_hash: Option<Unsupported>,
    /// Lowest TLS version accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_protocol_version: Option<TlsProtocol>,
    /// Highest TLS version accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_protocol_version: Option<TlsProtocol>,
    #[serde(default, skip_serializing)]
    pub cipher_suites: Option<Unsupported>,
    #[serde(default, skip_serializing)]
    pub ca_crl: Option<Unsupported>,
    #[serde(default, skip_serializing)]
    pub tls_certificates: Option<Unsupported>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    /// Route by SNI without terminating TLS.
    #[default]
    Passthrough,
    Simple,
    Mutual,
    AutoPassthrough,
    IstioMutual,
    OptionalMutual,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
pub enum TlsProtocol {
    #[serde(rename = "TLS_AUTO")]
    Auto,
    #[serde(rename = "TLSV1_0")]
    V1_0,
    #[serde(rename = "TLSV1_1")]
    V1_1,
    #[serde(rename = "TLSV1_2")]
    V1_2,
    #[serde(rename = "TLSV1_3")]
    V1_3,
}
