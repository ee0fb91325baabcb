//! Config CRD objects (mesh's and Istio's groups) through parsing and last-good admission.

use kube::api::DynamicObject;
use mesh_core::config::ConfigObject;
use mesh_core::diagnostic::Severity;
use serde_json::json;

use super::{ALL_FIXTURES, Cluster, Object, fixture, fixture_object};
use crate::source::kubernetes::watch::{trim_config, trim_pod};
use crate::source::{Action, Inputs};

/// `(kind, namespace/name)` of every config in force.
fn configs(inputs: &Inputs) -> Vec<(String, String)> {
    inputs
        .configs
        .iter()
        .map(|c| {
            let origin = &c.origin;
            (
                origin.kind.clone(),
                format!("{}/{}", origin.namespace, origin.name),
            )
        })
        .collect()
}

/// `(object name, field, action)` of every error in the status.
fn errors(inputs: &Inputs) -> Vec<(String, String, Action)> {
    inputs
        .status
        .iter()
        .filter(|s| s.diagnostic.severity == Severity::Error)
        .map(|s| {
            let d = &s.diagnostic;
            (d.origin.name.clone(), d.field.clone(), s.action)
        })
        .collect()
}

fn reviews_weights(inputs: &Inputs) -> Vec<Option<u32>> {
    let vs = inputs.configs.iter().find_map(|c| match &c.object {
        ConfigObject::VirtualService(vs) if vs.metadata.name == "reviews" => Some(vs),
        _ => None,
    });
    let vs = vs.expect("the reviews VirtualService");
    vs.spec.http[0].route.iter().map(|r| r.weight).collect()
}

fn config(name: &str, object: &str) -> DynamicObject {
    match fixture_object(name, object) {
        Object::Config(config) => config,
        other => panic!("{object} is not a config object: {other:?}"),
    }
}

#[test]
fn istio_and_mesh_objects_are_parsed_and_a_broken_one_hides_nothing() {
    let inputs = Cluster::listed(ALL_FIXTURES).inputs();
    assert_eq!(
        configs(&inputs),
        [
            ("DestinationRule".into(), "bookinfo/reviews".into()),
            ("PeerAuthentication".into(), "bookinfo/default".into()),
            ("ServiceEntry".into(), "bookinfo/payments-api".into()),
            ("VirtualService".into(), "bookinfo/reviews".into()),
        ]
    );
    // Objects from the API server have no file and no document index.
    let origin = &inputs.configs[0].origin;
    assert!(origin.file.is_empty() && origin.index.is_none());
    assert_eq!(reviews_weights(&inputs), [Some(90), Some(10)]);
    // The Istio DestinationRule whose subsets are not a list: reported by field, skipped.
    assert_eq!(
        errors(&inputs),
        [("ratings".into(), "spec.subsets".into(), Action::Skipped)]
    );
}

#[test]
fn service_entries_from_crds_join_the_kubernetes_services() {
    let registry = Cluster::listed(ALL_FIXTURES).inputs().registry;
    let key = ("bookinfo".to_owned(), "payments.example.com".to_owned());
    let endpoints = registry.endpoints(&key);
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].address.to_string(), "203.0.113.10");
}

#[test]
fn an_invalid_edit_keeps_the_previous_version_and_names_the_field() {
    let mut cluster = Cluster::listed(ALL_FIXTURES);
    assert_eq!(reviews_weights(&cluster.inputs()), [Some(90), Some(10)]);

    for object in fixture("virtualservice-invalid-edit.yaml") {
        cluster.apply(object);
    }
    let inputs = cluster.inputs();
    assert_eq!(reviews_weights(&inputs), [Some(90), Some(10)]);
    let kept = inputs
        .status
        .iter()
        .find(|s| s.diagnostic.origin.kind == "VirtualService")
        .expect("a status entry for the edit");
    assert_eq!(kept.action, Action::KeptPrevious);
    assert_eq!(kept.diagnostic.field, "spec.http[0].route[0].weight");
    assert!(
        kept.diagnostic.message.contains("150"),
        "{}",
        kept.diagnostic
    );
    assert_eq!(configs(&inputs).len(), 4, "nothing else is affected");

    // Fixing it takes effect, and the status clears.
    let mut fixed = config("virtualservice-invalid-edit.yaml", "reviews");
    fixed.data["spec"]["http"][0]["route"][0]["weight"] = json!(100);
    cluster.apply(Object::Config(fixed));
    let inputs = cluster.inputs();
    assert_eq!(reviews_weights(&inputs), [Some(100)]);
    assert!(!errors(&inputs).iter().any(|(name, ..)| name == "reviews"));
}

#[test]
fn an_edit_that_does_not_parse_keeps_the_previous_version_too() {
    let mut cluster = Cluster::listed(ALL_FIXTURES);
    // Versions are remembered when inputs are built: the push loop built them once.
    assert_eq!(reviews_weights(&cluster.inputs()), [Some(90), Some(10)]);
    let mut edit = config("configs.yaml", "reviews");
    edit.data["spec"]["http"][0]["route"][0]["weight"] = json!("most");
    cluster.apply(Object::Config(edit));
    let inputs = cluster.inputs();
    assert_eq!(reviews_weights(&inputs), [Some(90), Some(10)]);
    assert!(errors(&inputs).contains(&(
        "reviews".into(),
        "spec.http[0].route[0].weight".into(),
        Action::KeptPrevious
    )));
}

#[test]
fn deleting_an_object_removes_it() {
    let mut cluster = Cluster::listed(ALL_FIXTURES);
    cluster.delete(Object::Config(config("configs.yaml", "reviews")));
    let inputs = cluster.inputs();
    assert!(
        !configs(&inputs)
            .iter()
            .any(|(kind, _)| kind == "VirtualService")
    );
}

#[test]
fn trimming_drops_what_pilot_never_reads() {
    let mut object = config("configs.yaml", "reviews");
    trim_config(&mut object);
    assert!(object.metadata.managed_fields.is_none_or(|f| f.is_empty()));
    let annotations = object.metadata.annotations.unwrap_or_default();
    assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    assert!(object.data.get("status").is_none());
    assert!(object.data.get("spec").is_some());

    let Object::Pod(mut pod) = fixture_object("pods.yaml", "reviews-v1-5b4d7c9f8d-x2k4p") else {
        panic!("a Pod")
    };
    trim_pod(&mut pod);
    let spec = pod.spec.expect("spec kept for the service account");
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some("bookinfo-reviews")
    );
    assert!(spec.containers.is_empty() && pod.status.is_none());
    assert_eq!(pod.metadata.labels.unwrap_or_default()["version"], "v1");
}
