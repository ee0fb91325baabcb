//! One `match` condition of an HTTP route.

use std::collections::BTreeMap;

use crate::config::{HttpMatchRequest, StringMatch};

use super::l4_route::check_source_namespace;
use super::names::check_labels;
use super::net::check_port;
use super::string_match::{Presence, check_header_name, check_string_match};
use super::virtual_service::check_gateway_names;
use super::{FieldPath, Report};

pub(super) fn check(m: &HttpMatchRequest, at: &FieldPath, report: &mut Report) {
    for (field, matcher) in [
        ("uri", &m.uri),
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(matcher) = matcher {
            check_string_match(matcher, Presence::Invalid, &at.field(field), report);
        }
    }
    check_header_matches(&m.headers, &at.field("headers"), report);
    check_header_matches(&m.without_headers, &at.field("withoutHeaders"), report);
    for (name, matcher) in &m.query_params {
        let here = at.field("queryParams").key(name);
        if name.is_empty() {
            report.error(&here, "query parameter name must not be empty");
        }
        check_string_match(matcher, Presence::Allowed, &here, report);
    }
    if let Some(port) = m.port {
        report.check(&at.field("port"), check_port(port));
    }
    check_labels(&m.source_labels, &at.field("sourceLabels"), report);
    check_gateway_names(&m.gateways, &at.field("gateways"), report);
    if let Some(namespace) = &m.source_namespace {
        check_source_namespace(namespace, &at.field("sourceNamespace"), report);
    }
}

fn check_header_matches(
    headers: &BTreeMap<String, StringMatch>,
    at: &FieldPath,
    report: &mut Report,
) {
    for (name, matcher) in headers {
        let here = at.key(name);
        if name.starts_with("@request.auth.claims") {
            report.error(&here, "routing on JWT claims is not supported by mesh yet; match a header the application sets instead");
            continue;
        }
        check_header_name(name, &here, report);
        check_string_match(matcher, Presence::Allowed, &here, report);
    }
}
