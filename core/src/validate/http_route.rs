//! One HTTP route of a VirtualService: what it does (route, redirect, direct response),
//! its matches, destinations, rewrites, mirrors and header operations.

use crate::config::{HttpDirectResponse, HttpRedirect, HttpRewrite, HttpRoute};

use super::string_match::{check_headers, check_regex};
use super::values::{Zero, check_duration, check_percent, check_percentage};
use super::virtual_service::{check_destination, check_weights};
use super::vocabulary::check_http_status;
use super::{FieldPath, Report, http_match, http_policy};

pub(super) fn check(route: &HttpRoute, at: &FieldPath, report: &mut Report) {
    check_action(route, at, report);
    for (i, m) in route.matches.iter().enumerate() {
        http_match::check(m, &at.item("match", i), report);
    }
    check_destinations(route, at, report);
    if let Some(redirect) = &route.redirect {
        check_redirect(redirect, &at.field("redirect"), report);
    }
    if let Some(direct) = &route.direct_response {
        check_direct_response(direct, &at.field("directResponse"), report);
    }
    if let Some(rewrite) = &route.rewrite {
        check_rewrite(rewrite, &at.field("rewrite"), report);
    }
    check_authority_rewrite(route, at, report);
    if let Some(timeout) = &route.timeout {
        report.check(
            &at.field("timeout"),
            check_duration(timeout, Zero::Disables),
        );
    }
    if let Some(retries) = &route.retries {
        http_policy::check_retries(
            retries,
            route.timeout.as_ref(),
            &at.field("retries"),
            report,
        );
    }
    if let Some(fault) = &route.fault {
        http_policy::check_fault(fault, &at.field("fault"), report);
    }
    check_mirrors(route, at, report);
    if let Some(cors) = &route.cors_policy {
        http_policy::check_cors(cors, &at.field("corsPolicy"), report);
    }
    if let Some(headers) = &route.headers {
        check_headers(headers, &at.field("headers"), report);
    }
}

/// Exactly one of route, redirect or directResponse says what happens to the request.
fn check_action(route: &HttpRoute, at: &FieldPath, report: &mut Report) {
    let routes = !route.route.is_empty();
    let redirect = route.redirect.is_some();
    let direct = route.direct_response.is_some();
    if !routes && !redirect && !direct {
        report.error(
            at,
            "HTTP route or redirect or directResponse is required; add a route with at least one destination",
        );
    }
    if routes && redirect {
        report.error(
            &at.field("redirect"),
            "a route cannot have both route and redirect; keep one",
        );
    }
    if routes && direct {
        report.error(
            &at.field("directResponse"),
            "a route cannot have both route and directResponse; keep one",
        );
    }
    if redirect && direct {
        report.error(
            &at.field("directResponse"),
            "a route cannot have both redirect and directResponse; keep one",
        );
    }
    if redirect && route.fault.is_some() {
        report.error(
            &at.field("fault"),
            "a route cannot have both fault and redirect; inject faults on a route with destinations",
        );
    }
    if redirect && route.rewrite.is_some() {
        report.error(
            &at.field("rewrite"),
            "a route cannot have both rewrite and redirect; set the new location in redirect",
        );
    }
}

fn check_destinations(route: &HttpRoute, at: &FieldPath, report: &mut Report) {
    let at = at.field("route");
    for (i, destination) in route.route.iter().enumerate() {
        let here = at.index(i);
        check_destination(&destination.destination, &here.field("destination"), report);
        if let Some(headers) = &destination.headers {
            check_headers(headers, &here.field("headers"), report);
        }
    }
    let weights: Vec<Option<u32>> = route.route.iter().map(|d| d.weight).collect();
    check_weights(&weights, &at, report);
}

fn check_redirect(redirect: &HttpRedirect, at: &FieldPath, report: &mut Report) {
    let sets_something = redirect.uri.is_some()
        || redirect.authority.is_some()
        || redirect.port.is_some()
        || redirect.derive_port.is_some()
        || redirect.scheme.is_some();
    if !sets_something {
        report.error(at, "redirect must set uri, authority, scheme or port");
    }
    if let Some(code) = redirect.redirect_code
        && !(300..=399).contains(&code)
    {
        report.error(
            &at.field("redirectCode"),
            format!("redirectCode {code} is not a redirect; use a 3xx code such as 301 or 308"),
        );
    }
    if let Some(scheme) = &redirect.scheme
        && scheme != "http"
        && scheme != "https"
    {
        report.error(
            &at.field("scheme"),
            format!("redirect scheme {scheme:?} is invalid; use http or https"),
        );
    }
    if let Some(port) = redirect.port {
        report.check(&at.field("port"), super::net::check_port(port));
        if redirect.derive_port.is_some() {
            report.error(
                &at.field("derivePort"),
                "set only one of port and derivePort",
            );
        }
    }
}

