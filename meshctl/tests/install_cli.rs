//! The install commands as a user runs them: output on stdout, one-line errors that say
//! what to do, and the exit code.

use std::process::{Command, Output};

fn meshctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .args(args)
        // No cluster anywhere: a kubeconfig that does not exist, no in-cluster env.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("HOME", "/nonexistent")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .expect("meshctl runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn manifest_generate_prints_every_object_as_yaml() {
    let output = meshctl(&[
        "manifest",
        "generate",
        "--set",
        "pilot.replicas=2",
        "--istio-api",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    // mesh's CRDs, Istio's, and namespace 1 + service accounts 3 + RBAC 8 + ConfigMaps 2
    // (the injector's, the Grafana dashboards) + Services 3 + Deployments 3 +
    // PodDisruptionBudgets 3 + the webhook configuration 1; the ingress gateway: its
    // namespace, ServiceAccount, Service, Deployment, PDB.
    let documents = text.lines().filter(|line| *line == "---").count();
    assert_eq!(documents, 10 + 10 + 24 + 5);
    assert!(text.contains("name: virtualservices.networking.istio.io"));
    assert!(text.contains("replicas: 2"));
}

#[test]
fn bad_values_are_one_line_errors() {
    for (args, expected) in [
        (
            &["manifest", "generate", "--set", "pilot.replica=2"][..],
            "unknown field `replica`",
        ),
        (
            &["manifest", "generate", "-f", "/nonexistent/values.yaml"][..],
            "cannot read the values file",
        ),
        (
            &["install", "--set", "injector.failurePolicy=Sometimes"][..],
            "Fail or Ignore",
        ),
    ] {
        let output = meshctl(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = stderr(&output);
        assert!(message.contains(expected), "{args:?}: {message}");
        assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    }
}

#[test]
fn no_cluster_says_how_to_name_one() {
    for args in [
        &["install"][..],
        &["uninstall"],
        &["precheck"],
        &["version"],
    ] {
        let output = meshctl(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = stderr(&output);
        assert!(
            message
                .starts_with("error: cannot reach a cluster (set KUBECONFIG, or run inside a pod)"),
            "{args:?}: {message}"
        );
        assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    }
}
