//! The service registry: services, their ports and their endpoints, whichever source they
//! came from (Kubernetes Services and EndpointSlices, or ServiceEntries and WorkloadEntries).
//! Translation reads only these types, so both sources route the same way.

use std::collections::BTreeMap;
use std::net::IpAddr;

use mesh_core::diagnostic::Origin;
use mesh_core::model::Labels;
use mesh_core::snapshot::AppProtocol;
use serde::Serialize;

/// A service: one host, its ports, and where it may be seen from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Service {
    /// The FQDN routes name, lower case: `reviews.default.svc.cluster.local`, or a
    /// ServiceEntry host as written (`api.example.com`).
    pub hostname: String,
    /// The namespace of the Service or ServiceEntry.
    pub namespace: String,
    pub ports: Vec<ServicePort>,
    /// Istio's `exportTo`: `*` (everywhere, the default when empty), `.` (its own
    /// namespace), or namespace names.
    pub export_to: Vec<String>,
    /// Its virtual IPs: a Kubernetes Service's cluster IPs, a ServiceEntry's single-address
    /// `addresses`. Capture-mode proxies route connections made to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<std::net::IpAddr>,
    /// A Kubernetes Service (short names `name` and `name.namespace` reach it), or a
    /// ServiceEntry (only its hosts do).
    pub origin: ServiceOrigin,
    /// A ServiceEntry with `resolution: DNS` or `DNS_ROUND_ROBIN`: the names the proxies
    /// resolve themselves; such a service has no IP endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<ServiceDns>,
    /// Where the object came from, for `/debug/config_status`.
    #[serde(skip)]
    pub source: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ServiceOrigin {
    Kubernetes,
    ServiceEntry,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServicePort {
    /// The port's name (`http`, `grpc-web`); endpoints name their target port by it.
    pub name: String,
    pub number: u16,
    /// Declared (`appProtocol`, a ServiceEntry port's `protocol`, or Istio's name prefix):
    /// `None` means unknown, to be sniffed.
    pub protocol: Option<AppProtocol>,
}

/// The DNS names behind a `resolution: DNS` ServiceEntry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceDns {
    pub lookup: mesh_core::snapshot::DnsLookup,
    pub hosts: Vec<DnsHost>,
}

/// A name to resolve: an `endpoints[].address`, or one of the entry's `hosts` when it has
/// no endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsHost {
    pub hostname: String,
    /// The port its addresses listen on, for each service port number.
    pub ports: BTreeMap<u16, u16>,
    pub labels: Labels,
    /// 0: unweighted.
    pub weight: u32,
}

/// One workload instance behind a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub address: IpAddr,
    /// The port the workload listens on, for each service port number it serves.
    pub ports: BTreeMap<u16, u16>,
    pub labels: Labels,
    /// 0: unweighted.
    pub weight: u32,
    /// The pod or WorkloadEntry name, and its namespace and service account: who the
    /// endpoint is, for metrics and identity.
    pub workload: String,
    pub namespace: String,
    pub service_account: String,
}

/// Every service and its endpoints, keyed by namespace and hostname (two namespaces may
/// each define the same ServiceEntry host).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Registry {
    pub services: BTreeMap<ServiceKey, Service>,
    pub endpoints: BTreeMap<ServiceKey, Vec<Endpoint>>,
}

/// `(namespace, hostname)`.
pub type ServiceKey = (String, String);

impl Registry {
    pub fn insert(&mut self, service: Service, endpoints: Vec<Endpoint>) {
        let key = (service.namespace.clone(), service.hostname.clone());
        self.services.insert(key.clone(), service);
        self.endpoints.insert(key, endpoints);
    }

    pub fn endpoints(&self, key: &ServiceKey) -> &[Endpoint] {
        self.endpoints.get(key).map_or(&[], Vec::as_slice)
    }
}

/// Istio's protocol selection: a declared protocol (`appProtocol`, or a ServiceEntry
/// port's `protocol`) wins; otherwise the port name's prefix before `-` (`http-web`,
/// `grpc`); otherwise unknown.
pub fn port_protocol(declared: Option<&str>, port_name: &str) -> Option<AppProtocol> {
    if let Some(declared) = declared.filter(|d| !d.is_empty()) {
        return parse_protocol(declared);
    }
    let name = port_name.to_ascii_lowercase();
    // `grpc-web` is a protocol of its own, not `grpc` with a suffix.
    if name == "grpc-web" || name.starts_with("grpc-web-") {
        return Some(AppProtocol::GrpcWeb);
    }
    parse_protocol(name.split('-').next().unwrap_or_default())
}

fn parse_protocol(text: &str) -> Option<AppProtocol> {
    let lower = text.to_ascii_lowercase();
    // Kubernetes' own appProtocol values for HTTP/2.
    let lower = match lower.as_str() {
        "kubernetes.io/h2c" => "http2".to_owned(),
        "kubernetes.io/ws" | "kubernetes.io/wss" => "http".to_owned(),
        _ => lower,
    };
    serde_json::from_value(serde_json::Value::String(lower)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_comes_from_the_declaration_then_the_name() {
        assert_eq!(port_protocol(Some("GRPC"), "http"), Some(AppProtocol::Grpc));
        assert_eq!(port_protocol(None, "http-web"), Some(AppProtocol::Http));
        assert_eq!(
            port_protocol(Some(""), "grpc-web"),
            Some(AppProtocol::GrpcWeb)
        );
        assert_eq!(port_protocol(None, "grpc-api"), Some(AppProtocol::Grpc));
        assert_eq!(port_protocol(None, "tcp-db"), Some(AppProtocol::Tcp));
        assert_eq!(port_protocol(None, "web"), None);
        assert_eq!(
            port_protocol(Some("kubernetes.io/h2c"), "x"),
            Some(AppProtocol::Http2)
        );
    }
}
