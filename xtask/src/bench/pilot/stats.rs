//! Percentiles of latencies, and the summary of repeated rounds.

use std::time::Duration;

/// p50, p99 and max of a set of latencies, and how many there were.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Spread {
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Spread {
            count: samples.len(),
            p50: percentile(&samples, 0.50),
            p99: percentile(&samples, 0.99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// The nearest-rank percentile of sorted `samples`: the smallest value at least `q` of the
/// samples are at or below. Zero for no samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of a few values (the lower middle one for an even count).
pub fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

/// Repeated rounds of one scenario: the medians of their p50 and p99, the worst max, and
/// the fewest proxies any round reached.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub rounds: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub min_count: usize,
}

impl Summary {
    pub fn of(rounds: &[Spread]) -> Self {
        let p50: Vec<Duration> = rounds.iter().map(|r| r.p50).collect();
        let p99: Vec<Duration> = rounds.iter().map(|r| r.p99).collect();
        Summary {
            rounds: rounds.len(),
            p50: median(&p50),
            p99: median(&p99),
            max: rounds.iter().map(|r| r.max).max().unwrap_or_default(),
            min_count: rounds.iter().map(|r| r.count).min().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let samples = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&samples, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&ms(&[7]), 0.99), Duration::from_millis(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten = ms(&[10, 1, 9, 2, 8, 3, 7, 4, 6, 5]);
        let spread = Spread::of(ten);
        assert_eq!(spread.p50, Duration::from_millis(5));
        assert_eq!(spread.p99, Duration::from_millis(10));
        assert_eq!(spread.max, Duration::from_millis(10));
        assert_eq!(spread.count, 10);
    }

    #[test]
    fn rounds_summarise_as_medians_and_the_worst_max() {
        let round = |p50, p99, max, count| Spread {
            count,
            p50: Duration::from_millis(p50),
            p99: Duration::from_millis(p99),
            max: Duration::from_millis(max),
        };
        let summary = Summary::of(&[
            round(100, 150, 160, 200),
            round(300, 900, 950, 199),
            round(120, 170, 400, 200),
        ]);
        assert_eq!(summary.p50, Duration::from_millis(120));
        assert_eq!(summary.p99, Duration::from_millis(170));
        assert_eq!(summary.max, Duration::from_millis(950));
        assert_eq!(summary.min_count, 199);
        assert_eq!(summary.rounds, 3);
        assert_eq!(median(&ms(&[4, 1, 3, 2])), Duration::from_millis(2));
        assert_eq!(Summary::of(&[]), Summary::default());
    }
}
