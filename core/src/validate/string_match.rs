//! String matches, regexes and header names, in matches and header operations.

use crate::config::{HeaderOperations, Headers, StringMatch};

use super::{FieldPath, Report};

/// Whether an empty match (`{}`, or `regex: "*"`) is allowed, meaning "present with any
/// value": in `headers`, `withoutHeaders` and `queryParams` only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Presence {
    Allowed,
    Invalid,
}

/// Exactly one of `exact`, `prefix` or `regex`, and a regex that compiles.
pub(super) fn check_string_match(
    matcher: &StringMatch,
    presence: Presence,
    at: &FieldPath,
    report: &mut Report,
) {
    let set: Vec<&str> = [
        ("exact", matcher.exact.is_some()),
        ("prefix", matcher.prefix.is_some()),
        ("regex", matcher.regex.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, is_set)| is_set.then_some(name))
    .collect();
    match set.len() {
        0 if presence == Presence::Allowed => {}
        0 => report.error(
            at,
            "empty match; set one of exact, prefix or regex, or remove the match",
        ),
        1 => {}
        _ => report.error(
            at,
            format!(
                "set only one of exact, prefix or regex (found {})",
                set.join(" and ")
            ),
        ),
    }
    if let Some(pattern) = &matcher.regex
        && !(presence == Presence::Allowed && pattern == "*")
    {
        report.check(&at.field("regex"), check_regex(pattern));
    }
}

/// An RE2-syntax regex, compiled with the `regex` crate (the same syntax, minus RE2's few
/// byte-level escapes), at most 1024 characters as Envoy allows.
pub(super) fn check_regex(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("regex must not be empty; remove it or write a pattern".into());
    }
    if pattern.len() > 1024 {
        return Err(format!(
            "regex is {} characters long; at most 1024 are allowed",
            pattern.len()
        ));
    }
    regex::Regex::new(pattern).map(drop).map_err(|err| {
        format!(
            "invalid regex {pattern:?}: {}; write it in RE2 syntax (https://github.com/google/re2/wiki/Syntax)",
            regex_error_line(&err)
        )
    })
}

/// The `regex` crate's errors span several lines (pattern, caret, reason); a diagnostic
/// is one line, so keep the reason.
fn regex_error_line(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}

/// A header name in a match: letters, digits, `-` and `_`, as Istio requires.
pub(super) fn check_header_name(name: &str, at: &FieldPath, report: &mut Report) {
    if name.is_empty() {
        report.error(at, "header name must not be empty");
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        report.error(
            at,
            format!("header name {name:?} is invalid; use letters, digits, '-' and '_' only"),
        );
    } else if name.chars().any(|c| c.is_ascii_uppercase()) {
        report.warning(
            at,
            format!(
                "header names are case-insensitive and compared in lower case; write {:?}",
                name.to_ascii_lowercase()
            ),
        );
    }
}

/// Which side of the exchange header operations apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// `headers.request` and `headers.response` operations.
pub(super) fn check_headers(headers: &Headers, at: &FieldPath, report: &mut Report) {
    if let Some(request) = &headers.request {
        check_operations(request, Side::Request, &at.field("request"), report);
    }
    if let Some(response) = &headers.response {
        check_operations(response, Side::Response, &at.field("response"), report);
    }
}

fn check_operations(ops: &HeaderOperations, side: Side, at: &FieldPath, report: &mut Report) {
    for (field, values) in [("set", &ops.set), ("add", &ops.add)] {
        for (name, value) in values {
            let here = at.field(field).key(name);
            // Setting the authority is how a request's Host is rewritten; removing it is not.
            let authority_ok = side == Side::Request;
            report.check(&here, check_operation_name(name, authority_ok));
            report.check(&here, check_header_value(value));
        }
    }
    for (i, name) in ops.remove.iter().enumerate() {
        report.check(&at.item("remove", i), check_operation_name(name, false));
    }
}

fn check_operation_name(name: &str, authority_ok: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name must not be empty".into());
    }
    let is_authority = name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case(":authority");
    if is_authority {
        return if authority_ok {
            Ok(())
        } else {
            Err(format!(
                "header {name:?} cannot be changed here; rewrite the authority with rewrite.authority or headers.request.set"
            ))
        };
    }
    if name.starts_with(':') {
        return Err(format!(
            "header {name:?} is a pseudo-header and cannot be changed; remove it"
        ));
    }
    http::HeaderName::from_bytes(name.as_bytes())
        .map(drop)
        .map_err(|_| format!("header name {name:?} is not a valid HTTP header name; use letters, digits and -_.!#$%&'*+^`|~"))
}

fn check_header_value(value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_ascii_control() && c != '\t') {
        Err(format!(
            "header value {value:?} contains control characters; remove them"
        ))
    } else {
        Ok(())
    }
}
