//! `meshctl kube-inject` as users run it: the real binary on a multi-document file.

#![allow(clippy::unwrap_used)]

use std::process::Command;

const MESHCTL: &str = env!("CARGO_BIN_EXE_meshctl");

const APP: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: reviews
spec:
  ports: [{port: 9080, name: http}]
  selector: {app: reviews}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v1
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    metadata:
      labels: {app: reviews, version: v1}
    spec:
      serviceAccountName: bookinfo-reviews
      containers:
      - name: reviews
        image: example/reviews:1
        ports: [{containerPort: 9080}]
        readinessProbe: {httpGet: {path: /health, port: 9080}}
"#;

fn kube_inject(input: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.yaml");
    std::fs::write(&path, input).unwrap();
    Command::new(MESHCTL)
        .args(["kube-inject", "-f", path.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn workloads_get_the_sidecar_and_other_documents_pass_through() {
    let output = kube_inject(APP);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let documents: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(documents.len(), 2, "{text}");
    let service: serde_yaml::Value =
        serde_yaml::from_str(APP.split("---").next().unwrap()).unwrap();
    assert_eq!(documents[0], service, "the Service is untouched");
    let pod = &documents[1]["spec"]["template"]["spec"];
    let names = |list: &serde_yaml::Value| -> Vec<String> {
        list.as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    let init = names(&pod["initContainers"]);
    assert!(
        init.iter().any(|n| n.contains("init")),
        "the iptables step: {init:?}"
    );
    assert!(
        init.iter().any(|n| n.contains("proxy")),
        "the native sidecar: {init:?}"
    );
    assert_eq!(names(&pod["containers"]), ["reviews"]);
    let probe = &pod["containers"][0]["readinessProbe"]["httpGet"];
    assert_eq!(
        probe["port"].as_u64(),
        Some(15021),
        "the app probe goes through the proxy"
    );
    assert!(
        probe["path"]
            .as_str()
            .unwrap_or_default()
            .starts_with("/app-health/reviews/"),
        "{probe:?}"
    );
}

#[test]
fn a_broken_document_is_named_and_nothing_is_printed() {
    let broken = APP.replace(
        "containers:\n      - name: reviews",
        "containers: 7\n      - name: reviews",
    );
    let output = kube_inject(&broken);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("app.yaml"), "{stderr}");
    assert!(stderr.contains("document"), "{stderr}");
}
