//! A generation: one debounced state of the config, its index, and the encoded resources
//! every proxy draws from. Resources are encoded once and shared: per scope (namespace and
//! Sidecar) for routes and clusters, per service port for endpoints, and reused from the
//! previous generation when their content did not change, so an endpoint change encodes
//! one endpoints resource and every affected proxy receives exactly that.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use mesh_core::balance::stable_hash;
use mesh_core::snapshot::{ClusterSpec, RouteConfigSpec, VirtualHostSpec};
use mesh_proto::convert::{self, ResourceKey};
use mesh_proto::discovery::v1 as pb;

use super::wire::Encoded;
use crate::index::Index;
use crate::lock::lock;
use crate::registry::ServiceKey;
use crate::translate::{self, Node, Scope};

pub type Resources = BTreeMap<ResourceKey, Arc<Encoded>>;

/// Built scopes by [`Scope::key`].
type ScopeMap = HashMap<(String, Option<String>), Arc<ScopeResources>>;

/// Scopes of this generation by key, each built once: the first stream to need a scope
/// builds it while the others of that scope wait, so every proxy of a scope shares one
/// build and its delta from the previous generation.
type ScopeCells = HashMap<(String, Option<String>), Arc<OnceLock<Arc<ScopeResources>>>>;

pub struct Generation {
    pub number: u64,
    pub index: Index,
    /// When the change that made this generation was noticed: convergence is measured from
    /// here.
    pub changed_at: Instant,
    /// Each service port's endpoints resource.
    endpoints: HashMap<(ServiceKey, u16), Arc<Encoded>>,
    scopes: Mutex<ScopeCells>,
    /// A digest of everything routes and clusters are made of (config objects, services
    /// and their ports; not endpoints).
    routing: u64,
    /// Whether `routing` equals the previous generation's: then every scope is the
    /// previous one with this generation's endpoints.
    routing_unchanged: bool,
    /// A digest of what a proxy's own resources depend on besides the proxy itself.
    security: u64,
    /// What a capture-mode proxy's own resources depend on beyond `security`: the services,
    /// their virtual IPs and ports, and where their endpoints are.
    capture: std::sync::OnceLock<u64>,
    /// The previous generation's scopes, to reuse encodings and compute deltas; dropped
    /// (taken) as this generation's scopes are built.
    previous_scopes: Mutex<ScopeMap>,
}

/// Routes, clusters and endpoints of every proxy with one scope key.
pub struct ScopeResources {
    pub resources: Resources,
    /// A digest of every resource's name and version.
    pub digest: String,
    /// Cluster specs as encoded, to reuse an encoding when the spec is unchanged.
    clusters: Arc<HashMap<String, (ClusterSpec, Arc<Encoded>)>>,
    /// Virtual hosts as encoded, likewise.
    virtual_hosts: Arc<HashMap<String, (VirtualHostSpec, Arc<Encoded>)>>,
    /// The endpoints resources the scope holds, by service port: what an endpoint-only
    /// change swaps.
    endpoints: Vec<(ServiceKey, u16)>,
    /// What changed since the same scope of the previous generation: a proxy holding that
    /// one gets just this.
    pub delta: Option<ScopeDelta>,
}

pub struct ScopeDelta {
    pub from: std::sync::Weak<ScopeResources>,
    pub changed: Vec<Arc<Encoded>>,
    pub removed: Vec<ResourceKey>,
}

/// What one proxy should hold: its scope's resources plus its own (listeners, inbound).
pub struct Desired {
    pub scope: Arc<ScopeResources>,
    pub own: Resources,
    pub version: String,
}

impl Desired {
    pub fn get(&self, key: &ResourceKey) -> Option<&Arc<Encoded>> {
        self.own.get(key).or_else(|| self.scope.resources.get(key))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ResourceKey, &Arc<Encoded>)> {
        self.scope.resources.iter().chain(self.own.iter())
    }

