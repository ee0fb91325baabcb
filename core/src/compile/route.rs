//! Istio `HTTPRoute` -> [`model::HttpRoute`].

use std::str::FromStr;
use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};

use super::Errors;
use crate::config;
use crate::model::{
    self, Abort, Cors, DirectResponse, Fault, Fraction, GrpcCode, HeaderOps, Mirror, Redirect,
    RedirectPort, RequestMatch, RetryOn, RetryPolicy, Rewrite, RouteAction, RoutePolicy,
    StringMatch, ValueMatch, WeightedDestination,
};

/// Compiles one route; `None` (with the reasons in `errors`) when it cannot be used.
pub(crate) fn http_route(
    route: &config::HttpRoute,
    path: &str,
    errors: &mut Errors,
) -> Option<model::HttpRoute> {
    let before = errors.0.len();
    let matches = route
        .matches
        .iter()
        .enumerate()
        .map(|(i, m)| request_match(m, &format!("{path}.match[{i}]"), errors))
        .collect();
    let action = action(route, path, errors);
    let policy = policy(route, path, errors);
    (errors.0.len() == before).then(|| model::HttpRoute {
        name: route.name.clone(),
        matches,
        action: action.unwrap_or(RouteAction::Route(Vec::new())),
        policy,
    })
}

fn request_match(m: &config::HttpMatchRequest, path: &str, errors: &mut Errors) -> RequestMatch {
    let mut string = |field: &str, value: &Option<config::StringMatch>| {
        value
            .as_ref()
            .and_then(|v| string_match(v, &format!("{path}.{field}"), errors))
    };
    let uri = string("uri", &m.uri);
    let scheme = string("scheme", &m.scheme);
    let method = string("method", &m.method);
    let authority = string("authority", &m.authority);
    RequestMatch {
        name: (!m.name.is_empty()).then(|| m.name.clone()),
        uri,
        ignore_uri_case: m.ignore_uri_case,
        scheme,
        method,
        authority,
        headers: header_matches(&m.headers, &format!("{path}.headers"), errors),
        without_headers: header_matches(
            &m.without_headers,
            &format!("{path}.withoutHeaders"),
            errors,
        ),
        query_params: m
            .query_params
            .iter()
            .filter_map(|(name, v)| {
                value_match(v, &format!("{path}.queryParams[{name}]"), errors)
                    .map(|v| (name.clone(), v))
            })
            .collect(),
        port: m
            .port
            .and_then(|p| errors.check(&format!("{path}.port"), port(p))),
        source_labels: m.source_labels.clone(),
        source_namespace: m.source_namespace.clone(),
        gateways: m.gateways.clone(),
    }
}

fn header_matches(
    headers: &std::collections::BTreeMap<String, config::StringMatch>,
    path: &str,
    errors: &mut Errors,
) -> Vec<(HeaderName, ValueMatch)> {
    headers
        .iter()
        .filter_map(|(name, m)| {
            let at = format!("{path}[{name}]");
            let name = errors.check(&at, HeaderName::from_str(&name.to_ascii_lowercase()))?;
            Some((name, value_match(m, &at, errors)?))
        })
        .collect()
}

/// `{}` and Istio's `regex: "*"` mean "present".
fn value_match(m: &config::StringMatch, path: &str, errors: &mut Errors) -> Option<ValueMatch> {
    if m.set_count() == 0 || m.regex.as_deref() == Some("*") {
        return Some(ValueMatch::Present);
    }
    string_match(m, path, errors).map(ValueMatch::Value)
}

fn string_match(m: &config::StringMatch, path: &str, errors: &mut Errors) -> Option<StringMatch> {
    match (&m.exact, &m.prefix, &m.regex) {
        (Some(exact), None, None) => Some(StringMatch::exact(exact.clone())),
        (None, Some(prefix), None) => Some(StringMatch::prefix(prefix.clone())),
        (None, None, Some(regex)) => {
            errors.check(&format!("{path}.regex"), StringMatch::regex(regex))
        }
        _ => {
            errors.push(path, "exactly one of exact, prefix or regex is required");
            None
        }
    }
}

fn port(number: u32) -> Result<u16, String> {
    u16::try_from(number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("port {number} is not in 1..=65535"))
}

