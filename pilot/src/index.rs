//! The index: one generation of inputs, grouped the way translation looks them up.
//! Built once per debounced change and shared by every proxy's translation.

use std::sync::Arc;

use mesh_core::config::{
    AuthorizationPolicySpec, ConfigObject, DestinationRuleSpec, Object, PeerAuthenticationSpec,
    SidecarSpec, VirtualServiceSpec,
};

use crate::registry::Registry;
use crate::source::Inputs;

/// What translation needs to know beyond the config itself.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Settings {
    /// Config here applies mesh-wide (Istio's `istio-system`).
    pub root_namespace: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            root_namespace: "mesh-system".into(),
        }
    }
}

pub struct Index {
    pub settings: Settings,
    pub inputs: Arc<Inputs>,
    pub virtual_services: Vec<Object<VirtualServiceSpec>>,
    pub destination_rules: Vec<Object<DestinationRuleSpec>>,
    pub sidecars: Vec<Object<SidecarSpec>>,
    pub peer_authentications: Vec<Object<PeerAuthenticationSpec>>,
    pub authorization_policies: Vec<Object<AuthorizationPolicySpec>>,
}

impl Index {
    pub fn new(settings: Settings, inputs: Arc<Inputs>) -> Self {
        let mut index = Self {
            settings,
            inputs: inputs.clone(),
            virtual_services: Vec::new(),
            destination_rules: Vec::new(),
            sidecars: Vec::new(),
            peer_authentications: Vec::new(),
            authorization_policies: Vec::new(),
        };
        for located in &inputs.configs {
            match &located.object {
                ConfigObject::VirtualService(o) => index.virtual_services.push(o.clone()),
                ConfigObject::DestinationRule(o) => index.destination_rules.push(o.clone()),
                ConfigObject::Sidecar(o) => index.sidecars.push(o.clone()),
                ConfigObject::PeerAuthentication(o) => index.peer_authentications.push(o.clone()),
                ConfigObject::AuthorizationPolicy(o) => {
                    index.authorization_policies.push(o.clone())
                }
                _ => {}
            }
        }
        // Istio breaks ties between objects by age; a file has no age, so name order keeps
        // the choice stable.
        let by_name = |m: &mesh_core::config::ObjectMeta| (m.namespace.clone(), m.name.clone());
        index.virtual_services.sort_by_key(|o| by_name(&o.metadata));
        index
            .destination_rules
            .sort_by_key(|o| by_name(&o.metadata));
        index.sidecars.sort_by_key(|o| by_name(&o.metadata));
        index
    }

    pub fn registry(&self) -> &Registry {
        &self.inputs.registry
    }
}
