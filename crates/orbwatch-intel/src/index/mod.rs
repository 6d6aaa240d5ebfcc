//! The compiled index that `hunt` and `watch` match events against.
//!
//! Three structures, because each kind of indicator has its own best
//! lookup:
//! - exact IPv4 addresses in an open-addressing table whose slots hold the
//!   whole first entry (`tables::U32Table`): one cache miss per lookup;
//!   IPv6 in a hash map;
//! - CIDRs and ranges flattened into sorted disjoint intervals
//!   (`tables::Intervals`), consulted only when the feed has any, and
//!   returning *every* covering prefix, not just the longest. (A
//!   `prefix-trie` cover walk measured ~770 ns per lookup with 10,000
//!   prefixes; the binary search stays in cache.)
//! - domains in a hash map probed once per label suffix, so `evil.example`
//!   matches `a.b.evil.example`; URLs and hashes by exact value.
//!
//! A lookup returns every indicator that matches together with its validity
//! window, so the caller decides whether the event time is inside it.
//!
//! Memory: an IPv4 indicator costs one 16-byte slot at a load factor of at
//! most 5/8 (about 26 bytes); windows are interned, since most indicators of
//! one feed share theirs. The same value from several feeds, or twice with
//! different windows, is a chain of entries behind one key.

mod tables;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hashbrown::HashMap;
use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use jiff::Timestamp;

use tables::{Intervals, U32Table};

use crate::model::IndicatorValue;

/// Validity window of a match; `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowInfo {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl WindowInfo {
    /// Is `t` inside the window (bounds inclusive)?
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from.is_none_or(|f| t >= f) && self.until.is_none_or(|u| t <= u)
    }
}

/// One indicator that matched a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchRef {
    /// The caller's identifier for the indicator, as given to [`IndexBuilder::add`].
    pub indicator: u32,
    pub window: WindowInfo,
}

/// Sentinel for "no next entry" in a chain.
const END: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    indicator: u32,
    window: u32,
    next: u32,
}

/// Window bounds in seconds; `i64::MIN`/`i64::MAX` mean open.
type WindowKey = (i64, i64);

fn window_key(from: Option<Timestamp>, until: Option<Timestamp>) -> WindowKey {
    (
        from.map_or(i64::MIN, |t| t.as_second()),
        until.map_or(i64::MAX, |t| t.as_second()),
    )
}

fn window_info(k: WindowKey) -> WindowInfo {
    let conv = |s: i64| Timestamp::from_second(s).ok();
    WindowInfo {
        from: if k.0 == i64::MIN { None } else { conv(k.0) },
        until: if k.1 == i64::MAX { None } else { conv(k.1) },
    }
}

/// Collects indicators, then [`build`](IndexBuilder::build)s an [`Index`].
#[derive(Default)]
pub struct IndexBuilder {
    index: Index,
    window_ids: HashMap<WindowKey, u32>,
    /// Chain head of each network added so far (to chain duplicates).
    net_heads: HashMap<IpNet, u32>,
    last_window: Option<(WindowKey, u32)>,
    /// IPv4 inserts waiting their turn (key, indicator, window): each
    /// slot is prefetched when its address is added and written
    /// `V4_INSERT_LAG` adds later, so a large feed's inserts overlap their
    /// cache misses instead of paying them one after the other.
    v4_pending: std::collections::VecDeque<(u32, u32, u32)>,
}

/// How many IPv4 inserts are in flight while a feed loads (see
/// `IndexBuilder::v4_pending`).
const V4_INSERT_LAG: usize = 16;

/// Counts of what an index holds, for progress and coverage output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub ipv4: usize,
    pub ipv6: usize,
    pub ipv4_prefixes: usize,
    pub ipv6_prefixes: usize,
    pub domains: usize,
    pub urls: usize,
    pub hashes: usize,
    pub entries: usize,
}

/// The compiled, read-only match index. Cheap to share across threads.
#[derive(Default)]
pub struct Index {
    entries: Vec<Entry>,
    windows: Vec<WindowKey>,
    v4: U32Table,
    v6: HashMap<u128, u32>,
    v4_nets: Intervals<u32>,
    v6_nets: Intervals<u128>,
    v4_net_count: usize,
    v6_net_count: usize,
    domains: HashMap<Box<str>, u32>,
    urls: HashMap<Box<str>, u32>,
    hashes: HashMap<Box<str>, u32>,
}

