//! One JSON document from an admin or monitoring port, with errors that say which port did
//! not answer and why (the socket error, not just "client error").

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Long enough for a big `/config_dump`, short enough that a hung process is reported.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Nothing answered: the connection failed or timed out.
    #[error("{0}")]
    Unreachable(String),
    /// It answered, but not with the document.
    #[error("GET {path} answered {status}: {body}")]
    Status {
        path: String,
        status: StatusCode,
        body: String,
    },
    #[error("GET {path} answered with something that is not JSON: {error}")]
    NotJson {
        path: String,
        error: serde_json::Error,
    },
}

impl FetchError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

/// `GET http://<addr><path>` as JSON.
pub async fn json(addr: SocketAddr, path: &str) -> Result<Value, FetchError> {
    let (status, body) = get(addr, path).await?;
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(&body);
        return Err(FetchError::Status {
            path: path.to_owned(),
            status,
            body: text.lines().next().unwrap_or_default().trim().to_owned(),
        });
    }
    serde_json::from_slice(&body).map_err(|error| FetchError::NotJson {
        path: path.to_owned(),
        error,
    })
}

async fn get(addr: SocketAddr, path: &str) -> Result<(StatusCode, Bytes), FetchError> {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let request = Request::get(format!("http://{addr}{path}"))
        .body(Empty::new())
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| chain(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| chain(&e))?;
        Ok((status, body.to_bytes()))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| FetchError::Unreachable(format!("no answer within {TIMEOUT:?}")))?
}

/// The innermost cause is the one a user can act on ("Connection refused").
fn chain(error: &(dyn std::error::Error + 'static)) -> FetchError {
    FetchError::Unreachable(crate::cause::innermost(error))
}
