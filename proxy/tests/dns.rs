//! DNS clusters through the real proxy binary: a `resolution: DNS` ServiceEntry's name is
//! resolved by the proxy against a DNS server of the test's own (real UDP on loopback),
//! re-resolved as its TTL runs out, and a failed lookup keeps the last good addresses.

#![allow(clippy::unwrap_used)]

#[path = "dns/server.rs"]
mod server;
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::StatusCode;
use server::{DnsServer, HOST, echo_on};
use support::*;

fn snapshot(port: u16, lookup: &str) -> String {
    format!(
        r#"version: "1"
listeners:
- {{name: outbound, address: "127.0.0.1:0", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: api
    domains: [{HOST}]
    routes: [{{route: [{{destination: {{host: {HOST}, port: {{number: 80}}}}}}]}}]
clusters:
- host: {HOST}
  port: 80
  dns:
    lookup: {lookup}
    endpoints: [{{hostname: {HOST}, port: {port}}}]
"#
    )
}

/// The version that answers a GET for [`HOST`] through the proxy; empty if none did.
async fn reached(proxy_addr: SocketAddr) -> String {
    let (status, headers, _) = get(proxy_addr, "/", &[("host", HOST)]).await;
    if status != StatusCode::OK {
        return String::new();
    }
    version(&headers)
}

/// Polls until a request reaches `want`, within the deadline.
async fn wait_reaches(proxy_addr: SocketAddr, want: &str) -> Duration {
    let start = Instant::now();
    loop {
        if reached(proxy_addr).await == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < DEADLINE, "never reached {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_changed_answer_moves_traffic_without_a_restart_and_a_failure_keeps_the_last() {
    let first = echo_on("127.0.20.1:0".parse().unwrap(), "first").await;
    let port = first.addr().port();
    let second = echo_on(SocketAddr::new([127, 0, 20, 2].into(), port), "second").await;
    let dns = DnsServer::start("127.0.20.53:0", Ipv4Addr::new(127, 0, 20, 1)).await;
    let server = dns.addr.to_string();
    let proxy = Proxy::start_with(&snapshot(port, "STRICT"), &["--dns-server", &server]);
    let addr = proxy.listener("outbound").await;

    let took = wait_reaches(addr, "first").await;
    println!("first answer served after {took:?}");
    let clusters = proxy.admin_json("/clusters").await;
    let cluster = &clusters[0];
    assert_eq!(
        cluster["endpoints"][0]["address"],
        format!("127.0.20.1:{port}")
    );
    assert_eq!(cluster["endpoints"][0]["hostname"], HOST);
    assert_eq!(cluster["dns"]["names"][0]["addresses"][0], "127.0.20.1");

    dns.answer(&[Ipv4Addr::new(127, 0, 20, 2)]);
    let took = wait_reaches(addr, "second").await;
    println!("changed answer served after {took:?} (TTL 1 s)");
    // Every request now goes to the new address.
    for _ in 0..20 {
        assert_eq!(reached(addr).await, "second");
    }

    // The server fails: the proxy counts it and keeps serving the last good address.
    dns.failing.store(true, Ordering::Relaxed);
    let start = Instant::now();
    while metric_value(
        &proxy,
        "mesh_dns_resolutions_total",
        &[("result", "failure")],
    )
    .await
        < 1.0
    {
        assert!(start.elapsed() < DEADLINE, "no failed lookup counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reached(addr).await, "second");
    let clusters = proxy.admin_json("/clusters").await;
    let name = &clusters[0]["dns"]["names"][0];
    assert_eq!(name["addresses"][0], "127.0.20.2");
    assert!(
        name["resolution"]["failures"].as_u64().unwrap() >= 1,
        "{name}"
    );
    assert!(name["resolution"]["lastError"].is_string(), "{name}");
    let ok = metric_value(
        &proxy,
        "mesh_dns_resolutions_total",
        &[("result", "success")],
    )
    .await;
    assert!(ok >= 2.0, "{ok} successful lookups");
    println!(
        "{} queries answered; {ok} successful lookups counted",
        dns.queries.load(Ordering::Relaxed)
    );
    assert!(
        second.stats().requests() >= 21,
        "the 21 requests reached the second echo"
    );
}

#[tokio::test]
async fn strict_balances_over_every_address_and_logical_takes_the_first() {
    let a = echo_on("127.0.21.1:0".parse().unwrap(), "a").await;
    let port = a.addr().port();
    let _b = echo_on(SocketAddr::new([127, 0, 21, 2].into(), port), "b").await;
    let dns = DnsServer::start("127.0.21.53:0", Ipv4Addr::new(127, 0, 21, 1)).await;
    dns.answer(&[Ipv4Addr::new(127, 0, 21, 1), Ipv4Addr::new(127, 0, 21, 2)]);
    let server = dns.addr.to_string();

    let strict = Proxy::start_with(&snapshot(port, "STRICT"), &["--dns-server", &server]);
    let addr = strict.listener("outbound").await;
    wait_reaches(addr, "a").await;
    wait_reaches(addr, "b").await;
    let clusters = strict.admin_json("/clusters").await;
    assert_eq!(clusters[0]["endpoints"].as_array().unwrap().len(), 2);

    let logical = Proxy::start_with(&snapshot(port, "LOGICAL"), &["--dns-server", &server]);
    let addr = logical.listener("outbound").await;
    wait_reaches(addr, "a").await;
    for _ in 0..20 {
        assert_eq!(reached(addr).await, "a");
    }
    let clusters = logical.admin_json("/clusters").await;
    assert_eq!(clusters[0]["endpoints"].as_array().unwrap().len(), 1);
}
