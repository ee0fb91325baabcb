//! Sidecar: narrows what a proxy sees and how it listens.

use serde::{Deserialize, Serialize};

use super::common::{Port, Unsupported, WorkloadSelector};
use super::destination_rule::ConnectionPoolSettings;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema, kube::CustomResource))]
#[cfg_attr(
    feature = "crd",
    kube(
        group = "networking.mesh.io",
        version = "v1",
        kind = "Sidecar",
        namespaced,
        schema = "derived"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarSpec {
    /// Workloads this applies to; none: the whole namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
    /// Inbound listeners; by default one per port of the workload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<IngressListener>,
    /// Which services the workload can reach, per port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressListener>,
    /// What happens to traffic for hosts not in the registry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    /// Limits for connections to the app, for every inbound port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_connection_pool: Option<ConnectionPoolSettings>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressListener {
    /// Port the proxy listens on.
    pub port: Port,
    /// Address to bind to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// How traffic reaches the listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<CaptureMode>,
    /// `127.0.0.1:PORT`, `0.0.0.0:PORT` or `unix://...`: where the app listens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_endpoint: Option<String>,
    #[serde(default, skip_serializing)]
    pub tls: Option<Unsupported>,
    /// Overrides `inboundConnectionPool` for this port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressListener {
    /// Port to listen on; absent: all ports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// Address to bind to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// How traffic reaches the listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<CaptureMode>,
    /// `namespace/dnsName`: `./*` (own namespace), `istio-system/*`, `*/foo.example.com`.
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaptureMode {
    Default,
    Iptables,
    None,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundTrafficPolicy {
    /// REGISTRY_ONLY refuses unknown hosts; ALLOW_ANY passes them through.
    #[serde(default)]
    pub mode: OutboundMode,
    #[serde(default, skip_serializing)]
    pub egress_proxy: Option<Unsupported>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "crd", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundMode {
    /// Istio's zero value: `outboundTrafficPolicy: {}` means REGISTRY_ONLY.
    #[default]
    RegistryOnly,
    AllowAny,
}
