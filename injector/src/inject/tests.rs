use serde_json::{Value, json};

use super::*;

fn pod(value: Value) -> (Pod, Value) {
    let mut value = value;
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Pod");
    (serde_json::from_value(value.clone()).expect("a pod"), value)
}

fn app_pod(annotations: Value) -> (Pod, Value) {
    pod(json!({
        "metadata": {"generateName": "web-", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }))
}

fn namespace(label: Option<&str>) -> NamespaceInfo {
    let mut info = NamespaceInfo {
        name: "shop".to_owned(),
        labels: BTreeMap::new(),
    };
    if let Some(label) = label {
        info.labels
            .insert(NAMESPACE_LABEL.to_owned(), label.to_owned());
    }
    info
}

/// The pod after the patch, as the API server would store it.
fn applied(value: &Value, patch: &Patch) -> Pod {
    let mut value = value.clone();
    json_patch::patch(&mut value, patch).expect("the patch applies");
    serde_json::from_value(value).expect("still a pod")
}

fn names(containers: &[k8s_openapi::api::core::v1::Container]) -> Vec<&str> {
    containers.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn who_is_injected() {
    let config = Config::default();
    let cases = [
        (json!({}), namespace(Some("enabled")), Ok(())),
        (json!({}), namespace(None), Err(Skip::NotSelected)),
        (json!({INJECT_KEY: "true"}), namespace(None), Ok(())),
        (
            json!({INJECT_KEY: "false"}),
            namespace(Some("enabled")),
            Err(Skip::OptedOut),
        ),
        (
            json!({INJECT_KEY: "true"}),
            namespace(Some("disabled")),
            Err(Skip::NamespaceDisabled),
        ),
        (
            json!({}),
            namespace(Some("disabled")),
            Err(Skip::NamespaceDisabled),
        ),
        (
            json!({annotations::STATUS: "{}"}),
            namespace(Some("enabled")),
            Err(Skip::AlreadyInjected),
        ),
        (
            json!({INJECT_KEY: "true"}),
            NamespaceInfo::enabled("kube-system"),
            Err(Skip::SystemNamespace),
        ),
        (
            json!({}),
            NamespaceInfo::enabled("kube-node-lease"),
            Err(Skip::SystemNamespace),
        ),
    ];
    for (annotations, namespace, expected) in cases {
        let (pod, _) = app_pod(annotations.clone());
        let outcome = plan(&pod, &namespace, &config)
            .expect("no error")
            .map(|_| ());
        assert_eq!(outcome, expected, "{annotations} in {namespace:?}");
    }
}

const INJECT_KEY: &str = annotations::INJECT;

#[test]
fn host_network_and_injected_containers_are_left_alone() {
    let config = Config::default();
    let (host, _) = pod(json!({
        "metadata": {"name": "node-agent"},
        "spec": {"hostNetwork": true, "containers": [{"name": "agent"}]},
    }));
    assert_eq!(
        plan(&host, &namespace(Some("enabled")), &config).expect("ok"),
        Err(Skip::HostNetwork)
    );
    let (injected, _) = pod(json!({
        "metadata": {"name": "old"},
        "spec": {"containers": [{"name": "app"}, {"name": "mesh-proxy"}]},
    }));
    assert_eq!(
        plan(&injected, &namespace(Some("enabled")), &config).expect("ok"),
        Err(Skip::AlreadyInjected)
    );
}

fn labelled_pod(labels: Value, annotations: Value) -> (Pod, Value) {
    pod(json!({
        "metadata": {"generateName": "web-", "labels": labels, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }))
}

/// The label the webhook's objectSelector reads decides as the annotation does, and wins
/// over it when both are there.
#[test]
fn the_pod_label_opts_in_and_out_and_beats_the_annotation() {
    let config = Config::default();
    let cases = [
        (
            json!({INJECT_KEY: "true"}),
            json!({}),
            namespace(None),
            Ok(()),
        ),
        (
            json!({INJECT_KEY: "false"}),
            json!({}),
            namespace(Some("enabled")),
            Err(Skip::OptedOut),
        ),
        (
            json!({INJECT_KEY: "true"}),
            json!({INJECT_KEY: "false"}),
            namespace(None),
            Ok(()),
        ),
        (
            json!({INJECT_KEY: "false"}),
            json!({INJECT_KEY: "true"}),
            namespace(Some("enabled")),
            Err(Skip::OptedOut),
        ),
        (
            json!({INJECT_KEY: "true"}),
            json!({}),
            namespace(Some("disabled")),
            Err(Skip::NamespaceDisabled),
        ),
        (
            json!({INJECT_KEY: "true"}),
            json!({}),
            NamespaceInfo::enabled("kube-public"),
            Err(Skip::SystemNamespace),
        ),
        (
            json!({"app": "web"}),
            json!({}),
            namespace(None),
            Err(Skip::NotSelected),
        ),
    ];
    for (labels, annotations, namespace, expected) in cases {
        let (pod, _) = labelled_pod(labels.clone(), annotations.clone());
        let outcome = plan(&pod, &namespace, &config)
            .expect("no error")
            .map(|_| ());
        assert_eq!(
            outcome, expected,
            "labels {labels}, annotations {annotations} in {namespace:?}"
        );
    }
}

#[test]
fn a_bad_label_is_an_error_naming_it() {
    let (pod, _) = labelled_pod(json!({INJECT_KEY: "maybe"}), json!({}));
    let error = inject(&pod, &namespace(Some("enabled")), &Config::default()).expect_err("refused");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("label {INJECT_KEY}:")),
        "{message}"
    );
    assert!(message.contains("\"maybe\""), "{message}");
}

#[test]
fn a_bad_annotation_is_an_error_naming_it() {
    let (pod, _) = app_pod(json!({annotations::PROXY_CPU: "lots"}));
    let error = inject(&pod, &namespace(Some("enabled")), &Config::default()).expect_err("refused");
    assert!(
        error.to_string().contains(annotations::PROXY_CPU),
        "{error}"
    );
}

#[test]
fn the_pods_own_init_containers_volumes_and_annotations_are_kept() {
    let (pod, value) = pod(json!({
        "metadata": {"name": "web", "annotations": {"team": "shop", "prometheus.io/scrape": "false"}},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "m:1"}],
            "containers": [{"name": "app", "image": "app:1"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }));
    let patch = inject(&pod, &namespace(Some("enabled")), &Config::default())
        .expect("ok")
        .expect("injected");
    let result = applied(&value, &patch);
    let spec = result.spec.expect("spec");
    assert_eq!(
        names(spec.init_containers.as_deref().unwrap_or_default()),
        ["mesh-init", "mesh-proxy", "migrate"]
    );
    assert_eq!(names(&spec.containers), ["app"]);
    let volumes: Vec<_> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(volumes, ["data", "mesh-token", "mesh-ca-root"]);
    let annotations = result.metadata.annotations.expect("annotations");
    assert_eq!(annotations["team"], "shop");
    // The pod's own scrape settings win.
    assert_eq!(annotations["prometheus.io/scrape"], "false");
    assert!(!annotations.contains_key("prometheus.io/port"));
    assert!(annotations.contains_key(annotations::STATUS));
}

#[test]
fn without_native_sidecars_the_proxy_is_the_first_container_and_holds_the_app() {
    let (pod, value) = pod(json!({
        "metadata": {"name": "web", "annotations": {annotations::NATIVE_SIDECAR: "false"}},
        "spec": {"containers": [{"name": "app",
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}]},
    }));
    let patch = inject(&pod, &namespace(Some("enabled")), &Config::default())
        .expect("ok")
        .expect("injected");
    let spec = applied(&value, &patch).spec.expect("spec");
    assert_eq!(
        names(spec.init_containers.as_deref().unwrap_or_default()),
        ["mesh-init"]
    );
    assert_eq!(names(&spec.containers), ["mesh-proxy", "app"]);
    let proxy = &spec.containers[0];
    assert_eq!(proxy.restart_policy, None);
    let hook = proxy.lifecycle.as_ref().and_then(|l| l.post_start.as_ref());
    let command = hook
        .and_then(|h| h.exec.as_ref())
        .and_then(|e| e.command.clone());
    assert_eq!(
        command,
        Some(vec!["mesh-proxy".to_owned(), "wait".to_owned()])
    );
    // The app's probe was rewritten before the proxy moved it to index 1.
    let probe = spec.containers[1]
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref());
    assert_eq!(
        probe.and_then(|g| g.path.as_deref()),
        Some("/app-health/app/readyz")
    );
}

