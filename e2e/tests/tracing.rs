//! Tracing through pilot, as issue 10 asks: a mesh-wide Telemetry naming an OpenTelemetry
//! provider of the mesh config turns a sidecar's spans on, to a real OTLP receiver; a
//! workload's own Telemetry overrides its sampling; removing them turns tracing off. All
//! live, from a config directory pilot watches.

#![allow(clippy::unwrap_used)]

mod support;

#[allow(dead_code)]
#[path = "../../proxy/tests/tracing/collector.rs"]
mod collector;

use collector::Collector;
use serde_json::Value;
use support::{Pilot, Proxy, echo, get, reviews_at, wait_for};

const HOST: &str = "reviews:9080";

const MESH_WIDE: &str = r#"
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: mesh-system}
spec:
  tracing:
  - providers: [{name: otel}]
    randomSamplingPercentage: 100
    customTags:
      cluster: {literal: {value: east}}
"#;

const PRODUCTPAGE_UNSAMPLED: &str = r#"
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: productpage, namespace: shop}
spec:
  selector: {matchLabels: {app: productpage}}
  tracing:
  - randomSamplingPercentage: 0
"#;

async fn wait_tracing(proxy: &Proxy, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, || async {
        let status = proxy.admin_json("/tracing").await;
        done(&status).then_some(status)
    })
    .await
}

async fn calls(outbound: std::net::SocketAddr, count: usize) {
    for _ in 0..count {
        let (status, _) = get(outbound, HOST, "/").await;
        assert_eq!(status, http::StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_follows_telemetry_from_pilot_mesh_wide_and_per_workload() {
    let receiver = Collector::start().await;
    let mesh_config = tempfile::NamedTempFile::new().unwrap();
    let provider = format!(
        "extensionProviders:\n- name: otel\n  opentelemetry: {{service: 127.0.0.1, port: {}}}\n",
        receiver.addr.port()
    );
    std::fs::write(mesh_config.path(), provider).unwrap();
    let app = echo("v1").await;
    let pilot = Pilot::start_with(
        &[
            ("services.yaml", &reviews_at(app.addr().port())),
            ("telemetry.yaml", MESH_WIDE),
        ],
        "127.0.0.1:0",
        &["--mesh-config", mesh_config.path().to_str().unwrap()],
    );
    let pilot_addr = pilot.grpc.to_string();
    let flags = [
        "--pilot",
        &pilot_addr,
        "--outbound-addr",
        "127.0.0.1:0",
        "--labels",
        "app=productpage",
        "--app",
        "productpage",
    ];
    let proxy = Proxy::start_args("productpage-v1", "shop", &flags);
    let outbound = proxy.outbound().await;
    let status = wait_tracing(&proxy, "tracing on", |s| s["enabled"] == true).await;
    assert_eq!(
        status["spec"]["collector"],
        receiver.addr.to_string(),
        "{status}"
    );

    calls(outbound, 10).await;
    let spans = receiver.wait(|_| true, 10).await;
    for span in &spans {
        assert_eq!(span.service, "productpage.shop");
        assert_eq!(span.tag("cluster"), "east", "the custom tag");
        assert_eq!(
            span.tag("upstream_cluster"),
            "outbound|9080||reviews.shop.svc.cluster.local"
        );
        assert_eq!(span.tag("node_id"), "productpage-v1.shop");
    }

    // The workload's own Telemetry: sampling 0 for productpage, provider inherited.
    pilot.write("productpage.yaml", PRODUCTPAGE_UNSAMPLED);
    wait_tracing(&proxy, "sampling 0", |s| {
        s["spec"]["samplingPercentage"] == 0.0
    })
    .await;
    calls(outbound, 20).await;
    // A caller's sampled decision is still honoured; its span arriving shows the earlier
    // requests' would have, had there been any.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    let client = support::client();
    let request = http::Request::get(format!("http://{outbound}/"))
        .header("host", HOST)
        .header("traceparent", &traceparent)
        .body(Default::default())
        .unwrap();
    assert_eq!(client.request(request).await.unwrap().status(), 200);
    receiver.trace(trace, 1).await;
    assert_eq!(
        receiver.spans().len(),
        11,
        "unsampled requests reported nothing"
    );

    // Both Telemetry resources gone: tracing off.
    pilot.remove("productpage.yaml");
    pilot.remove("telemetry.yaml");
    wait_tracing(&proxy, "tracing off", |s| s["enabled"] == false).await;
    calls(outbound, 5).await;
    println!("spans received: {}", receiver.spans().len());
}
