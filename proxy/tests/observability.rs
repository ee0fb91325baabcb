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
