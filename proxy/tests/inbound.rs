//! Inbound listeners with the real binary: PeerAuthentication modes (STRICT, PERMISSIVE)
//! with mTLS clients holding certificates from the mesh's root (or another), plaintext
//! clients, `x-forwarded-client-cert` to the app, and AuthorizationPolicy over HTTP and TCP.

#![allow(clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "mtls/ca.rs"]
mod ca;
#[allow(dead_code)]
#[path = "mtls/citadel.rs"]
mod citadel;
#[path = "inbound/harness.rs"]
mod harness;
#[path = "inbound/modes.rs"]
mod modes;

use http::StatusCode;
use mesh_echo::EchoReply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use ca::TestCa;
use harness::{Mesh, eventually, http_snapshot, id, mtls_get, plain_get, tcp_snapshot};
use support::{DEADLINE, echo, metric_value};

const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";
const CART: &str = "spiffe://cluster.local/ns/shop/sa/cart";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_admits_mtls_with_xfcc_and_refuses_plaintext_and_foreign_roots() {
    let app = echo("v1").await;
    let mesh = Mesh::start(&http_snapshot("STRICT", app.addr(), "")).await;
    let addr = mesh.proxy.listener("in").await;
    let listeners = mesh.proxy.admin_json("/listeners").await;
    assert_eq!(listeners[0]["mtls"], "STRICT", "{listeners}");

    let web = mesh.client("web");
    let forged = [(
        "x-forwarded-client-cert",
        "URI=spiffe://cluster.local/ns/shop/sa/admin",
    )];
    let (status, body) = mtls_get(addr, &web, "/hello", &forged).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let reply: EchoReply = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        reply
            .headers
            .get("x-forwarded-client-cert")
            .map(String::as_str),
        Some(format!("By={};URI={WEB}", id("cart")).as_str()),
        "the app sees the verified peer, not what the client sent"
    );

    let plain = plain_get(addr, "/hello").await;
    assert!(plain.is_err(), "plaintext answered: {plain:?}");
    let refused = ("listener", "in");
    assert_eq!(
        metric_value(
            &mesh.proxy,
            "mesh_inbound_plaintext_refused_total",
            &[refused]
        )
        .await,
        1.0
    );

    let other = TestCa::root("someone else's root");
    let foreign = other.manager(&id("web"), &[&mesh.root, &other]);
    let result = mtls_get(addr, &foreign, "/hello", &[]).await;
    assert!(result.is_err(), "a foreign root answered: {result:?}");
    assert_eq!(
        app.stats().requests(),
        1,
        "only the mTLS request reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissive_admits_mtls_and_plaintext_and_labels_each() {
    let app = echo("v1").await;
    let mesh = Mesh::start(&http_snapshot("PERMISSIVE", app.addr(), "")).await;
    let addr = mesh.proxy.listener("in").await;

    let (status, body) = mtls_get(addr, &mesh.client("web"), "/", &[]).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let reply: EchoReply = serde_json::from_slice(&body).unwrap();
    assert!(reply.headers.contains_key("x-forwarded-client-cert"));
    let (status, body) = plain_get(addr, "/").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let reply: EchoReply = serde_json::from_slice(&body).unwrap();
    assert!(!reply.headers.contains_key("x-forwarded-client-cert"));

    // Reported as the destination: this workload in the destination_* labels, the
    // caller's principal and namespace (from its SPIFFE ID) in the source_* ones.
    let mtls = [
        ("reporter", "destination"),
        ("connection_security_policy", "mutual_tls"),
        ("source_principal", WEB),
        ("source_workload_namespace", "shop"),
        ("destination_workload_namespace", "shop"),
        ("destination_principal", CART),
    ];
    let none = [
        ("reporter", "destination"),
        ("connection_security_policy", "none"),
        ("source_principal", "unknown"),
        ("source_workload_namespace", "unknown"),
    ];
    let proxy = &mesh.proxy;
    eventually("both requests are counted", || async {
        metric_value(proxy, "mesh_requests_total", &mtls).await == 1.0
            && metric_value(proxy, "mesh_requests_total", &none).await == 1.0
    })
    .await;
    let lines = proxy.stdout_lines(2).await;
    let logged = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(
        logged(&format!("\"downstream_peer_principal\":\"{WEB}\"")),
        1,
        "{lines:?}"
    );
    assert_eq!(
        logged("\"authz\":\"allowed: no ALLOW policy applies\""),
        2,
        "{lines:?}"
    );
}

const DENY_ADMIN: &str = r#"authorizationPolicies:
- name: shop/deny-admin
  spec:
    action: DENY
    rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_policy_answers_403_on_its_path_only() {
    let app = echo("v1").await;
    let mesh = Mesh::start(&http_snapshot("PERMISSIVE", app.addr(), DENY_ADMIN)).await;
    let addr = mesh.proxy.listener("in").await;

    let (status, body) = plain_get(addr, "/admin/users").await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(&body[..], b"RBAC: access denied");
    let (status, _) = plain_get(addr, "/products").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.stats().path_requests("/admin/users"), 0);
    let denied = ("policy", "shop/deny-admin");
    assert_eq!(
        metric_value(&mesh.proxy, "mesh_authz_denied_total", &[denied]).await,
        1.0
    );
    let flagged = [("response_code", "403"), ("response_flags", "RBAC")];
    let proxy = &mesh.proxy;
    eventually("the 403 is counted with flag RBAC", || async {
        metric_value(proxy, "mesh_requests_total", &flagged).await == 1.0
    })
    .await;
}

