//! The webhook over real HTTPS with AdmissionReviews as kube-apiserver sends them.

mod support;

use mesh_injector::Config;
use serde_json::{Value, json};
use support::{Webhook, fed_namespaces, namespace, patched, pod_create};

async fn webhook() -> Webhook {
    let namespaces = fed_namespaces(
        vec![
            namespace("shop", json!({"mesh-injection": "enabled"})),
            namespace("plain", json!({})),
            namespace("kube-system", json!({"mesh-injection": "enabled"})),
        ],
        None,
    );
    Webhook::start(Config::default(), namespaces).await
}

fn assert_untouched(response: &Value) {
    assert_eq!(response["uid"], "4b8d2c1e-7f3a-4e5b-9c6d-0a1b2c3d4e5f");
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response}");
}

fn field(path: &str) -> Value {
    json!({"name": path.split('.').next_back(), "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}})
}

fn expected_init_containers() -> Value {
    let image = Config::default().proxy_image;
    let probers = json!({
        "/app-health/web/livez": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "timeoutSeconds": 2},
        "/app-health/web/readyz": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP",
            "httpHeaders": [{"name": "X-Probe", "value": "kubelet"}]}, "timeoutSeconds": 1},
    });
    let ready = json!({"path": "/healthz/ready", "port": 15021, "scheme": "HTTP"});
    let mut pod_name = field("metadata.name");
    pod_name["name"] = json!("POD_NAME");
    let mut pod_namespace = field("metadata.namespace");
    pod_namespace["name"] = json!("POD_NAMESPACE");
    let mut service_account = field("spec.serviceAccountName");
    service_account["name"] = json!("SERVICE_ACCOUNT");
    let mut node = field("spec.nodeName");
    node["name"] = json!("NODE_NAME");
    let mut ip = field("status.podIP");
    ip["name"] = json!("INSTANCE_IP");
    json!([
        {
            "name": "mesh-init",
            "image": image,
            "args": ["iptables"],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
                "readOnlyRootFilesystem": true,
                "runAsGroup": 0, "runAsNonRoot": false, "runAsUser": 0,
            },
        },
        {
            "name": "mesh-proxy",
            "image": image,
            "restartPolicy": "Always",
            "ports": [
                {"name": "mesh-health", "containerPort": 15021, "protocol": "TCP"},
                {"name": "mesh-metrics", "containerPort": 15020, "protocol": "TCP"},
            ],
            "env": [
                pod_name, pod_namespace, service_account, node, ip,
                {"name": "MESH_PILOT_ADDR", "value": "pilot.mesh-system.svc:15010"},
                {"name": "MESH_CA_ADDR", "value": "citadel.mesh-system.svc:8060"},
                {"name": "MESH_TRUST_DOMAIN", "value": "cluster.local"},
                {"name": "MESH_TRUST_BUNDLE", "value": "/var/run/secrets/mesh/ca/root-cert.pem"},
                {"name": "MESH_CA_TOKEN_FILE", "value": "/var/run/secrets/mesh/tokens/mesh-token"},
                {"name": "MESH_INTERCEPTION", "value": "REDIRECT"},
                {"name": "MESH_WORKLOAD", "value": "web"},
                {"name": "MESH_LABELS", "value": "app=web,version=v2"},
                {"name": "MESH_LOG", "value": "info"},
                {"name": "MESH_APP", "value": "web"},
                {"name": "MESH_APP_VERSION", "value": "v2"},
                {"name": "MESH_KUBE_APP_PROBERS", "value": probers.to_string()},
            ],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
            "startupProbe": {"httpGet": ready, "periodSeconds": 1, "timeoutSeconds": 3, "failureThreshold": 600},
            "readinessProbe": {"httpGet": ready, "periodSeconds": 15, "timeoutSeconds": 3, "failureThreshold": 4},
            "volumeMounts": [
                {"name": "mesh-token", "mountPath": "/var/run/secrets/mesh/tokens", "readOnly": true},
                {"name": "mesh-ca-root", "mountPath": "/var/run/secrets/mesh/ca", "readOnly": true},
            ],
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": true,
                "runAsGroup": 1337, "runAsNonRoot": true, "runAsUser": 1337,
            },
        },
    ])
}

#[tokio::test]
async fn a_pod_in_a_labelled_namespace_is_injected() {
    let webhook = webhook().await;
    let review = pod_create();
    let response = webhook.review(&review).await;
    assert_eq!(response["uid"], "4b8d2c1e-7f3a-4e5b-9c6d-0a1b2c3d4e5f");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let pod = patched(&review, &response);
    let spec = pod.spec.expect("spec");

    assert_eq!(json!(spec.init_containers), expected_init_containers());

    // The app's container: only its HTTP probes changed, now through the proxy.
    let mut app = review["request"]["object"]["spec"]["containers"][0].clone();
    app["livenessProbe"]["httpGet"] =
        json!({"path": "/app-health/web/livez", "port": 15021, "scheme": "HTTP"});
    app["readinessProbe"]["httpGet"] =
        json!({"path": "/app-health/web/readyz", "port": 15021, "scheme": "HTTP"});
    assert_eq!(json!(spec.containers), json!([app]));

    let volumes: Vec<Value> = spec.volumes.iter().flatten().map(|v| json!(v)).collect();
    assert_eq!(volumes[0]["name"], "kube-api-access-7xk2p");
    assert_eq!(
        volumes[1..],
        [
            json!({"name": "mesh-token", "projected": {"sources": [{"serviceAccountToken":
                {"audience": "mesh-ca", "expirationSeconds": 43200, "path": "mesh-token"}}]}}),
            json!({"name": "mesh-ca-root", "configMap": {"name": "mesh-ca-root-cert"}}),
        ]
    );

    let annotations = pod.metadata.annotations.expect("annotations");
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "15020");
    assert_eq!(annotations["prometheus.io/path"], "/stats/prometheus");
    let status: Value = serde_json::from_str(&annotations["sidecar.mesh.io/status"]).expect("JSON");
    assert_eq!(
        status,
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "initContainers": ["mesh-init", "mesh-proxy"],
            "containers": [],
            "volumes": ["mesh-token", "mesh-ca-root"],
            "nativeSidecar": true,
            "rewrittenProbes": ["/app-health/web/livez", "/app-health/web/readyz"],
        })
    );
    // Untouched: the rest of the pod.
    assert_eq!(
        pod.metadata.generate_name.as_deref(),
        Some("web-7d9f8b6c5-")
    );
    assert_eq!(spec.service_account_name.as_deref(), Some("web"));
}

