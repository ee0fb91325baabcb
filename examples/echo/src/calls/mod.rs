//! Upstream calls: on every request the echo calls its configured URLs in order and reports
//! what they answered, so a chain of echoes (productpage -> reviews -> ratings) shows the whole
//! path, and which version answered at each hop, in one JSON answer.
//!
//! Calls go through an HTTP forward proxy (the sidecar's outbound listener) when one is set,
//! else directly. Listed request headers (trace context, `end-user`, cookies) are copied
//! onto each call, so header-based routing applies at every hop, as in Istio's bookinfo.

mod connector;

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize, Serializer};

use connector::ProxyConnector;
pub use connector::bypasses_proxy;

/// The headers copied from a request onto its calls by default: Istio bookinfo's list
/// (request id, user, trace context in W3C, B3 and OpenTracing forms, cookies).
pub const DEFAULT_FORWARD_HEADERS: &[&str] = &[
    "x-request-id",
    "end-user",
    "user-agent",
    "traceparent",
    "tracestate",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "x-ot-span-context",
    "cookie",
];

/// How long a call may take by default, from connecting to the end of its body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest upstream body kept in an answer; an echo's JSON is far smaller.
const MAX_BODY: usize = 1 << 20;

/// Idle pooled connections are closed after this, before a proxy's own idle timeout can
/// race a reused connection.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// What to call on each request and how.
#[derive(Clone, Debug, Serialize)]
pub struct CallConfig {
    /// Called in order on every request except `/healthz`; `http://` only (in a mesh the
    /// sidecar originates TLS). An empty list makes no calls.
    #[serde(serialize_with = "as_strings")]
    pub urls: Vec<Uri>,
    /// An HTTP forward proxy (`http://host:port`); `None` calls directly.
    #[serde(serialize_with = "as_optional_string")]
    pub proxy: Option<Uri>,
    /// Hosts called directly even when a proxy is set; see [`bypasses_proxy`].
    pub no_proxy: Vec<String>,
    /// Per call, from connecting to the end of the body.
    #[serde(serialize_with = "as_debug")]
    pub timeout: Duration,
    /// Request headers copied onto every call.
    #[serde(serialize_with = "as_strings")]
    pub forward_headers: Vec<HeaderName>,
    /// Answer 502 (instead of the planned success) when a call failed or got a 5xx.
    pub fail_on_error: bool,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            proxy: None,
            no_proxy: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            forward_headers: DEFAULT_FORWARD_HEADERS
                .iter()
                .map(|name| HeaderName::from_static(name))
                .collect(),
            fail_on_error: false,
        }
    }
}

/// A call URL or proxy address that cannot be used. The message says what would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallConfigError {
    #[error("invalid call URL {0:?}: use http://host[:port][/path], e.g. http://reviews:9080/")]
    Url(String),
    #[error("invalid proxy {0:?}: use http://host:port or host:port, e.g. http://127.0.0.1:15001")]
    Proxy(String),
    #[error("invalid header name {0:?}: use names like x-request-id")]
    HeaderName(String),
}

/// Parses a call URL: `http://` with a host; the path (default `/`) and query are kept.
pub fn parse_url(text: &str) -> Result<Uri, CallConfigError> {
    let err = || CallConfigError::Url(text.to_owned());
    let uri: Uri = text.trim().parse().map_err(|_| err())?;
    check_url(&uri).map_err(|()| err())?;
    Ok(uri)
}

fn check_url(uri: &Uri) -> Result<(), ()> {
    let http = uri.scheme() == Some(&http::uri::Scheme::HTTP);
    let host = uri.host().is_some_and(|host| !host.is_empty());
    if http && host { Ok(()) } else { Err(()) }
}

/// Parses a proxy address, with or without `http://`; a path is not allowed.
pub fn parse_proxy(text: &str) -> Result<Uri, CallConfigError> {
    let err = || CallConfigError::Proxy(text.to_owned());
    let text = text.trim();
    let full = if text.contains("://") {
        text.to_owned()
    } else {
        format!("http://{text}")
    };
    let uri: Uri = full.parse().map_err(|_| err())?;
    let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/");
    if check_url(&uri).is_err() || !bare {
        return Err(err());
    }
    Ok(uri)
}

/// Parses one header name, lower-cased.
pub fn parse_header_name(text: &str) -> Result<HeaderName, CallConfigError> {
    HeaderName::from_bytes(text.trim().to_ascii_lowercase().as_bytes())
        .map_err(|_| CallConfigError::HeaderName(text.to_owned()))
}

