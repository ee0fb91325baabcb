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
