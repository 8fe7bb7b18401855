//! "Seen on line N" for the uniqueness checks, in a fingerprint per row.
//!
//! Keys are SipHash-1-3 fingerprints under a key drawn at random for each validation
//! (so an uploader cannot craft colliding rows to slow the table down): 64 bits for
//! (msisdn, amount) pairs, whose only use is a warning, and 128 bits for references,
//! where a false hit would refuse a good file (for 10^6 references the chance is
//! ~10^-27, for all purposes exact).
//!
//! The table is compact because it is the only thing that grows with the file: open
//! addressing, slots of fingerprint + line (12 or 20 bytes, no pointers), 64 shards
//! that grow by 1.25× at 7/8 load. Shards start at staggered sizes so they do not all
//! grow at once: the average load stays near 0.78 and a growth copies 1/64 of the
//! table. At 10^6 rows that is ~15 MB for pairs and ~26 MB more if every row has a
//! reference (a test checks the bound).

use std::hash::{BuildHasher, RandomState};

use crate::ledger::{Minor, Msisdn};

/// Number of shards: a power of two, chosen by the top bits of the first word.
const SHARDS: usize = 64;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();

/// Remembers the first line of each key.
pub(super) struct FirstSeen<const W: usize> {
    shards: Vec<Shard<W>>,
}

struct Shard<const W: usize> {
    slots: Vec<Slot<W>>,
    len: usize,
    /// Capacity at the first insert: 64..=127, staggered across shards.
    initial: usize,
}

/// `line == 0` marks an empty slot (lines start at 1).
#[derive(Clone, Copy)]
struct Slot<const W: usize> {
    key: [u32; W],
    line: u32,
}

impl<const W: usize> FirstSeen<W> {
    pub(super) fn new() -> Self {
        // Nothing is allocated until a shard gets its first key: a file without
        // references costs no reference table.
        let shards = (0..SHARDS).map(|i| Shard { slots: Vec::new(), len: 0, initial: 64 + i }).collect();
        FirstSeen { shards }
    }

    /// The line `key` was first seen on; if never, remembers `line` and returns `None`.
    pub(super) fn first_or_insert(&mut self, key: [u32; W], line: u32) -> Option<u32> {
        debug_assert!(line > 0, "line 0 marks empty slots");
        let shard = (key[0] >> (32 - SHARD_BITS)) as usize;
        self.shards[shard].first_or_insert(key, line)
    }

    /// Bytes held by the slots.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.slots.capacity() * std::mem::size_of::<Slot<W>>()).sum()
    }
}

impl<const W: usize> Shard<W> {
    fn first_or_insert(&mut self, key: [u32; W], line: u32) -> Option<u32> {
        // Load at most 7/8: linear probing stays short, and a miss always ends.
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let mut pos = home(&key, self.slots.len());
        loop {
            let slot = &mut self.slots[pos];
            if slot.line == 0 {
                *slot = Slot { key, line };
                self.len += 1;
                return None;
            }
            if slot.key == key {
                return Some(slot.line);
            }
            pos = if pos + 1 == self.slots.len() { 0 } else { pos + 1 };
        }
    }

    fn grow(&mut self) {
        let capacity = match self.slots.len() {
            0 => self.initial,
            n => n + n / 4,
        };
        let old = std::mem::replace(&mut self.slots, vec![Slot { key: [0; W], line: 0 }; capacity]);
        for slot in old.into_iter().filter(|s| s.line != 0) {
            let mut pos = home(&slot.key, capacity);
            while self.slots[pos].line != 0 {
                pos = if pos + 1 == capacity { 0 } else { pos + 1 };
            }
            self.slots[pos] = slot;
        }
    }
}

/// Home slot: the last word scaled to the capacity (independent of the shard bits).
fn home<const W: usize>(key: &[u32; W], capacity: usize) -> usize {
    debug_assert!(capacity > 0 && capacity <= u32::MAX as usize);
    ((u64::from(key[W - 1]) * capacity as u64) >> 32) as usize
}

/// Fingerprints under one random key per validation.
pub(super) struct Fingerprints(RandomState);

impl Fingerprints {
    pub(super) fn new() -> Self {
        Fingerprints(RandomState::new())
    }

    /// 64 bits of (msisdn, amount).
    pub(super) fn pair(&self, msisdn: Msisdn, amount: Minor) -> [u32; 2] {
        split(self.0.hash_one((msisdn.as_u64(), amount)))
    }

    /// 128 bits of a reference: two hashes of the text, domain-separated.
    pub(super) fn reference(&self, reference: &str) -> [u32; 4] {
        let [a, b] = split(self.0.hash_one((1u8, reference)));
        let [c, d] = split(self.0.hash_one((2u8, reference)));
        [a, b, c, d]
    }
}

fn split(x: u64) -> [u32; 2] {
    [(x >> 32) as u32, x as u32]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random keys: uniform enough for fingerprints in a test.
    fn keys(seed: u64) -> impl Iterator<Item = u64> {
        let mut rng = crate::prng::Prng(seed);
        std::iter::repeat_with(move || rng.next())
    }

    #[test]
    fn the_first_line_is_kept_and_later_hits_name_it() {
        let mut seen = FirstSeen::<2>::new();
        assert_eq!(seen.first_or_insert([1, 2], 3), None);
        assert_eq!(seen.first_or_insert([1, 3], 4), None);
        assert_eq!(seen.first_or_insert([1, 2], 9), Some(3));
        assert_eq!(seen.first_or_insert([1, 2], 10), Some(3));
    }

    #[test]
    fn every_key_survives_growth() {
        let mut seen = FirstSeen::<2>::new();
        let all: Vec<u64> = keys(7).take(50_000).collect();
        for (i, k) in all.iter().enumerate() {
            assert_eq!(seen.first_or_insert(split(*k), i as u32 + 1), None);
        }
        for (i, k) in all.iter().enumerate() {
            assert_eq!(seen.first_or_insert(split(*k), u32::MAX), Some(i as u32 + 1));
        }
    }

    #[test]
    fn a_million_rows_with_references_stay_well_under_fifty_megabytes() {
        let mut pairs = FirstSeen::<2>::new();
        let mut references = FirstSeen::<4>::new();
        for (i, k) in keys(42).take(1_000_000).enumerate() {
            let line = i as u32 + 2;
            let [a, b] = split(k);
            pairs.first_or_insert([a, b], line);
            references.first_or_insert([b, a, a ^ b, b.rotate_left(7)], line);
        }
        let total = pairs.bytes() + references.bytes();
        println!("1,000,000 rows: pairs {} bytes, references {} bytes", pairs.bytes(), references.bytes());
        assert!(pairs.bytes() < 18_000_000, "pairs {}", pairs.bytes());
        assert!(total < 45_000_000, "total {total}");
    }
}
