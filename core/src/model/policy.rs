//! What a route does to a request besides choosing where it goes: timeouts, retries,
//! faults, rewrites and header changes (the rest of Istio's `HTTPRoute`).

use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};

use super::Destination;

/// A share of requests, in parts per million, so that `percentage: {value: 0.01}` is exact
/// and the type stays `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fraction(u32);

impl Fraction {
    pub const ALL: Fraction = Fraction(1_000_000);
    pub const NONE: Fraction = Fraction(0);

    /// From a percentage; values outside [0, 100] are clamped (validation reports them).
    pub fn from_percent(percent: f64) -> Self {
        let ppm = (percent.clamp(0.0, 100.0) * 10_000.0).round();
        Fraction(ppm as u32)
    }

    pub fn per_million(self) -> u32 {
        self.0
    }

    /// Whether a uniformly drawn `roll` in `[0, 1_000_000)` falls inside the share.
    pub fn includes(self, roll: u32) -> bool {
        roll < self.0
    }
}

/// Per-route behaviour. `Default` is Istio's: no timeout, the default retry policy, nothing
/// injected or rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    /// Whole-request deadline, retries included. `None` disables it (`timeout: 0s`).
    pub timeout: Option<Duration>,
    /// `None` when retries are disabled (`attempts: 0`).
    pub retry: Option<RetryPolicy>,
    pub fault: Option<Fault>,
    pub rewrite: Option<Rewrite>,
    pub request_headers: HeaderOps,
    pub response_headers: HeaderOps,
    pub mirrors: Vec<Mirror>,
    pub cors: Option<Cors>,
}

impl Default for RoutePolicy {
    fn default() -> Self {
        Self {
            timeout: None,
            retry: Some(RetryPolicy::istio_default()),
            fault: None,
            rewrite: None,
            request_headers: HeaderOps::default(),
            response_headers: HeaderOps::default(),
            mirrors: Vec::new(),
            cors: None,
        }
    }
}

/// Istio `corsPolicy`, answered by the proxy (Envoy's CORS filter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: Vec<super::StringMatch>,
    /// Comma-joined, as the response headers carry them.
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    pub max_age: Option<Duration>,
    pub allow_credentials: bool,
    /// A preflight from an origin that does not match goes upstream (Istio's default) or is
    /// answered without CORS headers.
    pub forward_unmatched_preflights: bool,
}

/// Istio `HTTPRetry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub attempts: u32,
    pub per_try_timeout: Option<Duration>,
    pub retry_on: RetryOn,
    /// Base of the jittered exponential back-off between tries.
    pub backoff: Duration,
    pub prefer_other_endpoints: bool,
}

impl RetryPolicy {
    /// What Istio applies when a route sets no `retries`: 2 retries on connection failures,
    /// refused streams, gRPC unavailable/cancelled and HTTP 503.
    pub fn istio_default() -> Self {
        Self {
            attempts: 2,
            per_try_timeout: None,
            retry_on: RetryOn {
                connect_failure: true,
                refused_stream: true,
                retriable_status_codes: vec![StatusCode::SERVICE_UNAVAILABLE],
                grpc: vec![GrpcCode::Unavailable, GrpcCode::Cancelled],
                ..RetryOn::default()
            },
            backoff: Duration::from_millis(25),
            prefer_other_endpoints: true,
        }
    }
}

/// The conditions of Istio's (Envoy's) `retryOn`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// `5xx`: any 5xx response, a reset or a connect failure.
    pub server_error: bool,
    /// `gateway-error`: 502, 503 or 504.
    pub gateway_error: bool,
    /// `reset`: the upstream reset or closed before answering.
    pub reset: bool,
    pub connect_failure: bool,
    pub refused_stream: bool,
    /// `retriable-4xx`: 409.
    pub retriable_4xx: bool,
    /// Listed status codes (bare numbers in `retryOn`).
    pub retriable_status_codes: Vec<StatusCode>,
    /// gRPC status names in `retryOn` (`unavailable`, `cancelled`...).
    pub grpc: Vec<GrpcCode>,
}

