//! A window's index from a key's hash to its entry: open addressing with linear probing over
//! one array of 8-byte slots, each holding the upper half of the key's hash and the entry's
//! position (plus one; zero is an empty slot).
//!
//! Why not `hashbrown::HashTable<u32>`: its control bytes and its buckets are two arrays, so
//! a lookup in a table larger than the core's caches waits on two reads one after the other,
//! and where a key's bucket lies is not known before the lookup. Here the slot a lookup
//! starts at is `hash & mask`, so [`KeyIndex::home`] lets the window load the slots of a
//! whole batch of keys back to back, and then the entries they point at, before adding any
//! of them: their cache misses overlap instead of following each other (group prefetching,
//! Chen et al., "Improving Hash Join Performance through Prefetching", ICDE 2004). The
//! 32-bit tag in the slot rules out nearly every other key without reading its entry.
//!
//! The table is kept at most half full, so an unsuccessful lookup probes about 2.5 slots on
//! average (Knuth, TAOCP vol. 3, §6.4), mostly within the first slot's cache line. Keys are
//! never removed one by one: a compaction clears the index and indexes the kept keys again.

/// An empty slot. A full slot's low half is the entry's position plus one, never zero.
const EMPTY: u64 = 0;

#[derive(Debug, Clone)]
pub(crate) struct KeyIndex {
    /// A power of two in length (at least [`MIN_SLOTS`]).
    slots: Vec<u64>,
    /// Full slots.
    len: usize,
}

const MIN_SLOTS: usize = 16;

/// The slot's tag: the hash's upper half (the lower half picks the home slot).
#[inline(always)]
fn tag(hash: u64) -> u64 {
    hash & 0xffff_ffff_0000_0000
}

impl KeyIndex {
    /// An index that takes `keys` keys without growing.
    pub(crate) fn with_capacity(keys: usize) -> Self {
        KeyIndex {
            slots: vec![EMPTY; slots_for(keys)],
            len: 0,
        }
    }

    /// This index, emptied, if it takes `keys` keys without growing; a new one otherwise.
    pub(crate) fn reuse(mut self, keys: usize) -> Self {
        if self.slots.len() < slots_for(keys) {
            return KeyIndex::with_capacity(keys);
        }
        if self.len > 0 {
            self.clear();
        }
        self
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot a lookup of `hash` starts at, read: for loading a batch's slots back to back
    /// before their lookups. (Truncating the hash to `usize` keeps its lower bits, which the
    /// mask keeps anyway.)
    #[inline(always)]
    pub(crate) fn home(&self, hash: u64) -> u64 {
        self.slots
            .get(hash as usize & self.mask())
            .copied()
            .unwrap_or(EMPTY)
    }

    /// The position of the first entry whose tag matches `hash`, if any, without comparing
    /// keys: for loading a batch's entries back to back before their lookups.
    #[inline]
    pub(crate) fn candidate(&self, hash: u64) -> Option<usize> {
        self.find(hash, |_| true)
    }

    /// The position of the entry whose tag matches `hash` and for which `eq` holds.
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(usize) -> bool) -> Option<usize> {
        let mask = self.mask();
        let want = tag(hash);
        let mut at = hash as usize & mask;
        // At most half the slots are full, so the probe meets an empty slot.
        loop {
            let s = *self.slots.get(at)?;
            if s == EMPTY {
                return None;
            }
            if tag(s) == want {
                let i = (s as u32 - 1) as usize;
                if eq(i) {
                    return Some(i);
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// Index entry `i` under `hash`; the key must not be indexed yet. Grows (re-indexing
    /// every entry with `rehash`, which gives an entry's hash from its position) when the
    /// table would be more than half full. `i` must be below `u32::MAX`.
    pub(crate) fn insert_unique(&mut self, hash: u64, i: u32, rehash: impl Fn(u32) -> u64) {
        if (self.len + 1) * 2 > self.slots.len() {
            let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots_for(self.len + 1)]);
            self.len = 0;
            for s in old.into_iter().filter(|s| *s != EMPTY) {
                let j = s as u32 - 1;
                self.put(rehash(j), j);
            }
        }
        self.put(hash, i);
    }

    #[inline]
    fn put(&mut self, hash: u64, i: u32) {
        let mask = self.mask();
        let mut at = hash as usize & mask;
        while let Some(s) = self.slots.get_mut(at) {
            if *s == EMPTY {
                *s = tag(hash) | u64::from(i + 1);
                self.len += 1;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// Empty, keeping the slots' allocation.
    pub(crate) fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.len = 0;
    }
}

/// Slots for `keys` keys at most half full: a power of two, at least [`MIN_SLOTS`].
fn slots_for(keys: usize) -> usize {
    keys.saturating_mul(2)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX / 2 + 1)
        .max(MIN_SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes that share their home slot and their tag: only `eq` tells their entries apart.
    #[test]
    fn colliding_hashes_are_told_apart_by_their_entries() {
        let mut index = KeyIndex::with_capacity(4);
        let keys = [7u64, 7, 7 | (1 << 40), 7 + 16];
        let hashes = |j: u32| keys[j as usize];
        for (i, h) in keys.iter().enumerate() {
            index.insert_unique(*h, i as u32, hashes);
        }
        for (i, h) in keys.iter().enumerate() {
            assert_eq!(index.find(*h, |j| j == i), Some(i));
        }
        assert_eq!(index.candidate(7), Some(0));
        assert_eq!(index.candidate(7 | (1 << 40)), Some(2));
        assert_eq!(index.find(7, |_| false), None);
        assert_eq!(index.candidate(8 | (1 << 50)), None);
    }

    #[test]
    fn grows_past_half_full_and_keeps_every_entry() {
        let hash = |j: u32| u64::from(j).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut index = KeyIndex::with_capacity(0);
        assert_eq!(index.slots.len(), MIN_SLOTS);
        for i in 0..10_000u32 {
            index.insert_unique(hash(i), i, hash);
            assert!(index.len * 2 <= index.slots.len());
        }
        assert_eq!(index.len, 10_000);
        assert_eq!(index.slots.len(), 32_768);
        for i in 0..10_000u32 {
            let want = i as usize;
            assert_eq!(index.find(hash(i), |j| j == want), Some(want));
        }
        index.clear();
        assert_eq!(index.candidate(hash(5)), None);
        assert_eq!(index.slots.len(), 32_768);
    }

    #[test]
    fn reuse_keeps_a_large_enough_table_emptied() {
        let hash = |j: u32| u64::from(j).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut index = KeyIndex::with_capacity(1000);
        for i in 0..1000u32 {
            index.insert_unique(hash(i), i, hash);
        }
        let slots = index.slots.as_ptr();
        let index = index.reuse(500);
        assert_eq!((index.slots.as_ptr(), index.len), (slots, 0));
        assert_eq!(index.candidate(hash(7)), None);
        let index = index.reuse(5000);
        assert_eq!(index.slots.len(), slots_for(5000));
    }

    #[test]
    fn home_is_the_first_probed_slot() {
        let mut index = KeyIndex::with_capacity(8);
        assert_eq!(index.home(3), EMPTY);
        index.insert_unique(3 | (9 << 32), 0, |_| 3 | (9 << 32));
        assert_eq!(index.home(3 | (9 << 32)), (9 << 32) | 1);
        assert_eq!(index.home(4), EMPTY);
    }
}
