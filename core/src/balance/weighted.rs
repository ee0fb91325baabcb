//! Choosing one of several items in proportion to their weights: a route's destinations,
//! or endpoints for the random balancer.

use rand::{Rng, RngExt};

use crate::model::{Endpoint, WeightedDestination};

/// Anything chosen by relative weight.
pub trait Weighted {
    fn weight(&self) -> u32;
}

impl Weighted for WeightedDestination {
    fn weight(&self) -> u32 {
        self.weight
    }
}

impl Weighted for Endpoint {
    fn weight(&self) -> u32 {
        self.effective_weight()
    }
}

/// The sum of the weights; `u64` so that no list of `u32` weights can overflow it.
pub fn total_weight<T: Weighted>(items: &[T]) -> u64 {
    items.iter().map(|item| u64::from(item.weight())).sum()
}

/// The index of the item that owns point `r` when each item owns a run of points as long as
/// its weight, in order: with weights `[20, 80]`, `r` in `0..20` picks 0 and `20..100` picks 1.
///
/// Draw `r` uniformly from `0..total_weight(items)` for a weighted choice; larger values wrap.
/// A lone item is always chosen, whatever its weight. If every weight is 0 the items share
/// equally (`r % len`), rather than dropping the traffic. `None` only for an empty slice.
pub fn choose_weighted<T: Weighted>(items: &[T], r: u64) -> Option<usize> {
    if items.len() <= 1 {
        return (!items.is_empty()).then_some(0);
    }
    let total = total_weight(items);
    if total == 0 {
        return usize::try_from(r % items.len() as u64).ok();
    }
    let mut point = r % total;
    items.iter().position(|item| {
        let weight = u64::from(item.weight());
        let owns = point < weight;
        point = point.saturating_sub(weight);
        owns
    })
}

/// A weighted random choice with the caller's random source.
pub fn pick_weighted<T: Weighted, R: Rng + ?Sized>(items: &[T], rng: &mut R) -> Option<usize> {
    let bound = match total_weight(items) {
        0 => items.len() as u64,
        total => total,
    };
    if bound == 0 {
        return None;
    }
    choose_weighted(items, rng.random_range(0..bound))
}
