#![allow(clippy::unwrap_used)]

use super::*;

const GOOD: &str = r#"
services:
  - name: reviews
    ports: [{number: 9080, protocol: HTTP}]
  - name: db
    ports: [{number: 5432, name: pg, protocol: TCP}]
workloads:
  - {service: reviews, version: v1}
  - {service: reviews, version: v2, replicas: 2, serviceAccount: bookinfo-reviews}
  - service: db
    command: ["./bin/db", "--addr", "{listen}", "--literal", "{{x}}"]
    env: {UPSTREAM: "http://{outbound}"}
"#;

fn parse(text: &str) -> Result<Topology, TopologyError> {
    Topology::parse(text, Path::new("dir/topology.yaml"))
}

/// The error's text, which must name the file and the field.
fn error(text: &str) -> String {
    let err = parse(text).expect_err("invalid");
    let message = err.to_string();
    assert!(message.starts_with("dir/topology.yaml: "), "{message}");
    message
}

fn with_workloads(workloads: &str) -> String {
    format!("services: [{{name: reviews, ports: [{{number: 9080}}]}}]\nworkloads: {workloads}\n")
}

#[test]
fn a_topology_parses_with_its_defaults() {
    let topology = parse(GOOD).unwrap();
    assert_eq!(topology.namespace, "default");
    let port = &topology.services[0].ports[0];
    assert_eq!(port.name(), "http-9080");
    assert_eq!(topology.services[1].ports[0].name(), "pg");
    let reviews = &topology.workloads[0];
    assert_eq!(reviews.service_account(), "reviews");
    assert_eq!(reviews.instance_name(0), "reviews-v1");
    assert_eq!(reviews.command()[0], "{echo}");
    let names: Vec<String> = topology
        .instances()
        .map(|(w, n)| w.instance_name(n))
        .collect();
    assert_eq!(
        names,
        ["reviews-v1", "reviews-v2-1", "reviews-v2-2", "db-v1"]
    );
    assert_eq!(topology.workloads[1].service_account(), "bookinfo-reviews");
}

#[test]
fn an_unknown_field_is_named() {
    let message = error(&with_workloads("[{service: reviews, verison: v2}]"));
    assert!(message.contains("workloads[0]"), "{message}");
    assert!(message.contains("verison"), "{message}");
}

#[test]
fn a_wrong_type_is_named_with_its_path() {
    let message = error(&with_workloads("[{service: reviews, replicas: many}]"));
    assert!(message.contains("workloads[0].replicas"), "{message}");
}

#[test]
fn a_workload_of_an_undefined_service_is_refused() {
    let message = error(&with_workloads("[{service: reviewz}]"));
    assert!(message.contains("workloads[0].service"), "{message}");
    assert!(
        message.contains("reviewz") && message.contains("reviews"),
        "{message}"
    );
}

#[test]
fn an_unknown_placeholder_is_refused_where_it_is() {
    let message = error(&with_workloads(
        r#"[{service: reviews, command: ["app", "{listne}"]}]"#,
    ));
    assert!(message.contains("workloads[0].command[1]"), "{message}");
    assert!(
        message.contains("{listen}"),
        "lists the known ones: {message}"
    );
    let message = error(&with_workloads(
        r#"[{service: reviews, env: {X: "{oops"}}]"#,
    ));
    assert!(message.contains("workloads[0].env.X"), "{message}");
}

#[test]
fn ports_the_sidecar_takes_are_refused() {
    let message =
        error("services: [{name: a, ports: [{number: 15001}]}]\nworkloads: [{service: a}]\n");
    assert!(message.contains("services[0].ports[0].number"), "{message}");
    assert!(message.contains("sidecar"), "{message}");
    let message = error(
        "services: [{name: a, ports: [{number: 9080}, {number: 9080, name: b}]}]\nworkloads: [{service: a}]\n",
    );
    assert!(message.contains("services[0].ports[1].number"), "{message}");
    let message = error("services: [{name: a, ports: [{number: 0}]}]\nworkloads: [{service: a}]\n");
    assert!(message.contains("services[0].ports[0].number"), "{message}");
}

#[test]
fn names_must_be_dns_labels_and_unique() {
    let message = error("namespace: Shop\nservices: []\nworkloads: []\n");
    assert!(message.contains(": namespace: "), "{message}");
    let message = error(
        "services: [{name: a, ports: [{number: 1}]}, {name: a, ports: [{number: 2}]}]\nworkloads: [{service: a}]\n",
    );
    assert!(message.contains("services[1].name"), "{message}");
    let message = error(&with_workloads(
        "[{service: reviews}, {service: reviews, name: reviews-v1}]",
    ));
    assert!(message.contains("workloads[1].name"), "{message}");
    let message = error(&with_workloads(
        "[{service: reviews, serviceAccount: Bad_SA}]",
    ));
    assert!(message.contains("workloads[0].serviceAccount"), "{message}");
}

#[test]
fn nothing_to_run_is_an_error() {
    let message = error("services: [{name: a, ports: [{number: 1}]}]\nworkloads: []\n");
    assert!(message.contains(": workloads: "), "{message}");
    let message = error(&with_workloads("[{service: reviews, replicas: 0}]"));
    assert!(message.contains("workloads[0].replicas"), "{message}");
    let message = error(&with_workloads("[{service: reviews, command: []}]"));
    assert!(message.contains("workloads[0].command"), "{message}");
}

#[test]
fn not_yaml_is_an_error_not_a_panic() {
    for text in ["", "[1, 2", "services: 3", "\u{0}"] {
        let err = parse(text).expect_err(text);
        assert!(err.to_string().contains("dir/topology.yaml"), "{err}");
    }
}

#[test]
fn a_missing_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = Topology::load(dir.path()).expect_err("no file");
    assert!(err.to_string().contains("topology.yaml"), "{err}");
}

#[test]
fn placeholders_expand_and_braces_escape() {
    let value = |name: &str| Ok(format!("<{name}>"));
    assert_eq!(expand("a{ip}b{{c}}", value).unwrap(), "a<ip>b{c}");
    assert!(expand("a}b", value).is_err());
    assert!(expand("a{b", value).is_err());
    assert!(check_placeholders("{listen}").is_ok());
    assert!(check_placeholders("{nope}").is_err());
}
