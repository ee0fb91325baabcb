//! How long to wait before reaching pilot again: exponential, capped, with full jitter
//! (a uniform wait up to the ceiling), so that a fleet of proxies that lost pilot together
//! does not come back in lockstep.

use std::time::Duration;

use rand::RngExt;

pub const BASE: Duration = Duration::from_millis(100);
pub const CAP: Duration = Duration::from_secs(5);

/// The longest wait before attempt `failures + 1`: `base * 2^failures`, at most `cap`.
pub fn ceiling(failures: u32, base: Duration, cap: Duration) -> Duration {
    base.saturating_mul(1u32 << failures.min(20)).min(cap)
}

/// A uniform draw from `[0, ceiling]`.
pub fn jittered(ceiling: Duration, rng: &mut impl rand::Rng) -> Duration {
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rng.random_range(0..=micros))
}

/// The failures since the last stream that delivered something.
#[derive(Debug)]
pub struct Backoff {
    failures: u32,
    base: Duration,
    cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(BASE, CAP)
    }
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            failures: 0,
            base,
            cap,
        }
    }

    /// The wait before the next attempt; each call counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let wait = jittered(self.next_ceiling(), &mut rand::rng());
        self.failures = self.failures.saturating_add(1);
        wait
    }

    /// The longest the next attempt may wait.
    pub fn next_ceiling(&self) -> Duration {
        ceiling(self.failures, self.base, self.cap)
    }

    /// After a stream that worked: the next failure waits little again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let ceilings: Vec<_> = (0..9).map(|n| ceiling(n, BASE, CAP)).collect();
        let expected = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map(|ms| ms * MS);
        assert_eq!(ceilings, expected);
    }

    #[test]
    fn the_ceiling_never_overflows() {
        assert_eq!(ceiling(u32::MAX, BASE, CAP), CAP);
        assert_eq!(ceiling(63, Duration::MAX, Duration::MAX), Duration::MAX);
    }

    #[test]
    fn jitter_spreads_over_the_whole_range_and_never_beyond() {
        let mut rng = rand::rng();
        let draws: Vec<_> = (0..1000).map(|_| jittered(400 * MS, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= 400 * MS));
        assert!(draws.iter().any(|d| *d < 100 * MS), "low end reached");
        assert!(draws.iter().any(|d| *d > 300 * MS), "high end reached");
        assert_eq!(jittered(Duration::ZERO, &mut rng), Duration::ZERO);
    }

    #[test]
    fn delays_grow_with_failures_and_reset_after_success() {
        let mut backoff = Backoff::new(BASE, CAP);
        for n in 0..8 {
            let ceiling = backoff.next_ceiling();
            assert_eq!(ceiling, super::ceiling(n, BASE, CAP));
            let delay = backoff.next_delay();
            assert!(delay <= ceiling, "attempt {n}: {delay:?}");
        }
        assert_eq!(backoff.next_ceiling(), CAP);
        backoff.reset();
        assert_eq!(
            backoff.next_ceiling(),
            BASE,
            "back to the base after a reset"
        );
    }
}
