//! Inbound policy: the PeerAuthentications, AuthorizationPolicies and RequestAuthentications
//! that apply to the proxy's workload — mesh-wide (root namespace, no selector), its
//! namespace's, and those whose selector matches its labels. Enforcement is the proxy's;
//! this picks the set.

use mesh_core::config::{
    AuthorizationPolicySpec, LabelSelector, Object, PeerAuthenticationSpec,
    RequestAuthenticationSpec,
};
use mesh_core::model::selects;
use serde::Serialize;

use super::Node;
use crate::index::Index;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InboundPolicy {
    pub peer_authentications: Vec<Named<PeerAuthenticationSpec>>,
    pub authorization_policies: Vec<Named<AuthorizationPolicySpec>>,
    pub request_authentications: Vec<Named<RequestAuthenticationSpec>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Named<T> {
    /// `namespace/name`.
    pub name: String,
    pub spec: T,
}

pub fn inbound_policy(index: &Index, node: &Node) -> InboundPolicy {
    InboundPolicy {
        peer_authentications: applying(index, node, &index.peer_authentications, |p| &p.selector),
        authorization_policies: applying(index, node, &index.authorization_policies, |p| {
            &p.selector
        }),
        request_authentications: applying(index, node, &index.request_authentications, |p| {
            &p.selector
        }),
    }
}

/// The policies of one kind that apply to `node`: those without a selector in its
/// namespace or the root namespace, and those whose selector matches it in its namespace.
fn applying<T: Clone>(
    index: &Index,
    node: &Node,
    policies: &[Object<T>],
    selector: impl Fn(&T) -> &Option<LabelSelector>,
) -> Vec<Named<T>> {
    let root = &index.settings.root_namespace;
    policies
        .iter()
        .filter(|p| {
            let namespace = &p.metadata.namespace;
            match selector(&p.spec) {
                None => *namespace == node.namespace || namespace == root,
                Some(s) => *namespace == node.namespace && selects(&s.match_labels, &node.labels),
            }
        })
        .map(|p| Named {
            name: format!("{}/{}", p.metadata.namespace, p.metadata.name),
            spec: p.spec.clone(),
        })
        .collect()
}
