//! RequestAuthentication `jwksUri`: pilot fetches the keys over HTTPS (trusting the roots
//! in SSL_CERT_FILE), retries while the server fails, and pushes them inline, so the proxy
//! can verify tokens without reaching the identity provider itself.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mesh_core::authn::Outcome;
use mesh_core::authn::issuer::Issuer;
use mesh_core::compile::compile;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer as CaIssuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use support::{DEADLINE, FakeProxy, Pilot};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const ISS: &str = "https://accounts.example.com";

/// An HTTPS server for `localhost` answering `jwks` at any path, or 503 while `failing`.
struct JwksServer {
    addr: SocketAddr,
    ca_pem: String,
    failing: Arc<AtomicBool>,
    requests: Arc<AtomicU32>,
}

impl JwksServer {
    async fn start(jwks: String) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = CaIssuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let failing = Arc::new(AtomicBool::new(true));
        let requests = Arc::new(AtomicU32::new(0));
        let (fail, count) = (failing.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, fail, count, jwks) =
                    (acceptor.clone(), fail.clone(), count.clone(), jwks.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |_: Request<Incoming>| {
                        count.fetch_add(1, Ordering::SeqCst);
                        let failing = fail.load(Ordering::SeqCst);
                        let jwks = jwks.clone();
                        async move {
                            let (status, body) = if failing {
                                (StatusCode::SERVICE_UNAVAILABLE, String::new())
                            } else {
                                (StatusCode::OK, jwks)
                            };
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = status;
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            ca_pem: ca_cert.pem(),
            failing,
            requests,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_uri_keys_are_fetched_retried_and_pushed_inline() {
    let issuer = Issuer::es256(ISS, "k1").unwrap();
    let server = JwksServer::start(issuer.jwks()).await;
    let trust = tempfile::tempdir().unwrap();
    let ca_file = trust.path().join("ca.pem");
    std::fs::write(&ca_file, &server.ca_pem).unwrap();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("jwt.yaml"),
        format!(
            r#"apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: jwt, namespace: shop}}
spec:
  jwtRules:
  - issuer: {ISS}
    jwksUri: https://localhost:{}/.well-known/jwks.json
"#,
            server.addr.port()
        ),
    )
    .unwrap();
    let pilot = Pilot::start_with_env(config, &[], &[("SSL_CERT_FILE", ca_file.to_str().unwrap())]);
    let mut proxy = FakeProxy::connect(pilot.grpc, "productpage.shop", "shop").await;

    // The server fails: the rule goes out without keys, so tokens would be refused.
    let first = proxy.next().await;
    proxy.ack(&first).await;
    let snapshot = proxy.snapshot(&first.system_version_info);
    assert_eq!(snapshot.request_authentications.len(), 1, "{snapshot:?}");
    assert_eq!(
        snapshot.request_authentications[0].spec.jwt_rules[0].jwks,
        None
    );
    let started = Instant::now();
    while !pilot
        .get("/metrics")
        .await
        .1
        .contains(r#"pilot_jwks_fetches_total{result="failure"}"#)
    {
        assert!(started.elapsed() < DEADLINE, "no failed fetch counted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // It recovers: pilot's retry fetches the keys and pushes them.
    server.failing.store(false, Ordering::SeqCst);
    let update = proxy.next().await;
    proxy.ack(&update).await;
    let snapshot = proxy.snapshot(&update.system_version_info);
    let rule = &snapshot.request_authentications[0].spec.jwt_rules[0];
    assert_eq!(rule.jwks.as_deref(), Some(issuer.jwks().as_str()));
    assert!(server.requests.load(Ordering::SeqCst) >= 2);

    // What the proxy compiles verifies the issuer's tokens.
    let config = compile(&snapshot).unwrap();
    let token = issuer.token(&json!({"sub": "alice"}));
    let mut parts = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap()
        .into_parts()
        .0;
    assert!(matches!(
        config.authn.authenticate(&mut parts, SystemTime::now()),
        Outcome::Authenticated(_)
    ));
    let metrics = pilot.get("/metrics").await.1;
    assert!(
        metrics.contains(r#"pilot_jwks_fetches_total{result="success"} 1"#),
        "{metrics}"
    );
}
