//! Metadata exchange on the inbound side, with the real binary: the peer's
//! `x-mesh-peer-metadata` names the source workload only over mTLS from the namespace it
//! claims, and never reaches the app.

#![allow(clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "mtls/ca.rs"]
mod ca;
#[allow(dead_code)]
#[path = "mtls/citadel.rs"]
mod citadel;
#[allow(dead_code)]
#[path = "inbound/harness.rs"]
mod harness;

use http::StatusCode;
use mesh_echo::EchoReply;

use harness::{APP, Mesh, eventually, http_snapshot, mtls_get, plain_get_with};
use support::{echo, metric_value};

const HEADER: &str = "x-mesh-peer-metadata";
const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";

fn app_saw_no_header(body: &[u8]) {
    let reply: EchoReply = serde_json::from_slice(body).unwrap();
    assert!(!reply.headers.contains_key(HEADER), "{:?}", reply.headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_workload_comes_from_a_believed_peer_and_the_app_never_sees_it() {
    let app = echo("v1").await;
    let mesh = Mesh::start(&http_snapshot("PERMISSIVE", app.addr(), "")).await;
    let addr = mesh.proxy.listener("in").await;
    let web = mesh.client("web");

    let honest = [(HEADER, "w=web-v1;n=shop;a=web;v=v1")];
    let (status, body) = mtls_get(addr, &web, "/", &honest).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    app_saw_no_header(&body);
    // A peer of shop claiming a workload of another namespace.
    let elsewhere = [(HEADER, "w=admin;n=kube-system;a=admin;v=v1")];
    let (status, body) = mtls_get(addr, &web, "/", &elsewhere).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    app_saw_no_header(&body);
    // Plaintext proves nothing.
    let (status, body) = plain_get_with(addr, "/", &honest).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    app_saw_no_header(&body);

    let believed = [
        ("reporter", "destination"),
        ("source_workload", "web-v1"),
        ("source_workload_namespace", "shop"),
        ("source_app", "web"),
        ("source_version", "v1"),
        ("source_principal", WEB),
        ("destination_service", APP),
        ("connection_security_policy", "mutual_tls"),
    ];
    let not_believed = [("reporter", "destination"), ("source_workload", "unknown")];
    let proxy = &mesh.proxy;
    eventually("the three requests are counted", || async {
        metric_value(proxy, "mesh_requests_total", &believed).await == 1.0
            && metric_value(proxy, "mesh_requests_total", &not_believed).await == 2.0
    })
    .await;
    assert_eq!(
        metric_value(
            proxy,
            "mesh_requests_total",
            &[("source_workload", "admin")]
        )
        .await,
        0.0
    );
}
