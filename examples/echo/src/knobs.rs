//! Per-request knobs: `x-echo-*` request headers, so tests and the demo can steer the server
//! through a proxy without touching its configuration.
//!
//! The same parsers back the binary's flags, so a value means the same thing in a header, a
//! flag and an environment variable.

use std::time::Duration;

use http::{HeaderMap, StatusCode};

/// Answer with this status, e.g. `503`. Allowed: 200 to 599.
pub const STATUS: &str = "x-echo-status";
/// Wait before answering, e.g. `200ms`, `1.5s`, `0`.
pub const DELAY: &str = "x-echo-delay";
/// Answer 503 to this share of requests, `0` to `100`; see [`crate::plan::fails`].
pub const FAIL_PERCENT: &str = "x-echo-fail-percent";
/// Answer with exactly this many bytes instead of the JSON echo, e.g. `1024`.
pub const BODY_SIZE: &str = "x-echo-body-size";
/// `true` closes the connection after the response (HTTP/2: a GOAWAY).
pub const CLOSE: &str = "x-echo-close";

/// gRPC only: answer with this gRPC status code, `0` (OK) to `16`, e.g. `4`
/// (DEADLINE_EXCEEDED) or `8` (RESOURCE_EXHAUSTED), which no HTTP status maps to.
pub const GRPC_STATUS: &str = "x-echo-grpc-status";

/// Response header naming the answering service.
pub const NAME_HEADER: &str = "x-echo-name";
/// Response header naming the answering version.
pub const VERSION_HEADER: &str = "x-echo-version";

/// The longest delay accepted, so a typo cannot park a connection (and a graceful shutdown)
/// for days.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// The largest generated body accepted: enough for any benchmark, small enough that a typo
/// does not stream for hours.
pub const MAX_BODY_SIZE: u64 = 1 << 30;

/// A knob value that does not parse. The message says what would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid duration {0:?}: use a number with a unit, like 200ms or 1.5s, at most 300s")]
    Duration(String),
    #[error("invalid status {0:?}: use a number from 200 to 599")]
    Status(String),
    #[error("invalid percentage {0:?}: use a whole number from 0 to 100")]
    Percent(String),
    #[error("invalid body size {0:?}: use a number of bytes up to 1073741824")]
    BodySize(String),
    #[error("invalid boolean {0:?}: use true or false")]
    Bool(String),
    #[error("invalid gRPC status {0:?}: use a code from 0 (OK) to 16 (UNAUTHENTICATED)")]
    GrpcStatus(String),
}

/// A request header that does not parse, answered with 400 and this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnobError {
    #[error("header {header}: {source}")]
    Invalid {
        header: &'static str,
        source: ParseError,
    },
    #[error("header {0}: value is not visible ASCII")]
    NotText(&'static str),
}

/// The knobs one request asked for; `None` means "use the server's default".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestKnobs {
    pub status: Option<StatusCode>,
    pub delay: Option<Duration>,
    pub fail_percent: Option<u8>,
    pub body_size: Option<u64>,
    pub close: Option<bool>,
}

impl RequestKnobs {
    /// Reads every `x-echo-*` header; the first bad one is the error.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, KnobError> {
        Ok(Self {
            status: header(headers, STATUS, parse_status)?,
            delay: header(headers, DELAY, parse_duration)?,
            fail_percent: header(headers, FAIL_PERCENT, parse_percent)?,
            body_size: header(headers, BODY_SIZE, parse_body_size)?,
            close: header(headers, CLOSE, parse_bool)?,
        })
    }
}

/// The gRPC-only `x-echo-grpc-status` knob, read apart from [`RequestKnobs`] since HTTP
/// answers have no use for it.
pub fn grpc_status(headers: &HeaderMap) -> Result<Option<i32>, KnobError> {
    header(headers, GRPC_STATUS, parse_grpc_code)
}

fn header<T>(
    headers: &HeaderMap,
    name: &'static str,
    parse: fn(&str) -> Result<T, ParseError>,
) -> Result<Option<T>, KnobError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| KnobError::NotText(name))?;
    parse(text.trim())
        .map(Some)
        .map_err(|source| KnobError::Invalid {
            header: name,
            source,
        })
}

