//! How one request is answered, decided from its knobs, its path and the server's defaults.
//! Pure apart from the fail counter, so the precedence rules are tested without sockets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;

use crate::calls::Call;
use crate::config::Behaviour;
use crate::knobs::RequestKnobs;

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub status: StatusCode,
    pub delay: Duration,
    pub body_size: Option<u64>,
    pub close: bool,
}

impl Plan {
    /// Each knob: the request's header, else the server default. The status, from strongest
    /// to weakest: a fail-percent hit (503), `x-echo-status`, `/status/<code>`, the default.
    pub fn resolve(
        knobs: &RequestKnobs,
        path_status: Option<StatusCode>,
        defaults: &Behaviour,
        failures: &FailSchedule,
    ) -> Self {
        let fail_percent = knobs.fail_percent.unwrap_or(defaults.fail_percent);
        let status = if failures.next_fails(fail_percent) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            knobs.status.or(path_status).unwrap_or(defaults.status)
        };
        Self {
            status,
            delay: knobs.delay.unwrap_or(defaults.delay),
            body_size: knobs.body_size.or(defaults.body_size),
            close: knobs.close.unwrap_or(defaults.close),
        }
    }

    /// With `--fail-on-call-error`, a planned success becomes 502 when a call got no answer
    /// or a 5xx. A failure the knobs asked for stays, since it was asked for.
    #[must_use]
    pub fn after_calls(self, fail_on_error: bool, calls: &[Call]) -> Self {
        if fail_on_error && self.status.is_success() && calls.iter().any(Call::failed) {
            Self {
                status: StatusCode::BAD_GATEWAY,
                ..self
            }
        } else {
            self
        }
    }
}

/// Counts the requests that had a fail percentage, so that failures are spread exactly
/// rather than randomly: a test asserting "50% fail" or a retry test relying on "the retry
/// succeeds" never flakes.
#[derive(Debug, Default)]
pub struct FailSchedule {
    seen: AtomicU64,
}

impl FailSchedule {
    /// Whether the next request with this fail percentage fails. Requests without one (0)
    /// do not advance the count, so they cannot shift the pattern of those that have one.
    pub fn next_fails(&self, percent: u8) -> bool {
        if percent == 0 {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        fails(n, percent)
    }
}

/// Whether the `n`th (0-based) request fails at `percent`: it does when `n + 1` requests owe
/// one failure more than `n` did, i.e. when `floor((n+1) * p / 100) > floor(n * p / 100)`.
/// Every 100 consecutive requests hold exactly `percent` failures, spread evenly: 50 fails
/// every second request (the 2nd, 4th, ...), 25 every fourth, 100 all, 1 the 100th.
/// Percentages above 100 count as 100.
pub fn fails(n: u64, percent: u8) -> bool {
    let p = u64::from(percent.min(100));
    let n = n % 100;
    (n + 1) * p / 100 > n * p / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hundred_requests_hold_exactly_percent_failures() {
        for percent in 0..=100u8 {
            for start in [0, 7, 100, 12345] {
                let failed = (start..start + 100).filter(|n| fails(*n, percent)).count();
                assert_eq!(
                    failed,
                    usize::from(percent),
                    "percent {percent} from {start}"
                );
            }
        }
    }

    #[test]
    fn failures_are_spread_evenly() {
        let pattern = |percent| (0..8).map(|n| fails(n, percent)).collect::<Vec<_>>();
        assert_eq!(
            pattern(50),
            [false, true, false, true, false, true, false, true]
        );
        assert_eq!(
            pattern(25),
            [false, false, false, true, false, false, false, true]
        );
        assert_eq!(pattern(100), [true; 8]);
        assert_eq!(pattern(0), [false; 8]);
        assert!(fails(99, 1) && !fails(98, 1));
        assert!(fails(3, 200), "above 100 counts as 100");
    }

    #[test]
    fn schedule_counts_only_requests_with_a_percentage() {
        let schedule = FailSchedule::default();
        assert!(!schedule.next_fails(50));
        assert!(!schedule.next_fails(0));
        assert!(schedule.next_fails(50));
    }

    #[test]
    fn failed_calls_fail_the_answer_only_when_asked() {
        let call = |status| Call {
            url: "http://reviews/".into(),
            status,
            duration_ms: 0,
            body: serde_json::Value::Null,
            error: status.is_none().then(|| "refused".to_owned()),
        };
        let plan = |status| Plan {
            status,
            delay: Duration::ZERO,
            body_size: None,
            close: false,
        };
        let ok = plan(StatusCode::OK);
        let failed = [call(Some(200)), call(None)];
        assert_eq!(
            ok.clone().after_calls(false, &failed).status,
            StatusCode::OK
        );
        assert_eq!(
            ok.clone().after_calls(true, &failed).status,
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ok.clone().after_calls(true, &[call(Some(503))]).status,
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ok.after_calls(true, &[call(Some(404))]).status,
            StatusCode::OK
        );
        let asked = plan(StatusCode::GATEWAY_TIMEOUT).after_calls(true, &failed);
        assert_eq!(asked.status, StatusCode::GATEWAY_TIMEOUT);
    }

    #[test]
    fn precedence() {
        let defaults = Behaviour {
            status: StatusCode::ACCEPTED,
            delay: Duration::from_millis(5),
            body_size: Some(10),
            ..Behaviour::default()
        };
        let none = RequestKnobs::default();
        let schedule = FailSchedule::default();
        let plan = Plan::resolve(&none, None, &defaults, &schedule);
        assert_eq!(
            plan,
            Plan {
                status: StatusCode::ACCEPTED,
                delay: Duration::from_millis(5),
                body_size: Some(10),
                close: false,
            }
        );

        let path = Some(StatusCode::NOT_FOUND);
        assert_eq!(
            Plan::resolve(&none, path, &defaults, &schedule).status,
            StatusCode::NOT_FOUND
        );

        let knobs = RequestKnobs {
            status: Some(StatusCode::BAD_GATEWAY),
            delay: Some(Duration::ZERO),
            body_size: Some(1),
            close: Some(true),
            fail_percent: Some(100),
        };
        let plan = Plan::resolve(&knobs, path, &defaults, &schedule);
        assert_eq!(plan.status, StatusCode::SERVICE_UNAVAILABLE, "failure wins");
        assert_eq!(
            (plan.delay, plan.body_size, plan.close),
            (Duration::ZERO, Some(1), true)
        );

        let knobs = RequestKnobs {
            fail_percent: Some(0),
            ..knobs
        };
        let failing = Behaviour {
            fail_percent: 100,
            ..defaults
        };
        let plan = Plan::resolve(&knobs, path, &failing, &schedule);
        assert_eq!(
            plan.status,
            StatusCode::BAD_GATEWAY,
            "header overrides default percent"
        );
    }
}
