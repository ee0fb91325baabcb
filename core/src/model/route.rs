//! A route and what it does with a request: Istio's `HTTPRoute`.

use http::StatusCode;

use super::{HeaderOps, RequestMatch, RoutePolicy};

/// One HTTP route of a virtual host, in the order it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The route's name, for logs and `meshctl`; may be empty, as in Istio.
    pub name: String,
    /// Alternatives (OR). An empty list matches every request.
    pub matches: Vec<RequestMatch>,
    pub action: RouteAction,
    /// Timeouts, retries, faults, rewrites, header changes and mirrors.
    pub policy: RoutePolicy,
}

/// What a matched route does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Forward upstream to one of these, chosen by weight ([`crate::balance::choose_weighted`]).
    Route(Vec<WeightedDestination>),
    Redirect(Redirect),
    DirectResponse(DirectResponse),
}

/// A destination and its share of the route's traffic (Istio `HTTPRouteDestination`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeightedDestination {
    pub destination: Destination,
    /// Header changes for requests sent to this destination, and their responses.
    pub request_headers: HeaderOps,
    pub response_headers: HeaderOps,
    /// Relative weight. Weights need not sum to 100; a lone destination gets all traffic
    /// whatever its weight, and a destination of weight 0 beside others gets none.
    pub weight: u32,
}

/// A service (and optionally one subset and port of it) to send traffic to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    /// A fully qualified service host, e.g. `reviews.default.svc.cluster.local`.
    pub host: String,
    /// A subset named in the host's DestinationRule.
    pub subset: Option<String>,
    /// Needed when the service has several ports; otherwise the request's port is used.
    pub port: Option<u16>,
}

impl Destination {
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            subset: None,
            port: None,
        }
    }
}

/// Answer with a redirect instead of forwarding (Istio `HTTPRedirect`).
///
/// Unset parts keep the request's; [`crate::route::redirect_location`] builds the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Replaces the path. If it has no `?`, the request's query string is kept.
    pub uri: Option<String>,
    /// Replaces the host.
    pub authority: Option<String>,
    pub scheme: Option<String>,
    pub port: Option<RedirectPort>,
    /// 301 (Istio's default), 302, 303, 307 or 308.
    pub status: StatusCode,
}

/// The port of a redirect's target. Unset means the scheme's default port (Istio's
/// `FROM_PROTOCOL_DEFAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectPort {
    Port(u16),
    /// The port the request was sent to (Istio `derivePort: FROM_REQUEST_PORT`).
    FromRequest,
}

/// Answer directly with a fixed response (Istio `HTTPDirectResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectResponse {
    pub status: StatusCode,
    /// Istio allows a string or bytes; both end up as bytes on the wire.
    pub body: Option<Vec<u8>>,
}
