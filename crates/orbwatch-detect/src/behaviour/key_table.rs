//! A table of per-(source, service) records that can be prefetched.
//!
//! The per-source records of a hunt over months of logs hold hundreds of
//! thousands of keys, and most failed logins come from an address seen
//! for the first time: each lookup lands in a cold slot and waits on
//! memory. A general hash map cannot say where a key will be before it
//! looks, so the replay could not ask for the slot ahead of time. This
//! table can: it is open addressing with linear probing over a flat array
//! of slots (each key beside its record), so the home slot of a key is
//! known from its hash, and [`KeyTable::prefetch`] starts loading it
//! while earlier observations are still being handled.
//!
//! Keys are 64 bits other than `u64::MAX` (the empty slot): a source id
//! and a service id packed (see [`pack`]), or a cluster and a service
//! (`success_after_failures`);
//! iteration order is not part of the interface (callers that emit in
//! order sort first).

use super::mix;
use super::observe::{NONE, NodeId};

/// No key in this slot. [`pack`] never gives it (see there).
const EMPTY: u64 = u64::MAX;

/// A (source, service) key in 64 bits. A source id is an IPv4 address
/// (below 2^32), or one of two flag bits (62, 63) over a 32-bit index, or
/// [`NONE`]; rotated left by 2 it fits in 34 bits, leaving 16 for the
/// service, so the packing is exact for every id the observation tables
/// make. [`NONE`] keeps its top bits set and so never meets a real id.
pub fn pack(src: NodeId, svc: u16) -> u64 {
    let s = src.rotate_left(2);
    let k = s << 16 | u64::from(svc);
    // (NONE, 0xffff) would be EMPTY: no observation has a source NONE.
    if k == EMPTY { EMPTY - 1 } else { k }
}

/// The (source, service) of a packed key.
pub fn unpack(k: u64) -> (NodeId, u16) {
    let svc = k as u16;
    let s = k >> 16;
    if s >= 1 << 34 {
        return (NONE, svc);
    }
    (s.rotate_right(2) & (0xffff_ffff | 3 << 62), svc)
}

