//! The injection itself, a pure function of the pod, its namespace and the config: whether
//! to inject, and the JSON patch that does it. The webhook and `meshctl kube-inject` both
//! call [`inject`].

pub mod probes;
pub mod sidecar;

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::annotations::{self, BadAnnotation, Overrides};
use crate::config::Config;
use sidecar::{Settings, Workload};

/// The namespace label that turns injection on (`enabled`) or off (`disabled`).
pub const NAMESPACE_LABEL: &str = "mesh-injection";
/// Never injected, whatever a pod says: the cluster's own pods.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// The pod's namespace as injection sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl NamespaceInfo {
    /// A namespace labelled `mesh-injection=enabled`: what `kube-inject` assumes.
    pub fn enabled(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            labels: BTreeMap::from([(NAMESPACE_LABEL.to_owned(), "enabled".to_owned())]),
        }
    }

    fn label(&self) -> Option<&str> {
        self.labels.get(NAMESPACE_LABEL).map(String::as_str)
    }
}

/// Why a pod is left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    SystemNamespace,
    HostNetwork,
    AlreadyInjected,
    /// `sidecar.mesh.io/inject: "false"`, as a label or an annotation.
    OptedOut,
    /// `mesh-injection=disabled` on the namespace.
    NamespaceDisabled,
    /// Neither the namespace label nor the pod's label or annotation asks for it.
    NotSelected,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemNamespace => "system namespace",
            Self::HostNetwork => "hostNetwork pod",
            Self::AlreadyInjected => "already injected",
            Self::OptedOut => "opted out",
            Self::NamespaceDisabled => "namespace has mesh-injection=disabled",
            Self::NotSelected => "neither namespace label nor pod label or annotation",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error(transparent)]
    Annotation(#[from] BadAnnotation),
    #[error("label {label}: {reason}")]
    Label { label: &'static str, reason: String },
    #[error("the pod has no spec")]
    NoSpec,
}

/// The patch that meshes `pod`, `None` when it is left alone.
pub fn inject(
    pod: &Pod,
    namespace: &NamespaceInfo,
    config: &Config,
) -> Result<Option<Patch>, InjectError> {
    Ok(plan(pod, namespace, config)?.ok())
}

/// Like [`inject`], with the reason when the pod is left alone.
pub fn plan(
    pod: &Pod,
    namespace: &NamespaceInfo,
    config: &Config,
) -> Result<Result<Patch, Skip>, InjectError> {
    let mut overrides = Overrides::parse(pod.metadata.annotations.as_ref())?;
    overrides.inject = pod_choice(pod, overrides.inject)?;
    if let Err(skip) = decide(pod, namespace, &overrides) {
        return Ok(Err(skip));
    }
    Ok(Ok(build(pod, config, &overrides)?))
}

/// The pod's own `sidecar.mesh.io/inject`: its label wins over its annotation (`annotated`),
/// as in Istio, because the label is what the webhook configuration's objectSelector
/// sees: the pod a `"true"` label brought here is meshed even if an old annotation says
/// otherwise, and a `"false"` label is never sent here from a labelled namespace.
pub fn pod_choice(pod: &Pod, annotated: Option<bool>) -> Result<Option<bool>, InjectError> {
    let label = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(annotations::INJECT));
    match label {
        None => Ok(annotated),
        Some(value) => annotations::boolean(annotations::INJECT, value.trim())
            .map(Some)
            .map_err(|bad| InjectError::Label {
                label: annotations::INJECT,
                reason: bad.reason,
            }),
    }
}

/// The order matters: the cluster's own namespaces and hostNetwork pods (whose iptables
/// would be the node's) are never injected, whatever the pod says; a pod's label or
/// annotation beats its namespace's label except `disabled`.
fn decide(pod: &Pod, namespace: &NamespaceInfo, overrides: &Overrides) -> Result<(), Skip> {
    if SYSTEM_NAMESPACES.contains(&namespace.name.as_str()) {
        return Err(Skip::SystemNamespace);
    }
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.host_network).unwrap_or(false) {
        return Err(Skip::HostNetwork);
    }
    if already_injected(pod) {
        return Err(Skip::AlreadyInjected);
    }
    match (overrides.inject, namespace.label()) {
        (Some(false), _) => Err(Skip::OptedOut),
        (_, Some("disabled")) => Err(Skip::NamespaceDisabled),
        (Some(true), _) | (None, Some("enabled")) => Ok(()),
        (None, _) => Err(Skip::NotSelected),
    }
}

fn already_injected(pod: &Pod) -> bool {
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(annotations::STATUS));
    let spec = pod.spec.as_ref();
    let named = |name: &str| name == sidecar::PROXY_NAME || name == sidecar::INIT_NAME;
    let has_container = spec.is_some_and(|s| {
        s.containers.iter().any(|c| named(&c.name))
            || s.init_containers.iter().flatten().any(|c| named(&c.name))
    });
    annotated || has_container
}

