//! `meshctl analyze` on a live cluster: the real binary, its kubeconfig naming a fake API
//! server over a real socket that serves discovery (Istio's networking group at two
//! versions, mesh's own), config objects, Services, Namespaces and Pods. What it serves
//! reaches the analyzers: a VirtualService naming a subset no DestinationRule defines and a
//! host nothing defines, a pod of a labelled namespace without its sidecar and a namespace
//! labelled for two injectors, each named `Kind namespace/name` (`Namespace name`); a clean
//! cluster reports nothing.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use serde_json::{Value, json};
use support::{FakeApi, list};

const ISTIO: &str = "networking.istio.io";
const MESH: &str = "networking.mesh.io";

fn group(name: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": versions, "preferredVersion": versions[0]})
}

fn resources(group_version: &str, kinds: &[(&str, &str)]) -> Value {
    let resources: Vec<Value> = kinds
        .iter()
        .map(|(plural, kind)| {
            json!({"name": plural, "singularName": kind.to_ascii_lowercase(), "namespaced": true,
                   "kind": kind, "verbs": ["get", "list", "watch", "create", "delete"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
           "resources": resources})
}

fn object(api_version: &str, kind: &str, namespace: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind,
           "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                        "resourceVersion": "7", "managedFields": [{"manager": "kubectl"}]},
           "spec": spec})
}

fn service(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": namespace},
           "spec": {"ports": [{"port": 9080}]}})
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn pod(namespace: &str, name: &str, containers: &[&str]) -> Value {
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": format!("{c}:1")}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": namespace,
                        "labels": {"app": "reviews", "pod-template-hash": "5c9d8f7b6"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                            "name": "reviews-v1-5c9d8f7b6", "uid": "rs", "controller": true}]},
           "spec": {"containers": containers}, "status": {"phase": "Running"}})
}

/// A cluster with Istio's networking group (served at v1, preferred, and v1beta1) and
/// mesh's; shop is labelled for injection. `subset` is what the VirtualService routes to
/// (the DestinationRule, in mesh's group, defines v1 and v2), `extra_host` a second
/// destination, `sidecar` whether shop's pod was injected.
fn cluster(subset: &str, extra_host: Option<&str>, sidecar: bool) -> BTreeMap<String, Value> {
    let mut route =
        vec![json!({"destination": {"host": "reviews", "subset": subset}, "weight": 100})];
    if let Some(host) = extra_host {
        route[0]["weight"] = json!(50);
        route.push(json!({"destination": {"host": host}, "weight": 50}));
    }
    let vs = object(
        &format!("{ISTIO}/v1"),
        "VirtualService",
        "shop",
        "reviews",
        json!({"hosts": ["reviews"], "http": [{"route": route}]}),
    );
    let dr = object(
        &format!("{MESH}/v1"),
        "DestinationRule",
        "shop",
        "reviews",
        json!({"host": "reviews.shop.svc.cluster.local",
               "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                           {"name": "v2", "labels": {"version": "v2"}}]}),
    );
    let containers: &[&str] = if sidecar {
        &["reviews", "mesh-proxy"]
    } else {
        &["reviews"]
    };
    let mut routes = BTreeMap::new();
    let mut put = |path: &str, body: Value| routes.insert(path.to_owned(), body);
    put(
        "/apis",
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            group(ISTIO, &["v1", "v1beta1"]), group(MESH, &["v1"]), group("apps", &["v1"])]}),
    );
    let istio_kinds = [
        ("virtualservices", "VirtualService"),
        ("destinationrules", "DestinationRule"),
    ];
    for version in ["v1", "v1beta1"] {
        let gv = format!("{ISTIO}/{version}");
        put(&format!("/apis/{gv}"), resources(&gv, &istio_kinds));
    }
    put(
        &format!("/apis/{MESH}/v1"),
        resources(
            &format!("{MESH}/v1"),
            &[("destinationrules", "DestinationRule")],
        ),
    );
    put(
        &format!("/apis/{ISTIO}/v1/virtualservices"),
        list(&format!("{ISTIO}/v1"), "VirtualService", vec![vs]),
    );
    put(
        &format!("/apis/{ISTIO}/v1/destinationrules"),
        list(&format!("{ISTIO}/v1"), "DestinationRule", vec![]),
    );
    put(
        &format!("/apis/{MESH}/v1/destinationrules"),
        list(&format!("{MESH}/v1"), "DestinationRule", vec![dr]),
    );
    put(
        "/api/v1/services",
        list(
            "v1",
            "Service",
            vec![service("shop", "reviews"), service("default", "kubernetes")],
        ),
    );
    put(
        "/api/v1/namespaces",
        list(
            "v1",
            "Namespace",
            vec![
                namespace("shop", json!({"mesh-injection": "enabled"})),
                namespace("other", json!({})),
                namespace(
                    "legacy",
                    json!({"mesh-injection": "enabled", "istio-injection": "enabled"}),
                ),
            ],
        ),
    );
    let shop_pods = list(
        "v1",
        "Pod",
        vec![pod("shop", "reviews-v1-5c9d8f7b6-q8x2m", containers)],
    );
    put("/api/v1/namespaces/shop/pods", shop_pods.clone());
    put("/api/v1/pods", shop_pods);
    put("/api/v1/namespaces/other/pods", list("v1", "Pod", vec![]));
    routes
}