/// Checks a config built in code (flags are checked as they are parsed).
pub(crate) fn validate(config: &CallConfig) -> Result<(), String> {
    if let Some(url) = config.urls.iter().find(|url| check_url(url).is_err()) {
        return Err(CallConfigError::Url(url.to_string()).to_string());
    }
    match &config.proxy {
        Some(proxy) if check_url(proxy).is_err() => {
            Err(CallConfigError::Proxy(proxy.to_string()).to_string())
        }
        _ => Ok(()),
    }
}

/// One call's outcome, as the JSON answer reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub url: String,
    /// The upstream's status; `None` when no answer came (refused, timed out, reset).
    pub status: Option<u16>,
    /// From sending the request to the end of the answer's body (or the failure).
    pub duration_ms: u64,
    /// The upstream's answer: its JSON when it parses (an echo's own answer, so a chain nests),
    /// else its text; `null` when there was no answer.
    pub body: serde_json::Value,
    /// Why the call failed; `None` when an answer (of any status) came back in full.
    pub error: Option<String>,
}

impl Call {
    /// A call that makes `--fail-on-call-error` answer 502: no answer, or a 5xx.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.status.is_none_or(|status| status >= 500)
    }
}

/// Makes the calls of a server, over pooled keep-alive connections shared by all requests.
#[derive(Debug)]
pub(crate) struct Caller {
    config: CallConfig,
    direct: Client<HttpConnector, Empty<Bytes>>,
    proxied: Option<Client<ProxyConnector, Empty<Bytes>>>,
}

impl Caller {
    pub fn new(config: CallConfig) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_idle_timeout(POOL_IDLE);
        let proxied = config
            .proxy
            .clone()
            .map(|proxy| builder.build(ProxyConnector::new(proxy, http.clone())));
        Self {
            direct: builder.build(http),
            proxied,
            config,
        }
    }

    pub fn fail_on_error(&self) -> bool {
        self.config.fail_on_error
    }

    /// Calls every URL in order, each with the listed headers of `incoming`.
    pub async fn call_all(&self, incoming: &HeaderMap) -> Vec<Call> {
        let headers = forwarded(incoming, &self.config.forward_headers);
        let mut calls = Vec::with_capacity(self.config.urls.len());
        for url in &self.config.urls {
            calls.push(self.call(url, &headers).await);
        }
        calls
    }

    async fn call(&self, url: &Uri, headers: &HeaderMap) -> Call {
        let started = Instant::now();
        let timeout = self.config.timeout;
        let (status, body, error) =
            match tokio::time::timeout(timeout, self.exchange(url, headers)).await {
                Ok(outcome) => outcome,
                Err(_) => (None, None, Some(format!("no answer within {timeout:?}"))),
            };
        Call {
            url: url.to_string(),
            status,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            body: body.map_or(serde_json::Value::Null, |body| json_or_text(&body)),
            error,
        }
    }

    /// The status, the body and the error, each as far as the exchange got.
    async fn exchange(
        &self,
        url: &Uri,
        headers: &HeaderMap,
    ) -> (Option<u16>, Option<Bytes>, Option<String>) {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = url.clone();
        *request.headers_mut() = headers.clone();
        let response = match &self.proxied {
            Some(client) if !self.bypasses(url) => client.request(request).await,
            _ => self.direct.request(request).await,
        };
        let response = match response {
            Ok(response) => response,
            Err(error) => return (None, None, Some(error_chain(&error))),
        };
        let status = Some(response.status().as_u16());
        match Limited::new(response.into_body(), MAX_BODY).collect().await {
            Ok(body) => (status, Some(body.to_bytes()), None),
            Err(error) => (
                status,
                None,
                Some(format!("failed to read the body: {error}")),
            ),
        }
    }

    fn bypasses(&self, url: &Uri) -> bool {
        url.host()
            .is_some_and(|host| bypasses_proxy(host, &self.config.no_proxy))
    }
}

/// The `names` headers of `incoming`, every value of each.
pub fn forwarded(incoming: &HeaderMap, names: &[HeaderName]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in names {
        for value in incoming.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn json_or_text(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The error and its sources, as `a: b: c`: the client's own message ("client error
/// (Connect)") alone does not say that the connection was refused.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn as_strings<S: Serializer, T: ToString>(items: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(ToString::to_string))
}

fn as_optional_string<S: Serializer>(uri: &Option<Uri>, s: S) -> Result<S::Ok, S::Error> {
    match uri {
        Some(uri) => s.collect_str(uri),
        None => s.serialize_none(),
    }
}

fn as_debug<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{duration:?}"))
}

#[cfg(test)]
mod tests;
