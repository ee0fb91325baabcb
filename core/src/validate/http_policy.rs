//! The policies of an HTTP route: retries, fault injection, CORS.

use crate::config::{CorsPolicy, Duration, FaultAbort, FaultDelay, HttpFaultInjection, HttpRetry};

use super::string_match::{Presence, check_string_match};
use super::values::{Zero, check_duration, check_percent, check_percentage};
use super::vocabulary::{HTTP_METHODS, check_grpc_status, check_http_status, check_retry_on};
use super::{FieldPath, Report};

pub(super) fn check_retries(
    retries: &HttpRetry,
    route_timeout: Option<&Duration>,
    at: &FieldPath,
    report: &mut Report,
) {
    if retries.attempts == 0 && (retries.per_try_timeout.is_some() || retries.retry_on.is_some()) {
        report.error(
            &at.field("attempts"),
            "retries are disabled (attempts is 0) but perTryTimeout or retryOn is set; set attempts, or remove them",
        );
    }
    if let Some(per_try) = &retries.per_try_timeout {
        let here = at.field("perTryTimeout");
        report.check(&here, check_duration(per_try, Zero::Disables));
        if let Some(timeout) = route_timeout.filter(|t| t.is_positive())
            && per_try > timeout
        {
            report.warning(
                &here,
                format!("perTryTimeout {per_try} is longer than the route timeout {timeout}, so no retry ever happens; shorten it"),
            );
        }
    }
    if let Some(retry_on) = &retries.retry_on {
        for condition in retry_on.split(',') {
            report.check(&at.field("retryOn"), check_retry_on(condition));
        }
    }
    if let Some(backoff) = &retries.backoff {
        report.check(&at.field("backoff"), check_duration(backoff, Zero::Invalid));
    }
}

pub(super) fn check_fault(fault: &HttpFaultInjection, at: &FieldPath, report: &mut Report) {
    if fault.delay.is_none() && fault.abort.is_none() {
        report.error(at, "fault needs a delay, an abort, or both");
    }
    if let Some(delay) = &fault.delay {
        check_delay(delay, &at.field("delay"), report);
    }
    if let Some(abort) = &fault.abort {
        check_abort(abort, &at.field("abort"), report);
    }
}

fn check_delay(delay: &FaultDelay, at: &FieldPath, report: &mut Report) {
    match &delay.fixed_delay {
        Some(fixed) => report.check(
            &at.field("fixedDelay"),
            check_duration(fixed, Zero::Invalid),
        ),
        None => report.error(at, "delay needs fixedDelay, e.g. fixedDelay: 5s"),
    }
    if let Some(percent) = delay.percent {
        report.check(&at.field("percent"), check_percent(percent));
        if delay.percentage.is_some() {
            report.error(
                &at.field("percent"),
                "set only one of percent and percentage (percent is the legacy form)",
            );
        }
    }
    if let Some(percentage) = &delay.percentage {
        report.check(
            &at.field("percentage").field("value"),
            check_percentage(percentage),
        );
    }
}

fn check_abort(abort: &FaultAbort, at: &FieldPath, report: &mut Report) {
    match (abort.http_status, &abort.grpc_status) {
        (None, None) => report.error(
            at,
            "abort needs httpStatus or grpcStatus, e.g. httpStatus: 503",
        ),
        (Some(_), Some(_)) => report.error(at, "set only one of httpStatus and grpcStatus"),
        _ => {}
    }
    if let Some(status) = abort.http_status {
        report.check(&at.field("httpStatus"), check_http_status(status));
    }
    if let Some(status) = &abort.grpc_status {
        report.check(&at.field("grpcStatus"), check_grpc_status(status));
    }
    if let Some(percentage) = &abort.percentage {
        report.check(
            &at.field("percentage").field("value"),
            check_percentage(percentage),
        );
    }
}

pub(super) fn check_cors(cors: &CorsPolicy, at: &FieldPath, report: &mut Report) {
    for (i, origin) in cors.allow_origins.iter().enumerate() {
        check_string_match(
            origin,
            Presence::Invalid,
            &at.item("allowOrigins", i),
            report,
        );
    }
    if !cors.allow_origin.is_empty() {
        report.warning(
            &at.field("allowOrigin"),
            "allowOrigin is deprecated; use allowOrigins with exact matches",
        );
    }
    for (i, method) in cors.allow_methods.iter().enumerate() {
        if !HTTP_METHODS.contains(&method.as_str()) {
            report.error(
                &at.item("allowMethods", i),
                format!(
                    "{method:?} is not an HTTP method; use one of {}",
                    HTTP_METHODS.join(", ")
                ),
            );
        }
    }
    for field in ["allowHeaders", "exposeHeaders"] {
        let names = if field == "allowHeaders" {
            &cors.allow_headers
        } else {
            &cors.expose_headers
        };
        for (i, name) in names.iter().enumerate() {
            let valid = name == "*"
                || (!name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            if !valid {
                report.error(
                    &at.item(field, i),
                    format!(
                        "header name {name:?} is invalid; use letters, digits, '-' and '_', or '*'"
                    ),
                );
            }
        }
    }
    if let Some(max_age) = &cors.max_age {
        let here = at.field("maxAge");
        report.check(&here, check_duration(max_age, Zero::Invalid));
        if max_age.as_nanos() % 1_000_000_000 != 0 {
            report.error(
                &here,
                format!("maxAge {max_age} is sent in whole seconds; round it, e.g. 30s or 24h"),
            );
        }
    }
}
