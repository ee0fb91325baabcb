//! A fake Kubernetes API server on 127.0.0.1: real HTTP and JSON, objects kept in memory by
//! path, resourceVersions checked on PUT, TokenReviews answered from a table, a Namespace
//! watch fed by the test, and a log of every request.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

const REVIEWS_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const NAMESPACES_PATH: &str = "/api/v1/namespaces";

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    objects: Mutex<BTreeMap<String, Value>>,
    /// token -> TokenReview status.
    reviews: Mutex<HashMap<String, Value>>,
    namespace_events: Mutex<Option<mpsc::Receiver<Value>>>,
    requests: Mutex<Vec<Recorded>>,
    version: AtomicU64,
}

type Body = BoxBody<Bytes, Infallible>;

pub struct FakeApi {
    state: Arc<State>,
    pub url: String,
    pub client: kube::Client,
}

impl FakeApi {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let serving = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = serving.clone();
                let service = hyper::service::service_fn(move |r| answer(r, state.clone()));
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::spawn(connection);
            }
        });
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        Self { state, url, client }
    }

    /// A TokenReview for `token` answers with `status`.
    pub fn review(&self, token: &str, status: Value) {
        self.state
            .reviews
            .lock()
            .unwrap()
            .insert(token.to_owned(), status);
    }

    pub fn put(&self, path: &str, object: Value) {
        let object = with_version(object, &self.state);
        self.state
            .objects
            .lock()
            .unwrap()
            .insert(path.to_owned(), object);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.objects.lock().unwrap().get(path).cloned()
    }

    /// Namespace watch events (`{"type": "ADDED", "object": ...}`) come from the sender.
    pub fn namespace_events(&self) -> mpsc::Sender<Value> {
        let (sender, receiver) = mpsc::channel(16);
        *self.state.namespace_events.lock().unwrap() = Some(receiver);
        sender
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// A kubeconfig that points at this server, for the real binary.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters: [{{name: fake, cluster: {{server: \"{}\"}}}}]\n\
             users: [{{name: fake, user: {{token: citadel-sa-token}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: mesh-system}}}}]\n",
            self.url
        )
    }
}

pub fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": labels, "uid": format!("uid-{name}")}})
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Body>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    state.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        content_type,
        body: body.clone(),
    });
    let watching = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    Ok(match (&method, path.as_str()) {
        (&Method::POST, REVIEWS_PATH) => review(&state, body),
        (&Method::GET, NAMESPACES_PATH) if watching => {
            let events = state.namespace_events.lock().unwrap().take();
            match events {
                Some(events) => watch_response(events),
                None => std::future::pending().await,
            }
        }
        (&Method::GET, NAMESPACES_PATH) => namespaces(&state, &query),
        (&Method::GET, _) => match state.objects.lock().unwrap().get(&path) {
            Some(object) => json_response(StatusCode::OK, object.clone()),
            None => status(404, "NotFound", "not found"),
        },
        (&Method::POST, _) => create(&state, &path, body),
        (&Method::PUT, _) => replace(&state, &path, body),
        (&Method::PATCH, _) => {
            let object = with_version(body, &state);
            state.objects.lock().unwrap().insert(path, object.clone());
            json_response(StatusCode::OK, object)
        }
        _ => status(405, "MethodNotAllowed", "not supported by the fake"),
    })
}

fn review(state: &State, mut body: Value) -> Response<Body> {
    let token = body["spec"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let answer = state.reviews.lock().unwrap().get(&token).cloned();
    body["status"] =
        answer.unwrap_or_else(|| json!({"authenticated": false, "error": "invalid bearer token"}));
    json_response(StatusCode::CREATED, body)
}

fn namespaces(state: &State, query: &str) -> Response<Body> {
    let wanted = query.contains("labelSelector=mesh-injection%3Denabled")
        || query.contains("labelSelector=mesh-injection=enabled");
    let items: Vec<Value> = state
        .objects
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _)| {
            path.starts_with("/api/v1/namespaces/") && path.matches('/').count() == 4
        })
        .map(|(_, object)| object.clone())
        .filter(|ns| !wanted || ns["metadata"]["labels"]["mesh-injection"] == "enabled")
        .collect();
    let version = state.version.load(Ordering::SeqCst).to_string();
    json_response(
        StatusCode::OK,
        json!({"apiVersion": "v1", "kind": "NamespaceList",
               "metadata": {"resourceVersion": version}, "items": items}),
    )
}

fn create(state: &State, collection: &str, body: Value) -> Response<Body> {
    let name = body["metadata"]["name"].as_str().unwrap_or_default();
    let path = format!("{collection}/{name}");
    let mut objects = state.objects.lock().unwrap();
    if objects.contains_key(&path) {
        return status(409, "AlreadyExists", "already exists");
    }
    let object = with_version(body, state);
    objects.insert(path, object.clone());
    json_response(StatusCode::CREATED, object)
}

fn replace(state: &State, path: &str, body: Value) -> Response<Body> {
    let mut objects = state.objects.lock().unwrap();
    let Some(current) = objects.get(path) else {
        return status(404, "NotFound", "not found");
    };
    let sent = &body["metadata"]["resourceVersion"];
    if !sent.is_null() && *sent != current["metadata"]["resourceVersion"] {
        return status(409, "Conflict", "the object has been modified");
    }
    let object = with_version(body, state);
    objects.insert(path.to_owned(), object.clone());
    json_response(StatusCode::OK, object)
}

fn with_version(mut object: Value, state: &State) -> Value {
    let version = state.version.fetch_add(1, Ordering::SeqCst) + 1;
    object["metadata"]["resourceVersion"] = json!(version.to_string());
    object
}

fn json_response(code: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(BoxBody::new(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn watch_response(events: mpsc::Receiver<Value>) -> Response<Body> {
    let frames =
        ReceiverStream::new(events).map(|event| Ok(Frame::data(Bytes::from(format!("{event}\n")))));
    let mut response = Response::new(BoxBody::new(StreamBody::new(frames)));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code});
    json_response(StatusCode::from_u16(code).unwrap(), body)
}
