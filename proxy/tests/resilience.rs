//! Circuit breaking and outlier detection through the real proxy binary.

#![allow(clippy::unwrap_used)]

mod support;

use http::StatusCode;
use support::*;

const SERVICE: &str = "httpbin.default.svc.cluster.local";

fn snapshot(endpoints: &[std::net::SocketAddr], policy: &str) -> String {
    let endpoints: String = endpoints
        .iter()
        .map(|e| format!("  - {{address: \"{e}\"}}\n"))
        .collect();
    format!(
        r#"version: "1"
listeners:
- {{name: outbound, address: "127.0.0.1:0", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: httpbin
    domains: ["*"]
    routes:
    - name: all
      retries: {{attempts: 0}}
      route: [{{destination: {{host: {SERVICE}}}}}]
clusters:
- host: {SERVICE}
  port: 8000
  endpoints:
{endpoints}  trafficPolicy: {policy}
"#
    )
}

#[tokio::test]
async fn one_connection_and_one_pending_request_overflow_the_rest_with_uo() {
    let upstream = echo("v1").await;
    let policy = "{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}";
    let proxy = Proxy::start(&snapshot(&[upstream.addr()], policy));
    let addr = proxy.listener("outbound").await;
    let requests: Vec<_> = (0..10)
        .map(|_| tokio::spawn(async move { get(addr, "/", &[("x-echo-delay", "300ms")]).await }))
        .collect();
    let mut ok = 0;
    let mut overflowed = 0;
    for request in requests {
        let (status, headers, _) = request.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(headers["x-mesh-response-flags"], "UO");
                overflowed += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    println!("10 concurrent requests, maxConnections 1, 1 pending: {ok} ok, {overflowed} UO");
    assert_eq!(ok + overflowed, 10);
    assert!(
        (1..=2).contains(&ok),
        "one in flight and one queued may pass, got {ok}"
    );
    assert_eq!(
        upstream.stats().requests(),
        ok as u64,
        "refused requests never reached the upstream"
    );
    let counted = metric_value(
        &proxy,
        "mesh_requests_total",
        &[("response_code", "503"), ("response_flags", "UO")],
    )
    .await;
    assert_eq!(
        counted, overflowed as f64,
        "the metric counts every overflow"
    );
}

#[tokio::test]
async fn an_endpoint_answering_504_is_ejected_and_then_everything_succeeds() {
    let good = echo("good").await;
    let bad = echo("bad").await;
    bad.set_behaviour(mesh_echo::Behaviour {
        status: StatusCode::GATEWAY_TIMEOUT,
        ..bad.behaviour()
    });
    let policy = "{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutiveGatewayErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}}";
    let proxy = Proxy::start(&snapshot(&[good.addr(), bad.addr()], policy));
    let addr = proxy.listener("outbound").await;
    let client = client();
    let mut failures_before_ejection = 0;
    for _ in 0..20 {
        if send(&client, addr, "GET", "/", &[]).await.0 != StatusCode::OK {
            failures_before_ejection += 1;
        }
    }
    assert_eq!(
        failures_before_ejection, 3,
        "ejected after exactly consecutiveGatewayErrors"
    );
    for _ in 0..100 {
        assert_eq!(
            send(&client, addr, "GET", "/", &[]).await.0,
            StatusCode::OK,
            "after ejection every request succeeds"
        );
    }
    let clusters = proxy.admin_json("/clusters").await;
    let bad_view = clusters[0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == bad.addr().to_string())
        .unwrap()
        .clone();
    assert_eq!(bad_view["health"], "ejected", "{bad_view}");
    assert_eq!(bad_view["ejections"], 1);
    assert_eq!(
        metric_value(
            &proxy,
            "mesh_upstream_ejections_total",
            &[("destination_service", SERVICE)]
        )
        .await,
        1.0
    );
}

/// An upstream that answers the first request on each connection with keep-alive, then
/// closes the connection as soon as the next request arrives, without reading or answering
/// it: the race behind the classic intermittent "503 on keep-alive".
async fn closing_upstream() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = answered.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let reply =
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok";
                if stream.write_all(reply).await.is_ok() {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                // Wait for the next request, then close without reading it.
                let _ = stream.readable().await;
                drop(stream);
            });
        }
    });
    (addr, answered)
}

#[tokio::test]
async fn a_request_on_a_pooled_connection_the_upstream_closed_is_retried_transparently() {
    let (upstream, answered) = closing_upstream().await;
    // No route retries: only the pool's own safety net may save these requests.
    let proxy = Proxy::start(&snapshot(&[upstream], "{}"));
    let addr = proxy.listener("outbound").await;
    let client = client();
    for i in 0..50 {
        let (status, headers, _) = send(&client, addr, "GET", "/", &[]).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "request {i} failed with {:?}",
            headers.get("x-mesh-response-flags")
        );
    }
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 50);
}
