//! `meshctl dashboard --prometheus URL` on Kubernetes: the real binary, its metrics from a
//! fake Prometheus and its routes in force from a fake API server (its kubeconfig names it)
//! serving a VirtualService; the page's JSON has both.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{FakeApi, list};

const ISTIO: &str = "networking.istio.io";

/// One answer to every PromQL query: reviews-v1 answered 60 requests over the window.
fn prometheus_answer() -> Value {
    let series = json!({
        "metric": {"reporter": "destination", "destination_workload": "reviews-v1",
                   "destination_workload_namespace": "shop", "destination_service_name": "reviews",
                   "response_code": "200", "connection_security_policy": "mutual_tls"},
        "value": [1_700_000_000.0, "60"]});
    json!({"status": "success", "data": {"resultType": "vector", "result": [series]}})
}

fn cluster() -> BTreeMap<String, Value> {
    let gv = format!("{ISTIO}/v1");
    let version = json!({"groupVersion": gv, "version": "v1"});
    let vs = json!({"apiVersion": gv, "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "shop", "uid": "uid-reviews", "resourceVersion": "7"},
        "spec": {"hosts": ["reviews"], "http": [
            {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
             "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
            {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}});
    BTreeMap::from([
        ("/api/v1/query".to_owned(), prometheus_answer()),
        (
            "/apis".to_owned(),
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": ISTIO, "versions": [version], "preferredVersion": version}]}),
        ),
        (
            format!("/apis/{gv}"),
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                   "resources": [{"name": "virtualservices", "singularName": "virtualservice",
                                  "namespaced": true, "kind": "VirtualService",
                                  "verbs": ["get", "list", "watch"]}]}),
        ),
        (
            format!("/apis/{gv}/virtualservices"),
            list(&gv, "VirtualService", vec![vs]),
        ),
        ("/api/v1/services".to_owned(), list("v1", "Service", vec![])),
        (
            "/api/v1/namespaces".to_owned(),
            list("v1", "Namespace", vec![]),
        ),
        ("/api/v1/pods".to_owned(), list("v1", "Pod", vec![])),
    ])
}

struct Dashboard(Child);

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn json(addr: SocketAddr, path: &str) -> Value {
    let text = meshctl::observe::scrape::get_text(addr, path)
        .await
        .expect("the dashboard answers");
    serde_json::from_str(&text).expect("JSON")
}

/// Polls `path` until `check` finds what it wants, for at most 10 s.
async fn wait_for(addr: SocketAddr, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let value = json(addr, path).await;
        if check(&value) {
            return value;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{path}: {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_from_prometheus_and_routes_from_the_cluster() {
    let api = FakeApi::start(cluster()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path(), "shop");
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .args([
            "dashboard",
            "--no-open",
            "--interval",
            "200ms",
            "--window",
            "30s",
        ])
        .arg("--prometheus")
        .arg(format!("http://{}", api.addr))
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("MESH_PROMETHEUS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("meshctl runs");
    let stdout = child.stdout.take().expect("stdout");
    let dashboard = Dashboard(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("dashboard: http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no URL in {line:?}"));

    let graph = wait_for(addr, "/api/graph", |g| g["ready"] == true).await;
    let reviews = graph["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == "reviews-v1.shop"))
        .unwrap_or_else(|| panic!("{graph}"));
    assert_eq!(reviews["workload"]["golden"]["rps"], 2.0, "{graph}");
    assert_eq!(reviews["workload"]["golden"]["success"], 1.0, "{graph}");
    assert!(
        api.seen()
            .iter()
            .any(|l| l.contains("/api/v1/query?query=sum%20by")),
        "{:?}",
        api.seen()
    );

    let routes = wait_for(addr, "/api/routes", |r| {
        r["routes"].as_array().is_some_and(|r| !r.is_empty())
    })
    .await;
    let route = &routes["routes"][0];
    assert_eq!(route["virtualService"], "shop/reviews", "{routes}");
    assert_eq!(route["host"], "reviews", "{routes}");
    assert_eq!(
        route["routes"][0]["destinations"],
        json!(["reviews|v2 100%"])
    );
    assert!(
        route["routes"][0]["match"]
            .as_str()
            .is_some_and(|m| m.contains("end-user=jason")),
        "{routes}"
    );
    assert_eq!(route["proxies"], json!([]), "{routes}");
    assert_eq!(routes["errors"], json!([]), "{routes}");
    drop(dashboard);
}
