//! One JSON line per request on stdout, with every field of Envoy's default access log
//! format (null where unknown, the key always present), plus the peers' identities.
//!
//! On when the proxy's Telemetry says so (`snapshot.telemetry.accessLogging`, switched live
//! with every snapshot), or always with `--access-log`. Off by default: at high rates a log
//! line costs more than the proxying itself. Lines go out from a thread of their own
//! ([`writer`]): a slow stdout drops lines (counted), it never stalls a request.

pub mod writer;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use http::request::Parts;
use mesh_core::snapshot::TelemetrySpec;
use serde::Serialize;

use crate::time_text::format_rfc3339_millis as rfc3339;

/// What the last applied snapshot's Telemetry asks. Process-wide like the metrics recorder:
/// a proxy process serves one snapshot at a time.
static CONFIGURED: AtomicBool = AtomicBool::new(false);

/// The telemetry last applied, to log only real changes.
static APPLIED: Mutex<Option<TelemetrySpec>> = Mutex::new(None);

/// Whether a request starting now is logged: `forced` is `--access-log`.
pub fn enabled(forced: bool) -> bool {
    forced || CONFIGURED.load(Ordering::Relaxed)
}

/// Takes a new snapshot's telemetry: switches access logging and logs what changed.
pub fn configure(telemetry: Option<&TelemetrySpec>) {
    CONFIGURED.store(asks_for_logs(telemetry), Ordering::Relaxed);
    let mut applied = APPLIED.lock().unwrap_or_else(|p| p.into_inner());
    if applied.as_ref() == telemetry {
        return;
    }
    *applied = telemetry.cloned();
    let tracing = telemetry.and_then(|t| t.tracing.as_ref());
    tracing::info!(
        access_logging = telemetry.is_some_and(|t| t.access_logging),
        tracing_collector = tracing.map(|t| t.collector.as_str()),
        tracing_sampling_percentage = tracing.map(|t| t.sampling_percentage),
        sources = ?telemetry.map(|t| &t.sources),
        "telemetry changed"
    );
}

fn asks_for_logs(telemetry: Option<&TelemetrySpec>) -> bool {
    telemetry.is_some_and(|t| t.access_logging)
}

/// For `/config_dump`: whether lines are written, and why.
pub fn status(forced: bool) -> serde_json::Value {
    serde_json::json!({
        "enabled": enabled(forced),
        "forcedByFlag": forced,
        "fromTelemetry": CONFIGURED.load(Ordering::Relaxed),
    })
}

