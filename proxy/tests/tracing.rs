//! Distributed tracing with the real binary: two sidecars report a span each to a real
//! OTLP/gRPC receiver, chained parent to child, with Istio's tags; incoming W3C and B3
//! contexts are continued; sampling follows the snapshot and changes with it.

#![allow(clippy::unwrap_used)]

mod support;

#[path = "tracing/collector.rs"]
mod collector;
#[path = "tracing/setup.rs"]
mod setup;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use collector::{Collector, Received};
use setup::{A_FLAGS, REVIEWS, TwoHops, outbound, telemetry, traceparent};
use support::{Proxy, client, echo, metric_value, send};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// The CLIENT span (A, outbound) and the SERVER span (B, inbound) of `trace`.
async fn hops(mesh: &TwoHops, trace: &str) -> (Received, Received) {
    let spans = mesh.collector.trace(trace, 2).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let kind = |k: SpanKind| {
        spans
            .iter()
            .find(|s| s.span.kind == k as i32)
            .cloned()
            .unwrap()
    };
    (kind(SpanKind::Client), kind(SpanKind::Server))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hops_report_a_parent_child_chain_with_istios_tags() {
    let mesh = TwoHops::start().await;
    let headers = [("x-request-id", "req-1"), ("user-agent", "trace-test")];
    let (status, reply, size) = mesh.get("/hello?x=1", &headers).await;
    assert_eq!(status, 200);
    let reply = reply.unwrap();
    let (trace, app_parent, flags) = traceparent(&reply);
    assert_eq!(flags, "01");
    assert_eq!(
        reply.headers.get("x-request-id").map(String::as_str),
        Some("req-1")
    );

    let (a, b) = hops(&mesh, &trace).await;
    assert_eq!(a.parent_id(), "", "A started the trace: {a:#?}");
    assert_eq!(b.parent_id(), a.span_id(), "B is A's child");
    assert_eq!(app_parent, b.span_id(), "the app's parent is B");
    assert_eq!(
        (a.service.as_str(), b.service.as_str()),
        ("productpage.shop", "reviews.shop")
    );
    assert_eq!(a.span.name, format!("{REVIEWS}:9080/*"));
    let size = size.to_string();
    let common = [
        ("istio.mesh_id", "cluster.local"),
        ("istio.namespace", "shop"),
        ("http.method", "GET"),
        ("http.url", "http://reviews/hello?x=1"),
        ("http.protocol", "HTTP/1.1"),
        ("http.status_code", "200"),
        ("response_flags", "-"),
        ("downstream_cluster", "-"),
        ("peer.address", "127.0.0.1"),
        ("request_size", "0"),
        ("response_size", size.as_str()),
        ("user_agent", "trace-test"),
        ("guid:x-request-id", "req-1"),
        ("component", "proxy"),
        ("team", "shop"),
    ];
    let cluster = format!("outbound|9080|v2|{REVIEWS}");
    let a_own = [
        ("node_id", "productpage-v1.shop"),
        ("istio.canonical_service", "productpage"),
        ("istio.canonical_revision", "v1"),
        ("upstream_cluster", cluster.as_str()),
        ("upstream_cluster.name", cluster.as_str()),
    ];
    let b_own = [
        ("node_id", "reviews-v2.shop"),
        ("istio.canonical_service", "reviews"),
        ("istio.canonical_revision", "v2"),
        ("upstream_cluster", "inbound|9080||"),
        ("upstream_cluster.name", "inbound|9080||"),
    ];
    for (span, own) in [(&a, &a_own), (&b, &b_own)] {
        for (key, value) in common.iter().chain(own.iter()) {
            assert_eq!(span.tag(key), *value, "{key} of {span:#?}");
        }
        assert!(!span.tags.contains_key("error"), "{span:#?}");
        assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
    }
    assert!(a.span.start_time_unix_nano <= b.span.start_time_unix_nano);

    // 500, which is not retried (503 is, by default): one request per hop.
    let (status, _, _) = mesh
        .get("/", &[("x-echo-status", "500"), ("x-request-id", "req-2")])
        .await;
    assert_eq!(status, 500);
    let failed = mesh
        .collector
        .wait(|s| s.tag("guid:x-request-id") == "req-2", 2)
        .await;
    for span in &failed {
        assert_eq!(
            (span.tag("error"), span.tag("http.status_code")),
            ("true", "500")
        );
        assert_eq!(
            span.span.status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
    }

    // The collector holds the spans before the proxy hears back: its count follows.
    let status = mesh
        .a
        .wait_admin("/tracing", |s| s["stats"]["spans_exported"] == 2)
        .await;
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["service_name"], "productpage.shop");
    assert_eq!(status["stats"]["spans_dropped"], 0, "{status}");
    mesh.b
        .wait_admin("/tracing", |s| s["stats"]["spans_exported"] == 2)
        .await;
    let exported = metric_value(&mesh.b, "mesh_trace_spans_exported_total", &[]).await;
    assert_eq!(exported, 2.0, "B's metric");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_w3c_and_b3_contexts_are_continued() {
    let mesh = TwoHops::start().await;
    let w3c = format!("00-{TRACE}-{PARENT}-01");
    let (_, reply, _) = mesh
        .get("/", &[("traceparent", &w3c), ("tracestate", "vendor=1")])
        .await;
    let reply = reply.unwrap();
    let (a, b) = hops(&mesh, TRACE).await;
    assert_eq!(a.parent_id(), PARENT, "A continues the caller's span");
    assert_eq!(b.parent_id(), a.span_id());
    assert_eq!(
        traceparent(&reply),
        (TRACE.into(), b.span_id(), "01".into())
    );
    assert_eq!(
        reply.headers.get("tracestate").map(String::as_str),
        Some("vendor=1")
    );
    assert_eq!(a.span.trace_state, "vendor=1");

    let b3_trace = "a".repeat(32);
    let (_, reply, _) = mesh
        .get(
            "/",
            &[
                ("x-b3-traceid", &b3_trace),
                ("x-b3-spanid", PARENT),
                ("x-b3-sampled", "1"),
            ],
        )
        .await;
    let reply = reply.unwrap();
    let (a, b) = hops(&mesh, &b3_trace).await;
    assert_eq!(a.parent_id(), PARENT);
    let seen = |name: &str| reply.headers.get(name).cloned().unwrap_or_default();
    assert_eq!(seen("x-b3-traceid"), b3_trace);
    assert_eq!(seen("x-b3-spanid"), b.span_id());
    assert_eq!(seen("x-b3-parentspanid"), a.span_id());
    assert_eq!(seen("x-b3-sampled"), "1");
    assert_eq!(traceparent(&reply).1, b.span_id(), "W3C goes along with B3");

    let single = "b".repeat(32);
    let (_, reply, _) = mesh
        .get("/", &[("b3", &format!("{single}-{PARENT}-1"))])
        .await;
    let (a, b) = hops(&mesh, &single).await;
    assert_eq!(a.parent_id(), PARENT);
    let expected = format!("{single}-{}-1-{}", b.span_id(), a.span_id());
    assert_eq!(reply.unwrap().headers.get("b3"), Some(&expected));

    // Not sampled upstream: the context goes on unsampled and no span is reported.
    let unsampled = "c".repeat(32);
    let (_, reply, _) = mesh
        .get(
            "/",
            &[("traceparent", &format!("00-{unsampled}-{PARENT}-00"))],
        )
        .await;
    let (trace, _, flags) = traceparent(&reply.unwrap());
    assert_eq!((trace.as_str(), flags.as_str()), (unsampled.as_str(), "00"));

    // Malformed: a new trace starts, the request goes through.
    let (status, reply, _) = mesh
        .get("/", &[("traceparent", "00-zz-garbage-01"), ("b3", "-")])
        .await;
    assert_eq!(status, 200);
    let (fresh, _, _) = traceparent(&reply.unwrap());
    assert_ne!(fresh, unsampled);
    hops(&mesh, &fresh).await;
    // Spans leave each proxy in order: the later trace is complete, so the unsampled one
    // would have arrived by now.
    let leaked: Vec<_> = mesh
        .collector
        .spans()
        .into_iter()
        .filter(|s| s.trace_id() == unsampled)
        .collect();
    assert!(leaked.is_empty(), "unsampled spans exported: {leaked:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_follows_the_percentage_and_the_snapshot_live() {
    let collector = Collector::start().await;
    let app = echo("v2").await;
    let proxy = Proxy::start_with(
        &outbound(app.addr(), &telemetry(Some(collector.addr), 25.0)),
        &A_FLAGS,
    );
    let entry = proxy.listener("outbound").await;
    let client = client();
    let requests = 400;
    let mut sampled = 0;
    for _ in 0..requests {
        let (_, _, body) = send(&client, entry, "GET", "/", &[("host", "reviews")]).await;
        let reply: mesh_echo::EchoReply = serde_json::from_slice(&body).unwrap();
        if traceparent(&reply).2 == "01" {
            sampled += 1;
        }
    }
    println!("25% sampling: {sampled} of {requests} requests sampled");
    // Binomial(400, 0.25): mean 100, standard deviation 8.7; this is over 4.5 of them.
    assert!(
        (60..=140).contains(&sampled),
        "{sampled} of {requests} sampled"
    );
    let spans = collector.wait(|_| true, sampled).await;
    assert_eq!(
        spans.len(),
        sampled,
        "one span per sampled request, no more"
    );

    // Tracing off: headers pass untouched, nothing is reported.
    proxy.write_snapshot(&outbound(app.addr(), ""));
    proxy.wait_applied(2).await;
    let (_, _, body) = send(&client, entry, "GET", "/", &[("host", "reviews")]).await;
    let reply: mesh_echo::EchoReply = serde_json::from_slice(&body).unwrap();
    assert!(
        !reply.headers.contains_key("traceparent"),
        "{:?}",
        reply.headers
    );
    assert_eq!(proxy.admin_json("/tracing").await["enabled"], false);

    // On again, everything sampled, to another collector.
    let other = Collector::start().await;
    proxy.write_snapshot(&outbound(app.addr(), &telemetry(Some(other.addr), 100.0)));
    proxy.wait_applied(3).await;
    for _ in 0..5 {
        send(&client, entry, "GET", "/", &[("host", "reviews")]).await;
    }
    other.wait(|_| true, 5).await;
    assert_eq!(
        collector.spans().len(),
        sampled,
        "the old collector got nothing new"
    );
    let status = proxy.admin_json("/tracing").await;
    assert_eq!(
        status["spec"]["collector"],
        other.addr.to_string(),
        "{status}"
    );
    assert_eq!(status["spec"]["samplingPercentage"], 100.0, "{status}");

    // A collector that is not host:port: the snapshot is refused, tracing stays as it was.
    let bad = "telemetry:\n  tracing: {samplingPercentage: 100, collector: \"http://otel:4317\"}\n";
    proxy.write_snapshot(&outbound(app.addr(), bad));
    let dump = proxy.wait_status(|s| s["rejected_count"] == 1).await;
    let reason = dump["status"]["last_rejection"].as_str().unwrap();
    assert!(
        reason.contains("telemetry.tracing.collector") && reason.contains("scheme"),
        "{reason}"
    );
    let status = proxy.admin_json("/tracing").await;
    assert_eq!(
        status["spec"]["collector"],
        other.addr.to_string(),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_reports_a_span_for_what_it_routes() {
    let collector = Collector::start().await;
    let app = echo("v2").await;
    let snapshot = outbound(app.addr(), &telemetry(Some(collector.addr), 100.0));
    let flags = [
        "--mode",
        "gateway",
        "--app",
        "istio-ingressgateway",
        "--namespace",
        "istio-system",
    ];
    let gateway = Proxy::start_with(&snapshot, &flags);
    let entry = gateway.listener("outbound").await;
    let (status, _, body) = send(&client(), entry, "GET", "/shop", &[("host", "reviews")]).await;
    assert_eq!(status, 200);
    let reply: mesh_echo::EchoReply = serde_json::from_slice(&body).unwrap();
    let (trace, parent, _) = traceparent(&reply);
    let spans = collector.trace(&trace, 1).await;
    let span = &spans[0];
    assert_eq!(
        span.span_id(),
        parent,
        "the app's parent is the gateway's span"
    );
    assert_eq!(span.service, "istio-ingressgateway.istio-system");
    assert_eq!(span.span.kind, SpanKind::Client as i32);
    assert_eq!(span.tag("http.url"), "http://reviews/shop");
    assert_eq!(
        span.tag("upstream_cluster"),
        format!("outbound|9080|v2|{REVIEWS}")
    );
    assert_eq!(
        gateway.admin_json("/tracing").await["node"]["gateway"],
        true
    );
}