#[tokio::test]
async fn an_opted_out_pod_is_untouched() {
    let webhook = webhook().await;
    let mut review = pod_create();
    review["request"]["object"]["metadata"]["annotations"] =
        json!({"sidecar.mesh.io/inject": "false"});
    assert_untouched(&webhook.review(&review).await);
}

#[tokio::test]
async fn an_injected_pod_is_untouched() {
    let webhook = webhook().await;
    let review = pod_create();
    let first = webhook.review(&review).await;
    let mut again = review.clone();
    again["request"]["object"] = json!(patched(&review, &first));
    assert_untouched(&webhook.review(&again).await);
}

#[tokio::test]
async fn a_host_network_pod_is_untouched() {
    let webhook = webhook().await;
    let mut review = pod_create();
    review["request"]["object"]["spec"]["hostNetwork"] = json!(true);
    assert_untouched(&webhook.review(&review).await);
}

#[tokio::test]
async fn kube_system_is_untouched_even_when_labelled() {
    let webhook = webhook().await;
    let mut review = pod_create();
    review["request"]["namespace"] = json!("kube-system");
    review["request"]["object"]["metadata"]["annotations"] =
        json!({"sidecar.mesh.io/inject": "true"});
    assert_untouched(&webhook.review(&review).await);
}

#[tokio::test]
async fn the_pod_annotation_opts_in_without_the_namespace_label() {
    let webhook = webhook().await;
    let mut review = pod_create();
    review["request"]["namespace"] = json!("plain");
    assert_untouched(&webhook.review(&review).await);
    review["request"]["object"]["metadata"]["annotations"] =
        json!({"sidecar.mesh.io/inject": "true"});
    let response = webhook.review(&review).await;
    assert!(response["patch"].is_string(), "{response}");
}

/// What the configuration's objectSelector entry sends: a labelled pod from a namespace
/// without the label.
#[tokio::test]
async fn the_pod_label_opts_in_without_the_namespace_label() {
    let webhook = webhook().await;
    let mut review = pod_create();
    review["request"]["namespace"] = json!("plain");
    review["request"]["object"]["metadata"]["labels"] = json!({"sidecar.mesh.io/inject": "true"});
    let response = webhook.review(&review).await;
    assert!(response["patch"].is_string(), "{response}");
    review["request"]["namespace"] = json!("shop");
    review["request"]["object"]["metadata"]["labels"] = json!({"sidecar.mesh.io/inject": "false"});
    assert_untouched(&webhook.review(&review).await);
}

#[tokio::test]
async fn garbage_gets_an_error_answer_not_a_crash() {
    let webhook = webhook().await;
    for body in [
        b"not json at all".to_vec(),
        b"{}".to_vec(),
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
        vec![0xff, 0xfe, 0x00],
    ] {
        let (status, answer) = webhook.post("/inject", body).await;
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_slice(&answer).expect("JSON");
        assert_eq!(answer["response"]["allowed"], false, "{answer}");
        let message = answer["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.starts_with("mesh injector:"), "{answer}");
    }
    // A request whose object is not a pod: refused with its uid, so the API server shows it.
    let mut review = pod_create();
    review["request"]["object"]["spec"]["containers"] = json!("three");
    let response = webhook.review(&review).await;
    assert_eq!(response["uid"], "4b8d2c1e-7f3a-4e5b-9c6d-0a1b2c3d4e5f");
    assert_eq!(response["allowed"], false);
    // And the server still answers.
    assert!(webhook.review(&pod_create()).await["patch"].is_string());
}

#[tokio::test]
async fn a_bad_annotation_is_refused_naming_it() {
    let webhook = webhook().await;
    let mut review = pod_create();
    review["request"]["object"]["metadata"]["annotations"] =
        json!({"sidecar.mesh.io/proxyMemory": "plenty"});
    let response = webhook.review(&review).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("sidecar.mesh.io/proxyMemory"), "{message}");
}

#[tokio::test]
async fn updates_and_other_kinds_pass_through() {
    let webhook = webhook().await;
    let mut update = pod_create();
    update["request"]["operation"] = json!("UPDATE");
    update["request"]["oldObject"] = update["request"]["object"].clone();
    assert_untouched(&webhook.review(&update).await);
    let mut service = pod_create();
    service["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Service"});
    assert_untouched(&webhook.review(&service).await);
}

#[tokio::test]
async fn healthz_answers_and_unknown_paths_do_not() {
    let webhook = webhook().await;
    let (status, body) = webhook
        .send(http::Method::GET, "/healthz", Vec::new())
        .await;
    assert_eq!((status, &body[..]), (200, &b"ok\n"[..]));
    let (status, _) = webhook.post("/mutate", b"{}".to_vec()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn http2_is_served_too() {
    let webhook = webhook().await;
    let (alpn, answer) = webhook.review_h2(&pod_create()).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert!(answer["response"]["patch"].is_string(), "{answer}");
}
