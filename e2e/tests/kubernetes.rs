//! mesh on a real cluster, from scratch: `meshctl install`, label a namespace, create a
//! pod, see the sidecar injected and running, read its routes, `meshctl uninstall`.
//!
//! Ignored by default because it needs what CI does not have: a cluster (KUBECONFIG),
//! `kubectl` on PATH, and mesh's images where the cluster can pull them
//! (`MESH_E2E_REGISTRY`, `MESH_E2E_TAG`; default ghcr.io/mesh and this version). Run it
//! with `KUBECONFIG=... cargo test -p mesh-e2e --test kubernetes -- --ignored`. Without
//! KUBECONFIG it says so and passes, so `--ignored` runs elsewhere stay green.
//!
//! One test here runs everywhere: pilot's and citadel's own flag parsers accept the
//! Deployments' args (the injector's are checked in meshctl/tests/components.rs).
//!
//! Waiting is done by the tools that watch (`meshctl install` waits for the control
//! plane, `kubectl wait` for the pod), never by sleeping.

use std::process::{Command, Output};

use serde_json::Value;

const NAMESPACE: &str = "mesh-e2e";
const POD: &str = "app";

fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        output.status.success(),
        "{program} {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        show(&output.stdout),
        show(&output.stderr)
    );
    output
}

fn meshctl(args: &[&str]) -> String {
    let output = run(env!("CARGO_BIN_EXE_e2e-meshctl"), args);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn kubectl(args: &[&str]) -> String {
    String::from_utf8_lossy(&run("kubectl", args).stdout).into_owned()
}

/// Removes what the test made, whatever happened.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .args([
                "delete",
                "namespace",
                NAMESPACE,
                "--ignore-not-found",
                "--wait=false",
            ])
            .status();
        let _ = Command::new(env!("CARGO_BIN_EXE_e2e-meshctl"))
            .args(["uninstall", "--purge"])
            .status();
    }
}

#[test]
#[ignore = "needs a cluster: KUBECONFIG, kubectl, and mesh's images pullable by the cluster"]
fn install_label_deploy_inspect_uninstall() {
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("skipped: KUBECONFIG is not set, so there is no cluster to install into");
        return;
    }
    let registry = std::env::var("MESH_E2E_REGISTRY").unwrap_or_else(|_| "ghcr.io/mesh".into());
    let tag = std::env::var("MESH_E2E_TAG").unwrap_or_else(|_| env!("CARGO_PKG_VERSION").into());
    let app_image =
        std::env::var("MESH_E2E_APP_IMAGE").unwrap_or_else(|_| format!("{registry}/echo:{tag}"));

    let precheck = meshctl(&["precheck"]);
    assert!(precheck.contains("✔ Kubernetes"), "{precheck}");
    let _cleanup = Cleanup;
    let registry_set = format!("image.registry={registry}");
    let tag_set = format!("image.tag={tag}");
    let installed = meshctl(&["install", "--set", &registry_set, "--set", &tag_set]);
    assert!(
        installed.contains("✔ control plane ready in mesh-system"),
        "{installed}"
    );
    let again = meshctl(&["install", "--set", &registry_set, "--set", &tag_set]);
    assert!(
        again.contains("✔ control plane ready"),
        "a second install: {again}"
    );
    let version = meshctl(&["version"]);
    assert!(
        version.contains(&format!("pilot version: {tag}")),
        "{version}"
    );

    kubectl(&["create", "namespace", NAMESPACE]);
    kubectl(&["label", "namespace", NAMESPACE, "mesh-injection=enabled"]);
    kubectl(&[
        "-n",
        NAMESPACE,
        "run",
        POD,
        "--image",
        &app_image,
        "--labels",
        "app=app,version=v1",
    ]);
    kubectl(&[
        "-n",
        NAMESPACE,
        "wait",
        "--for=condition=Ready",
        &format!("pod/{POD}"),
        "--timeout=180s",
    ]);

    let pod: Value = serde_json::from_str(&kubectl(&[
        "-n", NAMESPACE, "get", "pod", POD, "-o", "json",
    ]))
    .expect("pod JSON");
    let init: Vec<&str> = pod["spec"]["initContainers"]
        .as_array()
        .map(|list| list.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(init.contains(&"mesh-init"), "not injected: {init:?}");
    assert!(init.contains(&"mesh-proxy"), "no native sidecar: {init:?}");

    // Reads the proxy's admin port through a port-forward to the pod.
    let routes = meshctl(&[
        "proxy-config",
        "routes",
        &format!("{POD}.{NAMESPACE}"),
        "-o",
        "json",
    ]);
    let routes: Value = serde_json::from_str(&routes).expect("routes JSON");
    assert!(routes.as_array().is_some_and(|r| !r.is_empty()), "{routes}");

    let removed = meshctl(&["uninstall"]);
    assert!(removed.contains("✔ mesh removed"), "{removed}");
}

/// Runs everywhere: pilot and citadel accept the flags their Deployments give them, and
/// their probes point at the ports those flags leave them on.
#[test]
fn pilot_and_citadel_accept_the_manifests_flags() {
    use clap::Parser;
    use meshctl::cmd::install::manifest::{self, CITADEL, PILOT};
    use meshctl::cmd::install::values::Values;

    let values = Values::load(
        &[] as &[&std::path::Path],
        &["trustDomain=corp.example".to_owned()],
    )
    .expect("valid");
    let objects = manifest::render(&values).expect("renders").objects;
    let container = |name: &str| -> Value {
        objects
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == name)
            .map(|d| d["spec"]["template"]["spec"]["containers"][0].clone())
            .unwrap_or_else(|| panic!("no Deployment {name}"))
    };
    let args = |container: &Value| -> Vec<String> {
        container["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    };
    let probe_port = |container: &Value| container["readinessProbe"]["httpGet"]["port"].as_u64();

    let pilot = container(PILOT);
    let flags = args(&pilot);
    let config = mesh_pilot::config::Config::try_parse_from(
        std::iter::once("pilot".to_owned()).chain(flags.clone()),
    )
    .unwrap_or_else(|e| panic!("pilot refuses {flags:?}: {e}"));
    assert!(config.kubernetes);
    assert_eq!(config.trust_domain, "corp.example");
    assert_eq!(config.root_namespace, manifest::NAMESPACE);
    assert_eq!(
        probe_port(&pilot),
        Some(u64::from(config.monitoring_addr.port()))
    );
    assert_eq!(config.grpc_addr.port(), 15010);

    let citadel = container(CITADEL);
    let flags = args(&citadel);
    let cli = mesh_citadel::config::Cli::try_parse_from(
        std::iter::once("citadel".to_owned()).chain(flags.clone()),
    )
    .unwrap_or_else(|e| panic!("citadel refuses {flags:?}: {e}"));
    assert!(cli.command.is_none());
    let config = cli.serve;
    assert!(config.store.kubernetes);
    assert_eq!(config.store.ca_namespace, manifest::NAMESPACE);
    assert_eq!(
        config.store.ca_secret,
        meshctl::cmd::install::rbac::CA_SECRET,
        "the Secret citadel's Role names"
    );
    assert_eq!(config.root.trust_domain, "corp.example");
    assert_eq!(
        probe_port(&citadel),
        Some(u64::from(config.monitoring_addr.port()))
    );
    assert_eq!(config.addr.port(), 8060);
    assert_eq!(
        mesh_citadel::bundle::publish::CONFIG_MAP,
        meshctl::cmd::install::rbac::ROOT_CERT_CONFIG_MAP,
        "the ConfigMap citadel's ClusterRole names"
    );
}
