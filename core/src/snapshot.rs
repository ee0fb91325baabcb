//! The proxy's config: the resources pilot pushes, or a file in standalone mode
//! (`mesh-proxy --snapshot FILE`). Routes and traffic policies are Istio's own types, already
//! resolved to one proxy's view; [`crate::compile`] turns a snapshot into the runtime model.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::config::{HttpRoute, RouteDestination, Subset, TrafficPolicy};

/// Istio's name for the cluster that takes what the mesh refuses to carry. A capture-mode
/// listener whose `tcpRoute` goes there (pilot's `virtualOutbound` under
/// `outboundTrafficPolicy: REGISTRY_ONLY`) tells the proxy to close captured connections to
/// destinations the mesh does not know instead of passing them through.
pub const BLACKHOLE_CLUSTER: &str = "BlackHoleCluster";

/// Everything one proxy runs on. Replaced as a whole: a new snapshot never mixes with the old.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    /// Identifies the content; shown on `/config_dump` and in ACKs.
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub listeners: Vec<ListenerSpec>,
    #[serde(default)]
    pub route_configs: Vec<RouteConfigSpec>,
    #[serde(default)]
    pub clusters: Vec<ClusterSpec>,
    /// The AuthorizationPolicies that apply to this workload's inbound traffic (mesh-wide,
    /// namespace and workload ones), enforced on every `inbound` listener.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_policies: Vec<NamedPolicy>,
    /// The RequestAuthentications that apply to this workload, each rule's `jwks` inline:
    /// JWTs on inbound requests are checked against them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_authentications: Vec<NamedRequestAuthentication>,
    /// What this proxy reports beyond metrics, from the Telemetry resources that select it
    /// (workload over namespace over mesh-wide). Absent: no access log, no tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetrySpec>,
}

/// The effective telemetry of one proxy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TelemetrySpec {
    /// Whether a JSON access log line is written per request.
    #[serde(default)]
    pub access_logging: bool,
    /// Tracing, when a Telemetry resource turns it on and names a reachable provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingSpec>,
    /// The Telemetry resources this came from, as `namespace/name`, for the admin endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// Distributed tracing for one proxy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingSpec {
    /// Percent of requests that start a new sampled trace (0 to 100); a request that comes
    /// with a sampling decision keeps it.
    pub sampling_percentage: f64,
    /// Where spans go: the OTLP/gRPC collector as `host:port`.
    pub collector: String,
    /// Tags set on every span, already resolved to literal values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_tags: BTreeMap<String, String>,
}

/// An AuthorizationPolicy and its `namespace/name`, which decisions and metrics name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedPolicy {
    pub name: String,
    pub spec: crate::config::AuthorizationPolicySpec,
}

/// A RequestAuthentication and its `namespace/name`, which refusals name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedRequestAuthentication {
    pub name: String,
    pub spec: crate::config::RequestAuthenticationSpec,
}

/// A socket the proxy accepts on and what it does with what arrives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerSpec {
    pub name: String,
    pub address: SocketAddr,
    #[serde(default)]
    pub protocol: ListenerProtocol,
    /// HTTP: the route config whose virtual hosts serve this listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_config: Option<String>,
    /// TCP, and AUTO for what is not HTTP: where connections go, by weight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp_route: Vec<RouteDestination>,
    /// What the port carries when it is known (a Service port's `appProtocol`, or Istio's
    /// port-name prefix): an AUTO listener then skips sniffing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<AppProtocol>,
    /// AUTO: ports whose protocol speaks first (the client waits for a greeting), in
    /// addition to the defaults; connections to them are never sniffed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_first_ports: Vec<u16>,
    /// AUTO: how long to wait for the client's first bytes before treating the connection
    /// as opaque TCP (default 100ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_timeout: Option<crate::config::Duration>,
    /// Set on listeners that take traffic for the local workload from its peers: how
    /// peers must connect, and the workload's authorization policies apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<InboundSpec>,
    /// Gateways: the port serves TLS, each connection by the server its SNI names. A
    /// terminated connection then goes to `routeConfig` (HTTPS) or `tcpRoute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<GatewayTlsSpec>,
}

/// The TLS servers of one gateway port, as the Gateway resources that share it wrote them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayTlsSpec {
    #[serde(default)]
    pub servers: Vec<TlsServerSpec>,
    /// PASSTHROUGH servers: the `tls` routes of the VirtualServices bound to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_routes: Vec<crate::config::TlsRoute>,
}

