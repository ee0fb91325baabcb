//! Opaque TCP through the real proxy binary: echo, half-close, weighted splits, fail-over,
//! server-first protocols, idle timeout, drain and Istio's TCP metrics.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::StatusCode;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const DB: &str = "db.default.svc.cluster.local";

/// A TCP echo upstream; with a banner it greets first, which also tells a test which
/// upstream a connection reached.
async fn tcp_echo(banner: Option<&str>) -> mesh_echo::EchoServer {
    mesh_echo::start(mesh_echo::EchoConfig {
        protocol: mesh_echo::Protocol::Tcp,
        banner: banner.map(str::to_owned),
        ..mesh_echo::EchoConfig::default()
    })
    .await
    .unwrap()
}

/// A snapshot with one TCP listener `db` whose `tcpRoute` is `routes` (YAML flow list) to
/// the `db` cluster with `endpoints` (address, version label) and `policy`.
fn snapshot(routes: &str, endpoints: &[(SocketAddr, &str)], policy: &str) -> String {
    let endpoints: Vec<String> = endpoints
        .iter()
        .map(|(a, v)| format!("{{address: \"{a}\", labels: {{version: {v}}}}}"))
        .collect();
    format!(
        r#"version: "1"
listeners:
- {{name: db, address: "127.0.0.1:0", protocol: TCP, tcpRoute: {routes}}}
clusters:
- host: {DB}
  port: 5432
  endpoints: [{endpoints}]
  trafficPolicy: {policy}
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
"#,
        endpoints = endpoints.join(", ")
    )
}

fn to_db() -> String {
    format!("[{{destination: {{host: {DB}}}}}]")
}

async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// A port that refuses connections for as long as the socket lives: bound (so no other
/// test takes it) but not listening.
fn refusing_port() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket
}

/// Reads one `\r\n`-terminated line, without the terminator.
async fn read_line(stream: &mut TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, reader.read_line(&mut line))
        .await
        .expect("no line in time")
        .unwrap();
    assert!(
        reader.buffer().is_empty(),
        "more than a line arrived: {line:?}"
    );
    line.trim_end().to_owned()
}

/// Writes `bytes` and reads as many back.
async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    stream.write_all(bytes).await.unwrap();
    let mut back = vec![0; bytes.len()];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut back))
        .await
        .expect("echo timed out")
        .unwrap();
    back
}

/// Reads until the proxy closes the connection; the bytes read.
async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest))
        .await
        .expect("the connection was never closed")
        .unwrap();
    rest
}

/// Waits until `metric` with `labels` reaches `value` (connections are counted closed a
/// moment after the client sees the close).
async fn wait_metric(proxy: &Proxy, metric: &str, labels: &[(&str, &str)], value: f64) {
    let start = Instant::now();
    loop {
        let now = metric_value(proxy, metric, labels).await;
        if now == value {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{metric} {labels:?} is {now}, not {value}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn bytes_are_echoed_through_the_proxy_with_a_1mb_round_trip_and_half_close() {
    let upstream = tcp_echo(None).await;
    let proxy = Proxy::start(&snapshot(&to_db(), &[(upstream.addr(), "v1")], "{}"));
    let addr = proxy.listener("db").await;
    let mut stream = connect(addr).await;
    assert_eq!(round_trip(&mut stream, b"hello").await, b"hello");

    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let (mut reader, mut writer) = stream.into_split();
    let sent = payload.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(&sent).await.unwrap();
        // Half-close: the echo finishes, half-closes back, and the proxy passes both on.
        writer.shutdown().await.unwrap();
        writer
    });
    let mut back = Vec::new();
    tokio::time::timeout(DEADLINE, reader.read_to_end(&mut back))
        .await
        .expect("the half-close never came back")
        .unwrap();
    let _writer = writing.await.unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back == payload, "the 1 MiB came back altered");
    assert!(
        upstream
            .stats()
            .wait_until(DEADLINE, |s| s.open_connections() == 0)
            .await,
        "the upstream connection stayed open"
    );
}

#[tokio::test]
async fn an_80_20_split_holds_over_1000_connections() {
    let (v1, v2) = (tcp_echo(Some("v1")).await, tcp_echo(Some("v2")).await);
    let routes = format!(
        "[{{destination: {{host: {DB}, subset: v1}}, weight: 80}}, {{destination: {{host: {DB}, subset: v2}}, weight: 20}}]"
    );
    let endpoints = [(v1.addr(), "v1"), (v2.addr(), "v2")];
    let proxy = Proxy::start(&snapshot(&routes, &endpoints, "{}"));
    let addr = proxy.listener("db").await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..1000 {
        let mut stream = connect(addr).await;
        *counts.entry(read_line(&mut stream).await).or_default() += 1;
    }
    let v2_share = counts.get("v2").copied().unwrap_or(0) as f64 / 10.0;
    println!("80/20 TCP split over 1000 connections: {counts:?} -> v2 {v2_share:.1}%");
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!((v2_share - 20.0).abs() <= 4.0, "v2 got {v2_share}%");
}

