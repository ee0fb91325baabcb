//! One match condition of a route: Istio's `HTTPMatchRequest`.

use http::HeaderName;

use super::{Labels, StringMatch};

/// How a header or query parameter is tested.
///
/// Istio writes both forms as a `StringMatch`: an empty one (`{}`) or `regex: "*"` means
/// "present with any value", anything else compares the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMatch {
    /// The header or parameter is present, whatever its value (even empty).
    Present,
    /// The header or parameter is present and its value matches.
    Value(StringMatch),
}

/// One match condition of a route: Istio's `HTTPMatchRequest`.
///
/// Every condition that is set must hold (AND). `Default` is the match-everything condition.
///
/// Istio evaluates `port`, `source_labels`, `source_namespace` and `gateways` when it builds a
/// proxy's config rather than per request; here they are checked per request against the
/// [`super::RequestInfo`], with the same outcome, so one compiled table can serve any caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatch {
    /// The match's own name; route logs show `<route>.<match>` as Istio does.
    pub name: Option<String>,
    /// The path, without the query string (Envoy's `path`, `prefix`, `safe_regex`).
    pub uri: Option<StringMatch>,
    /// Compare `uri` exact and prefix matches ignoring ASCII case (Istio `ignoreUriCase`).
    pub ignore_uri_case: bool,
    pub scheme: Option<StringMatch>,
    pub method: Option<StringMatch>,
    /// The request's authority (`:authority` / `Host`) as sent, port included.
    pub authority: Option<StringMatch>,
    /// Each must match. Several values of one header are joined with `,` first, as Envoy does.
    pub headers: Vec<(HeaderName, ValueMatch)>,
    /// Each must NOT match (Istio `withoutHeaders`). A missing header counts as the empty
    /// string, so `{x: {exact: "a"}}` passes requests without `x`, while `{x: {}}` (present)
    /// requires `x` to be absent. This is what Istio generates for Envoy
    /// (`invert_match` with `treat_missing_header_as_empty`).
    pub without_headers: Vec<(HeaderName, ValueMatch)>,
    /// Query parameters, percent-decoded; the first occurrence of a name is the one tested.
    pub query_params: Vec<(String, ValueMatch)>,
    /// The port the request was sent to.
    pub port: Option<u16>,
    /// Labels the calling workload must carry (a subset match).
    pub source_labels: Labels,
    pub source_namespace: Option<String>,
    /// Gateways (or `mesh` for sidecars) this condition applies to. When set, Istio ignores
    /// `source_labels` and `source_namespace` for this condition, and so do we.
    pub gateways: Vec<String>,
}
