//! Where traffic finally goes: endpoints of a service, and subsets of them.

use std::net::SocketAddr;

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
}

impl Endpoint {
    /// An endpoint with no labels and weight 1.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            labels: Labels::new(),
            weight: 1,
            identity: None,
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
