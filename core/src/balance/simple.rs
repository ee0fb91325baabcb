//! The balancers that need no hash key: round robin, random and least request.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng, RngExt};

use super::weighted::pick_weighted;
use crate::model::Endpoint;

/// ROUND_ROBIN: each pick takes the next endpoint in turn.
///
/// The counter is atomic so that one balancer can serve every connection of a cluster
/// through `&self`. Endpoint weights are not honoured (unlike Envoy's weighted round robin).
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the rotation at `offset`. Give each proxy a random offset so that a fleet that
    /// receives new endpoints at the same moment does not send its first requests to the
    /// same one.
    pub fn starting_at(offset: usize) -> Self {
        Self {
            next: AtomicUsize::new(offset),
        }
    }

    /// The next index in `0..len`, or `None` if `len` is 0.
    pub fn pick(&self, len: usize) -> Option<usize> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        turn.checked_rem(len)
    }
}

/// RANDOM: an endpoint chosen at random in proportion to its weight.
pub fn pick_random<R: Rng + ?Sized>(endpoints: &[Endpoint], rng: &mut R) -> Option<usize> {
    pick_weighted(endpoints, rng)
}

/// LEAST_REQUEST as "power of two choices": sample two different endpoints at random and take
/// the one with fewer requests in flight (`load(index)`), the first sampled on a tie.
///
/// Two distinct samples mean that the single most loaded endpoint is never chosen while
/// another exists, and that an endpoint chosen is always one of the less loaded of a random
/// pair: near least-loaded choices without scanning every endpoint or herding onto the one
/// least loaded endpoint, as picking the global minimum would when loads are reported late.
/// Weights are not honoured.
pub fn pick_least_request<R, L>(len: usize, load: L, rng: &mut R) -> Option<usize>
where
    R: Rng + ?Sized,
    L: Fn(usize) -> u32,
{
    match len {
        0 => None,
        1 => Some(0),
        _ => {
            let first = rng.random_range(0..len);
            let mut second = rng.random_range(0..len - 1);
            if second >= first {
                second += 1;
            }
            Some(if load(second) < load(first) {
                second
            } else {
                first
            })
        }
    }
}
