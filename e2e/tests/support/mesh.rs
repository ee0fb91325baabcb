//! Two sidecars that talk mTLS, configured by pilot and identified by citadel: a caller
//! (`productpage`) whose outbound listener originates mTLS, and a callee (`reviews`) whose
//! STRICT inbound listener verifies it, with an echo app behind it. Also a load driver that
//! keeps requests flowing through them and counts every failure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::{Citadel, Pilot, Proxy, REVIEWS_SERVICE, echo, wait_for};

pub const CALLER_ID: &str = "spiffe://cluster.local/ns/shop/sa/productpage";
pub const CALLEE_ID: &str = "spiffe://cluster.local/ns/shop/sa/reviews";

/// The service, its endpoint on 127.0.0.2 (labelled `tlsMode: istio`), the callee's inbound
/// listener in front of `app`, and mTLS `mode` for the namespace.
pub fn config(inbound_port: u16, app: SocketAddr, mode: &str) -> String {
    format!(
        r#"{REVIEWS_SERVICE}---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: reviews-1, namespace: shop}}
spec:
  address: 127.0.0.2
  ports: {{http: {inbound_port}}}
  labels: {{app: reviews, security.istio.io/tlsMode: istio}}
  serviceAccount: reviews
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: reviews, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: reviews}}}}
  ingress:
  - port: {{number: {inbound_port}, name: http, protocol: HTTP}}
    bind: 127.0.0.2
    defaultEndpoint: {app}
    captureMode: NONE
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: shop}}
spec: {{mtls: {{mode: {mode}}}}}
"#
    )
}

/// A free port on 127.0.0.2 for the callee's inbound listener.
pub fn free_port() -> u16 {
    super::free_addr("127.0.0.2").port()
}

/// A sidecar for service account `name` in `shop`, identified by `citadel`.
pub fn sidecar(
    pilot: &Pilot,
    citadel: &Citadel,
    name: &str,
    labels: &str,
    token: &str,
    extra: &[&str],
) -> Proxy {
    let pilot_addr = pilot.grpc.to_string();
    let identity = citadel.identity_args(token);
    let mut args = vec![
        "--pilot",
        &pilot_addr,
        "--outbound-addr",
        "127.0.0.1:0",
        "--labels",
        labels,
        "--service-account",
        name,
    ];
    args.extend(identity.iter().map(String::as_str));
    args.extend_from_slice(extra);
    Proxy::start_args(name, "shop", &args)
}

/// The whole mesh, synced; fields drop (and processes stop) in order.
pub struct Mesh {
    pub caller: Proxy,
    pub callee: Proxy,
    pub pilot: Pilot,
    pub citadel: Citadel,
    pub app: mesh_echo::EchoServer,
    /// The callee's inbound port on 127.0.0.2.
    pub port: u16,
}

impl Mesh {
    /// STRICT mTLS; `citadel_flags` and `proxy_flags` are added to the defaults.
    pub async fn start(citadel_flags: &[&str], proxy_flags: &[&str]) -> Mesh {
        let app = echo("v1").await;
        let port = free_port();
        let citadel = Citadel::start_args(
            &[
                ("productpage-token", "shop", "productpage"),
                ("reviews-token", "shop", "reviews"),
            ],
            citadel_flags,
        );
        let pilot = Pilot::start(&[("mesh.yaml", &config(port, app.addr(), "STRICT"))]);
        let caller = sidecar(
            &pilot,
            &citadel,
            "productpage",
            "app=productpage",
            "productpage-token",
            proxy_flags,
        );
        let callee = sidecar(
            &pilot,
            &citadel,
            "reviews",
            "app=reviews",
            "reviews-token",
            proxy_flags,
        );
        pilot.wait_all_synced(&[&caller.id, &callee.id]).await;
        Mesh {
            caller,
            callee,
            pilot,
            citadel,
            app,
            port,
        }
    }

    /// The caller's outbound listener, once one request has gone through both sidecars;
    /// returns that request's echo reply.
    pub async fn first_request(&self) -> (SocketAddr, Value) {
        let outbound = self.caller.outbound().await;
        let body = wait_for("a request through both sidecars", || async {
            let (status, body) = super::get(outbound, "reviews:9080", "/hello").await;
            (status == StatusCode::OK).then_some(body)
        })
        .await;
        (outbound, serde_json::from_slice(&body).unwrap())
    }
}

