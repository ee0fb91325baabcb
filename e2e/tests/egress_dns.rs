//! A `resolution: DNS` ServiceEntry end to end: pilot sends the entry's host as a name to
//! resolve (the entry has no endpoints, so its own host, on its `targetPort`), the sidecar
//! resolves it against a DNS server of the test's own (real UDP on loopback, `--dns-server`)
//! and follows the answer when it changes, without a restart.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use support::{Pilot, Proxy, version_via, wait_for};
use tokio::net::UdpSocket;

const HOST: &str = "api.external.com";

/// Answers A queries for [`HOST`] with the current address (TTL 1 s); nothing else.
async fn dns_server(bind: &str, first: Ipv4Addr) -> (SocketAddr, Arc<Mutex<Ipv4Addr>>) {
    let socket = UdpSocket::bind(bind).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let answer = Arc::new(Mutex::new(first));
    let current = answer.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let (id, op) = (query.metadata.id, query.metadata.op_code);
            let mut reply = Message::error_msg(id, op, ResponseCode::NoError);
            reply.metadata.recursion_desired = query.metadata.recursion_desired;
            reply.metadata.recursion_available = true;
            reply.add_queries(query.queries.clone());
            for q in &query.queries {
                let ours = q.name().to_ascii().trim_end_matches('.') == HOST;
                if ours && q.query_type() == RecordType::A {
                    let ip = *current.lock().unwrap();
                    reply.add_answer(Record::from_rdata(q.name().clone(), 1, RData::A(A(ip))));
                }
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
        }
    });
    (addr, answer)
}

async fn echo_on(listen: SocketAddr, version: &str) -> mesh_echo::EchoServer {
    let config = mesh_echo::EchoConfig {
        version: version.to_owned(),
        listen,
        ..mesh_echo::EchoConfig::default()
    };
    mesh_echo::start(config).await.unwrap()
}

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
    let (dns, answer) = dns_server("127.0.22.53:0", Ipv4Addr::new(127, 0, 22, 1)).await;
    let pilot = Pilot::start(&[("api.yaml", &config(port))]);
    let dns = dns.to_string();
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
            &dns,
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

    *answer.lock().unwrap() = Ipv4Addr::new(127, 0, 22, 2);
    wait_for("the changed answer followed", || async {
        (version_via(outbound, HOST).await == "second").then_some(())
    })
    .await;
    for _ in 0..10 {
        assert_eq!(version_via(outbound, HOST).await, "second");
    }
}
