//! The app's kubelet probes, through the health port. The injector rewrites a pod's HTTP
//! probes to `/app-health/<container>/livez|readyz|startupz` on 15021 (never captured) and
//! passes the originals in `MESH_KUBE_APP_PROBERS`, a JSON object from that path to
//! `{"httpGet": {"path", "port", "host"?, "httpHeaders"?}, "timeoutSeconds"}`; the proxy
//! asks the app over loopback, from its own uid, so the request is not redirected and no
//! PeerAuthentication applies, and answers with the app's status (503 when unreachable).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

pub const PROBERS_ENV: &str = "MESH_KUBE_APP_PROBERS";
pub const PATH_PREFIX: &str = "/app-health/";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Prober {
    http_get: HttpGet,
    timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpGet {
    #[serde(default)]
    path: String,
    port: u16,
    host: Option<String>,
    #[serde(default)]
    http_headers: Vec<HttpHeader>,
}

#[derive(Debug, Deserialize)]
struct HttpHeader {
    name: String,
    value: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{PROBERS_ENV} is not the injector's probe list: {0}")]
pub struct ProbersError(#[from] serde_json::Error);

/// The app's probes by rewritten path; empty when the pod has none.
#[derive(Debug, Default)]
pub struct AppProbers {
    probers: HashMap<String, Prober>,
}

impl AppProbers {
    pub fn from_env() -> Result<Self, ProbersError> {
        match std::env::var(PROBERS_ENV) {
            Ok(json) if !json.trim().is_empty() => Self::parse(&json),
            _ => Ok(Self::default()),
        }
    }

    pub fn parse(json: &str) -> Result<Self, ProbersError> {
        Ok(Self {
            probers: serde_json::from_str(json)?,
        })
    }

    /// The app's answer to the probe at `path`; `None` when no probe has that path.
    pub async fn probe(&self, path: &str) -> Option<StatusCode> {
        let prober = self.probers.get(path)?;
        let timeout = Duration::from_secs(prober.timeout_seconds.unwrap_or(1).max(1));
        let status = tokio::time::timeout(timeout, get(&prober.http_get)).await;
        Some(match status {
            Ok(Ok(status)) => status,
            Ok(Err(error)) => {
                tracing::debug!(path, %error, "app probe failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
            Err(_) => {
                tracing::debug!(path, "app probe timed out");
                StatusCode::SERVICE_UNAVAILABLE
            }
        })
    }
}

async fn get(probe: &HttpGet) -> Result<StatusCode, Box<dyn std::error::Error + Send + Sync>> {
    let host = probe.host.as_deref().unwrap_or("127.0.0.1");
    let stream = tokio::net::TcpStream::connect((host, probe.port)).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let path = if probe.path.starts_with('/') {
        probe.path.clone()
    } else {
        format!("/{}", probe.path)
    };
    let mut request = Request::get(path)
        .header(header::HOST, format!("{host}:{}", probe.port))
        .header(header::USER_AGENT, "kube-probe (via mesh-proxy)");
    for h in &probe.http_headers {
        request = request.header(h.name.as_str(), h.value.as_str());
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new())?)
        .await?;
    Ok(response.status())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::Full;
    use hyper::body::Incoming;
    use serde_json::json;

    use super::*;

    /// An app on 127.0.0.1: `/ok` answers 200 when the probe's header came along,
    /// `/fail` 500; a second port accepts and never answers.
    async fn app() -> (u16, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    let status = match (request.uri().path(), request.headers().get("x-probe")) {
                        ("/ok", Some(_)) => StatusCode::OK,
                        ("/fail", _) => StatusCode::INTERNAL_SERVER_ERROR,
                        _ => StatusCode::NOT_FOUND,
                    };
                    let mut response = http::Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let silent_port = silent.local_addr().expect("address").port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                held.push(stream);
            }
        });
        (port, silent_port)
    }

    #[tokio::test]
    async fn probes_reach_the_app_and_answer_with_its_status() {
        let (port, silent) = app().await;
        let probers = AppProbers::parse(
            &json!({
                "/app-health/web/readyz": {"httpGet": {"path": "/ok", "port": port, "scheme": "HTTP",
                    "httpHeaders": [{"name": "X-Probe", "value": "1"}]}, "timeoutSeconds": 1},
                "/app-health/web/livez": {"httpGet": {"path": "/fail", "port": port, "scheme": "HTTP"}},
                "/app-health/web/startupz": {"httpGet": {"path": "/ok", "port": silent}, "timeoutSeconds": 1},
            })
            .to_string(),
        )
        .expect("parses");
        assert_eq!(
            probers.probe("/app-health/web/readyz").await,
            Some(StatusCode::OK)
        );
        assert_eq!(
            probers.probe("/app-health/web/livez").await,
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        );
        assert_eq!(
            probers.probe("/app-health/web/startupz").await,
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(probers.probe("/app-health/other/livez").await, None);
    }

    #[tokio::test]
    async fn an_app_that_is_down_fails_its_probe() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        let probers = AppProbers::parse(
            &json!({"/app-health/web/livez": {"httpGet": {"path": "/", "port": port}}}).to_string(),
        )
        .expect("parses");
        assert_eq!(
            probers.probe("/app-health/web/livez").await,
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
    }

    #[tokio::test]
    async fn the_health_port_serves_them() {
        let (port, _) = app().await;
        let probers =
            json!({"/app-health/web/readyz": {"httpGet": {"path": "/fail", "port": port}}});
        let health = crate::admin::Health {
            state: Default::default(),
            drain: Default::default(),
            certs: None,
            app_probers: std::sync::Arc::new(
                AppProbers::parse(&probers.to_string()).expect("parses"),
            ),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let health_port = listener.local_addr().expect("address").port();
        tokio::spawn(crate::admin::serve_health(listener, health));
        let ask = |path: &'static str| {
            let probe = HttpGet {
                path: path.to_owned(),
                port: health_port,
                host: None,
                http_headers: vec![],
            };
            async move { get(&probe).await.expect("answers") }
        };
        assert_eq!(
            ask("/app-health/web/readyz").await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(ask("/app-health/web/livez").await, StatusCode::NOT_FOUND);
        // Not ready: no config yet; the app's probe is answered all the same.
        assert_eq!(ask("/healthz/ready").await, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_malformed_list_is_an_error_naming_the_variable() {
        let error = AppProbers::parse("{\"/app-health/x/livez\": 3}").expect_err("invalid");
        assert!(error.to_string().contains(PROBERS_ENV), "{error}");
        assert!(AppProbers::parse("{}").expect("empty").probers.is_empty());
    }
}
