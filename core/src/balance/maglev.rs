//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), with Envoy's weighting and
//! random preference lists.

use std::net::{IpAddr, SocketAddr};

use super::BalanceError;
use super::hash::stable_hash;
use crate::model::Endpoint;

const EMPTY: u32 = u32::MAX;
/// SplitMix64's increment (the golden ratio in 64 bits).
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
/// Random preferences per endpoint before falling back to a linear scan; at 64 times the
/// table size the fallback is a termination guarantee that is practically never used (one
/// endpoint filling a whole table needs about `ln(size)` times the size).
const RANDOM_PREFERENCES_PER_SLOT: u64 = 64;

/// A Maglev lookup table: `table_size` slots, each owned by one endpoint; a key picks the
/// slot `key % table_size`.
///
/// The table depends only on the endpoints' addresses and weights, not on their order in the
/// slice, so every proxy that sees the same endpoints builds the same table.
///
/// The fill is the paper's: endpoints take turns claiming the next free slot of their own
/// preference list until the table is full. The paper's lists are `(offset + j * skip) % size`;
/// here they are a SplitMix64 stream seeded by the endpoint's address. Linear lists of two
/// endpoints can be strongly correlated (skips `s` and `size - s` walk the same cycle in
/// opposite directions), and in our measurements such pairs made one removal move up to 5 to
/// 10 % of the keys of endpoints that stayed; with random lists it stayed under 0.5 %.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maglev {
    /// Slot -> index into the endpoint slice the table was built from. Empty when there are
    /// no endpoints.
    slots: Vec<u32>,
}

/// One endpoint's state while the table is filled.
struct Entry {
    index: u32,
    /// Seeds the endpoint's preference list.
    seed: u64,
    /// How many preferences the endpoint has tried so far.
    next: u64,
    weight: u64,
    /// Envoy's weighting: the endpoint claims a slot in round `r` only if
    /// `r * weight >= target`, and each claim raises `target` by the largest weight, so
    /// claims are proportional to weight.
    target: u64,
}

impl Maglev {
    /// Envoy's and Istio's default: a prime well above 100 times any usual endpoint count.
    pub const DEFAULT_TABLE_SIZE: usize = 65537;
    /// Envoy's limit.
    pub const MAX_TABLE_SIZE: usize = 5_000_011;

    /// Builds the table. `table_size` must be prime, as Envoy and Istio require (so tables
    /// are interchangeable in size with theirs), and at least the number of endpoints.
    pub fn new(endpoints: &[Endpoint], table_size: usize) -> Result<Self, BalanceError> {
        if table_size > Self::MAX_TABLE_SIZE {
            return Err(BalanceError::TableTooLarge(table_size));
        }
        if !is_prime(table_size) {
            return Err(BalanceError::TableSizeNotPrime(table_size));
        }
        if endpoints.len() > table_size {
            return Err(BalanceError::TooManyEndpoints {
                endpoints: endpoints.len(),
                table_size,
            });
        }
        let slots = match endpoints.len() {
            0 => Vec::new(),
            1 => vec![0; table_size],
            _ => fill(&mut entries(endpoints), table_size),
        };
        Ok(Self { slots })
    }

    /// The index of the endpoint that owns `key`, or `None` if there are no endpoints.
    pub fn pick(&self, key: u64) -> Option<usize> {
        let slot = key.checked_rem(self.slots.len() as u64)?;
        let index = self.slots.get(usize::try_from(slot).ok()?)?;
        usize::try_from(*index).ok()
    }

    pub fn table_size(&self) -> usize {
        self.slots.len()
    }
}

/// The fill order is the endpoints sorted by address, so that slice order does not matter.
fn entries(endpoints: &[Endpoint]) -> Vec<Entry> {
    let mut order: Vec<(usize, &Endpoint)> = endpoints.iter().enumerate().collect();
    order.sort_by_key(|(index, endpoint)| (endpoint.address, *index));
    order
        .into_iter()
        .map(|(index, endpoint)| Entry {
            // `new` checked that the endpoint count fits the table, whose size fits u32.
            index: u32::try_from(index).unwrap_or(EMPTY),
            seed: stable_hash(&address_bytes(endpoint.address)),
            next: 0,
            weight: u64::from(endpoint.effective_weight()),
            target: 0,
        })
        .collect()
}

fn fill(entries: &mut [Entry], table_size: usize) -> Vec<u32> {
    let max_weight = entries.iter().map(|e| e.weight).max().unwrap_or(1);
    let mut slots = vec![EMPTY; table_size];
    let mut filled = 0;
    let mut round = 0u64;
    while filled < table_size {
        for entry in entries.iter_mut() {
            if filled == table_size {
                break;
            }
            if round * entry.weight < entry.target {
                continue;
            }
            entry.target += max_weight;
            claim_next_free(entry, &mut slots);
            filled += 1;
        }
        round += 1;
    }
    slots
}

