//! The set of identity hashes with which an import stores repeats once.
//!
//! A ten-million-row feed makes a set of ten million random 128-bit hashes,
//! about 256 MB: far larger than the caches, so every insert into a
//! general-purpose hash set waits for memory twice (its control bytes, then
//! its slot). That was a fifth of `feed add`'s CPU on such a feed. This set
//! keeps the hashes themselves in one open-addressed table (linear probing,
//! the home slot taken from the hash's low bits, which are random), so an
//! insert touches one cache line, and [`RepeatSet::prefetch`] lets the
//! caller start loading that line a few rows ahead of the insert.

/// Identity hashes seen so far (see the module documentation).
pub(crate) struct RepeatSet {
    /// `EMPTY` or a hash; a power of two long.
    slots: Vec<u128>,
    len: usize,
}

/// An unused slot. A hash equal to it is stored as [`ZERO_STANDS_IN`]
/// instead, which makes two of the 2^128 hashes one: beyond reach, as the
/// hashes are keyed at random per import.
const EMPTY: u128 = 0;
const ZERO_STANDS_IN: u128 = 1;

/// Slots of a new set.
const INITIAL_SLOTS: usize = 1 << 12;

impl Default for RepeatSet {
    fn default() -> Self {
        RepeatSet {
            slots: vec![EMPTY; INITIAL_SLOTS],
            len: 0,
        }
    }
}

impl RepeatSet {
    /// Hashes held.
    pub fn len(&self) -> usize {
        self.len
    }

    fn home(&self, hash: u128) -> usize {
        (hash as usize) & (self.slots.len() - 1)
    }

    /// Start loading the slot where `hash` would go into the cache: an
    /// insert of it a few calls later then does not wait for memory.
    #[inline]
    pub fn prefetch(&self, hash: u128) {
        #[cfg(target_arch = "x86_64")]
        {
            let ptr = self.slots.as_ptr().wrapping_add(self.home(hash)) as *const i8;
            // SAFETY: a prefetch is a hint; it never faults and reads nothing
            // observable. The index is within the slots (masked).
            unsafe { std::arch::x86_64::_mm_prefetch(ptr, std::arch::x86_64::_MM_HINT_T0) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = hash;
    }

    /// Add `hash`; false when it was there already (a repeat).
    pub fn insert(&mut self, hash: u128) -> bool {
        let hash = if hash == EMPTY { ZERO_STANDS_IN } else { hash };
        // At most 5/8 full: linear probing stays short (about 1.8 slots
        // per insert at that load).
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        loop {
            match self.slots[i] {
                EMPTY => {
                    self.slots[i] = hash;
                    self.len += 1;
                    return true;
                }
                h if h == hash => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let doubled = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        for hash in old.into_iter().filter(|&h| h != EMPTY) {
            let mut i = self.home(hash);
            while self.slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = hash;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Against the standard set, through several doublings, with repeats,
    /// hashes that share their home slot and the two hashes stored alike.
    #[test]
    fn agrees_with_a_standard_set() {
        let mut set = RepeatSet::default();
        let mut reference = HashSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let hash = match n % 5 {
                // A repeat of a recent value.
                0 => u128::from(x % 1000),
                // Same low bits (same home slot), different high bits:
                // a long probe run (kept short, as each costs its length).
                1 if n < 5_000 => (u128::from(n) << 64) | 42,
                _ => (u128::from(x) << 64) | u128::from(x.rotate_left(17)),
            };
            set.prefetch(hash);
            let canonical = if hash == 0 { 1 } else { hash };
            assert_eq!(
                set.insert(hash),
                reference.insert(canonical),
                "hash {hash:#x} at {n}"
            );
        }
        assert_eq!(set.len(), reference.len());
        assert!(set.slots.len() > INITIAL_SLOTS, "the set never grew");
    }
}