/// A request's log line, filled in as the request goes. Field names and meanings are
/// Envoy's default format's (`%START_TIME%`, `%RESPONSE_FLAGS%`, ...).
#[derive(Debug, Serialize)]
pub struct Entry {
    pub start_time: String,
    pub method: String,
    pub path: String,
    pub protocol: String,
    pub response_code: u16,
    pub response_flags: String,
    /// `via_upstream` when the upstream answered, else why the proxy did.
    pub response_code_details: Option<String>,
    pub connection_termination_details: Option<String>,
    pub upstream_transport_failure_reason: Option<String>,
    pub bytes_received: Option<u64>,
    pub bytes_sent: Option<u64>,
    /// Milliseconds from the request's start until its response body ended.
    pub duration: u64,
    pub x_envoy_upstream_service_time: Option<String>,
    pub x_forwarded_for: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub authority: Option<String>,
    pub upstream_host: Option<String>,
    pub upstream_cluster: Option<String>,
    pub upstream_local_address: Option<String>,
    pub downstream_local_address: Option<String>,
    pub downstream_remote_address: Option<String>,
    pub requested_server_name: Option<String>,
    pub route_name: Option<String>,
    /// Inbound with mTLS: the caller's SPIFFE ID.
    pub downstream_peer_principal: Option<String>,
    /// Outbound over mTLS: the upstream's SPIFFE ID.
    pub upstream_peer_principal: Option<String>,
    /// Inbound: the AuthorizationPolicy decision.
    pub authz: Option<String>,
    #[serde(skip)]
    started: std::time::Instant,
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
            response_code_details: None,
            connection_termination_details: None,
            upstream_transport_failure_reason: None,
            bytes_received: parts
                .headers
                .get("content-length")
                .and_then(|v| v.to_str().ok()?.parse().ok()),
            bytes_sent: None,
            duration: 0,
            x_envoy_upstream_service_time: None,
            x_forwarded_for: header("x-forwarded-for"),
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
            authority: parts
                .uri
                .authority()
                .map(|a| a.to_string())
                .or_else(|| header("host")),
            upstream_host: None,
            upstream_cluster: None,
            upstream_local_address: None,
            downstream_local_address: None,
            downstream_remote_address: peer.map(|p| p.to_string()),
            requested_server_name: None,
            route_name: None,
            downstream_peer_principal: None,
            upstream_peer_principal: None,
            authz: None,
            started: std::time::Instant::now(),
        }
    }

    /// An inbound request: who called, and the address it called.
    pub fn set_peer(&mut self, peer: &crate::inbound::Peer) {
        self.downstream_peer_principal = peer.identity.as_deref().map(str::to_owned);
        self.downstream_local_address = Some(peer.local.to_string());
    }

    /// The response's code and flags, and where it came from.
    pub fn observe<B>(&mut self, response: &http::Response<B>) {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        self.response_code = response.status().as_u16();
        let flags = header(crate::http::RESPONSE_FLAGS);
        let upstream = response
            .extensions()
            .get::<crate::metrics::UpstreamHost>()
            .map(|h| h.0);
        self.response_code_details = Some(match (&flags, upstream) {
            (Some(flags), _) => format!("local_reply:{flags}"),
            (None, Some(_)) => "via_upstream".into(),
            (None, None) => "local_reply".into(),
        });
        self.response_flags = flags.unwrap_or_else(|| "-".into());
        self.upstream_host = upstream.map(|h| h.to_string());
        let extensions = response.extensions();
        // Over mesh mTLS the upstream proved the identity its endpoint is known by.
        self.upstream_peer_principal = extensions
            .get::<crate::metrics::UpstreamMtls>()
            .and(extensions.get::<crate::metrics::UpstreamWorkload>())
            .map(|w| w.0.principal.clone())
            .filter(|p| p != mesh_core::model::WorkloadMeta::UNKNOWN);
        // As Envoy sets the header: ms until the upstream's response headers, which is now.
        self.x_envoy_upstream_service_time = header("x-envoy-upstream-service-time")
            .or_else(|| upstream.map(|_| self.started.elapsed().as_millis().to_string()));
    }

    pub fn write(&self) {
        let Ok(mut line) = serde_json::to_vec(self) else {
            return;
        };
        line.push(b'\n');
        writer::to_stdout(line);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// Every key of Envoy's default format, in every line, even when nothing is known.
    const ENVOY_FIELDS: [&str; 24] = [
        "start_time",
        "method",
        "path",
        "protocol",
        "response_code",
        "response_flags",
        "response_code_details",
        "connection_termination_details",
        "upstream_transport_failure_reason",
        "bytes_received",
        "bytes_sent",
        "duration",
        "x_envoy_upstream_service_time",
        "x_forwarded_for",
        "user_agent",
        "request_id",
        "authority",
        "upstream_host",
        "upstream_cluster",
        "upstream_local_address",
        "downstream_local_address",
        "downstream_remote_address",
        "requested_server_name",
        "route_name",
    ];

    #[test]
    fn a_line_has_every_field_even_unknown_ones() {
        let (parts, ()) = http::Request::get("http://reviews:9080/r?x=1")
            .header("x-request-id", "abc")
            .body(())
            .expect("request")
            .into_parts();
        let mut entry = Entry::start(&parts, None);
        let mut response = http::Response::new(());
        response
            .extensions_mut()
            .insert(crate::metrics::UpstreamHost(
                "127.0.0.1:9080".parse().expect("addr"),
            ));
        entry.observe(&response);
        let line: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&entry).expect("json")).expect("parses");
        for field in ENVOY_FIELDS
            .iter()
            .chain(&["downstream_peer_principal", "upstream_peer_principal"])
        {
            assert!(line.get(field).is_some(), "{field} missing: {line}");
        }
        assert_eq!(line["path"], "/r?x=1");
        assert_eq!(line["authority"], "reviews:9080");
        assert_eq!(line["request_id"], "abc");
        assert_eq!(line["response_code"], 200);
        assert_eq!(line["response_flags"], "-");
        assert_eq!(line["response_code_details"], "via_upstream");
        assert_eq!(line["upstream_host"], "127.0.0.1:9080");
        let service_time = line["x_envoy_upstream_service_time"].as_str().expect("set");
        assert!(service_time.parse::<u64>().is_ok(), "{line}");
        assert!(line["downstream_peer_principal"].is_null());
        assert!(line["upstream_peer_principal"].is_null(), "not mTLS");

        let identity = "spiffe://cluster.local/ns/shop/sa/reviews";
        let workload = mesh_core::model::WorkloadMeta::of_endpoint(
            "reviews-v1",
            Some(identity),
            &Default::default(),
        );
        let extensions = response.extensions_mut();
        extensions.insert(crate::metrics::UpstreamWorkload(std::sync::Arc::new(
            workload,
        )));
        extensions.insert(crate::metrics::UpstreamMtls);
        entry.observe(&response);
        assert_eq!(entry.upstream_peer_principal.as_deref(), Some(identity));
    }

    #[test]
    fn telemetry_switches_logging_and_the_flag_forces_it() {
        // The switch itself is process-wide and other tests apply snapshots: only the
        // decision is checked here; the e2e test switches it live.
        assert!(!asks_for_logs(None));
        assert!(!asks_for_logs(Some(&TelemetrySpec::default())));
        let on = TelemetrySpec {
            access_logging: true,
            ..TelemetrySpec::default()
        };
        assert!(asks_for_logs(Some(&on)));
        assert!(enabled(true), "--access-log forces it on");
        assert_eq!(status(true)["forcedByFlag"], true);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_millis(951_782_400_250); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.250Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_795_233_595);
        assert_eq!(rfc3339(later), "2026-11-21T03:59:55.000Z");
    }
}
