//! Telemetry end to end, as issue 10 asks: a real pilot on a config directory, a sidecar and
//! an echo app. With no Telemetry the proxy writes no access log; a Telemetry selecting the
//! workload turns JSON lines on, each with every field of Envoy's default format and the
//! request's own values; disabling it in the file turns them off again, all live. A
//! mesh-wide Telemetry naming a tracing provider of the mesh config reaches the proxy as
//! its collector and sampling.

#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use support::{Lines, Pilot, Proxy, echo, reviews_at, wait_for};

/// Every key of Envoy's default access log format, and the peers' identities.
const FIELDS: [&str; 26] = [
    "start_time",
    "method",
    "path",
    "protocol",
    "response_code",
    "response_flags",
    "response_code_details",
    "connection_termination_details",
    "upstream_transport_failure_reason",
    "bytes_received",
    "bytes_sent",
    "duration",
    "x_envoy_upstream_service_time",
    "x_forwarded_for",
    "user_agent",
    "request_id",
    "authority",
    "upstream_host",
    "upstream_cluster",
    "upstream_local_address",
    "downstream_local_address",
    "downstream_remote_address",
    "requested_server_name",
    "route_name",
    "downstream_peer_principal",
    "upstream_peer_principal",
];

const HOST: &str = "reviews:9080";

/// productpage's access logging, on (`disabled: false`) or off.
fn access_logging(disabled: bool) -> String {
    format!(
        r#"
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {{name: productpage-logs, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: productpage}}}}
  accessLogging:
  - providers: [{{name: envoy}}]
    disabled: {disabled}
"#
    )
}

/// A sidecar whose stdout (access log) and stderr (logs) lines are kept.
struct Sidecar {
    proxy: Proxy,
    stdout: Lines,
    stderr: Lines,
}

impl Sidecar {
    fn start(pilot: &Pilot) -> Sidecar {
        let pilot_addr = pilot.grpc.to_string();
        let (proxy, stdout, stderr) = Proxy::start_kept(
            "productpage",
            "shop",
            "info",
            &[
                "--labels",
                "app=productpage",
                "--pilot",
                &pilot_addr,
                "--outbound-addr",
                "127.0.0.1:0",
            ],
        );
        Sidecar {
            proxy,
            stdout,
            stderr,
        }
    }

    async fn config_dump(&self) -> Value {
        self.proxy.admin_json("/config_dump").await
    }

    /// Waits until the applied config has access logging `on`.
    async fn wait_logging(&self, on: bool) {
        wait_for(&format!("access logging {on}"), || async {
            let dump = self.config_dump().await;
            (dump["accessLog"]["enabled"] == on).then_some(())
        })
        .await;
    }

    /// The access log lines so far, parsed; a line that is not JSON fails the test.
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
            })
            .collect()
    }

    async fn line_for(&self, request_id: &str) -> Value {
        wait_for(&format!("the line of {request_id}"), || async {
            self.lines()
                .into_iter()
                .find(|l| l["request_id"] == request_id)
        })
        .await
    }
}