impl IndexBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserve room for `n` exact IPv4 addresses (avoids rehashing on big feeds).
    pub fn reserve_ipv4(&mut self, n: usize) {
        self.index.v4.reserve(n);
    }

    fn window_id(&mut self, from: Option<Timestamp>, until: Option<Timestamp>) -> u32 {
        let key = window_key(from, until);
        // Consecutive indicators of a feed mostly share their window.
        if let Some((k, id)) = self.last_window
            && k == key
        {
            return id;
        }
        let next_window = self.index.windows.len() as u32;
        let window = *self.window_ids.entry(key).or_insert(next_window);
        if window == next_window {
            self.index.windows.push(key);
        }
        self.last_window = Some((key, window));
        window
    }

    fn push_entry(
        &mut self,
        indicator: u32,
        from: Option<Timestamp>,
        until: Option<Timestamp>,
        head: u32,
    ) -> u32 {
        let window = self.window_id(from, until);
        let id = self.index.entries.len() as u32;
        self.index.entries.push(Entry {
            indicator,
            window,
            next: head,
        });
        id
    }

    /// Add one indicator. `indicator` is the caller's identifier (a row id,
    /// a position in a vector) and is what lookups return.
    pub fn add(
        &mut self,
        indicator: u32,
        value: &IndicatorValue,
        valid_from: Option<Timestamp>,
        valid_until: Option<Timestamp>,
    ) {
        match value {
            IndicatorValue::Ip(IpAddr::V4(a)) => {
                let window = self.window_id(valid_from, valid_until);
                let key = u32::from(*a);
                self.index.v4.prefetch(key);
                self.v4_pending.push_back((key, indicator, window));
                if self.v4_pending.len() > V4_INSERT_LAG {
                    self.insert_oldest_v4();
                }
            }
            IndicatorValue::Ip(IpAddr::V6(a)) => {
                let key = u128::from(*a);
                let head = self.index.v6.get(&key).copied().unwrap_or(END);
                let id = self.push_entry(indicator, valid_from, valid_until, head);
                self.index.v6.insert(key, id);
            }
            IndicatorValue::Cidr(net) => self.add_net(indicator, *net, valid_from, valid_until),
            IndicatorValue::Range { first, last } => match (first, last) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    for net in Ipv4Subnets::new(*a, *b, 0) {
                        self.add_net(indicator, IpNet::V4(net), valid_from, valid_until);
                    }
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    for net in Ipv6Subnets::new(*a, *b, 0) {
                        self.add_net(indicator, IpNet::V6(net), valid_from, valid_until);
                    }
                }
                _ => {}
            },
            IndicatorValue::Domain(d) => {
                let key = normalise_domain(d);
                self.add_keyed(Keyed::Domain, key, indicator, valid_from, valid_until)
            }
            IndicatorValue::Url(u) => {
                self.add_keyed(Keyed::Url, u.clone(), indicator, valid_from, valid_until)
            }
            IndicatorValue::Hash { hex, .. } | IndicatorValue::CertFingerprint { hex, .. } => self
                .add_keyed(
                    Keyed::Hash,
                    hex.to_ascii_lowercase(),
                    indicator,
                    valid_from,
                    valid_until,
                ),
        }
    }

    /// Write the oldest waiting IPv4 insert into the table. Inserts keep
    /// their order, so duplicates chain exactly as if written at once.
    fn insert_oldest_v4(&mut self) {
        if let Some((key, indicator, window)) = self.v4_pending.pop_front() {
            let ix = &mut self.index;
            ix.v4.insert(key, indicator, window, &mut ix.entries);
        }
    }

    fn add_net(
        &mut self,
        indicator: u32,
        net: IpNet,
        from: Option<Timestamp>,
        until: Option<Timestamp>,
    ) {
        // A single-address network is an exact address: use the fast path.
        if net.prefix_len() == net.max_prefix_len() {
            self.add(indicator, &IndicatorValue::Ip(net.addr()), from, until);
            return;
        }
        let net = net.trunc();
        let head = self.net_heads.get(&net).copied().unwrap_or(END);
        let id = self.push_entry(indicator, from, until, head);
        self.net_heads.insert(net, id);
        if head == END {
            match net {
                IpNet::V4(_) => self.index.v4_net_count += 1,
                IpNet::V6(_) => self.index.v6_net_count += 1,
            }
        }
    }

    fn add_keyed(
        &mut self,
        which: Keyed,
        key: String,
        indicator: u32,
        from: Option<Timestamp>,
        until: Option<Timestamp>,
    ) {
        let map = match which {
            Keyed::Domain => &self.index.domains,
            Keyed::Url => &self.index.urls,
            Keyed::Hash => &self.index.hashes,
        };
        let head = map.get(key.as_str()).copied().unwrap_or(END);
        let id = self.push_entry(indicator, from, until, head);
        let map = match which {
            Keyed::Domain => &mut self.index.domains,
            Keyed::Url => &mut self.index.urls,
            Keyed::Hash => &mut self.index.hashes,
        };
        map.insert(key.into_boxed_str(), id);
    }

    /// Finish building. Flattens the prefixes and shrinks every table to fit.
    pub fn build(mut self) -> Index {
        while !self.v4_pending.is_empty() {
            self.insert_oldest_v4();
        }
        for (net, head) in self.net_heads.drain() {
            match net {
                IpNet::V4(n) => {
                    self.index
                        .v4_nets
                        .add(u32::from(n.network()), u32::from(n.broadcast()), head)
                }
                IpNet::V6(n) => {
                    self.index
                        .v6_nets
                        .add(u128::from(n.network()), u128::from(n.broadcast()), head)
                }
            }
        }
        let ix = &mut self.index;
        ix.v4_nets.build();
        ix.v4_nets.drop_pending();
        ix.v6_nets.build();
        ix.v6_nets.drop_pending();
        ix.v4.shrink();
        ix.entries.shrink_to_fit();
        ix.windows.shrink_to_fit();
        ix.v6.shrink_to_fit();
        ix.domains.shrink_to_fit();
        ix.urls.shrink_to_fit();
        ix.hashes.shrink_to_fit();
        self.index
    }
}

