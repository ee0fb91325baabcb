//! A gateway server with `tls.mode: AUTO_PASSTHROUGH`, with the real binary and curl: the
//! SNI names the cluster as Istio's sidecars write it (`outbound_.<port>_.<subset>_.<host>`)
//! and the TLS bytes reach that cluster's endpoint untouched (the upstream completes the
//! handshake and sees the SNI), with no VirtualService; a name that is no cluster is
//! closed. Both are counted.

#![allow(clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "mtls/ca.rs"]
mod ca;
#[allow(dead_code)]
#[path = "gateway/curl.rs"]
mod curl;
#[allow(dead_code)]
#[path = "tls_origination/upstream.rs"]
mod upstream;

use std::time::Duration;

use ca::{TestCa, Validity};
use support::{Proxy, metric_value};
use upstream::{TlsUpstream, server_config};

const HOST: &str = "api.shop.svc.cluster.local";
const SNI: &str = "outbound_.443_._.api.shop.svc.cluster.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_passthrough_forwards_by_the_cluster_the_sni_names() {
    let ca = TestCa::root("auto passthrough root");
    let (chain, key) = ca.leaf_pem(&[HOST], Validity::from_now(Duration::from_secs(3600)));
    let upstream = TlsUpstream::http(server_config(&chain, &key, None)).await;
    let snapshot = format!(
        "listeners:\n- name: tls\n  address: \"127.0.0.1:0\"\n  tls:\n    servers:\n    - {{hosts: [\"*.local\"], tls: {{mode: AUTO_PASSTHROUGH}}}}\nclusters:\n- {{host: {HOST}, port: 443, endpoints: [{{address: \"{}\"}}]}}\n",
        upstream.addr
    );
    let proxy = Proxy::start(&snapshot);
    let addr = proxy.listener("tls").await;

    // The upstream's certificate names the service, not the SNI: what is checked is that
    // the upstream answered, with the client's own handshake.
    let reply = tokio::task::spawn_blocking(move || {
        curl::https(SNI, addr, "/", "/dev/null", &["--insecure"])
    })
    .await
    .unwrap();
    assert_eq!(reply.exit, 0, "{}", reply.stderr);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "tls upstream");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].sni.as_deref(), Some(SNI));

    // A cluster the gateway does not have: closed, never forwarded.
    let nowhere = "outbound_.443_._.nowhere.shop.svc.cluster.local";
    let refused = tokio::task::spawn_blocking(move || {
        curl::https(nowhere, addr, "/", "/dev/null", &["--insecure"])
    })
    .await
    .unwrap();
    assert_ne!(refused.exit, 0, "{}", refused.body);
    assert_eq!(upstream.seen().len(), 1);

    let count = |result: &'static str| {
        let proxy = &proxy;
        async move {
            metric_value(
                proxy,
                "mesh_gateway_auto_passthrough_total",
                &[("result", result)],
            )
            .await
        }
    };
    assert_eq!(count("forwarded").await, 1.0);
    assert_eq!(count("no_cluster").await, 1.0);
}