    pub fn len(&self) -> usize {
        self.scope.resources.len() + self.own.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Generation {
    pub fn new(
        number: u64,
        index: Index,
        changed_at: Instant,
        previous: Option<&Generation>,
    ) -> Self {
        let endpoints = encode_endpoints(&index, previous);
        let routing = routing_digest(&index);
        let routing_unchanged = previous.is_some_and(|p| p.routing == routing);
        let security = security_digest(&index);
        let previous_scopes = previous
            .map(|p| {
                lock(&p.scopes)
                    .iter()
                    .filter_map(|(key, cell)| Some((key.clone(), cell.get()?.clone())))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            number,
            index,
            changed_at,
            endpoints,
            scopes: Mutex::default(),
            routing,
            routing_unchanged,
            security,
            // Computed when a capture-mode proxy first asks: most meshes have none.
            capture: std::sync::OnceLock::new(),
            previous_scopes: Mutex::new(previous_scopes),
        }
    }

    /// Everything `node` should hold in this generation.
    pub fn desired(&self, node: &Node) -> Desired {
        self.desired_reusing(node, &mut None)
    }

    /// As [`Generation::desired`], reusing the proxy's own resources (its listener and
    /// inbound policy) from `cache` when the security config they come from is unchanged;
    /// `cache` is updated. Spares a stream re-encoding them on every change.
    pub fn desired_reusing(&self, node: &Node, cache: &mut Option<(u64, Resources)>) -> Desired {
        let node_scope = Scope::of(&self.index, node);
        let scope = self.scope(&node_scope);
        // A capture-mode proxy's inbound listeners and VIP listeners come from the
        // registry too.
        let depends_on = if translate::is_gateway(node) {
            // A gateway's listeners come from Gateways and VirtualServices: built anew
            // each generation (there are few gateways).
            stable_hash(&[self.security.to_le_bytes(), self.number.to_le_bytes()].concat())
        } else if translate::is_capture(node) {
            let capture = *self.capture.get_or_init(|| capture_digest(&self.index));
            // REGISTRY_ONLY adds the virtualOutbound and catch-all listeners.
            let registry_only = translate::outbound_mode(&self.index, &node_scope)
                == mesh_core::config::OutboundMode::RegistryOnly;
            let mode = u64::from(registry_only).to_le_bytes();
            stable_hash(&[self.security.to_le_bytes(), capture.to_le_bytes(), mode].concat())
        } else {
            self.security
        };
        let own = match cache {
            Some((digest, own)) if *digest == depends_on => own.clone(),
            _ => {
                let own = self.own_resources(node);
                *cache = Some((depends_on, own.clone()));
                own
            }
        };
        let version = digest_with(&scope.digest, own.values());
        Desired {
            scope,
            own,
            version,
        }
    }

    /// The resources only this proxy has: its outbound listener and its inbound policy.
    fn own_resources(&self, node: &Node) -> Resources {
        let mut own = Resources::new();
        if let Some(telemetry) = translate::telemetry(&self.index, node) {
            let resource = convert::encode_telemetry(&telemetry);
            own.insert(key_of(&resource), Arc::new(Encoded::new(resource)));
        }
        if translate::is_gateway(node) {
            let gateway = translate::gateway_listeners(&self.index, node);
            let mut resources: Vec<pb::Resource> = gateway
                .listeners
                .iter()
                .map(convert::encode_listener)
                .collect();
            for routes in &gateway.route_configs {
                resources.extend(convert::encode_route_config_split(routes));
            }
            for resource in resources {
                own.insert(key_of(&resource), Arc::new(Encoded::new(resource)));
            }
            return own;
        }
        let listener = convert::encode_listener(&translate::outbound_listener(node));
        own.insert(key_of(&listener), Arc::new(Encoded::new(listener)));
        let inbound = inbound_resource(&translate::inbound_policy(&self.index, node));
        own.insert(key_of(&inbound), Arc::new(Encoded::new(inbound)));
        let local = translate::inbound(&self.index, node);
        let mut resources: Vec<pb::Resource> = local
            .listeners
            .iter()
            .map(convert::encode_listener)
            .collect();
        for routes in &local.route_configs {
            resources.extend(convert::encode_route_config_split(routes));
        }
        for cluster in &local.clusters {
            resources.push(convert::encode_cluster(cluster));
            resources.push(convert::encode_endpoints(
                &cluster.host,
                cluster.port,
                &cluster.endpoints,
            ));
        }
        for resource in resources {
            own.insert(key_of(&resource), Arc::new(Encoded::new(resource)));
        }
        own
    }

    fn scope(&self, scope: &Scope) -> Arc<ScopeResources> {
        let key = scope.key();
        let cell = lock(&self.scopes).entry(key.clone()).or_default().clone();
        cell.get_or_init(|| {
            let previous = lock(&self.previous_scopes).remove(&key);
            let mut built = match &previous {
                Some(previous) if self.routing_unchanged => self.with_new_endpoints(previous),
                _ => self.build_scope(scope, previous.as_deref()),
            };
            built.delta = previous.as_ref().map(|p| delta(p, &built));
            Arc::new(built)
        })
        .clone()
    }

    /// `previous` with this generation's endpoints: when only endpoints changed, routes and
    /// clusters are as they were, and translating every service again would be wasted.
    fn with_new_endpoints(&self, previous: &ScopeResources) -> ScopeResources {
        let mut resources = previous.resources.clone();
        for id in &previous.endpoints {
            if let Some(e) = self.endpoints.get(id) {
                resources.insert(key_of(e), e.clone());
            }
        }
        ScopeResources {
            digest: digest(resources.values()),
            resources,
            clusters: previous.clusters.clone(),
            virtual_hosts: previous.virtual_hosts.clone(),
            endpoints: previous.endpoints.clone(),
            delta: None,
        }
    }

    fn build_scope(&self, scope: &Scope, previous: Option<&ScopeResources>) -> ScopeResources {
        let services = scope.visible_services(&self.index);
        let mut resources = Resources::new();
        let mut clusters = HashMap::new();
        let mut endpoint_ids = Vec::new();
        let routes = translate::outbound_route_config(&self.index, scope, &services);
        let route_config = convert::encode_route_config_split(&RouteConfigSpec {
            name: routes.name.clone(),
            virtual_hosts: Vec::new(),
        });
        for resource in route_config {
            let key = key_of(&resource);
            let reused = previous
                .and_then(|p| p.resources.get(&key))
                .filter(|old| old.version == resource.version)
                .cloned();
            resources.insert(
                key,
                reused.unwrap_or_else(|| Arc::new(Encoded::new(resource))),
            );
        }
        let mut virtual_hosts = HashMap::new();
        for host in routes.virtual_hosts {
            let reused = previous
                .and_then(|p| p.virtual_hosts.get(&host.name))
                .filter(|(old, _)| *old == host)
                .map(|(_, resource)| resource.clone());
            let resource = reused.unwrap_or_else(|| {
                Arc::new(Encoded::new(convert::encode_virtual_host(
                    &routes.name,
                    &host,
                )))
            });
            resources.insert(key_of(&resource), resource.clone());
            virtual_hosts.insert(host.name.clone(), (host, resource));
        }
        for visible in &services {
            for port in &visible.service.ports {
                let spec =
                    translate::cluster_spec(&self.index, scope, visible.service, port.number);
                let name = convert::cluster_name(&spec.host, spec.port);
                let reused = previous
                    .and_then(|p| p.clusters.get(&name))
                    .filter(|(old, _)| *old == spec)
                    .map(|(_, resource)| resource.clone());
                let cluster = reused
                    .unwrap_or_else(|| Arc::new(Encoded::new(convert::encode_cluster(&spec))));
                resources.insert(key_of(&cluster), cluster.clone());
                clusters.insert(name, (spec, cluster));
                let id = (visible.key.clone(), port.number);
                if let Some(e) = self.endpoints.get(&id) {
                    resources.insert(key_of(e), e.clone());
                    endpoint_ids.push(id);
                }
            }
        }
        ScopeResources {
            digest: digest(resources.values()),
            resources,
            clusters: Arc::new(clusters),
            virtual_hosts: Arc::new(virtual_hosts),
            endpoints: endpoint_ids,
            delta: None,
        }
    }
}

/// Each service port's endpoints resource, reused from `previous` when the service's
/// endpoints there were the same.
fn encode_endpoints(
    index: &Index,
    previous: Option<&Generation>,
) -> HashMap<(ServiceKey, u16), Arc<Encoded>> {
    let registry = index.registry();
    let mut encoded = HashMap::new();
    for (key, service) in &registry.services {
        let source = registry.endpoints(key);
        let unchanged = previous.filter(|p| p.index.registry().endpoints(key) == source);
        for port in &service.ports {
            let id = (key.clone(), port.number);
            let reused = unchanged.and_then(|p| p.endpoints.get(&id)).cloned();
            let resource = reused.unwrap_or_else(|| {
                let visible = translate::VisibleService { key, service };
                let specs = translate::endpoint_specs(index, &visible, port.number);
                Arc::new(Encoded::new(convert::encode_endpoints(
                    &service.hostname,
                    port.number,
                    &specs,
                )))
            });
            encoded.insert(id, resource);
        }
    }
    encoded
}

fn delta(previous: &Arc<ScopeResources>, current: &ScopeResources) -> ScopeDelta {
    let changed = current
        .resources
        .iter()
        .filter(|(key, resource)| {
            previous
                .resources
                .get(*key)
                .is_none_or(|old| old.version != resource.version)
        })
        .map(|(_, resource)| resource.clone())
        .collect();
    let removed = previous
        .resources
        .keys()
        .filter(|key| !current.resources.contains_key(*key))
        .cloned()
        .collect();
    ScopeDelta {
        from: Arc::downgrade(previous),
        changed,
        removed,
    }
}

fn inbound_resource(policy: &translate::InboundPolicy) -> pb::Resource {
    fn json<T: serde::Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }
    convert::resource(
        "inbound".into(),
        pb::resource::Kind::InboundPolicy(pb::InboundPolicy {
            peer_authentications_json: json(&policy.peer_authentications),
            authorization_policies_json: json(&policy.authorization_policies),
            request_authentications_json: json(&policy.request_authentications),
        }),
    )
}

/// What routes and clusters depend on, hashed: the routing objects, the services and
/// their ports, and the settings. Endpoints are left out on purpose.
fn routing_digest(index: &Index) -> u64 {
    #[derive(serde::Serialize)]
    struct Routing<'a> {
        root_namespace: &'a str,
        virtual_services: &'a [mesh_core::config::Object<mesh_core::config::VirtualServiceSpec>],
        destination_rules:
            &'a [mesh_core::config::Object<mesh_core::config::DestinationRuleSpec>],
        sidecars: &'a [mesh_core::config::Object<mesh_core::config::SidecarSpec>],
        services: Vec<&'a crate::registry::Service>,
    }
    let routing = Routing {
        root_namespace: &index.settings.root_namespace,
        virtual_services: &index.virtual_services,
        destination_rules: &index.destination_rules,
        sidecars: &index.sidecars,
        services: index.registry().services.values().collect(),
    };
    hash_json(&routing)
}

/// What a proxy's own resources depend on besides the proxy itself: the security objects,
/// the Sidecars (their ingress makes inbound listeners), the Telemetry resources and their
/// providers, and the root namespace.
fn security_digest(index: &Index) -> u64 {
    hash_json(&(
        &index.settings.root_namespace,
        &index.peer_authentications,
        &index.authorization_policies,
        &index.request_authentications,
        &index.sidecars,
        &index.telemetries,
        &index.settings.mesh_config,
    ))
}

/// What capture-mode translation reads from the registry: each service's ports and virtual
/// IPs, and its endpoints' addresses and ports. Labels and weights are left out.
fn capture_digest(index: &Index) -> u64 {
    let registry = index.registry();
    let services: Vec<_> = registry
        .services
        .iter()
        .map(|(key, service)| {
            let endpoints: Vec<_> = registry
                .endpoints(key)
                .iter()
                .map(|e| (e.address, &e.ports))
                .collect();
            (key, &service.ports, &service.addresses, endpoints)
        })
        .collect();
    hash_json(&services)
}

/// The stable hash of a value's JSON. Serialization cannot fail for config types; an empty
/// encoding would only make every generation look changed, which is safe.
fn hash_json(value: &impl serde::Serialize) -> u64 {
    stable_hash(&serde_json::to_vec(value).unwrap_or_default())
}

pub fn key_of(resource: &pb::Resource) -> ResourceKey {
    (convert::resource_type(resource), resource.name.clone())
}

/// One version for a whole set: a digest of every resource's name and version.
pub fn digest<'a>(resources: impl Iterator<Item = &'a Arc<Encoded>>) -> String {
    digest_with("", resources)
}

fn digest_with<'a>(seed: &str, resources: impl Iterator<Item = &'a Arc<Encoded>>) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for resource in resources {
        bytes.extend_from_slice(resource.name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(resource.version.as_bytes());
        bytes.push(0);
    }
    format!("{:016x}", stable_hash(&bytes))
}
