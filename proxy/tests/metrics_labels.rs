//! Request metrics name the workload a request reached (from the endpoint pilot named),
//! record body sizes, keep metadata exchange to the proxies, and stay bounded in series.

#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use support::*;

const REVIEWS: &str = "reviews.shop.svc.cluster.local";
const REVIEWS_ID: &str = "spiffe://cluster.local/ns/shop/sa/reviews";

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
    - route: [{{destination: {{host: {REVIEWS}}}}}]
clusters:
- host: {REVIEWS}
  port: 9080
  endpoints:
  - {{address: "{upstream}", labels: {{app: reviews, version: v2}}, identity: "{REVIEWS_ID}", workload: reviews-v2}}
"#
    )
}

/// POSTs `body` with extra headers; the echo's JSON reply.
async fn post(
    client: &HttpClient,
    addr: std::net::SocketAddr,
    body: &'static [u8],
    headers: &[(&str, &str)],
) -> serde_json::Value {
    let mut request = Request::post(format!("http://{addr}/orders")).header("host", "reviews");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from_static(body))).unwrap();
    let response = tokio::time::timeout(DEADLINE, client.request(request))
        .await
        .expect("request timed out")
        .expect("request failed");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn destination_labels_come_from_the_endpoint_and_body_sizes_are_recorded() {
    let upstream = echo("v2").await;
    let proxy = Proxy::start(&snapshot(upstream.addr()));
    let addr = proxy.listener("outbound").await;
    let client = client();
    static BODY: [u8; 1234] = [b'x'; 1234];
    for _ in 0..3 {
        // An app cannot speak for its sidecar: the header never leaves the proxy.
        let reply = post(
            &client,
            addr,
            &BODY,
            &[("x-mesh-peer-metadata", "w=forged;n=shop")],
        )
        .await;
        assert_eq!(reply["body_bytes"], 1234);
        assert!(
            reply["headers"].get("x-mesh-peer-metadata").is_none(),
            "stripped: {reply}"
        );
    }
    for _ in 0..2 {
        let (status, _, body) = send(
            &client,
            addr,
            "GET",
            "/",
            &[("host", "reviews"), ("x-echo-body-size", "5000")],
        )
        .await;
        assert_eq!((status, body.len()), (StatusCode::OK, 5000));
    }
    let labels = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("destination_workload", "reviews-v2"),
        ("destination_workload_namespace", "shop"),
        ("destination_app", "reviews"),
        ("destination_version", "v2"),
        // Plaintext: nothing proved who answered.
        ("destination_principal", "unknown"),
        ("destination_service", REVIEWS),
        ("response_code", "200"),
    ];
    let value = async |metric| metric_value(&proxy, metric, &labels).await;
    assert_eq!(value("mesh_requests_total").await, 5.0);
    assert_eq!(value("mesh_request_bytes_count").await, 5.0);
    assert_eq!(value("mesh_request_bytes_sum").await, 3.0 * 1234.0);
    let small = [labels.as_slice(), &[("le", "1")]].concat();
    assert_eq!(
        metric_value(&proxy, "mesh_request_bytes_bucket", &small).await,
        2.0,
        "the GETs had no body"
    );
    assert_eq!(value("mesh_response_bytes_count").await, 5.0);
    let response_sum = value("mesh_response_bytes_sum").await;
    assert!(
        response_sum > 2.0 * 5000.0 && response_sum < 2.0 * 5000.0 + 3.0 * 10_000.0,
        "two 5000-byte bodies and three JSON echoes: {response_sum}"
    );
    let under_10k = [labels.as_slice(), &[("le", "10000")]].concat();
    assert_eq!(
        metric_value(&proxy, "mesh_response_bytes_bucket", &under_10k).await,
        5.0
    );
}

/// The exposition's sample lines of the request metrics.
async fn request_series(proxy: &Proxy) -> usize {
    let (_, _, body) = get(proxy.metrics, "/stats/prometheus", &[]).await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("mesh_request") || l.starts_with("mesh_response"))
        .count()
}

#[tokio::test]
async fn a_thousand_paths_and_queries_add_no_series() {
    let upstream = echo("v2").await;
    let proxy = Proxy::start(&snapshot(upstream.addr()));
    let addr = proxy.listener("outbound").await;
    let client = client();
    let headers = [("host", "reviews")];
    send(&client, addr, "GET", "/", &headers).await;
    let before = request_series(&proxy).await;
    assert!(before > 0);
    for i in 0..1000 {
        let path = format!("/items/{i}?page={i}&sort=x{i}");
        let (status, _, _) = send(&client, addr, "GET", &path, &headers).await;
        assert_eq!(status, StatusCode::OK);
    }
    let after = request_series(&proxy).await;
    let total = metric_value(&proxy, "mesh_requests_total", &[("response_code", "200")]).await;
    println!("series lines before {before}, after 1000 distinct paths {after}; requests {total}");
    assert_eq!(total, 1001.0);
    assert_eq!(after, before, "paths and queries are no label");
}

#[tokio::test]
async fn tcp_connections_name_the_endpoints_workload() {
    let upstream = mesh_echo::start(mesh_echo::EchoConfig {
        protocol: mesh_echo::Protocol::Tcp,
        ..mesh_echo::EchoConfig::default()
    })
    .await
    .unwrap();
    let db = "db.shop.svc.cluster.local";
    let snapshot = format!(
        r#"version: "1"
listeners:
- {{name: db, address: "127.0.0.1:0", protocol: TCP, tcpRoute: [{{destination: {{host: {db}}}}}]}}
clusters:
- host: {db}
  port: 5432
  endpoints: [{{address: "{}", labels: {{app: db, version: v3}}, identity: "spiffe://cluster.local/ns/shop/sa/db", workload: db-primary}}]
"#,
        upstream.addr()
    );
    let proxy = Proxy::start(&snapshot);
    let addr = proxy.listener("db").await;
    for _ in 0..2 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"ping").await.unwrap();
        let mut echoed = [0; 4];
        tokio::time::timeout(DEADLINE, stream.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&echoed, b"ping");
    }
    let labels = [
        ("reporter", "source"),
        ("destination_service", db),
        ("destination_workload", "db-primary"),
        ("destination_workload_namespace", "shop"),
        ("destination_app", "db"),
        ("destination_version", "v3"),
        ("destination_principal", "unknown"),
        ("request_protocol", "tcp"),
    ];
    assert_eq!(
        metric_value(&proxy, "mesh_tcp_connections_opened_total", &labels).await,
        2.0
    );
}