async fn analyze(kubeconfig: PathBuf, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_meshctl"))
            .arg("analyze")
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("MESHCTL_OUTPUT")
            .output()
            .expect("meshctl runs")
    })
    .await
    .expect("joined")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_misconfigurations_are_reported_by_object() {
    let api = FakeApi::start(cluster("v3", Some("ratings"), false)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // No -n: the kubeconfig context's namespace, shop.
    let output = analyze(api.kubeconfig(dir.path(), "shop"), &[]).await;
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines.contains(&"error: VirtualService shop/reviews: spec.http[0].route[0].destination.subset: referenced subset \"v3\" not found in any DestinationRule for host reviews; its DestinationRules define v1, v2"),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(
            "warning: VirtualService shop/reviews: spec.http[0].route[1].destination.host: referenced host \"ratings\" (ratings.shop.svc.cluster.local) not found"
        )),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("warning: Pod shop/reviews-v1-5c9d8f7b6-q8x2m: the pod has no mesh-proxy sidecar although namespace shop is labelled mesh-injection=enabled")
            && l.ends_with("kubectl -n shop rollout restart deployment/reviews-v1")),
        "{out}"
    );
    assert_eq!(
        lines[3],
        "✘ 1 error and 2 warnings found when analyzing namespace: shop (2 config objects from the cluster, 1 pod)"
    );
    let paths = api.paths();
    // One version per group and kind: Istio's preferred v1, never v1beta1 as well.
    for read in [
        "/apis/networking.istio.io/v1/virtualservices",
        "/apis/networking.istio.io/v1/destinationrules",
        "/apis/networking.mesh.io/v1/destinationrules",
        "/api/v1/services",
        "/api/v1/namespaces",
        "/api/v1/namespaces/shop/pods",
    ] {
        assert!(
            paths.iter().any(|p| p == read),
            "{read} not read: {paths:?}"
        );
    }
    assert!(
        !paths.iter().any(|p| p.starts_with("/apis/networking.istio.io/v1beta1/")
            && p.ends_with("services")),
        "{paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_cluster_reports_nothing() {
    let api = FakeApi::start(cluster("v1", None, true)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let output = analyze(api.kubeconfig(dir.path(), "default"), &["-n", "shop"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        "✔ No validation issues found when analyzing namespace: shop (2 config objects from the cluster, 1 pod)\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_n_and_dash_a_choose_what_is_reported_and_json_tells_the_scope() {
    let api = FakeApi::start(cluster("v3", None, true)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path(), "shop");
    // shop's problem is not other's.
    let other = analyze(kubeconfig.clone(), &["-n", "other"]).await;
    assert_eq!(other.status.code(), Some(0), "{}", stdout(&other));
    assert!(stdout(&other).contains("when analyzing namespace: other"));
    assert!(
        api.paths()
            .iter()
            .any(|p| p == "/api/v1/namespaces/other/pods")
    );
    // Every namespace, as JSON.
    let all = analyze(kubeconfig, &["-A", "-o", "json"]).await;
    assert_eq!(all.status.code(), Some(1), "{}", stdout(&all));
    let report: Value = serde_json::from_slice(&all.stdout).expect("JSON");
    assert_eq!(report["errors"], 1);
    assert_eq!(report["cluster"]["namespace"], Value::Null);
    assert_eq!(report["cluster"]["objects"], 2);
    // Sorted by namespace, then name: legacy's finding, then shop's VirtualService.
    let error = &report["diagnostics"][1];
    assert_eq!(error["severity"], "error");
    assert_eq!(error["origin"]["kind"], "VirtualService");
    assert_eq!(error["origin"]["namespace"], "shop");
    assert_eq!(error["origin"]["name"], "reviews");
    assert_eq!(error["origin"]["file"], "");
    // Namespaces are analyzed too: legacy is labelled for two injectors.
    let legacy = report["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["origin"]["kind"] == "Namespace")
        .expect("a Namespace finding");
    assert_eq!(legacy["origin"]["name"], "legacy");
    assert_eq!(legacy["severity"], "warning");
    assert!(
        legacy["message"]
            .as_str()
            .unwrap_or_default()
            .contains("istio-injection=enabled"),
        "{legacy}"
    );
    assert!(api.paths().iter().any(|p| p == "/api/v1/pods"));
}

/// A file's object stands in for the cluster's of the same kind and name, as if applied:
/// here the DestinationRule that adds the missing subset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_analyzed_with_the_clusters_objects() {
    let api = FakeApi::start(cluster("v3", None, true)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = api.kubeconfig(dir.path(), "shop");
    let fix = dir.path().join("dr.yaml");
    std::fs::write(
        &fix,
        "apiVersion: networking.mesh.io/v1\nkind: DestinationRule\n\
         metadata: {name: reviews, namespace: shop}\n\
         spec:\n  host: reviews.shop.svc.cluster.local\n  subsets:\n\
         \x20 - {name: v1, labels: {version: v1}}\n  - {name: v3, labels: {version: v3}}\n",
    )
    .expect("write");
    let output = analyze(kubeconfig.clone(), &["-f", fix.to_str().expect("path")]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("namespace: shop and 1 file"),
        "{}",
        stdout(&output)
    );
    // The same file alone: the VirtualService is the cluster's, so nothing refers to v3.
    let alone = analyze(
        kubeconfig,
        &["-f", fix.to_str().expect("path"), "--use-kube=false"],
    )
    .await;
    assert_eq!(alone.status.code(), Some(0));
    assert!(
        stdout(&alone).contains("1 object in 1 file"),
        "{}",
        stdout(&alone)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = analyze(support::unreachable_kubeconfig(dir.path()), &[]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: no cluster reachable:"),
        "{stderr}"
    );
    // Without any kubeconfig, the same.
    let none = analyze(dir.path().join("missing"), &["-n", "shop"]).await;
    assert_eq!(none.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr.starts_with("error: no cluster reachable:"),
        "{stderr}"
    );
}

/// An object the API server holds but mesh cannot parse is an error naming it and its
/// field, and the rest is still analyzed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_does_not_parse_is_named_with_its_field() {
    let mut routes = cluster("v1", None, true);
    let bad = object(
        &format!("{ISTIO}/v1"),
        "VirtualService",
        "shop",
        "broken",
        json!({"hosts": ["reviews"], "http": "all of it"}),
    );
    let path = format!("/apis/{ISTIO}/v1/virtualservices");
    if let Some(items) = routes
        .get_mut(&path)
        .and_then(|list| list["items"].as_array_mut())
    {
        items.push(bad);
    }
    let api = FakeApi::start(routes).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let output = analyze(api.kubeconfig(dir.path(), "shop"), &[]).await;
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: VirtualService shop/broken: spec.http: invalid type"),
        "{out}"
    );
    assert!(
        out.ends_with("✘ 1 error and 0 warnings found when analyzing namespace: shop (2 config objects from the cluster, 1 pod)\n"),
        "{out}"
    );
}
