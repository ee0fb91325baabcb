//! What the server answers over HTTP/1.1 and h2c, and what it counts.

mod support;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::Full;
use mesh_echo::EchoConfig;
use support::{get, h1_client, h2_client, send, server, server_with};

#[tokio::test]
async fn echoes_the_request_as_json() {
    let server = server_with(EchoConfig {
        name: "reviews".into(),
        version: "v2".into(),
        hostname: "pod-a".into(),
        ..EchoConfig::default()
    })
    .await;
    let request = Request::post(server.url("/api/items?id=7"))
        .header("x-request-id", "abc")
        .body(Full::new(Bytes::from_static(b"hello")))
        .expect("request");
    let answer = send(&h1_client(), request).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("x-echo-version"), "v2");
    assert_eq!(answer.header("x-echo-name"), "reviews");
    assert_eq!(answer.header("content-type"), "application/json");
    let reply = answer.reply();
    assert_eq!(reply.service, "reviews");
    assert_eq!(reply.version, "v2");
    assert_eq!(reply.hostname, "pod-a");
    assert_eq!(reply.method, "POST");
    assert_eq!(reply.path, "/api/items");
    assert_eq!(reply.query.as_deref(), Some("id=7"));
    assert_eq!(reply.authority, Some(server.addr().to_string()));
    assert_eq!(reply.headers["x-request-id"], "abc");
    assert_eq!(reply.body_bytes, 5);
}

#[tokio::test]
async fn serves_http1_and_h2c_on_one_port() {
    let server = server().await;
    let h1 = get(&h1_client(), &server.url("/"), &[]).await;
    assert_eq!((h1.status, h1.version), (StatusCode::OK, Version::HTTP_11));
    assert_eq!(h1.reply().protocol, "HTTP/1.1");

    let h2 = get(&h2_client(), &server.url("/"), &[]).await;
    assert_eq!((h2.status, h2.version), (StatusCode::OK, Version::HTTP_2));
    let reply = h2.reply();
    assert_eq!(reply.protocol, "HTTP/2.0");
    assert_eq!(reply.authority, Some(server.addr().to_string()));
    assert_eq!(server.stats().connections(), 2);
}

#[tokio::test]
async fn counts_requests_per_path_and_reuses_connections() {
    let server = server().await;
    let stats = server.stats();
    let h1 = h1_client();
    for path in ["/a", "/a", "/b?q=1"] {
        get(&h1, &server.url(path), &[]).await;
    }
    assert_eq!(stats.requests(), 3);
    assert_eq!(stats.path_requests("/a"), 2);
    assert_eq!(stats.path_requests("/b"), 1);
    assert_eq!(stats.path_requests("/never"), 0);
    assert_eq!(
        stats.connections(),
        1,
        "HTTP/1.1 keep-alive reuses the connection"
    );
    assert_eq!(stats.open_connections(), 1);

    let h2 = h2_client();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (client, url) = (h2.clone(), server.url("/c"));
        requests.spawn(async move { get(&client, &url, &[]).await.status });
    }
    let statuses = requests.join_all().await;
    assert_eq!(statuses, [StatusCode::OK; 5]);
    assert_eq!(stats.path_requests("/c"), 5);
    assert_eq!(
        stats.connections(),
        2,
        "HTTP/2 multiplexes on one connection"
    );
}

#[tokio::test]
async fn healthz_and_status_paths() {
    let server = server().await;
    let client = h1_client();
    let health = get(&client, &server.url("/healthz"), &[]).await;
    assert_eq!(
        (health.status, &health.body[..]),
        (StatusCode::OK, &b"ok"[..])
    );

    let teapot = get(&client, &server.url("/status/418"), &[]).await;
    assert_eq!(teapot.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(teapot.reply().path, "/status/418");

    let empty = get(&client, &server.url("/status/204"), &[]).await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT);
    assert!(empty.body.is_empty());

    for bad in ["/status/abc", "/status/101", "/status/"] {
        let answer = get(&client, &server.url(bad), &[]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn bad_knobs_are_answered_400_with_the_reason() {
    let server = server().await;
    let client = h1_client();
    let cases = [
        ("x-echo-status", "99"),
        ("x-echo-delay", "200"),
        ("x-echo-fail-percent", "150"),
        ("x-echo-body-size", "-1"),
        ("x-echo-close", "perhaps"),
    ];
    for (header, value) in cases {
        let answer = get(&client, &server.url("/"), &[(header, value)]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{header}: {value}");
        let message = String::from_utf8_lossy(&answer.body);
        assert!(message.contains(header), "{message}");
        assert_eq!(answer.header("x-echo-version"), "v1");
    }
    assert_eq!(server.stats().requests(), cases.len() as u64);
}
