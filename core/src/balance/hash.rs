//! A stable 64-bit hash for hash keys and Maglev permutations.
//!
//! Consistent hashing only keeps its promise if every proxy, of every version, hashes the
//! same key to the same number. std's hashers promise neither (`RandomState` is seeded per
//! process, `DefaultHasher`'s algorithm may change between Rust releases), so this is
//! FNV-1a 64, whose definition is fixed, followed by MurmurHash3's 64-bit finalizer, which
//! spreads FNV's weak low bits so that `hash % table_size` is uniform. Not for hash tables
//! exposed to attackers: it is unkeyed, and a client that can choose keys can choose
//! collisions, which here only means choosing its own endpoint.

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The stable hash of `bytes`.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    stable_hash_seeded(0, bytes)
}

/// The stable hash of `bytes` in the family numbered `seed`: different seeds give
/// independent-looking hashes of the same bytes (Maglev needs two per endpoint).
pub fn stable_hash_seeded(seed: u64, bytes: &[u8]) -> u64 {
    fmix64(fnv1a(FNV_OFFSET_BASIS ^ fmix64(seed), bytes))
}

fn fnv1a(basis: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(basis, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    })
}

/// MurmurHash3's `fmix64`: a bijection that makes every output bit depend on every input bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET_BASIS, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET_BASIS, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET_BASIS, b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Pinned outputs: if this test fails, the hash changed, and every consistent-hash
    /// assignment in a fleet with mixed versions would disagree. Do not update the numbers;
    /// restore the function.
    #[test]
    fn outputs_never_change() {
        assert_eq!(stable_hash(b""), PINNED[0]);
        assert_eq!(stable_hash(b"user-42"), PINNED[1]);
        assert_eq!(stable_hash_seeded(1, b"10.0.0.1:8080"), PINNED[2]);
    }

    /// Computed independently (in Python) from the definition above.
    const PINNED: [u64; 3] = [
        0xefd0_1f60_ba99_2926,
        0xa395_32c7_ab05_1e8d,
        0x39e9_048b_c5ec_1747,
    ];

    #[test]
    fn seeds_give_different_hashes() {
        assert_ne!(stable_hash_seeded(1, b"x"), stable_hash_seeded(2, b"x"));
        assert_ne!(stable_hash(b"a"), stable_hash(b"b"));
    }
}