/// One GET through the outbound listener with a known request id and client headers.
async fn call(outbound: SocketAddr, request_id: &str) -> StatusCode {
    let client = support::client();
    let request = Request::get(format!("http://{outbound}/known?x=1"))
        .header("host", HOST)
        .header("x-request-id", request_id)
        .header("user-agent", "access-log-test/1")
        .header("x-forwarded-for", "203.0.113.7")
        .body(Full::default())
        .unwrap();
    let response = tokio::time::timeout(support::DEADLINE, client.request(request))
        .await
        .expect("request timed out")
        .expect("request failed");
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

#[tokio::test]
async fn telemetry_turns_access_logs_on_and_off_live() {
    let app = echo("v1").await;
    let pilot = Pilot::start(&[("services.yaml", &reviews_at(app.addr().port()))]);
    let sidecar = Sidecar::start(&pilot);
    let outbound = sidecar.proxy.outbound().await;

    // No Telemetry: requests are served, no line is written.
    assert_eq!(call(outbound, "before-telemetry").await, StatusCode::OK);

    pilot.write("telemetry.yaml", &access_logging(false));
    sidecar.wait_logging(true).await;
    let sources = &sidecar.config_dump().await["snapshot"]["telemetry"]["sources"];
    assert_eq!(*sources, serde_json::json!(["shop/productpage-logs"]));
    assert_eq!(call(outbound, "known-request-1").await, StatusCode::OK);
    let line = sidecar.line_for("known-request-1").await;
    println!("access log line: {line}");
    for field in FIELDS {
        assert!(line.get(field).is_some(), "{field} missing from {line}");
    }
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/known?x=1");
    assert_eq!(line["protocol"], "HTTP/1.1");
    assert_eq!(line["response_code"], 200);
    assert_eq!(line["response_flags"], "-");
    assert_eq!(line["response_code_details"], "via_upstream");
    assert_eq!(line["authority"], HOST);
    assert_eq!(line["upstream_host"], app.addr().to_string());
    assert_eq!(
        line["upstream_cluster"],
        "outbound|||reviews.shop.svc.cluster.local"
    );
    assert_eq!(line["user_agent"], "access-log-test/1");
    assert_eq!(line["x_forwarded_for"], "203.0.113.7");
    assert!(line["bytes_sent"].as_u64().unwrap() > 0, "{line}");
    assert!(line["duration"].is_u64(), "{line}");
    assert!(
        line["start_time"].as_str().unwrap().ends_with('Z'),
        "{line}"
    );
    assert!(line["downstream_remote_address"].is_string(), "{line}");
    assert!(
        line["x_envoy_upstream_service_time"]
            .as_str()
            .is_some_and(|ms| ms.parse::<u64>().is_ok()),
        "{line}"
    );

    // Disabled in the file: lines stop.
    pilot.write("telemetry.yaml", &access_logging(true));
    sidecar.wait_logging(false).await;
    assert_eq!(call(outbound, "after-disable").await, StatusCode::OK);
    // On again: this request's line proves the stream is read past the disabled one.
    pilot.write("telemetry.yaml", &access_logging(false));
    sidecar.wait_logging(true).await;
    assert_eq!(call(outbound, "known-request-2").await, StatusCode::OK);
    sidecar.line_for("known-request-2").await;

    let ids: Vec<String> = sidecar
        .lines()
        .iter()
        .map(|l| l["request_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        ids,
        ["known-request-1", "known-request-2"],
        "only requests made while the Telemetry had logging on are logged"
    );
    let changes = sidecar
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("telemetry changed"))
        .count();
    assert!(
        changes >= 3,
        "one log line per telemetry change, saw {changes}"
    );
    println!(
        "access log: {} lines, {changes} telemetry changes logged",
        ids.len()
    );
}

#[tokio::test]
async fn a_mesh_wide_tracing_provider_reaches_the_proxy() {
    let mesh_config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        mesh_config.path(),
        "extensionProviders:\n- name: otel\n  opentelemetry: {service: otel-collector.observability, port: 4317}\n",
    )
    .unwrap();
    let telemetry = r#"
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: mesh-default, namespace: mesh-system}
spec:
  tracing:
  - providers: [{name: otel}]
    randomSamplingPercentage: 12.5
    customTags:
      cluster: {literal: {value: east}}
"#;
    let app = echo("v1").await;
    let pilot = Pilot::start_with(
        &[
            ("services.yaml", &reviews_at(app.addr().port())),
            ("telemetry.yaml", telemetry),
        ],
        "127.0.0.1:0",
        &["--mesh-config", mesh_config.path().to_str().unwrap()],
    );
    let sidecar = Sidecar::start(&pilot);
    let tracing = wait_for("the tracing config", || async {
        let dump = sidecar.config_dump().await;
        let tracing = &dump["snapshot"]["telemetry"]["tracing"];
        (!tracing.is_null()).then(|| tracing.clone())
    })
    .await;
    assert_eq!(tracing["collector"], "otel-collector.observability:4317");
    assert_eq!(tracing["samplingPercentage"], 12.5);
    assert_eq!(tracing["customTags"]["cluster"], "east");
    let dump = sidecar.config_dump().await;
    assert_eq!(dump["snapshot"]["telemetry"]["accessLogging"], false);
    assert_eq!(
        dump["snapshot"]["telemetry"]["sources"],
        serde_json::json!(["mesh-system/mesh-default"])
    );
}

#[tokio::test]
async fn a_telemetry_naming_an_unknown_provider_is_refused_by_name() {
    let telemetry = r#"
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: traced, namespace: shop}
spec:
  tracing:
  - providers: [{name: zipkin}]
"#;
    let pilot = Pilot::start(&[("telemetry.yaml", telemetry)]);
    let status = pilot.json("/debug/config_status").await;
    let problems = status["telemetryProblems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{status}");
    let problem = &problems[0];
    assert_eq!(
        problem["field"], "spec.tracing[0].providers[0].name",
        "{problem}"
    );
    assert!(
        problem["message"]
            .as_str()
            .unwrap()
            .contains("no provider named \"zipkin\""),
        "{problem}"
    );
    assert_eq!(problem["origin"]["name"], "traced", "{problem}");
}
