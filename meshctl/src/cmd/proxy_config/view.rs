//! The admin port's JSON as meshctl reads it: only the fields the tables show, every one
//! defaulted, so a proxy of another version still renders what it has instead of failing.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `/config_dump` (the proxy) or `/debug/config_dump?proxy=ID` (pilot): the snapshot.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfigDump {
    pub version: Option<String>,
    pub snapshot: Option<Snapshot>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Snapshot {
    pub listeners: Vec<Listener>,
    pub route_configs: Vec<RouteConfig>,
    pub clusters: Vec<Cluster>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Listener {
    pub name: String,
    pub address: String,
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
    pub route_config: Option<String>,
    pub tcp_route: Vec<RouteDestination>,
    pub inbound: Option<Inbound>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Inbound {
    pub mtls: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualHost {
    pub name: String,
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
    /// `namespace/name` of the VirtualService the routes come from.
    pub virtual_service: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Route {
    pub name: String,
    #[serde(rename = "match")]
    pub matches: Vec<Match>,
    /// Where it sends requests (weighted); empty for a redirect or a direct response.
    pub route: Vec<RouteDestination>,
}

/// Istio's HTTPMatchRequest: the fields a MATCH cell shows.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Match {
    pub uri: Option<StringMatch>,
    pub method: Option<StringMatch>,
    pub authority: Option<StringMatch>,
    pub headers: BTreeMap<String, StringMatch>,
    pub without_headers: BTreeMap<String, StringMatch>,
    pub query_params: BTreeMap<String, StringMatch>,
    pub port: Option<u32>,
    pub source_labels: BTreeMap<String, String>,
    pub source_namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StringMatch {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub regex: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RouteDestination {
    pub destination: Destination,
    pub weight: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Destination {
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<PortSelector>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PortSelector {
    pub number: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Cluster {
    pub host: String,
    pub port: u16,
    pub traffic_policy: Option<Value>,
    pub subsets: Vec<Subset>,
    pub endpoints: Vec<Endpoint>,
    /// `namespace/name` of the DestinationRule applied.
    pub destination_rule: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Subset {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    pub address: String,
    pub labels: BTreeMap<String, String>,
}

/// One entry of `/listeners`: what is bound now.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BoundListener {
    pub name: String,
    pub bound: Option<String>,
}

/// One entry of `/clusters`: the proxy's live view of a cluster.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClusterStatus {
    pub name: String,
    pub endpoints: Vec<EndpointStatus>,
    /// Present (as text) when the cluster has outlier detection.
    pub outlier_detection: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndpointStatus {
    pub address: String,
    /// The name it was resolved from, in a `resolution: DNS` ServiceEntry's cluster.
    pub hostname: Option<String>,
    /// `healthy` or `ejected`.
    pub health: String,
    pub ejections: u64,
}

/// `/certs`: the workload certificate and the trust bundle (never a key).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Certs {
    pub identity: Option<String>,
    /// None until the first certificate arrives.
    pub serial: Option<String>,
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub trust_bundle: Vec<CertInfo>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CertInfo {
    pub serial: String,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
}

/// `value` as `T`; a document of an unexpected shape renders as empty, never an error.
pub fn read<T: for<'de> Deserialize<'de> + Default>(value: &Value) -> T {
    T::deserialize(value).unwrap_or_default()
}
