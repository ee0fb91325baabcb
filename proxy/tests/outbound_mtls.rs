//! Outbound mTLS with the real binary: a client proxy originates mTLS to a server proxy's
//! STRICT inbound listener, verifying the server's SPIFFE ID; DestinationRule DISABLE and
//! endpoints without Istio's sidecar label get plaintext.

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
#[path = "outbound_mtls/harness.rs"]
mod outbound;

use http::StatusCode;
use mesh_echo::EchoReply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use harness::{eventually, http_snapshot, tcp_snapshot};
use outbound::{CLIENT, Citadel, SERVER, Upstream, client_snapshot, client_tcp_snapshot};
use support::{DEADLINE, echo, get, metric_value};

const SIDECAR: &str = ", labels: {security.istio.io/tlsMode: istio}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_proxy_originates_mtls_to_a_strict_peer_and_plaintext_where_istio_would() {
    let citadel = Citadel::start().await;
    let app = echo("server").await;
    let server = citadel
        .proxy("server", &http_snapshot("STRICT", app.addr(), ""))
        .await;
    let peer = server.listener("in").await;
    let outside = echo("outside").await;
    let with_identity = format!("{SIDECAR}, identity: \"{SERVER}\"");
    let wrong_identity =
        format!("{SIDECAR}, identity: \"spiffe://cluster.local/ns/shop/sa/impostor\"");
    let snapshot = client_snapshot(&[
        Upstream {
            host: "mtls",
            endpoint: peer,
            endpoint_extra: &with_identity,
            policy: "",
        },
        Upstream {
            host: "wrong",
            endpoint: peer,
            endpoint_extra: &wrong_identity,
            policy: "",
        },
        Upstream {
            host: "disabled",
            endpoint: peer,
            endpoint_extra: &with_identity,
            policy: "  trafficPolicy: {tls: {mode: DISABLE}}\n",
        },
        Upstream {
            host: "unknown",
            endpoint: peer,
            endpoint_extra: SIDECAR,
            policy: "  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n",
        },
        Upstream {
            host: "simple",
            endpoint: peer,
            endpoint_extra: &with_identity,
            policy: "  trafficPolicy: {tls: {mode: SIMPLE}}\n",
        },
        Upstream {
            host: "plain",
            endpoint: outside.addr(),
            endpoint_extra: "",
            policy: "",
        },
    ]);
    let client = citadel.proxy("client", &snapshot).await;
    let out = client.listener("out").await;

    // Through STRICT, which refuses plaintext: the app sees the client proxy's identity.
    let (status, _, body) = get(out, "/hello", &[("host", "mtls")]).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let reply: EchoReply = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        reply
            .headers
            .get("x-forwarded-client-cert")
            .map(String::as_str),
        Some(format!("By={SERVER};URI={CLIENT}").as_str())
    );
    assert_eq!(app.stats().requests(), 1);
    let mtls = [
        ("connection_security_policy", "mutual_tls"),
        ("destination_service", "mtls"),
    ];
    eventually("the outbound request is counted as mTLS", || async {
        metric_value(&client, "mesh_requests_total", &mtls).await == 1.0
    })
    .await;

    // HTTP/2 from the client stays HTTP/2 over mTLS (ALPN h2).
    let (status, body) = h2_get(out, "mtls").await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let reply: EchoReply = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply.protocol, "HTTP/2.0", "{reply:?}");
    assert!(reply.headers.contains_key("x-forwarded-client-cert"));
    assert_eq!(app.stats().requests(), 2);

    // The server proves another identity than the endpoint's: UF, nothing reaches it.
    let (status, headers, _) = get(out, "/", &[("host", "wrong")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["x-mesh-response-flags"], "UF");
    assert_eq!(app.stats().requests(), 2, "the server never saw it");

    // DISABLE sends plaintext even to a sidecar, and STRICT refuses it.
    let (status, _, _) = get(out, "/", &[("host", "disabled")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.stats().requests(), 2, "plaintext never reached the app");
    let refused = [("listener", "in")];
    eventually("the server refused plaintext", || async {
        metric_value(&server, "mesh_inbound_plaintext_refused_total", &refused).await >= 1.0
    })
    .await;

    // ISTIO_MUTUAL with no identity to verify, and SIMPLE (not supported yet): the
    // snapshot is accepted, but those endpoints are refused, never sent plaintext.
    for host in ["unknown", "simple"] {
        let (status, headers, _) = get(out, "/", &[("host", host)]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{host}");
        assert_eq!(headers["x-mesh-response-flags"], "UF", "{host}");
    }
    assert_eq!(app.stats().requests(), 2);

    // No sidecar label: auto-mTLS stays plaintext, and a plain app answers.
    let (status, _, body) = get(out, "/", &[("host", "plain")]).await;
    assert_eq!(status, StatusCode::OK);
    let reply: EchoReply = serde_json::from_slice(&body).unwrap();
    assert!(!reply.headers.contains_key("x-forwarded-client-cert"));
    assert_eq!(outside.stats().requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_addr_an_mtls_endpoint_fails_with_uf() {
    let app = echo("server").await;
    let endpoint = format!("{SIDECAR}, identity: \"{SERVER}\"");
    let snapshot = client_snapshot(&[Upstream {
        host: "mtls",
        endpoint: app.addr(),
        endpoint_extra: &endpoint,
        policy: "",
    }]);
    let client = support::Proxy::start(&snapshot);
    let out = client.listener("out").await;
    let (status, headers, _) = get(out, "/", &[("host", "mtls")]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["x-mesh-response-flags"], "UF");
    assert_eq!(app.stats().requests(), 0, "no plaintext fallback");
}

const ALLOW_CLIENT: &str = r#"authorizationPolicies:
- name: shop/allow-client
  spec:
    action: ALLOW
    rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/client]}}]}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connects_to_a_sidecar_are_mtls_as_the_client_proxy() {
    let citadel = Citadel::start().await;
    let app = mesh_echo::start(mesh_echo::EchoConfig {
        protocol: mesh_echo::Protocol::Tcp,
        ..mesh_echo::EchoConfig::default()
    })
    .await
    .unwrap();
    let server = citadel
        .proxy("server", &tcp_snapshot("STRICT", app.addr(), ALLOW_CLIENT))
        .await;
    let peer = server.listener("in").await;
    let endpoint = format!("{SIDECAR}, identity: \"{SERVER}\"");
    let client = citadel
        .proxy("client", &client_tcp_snapshot(peer, &endpoint))
        .await;
    let out = client.listener("out").await;

    let mut tcp = TcpStream::connect(out).await.unwrap();
    tcp.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(DEADLINE, tcp.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &echoed, b"ping",
        "STRICT and ALLOW only for the client's principal"
    );
    assert_eq!(app.stats().connections(), 1);
}

/// One HTTP/2 (prior knowledge) GET to `addr` with `:authority` `host`.
async fn h2_get(addr: std::net::SocketAddr, host: &str) -> (StatusCode, bytes::Bytes) {
    use http_body_util::BodyExt;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("http://{host}/h2"))
        .body(http_body_util::Full::<bytes::Bytes>::default())
        .unwrap();
    let response = tokio::time::timeout(DEADLINE, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}
