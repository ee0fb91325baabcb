//! The demo's traffic: requests into the frontend's sidecar, and what the echo apps down
//! the chain say about each hop (who answered, with what status, how long it took, which
//! identity the callee's sidecar verified).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A keep-alive HTTP/1.1 client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Empty<Bytes>>,
}

/// One request's answer: the status, the JSON body when it is one, the raw text else.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub json: Option<Value>,
    pub text: String,
    pub elapsed: Duration,
}

/// One hop of the chain as the echo app that made it reports it (`calls[i]`).
#[derive(Debug, Clone, Default)]
pub struct Hop {
    /// `None` when the call failed before any answer.
    pub status: Option<u16>,
    /// The version of the app that answered, when it answered with its echo.
    pub version: Option<String>,
    pub duration_ms: f64,
    /// The body when it was not an echo (a sidecar's own reply, e.g. `fault filter abort`).
    pub text: Option<String>,
    /// The caller's SPIFFE ID as the callee's sidecar verified it.
    pub peer: Option<String>,
    /// The callee's own first call (reviews' to ratings).
    pub next: Option<Box<Hop>>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// GET `path` from `addr` with `host` as the Host header.
    pub async fn get(
        &self,
        addr: SocketAddr,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let mut builder = Request::get(format!("http://{addr}{path}")).header("host", host);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Empty::new())?;
        let started = Instant::now();
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .with_context(|| format!("GET http://{host}{path} via {addr}: no answer in 10 s"))?
            .with_context(|| format!("GET http://{host}{path} via {addr}"))?;
        let text = String::from_utf8_lossy(&body).into_owned();
        Ok(Answer {
            status,
            json: serde_json::from_str(&text).ok(),
            text,
            elapsed: started.elapsed(),
        })
    }
}

impl Answer {
    /// The answering app's call to `service` (productpage's to reviews).
    pub fn hop(&self, service: &str) -> Option<Hop> {
        self.json.as_ref().and_then(|json| hop_to(json, service))
    }
}

/// The call an echo answer made to `service`: the one whose URL names its host.
fn hop_to(echo: &Value, service: &str) -> Option<Hop> {
    let calls = echo.get("calls")?.as_array()?;
    let call = calls.iter().find(|c| {
        c.get("url")
            .and_then(Value::as_str)
            .and_then(|url| url.strip_prefix("http://"))
            .is_some_and(|rest| rest.split([':', '/']).next() == Some(service))
    })?;
    let status = call
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    let body = call.get("body");
    let echo_body = body.filter(|b| b.is_object());
    Some(Hop {
        status,
        version: echo_body
            .and_then(|b| b.get("version"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        duration_ms: call
            .get("duration_ms")
            .and_then(Value::as_f64)
            .unwrap_or_default(),
        text: body.and_then(Value::as_str).map(str::to_owned),
        peer: echo_body.and_then(peer_of),
        next: echo_body
            .and_then(|b| b.get("calls")?.as_array()?.first()?.get("url")?.as_str())
            .and_then(|url| url.strip_prefix("http://")?.split([':', '/']).next())
            .and_then(|next| hop_to(echo_body?, next))
            .map(Box::new),
    })
}

/// The caller identity an echo answer shows: its `peer` field, or the last `URI=` of the
/// `x-forwarded-client-cert` header it received.
pub fn peer_of(echo: &Value) -> Option<String> {
    if let Some(peer) = echo.get("peer").and_then(Value::as_str) {
        return Some(peer.to_owned());
    }
    let xfcc = echo
        .get("headers")?
        .get("x-forwarded-client-cert")?
        .as_str()?;
    xfcc.rsplit([';', ','])
        .find_map(|part| part.trim().strip_prefix("URI="))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn hops_are_read_down_the_chain() {
        let reply = json!({
            "version": "v1",
            "calls": [{"url": "http://details:9080/details/0", "status": 200, "body": {"version": "v1"}}, {
                "url": "http://reviews:9080/", "status": 200, "duration_ms": 12.5,
                "body": {
                    "version": "v2",
                    "headers": {"x-forwarded-client-cert": "By=spiffe://cluster.local/ns/default/sa/reviews;URI=spiffe://cluster.local/ns/default/sa/productpage"},
                    "calls": [{"url": "http://ratings:9080/ratings/0", "status": 503, "duration_ms": 1.0, "body": "fault filter abort"}]
                }
            }]
        });
        let answer = Answer {
            status: StatusCode::OK,
            json: Some(reply),
            text: String::new(),
            elapsed: Duration::ZERO,
        };
        let hop = answer.hop("reviews").unwrap_or_default();
        assert_eq!(hop.status, Some(200));
        assert_eq!(hop.version.as_deref(), Some("v2"));
        assert_eq!(
            hop.peer.as_deref(),
            Some("spiffe://cluster.local/ns/default/sa/productpage")
        );
        let next = hop.next.unwrap_or_default();
        assert_eq!(next.status, Some(503));
        assert_eq!(next.text.as_deref(), Some("fault filter abort"));
        assert_eq!(next.version, None);
    }

    #[test]
    fn a_failed_call_has_no_status() {
        let reply = json!({"calls": [
            {"url": "http://reviews:9080/", "status": null, "error": "connection refused", "duration_ms": 0.2}
        ]});
        let hop = hop_to(&reply, "reviews").expect("the call to reviews");
        assert_eq!(hop.status, None);
        assert_eq!(hop.version, None);
    }
}
