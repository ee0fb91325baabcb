//! One JSON line per request on stdout, with the fields of Envoy's default access log, when
//! enabled (`--access-log`). Off by default: at high rates a log line costs more than the
//! proxying itself.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http::request::Parts;
use serde::Serialize;

/// A request's log line, filled in as the request goes.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub start_time: String,
    pub method: String,
    pub path: String,
    pub protocol: String,
    pub response_code: u16,
    pub response_flags: String,
    pub bytes_received: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub duration: u64,
    pub upstream_host: Option<String>,
    pub upstream_cluster: Option<String>,
    pub route_name: Option<String>,
    pub request_id: Option<String>,
    pub authority: Option<String>,
    pub x_forwarded_for: Option<String>,
    pub user_agent: Option<String>,
    pub downstream_remote_address: Option<String>,
    /// Inbound with mTLS: the peer's SPIFFE ID.
    pub peer_identity: Option<String>,
    /// Inbound: the AuthorizationPolicy decision.
    pub authz: Option<String>,
}

impl Entry {
    pub fn start(parts: &Parts, peer: Option<SocketAddr>) -> Self {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            start_time: rfc3339(SystemTime::now()),
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            protocol: format!("{:?}", parts.version),
            response_code: 0,
            response_flags: "DC".into(),
            bytes_received: parts
                .headers
                .get("content-length")
                .and_then(|v| v.to_str().ok()?.parse().ok()),
            bytes_sent: None,
            duration: 0,
            upstream_host: None,
            upstream_cluster: None,
            route_name: None,
            request_id: header("x-request-id"),
            authority: parts
                .uri
                .authority()
                .map(|a| a.to_string())
                .or_else(|| header("host")),
            x_forwarded_for: header("x-forwarded-for"),
            user_agent: header("user-agent"),
            downstream_remote_address: peer.map(|p| p.to_string()),
            peer_identity: None,
            authz: None,
        }
    }

    pub fn write(&self) {
        let Ok(mut line) = serde_json::to_vec(self) else {
            return;
        };
        line.push(b'\n');
        // One write per line keeps lines whole when requests finish concurrently.
        let _ = std::io::stdout().lock().write_all(&line);
    }
}

/// `2026-11-21T03:59:55.123Z`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::time_text::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_millis(951_782_400_250); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.250Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_795_233_595);
        assert_eq!(rfc3339(later), "2026-11-21T03:59:55.000Z");
    }
}
