//! proxy-config and proxy-status in Kubernetes mode against a mocked API server (kube-rs's
//! `tower_test::mock::pair` pattern): the pod lookup, the sidecar check, pilot's lookup and
//! the port-forward upgrade request, each checked exactly, and the errors a user sees.
//!
//! The mock cannot complete a websocket upgrade (hyper's upgrade needs a real connection),
//! so the port-forward is answered as an API server refusing it; the stream part is tested
//! in `kube_forward.rs` (a fake API server over a real socket that completes the upgrade).

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use meshctl::cmd::proxy_config::locate::{self, InspectError};
use serde_json::{Value, json};
use tower_test::mock;

type Handle = mock::Handle<Request<Body>, Response<Body>>;

fn mock_client(namespace: &str) -> (kube::Client, Handle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, namespace), handle)
}

/// Takes the next request, checks method, path and query parameters, answers.
async fn expect(
    handle: &mut Handle,
    method: Method,
    path: &str,
    query: &[&str],
    status: StatusCode,
    reply: Value,
) -> Request<Body> {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method(), method, "{}", request.uri());
    assert_eq!(request.uri().path(), path);
    let got: Vec<&str> = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(got, query, "query of {}", request.uri());
    let body = serde_json::to_vec(&reply).expect("json");
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(body))
            .expect("response"),
    );
    request
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "reason": reason, "code": code, "message": message})
}

fn pod(name: &str, namespace: &str, spec: Value, phase: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": namespace},
           "spec": spec, "status": {"phase": phase}})
}

fn native_sidecar() -> Value {
    json!({"initContainers": [{"name": "mesh-proxy", "image": "mesh-proxy", "restartPolicy": "Always"}],
           "containers": [{"name": "productpage", "image": "productpage"}]})
}

const FORBIDDEN: &str =
    "pods \"productpage-v1-abc\" is forbidden: cannot create resource \"pods/portforward\"";

/// The port-forward request: the pod's `portforward` subresource, `ports=15000`, a
/// websocket upgrade with the Kubernetes channel protocol.
fn check_upgrade(request: &Request<Body>) {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("upgrade"), "websocket");
    assert!(header("sec-websocket-protocol").contains("channel.k8s.io"));
}

#[tokio::test]
async fn proxy_config_finds_the_pod_checks_the_sidecar_and_forwards_to_15000() {
    let (client, mut handle) = mock_client("default");
    let api = tokio::spawn(async move {
        let path = "/api/v1/namespaces/bookinfo/pods/productpage-v1-abc";
        let found = pod(
            "productpage-v1-abc",
            "bookinfo",
            native_sidecar(),
            "Running",
        );
        expect(&mut handle, Method::GET, path, &[], StatusCode::OK, found).await;
        let forward = expect(
            &mut handle,
            Method::GET,
            &format!("{path}/portforward"),
            &["ports=15000"],
            StatusCode::FORBIDDEN,
            status(403, "Forbidden", FORBIDDEN),
        )
        .await;
        check_upgrade(&forward);
    });
    let error = locate::kubernetes_admin(&client, "productpage-v1-abc.bookinfo")
        .await
        .expect_err("the port-forward is refused");
    api.await.expect("the API server saw every request");
    let message = error.to_string();
    assert!(
        message.starts_with("port 15000 of pod productpage-v1-abc.bookinfo unreachable:"),
        "{message}"
    );
    assert!(message.contains("forbidden"), "{message}");
}

#[tokio::test]
async fn the_namespace_defaults_to_the_context_and_a_missing_pod_says_where_it_looked() {
    let (client, mut handle) = mock_client("bookinfo");
    let api = tokio::spawn(async move {
        let path = "/api/v1/namespaces/bookinfo/pods/reviews";
        let missing = status(404, "NotFound", "pods \"reviews\" not found");
        expect(
            &mut handle,
            Method::GET,
            path,
            &[],
            StatusCode::NOT_FOUND,
            missing,
        )
        .await;
    });
    let error = locate::kubernetes_admin(&client, "reviews")
        .await
        .expect_err("no such pod");
    api.await.expect("requests");
    assert_eq!(
        error.to_string(),
        "pod \"reviews\" not found in namespace \"bookinfo\"; `kubectl get pods -n bookinfo` lists them (name another namespace as POD.NAMESPACE)"
    );
}

