//! Keeping the certificate fresh: fetch one at start, renew at half-life (a little before,
//! at random, so a fleet issued together does not renew together), retry with backoff when
//! the CA fails, and keep presenting the current certificate meanwhile, saying louder and
//! louder that it is running out.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::certificate::WorkloadCertificate;
use super::manager::CertificateManager;
use super::source::{CertificateSource, FetchError};
use super::x509::format_rfc3339;
use crate::error_text::chain;

/// How certificates are requested and retried.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The lifetime asked for.
    pub ttl: Duration,
    /// The first wait after a failed attempt; it doubles with each failure, up to the cap.
    /// Also the shortest wait between two renewals.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long one attempt may take.
    pub fetch_timeout: Duration,
}

impl Policy {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(30),
        }
    }
}

/// Renews for as long as the task runs.
pub async fn run(
    manager: Arc<CertificateManager>,
    source: Arc<dyn CertificateSource>,
    policy: Policy,
) {
    let mut failures = 0u32;
    loop {
        let wait = match attempt(&manager, source.as_ref(), &policy).await {
            Ok(cert) => {
                failures = 0;
                renewed(&manager, &cert, &policy)
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                failed(&manager, &policy, failures, error.as_ref())
            }
        };
        tokio::time::sleep(wait).await;
    }
}

async fn attempt(
    manager: &CertificateManager,
    source: &dyn CertificateSource,
    policy: &Policy,
) -> Result<Arc<WorkloadCertificate>, FetchError> {
    let fetch = source.fetch(manager.identity(), policy.ttl);
    let fetched = tokio::time::timeout(policy.fetch_timeout, fetch)
        .await
        .map_err(|_| format!("no certificate within {:?}", policy.fetch_timeout))??;
    Ok(manager.install(fetched)?)
}

/// Records a new certificate; returns the wait until it is renewed.
fn renewed(manager: &CertificateManager, cert: &WorkloadCertificate, policy: &Policy) -> Duration {
    crate::metrics::certs::renewal(true);
    let now = SystemTime::now();
    let wait = renewal_delay(cert.not_before(), cert.not_after(), now, rand::random())
        .max(policy.retry_base);
    tracing::info!(
        identity = %cert.identity(),
        serial = %cert.leaf().serial,
        not_after = %format_rfc3339(cert.leaf().not_after),
        renew_in = ?wait,
        "workload certificate installed"
    );
    manager.update_status(|status| {
        status.failures = 0;
        status.last_error = None;
        status.next_attempt = Some(format_rfc3339(unix(now + wait)));
    });
    wait
}

