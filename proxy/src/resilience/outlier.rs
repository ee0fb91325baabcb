//! Outlier detection (DestinationRule `outlierDetection`): an endpoint that fails N times in
//! a row is ejected for `baseEjectionTime` x its number of ejections, within
//! `maxEjectionPercent` (at least one endpoint may always be ejected).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use http::StatusCode;
use mesh_core::model::OutlierPolicy;
use serde::Serialize;
use tokio::time::Instant;

/// What one try against an endpoint came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Response(StatusCode),
    /// Connection refused, reset or timed out: counts as a gateway error and a 5xx.
    LocalFailure,
}

#[derive(Debug, Default, Clone)]
struct EndpointHealth {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    consecutive_local: u32,
    ejections: u32,
    ejected_until: Option<Instant>,
}

/// Per-endpoint health of one cluster.
#[derive(Default)]
pub struct Outliers {
    endpoints: Mutex<HashMap<SocketAddr, EndpointHealth>>,
}

/// An endpoint's health as `/clusters` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HealthView {
    pub ejected: bool,
    pub ejections: u32,
}

impl Outliers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, EndpointHealth>> {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_ejected(&self, address: SocketAddr, now: Instant) -> bool {
        self.lock()
            .get(&address)
            .and_then(|h| h.ejected_until)
            .is_some_and(|until| now < until)
    }

    pub fn view(&self, address: SocketAddr, now: Instant) -> HealthView {
        let endpoints = self.lock();
        let health = endpoints.get(&address);
        HealthView {
            ejected: health
                .and_then(|h| h.ejected_until)
                .is_some_and(|until| now < until),
            ejections: health.map_or(0, |h| h.ejections),
        }
    }

    /// Whether ejections apply: not when too few endpoints would be left (panic mode).
    pub fn enforced(&self, policy: &OutlierPolicy, members: &[SocketAddr], now: Instant) -> bool {
        let ejected = self.ejected_among(members, now);
        let healthy = members.len().saturating_sub(ejected);
        healthy * 100 >= members.len() * policy.min_health_percent as usize && healthy > 0
    }

    fn ejected_among(&self, members: &[SocketAddr], now: Instant) -> usize {
        let endpoints = self.lock();
        members
            .iter()
            .filter(|a| {
                endpoints
                    .get(a)
                    .and_then(|h| h.ejected_until)
                    .is_some_and(|until| now < until)
            })
            .count()
    }