#[derive(Clone, Copy)]
enum Keyed {
    Domain,
    Url,
    Hash,
}

/// Lower-case and strip one trailing dot: DNS names compare case-insensitively.
fn normalise_domain(d: &str) -> String {
    d.trim_end_matches('.').to_ascii_lowercase()
}

impl Index {
    /// True when the index holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether any CIDR or range is present (the trie walk can be skipped otherwise).
    pub fn has_prefixes(&self) -> bool {
        self.v4_net_count + self.v6_net_count > 0
    }

    /// Whether any IPv6 address or prefix is present (an IPv4-only index
    /// lets callers skip scanning text for IPv6).
    pub fn has_ipv6(&self) -> bool {
        !self.v6.is_empty() || self.v6_net_count > 0
    }

    /// Whether any domain or URL indicator is present.
    pub fn has_names(&self) -> bool {
        !self.domains.is_empty() || !self.urls.is_empty()
    }

    /// Whether any hash or certificate indicator is present.
    pub fn has_hashes(&self) -> bool {
        !self.hashes.is_empty()
    }

    pub fn stats(&self) -> IndexStats {
        IndexStats {
            ipv4: self.v4.len(),
            ipv6: self.v6.len(),
            ipv4_prefixes: self.v4_net_count,
            ipv6_prefixes: self.v6_net_count,
            domains: self.domains.len(),
            urls: self.urls.len(),
            hashes: self.hashes.len(),
            entries: self.entries.len(),
        }
    }

