//! Two sidecars talk mTLS, configured by pilot and identified by citadel: the caller's
//! proxy originates mTLS to the endpoint (it carries Istio's `tlsMode: istio` label), the
//! callee's STRICT inbound listener verifies it, and the app sees the caller's SPIFFE ID.

#![allow(clippy::unwrap_used)]

mod support;

use http::StatusCode;
use support::{Citadel, Pilot, Proxy, echo, wait_for};

fn config(inbound_port: u16, app: std::net::SocketAddr, mode: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: shop}}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 9080, name: http, protocol: HTTP}}]
  workloadSelector: {{labels: {{app: reviews}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-1, namespace: shop}}
spec:
  address: 127.0.0.2
  ports: {{http: {inbound_port}}}
  labels: {{app: reviews, security.istio.io/tlsMode: istio}}
  serviceAccount: reviews
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: reviews, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: reviews}}}}
  ingress:
  - port: {{number: {inbound_port}, name: http, protocol: HTTP}}
    bind: 127.0.0.2
    defaultEndpoint: {app}
    captureMode: NONE
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: shop}}
spec: {{mtls: {{mode: {mode}}}}}
"#
    )
}

/// A free port on 127.0.0.2 for the callee's inbound listener.
fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    socket.local_addr().unwrap().port()
}

fn sidecar(pilot: &Pilot, citadel: &Citadel, name: &str, labels: &str, token: &str) -> Proxy {
    let pilot_addr = pilot.grpc.to_string();
    let ca = citadel.grpc.to_string();
    let bundle = citadel.trust_bundle();
    let token_file = citadel.token_file(token);
    Proxy::start_args(
        name,
        "shop",
        &[
            "--pilot",
            &pilot_addr,
            "--outbound-addr",
            "127.0.0.1:0",
            "--labels",
            labels,
            "--service-account",
            name,
            "--ca-addr",
            &ca,
            "--trust-bundle",
            bundle.to_str().unwrap(),
            "--ca-token-file",
            token_file.to_str().unwrap(),
        ],
    )
}

#[tokio::test]
async fn two_sidecars_talk_mtls_and_the_app_sees_the_callers_identity() {
    let app = echo("v1").await;
    let port = free_port();
    let citadel = Citadel::start(&[
        ("productpage-token", "shop", "productpage"),
        ("reviews-token", "shop", "reviews"),
    ]);
    let pilot = Pilot::start(&[("mesh.yaml", &config(port, app.addr(), "STRICT"))]);
    let caller = sidecar(
        &pilot,
        &citadel,
        "productpage",
        "app=productpage",
        "productpage-token",
    );
    let callee = sidecar(&pilot, &citadel, "reviews", "app=reviews", "reviews-token");
    pilot.wait_all_synced(&[&caller.id, &callee.id]).await;
    let listeners = callee.admin_json("/listeners").await;
    assert!(
        listeners
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["mtls"] == "STRICT"),
        "{listeners}"
    );

    let outbound = caller.outbound().await;
    let body = wait_for("a request through both sidecars", || async {
        let (status, body) = support::get(outbound, "reviews:9080", "/hello").await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let xfcc = reply["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap_or_default();
    assert!(
        xfcc.contains("URI=spiffe://cluster.local/ns/shop/sa/productpage"),
        "the app sees the caller's identity: {reply}"
    );
    assert!(
        xfcc.contains("By=spiffe://cluster.local/ns/shop/sa/reviews"),
        "{xfcc}"
    );

    // STRICT: a plaintext client straight to the callee's inbound port is refused.
    let plain = tokio::time::timeout(
        support::DEADLINE,
        tokio::net::TcpStream::connect(("127.0.0.2", port)),
    )
    .await
    .unwrap();
    if let Ok(mut stream) = plain {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(support::DEADLINE, stream.read_to_end(&mut answer)).await;
        assert!(
            answer.is_empty(),
            "plaintext was answered: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
}
