//! The monitoring port (15014): Prometheus metrics and the debug views that explain what
//! pilot pushes — `/debug/syncz` (every proxy's push state), `/debug/config_dump?proxy=ID`
//! (what that proxy should run), `/debug/config_status` (every config problem and what
//! pilot did about it).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::syncz::Syncz;
use crate::xds::Generation;

pub struct Monitoring {
    pub metrics: PrometheusHandle,
    pub syncz: Arc<Syncz>,
    pub generations: watch::Receiver<Arc<Generation>>,
}

type Reply = Response<Full<Bytes>>;

pub async fn serve(listener: TcpListener, monitoring: Arc<Monitoring>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let monitoring = monitoring.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let reply = monitoring.handle(&req);
                async move { Ok::<_, Infallible>(reply) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Monitoring {
    fn handle(&self, req: &Request<Incoming>) -> Reply {
        match req.uri().path() {
            "/metrics" => {
                self.metrics.run_upkeep();
                text(StatusCode::OK, self.metrics.render())
            }
            "/debug/syncz" => json_reply(StatusCode::OK, &json!(self.syncz.all())),
            "/debug/config_status" => json_reply(StatusCode::OK, &self.config_status()),
            "/debug/config_dump" => self.config_dump(req.uri().query().unwrap_or_default()),
            "/ready" => text(StatusCode::OK, "ready\n".into()),
            _ => text(
                StatusCode::NOT_FOUND,
                "pilot: /metrics /debug/syncz /debug/config_dump?proxy=ID /debug/config_status\n"
                    .into(),
            ),
        }
    }

    fn config_status(&self) -> Value {
        let generation = self.generations.borrow().clone();
        let inputs = &generation.index.inputs;
        json!({
            "generation": generation.number,
            "objects": inputs.configs.len(),
            "services": inputs.registry.services.len(),
            "problems": inputs.status,
            "telemetryProblems": generation.index.telemetry_problems,
        })
    }

    /// What proxy `ID` should run now, assembled from the resources pilot would send it,
    /// exactly as the proxy assembles them.
    fn config_dump(&self, query: &str) -> Reply {
        let Some(id) = query.split('&').find_map(|p| p.strip_prefix("proxy=")) else {
            return text(
                StatusCode::BAD_REQUEST,
                "usage: /debug/config_dump?proxy=ID\n".into(),
            );
        };
        let Some(status) = self.syncz.all().into_iter().find(|s| s.id == id) else {
            return text(
                StatusCode::NOT_FOUND,
                format!("no connected proxy {id:?}\n"),
            );
        };
        let generation = self.generations.borrow().clone();
        let desired = generation.desired(&status.node);
        let resources: Vec<_> = desired.iter().map(|(_, r)| &r.resource).collect();
        let inbound = resources.iter().find_map(|r| match &r.kind {
            Some(mesh_proto::discovery::v1::resource::Kind::InboundPolicy(p)) => Some(json!({
                "peerAuthentications": parse(&p.peer_authentications_json),
                "authorizationPolicies": parse(&p.authorization_policies_json),
                "requestAuthentications": parse(&p.request_authentications_json),
            })),
            _ => None,
        });
        match mesh_proto::convert::decode_snapshot(&desired.version, resources) {
            Ok(snapshot) => json_reply(
                StatusCode::OK,
                &json!({
                    "proxy": status.node,
                    "generation": generation.number,
                    "version": desired.version,
                    "snapshot": snapshot,
                    "inbound": inbound,
                }),
            ),
            Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
        }
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn text(status: StatusCode, body: String) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply
}

fn json_reply(status: StatusCode, value: &Value) -> Reply {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    reply
}