/// Start loading the value at `v` into cache, both of its ends: a value
/// of more than a few bytes often straddles two cache lines (a 52-byte
/// `distributed::Source` does three times in four), and asking only for
/// its start left the read of its last fields waiting on memory.
///
/// `v` need not be valid: a prefetch is a hint that never faults.
#[inline]
pub fn prefetch_value<T>(v: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = v as *const i8;
        let end = start.wrapping_add(std::mem::size_of::<T>().saturating_sub(1));
        // SAFETY: a prefetch reads nothing observable and never faults,
        // whatever the address.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch(start, _MM_HINT_T0);
            _mm_prefetch(end, _MM_HINT_T0);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// One slot: the key beside its record, so that a lookup reads one place.
/// With a `distributed::Source` (52 bytes) a slot is 64 bytes: one cache
/// line when the array starts on a line, as a table of more than a few
/// pages does (the allocator aligns those to pages).
#[derive(Clone, Copy)]
#[repr(C)]
struct Slot<V> {
    key: u64,
    val: V,
}

/// Open addressing, linear probing, at most 3/4 full; removal shifts
/// the following entries back (no tombstones, so long-lived tables with
/// millions of inserts and removals keep short probes).
///
/// Why keys and records share a slot (they were two arrays): a lookup in
/// a cold table then waited on one cache line instead of three (the
/// key's, and the two a 52-byte record straddles), and a removal's
/// backward shift moves each entry within one array.
pub struct KeyTable<V> {
    slots: Vec<Slot<V>>,
    len: usize,
    mask: usize,
}

impl<V: Copy + Default> KeyTable<V> {
    /// An empty table with room for `capacity` keys before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        let slots = (capacity.max(8) * 4 / 3 + 1).next_power_of_two();
        Self {
            slots: Self::empty_slots(slots),
            len: 0,
            mask: slots - 1,
        }
    }

    fn empty_slots(n: usize) -> Vec<Slot<V>> {
        vec![
            Slot {
                key: EMPTY,
                val: V::default()
            };
            n
        ]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, k: u64) -> usize {
        mix(k) as usize & self.mask
    }

    /// Start loading the slot of `k` (both of its ends, see
    /// [`prefetch_value`]) into cache: waiting on the record's last
    /// fields was a quarter of a hunt's partition threads.
    #[inline]
    pub fn prefetch(&self, k: u64) {
        let home = self.home(k);
        prefetch_value(self.slots.as_ptr().wrapping_add(home));
        // The probe of a new key, and the backward shift of a removal,
        // read on from the home slot to the next empty one.
        prefetch_value(self.slots.as_ptr().wrapping_add((home + 1) & self.mask));
    }

    /// The slot holding `k`, or the empty slot where it would go.
    #[inline]
    fn find(&self, k: u64) -> Result<usize, usize> {
        let mut i = self.home(k);
        loop {
            let at = self.slots[i].key;
            if at == k {
                return Ok(i);
            }
            if at == EMPTY {
                return Err(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    pub fn get(&self, k: u64) -> Option<&V> {
        self.find(k).ok().map(|i| &self.slots[i].val)
    }

    pub fn get_mut(&mut self, k: u64) -> Option<&mut V> {
        match self.find(k) {
            Ok(i) => Some(&mut self.slots[i].val),
            Err(_) => None,
        }
    }

    /// The record of `k`, made by `make` if there is none.
    pub fn get_or_insert_with(&mut self, k: u64, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(k) {
            Ok(i) => i,
            Err(i) => {
                let i = if (self.len + 1) * 4 > self.slots.len() * 3 {
                    self.grow();
                    self.find(k).err().unwrap_or(i)
                } else {
                    i
                };
                self.slots[i] = Slot {
                    key: k,
                    val: make(),
                };
                self.len += 1;
                i
            }
        };
        &mut self.slots[i].val
    }

    /// Remove `k` if its record satisfies `pred`; returns the record.
    pub fn remove_if(&mut self, k: u64, pred: impl FnOnce(&V) -> bool) -> Option<V> {
        let i = self.find(k).ok()?;
        if !pred(&self.slots[i].val) {
            return None;
        }
        let v = self.slots[i].val;
        self.erase(i);
        Some(v)
    }

    /// Empty slot `i` and shift back the entries after it that would no
    /// longer be found across the gap.
    fn erase(&mut self, mut i: usize) {
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let k = self.slots[j].key;
            if k == EMPTY {
                break;
            }
            let h = self.home(k);
            // Keep `j` where it is when its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < h && h <= j
            } else {
                i < h || h <= j
            };
            if !stays {
                self.slots[i] = self.slots[j];
                i = j;
            }
        }
        self.slots[i] = Slot {
            key: EMPTY,
            val: V::default(),
        };
        self.len -= 1;
    }

    fn grow(&mut self) {
        let n = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, Self::empty_slots(n));
        self.mask = n - 1;
        for slot in old {
            if slot.key != EMPTY
                && let Err(i) = self.find(slot.key)
            {
                self.slots[i] = slot;
            }
        }
    }

    /// Keep only the records `keep` says yes to, in place.
    ///
    /// Why not drain and insert the rest again (as this did): that
    /// hashed every survivor into a cold slot once more and copied them
    /// all through a vector, 5 % of a hunt's partition threads for
    /// `success_after_failures`' sweep. Here each slot is read once, in
    /// order, and only the removed entries cost a backward shift.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        // Scan from just after an empty slot (one exists: the table is at
        // most 3/4 full) once around. No run of entries crosses that
        // slot, so an entry shifted back by `erase` always comes from
        // ahead of the scan into the slot just looked at, which is then
        // looked at again: every entry is seen exactly once.
        let Some(start) = self.slots.iter().position(|s| s.key == EMPTY) else {
            return;
        };
        let mut i = (start + 1) & self.mask;
        let mut left = self.slots.len() - 1;
        while left > 0 {
            if self.slots[i].key != EMPTY && !keep(&self.slots[i].val) {
                self.erase(i);
                continue;
            }
            i = (i + 1) & self.mask;
            left -= 1;
        }
    }

    /// Remove the `n` lowest ranked records and return them, lowest
    /// first: the shedding of `behaviour::remove_least_ranked` for a key
    /// table. `rank` must tell all keys apart (include the key) for the
    /// same records to go on every run.
    pub fn remove_least_ranked<R: Ord>(
        &mut self,
        n: usize,
        rank: impl Fn(u64, &V) -> R,
    ) -> Vec<(u64, V)> {
        let ranked = self.iter().map(|(k, v)| (rank(k, v), k)).collect();
        super::lowest_ranked(ranked, n)
            .into_iter()
            .filter_map(|k| self.remove_if(k, |_| true).map(|v| (k, v)))
            .collect()
    }

    /// Every (key, record), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.key != EMPTY)
            .map(|s| (s.key, &s.val))
    }

    /// Every (key, record), leaving the table empty (its memory kept).
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, V)> + '_ {
        self.len = 0;
        self.slots.iter_mut().filter(|s| s.key != EMPTY).map(|s| {
            let key = std::mem::replace(&mut s.key, EMPTY);
            (key, std::mem::take(&mut s.val))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::observe::{NAMED_SOURCE, V6_SOURCE};

    #[test]
    fn keys_pack_exactly() {
        for src in [
            0,
            1,
            0xffff_ffff,
            V6_SOURCE,
            V6_SOURCE | 0xffff_ffff,
            NAMED_SOURCE | 7,
            NAMED_SOURCE | 0xffff_ffff,
            NONE,
        ] {
            for svc in [0, 1, 0x1234, 0xfffe] {
                assert_eq!(unpack(pack(src, svc)), (src, svc), "{src:#x} {svc}");
                assert_ne!(pack(src, svc), EMPTY);
            }
        }
        assert_ne!(pack(1, 0), pack(0, 1));
        assert_ne!(pack(V6_SOURCE | 1, 0), pack(1, 0));
        assert_ne!(pack(NAMED_SOURCE | 1, 0), pack(V6_SOURCE | 1, 0));
    }

    /// `retain` in place against a map's, on small tables whose runs of
    /// entries wrap around the end, with predicates that remove none,
    /// some and all: the same records stay, each is still found, and each
    /// record is judged exactly once.
    #[test]
    fn retain_in_place_keeps_what_a_map_keeps_and_judges_each_once() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3000u64 {
            let mut t: KeyTable<u64> = KeyTable::with_capacity(1 + round as usize % 40);
            let mut m = std::collections::HashMap::new();
            for _ in 0..next() % 48 {
                let k = pack(next() % 200, 0);
                let v = next();
                *t.get_or_insert_with(k, || 0) = v;
                m.insert(k, v);
            }
            let modulus = 1 + round % 4;
            let mut judged = 0;
            t.retain(|v| {
                judged += 1;
                v % modulus != 0
            });
            assert_eq!(judged, m.len(), "round {round}");
            m.retain(|_, v| *v % modulus != 0);
            assert_eq!(t.len(), m.len(), "round {round}");
            for (k, v) in &m {
                assert_eq!(t.get(*k), Some(v), "round {round}");
            }
            let mut all: Vec<(u64, u64)> = t.drain().collect();
            all.sort_unstable();
            let mut want: Vec<(u64, u64)> = m.into_iter().collect();
            want.sort_unstable();
            assert_eq!(all, want, "round {round}");
        }
    }

    /// Against a hash map, through growth and many removals (every
    /// shape of the backward shift, the wrap at the end included).
    #[test]
    fn behaves_like_a_map() {
        let mut t: KeyTable<u32> = KeyTable::with_capacity(4);
        let mut m = std::collections::HashMap::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = pack(x % 3000, (x >> 20) as u16 % 3);
            match x % 5 {
                0 | 1 => {
                    *t.get_or_insert_with(k, || 0) += 1;
                    *m.entry(k).or_insert(0u32) += 1;
                }
                2 => {
                    let odd = step % 2 == 1;
                    let a = t.remove_if(k, |v| (v % 2 == 1) == odd);
                    let b = match m.get(&k) {
                        Some(v) if (v % 2 == 1) == odd => m.remove(&k),
                        _ => None,
                    };
                    assert_eq!(a, b);
                }
                _ => {
                    assert_eq!(t.get(k), m.get(&k));
                    if let Some(v) = t.get_mut(k) {
                        *v += 2;
                        *m.get_mut(&k).unwrap() += 2;
                    }
                }
            }
            assert_eq!(t.len(), m.len());
        }
        t.retain(|v| v % 3 != 0);
        m.retain(|_, v| *v % 3 != 0);
        assert_eq!(t.len(), m.len());
        for (k, v) in &m {
            assert_eq!(t.get(*k), Some(v));
        }
        let mut all: Vec<(u64, u32)> = t.drain().collect();
        all.sort_unstable();
        let mut want: Vec<(u64, u32)> = m.into_iter().collect();
        want.sort_unstable();
        assert_eq!(all, want);
        assert_eq!(t.len(), 0);
        assert_eq!(t.get(all[0].0), None);
    }
}