#[tokio::test]
async fn a_pod_without_the_sidecar_or_not_running_is_refused_before_any_port_forward() {
    let (client, mut handle) = mock_client("default");
    let api = tokio::spawn(async move {
        let path = "/api/v1/namespaces/default/pods/plain";
        let plain = json!({"containers": [{"name": "app", "image": "app"}]});
        let reply = pod("plain", "default", plain, "Running");
        expect(&mut handle, Method::GET, path, &[], StatusCode::OK, reply).await;
        let path = "/api/v1/namespaces/default/pods/starting";
        let reply = pod("starting", "default", native_sidecar(), "Pending");
        expect(&mut handle, Method::GET, path, &[], StatusCode::OK, reply).await;
        // Nothing else: a port-forward here would fail the test.
        assert!(handle.next_request().await.is_none());
    });
    let plain = locate::kubernetes_admin(&client, "plain")
        .await
        .expect_err("no sidecar");
    assert!(
        plain
            .to_string()
            .starts_with("pod plain.default has no mesh-proxy container"),
        "{plain}"
    );
    let starting = locate::kubernetes_admin(&client, "starting")
        .await
        .expect_err("pending");
    assert!(
        starting
            .to_string()
            .starts_with("pod starting.default is Pending, not Running"),
        "{starting}"
    );
    drop(client);
    api.await.expect("requests");
}

#[tokio::test]
async fn no_api_server_is_no_cluster_reachable() {
    let (client, handle) = mock_client("default");
    drop(handle);
    let error = locate::kubernetes_admin(&client, "productpage-v1-abc")
        .await
        .expect_err("nothing answers");
    assert!(
        error.to_string().starts_with("no cluster reachable:"),
        "{error}"
    );
}

const PILOTS: &str = "/api/v1/namespaces/mesh-system/pods";

#[tokio::test]
async fn proxy_status_without_pilot_is_control_plane_not_installed() {
    let (client, mut handle) = mock_client("default");
    let api = tokio::spawn(async move {
        let empty = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []});
        let selector = ["labelSelector=app%3Dpilot"];
        expect(
            &mut handle,
            Method::GET,
            PILOTS,
            &selector,
            StatusCode::OK,
            empty,
        )
        .await;
    });
    let error = locate::kubernetes_pilot(&client, None)
        .await
        .expect_err("no pilot");
    api.await.expect("requests");
    assert!(matches!(error, InspectError::Kube(_)), "{error:?}");
    assert!(
        error.to_string().starts_with(
            "control plane not installed: no running pilot pod (app=pilot) in mesh-system"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn proxy_status_forwards_to_a_running_pilot_on_15014() {
    let (client, mut handle) = mock_client("default");
    let api = tokio::spawn(async move {
        let list = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
            pod("pilot-old", "mesh-system", json!({"containers": []}), "Failed"),
            pod("pilot-7d9f", "mesh-system", json!({"containers": []}), "Running"),
        ]});
        let selector = ["labelSelector=app%3Dpilot"];
        expect(
            &mut handle,
            Method::GET,
            PILOTS,
            &selector,
            StatusCode::OK,
            list,
        )
        .await;
        let forward = expect(
            &mut handle,
            Method::GET,
            &format!("{PILOTS}/pilot-7d9f/portforward"),
            &["ports=15014"],
            StatusCode::FORBIDDEN,
            status(403, "Forbidden", "forbidden"),
        )
        .await;
        check_upgrade(&forward);
    });
    let error = locate::kubernetes_pilot(&client, None)
        .await
        .expect_err("refused");
    api.await.expect("requests");
    assert!(
        error
            .to_string()
            .starts_with("port 15014 of pod pilot-7d9f.mesh-system unreachable:"),
        "{error}"
    );
}
