//! The two lookup structures behind the index's address paths.
//!
//! - [`U32Table`]: open addressing with the whole entry (key, indicator,
//!   window, chain link) in one 16-byte slot, so an IPv4 lookup in a table
//!   of ten million addresses costs one cache miss instead of the two or
//!   three of a general-purpose map with a side vector.
//! - [`Intervals`]: CIDRs and ranges flattened into sorted, disjoint
//!   elementary intervals, each pointing at the set of prefixes that cover
//!   it. A lookup is one binary search over a small array that stays in
//!   cache, instead of a trie walk.

use super::{END, Entry};

/// One slot of [`U32Table`]: the first entry of a key, inline.
///
/// `repr(C)`: four `u32` without padding, so that on little-endian
/// machines a snapshot's table is read and written as one block of bytes.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Slot {
    key: u32,
    /// Indicator of the first entry; `u32::MAX` marks an empty slot.
    indicator: u32,
    window: u32,
    /// Further entries for the same key, in the side vector.
    next: u32,
}

// The snapshot's block read and write rely on this layout.
const _: () = assert!(std::mem::size_of::<Slot>() == 16 && std::mem::align_of::<Slot>() == 4);

const EMPTY: Slot = Slot {
    key: 0,
    indicator: u32::MAX,
    window: 0,
    next: END,
};

/// Open-addressing hash table from IPv4 (as `u32`) to entry chains.
#[derive(Debug, Default)]
pub(crate) struct U32Table {
    slots: Vec<Slot>,
    len: usize,
    mask: usize,
    /// A blocked Bloom filter of the keys (about 12 bits per key, one
    /// 64-byte block per key, four bits set in it), built by `shrink` for
    /// tables too large for the cache. It stays in the last-level cache
    /// (16 MiB for ten million keys) and answers about 99 % of lookups of
    /// absent addresses without touching the table, where each would be a
    /// miss to memory. (A /24 bitmap did this before; with ten million
    /// random keys nearly half of all /24s hold one, so it let half the
    /// misses through.)
    filter: Vec<FilterBlock>,
    /// `filter.len() - 1` (a power of two).
    filter_mask: usize,
}

/// One cache line of the Bloom filter.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct FilterBlock([u64; 8]);

/// Bits of the filter per key, before rounding up to a power of two.
const FILTER_BITS_PER_KEY: usize = 12;

