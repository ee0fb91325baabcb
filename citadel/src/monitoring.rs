//! The monitoring port (15015): `/metrics` (Prometheus), `/ready` (200 while the CA can
//! sign), `/config` (the settings in effect). Nothing here can reach a key.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::ca::Authority;

pub struct Monitoring {
    pub metrics: PrometheusHandle,
    pub authority: watch::Receiver<Arc<Authority>>,
    pub config_json: String,
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
            "/ready" => {
                if self.authority.borrow().is_valid_at(SystemTime::now()) {
                    text(StatusCode::OK, "ready\n".into())
                } else {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the CA's signing certificate is not valid now\n".into(),
                    )
                }
            }
            "/config" => text(StatusCode::OK, format!("{}\n", self.config_json)),
            _ => text(
                StatusCode::NOT_FOUND,
                "citadel: /metrics /ready /config\n".into(),
            ),
        }
    }
}

fn text(status: StatusCode, body: String) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply
}
