//! The injector's Kubernetes API calls against a fake API server on 127.0.0.1: the caBundle
//! patch, request by request, and the namespace lookup when the reflector has not seen a
//! namespace yet.

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mesh_injector::ca_bundle;
use mesh_injector::config::FailurePolicy;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
struct Recorded {
    method: String,
    path: String,
    content_type: String,
    body: Value,
}

#[derive(Default)]
struct State {
    /// path -> object answered to GET; PATCH answers the object as it is.
    objects: Mutex<BTreeMap<String, Value>>,
    requests: Mutex<Vec<Recorded>>,
}

struct FakeApi {
    state: Arc<State>,
    client: kube::Client,
}

impl FakeApi {
    async fn start(objects: &[(&str, Value)]) -> Self {
        let state = Arc::new(State::default());
        for (path, object) in objects {
            state
                .objects
                .lock()
                .expect("lock")
                .insert((*path).to_owned(), object.clone());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = serving.clone();
                let service = hyper::service::service_fn(move |r| answer(r, state.clone()));
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        let config = kube::Config::new(url.parse().expect("URL"));
        let client = kube::Client::try_from(config).expect("client");
        Self { state, client }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let request_query = request.uri().query().map(str::to_owned);
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = request.into_body().collect().await.map(|b| b.to_bytes());
    let body = serde_json::from_slice(&bytes.unwrap_or_default()).unwrap_or(Value::Null);
    state.requests.lock().expect("lock").push(Recorded {
        method,
        path: path.clone(),
        content_type,
        body,
    });
    let query = request_query.unwrap_or_default();
    if path == "/api/v1/namespaces" {
        if query.contains("watch=true") || query.contains("watch=1") {
            // A quiet cluster: the watch stays open with nothing to say.
            std::future::pending::<()>().await;
        }
        let items: Vec<Value> = state
            .objects
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p.starts_with("/api/v1/namespaces/") && p.matches('/').count() == 4)
            .map(|(_, o)| o.clone())
            .collect();
        let list = json!({"apiVersion": "v1", "kind": "NamespaceList",
            "metadata": {"resourceVersion": "10"}, "items": items});
        return Ok(Response::new(Full::new(Bytes::from(list.to_string()))));
    }
    let object = state.objects.lock().expect("lock").get(&path).cloned();
    let (status, body) = match object {
        Some(object) => (200, object),
        None => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not found"}),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    Ok(response)
}

const CONFIGURATION_PATH: &str =
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/mesh-sidecar-injector";

fn configuration(ca_bundle: Option<&str>, policy: &str) -> Value {
    let mut client_config = json!({"service": {"name": "mesh-sidecar-injector",
        "namespace": "mesh-system", "path": "/inject", "port": 443}});
    if let Some(bundle) = ca_bundle {
        client_config["caBundle"] = json!(bundle);
    }
    let webhook = |name: &str| {
        json!({
            "name": name,
            "clientConfig": client_config,
            "failurePolicy": policy,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        })
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "mesh-sidecar-injector", "resourceVersion": "7"},
        "webhooks": [webhook("namespace.sidecar.mesh.io"), webhook("object.sidecar.mesh.io")],
    })
}

const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn the_ca_bundle_and_failure_policy_are_patched_on_every_webhook() {
    let api = FakeApi::start(&[(CONFIGURATION_PATH, configuration(None, "Ignore"))]).await;
    let patched = ca_bundle::update(
        &api.client,
        "mesh-sidecar-injector",
        PEM,
        FailurePolicy::Fail,
    )
    .await
    .expect("patched");
    assert!(patched);
    let requests = api.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", CONFIGURATION_PATH)
    );
    let ops = |index: usize, name: &str| {
        vec![
            json!({"op": "test", "path": format!("/webhooks/{index}/name"), "value": name}),
            json!({"op": "add", "path": format!("/webhooks/{index}/clientConfig/caBundle"), "value": base64(PEM)}),
            json!({"op": "add", "path": format!("/webhooks/{index}/failurePolicy"), "value": "Fail"}),
        ]
    };
    let mut expected = ops(0, "namespace.sidecar.mesh.io");
    expected.extend(ops(1, "object.sidecar.mesh.io"));
    assert_eq!(
        requests[1],
        Recorded {
            method: "PATCH".to_owned(),
            path: CONFIGURATION_PATH.to_owned(),
            content_type: "application/json-patch+json".to_owned(),
            body: Value::Array(expected),
        }
    );
}

