//! `meshctl x describe pod` against examples/bookinfo run locally, with a VirtualService
//! for reviews and security policies of each scope added: the real binary reading pilot's
//! `/debug/config_dump?proxy=ID` and the proxy's admin port.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use meshctl::local::{self, LocalMesh};
use serde_json::Value;
use support::local::{Run, binaries, copy_example, free_options, meshctl};

const POLICIES: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: mesh-system
spec:
  mtls: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: reviews-readers
spec:
  selector:
    matchLabels: {app: reviews}
  rules:
  - from:
    - source:
        principals: [cluster.local/ns/default/sa/bookinfo-productpage]
";

fn ok(state: &Path, args: &[&str]) -> Run {
    let run = meshctl(state, args);
    assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
    run
}

#[tokio::test]
async fn describe_pod_names_what_applies_and_why() {
    let topology = tempfile::tempdir().unwrap();
    copy_example(topology.path());
    std::fs::write(topology.path().join("config/policies.yaml"), POLICIES).unwrap();
    let state = tempfile::tempdir().unwrap();
    let _mesh: LocalMesh = local::up(
        topology.path(),
        &binaries(),
        state.path(),
        &free_options(7),
        &mut |line| eprintln!("up: {line}"),
    )
    .await
    .unwrap();
    let state = state.path();

    let text = ok(state, &["x", "describe", "pod", "reviews-v2"]).stdout;
    for line in [
        "Pod: reviews-v2 (proxy reviews-v2.default)",
        "Service: reviews.default.svc.cluster.local port 9080",
        "DestinationRule default/reviews for reviews.default.svc.cluster.local port 9080",
        "   Matching subsets: v2 (version=v2)",
        "      (Non-matching subsets v1, v3)",
        "   jason: /* end-user=jason -> reviews.default.svc.cluster.local subset v2",
        "   -: /* -> reviews.default.svc.cluster.local subset v1",
        "PeerAuthentication mesh-system/default (mesh-wide (root namespace mesh-system)): mode PERMISSIVE",
        "AuthorizationPolicy default/reviews-readers (selector app=reviews): ALLOW, 1 rule",
        "No RequestAuthentication applies",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
    assert!(
        text.contains("VirtualService default/reviews routes"),
        "{text}"
    );
    assert!(text.contains("as pilot would send it"), "{text}");

    // productpage: no subset routing to it, the mesh-wide policy, not reviews' policy.
    let json = ok(
        state,
        &["x", "describe", "pod", "productpage-v1", "-o", "json"],
    )
    .stdout;
    let description: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(description["node"], "productpage-v1.default");
    assert_eq!(
        description["services"][0]["host"],
        "productpage.default.svc.cluster.local"
    );
    assert_eq!(description["virtualServices"], Value::Array(Vec::new()));
    assert_eq!(
        description["authorizationPolicies"],
        Value::Array(Vec::new())
    );
    assert_eq!(
        description["peerAuthentications"][0]["scope"],
        "mesh-wide (root namespace mesh-system)"
    );
    assert_eq!(description["inboundPorts"][0]["mtls"], "PERMISSIVE");

    // A workload the mesh does not run: one line, what it runs.
    let missing = meshctl(state, &["x", "describe", "pod", "nosuch"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .starts_with("error: no workload \"nosuch\" in the local mesh; its workloads: "),
        "{}",
        missing.stderr
    );
}
