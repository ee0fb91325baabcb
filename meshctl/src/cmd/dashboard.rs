//! `meshctl dashboard`: a web page of the live mesh, served by meshctl itself. A task
//! measures the mesh every `--interval` (the sidecars' own metrics locally, Prometheus
//! with `--prometheus URL`) and reads the routes in force from the sidecars' admin ports;
//! the page (plain HTML, JS and SVG compiled into meshctl) polls the JSON API:
//!
//! ```text
//! GET /api/graph      nodes (workloads) and edges (rps, success, p99, mTLS) of the window
//! GET /api/services   golden metrics per service
//! GET /api/workloads  golden metrics per workload (what `meshctl stat` prints)
//! GET /api/routes     the VirtualServices in force, per host, and which sidecars run them
//!                     (on Kubernetes: the cluster's VirtualServices, every 8 measurements)
//! ```

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::CommandError;
use super::local::StateArgs;
use super::stat::parse_duration;
use crate::Status;
use crate::observe::ObserveError;
use crate::observe::routes::{from_config, in_force};
use crate::observe::scrape::Target;
use crate::observe::source::{Measured, Source};

const INDEX: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/style.css");

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Where to serve the page (port 0: any free port; the URL is printed)
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,

    /// Print the URL only; do not start a browser
    #[arg(long)]
    pub no_open: bool,

    /// How often to measure
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Rates and latencies are over this much of the recent past
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub window: Duration,

    /// Read the metrics from Prometheus (Kubernetes), e.g. http://localhost:9090
    #[arg(long, env = "MESH_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus: Option<String>,

    #[command(flatten)]
    pub state: StateArgs,
}

/// What the API serves: the last measurement, as JSON documents.
#[derive(Default)]
struct Latest {
    graph: Value,
    services: Value,
    workloads: Value,
    routes: Value,
    measurements: u64,
}

pub fn run(args: &DashboardArgs, out: &mut impl Write) -> Result<Status, CommandError> {
    super::top::runtime()?.block_on(async {
        let source = Source::open(&args.state, args.prometheus.as_deref(), args.window)?;
        let listener = TcpListener::bind(args.addr)
            .await
            .map_err(|source| ObserveError::Bind {
                addr: args.addr,
                source,
            })?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}/");
        writeln!(out, "dashboard: {url}")?;
        out.flush()?;
        if !args.no_open {
            open_browser(&url);
        }
        let latest = Arc::new(Mutex::new(Latest::default()));
        tokio::spawn(measure_forever(source, args.interval, latest.clone()));
        tokio::select! {
            () = serve(listener, latest) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(Status::Success)
    })
}

fn open_browser(url: &str) {
    // Best effort: without a desktop the URL printed is the way in.
    let _ = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Reading every VirtualService of a cluster is heavier than a scrape: once in this many
/// measurements.
const CLUSTER_ROUTES_EVERY: u64 = 8;

async fn measure_forever(mut source: Source, interval: Duration, latest: Arc<Mutex<Latest>>) {
    let mut measurements = 0u64;
    loop {
        // The first window is one interval, so the page has numbers soon; later ones span
        // --window.
        let measured = source.measure(interval).await;
        let routes = match &source {
            Source::Local { targets, .. } => Some(sidecar_routes(targets).await),
            Source::Prometheus { .. } if measurements.is_multiple_of(CLUSTER_ROUTES_EVERY) => {
                Some(cluster_routes().await)
            }
            Source::Prometheus { .. } => None,
        };
        measurements += 1;
        {
            let mut now = latest.lock().unwrap_or_else(|p| p.into_inner());
            now.measurements = measurements;
            match measured {
                Ok(measured) => now.update(&measured),
                Err(error) => now.graph = json!({"ready": false, "errors": [error.to_string()]}),
            }
            if let Some(routes) = routes {
                now.routes = routes;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

impl Latest {
    fn update(&mut self, measured: &Measured) {
        let stats = &measured.stats;
        let nodes: Vec<Value> = stats
            .nodes
            .iter()
            .map(|node| {
                let mut value = json!(node);
                if let Some(w) = stats.workloads.iter().find(|w| w.workload.id() == node.id) {
                    value["workload"] = json!(w);
                }
                value
            })
            .collect();
        self.graph = json!({
            "ready": true,
            "windowSeconds": stats.window_seconds,
            "measurements": self.measurements,
            "nodes": nodes,
            "edges": stats.edges,
            "errors": measured.errors,
        });
        self.services = json!({"services": stats.services});
        self.workloads = json!({"workloads": stats.workloads});
    }
}

/// The VirtualServices in force on the local sidecars, from their admin ports.
async fn sidecar_routes(targets: &[Target]) -> Value {
    let mut dumps = Vec::new();
    let mut errors = Vec::new();
    for target in targets {
        match super::proxy_config::fetch::json(target.admin, "/config_dump").await {
            Ok(dump) => dumps.push((target.workload.name.clone(), dump)),
            Err(error) => errors.push(format!(
                "{}: admin {}/config_dump: {error}",
                target.workload.name, target.admin
            )),
        }
    }
    json!({"routes": in_force(&dumps), "errors": errors})
}

/// On Kubernetes (Prometheus does not know routes): the cluster's VirtualServices, read
/// with the kubeconfig as `meshctl analyze` reads them.
async fn cluster_routes() -> Value {
    if !super::proxy_config::kubernetes::kubeconfig_available() {
        let why = "no kubeconfig: the routes are read from the cluster's VirtualServices";
        return json!({"routes": [], "errors": [why]});
    }
    let read = async {
        let client = super::proxy_config::kubernetes::client()
            .await
            .map_err(|e| e.to_string())?;
        super::analyze::cluster::read(&client, None)
            .await
            .map_err(|e| e.to_string())
    };
    match read.await {
        Ok(objects) => json!({"routes": from_config(&objects.set), "errors": []}),
        Err(error) => json!({"routes": [], "errors": [error]}),
    }
}

async fn serve(listener: TcpListener, latest: Arc<Mutex<Latest>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let latest = latest.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let reply = answer(&req, &latest);
                async move { Ok::<_, Infallible>(reply) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(req: &Request<Incoming>, latest: &Mutex<Latest>) -> Response<Full<Bytes>> {
    let latest = latest.lock().unwrap_or_else(|p| p.into_inner());
    let not_yet = || json!({"ready": false});
    let document = |value: &Value| {
        if value.is_null() {
            not_yet()
        } else {
            value.clone()
        }
    };
    match req.uri().path() {
        "/" | "/index.html" => reply("text/html; charset=utf-8", INDEX.into()),
        "/app.js" => reply("text/javascript; charset=utf-8", SCRIPT.into()),
        "/style.css" => reply("text/css; charset=utf-8", STYLE.into()),
        "/api/graph" => json_reply(&document(&latest.graph)),
        "/api/services" => json_reply(&document(&latest.services)),
        "/api/workloads" => json_reply(&document(&latest.workloads)),
        "/api/routes" => json_reply(&document(&latest.routes)),
        _ => {
            let mut response = reply(
                "text/plain; charset=utf-8",
                "meshctl dashboard: / /api/graph /api/services /api/workloads /api/routes\n".into(),
            );
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

fn json_reply(value: &Value) -> Response<Full<Bytes>> {
    reply("application/json", value.to_string())
}

fn reply(content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