#[tokio::test]
async fn a_source_ip_hash_keeps_a_client_on_one_endpoint() {
    let servers = [
        tcp_echo(Some("a")).await,
        tcp_echo(Some("b")).await,
        tcp_echo(Some("c")).await,
    ];
    let endpoints = servers.each_ref().map(|s| (s.addr(), "v1"));
    let policy = "{loadBalancer: {consistentHash: {useSourceIp: true}}}";
    let proxy = Proxy::start(&snapshot(&to_db(), &endpoints, policy));
    let addr = proxy.listener("db").await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let mut stream = connect(addr).await;
        seen.insert(read_line(&mut stream).await);
    }
    // Without a key the balancer would pick at random and spread 30 connections over all 3.
    assert_eq!(seen.len(), 1, "one source address moved: {seen:?}");
}

#[tokio::test]
async fn a_refused_endpoint_falls_over_to_the_next_one() {
    let live = tcp_echo(Some("live")).await;
    let dead = refusing_port();
    let endpoints = [(dead.local_addr().unwrap(), "v1"), (live.addr(), "v1")];
    let policy =
        "{loadBalancer: {simple: ROUND_ROBIN}, connectionPool: {tcp: {connectTimeout: 1s}}}";
    let proxy = Proxy::start(&snapshot(&to_db(), &endpoints, policy));
    let addr = proxy.listener("db").await;
    for _ in 0..20 {
        let mut stream = connect(addr).await;
        assert_eq!(read_line(&mut stream).await, "live");
        assert_eq!(round_trip(&mut stream, b"ping").await, b"ping");
    }
    assert_eq!(live.stats().connections(), 20);
    let failed = [("destination_service", DB), ("response_flags", "UF")];
    assert_eq!(
        metric_value(&proxy, "mesh_tcp_connections_opened_total", &failed).await,
        0.0,
        "no connection failed"
    );
}

#[tokio::test]
async fn when_every_endpoint_refuses_the_client_is_closed_and_counted_uf() {
    let dead = [refusing_port(), refusing_port()];
    let endpoints = dead.each_ref().map(|d| (d.local_addr().unwrap(), "v1"));
    let proxy = Proxy::start(&snapshot(&to_db(), &endpoints, "{}"));
    let addr = proxy.listener("db").await;
    let mut stream = connect(addr).await;
    assert!(read_to_end(&mut stream).await.is_empty());
    let failed = [
        ("destination_service", DB),
        ("response_flags", "UF"),
        ("request_protocol", "tcp"),
    ];
    wait_metric(&proxy, "mesh_tcp_connections_closed_total", &failed, 1.0).await;
    assert_eq!(
        metric_value(&proxy, "mesh_tcp_connections_opened_total", &failed).await,
        1.0
    );
}

#[tokio::test]
async fn a_server_first_banner_arrives_without_the_client_sending_anything() {
    let upstream = tcp_echo(Some("220 db ready")).await;
    let proxy = Proxy::start(&snapshot(&to_db(), &[(upstream.addr(), "v1")], "{}"));
    let mut stream = connect(proxy.listener("db").await).await;
    assert_eq!(read_line(&mut stream).await, "220 db ready");
    assert_eq!(round_trip(&mut stream, b"QUIT\r\n").await, b"QUIT\r\n");
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let upstream = tcp_echo(None).await;
    let policy = "{connectionPool: {tcp: {idleTimeout: 300ms}}}";
    let proxy = Proxy::start(&snapshot(&to_db(), &[(upstream.addr(), "v1")], policy));
    let mut stream = connect(proxy.listener("db").await).await;
    // The proxy last saw bytes after this instant, so the timeout runs from later still.
    let quiet_from = Instant::now();
    assert_eq!(round_trip(&mut stream, b"still here").await, b"still here");
    assert!(read_to_end(&mut stream).await.is_empty());
    let idle = quiet_from.elapsed();
    println!("closed after {idle:?} idle (idleTimeout 300ms)");
    assert!(idle >= Duration::from_millis(300), "closed early: {idle:?}");
    assert!(
        upstream
            .stats()
            .wait_until(DEADLINE, |s| s.open_connections() == 0)
            .await,
        "the upstream side was closed too"
    );
}

