//! Admin (loopback): the live config, the proxy's view of its clusters and listeners, its
//! workload certificate (`/certs`, never the key), tracing (`/tracing`: the spec in force
//! and what became of the spans), plus `/quitquitquit`. Health (`/healthz/ready`) is served
//! on its own port.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::Config;
use crate::identity::CertificateManager;
use crate::listeners::Listeners;
use crate::state::State;
use crate::xds::PilotStatus;

/// Applies a log filter (`info`, `mesh_proxy=debug,warn`...) to the running proxy.
pub type LogControl = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

pub struct Admin {
    pub config: Config,
    pub log_control: LogControl,
    pub state: Arc<State>,
    pub listeners: Arc<Listeners>,
    /// The discovery stream, when the config comes from pilot.
    pub pilot: Option<Arc<PilotStatus>>,
    /// The workload certificate, when the proxy has an identity (`--ca-addr`).
    pub certs: Option<Arc<CertificateManager>>,
    /// Notified by `/quitquitquit`.
    pub quit: Arc<Notify>,
}

type Reply = Response<Full<Bytes>>;

/// Serves admin requests on `listener` forever.
pub async fn serve_admin(listener: TcpListener, admin: Arc<Admin>) {
    serve(listener, move |req| {
        let admin = admin.clone();
        async move { admin.handle(req) }
    })
    .await;
}

/// What readiness waits for.
#[derive(Clone)]
pub struct Health {
    pub state: Arc<State>,
    pub drain: crate::drain::Drain,
    /// With an identity, the first workload certificate too: without it no peer would
    /// accept this proxy's mTLS.
    pub certs: Option<Arc<CertificateManager>>,
    /// The app's own probes, rewritten by the injector to `/app-health/...`.
    pub app_probers: Arc<crate::app_probe::AppProbers>,
}

impl Health {
    /// `None` when ready, else why not.
    fn not_ready(&self) -> Option<&'static str> {
        if self.drain.is_draining() {
            Some("not ready: draining\n")
        } else if self.state.current().is_none() {
            Some("not ready: no config yet\n")
        } else if self.certs.as_ref().is_some_and(|c| c.current().is_none()) {
            Some("not ready: waiting for the workload certificate\n")
        } else {
            None
        }
    }
}

/// Serves `/healthz/ready`: 200 once a snapshot is applied (and, with an identity, the
/// first certificate has arrived), 503 before and while draining; and the app's probes
/// under `/app-health/` ([`crate::app_probe`]).
pub async fn serve_health(listener: TcpListener, health: Health) {
    serve(listener, move |req: Request<Incoming>| {
        let not_ready = health.not_ready();
        let app_probers = health.app_probers.clone();
        async move {
            let path = req.uri().path();
            if path.starts_with(crate::app_probe::PATH_PREFIX) {
                return match app_probers.probe(path).await {
                    Some(status) => text(status, ""),
                    None => text(StatusCode::NOT_FOUND, "no such app probe\n"),
                };
            }
            match (path, not_ready) {
                ("/healthz/ready", None) => text(StatusCode::OK, "ready\n"),
                ("/healthz/ready", Some(why)) => text(StatusCode::SERVICE_UNAVAILABLE, why),
                _ => text(StatusCode::NOT_FOUND, "not found\n"),
            }
        }
    })
    .await;
}

/// Serves `/stats/prometheus`.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<crate::metrics::Metrics>) {
    serve(listener, move |req: Request<Incoming>| {
        let metrics = metrics.clone();
        async move {
            if req.uri().path() != "/stats/prometheus" {
                return text(StatusCode::NOT_FOUND, "metrics: /stats/prometheus\n");
            }
            let mut reply = Response::new(Full::new(Bytes::from(metrics.render())));
            reply.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            reply
        }
    })
    .await;
}