fn action(route: &config::HttpRoute, path: &str, errors: &mut Errors) -> Option<RouteAction> {
    match (
        &route.redirect,
        &route.direct_response,
        route.route.is_empty(),
    ) {
        (Some(redirect), None, true) => Some(RouteAction::Redirect(compile_redirect(
            redirect,
            &format!("{path}.redirect"),
            errors,
        )?)),
        (None, Some(response), true) => Some(RouteAction::DirectResponse(direct_response(
            response,
            &format!("{path}.directResponse"),
            errors,
        )?)),
        (None, None, false) => {
            let destinations: Vec<_> = route
                .route
                .iter()
                .map(|d| (destination(&d.destination), d.weight))
                .collect();
            let mut weighted = weighted(&destinations);
            for (i, (compiled, written)) in weighted.iter_mut().zip(&route.route).enumerate() {
                let headers = written.headers.as_ref();
                let at = format!("{path}.route[{i}].headers");
                compiled.request_headers = header_ops(
                    headers.and_then(|h| h.request.as_ref()),
                    &format!("{at}.request"),
                    errors,
                );
                compiled.response_headers = header_ops(
                    headers.and_then(|h| h.response.as_ref()),
                    &format!("{at}.response"),
                    errors,
                );
            }
            Some(RouteAction::Route(weighted))
        }
        _ => {
            errors.push(
                path,
                "exactly one of route, redirect or directResponse is required",
            );
            None
        }
    }
}

pub(crate) fn destination(d: &config::Destination) -> model::Destination {
    model::Destination {
        host: d.host.clone(),
        subset: d.subset.clone(),
        port: d.port.and_then(|p| u16::try_from(p.number).ok()),
    }
}

/// Istio's weights: a lone destination gets everything; none weighted: an even split;
/// otherwise the weights as written (absent means 0).
pub(crate) fn weighted(
    destinations: &[(model::Destination, Option<u32>)],
) -> Vec<WeightedDestination> {
    let none_weighted = destinations.iter().all(|(_, w)| w.is_none());
    destinations
        .iter()
        .map(|(destination, weight)| WeightedDestination {
            destination: destination.clone(),
            weight: match (destinations.len(), none_weighted) {
                (1, _) => 100,
                (_, true) => 1,
                _ => weight.unwrap_or(0),
            },
            ..WeightedDestination::default()
        })
        .collect()
}

fn compile_redirect(r: &config::HttpRedirect, path: &str, errors: &mut Errors) -> Option<Redirect> {
    let status = errors.check(
        &format!("{path}.redirectCode"),
        status(r.redirect_code.unwrap_or(301)),
    )?;
    let port = match (r.port, r.derive_port) {
        (Some(p), _) => Some(RedirectPort::Port(
            errors.check(&format!("{path}.port"), port(p))?,
        )),
        (None, Some(config::RedirectPortSelection::FromRequestPort)) => {
            Some(RedirectPort::FromRequest)
        }
        (None, _) => None,
    };
    Some(Redirect {
        uri: r.uri.clone(),
        authority: r.authority.clone(),
        scheme: r.scheme.clone(),
        port,
        status,
    })
}

fn direct_response(
    r: &config::HttpDirectResponse,
    path: &str,
    errors: &mut Errors,
) -> Option<DirectResponse> {
    let status = errors.check(&format!("{path}.status"), status(r.status))?;
    let body = match &r.body {
        None => None,
        Some(config::HttpBody {
            string: Some(s),
            bytes: None,
        }) => Some(s.clone().into_bytes()),
        Some(config::HttpBody {
            string: None,
            bytes: Some(b),
        }) => Some(errors.check(&format!("{path}.body.bytes"), base64_decode(b))?),
        Some(_) => {
            errors.push(
                format!("{path}.body"),
                "exactly one of string or bytes is required",
            );
            return None;
        }
    };
    Some(DirectResponse { status, body })
}

fn status(code: u32) -> Result<StatusCode, String> {
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| format!("{code} is not an HTTP status"))
}

