//! Kubernetes mode against a fake Prometheus HTTP API that answers canned JSON to the exact
//! PromQL meshctl sends, and 400 to anything else.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::*;
use crate::observe::stats;

const BY: &str = "reporter, source_workload, source_workload_namespace, source_principal, destination_workload, destination_workload_namespace, destination_principal, destination_service_name, destination_service_namespace, destination_version, response_code, connection_security_policy";

const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/shop/sa/productpage";

fn series(labels: Value, value: &str) -> Value {
    json!({"metric": labels, "value": [1_700_000_000.0, value]})
}

fn vector(result: Vec<Value>) -> String {
    json!({"status": "success", "data": {"resultType": "vector", "result": result}}).to_string()
}

fn inbound(code: &str) -> Value {
    json!({"reporter": "destination", "source_workload": "unknown", "source_principal": PRODUCTPAGE,
        "destination_workload": "reviews-v1", "destination_workload_namespace": "shop",
        "destination_service_name": "reviews", "destination_version": "v1", "response_code": code,
        "connection_security_policy": "mutual_tls"})
}

fn outbound() -> Value {
    json!({"reporter": "source", "source_workload": "productpage-v1", "source_workload_namespace": "shop",
        "source_principal": PRODUCTPAGE, "destination_workload": "reviews-v1",
        "destination_workload_namespace": "shop", "destination_service_name": "reviews",
        "response_code": "200", "connection_security_policy": "mutual_tls"})
}

fn bucket(le: &str) -> Value {
    let mut labels = inbound("200");
    labels["le"] = json!(le);
    labels
}

/// Over 30 s: reviews-v1 answered 60 requests (3 of them 503), 30 in (0, 5] ms and 30 in
/// (5, 10] ms; productpage-v1 sent 57 of them; reviews-v1's sidecar has 3 TCP connections
/// open and 2 pods report.
fn answers() -> BTreeMap<String, String> {
    let reviews_tcp = json!({"reporter": "destination", "destination_workload": "reviews-v1",
        "destination_workload_namespace": "shop"});
    BTreeMap::from([
        (
            format!("sum by ({BY}) (increase(mesh_requests_total[30s]))"),
            vector(vec![series(inbound("200"), "57"), series(inbound("503"), "3"), series(outbound(), "57")]),
        ),
        (
            format!("sum by ({BY}, le) (increase(mesh_request_duration_milliseconds_bucket[30s]))"),
            vector(vec![series(bucket("5"), "30"), series(bucket("10"), "60"), series(bucket("+Inf"), "60")]),
        ),
        (
            format!("sum by ({BY}) (mesh_requests_total)"),
            vector(vec![series(inbound("200"), "1000"), series(outbound(), "990")]),
        ),
        (
            format!("sum by ({BY}) (mesh_tcp_connections_opened_total)"),
            vector(vec![series(reviews_tcp.clone(), "5")]),
        ),
        (
            format!("sum by ({BY}) (mesh_tcp_connections_closed_total)"),
            vector(vec![series(reviews_tcp, "2")]),
        ),
        (
            "count by (destination_workload, destination_workload_namespace) (count by (pod, destination_workload, destination_workload_namespace) (mesh_requests_total{reporter=\"destination\"}))".to_owned(),
            vector(vec![series(json!({"destination_workload": "reviews-v1", "destination_workload_namespace": "shop"}), "2")]),
        ),
    ])
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn fake_prometheus(prefix: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let answers = answers();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let answers = answers.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let query = req
                        .uri()
                        .query()
                        .and_then(|q| q.strip_prefix("query="))
                        .map(decode)
                        .unwrap_or_default();
                    let found = (req.uri().path() == format!("{prefix}/api/v1/query"))
                        .then(|| answers.get(&query))
                        .flatten();
                    let response = match found {
                        Some(body) => Response::new(Full::new(Bytes::from(body.clone()))),
                        None => {
                            let body = json!({"status": "error", "errorType": "bad_data", "error": format!("unexpected query {query:?}")});
                            let mut response =
                                Response::new(Full::new(Bytes::from(body.to_string())));
                            *response.status_mut() = StatusCode::BAD_REQUEST;
                            response
                        }
                    };
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn golden_metrics_and_edges_from_prometheus() {
    let addr = fake_prometheus("/prom").await;
    let url = format!("http://{addr}/prom/");
    let (window, workloads) = measure(&url, Duration::from_secs(30)).await.unwrap();
    let names: Vec<(&str, (u32, u32))> = workloads
        .iter()
        .map(|w| (w.name.as_str(), w.meshed))
        .collect();
    assert_eq!(names, [("productpage-v1", (1, 1)), ("reviews-v1", (2, 2))]);
    assert_eq!(workloads[1].service, "reviews");

    let stats = stats::compute(&window, &workloads);
    let reviews = &stats.workloads[1];
    assert_eq!(reviews.golden.rps, 2.0);
    assert_eq!(reviews.golden.success, Some(0.95));
    assert_eq!(reviews.golden.p50, Some(5.0));
    assert!((reviews.golden.p99.unwrap() - 9.9).abs() < 1e-9);
    assert_eq!(reviews.tcp_conn, 3.0);
    assert_eq!(stats.edges.len(), 1, "{:#?}", stats.edges);
    let edge = &stats.edges[0];
    assert_eq!(
        (edge.source.as_str(), edge.target.as_str()),
        ("productpage-v1.shop", "reviews-v1.shop")
    );
    assert_eq!(edge.golden.rps, 1.9);
    assert_eq!(edge.total_requests, 990.0);
    assert!(edge.mtls);
}

#[tokio::test]
async fn prometheus_errors_name_the_query_and_the_reason() {
    let addr = fake_prometheus("").await;
    // A 60 s window asks other queries: the fake answers 400 with Prometheus's error.
    let error = measure(&format!("http://{addr}"), Duration::from_secs(60))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("Prometheus at http://{addr}")),
        "{error}"
    );
    assert!(error.contains("400"), "{error}");
    let refused = measure("https://prometheus:9090", Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("only http://"), "{refused}");
}

