//! A real Prometheus scrapes a local mesh under known traffic, and PromQL for the service's
//! success rate, request rate and p99 latency returns what the traffic implies; every
//! panel query of the Grafana dashboards in charts/mesh/dashboards is accepted by it, and
//! the golden ones return data.
//!
//! The mesh: pilot, citadel, a caller sidecar (`productpage`) and a callee sidecar
//! (`reviews`, STRICT mTLS) in front of an echo app, on loopback addresses 127.0.31.x that
//! only this test uses. Traffic: [`RATE`] requests a second for [`SECONDS`] seconds; one in
//! ten answers 500 at once, one in ten takes 300 ms, the rest 15 ms.

#![allow(clippy::unwrap_used)]

#[path = "prometheus/dashboards.rs"]
mod dashboards;
#[path = "prometheus/server.rs"]
mod server;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use server::Prometheus;
use support::mesh::{CALLEE_ID, sidecar};
use support::{Citadel, Pilot, REVIEWS_SERVICE, echo, free_addr, wait_for};

const RATE: u32 = 50;
const SECONDS: u32 = 6;
const TOTAL: u32 = RATE * SECONDS;
const SERVICE: &str = "reviews.shop.svc.cluster.local";
/// Prometheus listens here; the callee's inbound listener on `CALLEE_IP`.
const PROMETHEUS_IP: &str = "127.0.31.1";
const CALLEE_IP: &str = "127.0.31.2";

/// The reviews endpoint (a WorkloadEntry named as the callee's workload), the callee's
/// inbound listener in front of `app`, STRICT mTLS.
fn config(inbound_port: u16, app: SocketAddr) -> String {
    format!(
        r#"{REVIEWS_SERVICE}---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews, namespace: shop}}
spec:
  address: {CALLEE_IP}
  ports: {{http: {inbound_port}}}
  labels: {{app: reviews, version: v1, security.istio.io/tlsMode: istio}}
  serviceAccount: reviews
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: reviews, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: reviews}}}}
  ingress:
  - port: {{number: {inbound_port}, name: http, protocol: HTTP}}
    bind: {CALLEE_IP}
    defaultEndpoint: {app}
    captureMode: NONE
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: shop}}
spec: {{mtls: {{mode: STRICT}}}}
"#
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Request `i`'s knobs: one in ten fails at once, one in ten is slow.
fn knobs(i: u32) -> (&'static str, &'static str) {
    match i % 10 {
        0 => ("x-echo-status", "500"),
        5 => ("x-echo-delay", "300ms"),
        _ => ("x-echo-delay", "15ms"),
    }
}

/// Sends [`TOTAL`] requests at [`RATE`] a second, each on its own task so slow ones do not
/// hold the pace; returns how many came back 500 (all others must be 200).
async fn drive(outbound: SocketAddr) -> u32 {
    let client = support::client();
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / RATE);
    let mut tasks = Vec::new();
    for i in 0..TOTAL {
        ticker.tick().await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let (knob, value) = knobs(i);
            let request = Request::get(format!("http://{outbound}/load/{i}"))
                .header("host", "reviews:9080")
                .header(knob, value)
                .body(Full::default())
                .unwrap();
            let response = client.request(request).await.unwrap();
            let status = response.status();
            response.into_body().collect().await.unwrap();
            status
        }));
    }
    let mut failed = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => {}
            StatusCode::INTERNAL_SERVER_ERROR => failed += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    failed
}