fn policy(route: &config::HttpRoute, path: &str, errors: &mut Errors) -> RoutePolicy {
    let headers = route.headers.as_ref();
    RoutePolicy {
        timeout: route.timeout.and_then(|t| non_zero(&t)),
        retry: match &route.retries {
            None => Some(RetryPolicy::istio_default()),
            Some(r) => retry(r, &format!("{path}.retries"), errors),
        },
        fault: route
            .fault
            .as_ref()
            .and_then(|f| fault(f, &format!("{path}.fault"), errors)),
        rewrite: route
            .rewrite
            .as_ref()
            .and_then(|r| rewrite(r, &format!("{path}.rewrite"), errors)),
        request_headers: header_ops(
            headers.and_then(|h| h.request.as_ref()),
            &format!("{path}.headers.request"),
            errors,
        ),
        response_headers: header_ops(
            headers.and_then(|h| h.response.as_ref()),
            &format!("{path}.headers.response"),
            errors,
        ),
        mirrors: mirrors(route),
        cors: route
            .cors_policy
            .as_ref()
            .and_then(|c| cors(c, &format!("{path}.corsPolicy"), errors)),
    }
}

fn cors(policy: &config::CorsPolicy, path: &str, errors: &mut Errors) -> Option<Cors> {
    let mut allow_origins: Vec<StringMatch> = policy
        .allow_origins
        .iter()
        .enumerate()
        .filter_map(|(i, m)| string_match(m, &format!("{path}.allowOrigins[{i}]"), errors))
        .collect();
    // The deprecated exact list; `*` there means any origin.
    allow_origins.extend(policy.allow_origin.iter().map(|o| match o.as_str() {
        "*" => StringMatch::prefix(""),
        exact => StringMatch::exact(exact),
    }));
    Some(Cors {
        allow_origins,
        allow_methods: policy.allow_methods.join(","),
        allow_headers: policy.allow_headers.join(","),
        expose_headers: policy.expose_headers.join(","),
        max_age: policy.max_age.and_then(|d| d.to_std()),
        allow_credentials: policy.allow_credentials.unwrap_or(false),
        forward_unmatched_preflights: policy.unmatched_preflights
            != Some(config::UnmatchedPreflights::Ignore),
    })
}

/// `None` for zero or negative, which Istio reads as "disabled".
fn non_zero(d: &config::Duration) -> Option<Duration> {
    d.to_std().filter(|d| !d.is_zero())
}

const ISTIO_DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

fn retry(r: &config::HttpRetry, path: &str, errors: &mut Errors) -> Option<RetryPolicy> {
    if r.attempts == 0 {
        return None;
    }
    let retry_on = errors.check(
        &format!("{path}.retryOn"),
        retry_on(r.retry_on.as_deref().unwrap_or(ISTIO_DEFAULT_RETRY_ON)),
    )?;
    Some(RetryPolicy {
        attempts: r.attempts,
        per_try_timeout: r.per_try_timeout.and_then(|t| non_zero(&t)),
        retry_on,
        backoff: r
            .backoff
            .and_then(|b| non_zero(&b))
            .unwrap_or(Duration::from_millis(25)),
        prefer_other_endpoints: r.retry_ignore_previous_hosts.unwrap_or(true),
    })
}

