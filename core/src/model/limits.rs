//! A cluster's circuit breakers and outlier detection (DestinationRule `connectionPool` and
//! `outlierDetection`), with Istio's defaults.

use std::time::Duration;

use super::Fraction;

/// Istio `connectionPool`: every limit defaults to "unlimited" (2^32-1), as Istio sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `tcp.maxConnections`: connections to the cluster; for HTTP/1.1, requests in flight.
    pub max_connections: u32,
    /// `http.http1MaxPendingRequests`: requests waiting for a connection.
    pub max_pending_requests: u32,
    /// `http.http2MaxRequests`: requests in flight to the cluster.
    pub max_requests: u32,
    /// `http.maxRetries`: retries in flight to the cluster.
    pub max_retries: u32,
    /// `retryBudget.percent`: retries in flight as a share of requests in flight.
    pub retry_budget: Fraction,
    /// `retryBudget.minRetryConcurrency`: retries in flight allowed whatever the share.
    pub min_retry_concurrency: u32,
    /// `http.idleTimeout` (else `tcp.idleTimeout`): idle pooled connections are closed.
    pub idle_timeout: Option<Duration>,
    /// `http.maxRequestsPerConnection`; 1 turns keep-alive off.
    pub max_requests_per_connection: Option<u32>,
    /// `http.h2UpgradePolicy: UPGRADE`: HTTP/1.1 requests go upstream as HTTP/2.
    pub upgrade_to_http2: bool,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: u32::MAX,
            max_pending_requests: u32::MAX,
            max_requests: u32::MAX,
            max_retries: u32::MAX,
            // Envoy's defaults for a retry budget.
            retry_budget: Fraction::from_percent(20.0),
            min_retry_concurrency: 3,
            idle_timeout: None,
            max_requests_per_connection: None,
            upgrade_to_http2: false,
        }
    }
}

/// Istio `outlierDetection`: endpoints that keep failing are ejected for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierPolicy {
    /// Consecutive 5xx (and connection failures) that eject; `None` disables.
    pub consecutive_5xx: Option<u32>,
    /// Consecutive 502/503/504 (and connection failures) that eject; `None` disables.
    pub consecutive_gateway_errors: Option<u32>,
    /// `Some` when local-origin failures (refused, reset, timed out) are counted apart
    /// (`splitExternalLocalOriginErrors`): how many in a row eject.
    pub consecutive_local_origin_failures: Option<u32>,
    /// How often ejections are reconsidered.
    pub interval: Duration,
    /// An ejection lasts this long times the number of times the endpoint was ejected.
    pub base_ejection_time: Duration,
    /// Most endpoints ejected at once, in percent; at least one may always be ejected.
    pub max_ejection_percent: u32,
    /// Below this share of healthy endpoints, ejected ones are used again (panic mode).
    pub min_health_percent: u32,
}

impl Default for OutlierPolicy {
    /// Istio's defaults once `outlierDetection` is present.
    fn default() -> Self {
        Self {
            consecutive_5xx: Some(5),
            consecutive_gateway_errors: None,
            consecutive_local_origin_failures: None,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
            min_health_percent: 0,
        }
    }
}
