//! A `resolution: DNS` ServiceEntry end to end: pilot sends the entry's host as a name to
//! resolve (the entry has no endpoints, so its own host, on its `targetPort`), the sidecar
//! resolves it against a DNS server of the test's own (real UDP on loopback, `--dns-server`)
//! and follows the answer when it changes, without a restart.

#![allow(clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "../../proxy/tests/dns/server.rs"]
mod dns;

use std::net::{Ipv4Addr, SocketAddr};

use dns::{DnsServer, HOST, echo_on};
use support::{Pilot, Proxy, version_via, wait_for};

fn config(port: u16) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: api, namespace: shop}}
spec:
  hosts: [{HOST}]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{{number: 80, name: http, protocol: HTTP, targetPort: {port}}}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_service_entry_follows_its_dns_answer_through_pilot_and_a_sidecar() {
    let first = echo_on("127.0.22.1:0".parse().unwrap(), "first").await;
    let port = first.addr().port();
    let _second = echo_on(SocketAddr::new([127, 0, 22, 2].into(), port), "second").await;
    let dns = DnsServer::start("127.0.22.53:0", Ipv4Addr::new(127, 0, 22, 1)).await;
    let pilot = Pilot::start(&[("api.yaml", &config(port))]);
    let dns_addr = dns.addr.to_string();
    let pilot_addr = pilot.grpc.to_string();
    let sidecar = Proxy::start_args(
        "productpage",
        "shop",
        &[
            "--pilot",
            &pilot_addr,
            "--outbound-addr",
            "127.0.0.1:0",
            "--dns-server",
            &dns_addr,
        ],
    );
    pilot.wait_all_synced(&[&sidecar.id]).await;
    let outbound = sidecar.outbound().await;

    wait_for("the first address answering", || async {
        (version_via(outbound, HOST).await == "first").then_some(())
    })
    .await;
    let clusters = sidecar.admin_json("/clusters").await;
    let cluster = clusters
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("outbound|80||{HOST}"))
        .unwrap_or_else(|| panic!("no cluster for {HOST}: {clusters}"));
    assert_eq!(cluster["endpoints"][0]["hostname"], HOST);
    assert_eq!(
        cluster["endpoints"][0]["address"],
        format!("127.0.22.1:{port}")
    );

    dns.answer(&[Ipv4Addr::new(127, 0, 22, 2)]);
    wait_for("the changed answer followed", || async {
        (version_via(outbound, HOST).await == "second").then_some(())
    })
    .await;
    for _ in 0..10 {
        assert_eq!(version_via(outbound, HOST).await, "second");
    }
}
