//! The same injection offline, for `meshctl kube-inject -f FILE`: multi-document YAML in,
//! YAML out. Pods and the pod templates of Deployments, StatefulSets, DaemonSets,
//! ReplicaSets, Jobs and CronJobs (also inside a `List`) are injected as if their namespace
//! were labelled; every other document is copied through byte for byte.

use serde_json::Value;

use crate::config::Config;
use crate::inject::{self, InjectError, NamespaceInfo};

#[derive(Debug, thiserror::Error)]
pub enum KubeInjectError {
    #[error("document {document}: not valid YAML: {source}")]
    Yaml {
        document: usize,
        source: serde_yaml::Error,
    },
    #[error("document {document} ({kind} {name}): not a valid pod template: {source}")]
    Pod {
        document: usize,
        kind: String,
        name: String,
        source: serde_json::Error,
    },
    #[error("document {document} ({kind} {name}): {source}")]
    Inject {
        document: usize,
        kind: String,
        name: String,
        source: InjectError,
    },
    #[error("document {document} ({kind} {name}): applying the patch: {source}")]
    Patch {
        document: usize,
        kind: String,
        name: String,
        source: json_patch::PatchError,
    },
    #[error("document {document}: writing YAML: {source}")]
    Write {
        document: usize,
        source: serde_yaml::Error,
    },
}

/// Injects every workload in `input` (YAML documents separated by `---`) and returns the
/// documents in the same order. Documents numbered from 1 in errors.
pub fn inject_yaml(input: &str, config: &Config) -> Result<String, KubeInjectError> {
    let mut out = String::new();
    for (index, text) in split_documents(input).into_iter().enumerate() {
        let document = index + 1;
        let value: Value = serde_yaml::from_str::<Option<Value>>(text)
            .map_err(|source| KubeInjectError::Yaml { document, source })?
            .unwrap_or(Value::Null);
        let mut changed = value.clone();
        inject_document(&mut changed, document, config)?;
        if !out.is_empty() {
            out.push_str("---\n");
        }
        if changed == value {
            out.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push('\n');
            }
        } else {
            let yaml = serde_yaml::to_string(&changed)
                .map_err(|source| KubeInjectError::Write { document, source })?;
            out.push_str(&yaml);
        }
    }
    Ok(out)
}

/// The documents' text, split at `---` lines; blank documents (a file that starts with
/// `---`, or ends with one) are dropped.
fn split_documents(input: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in input.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") {
            documents.push(&input[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push(&input[start..]);
    documents.retain(|d| !d.trim().is_empty());
    documents
}

fn inject_document(
    value: &mut Value,
    document: usize,
    config: &Config,
) -> Result<(), KubeInjectError> {
    let kind = value["kind"].as_str().unwrap_or_default().to_owned();
    let namespace = value["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    let name = value["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let template = match kind.as_str() {
        "List" => {
            if let Some(items) = value["items"].as_array_mut() {
                for item in items {
                    inject_document(item, document, config)?;
                }
            }
            return Ok(());
        }
        "Pod" => {
            return inject_pod(value, &namespace, config).map_err(|e| e.at(document, &kind, &name));
        }
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            value.pointer_mut("/spec/template")
        }
        "CronJob" => value.pointer_mut("/spec/jobTemplate/spec/template"),
        _ => None,
    };
    let Some(template) = template else {
        return Ok(());
    };
    let template_namespace = template["metadata"]["namespace"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or(namespace);
    let mut pod = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": template.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
        "spec": template.get("spec").cloned().unwrap_or(Value::Null),
    });
    // The template has no name; the proxy's workload name is the controller's, as the
    // webhook finds it from the pod's owner.
    let named = pod["metadata"]["name"].is_string() || pod["metadata"]["generateName"].is_string();
    if !named && !name.is_empty() {
        pod["metadata"]["generateName"] = Value::String(format!("{name}-"));
    }
    inject_pod(&mut pod, &template_namespace, config).map_err(|e| e.at(document, &kind, &name))?;
    if !named && let Some(metadata) = pod["metadata"].as_object_mut() {
        metadata.remove("generateName");
    }
    template["metadata"] = pod["metadata"].take();
    template["spec"] = pod["spec"].take();
    Ok(())
}

enum PodError {
    Parse(serde_json::Error),
    Inject(InjectError),
    Patch(json_patch::PatchError),
}

impl PodError {
    fn at(self, document: usize, kind: &str, name: &str) -> KubeInjectError {
        let (kind, name) = (kind.to_owned(), name.to_owned());
        match self {
            Self::Parse(source) => KubeInjectError::Pod {
                document,
                kind,
                name,
                source,
            },
            Self::Inject(source) => KubeInjectError::Inject {
                document,
                kind,
                name,
                source,
            },
            Self::Patch(source) => KubeInjectError::Patch {
                document,
                kind,
                name,
                source,
            },
        }
    }
}

fn inject_pod(pod: &mut Value, namespace: &str, config: &Config) -> Result<(), PodError> {
    if pod["metadata"].is_null() {
        pod["metadata"] = serde_json::json!({});
    }
    let typed = serde_json::from_value(pod.clone()).map_err(PodError::Parse)?;
    let patch = inject::inject(&typed, &NamespaceInfo::enabled(namespace), config)
        .map_err(PodError::Inject)?;
    if let Some(patch) = patch {
        json_patch::patch(pod, &patch).map_err(PodError::Patch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
