//! The index: one generation of inputs, grouped the way translation looks them up.
//! Built once per debounced change and shared by every proxy's translation.

use std::collections::HashMap;
use std::sync::Arc;

use mesh_core::config::{
    AuthorizationPolicySpec, ConfigObject, DestinationRuleSpec, MeshConfig, Object,
    PeerAuthenticationSpec, RequestAuthenticationSpec, SidecarSpec, TelemetrySpec,
    VirtualServiceSpec,
};
use mesh_core::diagnostic::Diagnostic;

use mesh_core::host::{covers, resolve};

use crate::registry::Registry;
use crate::source::Inputs;

/// What translation needs to know beyond the config itself.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Settings {
    /// Config here applies mesh-wide (Istio's `istio-system`).
    pub root_namespace: String,
    /// Of the SPIFFE identities endpoints are expected to prove.
    pub trust_domain: String,
    /// Where sidecars may send traffic for hosts not in the registry, unless their
    /// Sidecar says otherwise ([`crate::translate::outbound_mode`]).
    pub outbound_traffic_policy: mesh_core::config::OutboundMode,
    /// The telemetry providers Telemetry resources name (`--mesh-config`).
    pub mesh_config: MeshConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            root_namespace: "mesh-system".into(),
            trust_domain: "cluster.local".into(),
            outbound_traffic_policy: mesh_core::config::OutboundMode::AllowAny,
            mesh_config: MeshConfig::default(),
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
    /// Each rule's `jwks` filled in from its `jwksUri` when the keys are at hand
    /// ([`crate::jwks`]).
    pub request_authentications: Vec<Object<RequestAuthenticationSpec>>,
    /// Telemetry resources whose providers the mesh config defines, in name order.
    pub telemetries: Vec<Object<TelemetrySpec>>,
    /// Telemetry resources left out because they name a provider the mesh config lacks.
    pub telemetry_problems: Vec<Diagnostic>,
    /// VirtualServices and DestinationRules by the hosts they name, resolved: translation
    /// looks rules up per service, and a scan of every rule per service is quadratic.
    pub virtual_service_hosts: HostIndex,
    pub destination_rule_hosts: HostIndex,
}

/// Positions of rules by resolved host: exact hosts in a map, wildcards in a list.
#[derive(Default)]
pub struct HostIndex {
    exact: HashMap<String, Vec<usize>>,
    wildcard: Vec<(String, usize)>,
}

impl HostIndex {
    fn add(&mut self, host: String, position: usize) {
        if host.starts_with('*') {
            self.wildcard.push((host, position));
        } else {
            self.exact.entry(host).or_default().push(position);
        }
    }

    /// The rules naming `hostname` exactly, then those whose wildcard covers it, each with
    /// whether the match is exact; in position order within each group.
    pub fn matching(&self, hostname: &str) -> Vec<(usize, bool)> {
        let exact = self.exact.get(hostname).into_iter().flatten();
        let mut found: Vec<(usize, bool)> = exact.map(|&p| (p, true)).collect();
        for (pattern, position) in &self.wildcard {
            if covers(pattern, hostname) && !found.iter().any(|(p, _)| p == position) {
                found.push((*position, false));
            }
        }
        found
    }
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
            request_authentications: Vec::new(),
            telemetries: Vec::new(),
            telemetry_problems: Vec::new(),
            virtual_service_hosts: HostIndex::default(),
            destination_rule_hosts: HostIndex::default(),
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
                ConfigObject::RequestAuthentication(o) => {
                    index.request_authentications.push(with_keys(o))
                }
                ConfigObject::Telemetry(o) => {
                    let problems = mesh_core::validate::check_telemetry_providers(
                        located,
                        &index.settings.mesh_config,
                    );
                    for problem in &problems {
                        tracing::warn!(%problem, "Telemetry left out");
                    }
                    if problems.is_empty() {
                        index.telemetries.push(o.clone());
                    } else {
                        index.telemetry_problems.extend(problems);
                    }
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
        index.telemetries.sort_by_key(|o| by_name(&o.metadata));
        for (position, vs) in index.virtual_services.iter().enumerate() {
            for host in &vs.spec.hosts {
                let host = resolve(host, &vs.metadata.namespace);
                index.virtual_service_hosts.add(host, position);
            }
        }
        for (position, rule) in index.destination_rules.iter().enumerate() {
            let host = resolve(&rule.spec.host, &rule.metadata.namespace);
            index.destination_rule_hosts.add(host, position);
        }
        index
    }

    pub fn registry(&self) -> &Registry {
        &self.inputs.registry
    }
}

/// The RequestAuthentication with each `jwksUri` rule's keys inline, when they are at hand.
fn with_keys(ra: &Object<RequestAuthenticationSpec>) -> Object<RequestAuthenticationSpec> {
    let mut ra = ra.clone();
    for rule in &mut ra.spec.jwt_rules {
        let (None, Some(uri)) = (&rule.jwks, &rule.jwks_uri) else {
            continue;
        };
        let timeout = rule.timeout.as_ref().and_then(|t| t.to_std());
        match crate::jwks::JwksResolver::global().resolve(uri, timeout) {
            Ok(jwks) => rule.jwks = Some(jwks),
            Err(reason) => tracing::debug!(
                policy = %format!("{}/{}", ra.metadata.namespace, ra.metadata.name),
                issuer = %rule.issuer,
                %reason,
                "no keys for a JWT rule yet"
            ),
        }
    }
    ra
}
