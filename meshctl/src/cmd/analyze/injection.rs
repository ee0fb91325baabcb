//! Pods the injector would mesh now but that run without the sidecar (created before their
//! namespace was labelled or the injector was installed, or while it was down), and pods it
//! would refuse on their next restart. The decision is the injector's own
//! ([`mesh_injector::inject::plan`]), so this says exactly what the webhook would do.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use mesh_core::diagnostic::{Diagnostic, Origin};
use mesh_injector::Config;
use mesh_injector::inject::{self, NAMESPACE_LABEL, NamespaceInfo};

use crate::cmd::proxy_config::kubernetes::has_sidecar;

/// The findings for `pods`, given each namespace's labels.
pub fn check(pods: &[Pod], labels: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Diagnostic> {
    let config = Config::default();
    let mut found = Vec::new();
    for pod in pods {
        // A finished pod is not restarted; its sidecar no longer matters.
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) || has_sidecar(pod) {
            continue;
        }
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let info = NamespaceInfo {
            labels: labels.get(&namespace).cloned().unwrap_or_default(),
            name: namespace.clone(),
        };
        let origin = Origin {
            kind: "Pod".to_owned(),
            namespace: namespace.clone(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            ..Origin::default()
        };
        match inject::plan(pod, &info, &config) {
            Ok(Ok(_)) => {
                let why = if info.labels.get(NAMESPACE_LABEL).map(String::as_str) == Some("enabled")
                {
                    format!("namespace {namespace} is labelled {NAMESPACE_LABEL}=enabled")
                } else {
                    "the pod asks for it (sidecar.mesh.io/inject: \"true\")".to_owned()
                };
                found.push(Diagnostic::warning(
                    &origin,
                    "",
                    format!(
                        "the pod has no mesh-proxy sidecar although {why}; it was created before \
                         the label or the injector: {}",
                        restart(pod, &namespace)
                    ),
                ));
            }
            Ok(Err(_skip)) => {}
            Err(error) => found.push(Diagnostic::error(
                &origin,
                "metadata",
                format!("the injector will refuse this pod when it is created again: {error}"),
            )),
        }
    }
    found
}

/// Namespace labels that do not do what they seem to: a value of `mesh-injection` other than
/// `enabled` or `disabled` (the webhook then selects none of the namespace's pods, not even
/// labelled ones), and Istio's injection label beside mesh's (two injectors, two sidecars).
pub fn check_namespaces(labels: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for (name, labels) in labels {
        let origin = Origin {
            kind: "Namespace".to_owned(),
            name: name.clone(),
            ..Origin::default()
        };
        let field = format!("metadata.labels.{NAMESPACE_LABEL}");
        match labels.get(NAMESPACE_LABEL).map(String::as_str) {
            None | Some("disabled") => {}
            Some("enabled") => {
                let istio = labels
                    .get("istio-injection")
                    .map(|v| format!("istio-injection={v}"))
                    .filter(|l| l == "istio-injection=enabled")
                    .or_else(|| labels.get("istio.io/rev").map(|v| format!("istio.io/rev={v}")));
                if let Some(istio) = istio {
                    found.push(Diagnostic::warning(
                        &origin,
                        field,
                        format!(
                            "labelled for mesh and for Istio ({istio}): where Istio's injector runs,                              pods get two sidecars; remove one: kubectl label namespace {name} {}-",
                            istio.split('=').next().unwrap_or_default()
                        ),
                    ));
                }
            }
            Some(other) => found.push(Diagnostic::warning(
                &origin,
                field,
                format!(
                    "{NAMESPACE_LABEL}={other} selects nothing, not even pods labelled                      sidecar.mesh.io/inject=true; use enabled or disabled"
                ),
            )),
        }
    }
    found
}

/// How to recreate the pod through its owner: `kubectl -n shop rollout restart deployment/web`.
fn restart(pod: &Pod, namespace: &str) -> String {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let hash = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"));
    let workload = match (owner, hash) {
        (Some(owner), Some(hash)) if owner.kind == "ReplicaSet" => owner
            .name
            .strip_suffix(&format!("-{hash}"))
            .map(|deployment| format!("deployment/{deployment}")),
        (Some(owner), _) if matches!(owner.kind.as_str(), "StatefulSet" | "DaemonSet") => Some(
            format!("{}/{}", owner.kind.to_ascii_lowercase(), owner.name),
        ),
        _ => None,
    };
    match workload {
        Some(workload) => format!("kubectl -n {namespace} rollout restart {workload}"),
        None => "delete the pod and create it again".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn pod(name: &str, namespace: &str, extra: Value) -> Pod {
        let mut value = json!({
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app": "web", "pod-template-hash": "7d9f8b6c5"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                             "name": "web-7d9f8b6c5", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            "status": {"phase": "Running"},
        });
        if let (Some(base), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            for (key, item) in extra {
                base.insert(key.clone(), item.clone());
            }
        }
        serde_json::from_value(value).expect("a pod")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, BTreeMap<String, String>> {
        pairs
            .iter()
            .map(|(ns, label)| {
                let labels = BTreeMap::from([(NAMESPACE_LABEL.to_owned(), (*label).to_owned())]);
                ((*ns).to_owned(), labels)
            })
            .collect()
    }

    #[test]
    fn a_labelled_namespaces_pod_without_the_sidecar_is_named_with_its_restart() {
        let found = check(
            &[pod("web-7d9f8b6c5-x2k4p", "shop", json!({}))],
            &labels(&[("shop", "enabled")]),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let text = found[0].to_string();
        assert!(
            text.starts_with("warning: Pod shop/web-7d9f8b6c5-x2k4p: the pod has no mesh-proxy sidecar although namespace shop is labelled mesh-injection=enabled"),
            "{text}"
        );
        assert!(
            text.ends_with("kubectl -n shop rollout restart deployment/web"),
            "{text}"
        );
    }

    #[test]
    fn injected_opted_out_unlabelled_and_finished_pods_are_fine() {
        let namespaces = labels(&[("shop", "enabled"), ("off", "disabled")]);
        let injected = pod(
            "a",
            "shop",
            json!({"spec": {"containers": [{"name": "web"}, {"name": "mesh-proxy"}]}}),
        );
        let mut opted_out = pod("b", "shop", json!({}));
        opted_out.metadata.labels = Some(BTreeMap::from([(
            "sidecar.mesh.io/inject".to_owned(),
            "false".to_owned(),
        )]));
        let plain = pod("c", "plain", json!({}));
        let disabled = pod("d", "off", json!({}));
        let done = pod("e", "shop", json!({"status": {"phase": "Succeeded"}}));
        let system = pod("f", "kube-system", json!({}));
        let pods = [injected, opted_out, plain, disabled, done, system];
        assert_eq!(check(&pods, &namespaces), vec![]);
    }

    #[test]
    fn namespace_labels_that_mislead_are_named() {
        let mut namespaces = labels(&[("shop", "enabled"), ("typo", "yes"), ("off", "disabled")]);
        if let Some(shop) = namespaces.get_mut("shop") {
            shop.insert("istio-injection".to_owned(), "enabled".to_owned());
        }
        namespaces.insert(
            "istio-only".to_owned(),
            BTreeMap::from([("istio-injection".to_owned(), "enabled".to_owned())]),
        );
        let found: Vec<String> = check_namespaces(&namespaces)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with("warning: Namespace shop: metadata.labels.mesh-injection: labelled for mesh and for Istio (istio-injection=enabled)"),
            "{found:#?}"
        );
        assert!(found[0].ends_with("kubectl label namespace shop istio-injection-"));
        assert!(
            found[1].starts_with("warning: Namespace typo: metadata.labels.mesh-injection: mesh-injection=yes selects nothing"),
            "{found:#?}"
        );
    }

    #[test]
    fn a_pod_label_asking_for_the_sidecar_counts_and_a_bad_one_is_an_error() {
        let mut asks = pod("a", "plain", json!({}));
        asks.metadata.labels = Some(BTreeMap::from([(
            "sidecar.mesh.io/inject".to_owned(),
            "true".to_owned(),
        )]));
        let mut bad = pod("b", "shop", json!({}));
        bad.metadata.annotations = Some(BTreeMap::from([(
            "sidecar.mesh.io/proxyCPU".to_owned(),
            "lots".to_owned(),
        )]));
        let found = check(&[asks, bad], &labels(&[("shop", "enabled")]));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].message.contains("the pod asks for it"),
            "{found:?}"
        );
        assert!(
            found[0]
                .message
                .ends_with("delete the pod and create it again")
        );
        assert!(found[1].is_error());
        assert!(
            found[1].message.contains("sidecar.mesh.io/proxyCPU"),
            "{found:?}"
        );
    }
}
