//! The kinds an installation is made of: where each is served, and its k8s-openapi type,
//! which every rendered object (meshctl's and the chart's) must parse as.

use std::collections::BTreeMap;

use k8s_openapi::DeepMerge;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, GroupVersionKind};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// (apiVersion, kind, plural, namespaced)
const KINDS: &[(&str, &str, &str, bool)] = &[
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    ("v1", "Namespace", "namespaces", false),
    ("v1", "ServiceAccount", "serviceaccounts", true),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    ("v1", "ConfigMap", "configmaps", true),
    ("v1", "Service", "services", true),
    ("apps/v1", "Deployment", "deployments", true),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
];

/// An object's address on the API server.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    /// `Deployment mesh-system/pilot`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.resource.kind, self.name),
            None => format!("{} {}", self.resource.kind, self.name),
        }
    }
}

pub fn target(object: &Value) -> Result<Target, String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let &(_, _, plural, namespaced) = KINDS
        .iter()
        .find(|(v, k, ..)| *v == api_version && *k == kind)
        .ok_or_else(|| format!("{api_version} {kind} is not a kind meshctl installs"))?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let name = object["metadata"]["name"]
        .as_str()
        .ok_or_else(|| format!("a {kind} has no name"))?;
    let namespace = object["metadata"]["namespace"].as_str();
    if namespaced != namespace.is_some() {
        return Err(format!("{kind} {name}: namespace given wrongly"));
    }
    Ok(Target {
        resource: ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural,
        ),
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
    })
}

/// Parses `object` as its k8s-openapi type and checks nothing was dropped on the way: a
/// misspelt field fails here instead of being ignored by the API server.
pub fn check(object: &Value) -> Result<(), String> {
    let target = target(object)?;
    let typed = match target.resource.kind.as_str() {
        "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(object),
        "Namespace" => round_trip::<Namespace>(object),
        "ServiceAccount" => round_trip::<ServiceAccount>(object),
        "ClusterRole" => round_trip::<ClusterRole>(object),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(object),
        "Role" => round_trip::<Role>(object),
        "RoleBinding" => round_trip::<RoleBinding>(object),
        "ConfigMap" => round_trip::<ConfigMap>(object),
        "Service" => round_trip::<Service>(object),
        "Deployment" => round_trip::<Deployment>(object),
        "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(object),
        "MutatingWebhookConfiguration" => round_trip::<MutatingWebhookConfiguration>(object),
        other => Err(format!("no type for {other}")),
    }
    .map_err(|e| format!("{}: {e}", target.describe()))?;
    // A CRD's schema is copied as codegen wrote it; its type drops empty defaults.
    let exact = target.resource.kind != "CustomResourceDefinition";
    if exact && canonical(typed) != canonical(object.clone()) {
        return Err(format!(
            "{}: a field is not part of its type (misspelt?)",
            target.describe()
        ));
    }
    Ok(())
}

fn round_trip<K: DeserializeOwned + serde::Serialize + DeepMerge>(
    object: &Value,
) -> Result<Value, String> {
    let typed: K = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// The same value with sorted keys, whatever serde_json's `preserve_order` (which another
/// crate in the build may turn on) does, so output and comparisons are stable.
pub fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}