/// A Gateway server: the SNI names it answers and its `tls` block. Certificates are file
/// paths (`serverCertificate`, `privateKey`, `caCertificates`); pilot writes a Secret's
/// content to files the proxy reads before a `credentialName` reaches it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsServerSpec {
    /// `host`, `*.example.com` or `*`, without the Gateway's `namespace/` prefixes.
    #[serde(default)]
    pub hosts: Vec<String>,
    pub tls: crate::config::ServerTlsSettings,
    /// HTTPS: the routes of the connections this server terminates, so a request can only
    /// reach the hosts of the server whose certificate (and client check) it passed;
    /// default: the listener's `routeConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_config: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundSpec {
    /// The PeerAuthentication mode in force for this port, inheritance already resolved.
    #[serde(default)]
    pub mtls: PeerMode,
}

/// How peers may connect to an inbound listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeerMode {
    /// Mutual TLS only: plaintext is refused.
    Strict,
    /// Mutual TLS or plaintext, told apart by the first bytes (Istio's default).
    #[default]
    Permissive,
    /// Plaintext only: TLS bytes are passed to the workload as they are.
    Disable,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ListenerProtocol {
    /// HTTP/1.1 and HTTP/2 (prior knowledge) on the same socket.
    #[default]
    Http,
    Tcp,
    /// Sniffed per connection: HTTP goes to `routeConfig`, anything else to `tcpRoute`.
    Auto,
}

/// The protocols Istio recognises from `appProtocol` or a port name's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppProtocol {
    Http,
    Http2,
    Grpc,
    GrpcWeb,
    /// TLS to the workload: opaque to the proxy.
    Https,
    Tcp,
    Tls,
    Mongo,
    Mysql,
    Redis,
}

impl AppProtocol {
    /// Whether the proxy routes it as HTTP; everything else is forwarded as opaque TCP.
    pub fn is_http(self) -> bool {
        matches!(self, Self::Http | Self::Http2 | Self::Grpc | Self::GrpcWeb)
    }
}

/// Named virtual hosts, as Envoy's RouteConfiguration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteConfigSpec {
    pub name: String,
    #[serde(default)]
    pub virtual_hosts: Vec<VirtualHostSpec>,
}

/// The routes of the hosts in `domains`: a VirtualService's `http` section, with every
/// destination host written as the cluster host it resolves to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualHostSpec {
    pub name: String,
    /// `reviews`, `reviews:9080`, `*.example.com`, `*`.
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub routes: Vec<HttpRoute>,
    /// `namespace/name` of the VirtualService the routes come from (several, comma
    /// separated, when a gateway merges them); none for the default route. What
    /// `meshctl proxy-config routes` shows a user asking why a request went where it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_service: Option<String>,
}

/// One port of one service and its endpoints, with the DestinationRule that applies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// The service host routes name, e.g. `reviews.default.svc.cluster.local`.
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    /// `namespace/name` of the DestinationRule the policy and subsets come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_rule: Option<String>,
    /// Set for a ServiceEntry with `resolution: DNS` or `DNS_ROUND_ROBIN`: names the proxy
    /// resolves itself, whose addresses become the cluster's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSpec>,
}

/// A cluster of DNS names, as Envoy's STRICT_DNS and LOGICAL_DNS clusters: the proxy
/// resolves each name, re-resolves it as its TTL runs out, and balances over the answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsSpec {
    #[serde(default)]
    pub lookup: DnsLookup,
    #[serde(default)]
    pub endpoints: Vec<DnsEndpointSpec>,
}

/// Which answers of a name become endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DnsLookup {
    /// Every address (Istio's `resolution: DNS`, Envoy's STRICT_DNS).
    #[default]
    Strict,
    /// The first address only (`DNS_ROUND_ROBIN`, Envoy's LOGICAL_DNS): the DNS server's
    /// rotation does the balancing.
    Logical,
}

/// A name to resolve, and the port its addresses serve this cluster's port on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsEndpointSpec {
    pub hostname: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointSpec {
    pub address: SocketAddr,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// The endpoint's SPIFFE ID (`spiffe://TRUST_DOMAIN/ns/NS/sa/SA`), from its service
    /// account: the identity its sidecar must present when traffic to it is mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The workload it belongs to (a Deployment's name, not the pod's; a WorkloadEntry's):
    /// the `destination_workload` of requests sent to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SnapshotParseError {
    /// Where in the document, e.g. `clusters[0].endpoints[1].address`.
    pub path: String,
    pub message: String,
}

impl Snapshot {
    /// Parses YAML or JSON, naming the field of any error.
    pub fn from_yaml(text: &str) -> Result<Self, SnapshotParseError> {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(deserializer).map_err(|err| SnapshotParseError {
            path: err.path().to_string(),
            message: err.into_inner().to_string(),
        })
    }
}