/// The gRPC status codes `retryOn` and fault aborts can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrpcCode {
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl GrpcCode {
    /// From Istio's spelling: `UNAVAILABLE` (fault abort) or `unavailable`,
    /// `deadline-exceeded` (retryOn).
    pub fn from_name(name: &str) -> Option<Self> {
        let normal = name.trim().to_ascii_uppercase().replace('-', "_");
        Some(match normal.as_str() {
            "CANCELLED" => Self::Cancelled,
            "UNKNOWN" => Self::Unknown,
            "INVALID_ARGUMENT" => Self::InvalidArgument,
            "DEADLINE_EXCEEDED" => Self::DeadlineExceeded,
            "NOT_FOUND" => Self::NotFound,
            "ALREADY_EXISTS" => Self::AlreadyExists,
            "PERMISSION_DENIED" => Self::PermissionDenied,
            "RESOURCE_EXHAUSTED" => Self::ResourceExhausted,
            "FAILED_PRECONDITION" => Self::FailedPrecondition,
            "ABORTED" => Self::Aborted,
            "OUT_OF_RANGE" => Self::OutOfRange,
            "UNIMPLEMENTED" => Self::Unimplemented,
            "INTERNAL" => Self::Internal,
            "UNAVAILABLE" => Self::Unavailable,
            "DATA_LOSS" => Self::DataLoss,
            "UNAUTHENTICATED" => Self::Unauthenticated,
            _ => return None,
        })
    }

    pub fn code(self) -> u32 {
        self as u32
    }
}

/// Istio `HTTPFaultInjection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub delay: Option<(Duration, Fraction)>,
    pub abort: Option<(Abort, Fraction)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    Http(StatusCode),
    Grpc(GrpcCode),
}

/// Istio `HTTPRewrite`.
#[derive(Debug, Clone)]
pub struct Rewrite {
    /// Replaces the part of the path the route's `uri` prefix or exact match matched.
    pub uri: Option<String>,
    /// Replaces every match of the regex in the path.
    pub uri_regex: Option<(regex::Regex, String)>,
    pub authority: Option<String>,
}

impl PartialEq for Rewrite {
    fn eq(&self, other: &Self) -> bool {
        let regex = |r: &Option<(regex::Regex, String)>| {
            r.as_ref()
                .map(|(re, with)| (re.as_str().to_owned(), with.clone()))
        };
        self.uri == other.uri
            && self.authority == other.authority
            && regex(&self.uri_regex) == regex(&other.uri_regex)
    }
}

impl Eq for Rewrite {}

/// Header changes, applied in this order: remove, set, add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderOps {
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub add: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    pub fn apply(&self, headers: &mut http::HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// Istio `mirror`/`mirrors`: a copy of the request, answer ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub destination: Destination,
    pub fraction: Fraction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_exact_parts_per_million() {
        assert_eq!(Fraction::from_percent(100.0), Fraction::ALL);
        assert_eq!(Fraction::from_percent(0.01).per_million(), 100);
        assert_eq!(Fraction::from_percent(150.0), Fraction::ALL);
        assert!(Fraction::from_percent(50.0).includes(499_999));
        assert!(!Fraction::from_percent(50.0).includes(500_000));
        assert!(!Fraction::NONE.includes(0));
    }

    #[test]
    fn grpc_names_in_both_spellings() {
        assert_eq!(
            GrpcCode::from_name("UNAVAILABLE"),
            Some(GrpcCode::Unavailable)
        );
        assert_eq!(
            GrpcCode::from_name("deadline-exceeded"),
            Some(GrpcCode::DeadlineExceeded)
        );
        assert_eq!(
            GrpcCode::from_name("resource-exhausted").map(GrpcCode::code),
            Some(8)
        );
        assert_eq!(GrpcCode::from_name("nope"), None);
    }

    #[test]
    fn header_ops_remove_then_set_then_add() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("old"));
        headers.insert("x-gone", HeaderValue::from_static("1"));
        let ops = HeaderOps {
            set: vec![(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("new"),
            )],
            add: vec![(
                HeaderName::from_static("x-a"),
                HeaderValue::from_static("more"),
            )],
            remove: vec![HeaderName::from_static("x-gone")],
        };
        ops.apply(&mut headers);
        let values: Vec<_> = headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["new", "more"]);
        assert!(!headers.contains_key("x-gone"));
    }
}
