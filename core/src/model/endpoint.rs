//! Where traffic finally goes: endpoints of a service, and subsets of them.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Labels, selects};

/// One instance of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: SocketAddr,
    pub labels: Labels,
    /// Relative load-balancing weight. 0 means unset and counts as 1, as an unset weight
    /// does in Envoy's endpoint API.
    pub weight: u32,
    /// The SPIFFE ID the endpoint's sidecar presents, when the control plane knows it.
    pub identity: Option<String>,
    /// Who it is, for the `destination_*` labels of requests sent to it; shared, so that
    /// labelling a request costs a reference count, not four strings.
    pub workload: Option<Arc<WorkloadMeta>>,
}

/// A workload as metrics name it: Istio's `*_workload`, `*_workload_namespace`, `*_app`,
/// `*_version` and `*_principal` labels of one side of a request. Unknown parts are
/// `unknown`, as Istio reports them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadMeta {
    pub name: String,
    pub namespace: String,
    pub app: String,
    pub version: String,
    /// Its SPIFFE ID, or `unknown`.
    pub principal: String,
}

impl WorkloadMeta {
    pub const UNKNOWN: &str = "unknown";

    /// An endpoint's: its workload name from the control plane, namespace from its SPIFFE
    /// ID, app and version from its labels (`app.kubernetes.io/name` or `app`,
    /// `app.kubernetes.io/version` or `version`), as Istio reads them.
    pub fn of_endpoint(name: &str, identity: Option<&str>, labels: &Labels) -> Self {
        let label = |keys: [&str; 2]| {
            keys.iter()
                .find_map(|k| labels.get(*k))
                .map_or(Self::UNKNOWN, String::as_str)
                .to_owned()
        };
        Self {
            name: name.to_owned(),
            namespace: identity
                .and_then(spiffe_namespace)
                .unwrap_or(Self::UNKNOWN)
                .to_owned(),
            app: label(["app.kubernetes.io/name", "app"]),
            version: label(["app.kubernetes.io/version", "version"]),
            principal: identity.unwrap_or(Self::UNKNOWN).to_owned(),
        }
    }
}

/// The namespace of `spiffe://TRUST_DOMAIN/ns/NS/sa/SA`.
pub fn spiffe_namespace(id: &str) -> Option<&str> {
    id.strip_prefix("spiffe://")?
        .split_once("/ns/")?
        .1
        .split('/')
        .next()
        .filter(|ns| !ns.is_empty())
}

impl Endpoint {
    /// An endpoint with no labels and weight 1.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            labels: Labels::new(),
            weight: 1,
            identity: None,
            workload: None,
        }
    }

    /// The weight balancers use: never 0.
    pub fn effective_weight(&self) -> u32 {
        self.weight.max(1)
    }
}

/// A named group of a service's endpoints (DestinationRule `subsets`), e.g. `v1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    pub name: String,
    pub labels: Labels,
}

impl Subset {
    /// Whether `endpoint` belongs to the subset: its labels are a superset of the subset's.
    pub fn contains(&self, endpoint: &Endpoint) -> bool {
        selects(&self.labels, &endpoint.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_meta_of_an_endpoint_reads_labels_and_identity() {
        let labels = Labels::from([
            ("app".to_owned(), "reviews".to_owned()),
            ("version".to_owned(), "v2".to_owned()),
        ]);
        let id = "spiffe://cluster.local/ns/shop/sa/reviews";
        let meta = WorkloadMeta::of_endpoint("reviews-v2", Some(id), &labels);
        assert_eq!(meta.name, "reviews-v2");
        assert_eq!(meta.namespace, "shop");
        assert_eq!(
            (meta.app.as_str(), meta.version.as_str()),
            ("reviews", "v2")
        );
        assert_eq!(meta.principal, id);
        let bare = WorkloadMeta::of_endpoint("db", None, &Labels::new());
        assert_eq!(
            (bare.namespace, bare.app, bare.version, bare.principal),
            (
                "unknown".into(),
                "unknown".into(),
                "unknown".into(),
                "unknown".into()
            )
        );
    }

    #[test]
    fn spiffe_namespace_needs_the_ns_segment() {
        assert_eq!(spiffe_namespace("spiffe://td/ns/a/sa/b"), Some("a"));
        assert_eq!(spiffe_namespace("spiffe://td/ns//sa/b"), None);
        assert_eq!(spiffe_namespace("spiffe://td/sa/b"), None);
        assert_eq!(spiffe_namespace("td/ns/a/sa/b"), None);
    }
}