fn check_direct_response(direct: &HttpDirectResponse, at: &FieldPath, report: &mut Report) {
    report.check(&at.field("status"), check_http_status(direct.status));
    let Some(body) = &direct.body else { return };
    let at = at.field("body");
    let size = match (&body.string, &body.bytes) {
        (Some(_), Some(_)) => {
            report.error(&at, "set only one of string and bytes");
            return;
        }
        (Some(text), None) | (None, Some(text)) => text.len(),
        (None, None) => {
            report.error(
                &at,
                "body must set string or bytes; remove it for an empty body",
            );
            return;
        }
    };
    const KB: usize = 1024;
    if size > 1024 * KB {
        report.error(
            &at,
            "directResponse body must be smaller than 1MB; serve large bodies from a service",
        );
    } else if size > 100 * KB {
        report.warning(&at, "directResponse body is larger than 100KB, which every proxy keeps in memory; serve it from a service");
    }
}

fn check_rewrite(rewrite: &HttpRewrite, at: &FieldPath, report: &mut Report) {
    if rewrite.uri.is_some() && rewrite.uri_regex_rewrite.is_some() {
        report.error(at, "set only one of uri and uriRegexRewrite");
    }
    if rewrite.uri.is_none() && rewrite.uri_regex_rewrite.is_none() && rewrite.authority.is_none() {
        report.error(at, "rewrite must set uri, uriRegexRewrite or authority");
    }
    if let Some(regex) = &rewrite.uri_regex_rewrite {
        let at = at.field("uriRegexRewrite");
        if regex.rewrite.is_empty() {
            report.error(
                &at.field("rewrite"),
                "rewrite must not be empty; write the replacement, e.g. /v2/\\1",
            );
        }
        report.check(&at.field("match"), check_regex(&regex.pattern));
    }
}

/// The authority can be rewritten in one place only: rewrite.authority or a Host header.
fn check_authority_rewrite(route: &HttpRoute, at: &FieldPath, report: &mut Report) {
    let Some(request) = route.headers.as_ref().and_then(|h| h.request.as_ref()) else {
        return;
    };
    let mut sources: Vec<FieldPath> = Vec::new();
    if route
        .rewrite
        .as_ref()
        .is_some_and(|r| r.authority.is_some())
    {
        sources.push(at.field("rewrite").field("authority"));
    }
    for (field, ops) in [("set", &request.set), ("add", &request.add)] {
        for name in ops.keys() {
            if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case(":authority") {
                sources.push(at.field("headers").field("request").field(field).key(name));
            }
        }
    }
    if let [first, rest @ ..] = sources.as_slice() {
        for other in rest {
            report.error(
                other,
                format!("the authority is already rewritten at {first}; set it in one place only"),
            );
        }
    }
}

fn check_mirrors(route: &HttpRoute, at: &FieldPath, report: &mut Report) {
    if let Some(mirror) = &route.mirror {
        check_destination(mirror, &at.field("mirror"), report);
        if !route.mirrors.is_empty() {
            report.error(&at.field("mirrors"), "set only one of mirror and mirrors");
        }
    }
    if let Some(percent) = route.mirror_percent {
        let here = at.field("mirrorPercent");
        report.check(&here, check_percent(percent));
        if route.mirror_percentage.is_some() {
            report.error(
                &here,
                "set only one of mirrorPercent and mirrorPercentage (mirrorPercent is deprecated)",
            );
        } else {
            report.warning(
                &here,
                "mirrorPercent is deprecated; use mirrorPercentage: {value: ...}",
            );
        }
    }
    if let Some(percentage) = &route.mirror_percentage {
        report.check(
            &at.field("mirrorPercentage").field("value"),
            check_percentage(percentage),
        );
    }
    if route.mirror.is_none() {
        let field = match (route.mirror_percent, &route.mirror_percentage) {
            (Some(_), _) => Some("mirrorPercent"),
            (None, Some(_)) => Some("mirrorPercentage"),
            (None, None) => None,
        };
        if let Some(field) = field {
            report.warning(
                &at.field(field),
                "a mirror percentage without mirror has no effect; add mirror, or set percentage inside mirrors",
            );
        }
    }
    for (i, mirror) in route.mirrors.iter().enumerate() {
        let here = at.item("mirrors", i);
        check_destination(&mirror.destination, &here.field("destination"), report);
        if let Some(percentage) = &mirror.percentage {
            report.check(
                &here.field("percentage").field("value"),
                check_percentage(percentage),
            );
        }
    }
}
