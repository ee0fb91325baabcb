//! One body type for everything the proxy sends: forwarded bodies and its own replies.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

pub fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// Why the proxy answered a request itself, as Envoy's response flags name it; logged and
/// sent in `x-mesh-response-flags` so a user can see why a request went where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// NR: no route matched.
    NoRoute,
    /// UH: no healthy upstream.
    NoHealthyUpstream,
    /// UF: upstream connection failure.
    UpstreamConnectFailure,
    /// UT: upstream request timeout.
    UpstreamTimeout,
    /// UC: upstream connection terminated.
    UpstreamReset,
    /// FI: fault injected (abort).
    FaultAbort,
    /// NC: no cluster / no config.
    NoCluster,
    /// UO: upstream overflow, a circuit breaker refused the request.
    Overflow,
    /// RBAC: an AuthorizationPolicy refused the request.
    Rbac,
}

impl Flag {
    pub const ALL: [Flag; 9] = [
        Flag::NoRoute,
        Flag::NoHealthyUpstream,
        Flag::UpstreamConnectFailure,
        Flag::UpstreamTimeout,
        Flag::UpstreamReset,
        Flag::FaultAbort,
        Flag::NoCluster,
        Flag::Overflow,
        Flag::Rbac,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Flag::NoRoute => "NR",
            Flag::NoHealthyUpstream => "UH",
            Flag::UpstreamConnectFailure => "UF",
            Flag::UpstreamTimeout => "UT",
            Flag::Rbac => "RBAC",
            Flag::UpstreamReset => "UC",
            Flag::FaultAbort => "FI",
            Flag::NoCluster => "NC",
            Flag::Overflow => "UO",
        }
    }
}

pub const RESPONSE_FLAGS: &str = "x-mesh-response-flags";

/// A response the proxy makes up: status, a short text body, and the flag that explains it.
pub fn local_reply(status: StatusCode, text: &str, flag: Option<Flag>) -> Response<Body> {
    let mut response = Response::new(boxed(Full::new(Bytes::from(text.to_owned()))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Some(flag) = flag {
        headers.insert(RESPONSE_FLAGS, HeaderValue::from_static(flag.code()));
    }
    response
}