fn build(pod: &Pod, config: &Config, overrides: &Overrides) -> Result<Patch, InjectError> {
    let spec = pod.spec.as_ref().ok_or(InjectError::NoSpec)?;
    let native = overrides.native_sidecar.unwrap_or(config.native_sidecar);
    let rewrites = if overrides
        .rewrite_probes
        .unwrap_or(config.rewrite_app_probes)
    {
        probes::rewrite(&spec.containers)
    } else {
        probes::Rewrites::default()
    };
    let settings = Settings {
        config,
        overrides,
        native,
        app_probers: rewrites.probers_json(),
    };
    let init = sidecar::init_container(&settings);
    let proxy = sidecar::proxy_container(&settings, &workload(pod));
    let volumes = sidecar::volumes(config);

    let mut ops = Vec::new();
    // Probe rewrites first: their indexes are the app's, before the proxy is inserted.
    for rewrite in &rewrites.rewrites {
        let index = rewrite.container.to_string();
        let path = ["spec", "containers", &index, rewrite.field, "httpGet"];
        ops.push(replace(&path, rewrite.http_get.clone()));
    }
    // The init step runs first; the native proxy right after it, before the app's own
    // init containers, so that those have a working network too.
    let mut first_inits = vec![init];
    if native {
        first_inits.push(proxy.clone());
    }
    prepend(
        &mut ops,
        "initContainers",
        spec.init_containers.is_some(),
        first_inits,
    );
    if !native {
        ops.push(add(&["spec", "containers", "0"], proxy));
    }
    append(&mut ops, "volumes", spec.volumes.is_some(), volumes);
    annotate(&mut ops, pod, &status(native, &rewrites));
    Ok(Patch(ops))
}

fn prepend(ops: &mut Vec<PatchOperation>, field: &str, exists: bool, items: Vec<Value>) {
    if !exists {
        ops.push(add(&["spec", field], Value::Array(items)));
        return;
    }
    for (index, item) in items.into_iter().enumerate() {
        ops.push(add(&["spec", field, &index.to_string()], item));
    }
}

fn append(ops: &mut Vec<PatchOperation>, field: &str, exists: bool, items: Vec<Value>) {
    if !exists {
        ops.push(add(&["spec", field], Value::Array(items)));
        return;
    }
    for item in items {
        ops.push(add(&["spec", field, "-"], item));
    }
}

/// The status annotation, and Prometheus scrape annotations unless the pod has its own.
fn annotate(ops: &mut Vec<PatchOperation>, pod: &Pod, status: &str) {
    let existing = pod.metadata.annotations.as_ref();
    let mut wanted = vec![(annotations::STATUS, status.to_owned())];
    let scrape = [
        ("prometheus.io/scrape", "true".to_owned()),
        ("prometheus.io/port", sidecar::METRICS_PORT.to_string()),
        ("prometheus.io/path", "/stats/prometheus".to_owned()),
    ];
    if !existing.is_some_and(|a| a.keys().any(|k| k.starts_with("prometheus.io/"))) {
        wanted.extend(scrape);
    }
    match existing {
        None => {
            let map: serde_json::Map<String, Value> = wanted
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect();
            ops.push(add(&["metadata", "annotations"], Value::Object(map)));
        }
        Some(_) => {
            for (key, value) in wanted {
                ops.push(add(&["metadata", "annotations", key], Value::String(value)));
            }
        }
    }
}

fn status(native: bool, rewrites: &probes::Rewrites) -> String {
    let (init, containers) = if native {
        (vec![sidecar::INIT_NAME, sidecar::PROXY_NAME], vec![])
    } else {
        (vec![sidecar::INIT_NAME], vec![sidecar::PROXY_NAME])
    };
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "initContainers": init,
        "containers": containers,
        "volumes": [sidecar::TOKEN_VOLUME, sidecar::ROOT_VOLUME],
        "nativeSidecar": native,
        "rewrittenProbes": rewrites.probers.keys().collect::<Vec<_>>(),
    })
    .to_string()
}

/// The workload's name (the Deployment's, not the ReplicaSet's or the pod's), app,
/// version and labels, for the proxy's metrics and pilot's selection.
fn workload(pod: &Pod) -> Workload {
    let meta = &pod.metadata;
    let labels = meta.labels.clone().unwrap_or_default();
    let owners = meta.owner_references.iter().flatten();
    let owner = owners
        .clone()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.clone().next());
    let name = match owner {
        Some(owner) => {
            let hash = labels.get("pod-template-hash");
            match hash {
                Some(hash) if owner.kind == "ReplicaSet" => owner
                    .name
                    .strip_suffix(&format!("-{hash}"))
                    .unwrap_or(&owner.name)
                    .to_owned(),
                // A CronJob's Job is `<cronjob>-<scheduled minute>`: one workload, not one
                // per run.
                _ if owner.kind == "Job" => match owner.name.rsplit_once('-') {
                    Some((cron, minute))
                        if minute.len() >= 8 && minute.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        cron.to_owned()
                    }
                    _ => owner.name.clone(),
                },
                _ => owner.name.clone(),
            }
        }
        None => meta
            .name
            .clone()
            .or_else(|| {
                meta.generate_name
                    .as_ref()
                    .map(|g| g.trim_end_matches('-').to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned()),
    };
    let label = |keys: [&str; 2]| keys.iter().find_map(|k| labels.get(*k).cloned());
    Workload {
        name,
        app: label(["app.kubernetes.io/name", "app"]),
        version: label(["app.kubernetes.io/version", "version"]),
        labels: labels
            .iter()
            .filter(|(k, _)| k.as_str() != "pod-template-hash")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn pointer(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

fn add(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: pointer(path),
        value,
    })
}

fn replace(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation {
        path: pointer(path),
        value,
    })
}

#[cfg(test)]
mod tests;