/// The mesh's request count for the service as the callee reported it, from its own
/// metrics port.
async fn reported(metrics: SocketAddr) -> f64 {
    let (status, body) = support::get(metrics, "metrics", "/stats/prometheus").await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with("mesh_requests_total{"))
        .filter(|l| l.contains(r#"reporter="destination""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn prometheus_sees_the_traffic_the_mesh_carried() {
    let app = echo("v1").await;
    let inbound_port = free_addr(CALLEE_IP).port();
    let citadel = Citadel::start(&[
        ("productpage-token", "shop", "productpage"),
        ("reviews-token", "shop", "reviews"),
    ]);
    let pilot = Pilot::start(&[("mesh.yaml", &config(inbound_port, app.addr()))]);
    let caller = sidecar(
        &pilot,
        &citadel,
        "productpage",
        "app=productpage,version=v1",
        "productpage-token",
        &["--app", "productpage", "--app-version", "v1"],
    );
    let callee = sidecar(
        &pilot,
        &citadel,
        "reviews",
        "app=reviews,version=v1",
        "reviews-token",
        &["--app", "reviews", "--app-version", "v1"],
    );
    pilot.wait_all_synced(&[&caller.id, &callee.id]).await;
    let outbound = caller.outbound().await;
    wait_for("a request through both sidecars", || async {
        let (status, _) = support::get(outbound, "reviews:9080", "/warmup").await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let listen: SocketAddr = (
        PROMETHEUS_IP.parse::<std::net::IpAddr>().unwrap(),
        free_addr(PROMETHEUS_IP).port(),
    )
        .into();
    let prometheus = Prometheus::start(listen, &[caller.metrics, callee.metrics]).await;
    let destination = format!(r#"reporter="destination",destination_service="{SERVICE}""#);
    // Traffic starts once Prometheus has the series, so a window inside the run holds
    // only steady traffic.
    wait_for("the first scrape", || async {
        let q = format!("sum(mesh_requests_total{{{destination}}})");
        prometheus.scalar(&q, None).await
    })
    .await;
    let baseline = reported(callee.metrics).await;

    let started = now();
    let failed = drive(outbound).await;
    let finished = now();
    assert_eq!(failed, TOTAL / 10);
    let expected_total = baseline + f64::from(TOTAL);
    assert_eq!(reported(callee.metrics).await, expected_total);

    // No sleeps: Prometheus has the final counts once a query says so.
    let total_query = format!("sum(mesh_requests_total{{{destination}}})");
    wait_for("Prometheus to scrape the final counts", || async {
        let total = prometheus.scalar(&total_query, None).await?;
        (total == expected_total).then_some(())
    })
    .await;

    // A 4 s window ending 5.5 s into the 6 s run: steady traffic only.
    let at = Some(started + 5.5);
    let window = "4s";
    let rps = format!("sum(rate(mesh_requests_total{{{destination}}}[{window}]))");
    let success = format!(
        "sum(rate(mesh_requests_total{{{destination},response_code!~\"5..\"}}[{window}])) / {rps}"
    );
    let p99 = format!(
        "histogram_quantile(0.99, sum(rate(mesh_request_duration_milliseconds_bucket{{{destination}}}[{window}])) by (le))"
    );
    let p50 = p99.replace("0.99", "0.50");
    let value = async |q: &str| {
        prometheus
            .scalar(q, at)
            .await
            .unwrap_or_else(|| panic!("no single value for {q}\n{}", prometheus.log()))
    };
    let (rps, success, p99, p50) = (
        value(&rps).await,
        value(&success).await,
        value(&p99).await,
        value(&p50).await,
    );
    let errors = format!("sum(mesh_requests_total{{{destination},response_code=\"500\"}})");
    let errors = prometheus.scalar(&errors, None).await.unwrap();
    println!(
        "traffic: {TOTAL} requests in {:.2} s at {RATE}/s, {failed} answered 500, 1 in 10 slow (300 ms)",
        finished - started
    );
    println!(
        "Prometheus: total {expected_total} (baseline {baseline}), 500s {errors}, rps {rps:.2}, success rate {success:.3}, p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
    assert_eq!(errors, f64::from(TOTAL / 10));
    let rate = f64::from(RATE);
    assert!((rps - rate).abs() <= rate * 0.1, "rps {rps}, sent {RATE}/s");
    assert!(
        (success - 0.9).abs() <= 0.05,
        "success rate {success}, sent 0.9"
    );
    // Bucket resolution: the slowest tenth (300 ms) lies in the (250, 500] bucket, the
    // median (15 ms) in (10, 25].
    assert!(p99 > 250.0 && p99 <= 500.0, "p99 {p99} ms");
    assert!(p50 > 10.0 && p50 <= 25.0, "p50 {p50} ms");

    // Both sides name both workloads: the caller from the endpoint it reached, the callee
    // from metadata exchange over mTLS.
    let by_source = format!(
        "sum by (source_workload, source_app, source_version, source_principal) (mesh_requests_total{{{destination}}})"
    );
    let data = prometheus.query(&by_source, None).await.unwrap();
    let series = data["result"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{data}");
    let metric = &series[0]["metric"];
    assert_eq!(metric["source_workload"], "productpage", "{metric}");
    assert_eq!(metric["source_app"], "productpage");
    assert_eq!(metric["source_version"], "v1");
    assert_eq!(
        metric["source_principal"],
        "spiffe://cluster.local/ns/shop/sa/productpage"
    );
    let source_side = format!(
        "sum(mesh_requests_total{{reporter=\"source\",source_workload=\"productpage\",destination_workload=\"reviews\",destination_app=\"reviews\",destination_version=\"v1\",destination_principal=\"{CALLEE_ID}\",connection_security_policy=\"mutual_tls\"}})"
    );
    let seen = prometheus.scalar(&source_side, None).await.unwrap_or(0.0);
    assert!(seen >= f64::from(TOTAL), "the caller's view: {seen}");

    dashboards::check_every_panel(&prometheus, at).await;
}