#[test]
fn annotations_tune_resources_and_capture() {
    let (pod, value) = app_pod(json!({
        annotations::PROXY_CPU: "300m",
        annotations::PROXY_MEMORY_LIMIT: "256Mi",
        annotations::EXCLUDE_INBOUND_PORTS: "9000",
        annotations::EXCLUDE_OUTBOUND_PORTS: "5432,6379",
        annotations::EXCLUDE_OUTBOUND_CIDRS: "169.254.169.254/32",
        annotations::LOG_LEVEL: "debug",
    }));
    let patch = inject(&pod, &namespace(Some("enabled")), &Config::default())
        .expect("ok")
        .expect("injected");
    let spec = applied(&value, &patch).spec.expect("spec");
    let inits = spec.init_containers.unwrap_or_default();
    assert_eq!(
        inits[0].args.clone().unwrap_or_default(),
        [
            "iptables",
            "--exclude-inbound-ports",
            "9000",
            "--exclude-outbound-ports",
            "5432,6379",
            "--exclude-outbound-cidrs",
            "169.254.169.254/32"
        ]
    );
    let resources = serde_json::to_value(&inits[1].resources).expect("json");
    assert_eq!(
        resources,
        json!({"requests": {"cpu": "300m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "256Mi"}})
    );
    let env = inits[1].env.clone().unwrap_or_default();
    let log = env.iter().find(|e| e.name == "MESH_LOG");
    assert_eq!(log.and_then(|e| e.value.as_deref()), Some("debug"));
}

#[test]
fn the_workload_is_the_deployment_not_the_replica_set() {
    let (pod, _) = pod(json!({
        "metadata": {
            "generateName": "reviews-v1-5d8f9c7b4-",
            "labels": {"app": "reviews", "version": "v1", "pod-template-hash": "5d8f9c7b4"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "reviews-v1-5d8f9c7b4", "uid": "u1", "controller": true}],
        },
        "spec": {"containers": [{"name": "app"}]},
    }));
    let workload = workload(&pod);
    assert_eq!(workload.name, "reviews-v1");
    assert_eq!(workload.app.as_deref(), Some("reviews"));
    assert_eq!(workload.version.as_deref(), Some("v1"));
    assert_eq!(workload.labels, "app=reviews,version=v1");
}

#[test]
fn a_cron_jobs_runs_are_one_workload() {
    let owned_by = |kind: &str, name: &str| {
        pod(json!({
            "metadata": {"name": "x", "ownerReferences": [{"apiVersion": "batch/v1", "kind": kind,
                "name": name, "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "app"}]},
        }))
        .0
    };
    assert_eq!(workload(&owned_by("Job", "report-29012345")).name, "report");
    assert_eq!(workload(&owned_by("Job", "migrate-v2")).name, "migrate-v2");
    assert_eq!(workload(&owned_by("StatefulSet", "db")).name, "db");
}