    /// Records one outcome; returns true when it ejected the endpoint.
    pub fn report(
        &self,
        policy: &OutlierPolicy,
        address: SocketAddr,
        outcome: Outcome,
        members: &[SocketAddr],
        now: Instant,
    ) -> bool {
        let split = policy.consecutive_local_origin_failures.is_some();
        let (is_5xx, is_gateway, is_local) = match outcome {
            Outcome::Response(status) => (
                status.is_server_error(),
                matches!(status.as_u16(), 502..=504),
                false,
            ),
            // Split: a local failure counts only as local; otherwise as a 5xx and a gateway error.
            Outcome::LocalFailure => (!split, !split, true),
        };
        let ejected_now = self.ejected_among(members, now);
        let mut endpoints = self.lock();
        let health = endpoints.entry(address).or_default();
        health.consecutive_5xx = if is_5xx {
            health.consecutive_5xx + 1
        } else {
            0
        };
        health.consecutive_gateway = if is_gateway {
            health.consecutive_gateway + 1
        } else {
            0
        };
        // An answer from the upstream, even a 5xx, proves it reachable.
        health.consecutive_local = if is_local {
            health.consecutive_local + 1
        } else {
            0
        };
        let tripped = policy
            .consecutive_5xx
            .is_some_and(|n| health.consecutive_5xx >= n)
            || policy
                .consecutive_gateway_errors
                .is_some_and(|n| health.consecutive_gateway >= n)
            || policy
                .consecutive_local_origin_failures
                .is_some_and(|n| health.consecutive_local >= n);
        let already = health.ejected_until.is_some_and(|until| now < until);
        let room = ejected_now == 0
            || ejected_now * 100 < members.len() * policy.max_ejection_percent as usize;
        if !tripped || already || !room {
            return false;
        }
        health.ejections += 1;
        health.ejected_until = Some(now + policy.base_ejection_time * health.ejections);
        health.consecutive_5xx = 0;
        health.consecutive_gateway = 0;
        health.consecutive_local = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 1000 + i)))
            .collect()
    }

    fn gateway_policy(n: u32) -> OutlierPolicy {
        OutlierPolicy {
            consecutive_5xx: None,
            consecutive_gateway_errors: Some(n),
            max_ejection_percent: 100,
            ..OutlierPolicy::default()
        }
    }

    #[test]
    fn consecutive_gateway_errors_eject_and_success_resets_the_count() {
        let (outliers, members, now) = (Outliers::default(), addrs(2), Instant::now());
        let policy = gateway_policy(3);
        let bad = Outcome::Response(StatusCode::GATEWAY_TIMEOUT);
        assert!(!outliers.report(&policy, members[0], bad, &members, now));
        assert!(!outliers.report(&policy, members[0], bad, &members, now));
        assert!(!outliers.report(
            &policy,
            members[0],
            Outcome::Response(StatusCode::OK),
            &members,
            now
        ));
        assert!(
            !outliers.report(&policy, members[0], bad, &members, now),
            "the success reset the count"
        );
        assert!(!outliers.report(&policy, members[0], bad, &members, now));
        assert!(outliers.report(&policy, members[0], bad, &members, now));
        assert!(outliers.is_ejected(members[0], now));
        assert!(!outliers.is_ejected(members[1], now));
    }

    #[test]
    fn ejection_time_grows_with_each_ejection() {
        let (outliers, members, now) = (Outliers::default(), addrs(2), Instant::now());
        let policy = gateway_policy(1);
        let base = policy.base_ejection_time;
        assert!(outliers.report(&policy, members[0], Outcome::LocalFailure, &members, now));
        assert!(!outliers.is_ejected(members[0], now + base + Duration::from_millis(1)));
        let later = now + base * 2;
        assert!(outliers.report(&policy, members[0], Outcome::LocalFailure, &members, later));
        assert!(
            outliers.is_ejected(members[0], later + base + Duration::from_millis(1)),
            "second ejection lasts 2x"
        );
        assert!(!outliers.is_ejected(members[0], later + base * 2 + Duration::from_millis(1)));
        assert_eq!(outliers.view(members[0], later).ejections, 2);
    }

    #[test]
    fn max_ejection_percent_still_allows_one() {
        let (outliers, members, now) = (Outliers::default(), addrs(4), Instant::now());
        let policy = OutlierPolicy {
            max_ejection_percent: 10,
            ..gateway_policy(1)
        };
        assert!(
            outliers.report(&policy, members[0], Outcome::LocalFailure, &members, now),
            "one always may go"
        );
        assert!(
            !outliers.report(&policy, members[1], Outcome::LocalFailure, &members, now),
            "25% > 10%"
        );
    }

    #[test]
    fn not_enforced_below_min_health() {
        let (outliers, members, now) = (Outliers::default(), addrs(2), Instant::now());
        let policy = OutlierPolicy {
            min_health_percent: 60,
            ..gateway_policy(1)
        };
        assert!(outliers.enforced(&policy, &members, now));
        outliers.report(&policy, members[0], Outcome::LocalFailure, &members, now);
        assert!(
            !outliers.enforced(&policy, &members, now),
            "50% healthy < 60%: panic mode"
        );
    }

    #[test]
    fn split_local_origin_failures_are_counted_apart() {
        let (outliers, members, now) = (Outliers::default(), addrs(2), Instant::now());
        let policy = OutlierPolicy {
            consecutive_5xx: Some(2),
            consecutive_local_origin_failures: Some(3),
            max_ejection_percent: 100,
            ..OutlierPolicy::default()
        };
        let local = Outcome::LocalFailure;
        assert!(!outliers.report(&policy, members[0], local, &members, now));
        assert!(
            !outliers.report(&policy, members[0], local, &members, now),
            "not a 5xx when split"
        );
        assert!(
            outliers.report(&policy, members[0], local, &members, now),
            "the third local failure ejects"
        );
        let error = Outcome::Response(StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!outliers.report(&policy, members[1], local, &members, now));
        assert!(
            !outliers.report(&policy, members[1], error, &members, now),
            "a 5xx resets the local count"
        );
        assert!(
            outliers.report(&policy, members[1], error, &members, now),
            "two 5xx eject"
        );
    }

    #[test]
    fn five_consecutive_5xx_by_default() {
        let (outliers, members, now) = (Outliers::default(), addrs(2), Instant::now());
        let policy = OutlierPolicy {
            max_ejection_percent: 100,
            ..OutlierPolicy::default()
        };
        let error = Outcome::Response(StatusCode::INTERNAL_SERVER_ERROR);
        let ejected: Vec<bool> = (0..5)
            .map(|_| outliers.report(&policy, members[0], error, &members, now))
            .collect();
        assert_eq!(ejected, [false, false, false, false, true]);
    }
}
