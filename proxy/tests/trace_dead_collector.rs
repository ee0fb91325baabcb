//! A tracing collector that is gone (a closed port) or silent (a listener that accepts and
//! never answers) costs the proxy neither latency nor memory: the request path never waits
//! on the exporter and its queue is bounded. Its own test binary, so that no other test
//! shares the machine while latency is measured.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "tracing/collector.rs"]
#[allow(dead_code)]
mod collector;
#[path = "tracing/setup.rs"]
#[allow(dead_code)]
mod setup;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use setup::{A_FLAGS, outbound, telemetry};
use support::{HttpClient, Proxy, client, echo, send};

const REQUESTS: usize = 3000;
const CONCURRENCY: usize = 8;
/// Spans the exporter may hold: its queue and one batch in flight.
const HELD: u64 = 2048 + 512;
const RSS_GROWTH_LIMIT_KIB: u64 = 20 * 1024;

/// Each request's latency, `REQUESTS` of them from `CONCURRENCY` clients.
async fn load(entry: SocketAddr) -> Vec<Duration> {
    let client: Arc<HttpClient> = Arc::new(client());
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let client = client.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for _ in 0..REQUESTS / CONCURRENCY {
                let start = Instant::now();
                let (status, _, _) = send(&client, entry, "GET", "/", &[("host", "reviews")]).await;
                assert_eq!(status, 200);
                latencies.push(start.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all.sort();
    all
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Accepts connections and holds them without reading or writing a byte.
async fn black_hole() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.77.2:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

fn stat(status: &serde_json::Value, name: &str) -> u64 {
    status["stats"][name].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_or_silent_collector_changes_neither_latency_nor_memory() {
    let app = echo("v2").await;
    let proxy = Proxy::start_with(&outbound(app.addr(), ""), &A_FLAGS);
    let entry = proxy.listener("outbound").await;
    load(entry).await; // warm up: pooled connections, allocator
    let baseline = load(entry).await;
    let base_p99 = percentile(&baseline, 0.99);
    let rss_start = rss_kib(proxy.pid());
    println!(
        "no tracing: p50 {:?} p99 {base_p99:?}, RSS {rss_start} KiB",
        percentile(&baseline, 0.5)
    );
    let bound = base_p99 * 3 + Duration::from_millis(20);

    let closed: SocketAddr = "127.0.77.1:4317".parse().unwrap();
    let silent = black_hole().await;
    let mut rss_max = rss_start;
    let mut sent = 0u64;
    for (version, (name, collector)) in [("closed port", closed), ("black hole", silent)]
        .into_iter()
        .enumerate()
    {
        proxy.write_snapshot(&outbound(app.addr(), &telemetry(Some(collector), 100.0)));
        proxy.wait_applied(version as u64 + 2).await;
        let failures_before = stat(&proxy.admin_json("/tracing").await, "export_failures");
        let latencies = load(entry).await;
        sent += latencies.len() as u64;
        let p99 = percentile(&latencies, 0.99);
        let rss = rss_kib(proxy.pid());
        rss_max = rss_max.max(rss);
        // A failed export takes up to its 2 s deadline against the black hole.
        let status = proxy
            .wait_admin("/tracing", |s| stat(s, "export_failures") > failures_before)
            .await;
        let (exported, dropped) = (
            stat(&status, "spans_exported"),
            stat(&status, "spans_dropped"),
        );
        println!(
            "{name}: p50 {:?} p99 {p99:?} (bound {bound:?}), RSS {rss} KiB (+{} KiB), \
             spans exported {exported} dropped {dropped} queued {}, export failures {}",
            percentile(&latencies, 0.5),
            rss.saturating_sub(rss_start),
            status["queued"],
            stat(&status, "export_failures"),
        );
        assert!(p99 <= bound, "{name}: p99 {p99:?} over {bound:?}");
        assert_eq!(exported, 0, "{name}: nothing can have been exported");
        // Whatever was not dropped is still held, and the exporter holds no more than
        // its queue and one batch: the rest was dropped, not kept.
        assert!(
            sent - dropped <= HELD + CONCURRENCY as u64,
            "{name}: {sent} spans, {dropped} dropped: {} held",
            sent - dropped
        );
        assert!(status["queued"].as_u64().unwrap() <= 2048);
    }
    let growth = rss_max.saturating_sub(rss_start);
    println!("RSS growth with a dead collector: {growth} KiB (limit {RSS_GROWTH_LIMIT_KIB} KiB)");
    assert!(growth < RSS_GROWTH_LIMIT_KIB, "RSS grew {growth} KiB");
    let dropped = support::metric_value(
        &proxy,
        "mesh_trace_spans_dropped_total",
        &[("reason", "queue_full")],
    )
    .await;
    assert!(dropped > 0.0, "the full queue dropped spans: {dropped}");
}
