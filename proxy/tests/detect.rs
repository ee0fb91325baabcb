//! AUTO listeners through the real proxy binary: HTTP/1.1 and h2c are routed, anything else
//! is forwarded as TCP, and server-first protocols get their greeting without the client
//! sending a byte.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::StatusCode;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// An HTTP echo (`web`) and a TCP echo (`db`, greeting with `banner` if any).
struct Upstreams {
    web: mesh_echo::EchoServer,
    db: mesh_echo::EchoServer,
}

async fn upstreams(banner: Option<&str>) -> Upstreams {
    let db = mesh_echo::start(mesh_echo::EchoConfig {
        protocol: mesh_echo::Protocol::Tcp,
        banner: banner.map(str::to_owned),
        ..mesh_echo::EchoConfig::default()
    })
    .await
    .unwrap();
    Upstreams {
        web: echo("web-v1").await,
        db,
    }
}

/// A snapshot with one AUTO listener `auto` at `address`: HTTP to `web`, the rest to `db`;
/// `extra` adds listener fields (YAML flow mapping entries).
fn snapshot(up: &Upstreams, address: &str, extra: &str) -> String {
    format!(
        r#"version: "1"
listeners:
- {{name: auto, address: "{address}", protocol: AUTO, routeConfig: web, tcpRoute: [{{destination: {{host: db}}}}] {extra}}}
routeConfigs:
- name: web
  virtualHosts:
  - name: web
    domains: ["*"]
    routes: [{{name: all, route: [{{destination: {{host: web}}}}]}}]
clusters:
- {{host: web, port: 80, endpoints: [{{address: "{web}"}}]}}
- {{host: db, port: 5432, endpoints: [{{address: "{db}"}}]}}
"#,
        web = up.web.addr(),
        db = up.db.addr(),
    )
}

async fn connect(addr: SocketAddr) -> TcpStream {
    tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect")
}

async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    stream.write_all(bytes).await.unwrap();
    let mut back = vec![0; bytes.len()];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut back))
        .await
        .expect("echo timed out")
        .unwrap();
    back
}

async fn read_line(stream: &mut TcpStream) -> String {
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, BufReader::new(stream).read_line(&mut line))
        .await
        .expect("no line in time")
        .unwrap();
    line.trim_end().to_owned()
}

/// A port free a moment ago on 127.0.11.1, for a listener whose port must be known in
/// advance. Not on 127.0.0.1, where another test's connection could take it as its source
/// port before the proxy binds it.
fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.11.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

#[tokio::test]
async fn http1_h2c_and_raw_bytes_on_one_port_each_reach_their_upstream() {
    let up = upstreams(None).await;
    let proxy = Proxy::start(&snapshot(&up, "127.0.0.1:0", ""));
    let addr = proxy.listener("auto").await;
    let client = client();
    for round in 0..10 {
        let (status, headers, _) = send(&client, addr, "GET", "/", &[("host", "web")]).await;
        assert_eq!(
            (status, version(&headers).as_str()),
            (StatusCode::OK, "web-v1")
        );

        let (status, headers) = send_h2(addr).await;
        assert_eq!(
            (status, version(&headers).as_str()),
            (StatusCode::OK, "web-v1")
        );

        let mut raw = connect(addr).await;
        let bytes = format!("\x00\x01opaque {round}\r\n");
        assert_eq!(
            round_trip(&mut raw, bytes.as_bytes()).await,
            bytes.as_bytes()
        );
    }
    assert_eq!(
        up.web.stats().requests(),
        20,
        "10 HTTP/1.1 and 10 h2c requests"
    );
    assert_eq!(up.db.stats().connections(), 10, "10 raw connections");
    assert_eq!(
        metric_value(
            &proxy,
            "mesh_requests_total",
            &[("destination_service", "web")]
        )
        .await,
        20.0,
        "detected HTTP is routed and counted as HTTP"
    );
}

#[tokio::test]
async fn text_that_only_starts_like_http_and_tls_hellos_are_forwarded_as_tcp() {
    let up = upstreams(None).await;
    let proxy = Proxy::start(&snapshot(&up, "127.0.0.1:0", ""));
    let addr = proxy.listener("auto").await;
    let client_hello = [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03];
    for bytes in [&b"GET key\r\n"[..], b"PING\r\n", &client_hello] {
        let mut stream = connect(addr).await;
        assert_eq!(round_trip(&mut stream, bytes).await, bytes);
    }
    assert_eq!(up.web.stats().requests(), 0);
    assert_eq!(up.db.stats().connections(), 3);
}

#[tokio::test]
async fn a_silent_client_gets_the_server_first_greeting_after_the_detect_timeout() {
    let up = upstreams(Some("220 db ready")).await;
    let proxy = Proxy::start(&snapshot(&up, "127.0.0.1:0", ", detectTimeout: 300ms"));
    let addr = proxy.listener("auto").await;
    let started = Instant::now();
    let mut stream = connect(addr).await;
    assert_eq!(read_line(&mut stream).await, "220 db ready");
    let waited = started.elapsed();
    println!("greeting after {waited:?} (detectTimeout 300ms)");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert_eq!(round_trip(&mut stream, b"QUIT\r\n").await, b"QUIT\r\n");
}

#[tokio::test]
async fn a_server_first_port_is_forwarded_without_waiting_to_sniff() {
    let up = upstreams(Some("220 db ready")).await;
    let port = free_port();
    // Sniffing would hold the greeting for 10s; not sniffing delivers it at once.
    let extra = format!(", serverFirstPorts: [{port}], detectTimeout: 10s");
    let proxy = Proxy::start(&snapshot(&up, &format!("127.0.11.1:{port}"), &extra));
    let addr = proxy.listener("auto").await;
    let started = Instant::now();
    let mut stream = connect(addr).await;
    assert_eq!(read_line(&mut stream).await, "220 db ready");
    let waited = started.elapsed();
    println!("greeting on a server-first port after {waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn an_app_protocol_hint_settles_the_protocol_without_sniffing() {
    let up = upstreams(Some("mysql greeting")).await;
    let extra = ", appProtocol: mysql, detectTimeout: 10s";
    let proxy = Proxy::start(&snapshot(&up, "127.0.0.1:0", extra));
    let listeners = proxy.admin_json("/listeners").await;
    assert_eq!(listeners[0]["protocol"], "TCP", "{listeners}");
    let started = Instant::now();
    let mut stream = connect(proxy.listener("auto").await).await;
    assert_eq!(read_line(&mut stream).await, "mysql greeting");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// One h2c (prior knowledge) GET; the status and headers.
async fn send_h2(addr: SocketAddr) -> (StatusCode, http::HeaderMap) {
    let stream = connect(addr).await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let request = http::Request::get("http://web/")
        .body(http_body_util::Full::<bytes::Bytes>::default())
        .unwrap();
    let response = tokio::time::timeout(DEADLINE, sender.send_request(request))
        .await
        .expect("h2 request timed out")
        .unwrap();
    (response.status(), response.headers().clone())
}
