//! A fast keyed hasher for the hot hash tables.
//!
//! std's SipHash-1-3 cost about 3,000 instructions per UPDATE to intern
//! its attributes and 200 per next-hop or peer lookup, a fifth of the RIB's
//! time in a Calico-shaped load. [`Mix`] folds each word into the state with
//! a 64x64->128 bit multiply (as foldhash and aHash's fallback do), from a
//! per-process random seed, so keys a peer chooses (attribute sets, next
//! hops) cannot be made to collide by a fixed recipe. It is not a
//! cryptographic PRF; the peers are configured neighbours, and every table
//! it serves is bounded (see docs/security.md).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A hash map with [`Mix`].
pub type FastMap<K, V> = HashMap<K, V, BuildMix>;
/// A hash set with [`Mix`].
pub type FastSet<K> = HashSet<K, BuildMix>;

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

fn seed() -> [u64; 2] {
    static SEED: OnceLock<[u64; 2]> = OnceLock::new();
    *SEED.get_or_init(|| {
        // std's RandomState draws its keys from the OS once per process.
        let r = std::collections::hash_map::RandomState::new();
        [r.hash_one(1u64), r.hash_one(2u64) | 1]
    })
}

/// Builds [`Mix`] hashers from the process seed.
#[derive(Clone, Copy, Debug)]
pub struct BuildMix([u64; 2]);

impl Default for BuildMix {
    fn default() -> Self {
        BuildMix(seed())
    }
}

impl BuildHasher for BuildMix {
    type Hasher = Mix;

    fn build_hasher(&self) -> Mix {
        Mix {
            state: self.0[0],
            key: self.0[1],
        }
    }
}

/// The hasher: one folded multiply per word.
pub struct Mix {
    state: u64,
    key: u64,
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for Mix {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            // The length keeps "ab" + "" apart from "a" + "b".
            self.write_u64(u64::from_le_bytes(b) ^ (rest.len() as u64) << 59);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.state = fold(self.state ^ i, self.key).wrapping_add(MUL);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // One more round so that the last word reaches every bit; hashbrown
        // takes the bucket from the low bits and the tag from the top 7.
        fold(self.state, self.key ^ MUL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_sequential_keys() {
        let b = BuildMix::default();
        // Sequential addresses land in distinct buckets of a small table,
        // and the top bits (hashbrown's tags) vary too.
        let mut low = HashSet::new();
        let mut top = HashSet::new();
        for i in 0u32..1024 {
            let h = b.hash_one(i);
            low.insert(h & 4095);
            top.insert(h >> 57);
        }
        // Random hashes would give about 906 and 127.96 (a missing tag
        // value has a 4% chance); a hash that ignores bits gives far fewer.
        assert!(low.len() > 800, "{}", low.len());
        assert!(top.len() >= 120, "{}", top.len());
    }

    #[test]
    fn byte_strings_of_different_split_differ() {
        let b = BuildMix::default();
        let h = |parts: &[&[u8]]| {
            let mut m = b.build_hasher();
            for p in parts {
                m.write(p);
            }
            m.finish()
        };
        assert_ne!(h(&[b"ab", b""]), h(&[b"a", b"b"]));
        assert_ne!(h(&[b"abcdefgh"]), h(&[b"abcdefgh", b"\0"]));
    }
}