#[tokio::test]
async fn a_current_configuration_is_not_patched() {
    let current = configuration(Some(&base64(PEM)), "Fail");
    let api = FakeApi::start(&[(CONFIGURATION_PATH, current)]).await;
    let patched = ca_bundle::update(
        &api.client,
        "mesh-sidecar-injector",
        PEM,
        FailurePolicy::Fail,
    )
    .await
    .expect("read");
    assert!(!patched);
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn a_missing_configuration_is_an_error_that_says_what_to_check() {
    let api = FakeApi::start(&[]).await;
    let error = ca_bundle::update(
        &api.client,
        "mesh-sidecar-injector",
        PEM,
        FailurePolicy::Fail,
    )
    .await
    .expect_err("not found");
    let message = error.to_string();
    assert!(message.contains("mesh-sidecar-injector"), "{message}");
    assert!(message.contains("service account"), "{message}");
}

#[tokio::test]
async fn a_namespace_the_reflector_has_not_seen_is_read_from_the_api() {
    let fresh = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "fresh", "labels": {"mesh-injection": "enabled"}}});
    let api = FakeApi::start(&[("/api/v1/namespaces/fresh", fresh)]).await;
    let namespaces = support::fed_namespaces(
        vec![support::namespace(
            "shop",
            json!({"mesh-injection": "enabled"}),
        )],
        Some(api.client.clone()),
    );
    // Known: from the store, no request.
    assert_eq!(
        namespaces.get("shop").await.labels["mesh-injection"],
        "enabled"
    );
    assert!(api.requests().is_empty());
    // Unknown to the store: one GET.
    assert_eq!(
        namespaces.get("fresh").await.labels["mesh-injection"],
        "enabled"
    );
    let paths: Vec<String> = api.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/api/v1/namespaces/fresh"]);
    // Unknown to the API server too: no labels, so only an annotation can opt in.
    assert!(namespaces.get("gone").await.labels.is_empty());
}

#[tokio::test]
async fn a_new_certificate_reaches_the_ca_bundle_at_once() {
    let api = FakeApi::start(&[(CONFIGURATION_PATH, configuration(None, "Fail"))]).await;
    let (bundle, receiver) = tokio::sync::watch::channel(PEM.to_owned());
    tokio::spawn(ca_bundle::keep_current(
        api.client.clone(),
        "mesh-sidecar-injector".to_owned(),
        receiver,
        FailurePolicy::Fail,
        std::time::Duration::from_secs(3600),
    ));
    let patched_with = |api: &FakeApi, pem: &str| {
        api.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.body[1]["value"] == json!(base64(pem)))
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let wait = |pem: &'static str| {
        let api = &api;
        async move {
            while !patched_with(api, pem) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no PATCH with {pem}"
                );
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    wait(PEM).await;
    const NEXT: &str = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n";
    bundle.send_replace(NEXT.to_owned());
    // Long before the hour's tick.
    wait(NEXT).await;
}

#[tokio::test]
async fn the_reflector_lists_namespaces_so_lookups_need_no_request() {
    let shop = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"mesh-injection": "enabled"}}});
    let api = FakeApi::start(&[("/api/v1/namespaces/shop", shop)]).await;
    let (namespaces, watch) = mesh_injector::namespaces::Namespaces::watch(api.client.clone());
    tokio::spawn(watch);
    let listed = |api: &FakeApi| {
        api.requests()
            .iter()
            .any(|r| r.path == "/api/v1/namespaces" && r.method == "GET")
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut known = false;
    while !known {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reflector never listed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let before = api.requests().len();
        known = listed(&api)
            && namespaces.get("shop").await.labels["mesh-injection"] == "enabled"
            && api.requests().len() == before;
    }
    let direct_gets = api
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/shop")
        .count();
    assert!(direct_gets <= 1, "{:?}", api.requests());
}