/// Parses Envoy's `retryOn` list as Istio passes it through.
pub fn retry_on(list: &str) -> Result<RetryOn, String> {
    let mut on = RetryOn::default();
    let mut status_codes_named = false;
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "5xx" => on.server_error = true,
            "gateway-error" => on.gateway_error = true,
            "reset" | "reset-before-request" => on.reset = true,
            "connect-failure" => on.connect_failure = true,
            "refused-stream" => on.refused_stream = true,
            "retriable-4xx" => on.retriable_4xx = true,
            "retriable-status-codes" => status_codes_named = true,
            code if code.bytes().all(|b| b.is_ascii_digit()) => {
                let code: u32 = code
                    .parse()
                    .map_err(|_| format!("{code:?} is not a status code"))?;
                on.retriable_status_codes.push(status(code)?);
            }
            name => match GrpcCode::from_name(name) {
                Some(code) => on.grpc.push(code),
                None => return Err(format!("unknown retryOn condition {name:?}")),
            },
        }
    }
    // As Istio does: naming the condition without codes retries 503.
    if status_codes_named && on.retriable_status_codes.is_empty() {
        on.retriable_status_codes
            .push(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(on)
}

/// The share a fault applies to: `percentage`, else the legacy `percent`, else all.
fn share(percentage: Option<config::Percent>, percent: Option<u32>) -> Fraction {
    match (percentage, percent) {
        (Some(p), _) => Fraction::from_percent(p.value),
        (None, Some(p)) => Fraction::from_percent(f64::from(p)),
        (None, None) => Fraction::ALL,
    }
}

fn fault(f: &config::HttpFaultInjection, path: &str, errors: &mut Errors) -> Option<Fault> {
    let delay = match &f.delay {
        Some(d) => match d.fixed_delay.as_ref().and_then(|d| d.to_std()) {
            Some(delay) => Some((delay, share(d.percentage, d.percent))),
            None => {
                errors.push(
                    format!("{path}.delay.fixedDelay"),
                    "a delay needs a positive fixedDelay",
                );
                return None;
            }
        },
        None => None,
    };
    let abort = match &f.abort {
        Some(a) => {
            let how = match (a.http_status, &a.grpc_status) {
                (Some(code), None) => {
                    Abort::Http(errors.check(&format!("{path}.abort.httpStatus"), status(code))?)
                }
                (None, Some(name)) => match GrpcCode::from_name(name) {
                    Some(code) => Abort::Grpc(code),
                    None => {
                        errors.push(
                            format!("{path}.abort.grpcStatus"),
                            format!("unknown gRPC status {name:?}"),
                        );
                        return None;
                    }
                },
                _ => {
                    errors.push(
                        format!("{path}.abort"),
                        "exactly one of httpStatus or grpcStatus is required",
                    );
                    return None;
                }
            };
            Some((how, share(a.percentage, None)))
        }
        None => None,
    };
    Some(Fault { delay, abort })
}

fn rewrite(r: &config::HttpRewrite, path: &str, errors: &mut Errors) -> Option<Rewrite> {
    let uri_regex = match &r.uri_regex_rewrite {
        Some(rr) => {
            let regex = errors.check(
                &format!("{path}.uriRegexRewrite.match"),
                regex::Regex::new(&rr.pattern),
            )?;
            Some((regex, re2_replacement(&rr.rewrite)))
        }
        None => None,
    };
    Some(Rewrite {
        uri: r.uri.clone(),
        uri_regex,
        authority: r.authority.clone(),
    })
}

/// RE2 (Envoy) writes groups as `\1`; the regex crate as `${1}`.
fn re2_replacement(rewrite: &str) -> String {
    let mut out = String::with_capacity(rewrite.len());
    let mut chars = rewrite.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                out.push_str(&format!("${{{d}}}"));
                chars.next();
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

fn header_ops(
    ops: Option<&config::HeaderOperations>,
    path: &str,
    errors: &mut Errors,
) -> HeaderOps {
    let Some(ops) = ops else {
        return HeaderOps::default();
    };
    let mut pairs = |map: &std::collections::BTreeMap<String, String>,
                     field: &str|
     -> Vec<(HeaderName, HeaderValue)> {
        map.iter()
            .filter_map(|(name, value)| {
                let at = format!("{path}.{field}[{name}]");
                let name = errors.check(&at, HeaderName::from_str(&name.to_ascii_lowercase()))?;
                Some((name, errors.check(&at, HeaderValue::from_str(value))?))
            })
            .collect()
    };
    let set = pairs(&ops.set, "set");
    let add = pairs(&ops.add, "add");
    let remove = ops
        .remove
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            errors.check(
                &format!("{path}.remove[{i}]"),
                HeaderName::from_str(&name.to_ascii_lowercase()),
            )
        })
        .collect();
    HeaderOps { set, add, remove }
}

fn mirrors(route: &config::HttpRoute) -> Vec<Mirror> {
    let legacy = route.mirror.as_ref().map(|d| Mirror {
        destination: destination(d),
        fraction: share(route.mirror_percentage, route.mirror_percent),
    });
    legacy
        .into_iter()
        .chain(route.mirrors.iter().map(|m| Mirror {
            destination: destination(&m.destination),
            fraction: share(m.percentage, None),
        }))
        .collect()
}

/// Standard base64 (with or without padding), for `directResponse.body.bytes`.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("{:?} is not base64", char::from(c))),
        }
        .into())
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    if digits.len() % 4 == 1 {
        return Err("truncated base64".into());
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

#[cfg(test)]
pub(super) fn decode_for_test(text: &str) -> Result<Vec<u8>, String> {
    base64_decode(text)
}