/// Records a failed attempt, as loudly as the current certificate's remaining life calls
/// for; returns the wait until the next attempt.
fn failed(
    manager: &CertificateManager,
    policy: &Policy,
    failures: u32,
    error: &(dyn std::error::Error + Send + Sync + 'static),
) -> Duration {
    crate::metrics::certs::renewal(false);
    let error = chain(error);
    let now = SystemTime::now();
    let wait = retry_delay(
        policy.retry_base,
        policy.retry_cap,
        failures,
        rand::random(),
    );
    let current = manager.current();
    let urgency = current
        .as_deref()
        .map(|cert| urgency(cert.not_before(), cert.not_after(), now));
    match urgency {
        None => tracing::warn!(%error, failures, retry_in = ?wait,
            "no workload certificate yet: not ready until the CA issues one"),
        Some(Urgency::Calm) => tracing::warn!(%error, failures, retry_in = ?wait,
            "certificate renewal failed; the current certificate is still valid"),
        Some(Urgency::Expiring(left)) => tracing::error!(%error, failures, retry_in = ?wait,
            expires_in = ?left, "certificate renewal keeps failing and the certificate expires soon"),
        Some(Urgency::Expired) => tracing::error!(%error, failures, retry_in = ?wait,
            "the workload certificate has EXPIRED: peers refuse mTLS until the CA issues a new one"),
    }
    manager.update_status(|status| {
        status.failures = failures;
        status.last_error = Some(error);
        status.next_attempt = Some(format_rfc3339(unix(now + wait)));
    });
    wait
}

#[derive(Debug, PartialEq, Eq)]
enum Urgency {
    Calm,
    /// Less than a quarter of its life left.
    Expiring(Duration),
    Expired,
}

fn urgency(not_before: SystemTime, not_after: SystemTime, now: SystemTime) -> Urgency {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    match not_after.duration_since(now) {
        Err(_) => Urgency::Expired,
        Ok(left) if left < lifetime / 4 => Urgency::Expiring(left),
        Ok(_) => Urgency::Calm,
    }
}

/// The wait from `now` (when the certificate arrived) until renewal: half the lifetime,
/// less up to a tenth of it (`jitter` in `[0, 1)`); zero once expired or when the
/// validity makes no sense.
///
/// The lifetime counts from `now` when `not_before` is earlier: citadel backdates
/// `not_before` for clock skew, and with short TTLs that backdating would otherwise put
/// half-life in the past and renew in a loop.
pub fn renewal_delay(
    not_before: SystemTime,
    not_after: SystemTime,
    now: SystemTime,
    jitter: f64,
) -> Duration {
    let start = not_before.max(now);
    let Ok(lifetime) = not_after.duration_since(start) else {
        return Duration::ZERO;
    };
    let until = lifetime.mul_f64(0.5 - 0.1 * jitter.clamp(0.0, 1.0));
    (start + until).duration_since(now).unwrap_or_default()
}

/// The wait before attempt `failures + 1`: `base * 2^(failures - 1)` up to `cap`, of which
/// a random half (`draw` in `[0, 1)`), so retries spread out but still grow.
pub fn retry_delay(base: Duration, cap: Duration, failures: u32, draw: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let ceiling = base.saturating_mul(1 << doublings).min(cap);
    ceiling.mul_f64(0.5 + 0.5 * draw.clamp(0.0, 1.0))
}

fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn renews_at_half_life_less_jitter() {
        let start = UNIX_EPOCH + 1000 * HOUR;
        let end = start + 24 * HOUR;
        assert_eq!(renewal_delay(start, end, start, 0.0), 12 * HOUR);
        assert_eq!(
            renewal_delay(start, end, start, 0.999_999),
            Duration::from_secs_f64(24.0 * 3600.0 * 0.4000001)
        );
        assert_eq!(renewal_delay(start, end, end, 0.0), Duration::ZERO);
        assert_eq!(renewal_delay(end, start, start, 0.5), Duration::ZERO);
    }

    #[test]
    fn a_backdated_certificate_renews_at_half_its_remaining_life() {
        let issued = UNIX_EPOCH + 1000 * HOUR;
        let skew = Duration::from_secs(300);
        let end = issued + 10 * skew;
        assert_eq!(renewal_delay(issued - skew, end, issued, 0.0), 5 * skew);
        // Not valid yet (the CA's clock is ahead): half-life of the stated validity.
        assert_eq!(
            renewal_delay(issued + skew, end, issued, 0.0),
            skew + skew * 9 / 2
        );
    }

    #[test]
    fn failures_get_louder_as_the_certificate_runs_out() {
        let start = UNIX_EPOCH + 1000 * HOUR;
        let end = start + 24 * HOUR;
        assert_eq!(urgency(start, end, start + 13 * HOUR), Urgency::Calm);
        assert_eq!(
            urgency(start, end, start + 19 * HOUR),
            Urgency::Expiring(5 * HOUR)
        );
        assert_eq!(urgency(start, end, end), Urgency::Expiring(Duration::ZERO));
        assert_eq!(urgency(start, end, end + HOUR), Urgency::Expired);
    }

    #[test]
    fn retries_grow_to_the_cap_with_a_random_half() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        let top: Vec<u64> = (1..10)
            .map(|n| retry_delay(base, cap, n, 1.0).as_secs())
            .collect();
        assert_eq!(top, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(base, cap, 3, 0.0), Duration::from_secs(2));
        assert_eq!(
            retry_delay(base, cap, u32::MAX, 0.5),
            Duration::from_secs(45)
        );
    }

    #[test]
    fn chains_causes_once() {
        let inner = std::io::Error::other("connection refused");
        assert_eq!(
            chain(&Wrapped(inner)),
            "transport error: connection refused"
        );
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("transport error")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
