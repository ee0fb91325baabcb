//! The fixed vocabularies config refers to: HTTP methods, retry conditions, gRPC statuses.

/// The HTTP methods Istio accepts in CORS policies and recognises in authorization rules.
pub(super) const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
];

/// `retryOn` conditions: Envoy's `x-envoy-retry-on` and `x-envoy-retry-grpc-on` values.
pub(super) const RETRY_ON: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// gRPC status names (https://github.com/grpc/grpc/blob/master/doc/statuscodes.md).
pub(super) const GRPC_STATUSES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The port protocols mesh understands, as Istio names them (any case).
pub(super) const PROTOCOLS: [&str; 8] = [
    "HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS",
];

/// What a port protocol carries, for the rules that depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Protocol {
    /// Plain-text HTTP of any version, gRPC included.
    Http,
    /// TLS on the wire: HTTPS or TLS.
    Tls,
    /// Anything else mesh proxies as opaque TCP.
    Tcp,
}

/// Classifies a port protocol; `None` when mesh does not know it.
pub(super) fn protocol(name: &str) -> Option<Protocol> {
    match name.to_ascii_uppercase().as_str() {
        "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" => Some(Protocol::Http),
        "HTTPS" | "TLS" => Some(Protocol::Tls),
        "TCP" | "MONGO" => Some(Protocol::Tcp),
        _ => None,
    }
}

/// A port protocol mesh knows; `optional` allows the empty string (protocol sniffing).
pub(super) fn check_protocol(name: &str, optional: bool) -> Result<(), String> {
    if (optional && name.is_empty()) || protocol(name).is_some() {
        Ok(())
    } else {
        Err(format!(
            "protocol {name:?} is not supported; use one of {}",
            PROTOCOLS.join(", ")
        ))
    }
}

/// An HTTP status code a proxy can send: 100..=599.
pub(super) fn check_http_status(status: u32) -> Result<(), String> {
    if (100..=599).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP status {status} is not in 100..599"))
    }
}

/// One `retryOn` entry: a condition name or an HTTP status code.
pub(super) fn check_retry_on(condition: &str) -> Result<(), String> {
    let condition = condition.trim();
    if RETRY_ON.contains(&condition) {
        return Ok(());
    }
    if let Ok(status) = condition.parse::<u32>() {
        return check_http_status(status)
            .map_err(|_| format!("retryOn status {condition} is not an HTTP status in 100..599"));
    }
    Err(format!(
        "{condition:?} is not a retryOn condition; use one of {} or an HTTP status code",
        RETRY_ON.join(", ")
    ))
}

/// A gRPC status name, upper case as Istio writes it.
pub(super) fn check_grpc_status(status: &str) -> Result<(), String> {
    if GRPC_STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(format!(
            "gRPC status {status:?} is not valid; use one of {}",
            GRPC_STATUSES.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_conditions() {
        for ok in ["5xx", "gateway-error", "unavailable", "503", " reset "] {
            assert!(check_retry_on(ok).is_ok(), "{ok}");
        }
        assert!(
            check_retry_on("5XX")
                .expect_err("case")
                .contains("not a retryOn condition")
        );
        assert!(check_retry_on("999").is_err());
    }

    #[test]
    fn statuses() {
        assert!(check_http_status(100).is_ok() && check_http_status(599).is_ok());
        assert!(check_http_status(600).is_err() && check_http_status(99).is_err());
        assert!(check_grpc_status("UNAVAILABLE").is_ok());
        assert!(check_grpc_status("unavailable").is_err());
    }
}