async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let reply = handler(req);
                async move { Ok::<_, Infallible>(reply.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Admin {
    fn handle(&self, req: Request<Incoming>) -> Reply {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/config_dump") => self.json(self.config_dump()),
            (&Method::GET, "/routes") => self.json(self.routes()),
            (&Method::GET, "/clusters") => self.json(self.clusters()),
            (&Method::GET, "/listeners") => self.json(json!(self.listeners.bound())),
            (&Method::GET, "/certs") => self.certs(),
            (&Method::GET, "/tracing") => self.json(self.state.tracer.status()),
            (&Method::POST, "/logging") => {
                self.set_log_level(req.uri().query().unwrap_or_default())
            }
            (&Method::POST, "/quitquitquit") => {
                self.quit.notify_one();
                text(StatusCode::OK, "OK\n")
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "admin: /config_dump /routes /clusters /listeners /certs, POST /logging?level= /quitquitquit\n",
            ),
        }
    }

    fn set_log_level(&self, query: &str) -> Reply {
        let level = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("level="))
            .unwrap_or_default();
        if level.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                "usage: POST /logging?level=debug\n",
            );
        }
        match (self.log_control)(level) {
            Ok(()) => {
                tracing::info!(level, "log level changed");
                Response::new(Full::new(Bytes::from(format!("log level: {level}\n"))))
            }
            Err(error) => {
                let mut reply = Response::new(Full::new(Bytes::from(format!(
                    "invalid level {level:?}: {error}\n"
                ))));
                *reply.status_mut() = StatusCode::BAD_REQUEST;
                reply
            }
        }
    }

    fn json(&self, value: Value) -> Reply {
        let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
        let mut reply = Response::new(Full::new(Bytes::from(body)));
        reply.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        reply
    }

    /// The workload certificate as `meshctl proxy-config secret` shows it: identity, serial,
    /// validity, chain, trust bundle and the renewal's state. Never the key.
    fn certs(&self) -> Reply {
        let Some(manager) = &self.certs else {
            return text(
                StatusCode::NOT_FOUND,
                "no workload identity: mesh-proxy runs without --ca-addr\n",
            );
        };
        let mut view = match manager.current() {
            Some(cert) => json!(cert.view()),
            None => json!({ "identity": manager.identity(), "serial": null }),
        };
        view["renewal"] = json!(manager.status());
        self.json(view)
    }

    fn config_dump(&self) -> Value {
        let runtime = self.state.current();
        json!({
            "proxy": self.config,
            "status": self.state.status_snapshot(),
            "pilot": self.pilot.as_ref().map(|p| p.view()),
            "version": runtime.as_ref().map(|r| r.config.version.clone()),
            "snapshot": runtime.as_ref().map(|r| &r.snapshot),
            "accessLog": crate::access_log::status(self.config.access_log),
            "upstreamTls": runtime.as_ref().map(|r| r.config.clusters()
                .map(|c| (c.name(None), crate::tls::cluster_view(c)))
                .collect::<serde_json::Map<_, _>>()),
        })
    }

    fn routes(&self) -> Value {
        let runtime = self.state.current();
        json!(runtime.as_ref().map(|r| &r.snapshot.route_configs))
    }

    fn clusters(&self) -> Value {
        let Some(runtime) = self.state.current() else {
            return json!([]);
        };
        let now = tokio::time::Instant::now();
        let clusters: Vec<Value> = runtime
            .config
            .clusters()
            .map(|cluster| {
                let health = runtime.health(cluster);
                let endpoints: Vec<Value> = cluster
                    .endpoints
                    .iter()
                    .map(|e| {
                        let view = health.map(|h| h.outliers.view(e.address, now));
                        let hostname = cluster
                            .dns
                            .as_ref()
                            .and_then(|dns| self.state.dns.hostname_of(dns, e.address));
                        json!({
                            "address": e.address,
                            "hostname": hostname,
                            "labels": e.labels,
                            "weight": e.weight,
                            "activeRequests": self.state.loads.in_flight(e.address),
                            "health": if view.as_ref().is_some_and(|v| v.ejected) { "ejected" } else { "healthy" },
                            "ejections": view.map_or(0, |v| v.ejections),
                        })
                    })
                    .collect();
                json!({
                    "name": cluster.name(None),
                    "lb": format!("{:?}", cluster.lb),
                    "connectTimeout": format!("{:?}", cluster.connect_timeout),
                    "subsets": cluster.subsets.iter().map(|s| &s.subset.name).collect::<Vec<_>>(),
                    "endpoints": endpoints,
                    "circuitBreakers": {
                        "maxConnections": cluster.limits.max_connections,
                        "maxPendingRequests": cluster.limits.max_pending_requests,
                        "maxRequests": cluster.limits.max_requests,
                        "maxRetries": cluster.limits.max_retries,
                        "activeRequests": health.map_or(0, |h| h.circuit.active()),
                        "pendingRequests": health.map_or(0, |h| h.circuit.pending()),
                    },
                    "outlierDetection": cluster.outlier.as_ref().map(|o| format!("{o:?}")),
                    "tls": crate::tls::cluster_view(cluster),
                    "dns": cluster.dns.as_ref().map(|dns| self.dns_view(dns)),
                })
            })
            .collect();
        json!(clusters)
    }
}

impl Admin {
    /// A DNS cluster's names: the last good answer of each, and its failures.
    fn dns_view(&self, dns: &mesh_core::snapshot::DnsSpec) -> Value {
        let names: Vec<Value> = dns
            .endpoints
            .iter()
            .map(|target| {
                json!({
                    "hostname": target.hostname,
                    "port": target.port,
                    "addresses": self.state.dns.addresses(&target.hostname),
                    "resolution": self.state.dns.view(&target.hostname),
                })
            })
            .collect();
        json!({ "lookup": dns.lookup, "names": names })
    }
}

fn text(status: StatusCode, body: &'static str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *reply.status_mut() = status;
    reply
}
