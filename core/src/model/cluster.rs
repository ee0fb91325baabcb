//! Clusters and listeners: where the proxy sends traffic and where it accepts it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::{
    ConnectionLimits, Endpoint, OutlierPolicy, RouteConfig, Subset, UpstreamTls,
    WeightedDestination,
};
use crate::balance::LbPolicy;

/// One port of one service: its endpoints and how they are balanced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub host: String,
    pub port: u16,
    pub endpoints: Vec<Endpoint>,
    pub lb: LbPolicy,
    pub connect_timeout: Duration,
    pub subsets: Vec<ClusterSubset>,
    /// Circuit breakers (`connectionPool`), shared by all subsets.
    pub limits: ConnectionLimits,
    /// `None` unless the DestinationRule sets `outlierDetection`.
    pub outlier: Option<OutlierPolicy>,
    /// The DestinationRule's `tls` for this port: whether connections are mTLS.
    pub tls: UpstreamTls,
    /// DNS names the proxy resolves into `endpoints` (a `resolution: DNS` ServiceEntry).
    pub dns: Option<crate::snapshot::DnsSpec>,
}

/// A DestinationRule subset, with the balancing it overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSubset {
    pub subset: Subset,
    pub lb: LbPolicy,
    /// The subset's own `tls`, else the cluster's.
    pub tls: UpstreamTls,
}

impl Cluster {
    /// Envoy's and Istio's cluster name, as admin endpoints and metrics show it.
    pub fn name(&self, subset: Option<&str>) -> String {
        format!(
            "outbound|{}|{}|{}",
            self.port,
            subset.unwrap_or_default(),
            self.host
        )
    }

    pub fn subset(&self, name: &str) -> Option<&ClusterSubset> {
        self.subsets.iter().find(|s| s.subset.name == name)
    }

    /// The TLS setting connections to `subset` (or the whole cluster) follow.
    pub fn tls_of(&self, subset: Option<&str>) -> &UpstreamTls {
        subset
            .and_then(|name| self.subset(name))
            .map_or(&self.tls, |s| &s.tls)
    }
}

/// Istio's default TCP connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    pub kind: ListenerKind,
    /// Inbound listeners: how peers must connect; the config's `authz` applies to them.
    pub inbound: Option<crate::snapshot::InboundSpec>,
}

#[derive(Debug, Clone)]
pub enum ListenerKind {
    /// HTTP/1.1 and HTTP/2, routed by the named route config.
    Http { route_config: String },
    /// Opaque TCP, forwarded by weight.
    Tcp { routes: Vec<WeightedDestination> },
    /// Protocol detected per connection: HTTP is routed by the route config, anything else
    /// is forwarded as TCP by weight.
    Auto {
        route_config: String,
        routes: Vec<WeightedDestination>,
        detect: Detect,
    },
    /// A gateway's TLS port: each connection's server picked by SNI, then terminated or
    /// passed through ([`crate::model::GatewayTls`]).
    GatewayTls(std::sync::Arc<crate::model::GatewayTls>),
}

impl ListenerKind {
    /// As snapshots spell the protocol.
    pub fn protocol(&self) -> &'static str {
        match self {
            Self::Http { .. } => "HTTP",
            Self::Tcp { .. } => "TCP",
            Self::Auto { .. } => "AUTO",
            Self::GatewayTls(_) => "TLS",
        }
    }
}

/// How an AUTO listener tells HTTP from the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detect {
    /// How long to wait for the client's first bytes. A client that sends nothing is
    /// waiting for a server-first protocol's greeting, so it must stay short.
    pub timeout: Duration,
    /// Ports never sniffed: their protocol speaks first, and waiting for the client would
    /// delay every connection by `timeout`.
    pub server_first_ports: Vec<u16>,
}

/// Long enough for a client's first segment on a busy host, short enough that a
/// server-first protocol on an unlisted port only sees a small delay.
pub const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_millis(100);

/// SMTP, MySQL, PostgreSQL, Redis and MongoDB: forwarded as TCP without sniffing. SMTP and
/// MySQL greet first; the others are opaque by convention (Linkerd's list), and sniffing
/// their binary first bytes could only go wrong.
pub const DEFAULT_SERVER_FIRST_PORTS: [u16; 5] = [25, 3306, 5432, 6379, 27017];

/// A compiled snapshot: everything the data path reads, validated once.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    pub version: String,
    pub listeners: Vec<Listener>,
    pub route_configs: BTreeMap<String, RouteConfig>,
    /// By host, then port: looked up by `&str` on every request, without allocating.
    clusters: BTreeMap<String, BTreeMap<u16, Cluster>>,
    /// The workload's AuthorizationPolicies, enforced on inbound listeners.
    pub authz: crate::authz::Policies,
    /// The workload's RequestAuthentications, checked on inbound HTTP before `authz`.
    pub authn: crate::authn::Authenticator,
}

impl ProxyConfig {
    /// Adds a cluster; false if one for the same host and port was already there (replaced).
    pub fn insert_cluster(&mut self, cluster: Cluster) -> bool {
        let by_port = self.clusters.entry(cluster.host.clone()).or_default();
        by_port.insert(cluster.port, cluster).is_none()
    }

    pub fn cluster(&self, host: &str, port: u16) -> Option<&Cluster> {
        self.clusters.get(host)?.get(&port)
    }

    /// The clusters of a host, whatever their port, by port.
    pub fn clusters_of<'a>(&'a self, host: &str) -> impl Iterator<Item = &'a Cluster> + 'a {
        self.clusters
            .get(host)
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    /// Every cluster, by host and port.
    pub fn clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values().flat_map(BTreeMap::values)
    }

    /// Every cluster, mutably: how the proxy fills a DNS cluster's endpoints with the
    /// addresses it resolved.
    pub fn clusters_mut(&mut self) -> impl Iterator<Item = &mut Cluster> {
        self.clusters.values_mut().flat_map(BTreeMap::values_mut)
    }
}
