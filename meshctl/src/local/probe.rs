//! Asking the mesh's processes how they are: one HTTP GET or one TCP connect, each with a
//! short timeout, so a process that hangs is noticed instead of waited on.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const TIMEOUT: Duration = Duration::from_secs(2);

/// `GET http://<addr><path>`: the status and body, or why there is none.
pub async fn get(addr: SocketAddr, path: &str) -> Result<(StatusCode, Bytes), String> {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let request = Request::get(format!("http://{addr}{path}"))
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer from {addr} within {TIMEOUT:?}"))?
}

/// A JSON document from `GET`, when the answer is 200.
pub async fn json(addr: SocketAddr, path: &str) -> Option<serde_json::Value> {
    match get(addr, path).await {
        Ok((StatusCode::OK, body)) => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

/// Whether something accepts connections at `addr`.
pub async fn accepts(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Whether a proxy's `/healthz/ready` says ready.
pub async fn ready(health: SocketAddr) -> bool {
    matches!(get(health, "/healthz/ready").await, Ok((StatusCode::OK, _)))
}

/// Node ids in pilot's `/debug/syncz` that are connected and have ACKed what they were
/// last sent.
pub async fn synced(monitoring: SocketAddr) -> Vec<String> {
    let Some(syncz) = json(monitoring, "/debug/syncz").await else {
        return Vec::new();
    };
    syncz
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| !e["versionSent"].is_null() && e["versionSent"] == e["versionAcked"])
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
