//! What a user sees of the traffic: Prometheus metrics with Istio's names and labels.

#![allow(clippy::unwrap_used)]

mod support;

use http::StatusCode;
use support::*;

const REVIEWS: &str = "reviews.default.svc.cluster.local";

fn snapshot(upstream: std::net::SocketAddr) -> String {
    format!(
        r#"version: "1"
listeners:
- {{name: outbound, address: "127.0.0.1:0", routeConfig: outbound}}
routeConfigs:
- name: outbound
  virtualHosts:
  - name: reviews
    domains: [reviews]
    routes:
    - name: broken
      match: [{{uri: {{prefix: /broken}}}}]
      fault: {{abort: {{httpStatus: 503, percentage: {{value: 100}}}}}}
      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]
    - name: ok
      route: [{{destination: {{host: {REVIEWS}, subset: v1}}}}]
clusters:
- host: {REVIEWS}
  port: 9080
  endpoints: [{{address: "{upstream}", labels: {{version: v1}}}}]
  subsets: [{{name: v1, labels: {{version: v1}}}}]
"#
    )
}

#[tokio::test]
async fn requests_are_counted_with_istio_labels_and_response_flags() {
    let upstream = echo("v1").await;
    let proxy = Proxy::start(&snapshot(upstream.addr()));
    let addr = proxy.listener("outbound").await;
    let client = client();
    for _ in 0..7 {
        assert_eq!(
            send(&client, addr, "GET", "/", &[("host", "reviews")])
                .await
                .0,
            StatusCode::OK
        );
    }
    for _ in 0..3 {
        assert_eq!(
            send(&client, addr, "GET", "/broken", &[("host", "reviews")])
                .await
                .0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(
        send(&client, addr, "GET", "/", &[("host", "ratings")])
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let ok = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("destination_service", REVIEWS),
        ("destination_service_name", "reviews"),
        ("destination_service_namespace", "default"),
        ("destination_version", "v1"),
        ("request_protocol", "http"),
        ("response_code", "200"),
        ("response_flags", "-"),
    ];
    assert_eq!(metric_value(&proxy, "mesh_requests_total", &ok).await, 7.0);
    let aborted = [
        ("destination_service", REVIEWS),
        ("response_code", "503"),
        ("response_flags", "FI"),
    ];
    assert_eq!(
        metric_value(&proxy, "mesh_requests_total", &aborted).await,
        3.0
    );
    let no_route = [
        ("destination_service", "unknown"),
        ("response_code", "404"),
        ("response_flags", "NR"),
    ];
    assert_eq!(
        metric_value(&proxy, "mesh_requests_total", &no_route).await,
        1.0
    );
    let histogram_count =
        metric_value(&proxy, "mesh_request_duration_milliseconds_count", &ok).await;
    assert_eq!(histogram_count, 7.0, "every request is timed too");
}

#[tokio::test]
async fn the_access_log_writes_one_json_line_per_request() {
    let upstream = echo("v1").await;
    let proxy = Proxy::start_with(&snapshot(upstream.addr()), &["--access-log"]);
    let addr = proxy.listener("outbound").await;
    get(
        addr,
        "/books?page=2",
        &[
            ("host", "reviews"),
            ("x-request-id", "req-1"),
            ("user-agent", "test/1"),
        ],
    )
    .await;
    get(addr, "/broken", &[("host", "reviews")]).await;
    let lines = proxy.stdout_lines(2).await;
    let ok: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["path"], "/books?page=2");
    assert_eq!(ok["response_code"], 200);
    assert_eq!(ok["response_flags"], "-");
    assert_eq!(ok["request_id"], "req-1");
    assert_eq!(ok["user_agent"], "test/1");
    assert_eq!(ok["authority"], "reviews");
    assert_eq!(ok["route_name"], "ok");
    assert_eq!(ok["upstream_host"], upstream.addr().to_string());
    assert!(ok["start_time"].as_str().unwrap().ends_with('Z'));
    assert!(
        ok["bytes_sent"].as_u64().unwrap() > 100,
        "the echo's JSON body: {ok}"
    );
    let aborted: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(
        (
            aborted["response_code"].as_u64(),
            aborted["response_flags"].as_str()
        ),
        (Some(503), Some("FI"))
    );
    assert!(
        aborted["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "a request id is made up: {aborted}"
    );
}

#[tokio::test]
async fn the_log_level_changes_at_runtime() {
    let upstream = echo("v1").await;
    let proxy = Proxy::start(&snapshot(upstream.addr()));
    let client = client();
    let (status, _, body) = send(
        &client,
        proxy.admin,
        "POST",
        "/logging?level=mesh_proxy=debug",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let (status, _, _) = send(
        &client,
        proxy.admin,
        "POST",
        "/logging?level=[[nonsense",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
