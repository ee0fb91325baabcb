//! Inbound policy: the PeerAuthentications and AuthorizationPolicies that apply to the
//! proxy's workload — mesh-wide (root namespace, no selector), its namespace's, and those
//! whose selector matches its labels. Enforcement is the proxy's; this picks the set.

use mesh_core::config::{AuthorizationPolicySpec, LabelSelector, PeerAuthenticationSpec};
use mesh_core::model::selects;
use serde::Serialize;

use super::Node;
use crate::index::Index;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InboundPolicy {
    pub peer_authentications: Vec<Named<PeerAuthenticationSpec>>,
    pub authorization_policies: Vec<Named<AuthorizationPolicySpec>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Named<T> {
    /// `namespace/name`.
    pub name: String,
    pub spec: T,
}

pub fn inbound_policy(index: &Index, node: &Node) -> InboundPolicy {
    let root = &index.settings.root_namespace;
    let applies = |namespace: &str, selector: &Option<LabelSelector>| match selector {
        None => namespace == node.namespace || namespace == root,
        Some(s) => namespace == node.namespace && selects(&s.match_labels, &node.labels),
    };
    InboundPolicy {
        peer_authentications: index
            .peer_authentications
            .iter()
            .filter(|p| applies(&p.metadata.namespace, &p.spec.selector))
            .map(|p| Named {
                name: format!("{}/{}", p.metadata.namespace, p.metadata.name),
                spec: p.spec.clone(),
            })
            .collect(),
        authorization_policies: index
            .authorization_policies
            .iter()
            .filter(|p| applies(&p.metadata.namespace, &p.spec.selector))
            .map(|p| Named {
                name: format!("{}/{}", p.metadata.namespace, p.metadata.name),
                spec: p.spec.clone(),
            })
            .collect(),
    }
}
