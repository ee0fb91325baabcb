//! Two sidecars on loopback: A's outbound listener sends `reviews` to B's inbound listener,
//! which hands it to an echo app; both report spans to a test collector.

use std::net::SocketAddr;

use mesh_echo::{EchoReply, EchoServer};

use super::collector::Collector;
use super::support::{Proxy, echo, send};

pub const REVIEWS: &str = "reviews.shop.svc.cluster.local";

/// `telemetry:` with tracing to `collector`, or nothing.
pub fn telemetry(collector: Option<SocketAddr>, percent: f64) -> String {
    match collector {
        Some(addr) => format!(
            "telemetry:\n  tracing: {{samplingPercentage: {percent}, collector: \"{addr}\", customTags: {{team: shop}}}}\n"
        ),
        None => String::new(),
    }
}

/// An outbound listener sending host `reviews` to `upstream` (subset v2).
pub fn outbound(upstream: SocketAddr, telemetry: &str) -> String {
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
    - name: reviews
      route: [{{destination: {{host: {REVIEWS}, subset: v2}}}}]
clusters:
- host: {REVIEWS}
  port: 9080
  endpoints: [{{address: "{upstream}", labels: {{version: v2}}}}]
  subsets: [{{name: v2, labels: {{version: v2}}}}]
{telemetry}"#
    )
}

/// A PERMISSIVE inbound listener handing everything to `app`.
pub fn inbound(app: SocketAddr, telemetry: &str) -> String {
    format!(
        r#"version: "1"
listeners:
- {{name: in, address: "127.0.0.1:0", routeConfig: inbound, inbound: {{mtls: PERMISSIVE}}}}
routeConfigs:
- name: inbound
  virtualHosts:
  - name: app
    domains: ["*"]
    routes:
    - name: app
      route: [{{destination: {{host: {REVIEWS}}}}}]
clusters:
- host: {REVIEWS}
  port: 9080
  endpoints: [{{address: "{app}"}}]
{telemetry}"#
    )
}

pub const A_FLAGS: [&str; 6] = [
    "--app",
    "productpage",
    "--app-version",
    "v1",
    "--namespace",
    "shop",
];

pub struct TwoHops {
    pub collector: Collector,
    /// Kept alive for the test's length.
    pub _app: EchoServer,
    pub a: Proxy,
    pub b: Proxy,
    pub entry: SocketAddr,
}

impl TwoHops {
    pub async fn start() -> TwoHops {
        let collector = Collector::start().await;
        let app = echo("v2").await;
        let tracing = telemetry(Some(collector.addr), 100.0);
        let b = Proxy::start_with(
            &inbound(app.addr(), &tracing),
            &[
                "--app",
                "reviews",
                "--app-version",
                "v2",
                "--namespace",
                "shop",
                "--node-id",
                "reviews-v2.shop",
            ],
        );
        let b_addr = b.listener("in").await;
        let a = Proxy::start_with(&outbound(b_addr, &tracing), &A_FLAGS);
        let entry = a.listener("outbound").await;
        TwoHops {
            collector,
            _app: app,
            a,
            b,
            entry,
        }
    }

    /// One GET to `reviews` through A: the status, the app's reply (JSON when it answered
    /// 2xx), and the body's length.
    pub async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Option<EchoReply>, usize) {
        let mut all = vec![("host", "reviews")];
        all.extend_from_slice(headers);
        let (status, _, body) =
            send(&super::support::client(), self.entry, "GET", path, &all).await;
        let reply = serde_json::from_slice(&body).ok();
        (status.as_u16(), reply, body.len())
    }
}

/// The `traceparent` the app saw, split: trace id, parent span id, flags.
pub fn traceparent(reply: &EchoReply) -> (String, String, String) {
    let value = reply
        .headers
        .get("traceparent")
        .unwrap_or_else(|| panic!("the app saw no traceparent: {:?}", reply.headers));
    let fields: Vec<&str> = value.split('-').collect();
    assert_eq!(fields.len(), 4, "{value}");
    (fields[1].into(), fields[2].into(), fields[3].into())
}
