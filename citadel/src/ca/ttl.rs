//! How long a certificate lives: the requested lifetime, clamped by policy and by the signing
//! certificate's own expiry. Pure, so every edge is a unit test.

use std::time::{Duration, SystemTime};

/// Not-before is this far in the past, so a peer whose clock is a little behind accepts it.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TtlError {
    #[error("validity_duration_seconds is negative ({0}); send 0 for the default")]
    Negative(i64),
    #[error("the CA's signing certificate has expired or expires within a second; rotate it")]
    SignerExpired,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TtlPolicy {
    /// Used when the request asks for 0.
    pub default: Duration,
    /// Longer requests are shortened to this.
    pub max: Duration,
}

impl TtlPolicy {
    /// The lifetime for a request of `requested_seconds` (0: the default).
    pub fn lifetime(&self, requested_seconds: i64) -> Result<Duration, TtlError> {
        let requested = match u64::try_from(requested_seconds) {
            Ok(0) => self.default,
            Ok(seconds) => Duration::from_secs(seconds),
            Err(_) => return Err(TtlError::Negative(requested_seconds)),
        };
        Ok(requested.min(self.max))
    }
}

/// Not-before and not-after for a certificate living `lifetime` from `now`, never past the
/// signer's expiry.
pub fn validity(
    now: SystemTime,
    lifetime: Duration,
    signer_not_after: SystemTime,
) -> Result<(SystemTime, SystemTime), TtlError> {
    let not_after = (now + lifetime).min(signer_not_after);
    if not_after <= now + Duration::from_secs(1) {
        return Err(TtlError::SignerExpired);
    }
    Ok((now - CLOCK_SKEW, not_after))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn policy() -> TtlPolicy {
        TtlPolicy {
            default: 24 * HOUR,
            max: 48 * HOUR,
        }
    }

    #[test]
    fn zero_means_the_default() {
        assert_eq!(policy().lifetime(0), Ok(24 * HOUR));
    }

    #[test]
    fn shorter_requests_are_kept_and_longer_ones_clamped() {
        assert_eq!(policy().lifetime(600), Ok(Duration::from_secs(600)));
        assert_eq!(policy().lifetime(48 * 3600), Ok(48 * HOUR));
        assert_eq!(policy().lifetime(i64::MAX), Ok(48 * HOUR));
    }

    #[test]
    fn a_default_above_the_max_is_clamped_too() {
        let policy = TtlPolicy {
            default: 48 * HOUR,
            max: HOUR,
        };
        assert_eq!(policy.lifetime(0), Ok(HOUR));
    }

    #[test]
    fn negative_requests_are_refused() {
        assert_eq!(policy().lifetime(-1), Err(TtlError::Negative(-1)));
    }

    #[test]
    fn validity_starts_a_minute_early_and_stops_at_the_signer() {
        let now = SystemTime::UNIX_EPOCH + 1000 * HOUR;
        let (before, after) = validity(now, HOUR, now + 10 * HOUR).expect("valid");
        assert_eq!(before, now - CLOCK_SKEW);
        assert_eq!(after, now + HOUR);
        let (_, after) = validity(now, 24 * HOUR, now + 2 * HOUR).expect("valid");
        assert_eq!(after, now + 2 * HOUR);
    }

    #[test]
    fn an_expired_signer_signs_nothing() {
        let now = SystemTime::UNIX_EPOCH + 1000 * HOUR;
        assert_eq!(validity(now, HOUR, now), Err(TtlError::SignerExpired));
        assert_eq!(
            validity(now, HOUR, now - HOUR),
            Err(TtlError::SignerExpired)
        );
    }
}
