//! The MutatingWebhookConfiguration's selectors, evaluated as the API server evaluates
//! them, send the injector exactly the pods it injects, each once: a namespace label, a
//! pod label opting in or out, the cluster's own namespaces, the gateways' pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use mesh_injector::config::Config;
use mesh_injector::inject::{self, NamespaceInfo};
use meshctl::cmd::install::gateways::GATEWAY_NAMESPACE;
use meshctl::cmd::install::manifest::{self, INJECTOR};
use meshctl::cmd::install::values::Values;
use serde_json::{Value, json};

type Labels = BTreeMap<String, String>;

/// A label selector (matchLabels and matchExpressions), as apimachinery matches it.
fn matches(selector: &Value, labels: &Labels) -> bool {
    let exact = selector["matchLabels"].as_object().into_iter().flatten();
    let exact_ok = exact
        .into_iter()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten();
    let expressions_ok = expressions.into_iter().all(|e| {
        let key = e["key"].as_str().expect("key");
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let value = labels.get(key).map(String::as_str);
        match e["operator"].as_str().expect("operator") {
            "In" => value.is_some_and(|v| values.contains(&v)),
            "NotIn" => !value.is_some_and(|v| values.contains(&v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("operator {other}"),
        }
    });
    exact_ok && expressions_ok
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn webhooks(values: &Values) -> Vec<Value> {
    let objects = manifest::render(values).expect("renders").objects;
    let configuration = objects
        .iter()
        .find(|o| o["kind"] == "MutatingWebhookConfiguration" && o["metadata"]["name"] == INJECTOR)
        .expect("the webhook configuration");
    configuration["webhooks"]
        .as_array()
        .expect("webhooks")
        .clone()
}

/// The entries that send this pod to the injector.
fn called_by<'a>(webhooks: &'a [Value], namespace: &Labels, pod: &Labels) -> Vec<&'a str> {
    webhooks
        .iter()
        .filter(|w| {
            matches(&w["namespaceSelector"], namespace) && matches(&w["objectSelector"], pod)
        })
        .map(|w| w["name"].as_str().expect("name"))
        .collect()
}

fn injects(namespace: &str, namespace_labels: &Labels, pod_labels: &Labels) -> bool {
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace, "labels": pod_labels},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }))
    .expect("a pod");
    let info = NamespaceInfo {
        name: namespace.to_owned(),
        labels: namespace_labels.clone(),
    };
    inject::plan(&pod, &info, &Config::default())
        .expect("no error")
        .is_ok()
}

#[test]
fn the_webhook_calls_the_injector_for_exactly_the_pods_it_injects() {
    let webhooks = webhooks(&Values::default());
    assert_eq!(webhooks.len(), 2, "{webhooks:#?}");
    let namespace_labels = [None, Some("enabled"), Some("disabled")];
    let pod_labels = [None, Some("true"), Some("false")];
    let mut called = 0;
    for name in ["shop", "kube-system", "kube-public", "kube-node-lease"] {
        for namespace_label in namespace_labels {
            for pod_label in pod_labels {
                // The API server sets this label on every namespace.
                let mut namespace = labels(&[("kubernetes.io/metadata.name", name)]);
                if let Some(value) = namespace_label {
                    namespace.insert("mesh-injection".to_owned(), value.to_owned());
                }
                let mut pod = labels(&[("app", "web")]);
                if let Some(value) = pod_label {
                    pod.insert("sidecar.mesh.io/inject".to_owned(), value.to_owned());
                }
                let by = called_by(&webhooks, &namespace, &pod);
                let case = format!("namespace {namespace:?}, pod {pod:?}: called by {by:?}");
                assert!(by.len() <= 1, "{case}");
                assert_eq!(!by.is_empty(), injects(name, &namespace, &pod), "{case}");
                called += by.len();
            }
        }
    }
    // shop: enabled with no label or "true", and unlabelled with "true".
    assert_eq!(called, 3);
}

#[test]
fn the_selectors_name_the_labels_istio_users_know() {
    let webhooks = webhooks(&Values::default());
    let namespace_entry = &webhooks[0];
    assert_eq!(
        namespace_entry["name"],
        "namespace.sidecar-injector.mesh.io"
    );
    assert_eq!(
        namespace_entry["objectSelector"],
        json!({"matchExpressions": [
            {"key": "sidecar.mesh.io/inject", "operator": "NotIn", "values": ["false"]}]})
    );
    let object_entry = &webhooks[1];
    assert_eq!(object_entry["name"], "object.sidecar-injector.mesh.io");
    assert_eq!(
        object_entry["objectSelector"],
        json!({"matchExpressions": [
            {"key": "sidecar.mesh.io/inject", "operator": "In", "values": ["true"]}]})
    );
    assert_eq!(
        object_entry["namespaceSelector"]["matchExpressions"][0],
        json!({"key": "mesh-injection", "operator": "DoesNotExist"})
    );
    for entry in &webhooks {
        let system = &entry["namespaceSelector"]["matchExpressions"][1];
        assert_eq!(system["key"], "kubernetes.io/metadata.name", "{entry}");
        assert_eq!(system["operator"], "NotIn");
        assert_eq!(
            system["values"],
            json!(["kube-system", "kube-public", "kube-node-lease"])
        );
    }
}

/// The gateways live in a labelled namespace (for the trust bundle) and opt out by label,
/// so the API server never asks the injector about them.
#[test]
fn the_gateways_pods_are_never_sent_to_the_injector() {
    let sets = ["gateways.egress.enabled=true".to_owned()];
    let values = Values::load(&[] as &[&std::path::Path], &sets).expect("valid");
    let objects = manifest::render(&values).expect("renders").objects;
    let webhooks = webhooks(&values);
    let namespace = objects
        .iter()
        .find(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == GATEWAY_NAMESPACE)
        .expect("the gateways' namespace");
    let mut namespace_labels: Labels =
        serde_json::from_value(namespace["metadata"]["labels"].clone()).expect("labels");
    namespace_labels.insert(
        "kubernetes.io/metadata.name".to_owned(),
        GATEWAY_NAMESPACE.to_owned(),
    );
    for name in ["ingressgateway", "egressgateway"] {
        let deployment = objects
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == name)
            .expect("the gateway");
        let pod_labels: Labels =
            serde_json::from_value(deployment["spec"]["template"]["metadata"]["labels"].clone())
                .expect("labels");
        let by = called_by(&webhooks, &namespace_labels, &pod_labels);
        assert!(by.is_empty(), "{name} is sent to the injector by {by:?}");
        assert!(!injects(GATEWAY_NAMESPACE, &namespace_labels, &pod_labels));
    }
}