/// The filter's hash: a 64-bit mix (splitmix64's finaliser) whose high bits
/// pick the block and whose low 36 bits pick four bits in it.
#[inline]
fn filter_hash(k: u32) -> u64 {
    let mut x = u64::from(k) ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl FilterBlock {
    #[inline]
    fn set(&mut self, h: u64) {
        for i in 0..4 {
            let p = ((h >> (9 * i)) & 511) as usize;
            self.0[p >> 6] |= 1u64 << (p & 63);
        }
    }

    #[inline]
    fn may_hold(&self, h: u64) -> bool {
        (0..4).all(|i| {
            let p = ((h >> (9 * i)) & 511) as usize;
            self.0[p >> 6] & (1u64 << (p & 63)) != 0
        })
    }
}

#[inline]
fn hash(k: u32) -> usize {
    // Multiplicative hashing (Fibonacci); the high bits are well mixed.
    (u64::from(k).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
}

impl U32Table {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.filter.capacity() * std::mem::size_of::<FilterBlock>()
    }

    /// Make room for `n` more keys at a load factor of at most 5/8.
    pub(crate) fn reserve(&mut self, n: usize) {
        let need = ((self.len + n) * 8).div_ceil(5).max(16).next_power_of_two();
        if need > self.slots.len() {
            self.rehash(need);
        }
    }

    fn rehash(&mut self, cap: usize) {
        let mut fresh = Vec::with_capacity(cap);
        advise_huge_pages(&fresh);
        fresh.resize(cap, EMPTY);
        let old = std::mem::replace(&mut self.slots, fresh);
        self.mask = cap - 1;
        for s in old {
            if s.indicator != u32::MAX {
                let i = self.find_slot(s.key);
                self.slots[i] = s;
            }
        }
    }

    /// Index of the slot holding `key`, or of the empty slot where it goes.
    #[inline]
    fn find_slot(&self, key: u32) -> usize {
        let mut i = hash(key) & self.mask;
        loop {
            let s = &self.slots[i];
            if s.indicator == u32::MAX || s.key == key {
                return i;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Add an entry for `key`; a second entry for the same key goes to
    /// `overflow` and is chained.
    pub(crate) fn insert(
        &mut self,
        key: u32,
        indicator: u32,
        window: u32,
        overflow: &mut Vec<Entry>,
    ) {
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.rehash((self.slots.len() * 2).max(16));
        }
        if !self.filter.is_empty() {
            let h = filter_hash(key);
            self.filter[(h >> 40) as usize & self.filter_mask].set(h);
        }
        let i = self.find_slot(key);
        let s = &mut self.slots[i];
        if s.indicator == u32::MAX {
            *s = Slot {
                key,
                indicator,
                window,
                next: END,
            };
            self.len += 1;
        } else {
            let id = overflow.len() as u32;
            overflow.push(Entry {
                indicator,
                window,
                next: s.next,
            });
            s.next = id;
        }
    }

    /// Start loading the filter block of `key` into cache: the first
    /// stage of a pipelined lookup, so that the filter test in
    /// [`U32Table::prefetch`] a few records later does not stall.
    #[inline]
    pub(crate) fn prefetch_filter(&self, key: u32) {
        #[cfg(target_arch = "x86_64")]
        if !self.filter.is_empty() {
            let i = (filter_hash(key) >> 40) as usize & self.filter_mask;
            let block = self.filter.as_ptr().wrapping_add(i) as *const i8;
            // SAFETY: a prefetch is a hint; it never faults and reads nothing
            // observable. `i` is within the filter (masked).
            unsafe { std::arch::x86_64::_mm_prefetch(block, std::arch::x86_64::_MM_HINT_T0) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    /// Start loading the slot of `key` into cache (see `Index::prefetch_ipv4`).
    #[inline]
    pub(crate) fn prefetch(&self, key: u32) {
        if self.len == 0 {
            return;
        }
        if !self.filter_may_hold(key) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let i = hash(key) & self.mask;
            let ptr = self.slots.as_ptr().wrapping_add(i) as *const i8;
            // SAFETY: a prefetch is a hint; it never faults and reads nothing
            // observable. `i` is within the slots (masked).
            unsafe { std::arch::x86_64::_mm_prefetch(ptr, std::arch::x86_64::_MM_HINT_T0) };
        }
    }

    /// The first entry for `key` and the link to the rest, if present.
    #[inline]
    pub(crate) fn get(&self, key: u32) -> Option<(u32, u32, u32)> {
        if self.len == 0 {
            return None;
        }
        if !self.filter_may_hold(key) {
            return None;
        }
        let s = &self.slots[self.find_slot(key)];
        (s.indicator != u32::MAX).then_some((s.indicator, s.window, s.next))
    }

    /// False when the filter proves `key` absent (always true without a
    /// filter).
    #[inline]
    fn filter_may_hold(&self, key: u32) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let h = filter_hash(key);
        self.filter[(h >> 40) as usize & self.filter_mask].may_hold(h)
    }

    /// Size the table to its contents, and build the Bloom filter once the
    /// table is too big to stay in cache (more than 64 Ki keys).
    pub(crate) fn shrink(&mut self) {
        let need = (self.len * 8).div_ceil(5).max(16).next_power_of_two();
        if need < self.slots.len() {
            self.rehash(need);
        }
        self.filter = Vec::new();
        self.filter_mask = 0;
        if self.len > 65_536 {
            let blocks = (self.len * FILTER_BITS_PER_KEY)
                .div_ceil(512)
                .next_power_of_two();
            let mut filter = Vec::with_capacity(blocks);
            advise_huge_pages(&filter);
            filter.resize(blocks, FilterBlock::default());
            let mask = blocks - 1;
            for s in &self.slots {
                if s.indicator != u32::MAX {
                    let h = filter_hash(s.key);
                    filter[(h >> 40) as usize & mask].set(h);
                }
            }
            self.filter = filter;
            self.filter_mask = mask;
        }
    }
}

/// Ask the kernel to back a large, not yet touched allocation with
/// transparent huge pages. Random lookups into a table of hundreds of
/// megabytes otherwise pay a TLB miss on top of the cache miss. Advice
/// only: where THP is off, nothing changes.
fn advise_huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 * 1024 * 1024;
        let bytes = v.capacity() * std::mem::size_of::<T>();
        if bytes < 4 * HUGE {
            return;
        }
        let start = v.as_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE);
        let end = (start + bytes) / HUGE * HUGE;
        if end > aligned {
            // SAFETY: the range lies inside the vector's own allocation;
            // madvise only changes how the kernel backs those pages.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// Integer address types usable in [`Intervals`].
pub(crate) trait Addr: Copy + Ord + Default {
    /// The next address, or `None` past the last one.
    fn succ(self) -> Option<Self>;
    /// The top 16 bits, for types small enough to bucket on them (IPv4).
    fn top16(self) -> Option<usize>;
    /// The first address whose top 16 bits are `h` (IPv4 only).
    fn from_top16(h: usize) -> Self;
}

impl Addr for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    #[inline]
    fn top16(self) -> Option<usize> {
        Some((self >> 16) as usize)
    }
    fn from_top16(h: usize) -> Self {
        (h as u32) << 16
    }
}

impl Addr for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn top16(self) -> Option<usize> {
        None
    }
    fn from_top16(_: usize) -> Self {
        0
    }
}

/// Prefixes flattened into disjoint intervals. Each interval start maps to
/// a list of entry-chain heads (the prefixes covering it), stored in `sets`.
#[derive(Debug, Default)]
pub(crate) struct Intervals<A> {
    /// Prefixes as added: (first, last, chain head).
    pending: Vec<(A, A, u32)>,
    starts: Vec<A>,
    /// For interval i, `sets[offsets[i]..offsets[i + 1]]` are chain heads.
    offsets: Vec<u32>,
    sets: Vec<u32>,
    /// IPv4 only: `top[h]` = number of interval starts below `h << 16`, so
    /// a lookup binary-searches only the starts sharing its top 16 bits.
    top: Vec<u32>,
}

impl<A: Addr> Intervals<A> {
    pub(crate) fn add(&mut self, first: A, last: A, head: u32) {
        self.pending.push((first, last, head));
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.starts.capacity() * std::mem::size_of::<A>()
            + self.offsets.capacity() * 4
            + self.sets.capacity() * 4
            + self.top.capacity() * 4
            + self.pending.capacity() * std::mem::size_of::<(A, A, u32)>()
    }

    /// Flatten the prefixes. A sweep over interval boundaries keeps the set
    /// of open prefixes; each change starts a new elementary interval.
    pub(crate) fn build(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        // Events: (address, is_end_plus_one, index). Ends sort before starts
        // at the same address so that adjacent prefixes do not overlap.
        let mut events: Vec<(A, bool, usize)> = Vec::with_capacity(pending.len() * 2);
        for (i, (first, last, _)) in pending.iter().enumerate() {
            events.push((*first, false, i));
            if let Some(after) = last.succ() {
                events.push((after, true, i));
            }
        }
        events.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut open: Vec<usize> = Vec::new();
        let mut k = 0;
        self.starts.clear();
        self.offsets.clear();
        self.sets.clear();
        while k < events.len() {
            let at = events[k].0;
            while k < events.len() && events[k].0 == at {
                let (_, is_end, i) = events[k];
                if is_end {
                    if let Some(p) = open.iter().position(|x| *x == i) {
                        open.swap_remove(p);
                    }
                } else {
                    open.push(i);
                }
                k += 1;
            }
            self.starts.push(at);
            self.offsets.push(self.sets.len() as u32);
            let mut heads: Vec<u32> = open.iter().map(|i| pending[*i].2).collect();
            heads.sort_unstable();
            heads.dedup();
            self.sets.extend(heads);
        }
        self.offsets.push(self.sets.len() as u32);
        self.top.clear();
        if !self.starts.is_empty() && A::default().top16().is_some() {
            self.top = (0..=65_536usize)
                .map(|h| {
                    if h == 65_536 {
                        self.starts.len() as u32
                    } else {
                        let bound = A::from_top16(h);
                        self.starts.partition_point(|s| *s < bound) as u32
                    }
                })
                .collect();
        }
        self.starts.shrink_to_fit();
        self.offsets.shrink_to_fit();
        self.sets.shrink_to_fit();
        // Keep what was added so that more can be added and rebuilt.
        self.pending = pending;
    }

    /// Chain heads of the prefixes covering `a`.
    #[inline]
    pub(crate) fn covering(&self, a: A) -> &[u32] {
        let i = match a.top16() {
            Some(h) if !self.top.is_empty() => {
                let lo = self.top[h] as usize;
                let hi = self.top[h + 1] as usize;
                lo + self.starts[lo..hi].partition_point(|s| *s <= a)
            }
            _ => self.starts.partition_point(|s| *s <= a),
        };
        if i == 0 {
            return &[];
        }
        let lo = self.offsets[i - 1] as usize;
        let hi = self.offsets[i] as usize;
        &self.sets[lo..hi]
    }

    /// Release the build input once the index is final.
    pub(crate) fn drop_pending(&mut self) {
        self.pending = Vec::new();
    }
}

/// Snapshot encoding of the tables (see `crate::snapshot`).
mod snapshot_impl {
    use std::io::{self, Read, Write};

    use super::{Addr, EMPTY, END, FilterBlock, Intervals, Slot, U32Table, advise_huge_pages};
    use crate::snapshot::{SnapReader, SnapWriter, inconsistent as bad, le_u32};

    impl U32Table {
        pub(crate) fn write_snapshot<W: Write>(&self, w: &mut SnapWriter<W>) -> io::Result<()> {
            w.u64(self.len as u64)?;
            w.u64(self.slots.len() as u64)?;
            if cfg!(target_endian = "little") {
                // SAFETY: Slot is repr(C) with four u32 fields and no
                // padding, so its memory is 16 initialised bytes per slot,
                // laid out as the snapshot's little-endian fields.
                let bytes = unsafe {
                    std::slice::from_raw_parts(
                        self.slots.as_ptr().cast::<u8>(),
                        self.slots.len() * std::mem::size_of::<Slot>(),
                    )
                };
                w.raw(bytes)?;
            } else {
                for s in &self.slots {
                    w.u32(s.key)?;
                    w.u32(s.indicator)?;
                    w.u32(s.window)?;
                    w.u32(s.next)?;
                }
            }
            let words: Vec<u64> = self.filter.iter().flat_map(|b| b.0).collect();
            w.u64s(&words)?;
            w.u64(filter_checksum(&words))
        }

        /// Read a table back; `entries` and `windows` are the lengths of
        /// the index's side vectors, which every link must stay inside.
        pub(crate) fn read_snapshot<R: Read>(
            r: &mut SnapReader<R>,
            entries: usize,
            windows: usize,
        ) -> io::Result<Self> {
            let len = usize::try_from(r.u64()?).map_err(|_| bad("table length"))?;
            let mut slots: Vec<Slot> = Vec::new();
            if cfg!(target_endian = "little") {
                let n = r.count(16)?;
                slots.reserve_exact(n);
                advise_huge_pages(&slots);
                slots.resize(n, EMPTY);
                // SAFETY: Slot is repr(C) with four u32 fields and no
                // padding; the slots are initialised (resize), and any bytes
                // written through this view form valid u32 values.
                let bytes = unsafe {
                    std::slice::from_raw_parts_mut(
                        slots.as_mut_ptr().cast::<u8>(),
                        n * std::mem::size_of::<Slot>(),
                    )
                };
                r.fill(bytes)?;
            } else {
                r.records_into(
                    &mut slots,
                    16,
                    |v, n| {
                        v.reserve_exact(n);
                        advise_huge_pages(v);
                    },
                    |b| Slot {
                        key: le_u32(b, 0),
                        indicator: le_u32(b, 4),
                        window: le_u32(b, 8),
                        next: le_u32(b, 12),
                    },
                )?;
            }
            let words = r.u64s()?;
            if r.u64()? != filter_checksum(&words) {
                return Err(bad("the filter's checksum"));
            }
            if !(slots.is_empty() || slots.len().is_power_of_two()) {
                return Err(bad("table size is not a power of two"));
            }
            let blocks = words.len() / 8;
            if words.len() % 8 != 0 || !(blocks == 0 || blocks.is_power_of_two()) {
                return Err(bad("filter size"));
            }
            let filter: Vec<FilterBlock> = words
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u64; 8];
                    b.copy_from_slice(c);
                    FilterBlock(b)
                })
                .collect();
            let mut used = 0usize;
            for s in &slots {
                if s.indicator == EMPTY.indicator {
                    continue;
                }
                used += 1;
                if s.window as usize >= windows || (s.next != END && s.next as usize >= entries) {
                    return Err(bad("a table slot points outside the index"));
                }
            }
            if used != len || (len > 0 && used >= slots.len()) {
                return Err(bad("table fill"));
            }
            let table = Self {
                mask: slots.len().saturating_sub(1),
                slots,
                len,
                filter_mask: filter.len().saturating_sub(1),
                filter,
            };
            Ok(table)
        }
    }

    /// A checksum of the filter: a damaged filter would hide keys without
    /// any link going out of bounds, so it is checked as a whole (much
    /// cheaper than testing every key against it).
    fn filter_checksum(words: &[u64]) -> u64 {
        words.iter().fold(0x9E37_79B9_7F4A_7C15u64, |acc, w| {
            (acc ^ w).rotate_left(23).wrapping_mul(0x0100_0000_01B3)
        })
    }

    /// How an address type is written.
    pub(crate) trait SnapAddr: Addr {
        const SIZE: usize;
        fn put<W: Write>(self, w: &mut SnapWriter<W>) -> io::Result<()>;
        fn get(b: &[u8]) -> Self;
    }

    impl SnapAddr for u32 {
        const SIZE: usize = 4;
        fn put<W: Write>(self, w: &mut SnapWriter<W>) -> io::Result<()> {
            w.u32(self)
        }
        fn get(b: &[u8]) -> Self {
            le_u32(b, 0)
        }
    }

    impl SnapAddr for u128 {
        const SIZE: usize = 16;
        fn put<W: Write>(self, w: &mut SnapWriter<W>) -> io::Result<()> {
            w.u128(self)
        }
        fn get(b: &[u8]) -> Self {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            u128::from_le_bytes(a)
        }
    }

    impl<A: SnapAddr> Intervals<A> {
        /// Write the built intervals (not the pending build input).
        pub(crate) fn write_snapshot<W: Write>(&self, w: &mut SnapWriter<W>) -> io::Result<()> {
            w.u64(self.starts.len() as u64)?;
            for s in &self.starts {
                s.put(w)?;
            }
            w.u32s(&self.offsets)?;
            w.u32s(&self.sets)?;
            w.u32s(&self.top)
        }

        pub(crate) fn read_snapshot<R: Read>(
            r: &mut SnapReader<R>,
            entries: usize,
        ) -> io::Result<Self> {
            let starts = r.records(A::SIZE, A::get)?;
            let offsets = r.u32s()?;
            let sets = r.u32s()?;
            let top = r.u32s()?;
            // `covering` slices with these: check every bound it relies on.
            let ok_offsets = if starts.is_empty() {
                offsets.len() <= 1
            } else {
                offsets.len() == starts.len() + 1
                    && offsets.windows(2).all(|w| w[0] <= w[1])
                    && offsets.last().is_some_and(|l| *l as usize == sets.len())
            };
            let ok_top = top.is_empty()
                || (top.len() == 65_537
                    && top.windows(2).all(|w| w[0] <= w[1])
                    && top.last().is_some_and(|l| *l as usize == starts.len()));
            let ok_starts = starts.windows(2).all(|w| w[0] < w[1]);
            let ok_sets = sets.iter().all(|h| (*h as usize) < entries);
            if !(ok_offsets && ok_top && ok_starts && ok_sets) {
                return Err(bad("prefix intervals"));
            }
            Ok(Self {
                pending: Vec::new(),
                starts,
                offsets,
                sets,
                top,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_insert_get_chain_and_grow() {
        let mut t = U32Table::default();
        let mut ov = Vec::new();
        for k in 0..10_000u32 {
            t.insert(k.wrapping_mul(2_654_435_761), k, 0, &mut ov);
        }
        t.insert(7u32.wrapping_mul(2_654_435_761), 99, 1, &mut ov);
        assert_eq!(t.len(), 10_000);
        let (ind, _, next) = t.get(7u32.wrapping_mul(2_654_435_761)).unwrap();
        assert_eq!(ind, 7);
        assert_eq!(ov[next as usize].indicator, 99);
        assert!(t.get(1).is_none() || t.get(1).is_some());
        t.shrink();
        assert_eq!(t.get(5u32.wrapping_mul(2_654_435_761)).unwrap().0, 5);
        assert_eq!(t.get(0).unwrap().0, 0);
    }

    #[test]
    fn large_table_with_filter_finds_every_key() {
        let mut t = U32Table::default();
        let mut ov = Vec::new();
        let keys: Vec<u32> = (0..100_000u32)
            .map(|k| k.wrapping_mul(2_654_435_761))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            t.insert(*k, i as u32, 0, &mut ov);
        }
        t.shrink();
        assert!(!t.filter.is_empty());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(*k).map(|g| g.0), Some(i as u32));
        }
        let absent = (0..100_000u32)
            .filter(|k| t.get(k.wrapping_mul(40_503) ^ 0x5555_5555).is_some())
            .count();
        assert!(absent < 100, "{absent}");
        // The filter lets few absent keys through (about 1 % at 12 bits
        // per key; the table rounds up, so fewer here).
        let key_set: std::collections::HashSet<u32> = keys.iter().copied().collect();
        let probes: Vec<u32> = (0..200_000u32)
            .map(|k| k.wrapping_mul(3_266_489_917) ^ 0x0F0F_0F0F)
            .filter(|k| !key_set.contains(k))
            .collect();
        let passed = probes.iter().filter(|k| t.filter_may_hold(**k)).count();
        assert!(
            passed * 100 < probes.len() * 2,
            "{passed} of {} absent keys passed the filter",
            probes.len()
        );
    }

    #[test]
    fn intervals_nested_and_adjacent() {
        let mut iv: Intervals<u32> = Intervals::default();
        iv.add(0, 255, 1); // /24
        iv.add(0, 127, 2); // /25 inside
        iv.add(256, 511, 3); // adjacent /24
        iv.add(u32::MAX - 1, u32::MAX, 4); // touches the top
        iv.build();
        assert_eq!(iv.covering(5), &[1, 2]);
        assert_eq!(iv.covering(128), &[1]);
        assert_eq!(iv.covering(255), &[1]);
        assert_eq!(iv.covering(256), &[3]);
        assert!(iv.covering(512).is_empty());
        assert_eq!(iv.covering(u32::MAX), &[4]);
    }
}