/// The `x-forwarded-client-cert` the app saw, from an echo reply.
pub fn xfcc(reply: &Value) -> &str {
    reply["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap_or_default()
}

/// A proxy's `/certs`: the leaf's serial and issuer, and the trust bundle's subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certs {
    pub serial: String,
    pub issuer: String,
    pub roots: Vec<String>,
}

pub async fn certs(proxy: &Proxy) -> Option<Certs> {
    let view = proxy.admin_json("/certs").await;
    let serial = view["serial"].as_str()?.to_owned();
    let issuer = view["chain"][0]["issuer"].as_str()?.to_owned();
    let roots = view["trust_bundle"]
        .as_array()?
        .iter()
        .filter_map(|r| r["subject"].as_str().map(str::to_owned))
        .collect();
    Some(Certs {
        serial,
        issuer,
        roots,
    })
}

/// `mesh_cert_renewals_total{result="success"}` from a proxy's metrics port.
pub async fn renewals(proxy: &Proxy) -> u64 {
    let (status, body) = super::get(proxy.metrics, "metrics", "/stats/prometheus").await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with("mesh_cert_renewals_total") && l.contains(r#"result="success""#))
        .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// What the load driver saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub sent: u64,
    pub fresh: u64,
    pub kept_alive: u64,
    /// Each failed request: what went wrong.
    pub failures: Vec<String>,
}

/// Requests through the caller's outbound listener, on several tasks, until stopped: some
/// open a fresh connection per request, some keep one alive. A request succeeds when the
/// echo answers 200 and saw the caller's SPIFFE ID in `x-forwarded-client-cert`.
pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
}

impl Load {
    pub fn start(outbound: SocketAddr, fresh: usize, kept_alive: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for n in 0..fresh + kept_alive {
            let keep = n >= fresh;
            let stop = stop.clone();
            let sent = sent.clone();
            tasks.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut http = client(keep);
                while !stop.load(Ordering::Relaxed) {
                    if !keep {
                        http = client(false);
                    }
                    if let Err(e) = one(&http, outbound).await {
                        tally.failures.push(format!(
                            "{} request #{}: {e}",
                            if keep { "kept-alive" } else { "fresh" },
                            tally.sent
                        ));
                    }
                    tally.sent += 1;
                    if keep {
                        tally.kept_alive += 1;
                    } else {
                        tally.fresh += 1;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                tally
            }));
        }
        Load { stop, sent, tasks }
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits until `more` further requests have been sent (whatever their outcome).
    pub async fn wait_for_more(&self, more: u64) {
        let target = self.sent() + more;
        wait_for("more requests", || async {
            (self.sent() >= target).then_some(())
        })
        .await;
    }

    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for task in self.tasks {
            let tally = task.await.unwrap();
            total.sent += tally.sent;
            total.fresh += tally.fresh;
            total.kept_alive += tally.kept_alive;
            total.failures.extend(tally.failures);
        }
        total
    }
}

fn client(keep_alive: bool) -> Client<HttpConnector, Full<Bytes>> {
    let mut builder = Client::builder(TokioExecutor::new());
    if !keep_alive {
        builder.pool_max_idle_per_host(0);
    }
    builder.build(HttpConnector::new())
}

async fn one(
    client: &Client<HttpConnector, Full<Bytes>>,
    outbound: SocketAddr,
) -> Result<(), String> {
    let request = Request::get(format!("http://{outbound}/load"))
        .header("host", "reviews:9080")
        .body(Full::default())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .map_err(|_| "body timed out".to_owned())?
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    if status != StatusCode::OK {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let reply: Value =
        serde_json::from_slice(&body).map_err(|e| format!("not the echo's JSON: {e}"))?;
    let xfcc = xfcc(&reply);
    if !xfcc.contains(&format!("URI={CALLER_ID}")) {
        return Err(format!(
            "not through mTLS: x-forwarded-client-cert {xfcc:?}"
        ));
    }
    Ok(())
}