const ALLOW_WEB: &str = r#"authorizationPolicies:
- name: shop/allow-web
  spec:
    action: ALLOW
    rules: [{from: [{source: {principals: ["cluster.local/ns/shop/sa/web"]}}]}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_policy_admits_its_principal_only() {
    let app = echo("v1").await;
    let mesh = Mesh::start(&http_snapshot("PERMISSIVE", app.addr(), ALLOW_WEB)).await;
    let addr = mesh.proxy.listener("in").await;

    let web = mtls_get(addr, &mesh.client("web"), "/", &[]).await.unwrap();
    assert_eq!(web.0, StatusCode::OK);
    let other = mtls_get(addr, &mesh.client("other"), "/", &[])
        .await
        .unwrap();
    assert_eq!(other.0, StatusCode::FORBIDDEN);
    let plain = plain_get(addr, "/").await.unwrap();
    assert_eq!(plain.0, StatusCode::FORBIDDEN, "no principal without mTLS");
    assert_eq!(app.stats().requests(), 1);
    let none = ("policy", "none-allowed");
    assert_eq!(
        metric_value(&mesh.proxy, "mesh_authz_denied_total", &[none]).await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_a_denied_peer_is_closed_before_the_upstream_sees_it() {
    let app = mesh_echo::start(mesh_echo::EchoConfig {
        protocol: mesh_echo::Protocol::Tcp,
        ..mesh_echo::EchoConfig::default()
    })
    .await
    .unwrap();
    let mesh = Mesh::start(&tcp_snapshot("PERMISSIVE", app.addr(), ALLOW_WEB)).await;
    let addr = mesh.proxy.listener("in").await;

    // Allowed: mTLS as web, bytes echoed through.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut allowed = mesh_proxy::tls::connect(tcp, &mesh.client("web"), &[id("cart")])
        .await
        .unwrap();
    allowed.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(DEADLINE, allowed.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping");
    assert_eq!(app.stats().connections(), 1);

    // Denied: plaintext has no principal; the proxy closes without dialling the app.
    let mut denied = TcpStream::connect(addr).await.unwrap();
    denied.write_all(b"ping").await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, denied.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?} {rest:?}");
    let none = ("policy", "none-allowed");
    assert_eq!(
        metric_value(&mesh.proxy, "mesh_authz_denied_total", &[none]).await,
        1.0
    );
    assert_eq!(
        app.stats().connections(),
        1,
        "the denied peer reached the app"
    );
    let mtls = [
        ("reporter", "destination"),
        ("connection_security_policy", "mutual_tls"),
        ("source_principal", WEB),
        ("destination_principal", CART),
    ];
    let opened = "mesh_tcp_connections_opened_total";
    assert_eq!(metric_value(&mesh.proxy, opened, &mtls).await, 1.0);
}

/// A listener whose config changes on the same address (here its PeerAuthentication mode)
/// keeps its socket: connections made all through the change are accepted, none refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mode_change_refuses_no_connection() {
    let app = echo("v1").await;
    let mesh = Mesh::start(&http_snapshot("PERMISSIVE", app.addr(), "")).await;
    let addr = mesh.proxy.listener("in").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dialer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut accepted, mut refused) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match TcpStream::connect(addr).await {
                    Ok(_) => accepted += 1,
                    Err(_) => refused += 1,
                }
            }
            (accepted, refused)
        })
    };
    for (round, mode) in ["STRICT", "DISABLE", "PERMISSIVE"].into_iter().enumerate() {
        mesh.proxy
            .write_snapshot(&http_snapshot(mode, app.addr(), "").replace("\"1\"", "\"2\""));
        mesh.proxy.wait_applied(round as u64 + 2).await;
        eventually("the listener runs the new mode", || async {
            let listeners = mesh.proxy.admin_json("/listeners").await;
            listeners[0]["mtls"] == mode
        })
        .await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (accepted, refused) = dialer.await.unwrap();
    assert!(accepted > 0);
    assert_eq!(
        refused,
        0,
        "{refused} of {} connections refused",
        accepted + refused
    );
    assert_eq!(mesh.proxy.listener("in").await, addr, "the same socket");
}

const ALLOW_ADMIN_XFCC: &str = r#"authorizationPolicies:
- name: shop/allow-admin-by-xfcc
  spec:
    action: ALLOW
    rules: [{when: [{key: "request.headers[x-forwarded-client-cert]", values: ["*/sa/admin"]}]}]
"#;

/// A policy on `x-forwarded-client-cert` sees the header the proxy states (the verified
/// peer), never one the client forged: an mTLS peer does not get in by claiming to be
/// `admin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_on_xfcc_sees_the_verified_peer_not_a_forged_header() {
    let app = echo("v1").await;
    let mesh = Mesh::start(&http_snapshot("PERMISSIVE", app.addr(), ALLOW_ADMIN_XFCC)).await;
    let addr = mesh.proxy.listener("in").await;
    let forged = [(
        "x-forwarded-client-cert",
        "URI=spiffe://cluster.local/ns/shop/sa/admin",
    )];
    let web = mtls_get(addr, &mesh.client("web"), "/", &forged)
        .await
        .unwrap();
    assert_eq!(web.0, StatusCode::FORBIDDEN, "web forged admin's XFCC");
    let admin = mtls_get(addr, &mesh.client("admin"), "/", &[])
        .await
        .unwrap();
    assert_eq!(admin.0, StatusCode::OK, "admin's verified XFCC");
    assert_eq!(app.stats().requests(), 1);
}
