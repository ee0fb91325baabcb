//! The live cluster as `analyze` reads it: every config object of mesh's and Istio's groups
//! (found by discovery, one version per group and kind, as pilot's Kubernetes source picks
//! it), the Services that define hosts, and the Namespaces and Pods the injection check
//! needs. Config objects go through mesh-core's parser exactly as files do, named
//! `Kind namespace/name` with no file, so every analyzer runs on them unchanged.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::discovery::{ApiGroup, Discovery, verbs};
use kube::{Api, Client};
use mesh_core::config::{ApiFamily, DEFAULT_NAMESPACE, Kind, accepted_versions};
use mesh_core::diagnostic::{Diagnostic, Origin};
use mesh_core::load::{ConfigSet, Located, Skipped, parse_object};
use serde_json::{Value, json};

use crate::cause::{cluster_unreachable, innermost};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no cluster reachable: {0}; set KUBECONFIG or the current context (`kubectl config current-context`), or analyze files alone: -f FILE --use-kube=false"
    )]
    NoCluster(String),
    #[error("reading {what} from the cluster: {error}")]
    Api { what: String, error: String },
    #[error("nothing to analyze: with --use-kube=false give files, -f FILE")]
    NothingToAnalyze,
}

/// What the cluster holds, for one analysis.
#[derive(Debug, Default)]
pub struct ClusterObjects {
    /// Config objects (parsed, or a diagnostic naming the object) and Services.
    pub set: ConfigSet,
    pub namespaces: Vec<Namespace>,
    /// The pods of the namespace analyzed, or of every namespace.
    pub pods: Vec<Pod>,
    /// The `group/version/plural` read for each config kind the cluster serves.
    pub resources: Vec<String>,
}

/// Reads the cluster. Config objects and Services are read in every namespace (a route in
/// one namespace may name a host or subset defined in another); pods only in `namespace`
/// when one is given.
pub async fn read(
    client: &Client,
    namespace: Option<&str>,
) -> Result<ClusterObjects, ClusterError> {
    let mut objects = ClusterObjects::default();
    for (kind, resource) in config_resources(client).await? {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let what = format!("{}.{}", resource.plural, resource.group);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| error(&what, e))?;
        for object in &list.items {
            load(kind, &resource.api_version, object, &mut objects.set);
        }
        objects
            .resources
            .push(format!("{}/{}", resource.api_version, resource.plural));
    }
    let services: Api<Service> = Api::all(client.clone());
    let services = services
        .list(&ListParams::default())
        .await
        .map_err(|e| error("services", e))?;
    objects
        .set
        .skipped
        .extend(services.items.iter().map(|service| Skipped {
            origin: origin("Service", &service.metadata),
            api_version: "v1".to_owned(),
        }));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    objects.namespaces = namespaces
        .list(&ListParams::default())
        .await
        .map_err(|e| error("namespaces", e))?
        .items;
    let pods: Api<Pod> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    objects.pods = pods
        .list(&ListParams::default())
        .await
        .map_err(|e| error("pods", e))?
        .items;
    Ok(objects)
}

/// The config groups mesh reads: mesh's own and Istio's, every family.
fn config_groups() -> Vec<&'static str> {
    ApiFamily::ALL
        .iter()
        .flat_map(|family| accepted_versions(*family).iter().map(|(group, _)| *group))
        .collect()
}

/// Each config kind the cluster serves, per group, at one version: the group's preferred
/// version when mesh accepts it, else the most stable accepted version that serves it (a
/// CRD serves every object at every version; reading two would count each object twice).
async fn config_resources(client: &Client) -> Result<Vec<(Kind, ApiResource)>, ClusterError> {
    let discovery = Discovery::new(client.clone())
        .filter(&config_groups())
        .run()
        .await
        .map_err(|e| error("the API groups (discovery)", e))?;
    Ok(discovery.groups().flat_map(choose).collect())
}

fn choose(group: &ApiGroup) -> Vec<(Kind, ApiResource)> {
    let Some((family, accepted)) = ApiFamily::ALL.into_iter().find_map(|family| {
        accepted_versions(family)
            .iter()
            .find(|(name, _)| *name == group.name())
            .map(|(_, versions)| (family, *versions))
    }) else {
        return Vec::new();
    };
    let listable: Vec<ApiResource> = group
        .versions()
        .flat_map(|version| group.versioned_resources(version))
        .filter(|(_, caps)| caps.supports_operation(verbs::LIST))
        .map(|(resource, _)| resource)
        .collect();
    let serving = |kind: Kind, version: &str| {
        listable
            .iter()
            .find(|r| r.kind == kind.name() && r.version == version)
    };
    let preferred = group
        .preferred_version()
        .filter(|version| accepted.contains(version));
    Kind::ALL
        .into_iter()
        .filter(|kind| kind.family() == family)
        .filter_map(|kind| {
            let resource = preferred
                .and_then(|version| serving(kind, version))
                .or_else(|| accepted.iter().rev().find_map(|v| serving(kind, v)))?;
            Some((kind, resource.clone()))
        })
        .collect()
}

fn load(kind: Kind, api_version: &str, object: &DynamicObject, set: &mut ConfigSet) {
    let origin = origin(kind.name(), &object.metadata);
    match parse_object(kind, document(kind, api_version, object)) {
        Ok(object) => set.objects.push(Located { origin, object }),
        Err((field, message)) => set
            .diagnostics
            .push(Diagnostic::error(&origin, field, message)),
    }
}

/// Objects from the API server have no file and no document index.
fn origin(kind: &str, metadata: &kube::api::ObjectMeta) -> Origin {
    Origin {
        kind: kind.to_owned(),
        namespace: metadata
            .namespace
            .clone()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
        name: metadata.name.clone().unwrap_or_default(),
        ..Origin::default()
    }
}

/// The object as a config document: the four fields the parser accepts and only the
/// metadata mesh reads (uid, managedFields, status... mean nothing here).
fn document(kind: Kind, api_version: &str, object: &DynamicObject) -> serde_yaml::Value {
    let metadata = &object.metadata;
    let value = json!({
        "apiVersion": api_version,
        "kind": kind.name(),
        "metadata": {
            "name": metadata.name.clone().unwrap_or_default(),
            "namespace": metadata.namespace.clone().unwrap_or_default(),
            "labels": metadata.labels.clone().unwrap_or_default(),
            "annotations": metadata.annotations.clone().unwrap_or_default(),
        },
        "spec": object.data.get("spec").cloned().unwrap_or(Value::Null),
    });
    // JSON is a subset of YAML's data model: this conversion does not fail.
    serde_yaml::to_value(value).unwrap_or_default()
}

fn error(what: &str, error: kube::Error) -> ClusterError {
    if cluster_unreachable(&error) {
        return ClusterError::NoCluster(innermost(&error));
    }
    ClusterError::Api {
        what: what.to_owned(),
        error: error.to_string(),
    }
}

/// Labels by namespace name.
pub fn namespace_labels(namespaces: &[Namespace]) -> BTreeMap<String, BTreeMap<String, String>> {
    namespaces
        .iter()
        .filter_map(|n| {
            let name = n.metadata.name.clone()?;
            Some((name, n.metadata.labels.clone().unwrap_or_default()))
        })
        .collect()
}