/// Parses a Go-style duration with an `ms` or `s` unit (`200ms`, `1.5s`); a bare `0` is
/// also accepted. A bare number is refused: `200` could mean either unit.
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let err = || ParseError::Duration(text.to_owned());
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        return Err(err());
    };
    // `f64::from_str` also takes "inf", "NaN" and "1e3"; only plain decimals are durations.
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err());
    }
    let value: f64 = number.parse().map_err(|_| err())?;
    let duration = Duration::try_from_secs_f64(value * scale).map_err(|_| err())?;
    if duration > MAX_DELAY {
        return Err(err());
    }
    Ok(duration)
}

/// Parses a final response status. 1xx are not final answers and 600+ are not HTTP.
pub fn parse_status(text: &str) -> Result<StatusCode, ParseError> {
    text.parse::<u16>()
        .ok()
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| ParseError::Status(text.to_owned()))
}

/// Parses a percentage, 0 to 100.
pub fn parse_percent(text: &str) -> Result<u8, ParseError> {
    text.parse::<u8>()
        .ok()
        .filter(|percent| *percent <= 100)
        .ok_or_else(|| ParseError::Percent(text.to_owned()))
}

/// Parses a body size in bytes, up to [`MAX_BODY_SIZE`].
pub fn parse_body_size(text: &str) -> Result<u64, ParseError> {
    text.parse::<u64>()
        .ok()
        .filter(|size| *size <= MAX_BODY_SIZE)
        .ok_or_else(|| ParseError::BodySize(text.to_owned()))
}

/// Parses a gRPC status code, 0 to 16.
pub fn parse_grpc_code(text: &str) -> Result<i32, ParseError> {
    text.parse::<i32>()
        .ok()
        .filter(|code| (0..=16).contains(code))
        .ok_or_else(|| ParseError::GrpcStatus(text.to_owned()))
}

/// Parses `true`/`false` (also `1`/`0`, `yes`/`no`, any case).
pub fn parse_bool(text: &str) -> Result<bool, ParseError> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ParseError::Bool(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("300s"), Ok(MAX_DELAY));
        for bad in [
            "", "200", "ms", "s", "-1s", "1e3ms", "infs", "NaNs", "1m", "301s", "1 s", "1..2s",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(ParseError::Duration(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status("503"), Ok(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(parse_status("200"), Ok(StatusCode::OK));
        for bad in ["", "101", "199", "600", "abc", "-1", "70000"] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn percents_sizes_and_bools() {
        assert_eq!(parse_percent("0"), Ok(0));
        assert_eq!(parse_percent("100"), Ok(100));
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("-5").is_err());
        assert_eq!(parse_body_size("1024"), Ok(1024));
        assert!(parse_body_size("1073741825").is_err());
        assert!(parse_body_size("1k").is_err());
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("maybe").is_err());
        assert_eq!(parse_grpc_code("14"), Ok(14));
        assert_eq!(parse_grpc_code("0"), Ok(0));
        for bad in ["17", "-1", "UNAVAILABLE", ""] {
            assert!(parse_grpc_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn headers_are_read_and_blamed_by_name() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            RequestKnobs::from_headers(&headers),
            Ok(RequestKnobs::default())
        );

        headers.insert(STATUS, "504".parse().expect("header value"));
        headers.insert(DELAY, " 10ms ".parse().expect("header value"));
        headers.insert(CLOSE, "true".parse().expect("header value"));
        let knobs = RequestKnobs::from_headers(&headers).expect("valid knobs");
        assert_eq!(knobs.status, Some(StatusCode::GATEWAY_TIMEOUT));
        assert_eq!(knobs.delay, Some(Duration::from_millis(10)));
        assert_eq!(knobs.close, Some(true));
        assert_eq!(knobs.fail_percent, None);

        headers.insert(FAIL_PERCENT, "lots".parse().expect("header value"));
        let err = RequestKnobs::from_headers(&headers).expect_err("bad percent");
        assert!(
            err.to_string().starts_with("header x-echo-fail-percent:"),
            "{err}"
        );

        let mut headers = HeaderMap::new();
        headers.insert(
            BODY_SIZE,
            http::HeaderValue::from_bytes(b"\xff").expect("header value"),
        );
        assert_eq!(
            RequestKnobs::from_headers(&headers),
            Err(KnobError::NotText(BODY_SIZE))
        );
    }
}
