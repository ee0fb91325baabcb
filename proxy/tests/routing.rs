//! Routing, splitting, faults and balancing through the real proxy binary.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use http::StatusCode;
use support::*;

/// A snapshot for `reviews` with subsets v1 and v2 at the given echo servers, `routes`
/// (YAML list items, indented for `routes:`) and the cluster's `trafficPolicy` (YAML).
fn snapshot(
    version: &str,
    v1: &[&mesh_echo::EchoServer],
    v2: &[&mesh_echo::EchoServer],
    routes: &str,
    policy: &str,
) -> String {
    let endpoints: String = v1
        .iter()
        .map(|e| (e, "v1"))
        .chain(v2.iter().map(|e| (e, "v2")))
        .map(|(e, v)| {
            format!(
                "  - {{address: \"{}\", labels: {{version: {v}}}}}\n",
                e.addr()
            )
        })
        .collect();
    format!(
        r#"version: "{version}"
listeners:
- name: outbound
  address: 127.0.0.1:0
  routeConfig: outbound
routeConfigs:
- name: outbound
  virtualHosts:
  - name: reviews
    domains: [reviews, "reviews:9080"]
    routes:
{routes}
clusters:
- host: reviews.default.svc.cluster.local
  port: 9080
  endpoints:
{endpoints}  trafficPolicy: {policy}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"#
    )
}

const REVIEWS: &str = "reviews.default.svc.cluster.local";

fn split(v1: u32, v2: u32) -> String {
    format!(
        "    - name: split\n      route:\n      - destination: {{host: {REVIEWS}, subset: v1}}\n        weight: {v1}\n      - destination: {{host: {REVIEWS}, subset: v2}}\n        weight: {v2}\n"
    )
}

async fn count_versions(
    addr: std::net::SocketAddr,
    requests: usize,
    headers: &[(&str, &str)],
) -> HashMap<String, usize> {
    let client = client();
    let mut counts = HashMap::new();
    let mut with_host = vec![("host", "reviews:9080")];
    with_host.extend_from_slice(headers);
    for _ in 0..requests {
        let (status, headers, _) = send(&client, addr, "GET", "/", &with_host).await;
        assert_eq!(status, StatusCode::OK);
        *counts.entry(version(&headers)).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_90_10_split_lands_within_3_points_over_2000_requests() {
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[&v2], &split(90, 10), "{}"));
    let addr = proxy.listener("outbound").await;
    let counts = count_versions(addr, 2000, &[]).await;
    let v2_share = counts.get("v2").copied().unwrap_or(0) as f64 / 20.0;
    println!("90/10 split over 2000 requests: {counts:?} -> v2 {v2_share:.1}%");
    assert!(
        (v2_share - 10.0).abs() <= 3.0,
        "v2 got {v2_share}% ({counts:?})"
    );
    assert_eq!(
        v1.stats().requests() + v2.stats().requests(),
        2000,
        "every request reached an upstream once"
    );
}

