//! `meshctl local` and `meshctl apply` where they fail before starting anything: the real
//! binary, its exit codes and the messages that tell the user what to do. The running mesh
//! is tested end to end in `e2e/tests/local.rs`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn meshctl(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshctl"));
    command.args(args);
    for name in [
        "MESH_PILOT_BIN",
        "MESH_CITADEL_BIN",
        "MESH_PROXY_BIN",
        "MESH_ECHO_BIN",
        "MESH_BIN_DIR",
        "MESH_LOCAL_STATE_DIR",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A directory with files named as the four programs (never run: `up` fails before).
fn fake_bin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["pilot", "citadel", "mesh-proxy", "mesh-echo"] {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    dir
}

#[test]
fn a_missing_program_is_named_with_the_build_command() {
    let bin = tempfile::tempdir().unwrap();
    std::fs::write(bin.path().join("pilot"), "").unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = meshctl(
        &[
            "local",
            "up",
            "examples/bookinfo",
            "--bin-dir",
            bin.path().to_str().unwrap(),
        ],
        &[("MESH_LOCAL_STATE_DIR", state.path())],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let text = text(&output);
    assert!(text.contains("citadel not found in"), "{text}");
    assert!(text.contains("cargo build -p mesh-citadel"), "{text}");
}

#[test]
fn a_bad_topology_names_the_file_and_the_field_and_starts_nothing() {
    let bin = fake_bin_dir();
    let topology = tempfile::tempdir().unwrap();
    std::fs::write(
        topology.path().join("topology.yaml"),
        "services: [{name: reviews, ports: [{number: 9080}]}]\nworkloads: [{service: reviewz}]\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = meshctl(
        &[
            "local",
            "up",
            topology.path().to_str().unwrap(),
            "--state-dir",
            state.path().to_str().unwrap(),
        ],
        &[("MESH_BIN_DIR", bin.path())],
    );
    assert_eq!(output.status.code(), Some(2));
    let text = text(&output);
    assert!(
        text.contains("topology.yaml: workloads[0].service"),
        "{text}"
    );
    assert!(text.contains("reviewz"), "{text}");
    assert!(!state.path().join("local.json").exists(), "nothing started");
}

#[test]
fn a_missing_topology_directory_is_named() {
    let bin = fake_bin_dir();
    let state = tempfile::tempdir().unwrap();
    let missing = state.path().join("nowhere");
    let output = meshctl(
        &["local", "up", missing.to_str().unwrap()],
        &[
            ("MESH_BIN_DIR", bin.path()),
            ("MESH_LOCAL_STATE_DIR", state.path()),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("nowhere"), "{}", text(&output));
}

#[test]
fn without_a_running_mesh_status_fails_down_is_a_no_op_and_apply_refuses() {
    let state = tempfile::tempdir().unwrap();
    let env = [("MESH_LOCAL_STATE_DIR", state.path())];
    let status = meshctl(&["local", "status"], &env);
    assert_eq!(status.status.code(), Some(1));
    assert!(
        text(&status).contains("no local mesh runs"),
        "{}",
        text(&status)
    );

    let down = meshctl(&["local", "down"], &env);
    assert_eq!(down.status.code(), Some(0));
    assert!(
        text(&down).contains("no local mesh runs"),
        "{}",
        text(&down)
    );

    let file = state.path().join("route.yaml");
    std::fs::write(&file, "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [r]}\n").unwrap();
    let apply = meshctl(&["apply", "-f", file.to_str().unwrap()], &env);
    assert_eq!(apply.status.code(), Some(2));
    assert!(
        text(&apply).contains("no local mesh runs"),
        "{}",
        text(&apply)
    );
}

#[test]
fn a_state_file_that_is_not_json_is_reported_not_a_panic() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("local.json"), "{not json").unwrap();
    let output = meshctl(
        &["local", "status"],
        &[("MESH_LOCAL_STATE_DIR", state.path())],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("local.json"), "{}", text(&output));
}

/// A state file as `up` writes it, for a mesh whose processes are not needed: `apply` and
/// `delete` only read where its config lives. Returns (state dir, user config dir).
fn fake_mesh() -> (tempfile::TempDir, std::path::PathBuf) {
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("user-config");
    let generated = state.path().join("generated");
    let applied = state.path().join("applied");
    for dir in [&config, &generated, &applied] {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::write(
        generated.join("topology.yaml"),
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
"#,
    )
    .unwrap();
    std::fs::write(
        config.join("reviews.yaml"),
        r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}]
"#,
    )
    .unwrap();
    let state_file = serde_json::json!({
        "topologyDir": state.path(),
        "stateDir": state.path(),
        "namespace": "default",
        "configDirs": [config, generated, applied],
        "appliedDir": applied,
        "pilot": null,
        "citadel": null,
        "workloads": [],
        "processes": [],
    });
    std::fs::write(state.path().join("local.json"), state_file.to_string()).unwrap();
    (state, config)
}

/// A foreign object first: the VirtualService is document 1.
const ROUTE: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
"#;

#[test]
fn apply_writes_each_object_with_its_namespace_and_delete_removes_it() {
    let (state, _) = fake_mesh();
    let env = [("MESH_LOCAL_STATE_DIR", state.path())];
    let file = state.path().join("route.yaml");
    std::fs::write(&file, ROUTE).unwrap();
    let path = file.to_str().unwrap();

    let first = meshctl(&["apply", "-f", path], &env);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(text(&first).contains("VirtualService default/reviews created"));
    let written = state
        .path()
        .join("applied/virtualservice_default_reviews.yaml");
    let yaml = std::fs::read_to_string(&written).unwrap();
    assert!(yaml.contains("namespace: default"), "{yaml}");
    assert!(yaml.contains("subset: v1"), "{yaml}");
    let again = meshctl(&["apply", "-f", path], &env);
    assert!(
        text(&again).contains("VirtualService default/reviews configured"),
        "re-apply replaces: {}",
        text(&again)
    );

    let deleted = meshctl(&["delete", "-f", path], &env);
    assert_eq!(deleted.status.code(), Some(0), "{}", text(&deleted));
    assert!(!written.exists());
    let twice = meshctl(&["delete", "-f", path], &env);
    assert_eq!(twice.status.code(), Some(1));
    assert!(text(&twice).contains("was not applied"), "{}", text(&twice));
}

#[test]
fn apply_refuses_what_conflicts_with_the_running_config() {
    let (state, config) = fake_mesh();
    let env = [("MESH_LOCAL_STATE_DIR", state.path())];
    // A subset no DestinationRule of the mesh defines.
    let file = state.path().join("v9.yaml");
    std::fs::write(&file, ROUTE.replace("subset: v1}}]", "subset: v9}}]")).unwrap();
    let output = meshctl(&["apply", "-f", file.to_str().unwrap()], &env);
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output);
    assert!(
        message.contains(
            "v9.yaml[1] VirtualService default/reviews: spec.http[0].route[0].destination.subset"
        ),
        "{message}"
    );
    assert!(message.contains("nothing applied"), "{message}");

    // An object the user's config directory already has.
    let file = state.path().join("dr.yaml");
    std::fs::copy(config.join("reviews.yaml"), &file).unwrap();
    let output = meshctl(&["apply", "-f", file.to_str().unwrap()], &env);
    assert_eq!(output.status.code(), Some(1));
    let message = text(&output);
    assert!(
        message.contains("DestinationRule default/reviews is also defined at"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_dir(state.path().join("applied"))
            .unwrap()
            .count(),
        0
    );
}