#[test]
fn answers_that_are_not_vectors_are_errors() {
    assert!(
        samples("m", "{}")
            .unwrap_err()
            .contains("not the API's JSON")
    );
    let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
    assert_eq!(
        samples("m", &matrix.to_string()).unwrap_err(),
        "a matrix answer, not a vector"
    );
    let bad = vector(vec![series(json!({}), "many")]);
    assert!(samples("m", &bad).unwrap_err().contains("\"many\""));
    assert_eq!(encode("a b{c=\"5.*\"}"), "a%20b%7Bc%3D%225.%2A%22%7D");
}

/// The fake on a runtime of its own, for the commands (which run their own runtime).
fn fake_prometheus_thread() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            tx.send(fake_prometheus("").await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

fn meshctl(args: &[&str]) -> String {
    use clap::Parser;
    let cli = crate::Cli::parse_from(args);
    let mut out = Vec::new();
    crate::run(&cli, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn cells<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    text.lines()
        .find(|l| l.starts_with(first))
        .unwrap_or_else(|| panic!("no {first:?} row in {text}"))
        .split_whitespace()
        .collect()
}

#[test]
fn stat_and_top_print_prometheus_answers() {
    let url = format!("http://{}", fake_prometheus_thread());
    let stat = meshctl(&["meshctl", "stat", "--prometheus", &url, "--window", "30s"]);
    assert_eq!(
        cells(&stat, "NAME"),
        [
            "NAME",
            "MESHED",
            "SUCCESS",
            "RPS",
            "LATENCY_P50",
            "LATENCY_P95",
            "LATENCY_P99",
            "TCP_CONN"
        ]
    );
    assert_eq!(
        cells(&stat, "reviews-v1"),
        [
            "reviews-v1",
            "2/2",
            "95.00%",
            "2.0rps",
            "5.0ms",
            "9.5ms",
            "9.9ms",
            "3"
        ]
    );
    // Nobody calls productpage: its row is what it sent.
    assert_eq!(
        cells(&stat, "productpage-v1"),
        [
            "productpage-v1",
            "1/1",
            "100.00%",
            "1.9rps",
            "-",
            "-",
            "-",
            "0"
        ]
    );
    let one = meshctl(&[
        "meshctl",
        "stat",
        "deploy/reviews-v1",
        "--prometheus",
        &url,
        "--window",
        "30s",
    ]);
    assert_eq!(one.lines().count(), 2, "{one}");

    let top = meshctl(&[
        "meshctl",
        "top",
        "--once",
        "--prometheus",
        &url,
        "--window",
        "30s",
    ]);
    assert!(top.starts_with("NAME "), "{top}");
    assert_eq!(
        cells(&top, "productpage-v1  reviews-v1"),
        [
            "productpage-v1",
            "reviews-v1",
            "100.00%",
            "1.9rps",
            "-",
            "yes",
            "990"
        ]
    );
}