    /// Approximate heap bytes held by the index (hash tables at capacity,
    /// entries, windows, keys; trie nodes estimated).
    pub fn heap_bytes(&self) -> usize {
        fn table<K, V>(m: &HashMap<K, V>) -> usize {
            // hashbrown: one control byte per bucket plus the slot.
            let buckets = if m.capacity() == 0 {
                0
            } else {
                (m.capacity() * 8 / 7).next_power_of_two()
            };
            buckets * (std::mem::size_of::<(K, V)>() + 1)
        }
        fn keyed(m: &HashMap<Box<str>, u32>) -> usize {
            table(m) + m.keys().map(|k| k.len()).sum::<usize>()
        }
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.windows.capacity() * std::mem::size_of::<WindowKey>()
            + self.v4.heap_bytes()
            + table(&self.v6)
            + keyed(&self.domains)
            + keyed(&self.urls)
            + keyed(&self.hashes)
            + self.v4_nets.heap_bytes()
            + self.v6_nets.heap_bytes()
    }

    fn walk(&self, mut head: u32, out: &mut Vec<MatchRef>) {
        while head != END {
            let Some(e) = self.entries.get(head as usize) else {
                break;
            };
            out.push(MatchRef {
                indicator: e.indicator,
                window: window_info(self.windows[e.window as usize]),
            });
            head = e.next;
        }
    }

    /// Append every indicator matching `ip` (exact or covering prefix) to `out`.
    #[inline]
    pub fn lookup_ip(&self, ip: IpAddr, out: &mut Vec<MatchRef>) {
        match ip {
            IpAddr::V4(a) => self.lookup_v4(a, out),
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.lookup_v4(v4, out);
                }
                self.lookup_v6(a, out)
            }
        }
    }

    #[inline]
    fn lookup_v4(&self, a: Ipv4Addr, out: &mut Vec<MatchRef>) {
        let key = u32::from(a);
        if let Some((indicator, window, next)) = self.v4.get(key) {
            out.push(MatchRef {
                indicator,
                window: window_info(self.windows[window as usize]),
            });
            self.walk(next, out);
        }
        if self.v4_net_count > 0 {
            for &head in self.v4_nets.covering(key) {
                self.walk(head, out);
            }
        }
    }

    fn lookup_v6(&self, a: Ipv6Addr, out: &mut Vec<MatchRef>) {
        if let Some(&head) = self.v6.get(&u128::from(a)) {
            self.walk(head, out);
        }
        if self.v6_net_count > 0 {
            for &head in self.v6_nets.covering(u128::from(a)) {
                self.walk(head, out);
            }
        }
    }

    /// First stage of a pipelined IPv4 lookup: starts loading the bit of
    /// the Bloom filter that [`Index::prefetch_ipv4`] tests. Issue it some
    /// records before `prefetch_ipv4`, which is issued some records before
    /// the lookup itself; each stage then finds its data in cache.
    #[inline]
    pub fn prefetch_ipv4_filter(&self, key: u32) {
        self.v4.prefetch_filter(key);
    }

    /// Hint that `key` (an IPv4 address) will be looked up soon: starts
    /// loading its table slot into cache. A no-op where the Bloom filter
    /// proves the address absent, or off x86_64.
    #[inline]
    pub fn prefetch_ipv4(&self, key: u32) {
        self.v4.prefetch(key);
    }

    /// Quick yes/no for an address, without collecting matches.
    #[inline]
    pub fn contains_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let key = u32::from(a);
                self.v4.get(key).is_some()
                    || (self.v4_net_count > 0 && !self.v4_nets.covering(key).is_empty())
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.contains_ip(IpAddr::V4(v4));
                }
                let key = u128::from(a);
                self.v6.contains_key(&key)
                    || (self.v6_net_count > 0 && !self.v6_nets.covering(key).is_empty())
            }
        }
    }

    /// Append every domain indicator matching `name` or one of its parent
    /// domains. Returns the matched indicator key for each through `out`
    /// (callers that need which suffix matched can look the indicator up).
    pub fn lookup_domain(&self, name: &str, out: &mut Vec<MatchRef>) {
        if self.domains.is_empty() {
            return;
        }
        let lower;
        let name = name.trim_end_matches('.');
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        let mut rest = name;
        loop {
            if let Some(&head) = self.domains.get(rest) {
                self.walk(head, out);
            }
            match rest.find('.') {
                Some(i) => rest = &rest[i + 1..],
                None => break,
            }
        }
    }

    /// Append every URL indicator equal to `url` (scheme and host compared
    /// case-insensitively).
    pub fn lookup_url(&self, url: &str, out: &mut Vec<MatchRef>) {
        if self.urls.is_empty() {
            return;
        }
        if let Some(&head) = self.urls.get(url) {
            self.walk(head, out);
            return;
        }
        if let Ok(IndicatorValue::Url(norm)) =
            crate::value::parse_value(url, Some(crate::value::TypeHint::Url))
            && let Some(&head) = self.urls.get(norm.as_str())
        {
            self.walk(head, out);
        }
    }

    /// Append every hash or certificate indicator equal to `hex` (any case).
    pub fn lookup_hash(&self, hex: &str, out: &mut Vec<MatchRef>) {
        if self.hashes.is_empty() {
            return;
        }
        let key = hex.replace(':', "").to_ascii_lowercase();
        if let Some(&head) = self.hashes.get(key.as_str()) {
            self.walk(head, out);
        }
    }
}

