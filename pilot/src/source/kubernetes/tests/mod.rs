//! The Kubernetes source without a cluster, as kube-runtime tests its own reflectors:
//! objects shaped like `kubectl get -o yaml` output (`pilot/tests/fixtures/kubernetes/`)
//! go into reflector `Writer`s as watch events, and the tests read [`inputs_from`].

mod client;
mod configs;
mod discovery;
mod fake_api;
mod services;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use kube::{Resource, ResourceExt};
use mesh_core::config::Kind;
use serde::Deserialize;

use super::{ConfigStore, Stores, inputs_from};
use crate::source::Inputs;
use crate::source::last_good::LastGood;

/// The config CRDs the fixtures use, at the versions discovery would pick for them:
/// `(apiVersion, kind, plural)`.
const CONFIG_RESOURCES: &[(&str, Kind, &str)] = &[
    (
        "networking.istio.io/v1beta1",
        Kind::VirtualService,
        "virtualservices",
    ),
    (
        "networking.istio.io/v1beta1",
        Kind::DestinationRule,
        "destinationrules",
    ),
    (
        "networking.istio.io/v1beta1",
        Kind::ServiceEntry,
        "serviceentries",
    ),
    (
        "networking.mesh.io/v1",
        Kind::DestinationRule,
        "destinationrules",
    ),
    (
        "security.istio.io/v1",
        Kind::PeerAuthentication,
        "peerauthentications",
    ),
];

pub(super) const ALL_FIXTURES: &[&str] = &[
    "namespaces.yaml",
    "services.yaml",
    "endpointslices.yaml",
    "pods.yaml",
    "configs.yaml",
];

/// One document of a fixture, typed as its reflector stores it.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a test's handful of fixture objects; boxing would only add noise"
)]
pub(super) enum Object {
    Service(Service),
    Slice(EndpointSlice),
    Pod(Pod),
    Namespace(Namespace),
    Config(DynamicObject),
}

impl Object {
    fn name(&self) -> String {
        match self {
            Object::Service(o) => o.name_any(),
            Object::Slice(o) => o.name_any(),
            Object::Pod(o) => o.name_any(),
            Object::Namespace(o) => o.name_any(),
            Object::Config(o) => o.name_any(),
        }
    }
}

pub(super) fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubernetes")
        .join(name)
}

/// Every document of a fixture as loose YAML values.
pub(super) fn fixture_values(name: &str) -> Vec<serde_yaml::Value> {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| serde_yaml::Value::deserialize(document).expect("fixture is YAML"))
        .collect()
}

pub(super) fn fixture(name: &str) -> Vec<Object> {
    fixture_values(name).into_iter().map(typed).collect()
}

/// One object of a fixture, by name.
pub(super) fn fixture_object(name: &str, object: &str) -> Object {
    fixture(name)
        .into_iter()
        .find(|o| o.name() == object)
        .expect("object in fixture")
}

fn typed(value: serde_yaml::Value) -> Object {
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    match kind {
        "Service" => Object::Service(parse(value)),
        "EndpointSlice" => Object::Slice(parse(value)),
        "Pod" => Object::Pod(parse(value)),
        "Namespace" => Object::Namespace(parse(value)),
        _ => Object::Config(parse(value)),
    }
}

fn parse<K: serde::de::DeserializeOwned>(value: serde_yaml::Value) -> K {
    serde_yaml::from_value(value).unwrap_or_else(|e| panic!("fixture does not parse: {e}"))
}

/// A cluster's reflector caches, written the way the reflectors write them.
pub(super) struct Cluster {
    services: Writer<Service>,
    slices: Writer<EndpointSlice>,
    pods: Writer<Pod>,
    namespaces: Writer<Namespace>,
    configs: Vec<Writer<DynamicObject>>,
    stores: Stores,
    last_good: LastGood,
}

