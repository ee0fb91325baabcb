#![allow(dead_code)] // each test binary uses its own part of this
//! The injector's HTTPS server on 127.0.0.1:0, in process, with a self-signed certificate,
//! and a client that trusts only that certificate's caBundle, as the API server does.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use mesh_injector::Config;
use mesh_injector::namespaces::Namespaces;
use mesh_injector::tls::ServingCert;
use mesh_injector::webhook::Injector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};

pub struct Webhook {
    pub addr: SocketAddr,
    pub ca_pem: String,
}

/// A namespace as the API server lists it.
pub fn namespace(name: &str, labels: Value) -> Namespace {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": labels, "uid": format!("uid-{name}")},
    }))
    .expect("a namespace")
}

/// Namespace labels from a reflector store fed with `namespaces`, as the watch would.
pub fn fed_namespaces(namespaces: Vec<Namespace>, client: Option<kube::Client>) -> Namespaces {
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&Event::Init);
    for namespace in namespaces {
        writer.apply_watcher_event(&Event::InitApply(namespace));
    }
    writer.apply_watcher_event(&Event::InitDone);
    Namespaces::Watched { store, client }
}

impl Webhook {
    pub async fn start(config: Config, namespaces: Namespaces) -> Self {
        let names = vec!["localhost".to_owned()];
        let cert = ServingCert::self_signed(&names).expect("certificate");
        let tls = cert.server_config().expect("TLS config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let injector = Arc::new(Injector {
            config: Arc::new(config),
            namespaces,
        });
        tokio::spawn(mesh_injector::server::serve(listener, tls, injector));
        Self {
            addr,
            ca_pem: cert.ca_bundle_pem,
        }
    }

    /// Whether a TLS handshake succeeds with only `ca_pem` trusted.
    pub async fn handshake_ok(&self) -> bool {
        let Ok(tcp) = tokio::net::TcpStream::connect(self.addr).await else {
            return false;
        };
        let name = ServerName::try_from("localhost").expect("name");
        self.connector().connect(name, tcp).await.is_ok()
    }

    fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.connector_config())
    }

    fn connector_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.expect("PEM")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// One AdmissionReview over HTTP/2 (ALPN h2), as kube-apiserver may send it; the
    /// negotiated protocol and the answer.
    pub async fn review_h2(&self, review: &Value) -> (Option<Vec<u8>>, Value) {
        let mut config = (*self.connector_config()).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        let request = http::Request::post("https://localhost/inject")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                serde_json::to_vec(review).expect("JSON"),
            )))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (alpn, serde_json::from_slice(&body).expect("JSON"))
    }

    /// `POST path` over HTTPS, HTTP/1.1; the status and body.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Bytes) {
        self.send(http::Method::POST, path, body).await
    }

    pub async fn send(&self, method: http::Method, path: &str, body: Vec<u8>) -> (u16, Bytes) {
        let connector = self.connector();
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP handshake");
        tokio::spawn(connection);
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    }

    /// Sends an AdmissionReview; the `response` of the answer.
    pub async fn review(&self, review: &Value) -> Value {
        let (status, body) = self
            .post("/inject", serde_json::to_vec(review).expect("JSON"))
            .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).expect("a JSON answer");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        answer["response"].clone()
    }
}

/// The AdmissionReview kube-apiserver sends for a Deployment's new pod in `shop`.
pub fn pod_create() -> Value {
    serde_json::from_str(include_str!("../fixtures/pod-create.json")).expect("fixture")
}

/// The request's pod with the answer's patch applied, as the API server would store it.
pub fn patched(review: &Value, response: &Value) -> k8s_openapi::api::core::v1::Pod {
    use base64::Engine;
    let encoded = response["patch"].as_str().expect("a patch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSON patch");
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).expect("the patch applies");
    serde_json::from_value(pod).expect("the patched object is a Pod")
}
