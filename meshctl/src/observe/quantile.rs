//! Quantiles from histogram buckets, exactly as Prometheus's `histogram_quantile` computes
//! them: linear interpolation inside the bucket the rank falls in, the lower bound of the
//! first bucket taken as 0, and a rank in the `+Inf` bucket answered with the highest
//! finite bound.

/// `q` (0..=1) of the observations counted in `buckets`: `(upper bound, cumulative count)`
/// in any order, one of them `+Inf`. None when there is nothing to tell (no observations,
/// no `+Inf` bucket, fewer than two buckets).
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut buckets: Vec<(f64, f64)> = buckets
        .iter()
        .copied()
        .filter(|(le, count)| !le.is_nan() && !count.is_nan())
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets.dedup_by(|later, earlier| {
        // Equal bounds (two series summed without merging): one bucket, counts added.
        let same = later.0 == earlier.0;
        if same {
            earlier.1 += later.1;
        }
        same
    });
    if buckets.len() < 2 || buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
        return None;
    }
    // Counts scraped at slightly different moments can dip; Prometheus evens them out.
    let mut max = 0.0_f64;
    for bucket in &mut buckets {
        max = max.max(bucket.1);
        bucket.1 = max;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations <= 0.0 {
        return None;
    }
    let mut rank = q * observations;
    let finite = buckets.len() - 1;
    let b = buckets[..finite]
        .iter()
        .position(|(_, count)| *count >= rank)
        .unwrap_or(finite);
    if b == finite {
        return Some(buckets[finite - 1].0);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return Some(buckets[0].0);
    }
    let (end, mut count) = buckets[b];
    let mut start = 0.0;
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    Some(start + (end - start) * (rank / count))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn interpolates_inside_the_bucket_the_rank_falls_in() {
        // 10 observations in (1, 5], 10 in (5, 10].
        let buckets = [
            (0.5, 0.0),
            (1.0, 0.0),
            (5.0, 10.0),
            (10.0, 20.0),
            (INF, 20.0),
        ];
        assert_eq!(histogram_quantile(0.5, &buckets), Some(5.0));
        assert_eq!(histogram_quantile(0.95, &buckets), Some(9.5));
        assert_eq!(histogram_quantile(0.99, &buckets), Some(9.9));
        assert_eq!(histogram_quantile(0.25, &buckets), Some(3.0));
    }

    #[test]
    fn the_first_bucket_starts_at_zero() {
        let buckets = [(10.0, 4.0), (INF, 4.0)];
        assert_eq!(histogram_quantile(0.5, &buckets), Some(5.0));
    }

    #[test]
    fn a_rank_in_the_inf_bucket_is_the_highest_finite_bound() {
        let buckets = [(100.0, 1.0), (250.0, 2.0), (INF, 10.0)];
        assert_eq!(histogram_quantile(0.99, &buckets), Some(250.0));
    }

    #[test]
    fn order_duplicates_and_dips_are_handled() {
        // Unsorted, a bound listed twice (summed), and a dip evened out.
        let buckets = [
            (INF, 20.0),
            (10.0, 12.0),
            (5.0, 10.0),
            (10.0, 8.0),
            (1.0, 11.0),
        ];
        // Cumulative after merging: 1 -> 11, 5 -> 11 (dip lifted), 10 -> 20, +Inf -> 20.
        assert_eq!(histogram_quantile(0.5, &buckets), Some(10.0 / 11.0));
        assert_eq!(
            histogram_quantile(0.95, &buckets),
            Some(5.0 + 5.0 * 8.0 / 9.0)
        );
    }

    #[test]
    fn nothing_to_tell_is_none() {
        assert_eq!(histogram_quantile(0.5, &[]), None);
        assert_eq!(histogram_quantile(0.5, &[(INF, 3.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(1.0, 3.0), (2.0, 3.0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(1.0, 0.0), (INF, 0.0)]), None);
        assert_eq!(histogram_quantile(1.5, &[(1.0, 1.0), (INF, 1.0)]), None);
    }
}