/// Snapshots: see `crate::snapshot`. Every link read back is checked to
/// stay inside the index, so lookups on a loaded snapshot cannot go out of
/// bounds or loop.
impl Index {
    /// Write the compiled index.
    pub fn write_snapshot<W: std::io::Write>(
        &self,
        w: &mut crate::snapshot::SnapWriter<W>,
    ) -> std::io::Result<()> {
        w.u64(self.entries.len() as u64)?;
        for e in &self.entries {
            w.u32(e.indicator)?;
            w.u32(e.window)?;
            w.u32(e.next)?;
        }
        w.u64(self.windows.len() as u64)?;
        for (a, b) in &self.windows {
            w.i64(*a)?;
            w.i64(*b)?;
        }
        self.v4.write_snapshot(w)?;
        w.u64(self.v6.len() as u64)?;
        for (k, v) in &self.v6 {
            w.u128(*k)?;
            w.u32(*v)?;
        }
        self.v4_nets.write_snapshot(w)?;
        self.v6_nets.write_snapshot(w)?;
        w.u64(self.v4_net_count as u64)?;
        w.u64(self.v6_net_count as u64)?;
        for map in [&self.domains, &self.urls, &self.hashes] {
            w.u64(map.len() as u64)?;
            for (k, v) in map {
                w.str(k)?;
                w.u32(*v)?;
            }
        }
        Ok(())
    }