#[tokio::test]
async fn tcp_connections_and_bytes_are_counted_with_istio_labels() {
    let upstream = tcp_echo(Some("hi")).await;
    let proxy = Proxy::start(&snapshot(&to_db(), &[(upstream.addr(), "v1")], "{}"));
    let addr = proxy.listener("db").await;
    for _ in 0..5 {
        let mut stream = connect(addr).await;
        assert_eq!(read_line(&mut stream).await, "hi");
        assert_eq!(round_trip(&mut stream, &[7; 1000]).await, [7; 1000]);
        stream.shutdown().await.unwrap();
        assert!(read_to_end(&mut stream).await.is_empty());
    }
    let labels = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("destination_service", DB),
        ("destination_service_name", "db"),
        ("destination_service_namespace", "default"),
        ("destination_version", "unknown"),
        ("request_protocol", "tcp"),
        ("response_flags", "-"),
        ("connection_security_policy", "unknown"),
    ];
    wait_metric(&proxy, "mesh_tcp_connections_closed_total", &labels, 5.0).await;
    let value = async |metric| metric_value(&proxy, metric, &labels).await;
    assert_eq!(value("mesh_tcp_connections_opened_total").await, 5.0);
    assert_eq!(value("mesh_tcp_received_bytes_total").await, 5.0 * 1000.0);
    assert_eq!(
        value("mesh_tcp_sent_bytes_total").await,
        5.0 * (1000.0 + "hi\r\n".len() as f64),
        "the banner and the echo"
    );
}

#[tokio::test]
async fn open_tcp_connections_hold_the_drain_until_they_close() {
    let upstream = tcp_echo(None).await;
    let mut proxy = Proxy::start(&snapshot(&to_db(), &[(upstream.addr(), "v1")], "{}"));
    let (addr, health) = (proxy.listener("db").await, proxy.health);
    let mut stream = connect(addr).await;
    assert_eq!(round_trip(&mut stream, b"before").await, b"before");

    let mut exit = tokio::task::spawn_blocking(move || proxy.terminate());
    tokio::select! {
        () = wait_draining(health) => {}
        status = &mut exit => panic!("the proxy exited instead of draining: {status:?}"),
    }
    assert_eq!(
        round_trip(&mut stream, b"while draining").await,
        b"while draining",
        "an open connection is not cut by the drain"
    );
    let refused = match TcpStream::connect(addr).await {
        Err(_) => true,
        Ok(mut late) => read_to_end(&mut late).await.is_empty(),
    };
    assert!(refused, "a new connection was forwarded while draining");

    let closed_at = Instant::now();
    drop(stream);
    let status = tokio::time::timeout(DEADLINE, exit)
        .await
        .expect("the proxy did not exit")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let waited = closed_at.elapsed();
    println!("exited {waited:?} after the last TCP connection closed");
    assert!(
        waited < Duration::from_secs(4),
        "the drain waited for its deadline (5s) instead of the connection: {waited:?}"
    );
}

/// Waits until the health port answers 503, which it does from the start of the drain.
async fn wait_draining(health: SocketAddr) {
    let start = Instant::now();
    loop {
        let request = http::Request::get(format!("http://{health}/healthz/ready"))
            .body(http_body_util::Full::<bytes::Bytes>::default())
            .unwrap();
        if let Ok(response) = client().request(request).await
            && response.status() == StatusCode::SERVICE_UNAVAILABLE
        {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the proxy never started draining"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn max_connections_refuses_the_extra_connection_with_uo() {
    let upstream = tcp_echo(None).await;
    let policy = "{connectionPool: {tcp: {maxConnections: 1}}}";
    let proxy = Proxy::start(&snapshot(&to_db(), &[(upstream.addr(), "v1")], policy));
    let addr = proxy.listener("db").await;
    let mut first = connect(addr).await;
    assert_eq!(
        round_trip(&mut first, b"one").await,
        b"one",
        "the first connection is forwarded"
    );
    let mut second = connect(addr).await;
    assert!(
        read_to_end(&mut second).await.is_empty(),
        "the second is closed at once"
    );
    let overflow = [("destination_service", DB), ("response_flags", "UO")];
    wait_metric(&proxy, "mesh_tcp_connections_closed_total", &overflow, 1.0).await;
    drop(first);
    // The slot frees when the proxy has closed both sides: wait on its own counter.
    let start = Instant::now();
    while proxy.admin_json("/clusters").await[0]["circuitBreakers"]["activeRequests"] != 0 {
        assert!(start.elapsed() < DEADLINE, "the slot was never freed");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut third = connect(addr).await;
    assert_eq!(
        round_trip(&mut third, b"three").await,
        b"three",
        "the slot is free again"
    );
}

#[tokio::test]
async fn an_endpoint_refusing_connections_is_ejected() {
    let live = tcp_echo(Some("live")).await;
    let dead = refusing_port();
    let endpoints = [(dead.local_addr().unwrap(), "v1"), (live.addr(), "v1")];
    let policy = "{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutiveGatewayErrors: 2, maxEjectionPercent: 100}}";
    let proxy = Proxy::start(&snapshot(&to_db(), &endpoints, policy));
    let addr = proxy.listener("db").await;
    for _ in 0..10 {
        let mut stream = connect(addr).await;
        assert_eq!(
            read_line(&mut stream).await,
            "live",
            "every connection lands on the live endpoint"
        );
    }
    let clusters = proxy.admin_json("/clusters").await;
    let dead_view = clusters[0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == dead.local_addr().unwrap().to_string())
        .unwrap()
        .clone();
    assert_eq!(dead_view["health"], "ejected", "{dead_view}");
}