#[tokio::test]
async fn header_match_routes_jason_to_v2_and_others_to_v1() {
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let routes = format!(
        "    - name: jason\n      match: [{{headers: {{end-user: {{exact: jason}}}}}}]\n      route: [{{destination: {{host: {REVIEWS}, subset: v2}}}}]\n    - name: default\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[&v2], &routes, "{}"));
    let addr = proxy.listener("outbound").await;
    assert_eq!(
        count_versions(addr, 20, &[("end-user", "jason")]).await,
        HashMap::from([("v2".into(), 20)])
    );
    assert_eq!(
        count_versions(addr, 20, &[("end-user", "mary")]).await,
        HashMap::from([("v1".into(), 20)])
    );
    let (status, headers, _) = get(addr, "/", &[("host", "ratings")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no virtual host for ratings");
    assert_eq!(headers["x-mesh-response-flags"], "NR");
}

#[tokio::test]
async fn abort_answers_the_status_and_the_upstream_never_sees_the_request() {
    let v1 = echo("v1").await;
    let routes = format!(
        "    - name: broken\n      fault: {{abort: {{httpStatus: 503, percentage: {{value: 100}}}}}}\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[], &routes, "{}"));
    let addr = proxy.listener("outbound").await;
    for _ in 0..20 {
        let (status, headers, _) = get(addr, "/", &[("host", "reviews")]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["x-mesh-response-flags"], "FI");
    }
    assert_eq!(
        v1.stats().requests(),
        0,
        "an aborted request must not reach the upstream"
    );
}

#[tokio::test]
async fn delay_holds_the_request_for_the_fixed_delay() {
    let v1 = echo("v1").await;
    let routes = format!(
        "    - name: slow\n      fault: {{delay: {{fixedDelay: 300ms, percentage: {{value: 100}}}}}}\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[], &routes, "{}"));
    let addr = proxy.listener("outbound").await;
    let started = std::time::Instant::now();
    let (status, _, _) = get(addr, "/", &[("host", "reviews")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retries_turn_an_upstream_failing_half_the_time_into_full_success() {
    let v1 = echo("v1").await;
    let routes = format!(
        "    - name: flaky\n      retries: {{attempts: 3, retryOn: 5xx}}\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[], &routes, "{}"));
    let addr = proxy.listener("outbound").await;
    let client = client();
    let mut ok = 0;
    for _ in 0..200 {
        let (status, _, _) = send(
            &client,
            addr,
            "GET",
            "/",
            &[("host", "reviews"), ("x-echo-fail-percent", "50")],
        )
        .await;
        ok += usize::from(status == StatusCode::OK);
    }
    println!(
        "with retries: {ok}/200 succeeded; upstream saw {} requests",
        v1.stats().requests()
    );
    assert!(ok >= 198, "only {ok}/200 succeeded");
    assert!(
        v1.stats().requests() > 250,
        "retries happened: {}",
        v1.stats().requests()
    );
}

#[tokio::test]
async fn without_retries_the_failures_show() {
    let v1 = echo("v1").await;
    let routes = format!(
        "    - name: flaky\n      retries: {{attempts: 0}}\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[], &routes, "{}"));
    let addr = proxy.listener("outbound").await;
    let client = client();
    let mut failed = 0;
    for _ in 0..100 {
        let (status, _, _) = send(
            &client,
            addr,
            "GET",
            "/",
            &[("host", "reviews"), ("x-echo-fail-percent", "50")],
        )
        .await;
        failed += usize::from(status == StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(failed, 50, "the control: half fail when nothing retries");
}

#[tokio::test]
async fn route_timeout_answers_504_with_the_flag() {
    let v1 = echo("v1").await;
    let routes = format!(
        "    - name: bounded\n      timeout: 100ms\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[], &routes, "{}"));
    let addr = proxy.listener("outbound").await;
    let (status, headers, _) = get(addr, "/", &[("host", "reviews"), ("x-echo-delay", "2s")]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["x-mesh-response-flags"], "UT");
}

#[tokio::test]
async fn a_header_keyed_consistent_hash_keeps_each_user_on_one_endpoint() {
    let servers = [echo("a").await, echo("b").await, echo("c").await];
    let refs: Vec<_> = servers.iter().collect();
    let routes = format!(
        "    - name: sticky\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let policy = "{loadBalancer: {consistentHash: {httpHeaderName: x-user}}}";
    let proxy = Proxy::start(&snapshot("1", &refs, &[], &routes, policy));
    let addr = proxy.listener("outbound").await;
    let mut seen = std::collections::BTreeSet::new();
    for user in 0..30 {
        let user = format!("user-{user}");
        let counts = count_versions(addr, 10, &[("x-user", &user)]).await;
        assert_eq!(
            counts.len(),
            1,
            "{user} moved between endpoints: {counts:?}"
        );
        seen.extend(counts.into_keys());
    }
    assert!(
        seen.len() > 1,
        "30 users all hashed to one endpoint: {seen:?}"
    );
}

#[tokio::test]
async fn http2_clients_are_routed_too() {
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[&v2], &split(0, 100), "{}"));
    let addr = proxy.listener("outbound").await;
    for _ in 0..10 {
        let request = http::Request::get("http://reviews:9080/")
            .body(http_body_util::Full::<bytes::Bytes>::default())
            .unwrap();
        // Connect to the proxy but keep :authority reviews:9080, as an h2 client of the mesh would.
        let (status, headers, _) = send_h2(addr, request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(version(&headers), "v2");
    }
}

async fn send_h2(
    addr: std::net::SocketAddr,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> (StatusCode, http::HeaderMap, bytes::Bytes) {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn websocket_style_upgrades_are_spliced_both_ways() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let v1 = echo("v1").await;
    let routes = format!(
        "    - name: ws\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[], &routes, "{}"));
    let addr = proxy.listener("outbound").await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /chat HTTP/1.1\r\nHost: reviews\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(DEADLINE, stream.read(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            read,
            1,
            "connection closed before the response head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for message in [
        &b"hello"[..],
        &[0u8, 1, 2, 255][..],
        &vec![b'x'; 100_000][..],
    ] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(DEADLINE, stream.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echoed, message, "bytes came back through the tunnel");
    }
    assert_eq!(v1.stats().upgrades(), 1);
}

#[tokio::test]
async fn mirroring_copies_the_configured_share_and_never_affects_the_answer() {
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let routes = |percent: u32| {
        format!(
            "    - name: mirrored\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n      mirror: {{host: {REVIEWS}, subset: v2}}\n      mirrorPercentage: {{value: {percent}}}\n"
        )
    };
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[&v2], &routes(100), "{}"));
    let addr = proxy.listener("outbound").await;
    let client = client();
    for _ in 0..50 {
        let (status, headers, _) = send(&client, addr, "POST", "/", &[("host", "reviews")]).await;
        assert_eq!(
            (status, version(&headers)),
            (StatusCode::OK, "v1".to_owned()),
            "answers come from the primary"
        );
    }
    assert!(
        v2.stats()
            .wait_until(DEADLINE, |s| s.requests() == 50)
            .await,
        "100%: every request mirrored, got {}",
        v2.stats().requests()
    );

    proxy.write_snapshot(&snapshot("2", &[&v1], &[&v2], &routes(50), "{}"));
    proxy.wait_applied(2).await;
    for _ in 0..400 {
        send(&client, addr, "GET", "/", &[("host", "reviews")]).await;
    }
    assert!(
        v2.stats()
            .wait_until(DEADLINE, |s| s.requests() >= 50 + 160)
            .await,
        "50% of 400: got {}",
        v2.stats().requests() - 50
    );
    let mirrored = v2.stats().requests() - 50;
    println!("50% mirror over 400 requests: {mirrored} copies");
    assert!(mirrored <= 240, "50% of 400 is about 200, got {mirrored}");

    // A mirror that cannot be reached changes nothing for the caller.
    let unreachable = snapshot("3", &[&v1], &[], &routes(100), "{}").replace(
        "  trafficPolicy:",
        "  - {address: \"127.0.0.1:1\", labels: {version: v2}}\n  trafficPolicy:",
    );
    proxy.write_snapshot(&unreachable);
    proxy.wait_applied(3).await;
    for _ in 0..20 {
        assert_eq!(
            send(&client, addr, "GET", "/", &[("host", "reviews")])
                .await
                .0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_hash_cookie_is_issued_when_absent_and_keeps_the_client_on_one_endpoint() {
    let servers = [echo("a").await, echo("b").await, echo("c").await];
    let refs: Vec<_> = servers.iter().collect();
    let routes =
        format!("    - name: sticky\n      route: [{{destination: {{host: {REVIEWS}}}}}]\n");
    let policy =
        "{loadBalancer: {consistentHash: {httpCookie: {name: session, path: /, ttl: 3600s}}}}";
    let proxy = Proxy::start(&snapshot("1", &refs, &[], &routes, policy));
    let addr = proxy.listener("outbound").await;
    let client = client();
    let mut endpoints_seen = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let (status, headers, _) = send(&client, addr, "GET", "/", &[("host", "reviews")]).await;
        assert_eq!(status, StatusCode::OK);
        let set_cookie = headers["set-cookie"].to_str().unwrap().to_owned();
        assert!(
            set_cookie.starts_with("session=") && set_cookie.contains("Max-Age=3600"),
            "{set_cookie}"
        );
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let first = version(&headers);
        for _ in 0..5 {
            let (_, headers, _) = send(
                &client,
                addr,
                "GET",
                "/",
                &[("host", "reviews"), ("cookie", &cookie)],
            )
            .await;
            assert_eq!(
                version(&headers),
                first,
                "the cookie {cookie} must keep the client on {first}"
            );
            assert!(
                headers.get("set-cookie").is_none(),
                "no new cookie once the client has one"
            );
        }
        endpoints_seen.insert(first);
    }
    assert!(
        endpoints_seen.len() > 1,
        "12 clients all on one endpoint: {endpoints_seen:?}"
    );
}

#[tokio::test]
async fn cors_preflights_are_answered_and_allowed_origins_decorated() {
    let v1 = echo("v1").await;
    let routes = format!(
        "    - name: api\n      corsPolicy:\n        allowOrigins: [{{exact: https://shop.example.com}}, {{regex: 'https://.*\\.test\\.example\\.com'}}]\n        allowMethods: [GET, POST]\n        allowHeaders: [x-token]\n        exposeHeaders: [x-echo-version]\n        maxAge: 24h\n        allowCredentials: true\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[], &routes, "{}"));
    let addr = proxy.listener("outbound").await;
    let client = client();
    let preflight = [
        ("host", "reviews"),
        ("origin", "https://a.test.example.com"),
        ("access-control-request-method", "POST"),
    ];
    let (status, headers, _) = send(&client, addr, "OPTIONS", "/cart", &preflight).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://a.test.example.com"
    );
    assert_eq!(headers["access-control-allow-methods"], "GET,POST");
    assert_eq!(headers["access-control-allow-headers"], "x-token");
    assert_eq!(headers["access-control-max-age"], "86400");
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(
        v1.stats().requests(),
        0,
        "the proxy answered the preflight itself"
    );

    let (status, headers, _) = send(
        &client,
        addr,
        "GET",
        "/cart",
        &[("host", "reviews"), ("origin", "https://shop.example.com")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://shop.example.com"
    );
    assert_eq!(headers["access-control-expose-headers"], "x-echo-version");

    let (_, headers, _) = send(
        &client,
        addr,
        "GET",
        "/cart",
        &[("host", "reviews"), ("origin", "https://evil.example.org")],
    )
    .await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "an origin not allowed gets no CORS headers"
    );
}

#[tokio::test]
async fn header_changes_per_route_and_per_destination() {
    let (v1, v2) = (echo("v1").await, echo("v2").await);
    let routes = format!(
        "    - name: tagged\n      headers:\n        request: {{set: {{x-route: tagged}}, remove: [x-secret]}}\n        response: {{add: {{x-served-by: mesh}}}}\n      route:\n      - destination: {{host: {REVIEWS}, subset: v2}}\n        headers:\n          request: {{add: {{x-subset: v2}}}}\n          response: {{set: {{x-subset: v2}}, remove: [x-echo-name]}}\n"
    );
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[&v2], &routes, "{}"));
    let addr = proxy.listener("outbound").await;
    let (status, headers, body) =
        get(addr, "/", &[("host", "reviews"), ("x-secret", "s3cret")]).await;
    assert_eq!(status, StatusCode::OK);
    let echoed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echoed["headers"]["x-route"], "tagged");
    assert_eq!(echoed["headers"]["x-subset"], "v2");
    assert!(
        echoed["headers"].get("x-secret").is_none(),
        "removed before it left: {echoed}"
    );
    assert_eq!(headers["x-served-by"], "mesh");
    assert_eq!(headers["x-subset"], "v2");
    assert!(headers.get("x-echo-name").is_none());
}

#[tokio::test]
async fn max_requests_per_connection_1_and_h2_upgrade_policy() {
    let v1 = echo("v1").await;
    let routes = format!(
        "    - name: all\n      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]\n"
    );
    let no_keep_alive = "{connectionPool: {http: {maxRequestsPerConnection: 1}}}";
    let proxy = Proxy::start(&snapshot("1", &[&v1], &[], &routes, no_keep_alive));
    let addr = proxy.listener("outbound").await;
    let client = client();
    for _ in 0..10 {
        assert_eq!(
            send(&client, addr, "GET", "/", &[("host", "reviews")])
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(
        v1.stats().connections(),
        10,
        "one upstream connection per request"
    );

    proxy.write_snapshot(&snapshot(
        "2",
        &[&v1],
        &[],
        &routes,
        "{connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}",
    ));
    proxy.wait_applied(2).await;
    let before = v1.stats().connections();
    for _ in 0..10 {
        let (status, _, body) = send(&client, addr, "GET", "/", &[("host", "reviews")]).await;
        assert_eq!(status, StatusCode::OK);
        let echoed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            echoed["protocol"], "HTTP/2.0",
            "an HTTP/1.1 client upgraded upstream: {echoed}"
        );
        assert_eq!(echoed["authority"], "reviews", "with its authority");
    }
    assert_eq!(
        v1.stats().connections() - before,
        1,
        "ten requests multiplexed on one HTTP/2 connection"
    );
}
