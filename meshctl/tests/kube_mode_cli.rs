//! Which mode `proxy-config`, `proxy-status` and `x describe` pick, as the binary decides
//! it: an address given, then `--kubernetes`, then a running local mesh, then a kubeconfig,
//! else the local mesh's "not running" error. No cluster is contacted: the kubeconfig
//! names a port nothing listens on.

use std::path::Path;
use std::process::Command;

/// stderr of `meshctl <args>` with an empty state dir and the given KUBECONFIG; the exit
/// code must be 2 and the message one line.
fn error(state: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("meshctl runs");
    assert_eq!(output.status.code(), Some(2), "{args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// A kubeconfig for an API server on a port that refuses connections.
fn unreachable_cluster(dir: &Path) -> std::path::PathBuf {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let path = dir.join("kubeconfig");
    let config = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
         clusters: [{{name: test, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n\
         users: [{{name: test, user: {{}}}}]\n\
         contexts: [{{name: test, context: {{cluster: test, user: test, namespace: bookinfo}}}}]\n"
    );
    std::fs::write(&path, config).expect("kubeconfig written");
    path
}

#[test]
fn without_a_local_mesh_a_kubeconfig_means_kubernetes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = unreachable_cluster(dir.path());
    for args in [
        &["proxy-config", "routes", "productpage-v1-abc"][..],
        &["proxy-status"][..],
        &["x", "describe", "pod", "productpage-v1-abc"][..],
    ] {
        let stderr = error(dir.path(), &kubeconfig, args);
        assert!(
            stderr.starts_with("error: no cluster reachable:"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn without_a_kubeconfig_the_local_mesh_is_not_running_unless_kubernetes_is_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let none = dir.path().join("no-kubeconfig");
    let local = error(
        dir.path(),
        &none,
        &["proxy-config", "routes", "productpage-v1"],
    );
    assert!(local.starts_with("error: no local mesh runs"), "{local}");
    let forced = error(
        dir.path(),
        &none,
        &["proxy-config", "routes", "productpage-v1", "--kubernetes"],
    );
    assert!(
        forced.starts_with("error: no cluster reachable:"),
        "{forced}"
    );
    let status = error(dir.path(), &none, &["proxy-status", "--kubernetes"]);
    assert!(
        status.starts_with("error: no cluster reachable:"),
        "{status}"
    );
}