impl Cluster {
    pub fn new() -> Self {
        let services = Writer::default();
        let slices = Writer::default();
        let pods = Writer::default();
        let namespaces = Writer::default();
        let mut configs = Vec::new();
        let mut config_stores = Vec::new();
        for (api_version, kind, plural) in CONFIG_RESOURCES {
            let resource = api_resource(api_version, *kind, plural);
            let writer = Writer::new(resource.clone());
            config_stores.push(ConfigStore {
                kind: *kind,
                resource,
                store: writer.as_reader(),
            });
            configs.push(writer);
        }
        let stores = Stores {
            services: services.as_reader(),
            endpoint_slices: slices.as_reader(),
            pods: pods.as_reader(),
            namespaces: namespaces.as_reader(),
            configs: config_stores,
        };
        Self {
            services,
            slices,
            pods,
            namespaces,
            configs,
            stores,
            last_good: LastGood::default(),
        }
    }

    /// A cluster whose reflectors have each finished the initial list of these fixtures:
    /// `Init`, an `InitApply` per object, then `InitDone`, for every store.
    pub fn listed(fixtures: &[&str]) -> Self {
        let mut cluster = Self::new();
        cluster.relist(fixtures);
        cluster
    }

    /// Every store restarts its list (as after a watch desync) with these fixtures only.
    pub fn relist(&mut self, fixtures: &[&str]) {
        self.begin_list(fixtures);
        self.finish_list();
    }

    /// `Init` and an `InitApply` per object: the writers buffer them.
    pub fn begin_list(&mut self, fixtures: &[&str]) {
        self.writers().into_iter().for_each(|w| w.init());
        for object in fixtures.iter().flat_map(|name| fixture(name)) {
            self.send(object, Change::InitApply);
        }
    }

    /// `InitDone`: the buffered list replaces each store.
    pub fn finish_list(&mut self) {
        self.writers().into_iter().for_each(|w| w.done());
    }

    pub fn apply(&mut self, object: Object) {
        self.send(object, Change::Apply);
    }

    pub fn delete(&mut self, object: Object) {
        self.send(object, Change::Delete);
    }

    pub fn inputs(&mut self) -> Inputs {
        inputs_from(&self.stores, &mut self.last_good)
    }

    fn send(&mut self, object: Object, change: Change) {
        match object {
            Object::Service(o) => self.services.apply_watcher_event(&change.event(o)),
            Object::Slice(o) => self.slices.apply_watcher_event(&change.event(o)),
            Object::Pod(o) => self.pods.apply_watcher_event(&change.event(o)),
            Object::Namespace(o) => self.namespaces.apply_watcher_event(&change.event(o)),
            Object::Config(o) => {
                let index = self.config_index(&o);
                self.configs[index].apply_watcher_event(&change.event(o));
            }
        }
    }

    fn config_index(&self, object: &DynamicObject) -> usize {
        let types = object
            .types
            .as_ref()
            .expect("config fixtures have apiVersion and kind");
        self.stores
            .configs
            .iter()
            .position(|c| {
                c.resource.api_version == types.api_version && c.resource.kind == types.kind
            })
            .expect("a store for every config fixture's type")
    }

    fn writers(&mut self) -> Vec<&mut dyn Listing> {
        let mut all: Vec<&mut dyn Listing> = vec![
            &mut self.services,
            &mut self.slices,
            &mut self.pods,
            &mut self.namespaces,
        ];
        all.extend(self.configs.iter_mut().map(|w| w as &mut dyn Listing));
        all
    }
}

#[derive(Clone, Copy)]
enum Change {
    Apply,
    Delete,
    InitApply,
}

impl Change {
    fn event<K>(self, object: K) -> Event<K> {
        match self {
            Change::Apply => Event::Apply(object),
            Change::Delete => Event::Delete(object),
            Change::InitApply => Event::InitApply(object),
        }
    }
}

/// The start and end of a list, for any writer.
trait Listing {
    fn init(&mut self);
    fn done(&mut self);
}

impl<K> Listing for Writer<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn init(&mut self) {
        self.apply_watcher_event(&Event::Init);
    }

    fn done(&mut self) {
        self.apply_watcher_event(&Event::InitDone);
    }
}

pub(super) fn api_resource(api_version: &str, kind: Kind, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: api_version.to_owned(),
        kind: kind.name().to_owned(),
        plural: plural.to_owned(),
    }
}