    /// Read an index written by [`Index::write_snapshot`].
    pub fn read_snapshot<R: std::io::Read>(
        r: &mut crate::snapshot::SnapReader<R>,
    ) -> std::io::Result<Index> {
        use crate::snapshot::{inconsistent as bad, le_u32};
        let entries = r.records(12, |b| Entry {
            indicator: le_u32(b, 0),
            window: le_u32(b, 4),
            next: le_u32(b, 8),
        })?;
        let windows = r.records(16, |b| {
            let mut x = [0u8; 8];
            let mut y = [0u8; 8];
            x.copy_from_slice(&b[..8]);
            y.copy_from_slice(&b[8..16]);
            (i64::from_le_bytes(x), i64::from_le_bytes(y))
        })?;
        // Chains only point backwards (each entry was pushed in front of
        // an older head), so walking one always ends.
        for (i, e) in entries.iter().enumerate() {
            if e.window as usize >= windows.len() || (e.next != END && e.next as usize >= i) {
                return Err(bad("an entry chain"));
            }
        }
        let head_ok = |h: u32| (h as usize) < entries.len();
        let v4 = U32Table::read_snapshot(r, entries.len(), windows.len())?;
        let n = r.count(20)?;
        let mut v6 = HashMap::with_capacity(n);
        for _ in 0..n {
            let k = r.u128()?;
            let h = r.u32()?;
            if !head_ok(h) {
                return Err(bad("an IPv6 chain head"));
            }
            v6.insert(k, h);
        }
        let v4_nets = Intervals::read_snapshot(r, entries.len())?;
        let v6_nets = Intervals::read_snapshot(r, entries.len())?;
        let v4_net_count = r.u64()? as usize;
        let v6_net_count = r.u64()? as usize;
        let mut maps: [HashMap<Box<str>, u32>; 3] = Default::default();
        for map in &mut maps {
            let n = r.count(12)?;
            map.reserve(n);
            for _ in 0..n {
                let k = r.string()?.into_boxed_str();
                let h = r.u32()?;
                if !head_ok(h) {
                    return Err(bad("a name chain head"));
                }
                map.insert(k, h);
            }
        }
        let [domains, urls, hashes] = maps;
        Ok(Index {
            entries,
            windows,
            v4,
            v6,
            v4_nets,
            v6_nets,
            v4_net_count,
            v6_net_count,
            domains,
            urls,
            hashes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::parse_value;

    fn build(items: &[(&str, Option<&str>, Option<&str>)]) -> Index {
        let mut b = IndexBuilder::new();
        for (i, (v, f, u)) in items.iter().enumerate() {
            let value = parse_value(v, None).unwrap();
            b.add(
                i as u32,
                &value,
                f.map(|s| s.parse().unwrap()),
                u.map(|s| s.parse().unwrap()),
            );
        }
        b.build()
    }

    fn ids(ix: &Index, ip: &str) -> Vec<u32> {
        let mut out = Vec::new();
        ix.lookup_ip(ip.parse().unwrap(), &mut out);
        let mut v: Vec<u32> = out.iter().map(|m| m.indicator).collect();
        v.sort();
        v
    }

    #[test]
    fn exact_cidr_range_and_all_covering() {
        let ix = build(&[
            ("1.2.3.4", None, None),
            ("1.2.3.0/24", None, None),
            ("1.0.0.0/8", None, None),
            ("1.2.3.1-1.2.3.10", None, None),
            ("2001:db8::/32", None, None),
            ("2001:db8::1", None, None),
        ]);
        assert_eq!(ids(&ix, "1.2.3.4"), [0, 1, 2, 3]);
        assert_eq!(ids(&ix, "1.2.3.11"), [1, 2]);
        assert_eq!(ids(&ix, "1.9.9.9"), [2]);
        assert!(ids(&ix, "11.2.3.4").is_empty());
        assert_eq!(ids(&ix, "2001:db8::1"), [4, 5]);
        assert_eq!(ids(&ix, "::ffff:1.2.3.4"), [0, 1, 2, 3]);
        assert!(ix.contains_ip("1.2.3.200".parse().unwrap()));
        assert!(!ix.contains_ip("9.9.9.9".parse().unwrap()));
    }

    #[test]
    fn two_windows_for_one_value_are_both_returned() {
        let ix = build(&[
            (
                "5.5.5.5",
                Some("2022-01-01T00:00:00Z"),
                Some("2022-02-01T00:00:00Z"),
            ),
            ("5.5.5.5", Some("2023-01-01T00:00:00Z"), None),
        ]);
        let mut out = Vec::new();
        ix.lookup_ip("5.5.5.5".parse().unwrap(), &mut out);
        assert_eq!(out.len(), 2);
        let t: Timestamp = "2022-01-15T00:00:00Z".parse().unwrap();
        assert_eq!(out.iter().filter(|m| m.window.contains(t)).count(), 1);
        let t: Timestamp = "2024-01-15T00:00:00Z".parse().unwrap();
        assert_eq!(out.iter().filter(|m| m.window.contains(t)).count(), 1);
        let t: Timestamp = "2022-06-15T00:00:00Z".parse().unwrap();
        assert_eq!(out.iter().filter(|m| m.window.contains(t)).count(), 0);
    }

    #[test]
    fn domain_suffixes() {
        let ix = build(&[("evil.example", None, None)]);
        let mut out = Vec::new();
        ix.lookup_domain("A.B.Evil.Example.", &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        ix.lookup_domain("notevil.example", &mut out);
        assert!(out.is_empty());
        ix.lookup_domain("example", &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn urls_and_hashes() {
        let ix = build(&[
            ("http://Evil.Example/Path", None, None),
            ("D41D8CD98F00B204E9800998ECF8427E", None, None),
        ]);
        let mut out = Vec::new();
        ix.lookup_url("HTTP://evil.example/Path", &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        ix.lookup_url("http://evil.example/path", &mut out);
        assert!(out.is_empty(), "paths are case-sensitive");
        ix.lookup_hash("d41d8cd98f00b204e9800998ecf8427e", &mut out);
        assert_eq!(out.len(), 1);
    }
}
