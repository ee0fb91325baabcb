//! Property tests for the data-path decisions in `mesh_core::balance` and `mesh_core::model`.
//!
//! Each property uses a seeded RNG, so a failure reproduces from proptest's printed input.
//! Case counts are low on purpose: some cases draw 100k samples or build 65537-slot tables,
//! and `cargo test` runs in debug.

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, SocketAddr};

use mesh_core::balance::{Maglev, pick_least_request, pick_weighted};
use mesh_core::model::{Destination, Endpoint, StringMatch, WeightedDestination};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Keep failures in the test output rather than in files beside the tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Weighted destinations

/// Weight vectors of 1 to 8 entries summing to 100, zeros included: cut `0..=100` at random
/// points and take the gaps.
fn weights_summing_to_100() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(0u32..=100, 0..8).prop_map(|mut cuts| {
        cuts.sort_unstable();
        let mut previous = 0;
        let mut weights: Vec<u32> = cuts
            .into_iter()
            .map(|cut| {
                let gap = cut - previous;
                previous = cut;
                gap
            })
            .collect();
        weights.push(100 - previous);
        weights
    })
}

proptest! {
    #![proptest_config(config(12))]

    /// Over 100k draws every destination's share is within 2 percentage points of its weight.
    /// The standard deviation of a share over 100k draws is at most 0.16 points, so 2 points
    /// is a failure only if the choice is biased.
    #[test]
    fn weighted_choice_follows_weights(weights in weights_summing_to_100(), seed in any::<u64>()) {
        let dests: Vec<_> = weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| WeightedDestination {
                destination: Destination::new(format!("svc-{i}")),
                weight,
                ..Default::default()
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(seed);
        let draws = 100_000;
        let mut counts = vec![0u32; dests.len()];
        for _ in 0..draws {
            counts[pick_weighted(&dests, &mut rng).unwrap()] += 1;
        }
        for (count, weight) in counts.iter().zip(&weights) {
            let percent = f64::from(*count) * 100.0 / f64::from(draws);
            prop_assert!(
                (percent - f64::from(*weight)).abs() <= 2.0,
                "weights {weights:?} counts {counts:?}"
            );
            if *weight == 0 {
                prop_assert_eq!(*count, 0);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Maglev

/// Movement beyond the unavoidable `1/n`, as a fraction of all keys: 1 point.
///
/// Measured over thousands of random endpoint sets (n = 2 to 1000, 65537 slots), one
/// removal or addition moved at most 0.8 % of the keys of endpoints that stayed (mean 0.1 %
/// at n = 3, 0.5 % at n = 64); see `maglev_disruption_sweep` for the figures this run sees.
/// Keys are the table's slots themselves (`0..65537`), one key per slot, so the fractions
/// are exact rather than sampled.
const EXTRA_MOVEMENT: f64 = 0.01;

fn endpoint(ip: u32) -> Endpoint {
    Endpoint::new(SocketAddr::from((Ipv4Addr::from(ip), 8080)))
}

/// The address each key maps to: addresses, not indices, survive a change of endpoint set.
fn assignment(endpoints: &[Endpoint], keys: impl Iterator<Item = u64>) -> Vec<SocketAddr> {
    let table = Maglev::new(endpoints, Maglev::DEFAULT_TABLE_SIZE).unwrap();
    keys.map(|key| endpoints[table.pick(key).unwrap()].address)
        .collect()
}

/// One key per slot.
fn every_slot() -> impl Iterator<Item = u64> {
    0..Maglev::DEFAULT_TABLE_SIZE as u64
}

fn fraction(count: usize, total: usize) -> f64 {
    count as f64 / total.max(1) as f64
}

/// What one change of endpoint set did to the keys.
#[derive(Debug, Default, Clone, Copy)]
struct Disruption {
    /// Keys that changed endpoint, beyond the `1/n` that had to.
    excess: f64,
    /// Keys that changed endpoint although neither their old nor their new endpoint was the
    /// one removed or added.
    needless: f64,
}

impl Disruption {
    fn worst(self, other: Self) -> Self {
        Self {
            excess: self.excess.max(other.excess),
            needless: self.needless.max(other.needless),
        }
    }
}

fn removal(endpoints: &[Endpoint], victim: usize) -> Disruption {
    let before = assignment(endpoints, every_slot());
    let mut fewer = endpoints.to_vec();
    let gone = fewer.remove(victim).address;
    let after = assignment(&fewer, every_slot());
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    let survivors: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(b, _)| **b != gone)
        .collect();
    let survivors_moved = survivors.iter().filter(|(b, a)| b != a).count();
    Disruption {
        excess: fraction(moved, before.len()) - 1.0 / endpoints.len() as f64,
        needless: fraction(survivors_moved, survivors.len()),
    }
}

fn addition(endpoints: &[Endpoint], newcomer: Endpoint) -> Disruption {
    let before = assignment(endpoints, every_slot());
    let mut more = endpoints.to_vec();
    more.push(newcomer.clone());
    let after = assignment(&more, every_slot());
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    let elsewhere = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a && **a != newcomer.address)
        .count();
    Disruption {
        excess: fraction(moved, before.len()) - 1.0 / more.len() as f64,
        needless: fraction(elsewhere, before.len()),
    }
}

/// Removing one of `n` endpoints moves at most `1/n + EXTRA_MOVEMENT` of the keys, and at
/// most `EXTRA_MOVEMENT` of the keys whose endpoint stayed; adding one moves at most
/// `1/(n+1) + EXTRA_MOVEMENT`, and at most `EXTRA_MOVEMENT` between old endpoints.
fn check_disruption(ips: &[u32], victim: usize, newcomer: u32) -> Disruption {
    let endpoints: Vec<_> = ips.iter().map(|&ip| endpoint(ip)).collect();
    let n = endpoints.len();
    let removed = removal(&endpoints, victim);
    assert!(
        removed.excess <= EXTRA_MOVEMENT,
        "removing 1 of {n}: {removed:?}"
    );
    assert!(
        removed.needless <= EXTRA_MOVEMENT,
        "removing 1 of {n}: {removed:?}"
    );
    let added = addition(&endpoints, endpoint(newcomer));
    assert!(added.excess <= EXTRA_MOVEMENT, "adding 1 to {n}: {added:?}");
    assert!(
        added.needless <= EXTRA_MOVEMENT,
        "adding 1 to {n}: {added:?}"
    );
    removed.worst(added)
}

/// Distinct IPv4 addresses for `2..=64` endpoints, plus one more to add.
fn endpoint_set() -> impl Strategy<Value = (Vec<u32>, u32)> {
    prop::collection::btree_set(any::<u32>(), 3..=65).prop_map(|ips| {
        let mut ips: Vec<u32> = ips.into_iter().collect();
        let newcomer = ips.pop().unwrap_or_default();
        (ips, newcomer)
    })
}

proptest! {
    #![proptest_config(config(12))]

    #[test]
    fn maglev_moves_about_one_nth_of_keys(
        (ips, newcomer) in endpoint_set(),
        victim in any::<prop::sample::Index>(),
    ) {
        check_disruption(&ips, victim.index(ips.len()), newcomer);
    }

    /// The same key always gets the same endpoint, whatever order the endpoints arrive in:
    /// two proxies that see the same endpoints agree.
    #[test]
    fn maglev_is_deterministic_and_order_free(
        (ips, _) in endpoint_set(),
        seed in any::<u64>(),
    ) {
        let endpoints: Vec<_> = ips.iter().map(|&ip| endpoint(ip)).collect();
        let mut shuffled = endpoints.clone();
        shuffled.reverse();
        let len = shuffled.len();
        shuffled.rotate_left(seed as usize % len);
        let mut rng = StdRng::seed_from_u64(seed);
        let keys: Vec<u64> = (0..1000).map(|_| rng.next_u64()).collect();
        let first = assignment(&endpoints, keys.iter().copied());
        prop_assert_eq!(&first, &assignment(&endpoints, keys.iter().copied()));
        prop_assert_eq!(&first, &assignment(&shuffled, keys.iter().copied()));
    }
}

/// A fixed sweep over endpoint counts that reports the worst disruption it sees (run with
/// `--nocapture`) and asserts the same bounds as the property above.
#[test]
fn maglev_disruption_sweep() {
    let mut worst = Disruption::default();
    for n in [2u32, 3, 5, 8, 21, 64] {
        for trial in 0..2u32 {
            let base = 0x0a00_0000 + trial * 0x1_0000;
            let ips: Vec<u32> = (0..n).map(|i| base + i * 7 + 1).collect();
            let victim = (trial * 5 % n) as usize;
            worst = worst.worst(check_disruption(&ips, victim, base + 0xfff0));
        }
    }
    eprintln!(
        "maglev (65537 slots, n = 2..64): at most 1/n {:+.4} of keys moved; \
         at most {:.4} moved between endpoints that stayed",
        worst.excess, worst.needless
    );
}

// ---------------------------------------------------------------------------------------------
// Least request

proptest! {
    #![proptest_config(config(24))]

    /// Between two endpoints, the less loaded one is always chosen.
    #[test]
    fn least_request_two_endpoints_picks_the_lighter(
        light in 0u32..1000,
        extra in 1u32..1000,
        light_first in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let loads = if light_first { [light, light + extra] } else { [light + extra, light] };
        let expected = usize::from(!light_first);
        let mut rng = StdRng::seed_from_u64(seed);
        for _ in 0..500 {
            prop_assert_eq!(pick_least_request(2, |i| loads[i], &mut rng), Some(expected));
        }
    }

    /// With distinct loads, the endpoint of load rank `r` (0 = least loaded) is chosen with
    /// probability `2 (n-1-r) / (n (n-1))`: the least loaded `2/n` of the time, the most loaded
    /// never. Checked within 2 points over 20k draws (sd <= 0.36 points).
    #[test]
    fn least_request_prefers_the_less_loaded(
        loads in prop::collection::btree_set(0u32..10_000, 3..=16),
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        // Shuffle so that load order is not index order.
        let mut loads: Vec<u32> = loads.into_iter().collect();
        for i in (1..loads.len()).rev() {
            loads.swap(i, rng.random_range(0..=i));
        }
        let n = loads.len();
        let draws = 20_000;
        let mut counts = vec![0u32; n];
        for _ in 0..draws {
            counts[pick_least_request(n, |i| loads[i], &mut rng).unwrap()] += 1;
        }
        let mut by_load: Vec<usize> = (0..n).collect();
        by_load.sort_by_key(|&i| loads[i]);
        let most_loaded = by_load[n - 1];
        prop_assert_eq!(counts[most_loaded], 0);
        for (rank, &index) in by_load.iter().enumerate() {
            let expected = 2.0 * (n - 1 - rank) as f64 / (n * (n - 1)) as f64;
            let observed = f64::from(counts[index]) / f64::from(draws);
            prop_assert!(
                (observed - expected).abs() <= 0.02,
                "rank {rank}: observed {observed:.4}, expected {expected:.4}, loads {loads:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// String matching

proptest! {
    #![proptest_config(config(256))]

    /// Case-insensitive prefix matching agrees with lowercasing both sides, for any strings,
    /// including multi-byte characters that straddle the prefix's length.
    #[test]
    fn ignore_case_prefix_agrees_with_lowercasing(prefix in "[a-zA-Zé/]{0,4}", value in "[a-zA-Zé/]{0,6}") {
        let expected = value.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase());
        prop_assert_eq!(StringMatch::prefix(prefix.as_str()).matches_ignore_case(&value), expected);
    }

    /// An escaped literal compiled as a regex matches exactly that literal, never a longer or
    /// shorter string: the anchors hold.
    #[test]
    fn regex_is_anchored(literal in ".{0,8}", extra in ".{1,3}") {
        let m = StringMatch::regex(&regex::escape(&literal)).unwrap();
        prop_assert!(m.matches(&literal));
        let longer_after = format!("{literal}{extra}");
        let longer_before = format!("{extra}{literal}");
        prop_assert!(!m.matches(&longer_after));
        prop_assert!(!m.matches(&longer_before));
    }
}
