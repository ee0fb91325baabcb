//! A gateway server with `tls.mode: ISTIO_MUTUAL`, with the real binaries: citadel signs the
//! gateway's own workload certificate and a sidecar's; pilot gives the gateway an HTTPS
//! server that terminates mTLS with that certificate and requires a mesh client
//! certificate. A mesh client (the sidecar, originating mTLS to the gateway as to any mesh
//! workload) gets through and its identity reaches the app in `x-forwarded-client-cert`;
//! a client with no certificate, or with one from another CA, is refused in the handshake;
//! on the gateway's plain HTTP port a client-sent header claiming an identity is dropped.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::Command;

use http::StatusCode;
use rcgen::{CertificateParams, KeyPair, SanType};
use support::mesh::{CALLER_ID, sidecar, xfcc};
use support::{Citadel, Pilot, Proxy, echo, free_addr, get, wait_for};

const GATEWAY_IP: &str = "127.0.20.1";
const GATEWAY_ID: &str = "spiffe://cluster.local/ns/web/sa/ingressgateway";

/// The app behind the gateway; the gateway as the mesh sees it (a mesh workload at its
/// server's address, with its service account); an ISTIO_MUTUAL server for every host and
/// a VirtualService bound to it.
fn config(app: SocketAddr, gateway: SocketAddr, plain: SocketAddr) -> String {
    let (app_port, port, plain) = (app.port(), gateway.port(), plain.port());
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: shop-app, namespace: web}}
spec:
  hosts: [shop-app.web.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {app_port}}}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: shop-edge, namespace: web}}
spec:
  hosts: [shop.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints:
  - address: {GATEWAY_IP}
    ports: {{http: {port}}}
    labels: {{security.istio.io/tlsMode: istio}}
    serviceAccount: ingressgateway
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: edge, namespace: web}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: {port}, name: https, protocol: HTTPS}}
    hosts: ["*"]
    tls: {{mode: ISTIO_MUTUAL}}
  - port: {{number: {plain}, name: http, protocol: HTTP}}
    hosts: [shop.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: shop, namespace: web}}
spec:
  hosts: [shop.example.com]
  gateways: [edge]
  http: [{{route: [{{destination: {{host: shop-app.web.svc.cluster.local}}}}]}}]
"#
    )
}

/// The gateway, identified by citadel as `web/ingressgateway`, its server on its own address.
fn gateway(pilot: &Pilot, citadel: &Citadel) -> Proxy {
    let pilot_addr = pilot.grpc.to_string();
    let outbound = format!("{GATEWAY_IP}:0");
    let mut args = vec![
        "--pilot",
        &pilot_addr,
        "--mode",
        "gateway",
        "--labels",
        "istio=ingressgateway",
        "--outbound-addr",
        &outbound,
        "--service-account",
        "ingressgateway",
    ];
    let identity = citadel.identity_args("gateway-token");
    args.extend(identity.iter().map(String::as_str));
    Proxy::start_args("ingressgateway", "web", &args)
}

/// curl over HTTPS to the gateway (its certificate not checked: what is under test is
/// whether the gateway admits the client), with `extra` flags; curl's exit code and output.
fn curl(gateway: SocketAddr, extra: &[&str]) -> (i32, String) {
    let url = format!("https://shop.example.com:{}/", gateway.port());
    let resolve = format!("shop.example.com:{}:{}", gateway.port(), gateway.ip());
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10", "--insecure"])
        .args(["--resolve", &resolve, "--write-out", "%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs (the gateway tests need curl on PATH)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// A client certificate naming the caller's SPIFFE ID, signed by nobody the mesh trusts.
fn foreign_certificate(dir: &std::path::Path) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .subject_alt_names
        .push(SanType::URI(CALLER_ID.try_into().unwrap()));
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("foreign.pem"), dir.join("foreign.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let text = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    (text(cert_path), text(key_path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_mutual_admits_mesh_clients_with_their_identity_and_refuses_others() {
    let app = echo("v1").await;
    // Ports free on the gateway's own address now, for its servers.
    let server = free_addr(GATEWAY_IP);
    let plain = free_addr(GATEWAY_IP);
    let citadel = Citadel::start(&[
        ("gateway-token", "web", "ingressgateway"),
        ("productpage-token", "shop", "productpage"),
    ]);
    let pilot = Pilot::start(&[("mesh.yaml", &config(app.addr(), server, plain))]);
    let gateway = gateway(&pilot, &citadel);
    let client = sidecar(
        &pilot,
        &citadel,
        "productpage",
        "app=productpage",
        "productpage-token",
        &[],
    );
    pilot.wait_all_synced(&[&gateway.id, &client.id]).await;

    // A mesh client: the sidecar originates mTLS to the gateway with its citadel certificate.
    let outbound = client.outbound().await;
    let body = wait_for("a request through the sidecar and the gateway", || async {
        let (status, body) = get(outbound, "shop.example.com", "/").await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let forwarded = xfcc(&reply);
    println!("the app saw x-forwarded-client-cert: {forwarded}");
    assert_eq!(forwarded, format!("By={GATEWAY_ID};URI={CALLER_ID}"));
    let certs = gateway.admin_json("/certs").await;
    assert!(
        certs["chain"].is_array(),
        "the gateway holds its own certificate: {certs}"
    );

    // No client certificate: the handshake fails, no request reaches the app.
    let served = app.stats().requests();
    let (code, text) = curl(server, &[]);
    println!("curl without a certificate: exit {code}: {text}");
    assert_ne!(code, 0, "{text}");
    assert!(!text.ends_with("200"), "{text}");

    // A certificate naming a mesh identity but not from the mesh's CA: refused too.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = foreign_certificate(dir.path());
    let (code, text) = curl(server, &["--cert", &cert, "--key", &key]);
    println!("curl with a foreign certificate: exit {code}: {text}");
    assert_ne!(code, 0, "{text}");
    assert_eq!(
        app.stats().requests(),
        served,
        "no refused client reached the app"
    );
    let failures = wait_for("the refused handshakes counted", || async {
        let (_, body) = get(gateway.metrics, "metrics", "/stats/prometheus").await;
        let text = String::from_utf8_lossy(&body).into_owned();
        let line = text
            .lines()
            .find(|l| l.starts_with("mesh_gateway_handshake_failures_total{"))?;
        let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
        (count >= 2.0).then_some(count)
    })
    .await;
    println!("the gateway counted {failures} failed handshakes");

    // The gateway's plain HTTP port: a client claiming a mesh identity in the header is
    // not believed; the app sees no x-forwarded-client-cert at all.
    let resolve = format!("shop.example.com:{}:{}", plain.port(), plain.ip());
    let forged = format!("x-forwarded-client-cert: URI={CALLER_ID}");
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(["--resolve", &resolve, "-H", &forged])
        .arg(format!("http://shop.example.com:{}/", plain.port()))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&output.stdout);
    let reply: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{e}: {body} {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(xfcc(&reply), "", "{reply}");
}