/// Claims the first free slot in the entry's preference list. One exists because the caller
/// only asks while the table is not full, and the list ends with a scan of every slot.
fn claim_next_free(entry: &mut Entry, slots: &mut [u32]) {
    let size = slots.len() as u64;
    let random = RANDOM_PREFERENCES_PER_SLOT * size;
    loop {
        let j = entry.next;
        entry.next += 1;
        let slot = if j < random {
            splitmix64(entry.seed.wrapping_add(j.wrapping_mul(GOLDEN_GAMMA))) % size
        } else {
            (entry.seed % size + (j - random) % size) % size
        };
        let Some(owner) = usize::try_from(slot).ok().and_then(|s| slots.get_mut(s)) else {
            return;
        };
        if *owner == EMPTY {
            *owner = entry.index;
            return;
        }
    }
}

/// SplitMix64's output function (Steele, Lea and Flood, 2014); fixed, so tables are stable.
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The endpoint's identity for hashing: address bytes and port, independent of formatting.
fn address_bytes(address: SocketAddr) -> Vec<u8> {
    let mut bytes = match address.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    bytes.extend_from_slice(&address.port().to_be_bytes());
    bytes
}

fn is_prime(n: usize) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn endpoints(n: u16) -> Vec<Endpoint> {
        (0..n)
            .map(|i| Endpoint::new(SocketAddr::from(([10, 0, 0, 1], 8000 + i))))
            .collect()
    }

    fn shares(table: &Maglev, n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for slot in &table.slots {
            counts[*slot as usize] += 1;
        }
        counts
    }

    #[test]
    fn primes() {
        assert!(is_prime(2) && is_prime(13) && is_prime(65537) && is_prime(5_000_011));
        assert!(!is_prime(0) && !is_prime(1) && !is_prime(9) && !is_prime(65536));
    }

    #[test]
    fn rejects_bad_sizes() {
        let eps = endpoints(3);
        assert_eq!(
            Maglev::new(&eps, 100),
            Err(BalanceError::TableSizeNotPrime(100))
        );
        assert_eq!(
            Maglev::new(&eps, 2),
            Err(BalanceError::TooManyEndpoints {
                endpoints: 3,
                table_size: 2
            })
        );
        assert!(matches!(
            Maglev::new(&eps, 5_000_077),
            Err(BalanceError::TableTooLarge(_))
        ));
    }

    #[test]
    fn empty_table_picks_nothing() {
        let table = Maglev::new(&[], 13).unwrap();
        assert_eq!(table.pick(7), None);
    }

    #[test]
    fn lone_endpoint_owns_every_slot() {
        let table = Maglev::new(&endpoints(1), 13).unwrap();
        assert_eq!(table.table_size(), 13);
        assert!((0..100).all(|key| table.pick(key) == Some(0)));
    }

    #[test]
    fn tiny_tables_fill_completely() {
        // As many endpoints as slots: each must get exactly one, through the fallback scan
        // if the random preferences run dry.
        let table = Maglev::new(&endpoints(13), 13).unwrap();
        let mut owners: Vec<_> = (0..13).map(|key| table.pick(key).unwrap()).collect();
        owners.sort_unstable();
        assert_eq!(owners, (0..13).collect::<Vec<_>>());
    }

    #[test]
    fn splitmix_matches_the_reference() {
        // First outputs of the reference SplitMix64 generator seeded with 0.
        assert_eq!(splitmix64(GOLDEN_GAMMA), 0xe220_a839_7b1d_cdaf);
        assert_eq!(
            splitmix64(GOLDEN_GAMMA.wrapping_mul(2)),
            0x6e78_9e6a_a1b9_65f4
        );
    }

    #[test]
    fn equal_weights_share_slots_within_one() {
        let table = Maglev::new(&endpoints(7), 65537).unwrap();
        let counts = shares(&table, 7);
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 1, "{counts:?}");
    }

    #[test]
    fn weights_are_proportional() {
        let mut eps = endpoints(3);
        eps[0].weight = 1;
        eps[1].weight = 2;
        eps[2].weight = 5;
        let table = Maglev::new(&eps, 65537).unwrap();
        let counts = shares(&table, 3);
        for (count, weight) in counts.iter().zip([1.0, 2.0, 5.0]) {
            let share = *count as f64 / 65537.0;
            assert!((share - weight / 8.0).abs() < 0.001, "{counts:?}");
        }
    }
}
