//! `distributed_bruteforce`: the ORB pattern. Many sources, each failing
//! only a few times — often once a day per account from each router —
//! against the same service and the same accounts.
//!
//! No single source crosses a per-source threshold, so the detector keeps
//! a small record per (source, service) and per (service, account), and
//! decides membership from what ties sources together. A low-rate source
//! (never over `max_daily_failures` in a UTC day, never a `brute_force`,
//! never a success) earns one point for each of:
//! - **persistence**: failures on `persistent_days` distinct days or more;
//! - **shared accounts**: at least half of the accounts it tried were also
//!   tried by `shared_account_sources` low-rate sources, and get less than
//!   half of their failures from brute-forcing sources (accounts everyone
//!   hammers, like `root`, tie nobody together);
//! - **valid accounts**: an account it tried logged in successfully from
//!   elsewhere, and is shared (the campaign knows real account names;
//!   background scanners guess `root` and `admin`);
//! - **cluster**: its /24 holds `cluster_sources` low-rate sources.
//!
//! A source with `min_points` points joins the campaign on its service; a
//! campaign of `min_sources` members is a finding, which lists the members
//! and summarises them by /24, /16 and ASN. So a single source below every
//! per-source threshold is caught through its cluster or its accounts.
//!
//! Failures on a service with no gap longer than `idle_secs` form one run;
//! sources idle that long wait compacted until the run goes quiet, then
//! the run is judged and its state dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use hashbrown::{HashMap, HashSet};

use super::success_after_failures::{cluster_key, cluster_name};
use super::{
    DistributedConfig, Draft, NodeId, Obs, ObsKind, Tables, capped, human_span, mix, ms_of,
    new_finding, secs, severity_of,
};
use crate::enrich::Enricher;
use crate::finding::FindingKind;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, Default)]
struct Source {
    /// Seconds since 2000 (see `secs`).
    first: u32,
    last: u32,
    failures: u32,
    last_day: u16,
    days: u16,
    day_failures: u16,
    max_day_failures: u16,
    successes: u16,
    accounts: [u32; 3],
    n_accounts: u8,
    brute: bool,
    /// The last failure named no existing account.
    last_invalid: bool,
    /// Account of the last failure (for `brute_force`'s first tier).
    last_account: u32,
    /// Failures within the success-after-failures lookback, and the first
    /// of them (seconds since 2000).
    recent_first: u32,
    recent_count: u16,
    /// Bloom bits of every account tried, to count each (source, account)
    /// once in the account table.
    seen: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Account {
    sources: u32,
    failures: u32,
    successes: u32,
    /// Failures on it from sources over the brute-force thresholds.
    brute_failures: u32,
}

impl Account {
    /// Tried by this many low-rate sources, and not everyone's target: an
    /// account that brute-forcers hammer (`root`, `admin`) gets half or
    /// more of its failures from them, and ties nobody together.
    fn shared(&self, min_sources: u32) -> bool {
        self.sources >= min_sources && self.brute_failures * 2 < self.failures
    }
}

/// Bytes per tracked (source, service): key and state.
pub const STATE_BYTES: usize = std::mem::size_of::<(NodeId, u16)>() + std::mem::size_of::<Source>();

#[derive(Debug, Clone, Copy, Default)]
struct Member {
    src: NodeId,
    first: i64,
    last: i64,
    failures: u32,
    days: u16,
    points: [bool; 4],
}

/// Failures on one service with no gap longer than `idle_secs`: one
/// candidate campaign. Sources idle that long wait here, compacted, until
/// the whole run goes quiet and is judged.
#[derive(Debug, Default)]
struct Run {
    last: i64,
    idle: Vec<(NodeId, Source)>,
}

/// The distributed brute-force detector.
pub struct Distributed<'a> {
    cfg: &'a DistributedConfig,
    sources: HashMap<(NodeId, u16), Source>,
    accounts: HashMap<(u16, u32), Account>,
    runs: BTreeMap<u16, Run>,
    /// (second of a failure, key) in time order: finds idle keys without
    /// scanning `sources`.
    expiry: std::collections::VecDeque<(u32, (NodeId, u16))>,
    /// Campaigns judged in parts so far (see `max_idle_sources`).
    parts: u64,
    next_sweep: i64,
    out: Vec<Draft>,
    /// The success-after-failures lookback (ms): this table also keeps
    /// each key's recent failures for that detector.
    lookback: i64,
}

impl<'a> Distributed<'a> {
    /// A detector with no state yet; `lookback_secs` is the
    /// success-after-failures lookback its shared record keeps.
    pub fn new(cfg: &'a DistributedConfig, lookback_secs: i64) -> Self {
        Self {
            cfg,
            sources: HashMap::new(),
            accounts: HashMap::new(),
            runs: BTreeMap::new(),
            expiry: std::collections::VecDeque::new(),
            parts: 0,
            next_sweep: i64::MIN,
            out: Vec::new(),
            lookback: lookback_secs * 1000,
        }
    }

    /// How many times a campaign was judged in parts because more than
    /// `max_idle_sources` members waited for it to pause.
    pub fn parts(&self) -> u64 {
        self.parts
    }

    /// (source, service) keys tracked right now.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Approximate heap bytes of the per-key tables.
    pub fn heap_bytes(&self) -> usize {
        self.sources.capacity() * (STATE_BYTES + 1)
            + self.accounts.capacity() * (std::mem::size_of::<((u16, u32), Account)>() + 1)
    }

    /// Feed one auth observation; `brute` says the brute-force detector
    /// has this (source, service) over its thresholds.
    pub fn observe(&mut self, o: &Obs, brute: bool, t: &Tables, enricher: &Enricher) {
        let idle = self.cfg.idle_secs * 1000;
        if o.time >= self.next_sweep {
            self.sweep(o.time - idle, t, enricher);
            self.next_sweep = o.time + DAY_MS.min(idle.max(1));
        }
        let key = (o.src, o.svc);
        let user = o.aux as u32;
        if o.kind == ObsKind::AuthSuccess {
            if user != 0 {
                self.accounts.entry((o.svc, user)).or_default().successes += 1;
            }
            if let Some(s) = self.sources.get_mut(&key) {
                s.successes = s.successes.saturating_add(1);
            }
            return;
        }
        let day = (secs(o.time) / 86_400) as u16;
        let run = self.runs.entry(o.svc).or_default();
        run.last = run.last.max(o.time);
        let s = self.sources.entry(key).or_insert_with(|| Source {
            first: secs(o.time),
            last: secs(o.time),
            last_day: day,
            ..Default::default()
        });
        if s.recent_count == 0 || o.time - ms_of(s.last) > self.lookback {
            s.recent_first = secs(o.time);
            s.recent_count = 0;
        }
        s.recent_count = s.recent_count.saturating_add(1);
        s.last_account = user;
        s.last_invalid = o.flags & super::observe::FLAG_INVALID_USER != 0;
        if secs(o.time) > s.last || s.failures == 0 {
            self.expiry.push_back((secs(o.time), key));
        }
        s.last = s.last.max(secs(o.time));
        s.failures = s.failures.saturating_add(1);
        s.brute |= brute;
        if s.days == 0 || day != s.last_day {
            s.days = s.days.saturating_add(1);
            s.last_day = day;
            s.day_failures = 0;
        }
        s.day_failures = s.day_failures.saturating_add(1);
        s.max_day_failures = s.max_day_failures.max(s.day_failures);
        if user != 0 {
            // The name's hash, not its id: ids depend on merge order.
            let bit = 1u32 << (mix(t.name_key(user)) & 31);
            let first_time = s.seen & bit == 0;
            s.seen |= bit;
            let n = s.n_accounts as usize;
            if n < s.accounts.len() && !s.accounts[..n].contains(&user) {
                s.accounts[n] = user;
                s.n_accounts += 1;
            }
            let a = self.accounts.entry((o.svc, user)).or_default();
            a.failures = a.failures.saturating_add(1);
            if brute {
                a.brute_failures = a.brute_failures.saturating_add(1);
            }
            if first_time {
                a.sources = a.sources.saturating_add(1);
            }
        }
    }

    /// The previous failure of a key: (time in ms, account, invalid user).
    /// The brute-force detector's first tier reads it instead of keeping
    /// its own copy.
    pub fn previous_failure(&self, src: NodeId, svc: u16) -> Option<(i64, u32, bool)> {
        self.sources
            .get(&(src, svc))
            .filter(|s| s.failures > 0)
            .map(|s| (ms_of(s.last), s.last_account, s.last_invalid))
    }

    /// Failures of a key within the lookback before `now` (ms): (count,
    /// first failure in ms).
    pub fn recent_failures(&self, src: NodeId, svc: u16, now: i64) -> (u32, i64) {
        match self.sources.get(&(src, svc)) {
            Some(s) if s.recent_count > 0 && now - ms_of(s.last) <= self.lookback => {
                (u32::from(s.recent_count), ms_of(s.recent_first))
            }
            _ => (0, now),
        }
    }

    /// Forget a key's recent failures (a success after them was reported).
    pub fn reset_recent(&mut self, src: NodeId, svc: u16) {
        if let Some(s) = self.sources.get_mut(&(src, svc)) {
            s.recent_count = 0;
        }
    }

    fn low_rate(&self, s: &Source) -> bool {
        !s.brute
            && s.successes == 0
            && s.failures > 0
            && u32::from(s.max_day_failures) <= self.cfg.max_daily_failures
    }

    /// Move sources idle since `before` to their run; judge runs that
    /// went quiet.
    fn sweep(&mut self, before: i64, t: &Tables, enricher: &Enricher) {
        let cutoff = secs(before);
        let cap = self.cfg.max_idle_sources.max(1) as usize;
        // Keys whose last failure is before the cutoff: every key's latest
        // failure is in the expiry queue (in time order), so popping the
        // queue finds them without scanning the table.
        let mut idle = Vec::new();
        while let Some(&(t, k)) = self.expiry.front() {
            if t >= cutoff {
                break;
            }
            self.expiry.pop_front();
            if self.sources.get(&k).is_some_and(|s| s.last < cutoff) {
                idle.push(k);
            }
        }
        idle.sort_unstable();
        idle.dedup();
        let gone: Vec<((NodeId, u16), Source)> = idle
            .into_iter()
            .filter_map(|k| self.sources.remove(&k).map(|s| (k, s)))
            .collect();
        for (k, s) in gone {
            // Only low-rate sources can ever be members: the others are
            // not kept (judging filters them out anyway).
            if !self.low_rate(&s) {
                continue;
            }
            let run = self.runs.entry(k.1).or_default();
            run.idle.push((k.0, s));
            if run.idle.len() >= cap {
                // A campaign that never pauses: judge its members so far
                // as one part, keeping what it knows of accounts.
                let idle = std::mem::take(&mut run.idle);
                self.parts += 1;
                let refs = idle.iter().map(|(k, s)| (*k, s)).collect();
                self.judge_refs(k.1, refs, t, &HashSet::new(), enricher, false);
            }
        }
        let quiet: Vec<u16> = self
            .runs
            .iter()
            .filter(|(_, r)| r.last < before)
            .map(|(k, _)| *k)
            .collect();
        for svc in quiet {
            if let Some(run) = self.runs.remove(&svc) {
                self.judge(svc, run.idle, t, &HashSet::new(), enricher);
            }
        }
    }

    /// Judge every run and report campaigns. `flagged` are sources with
    /// a brute-force or spray finding: they are explained already.
    pub fn finish(
        &mut self,
        t: &Tables,
        flagged: &HashSet<NodeId>,
        enricher: &Enricher,
    ) -> Vec<Draft> {
        // Judge live sources where they are (no copy of the table).
        let sources = std::mem::take(&mut self.sources);
        let mut svcs: BTreeSet<u16> = sources.keys().map(|k| k.1).collect();
        svcs.extend(self.runs.keys().copied());
        let mut runs = std::mem::take(&mut self.runs);
        for svc in svcs {
            let idle = runs.remove(&svc).map(|r| r.idle).unwrap_or_default();
            let live = sources
                .iter()
                .filter(|(k, _)| k.1 == svc)
                .map(|(k, s)| (k.0, s));
            let all: Vec<(NodeId, &Source)> =
                idle.iter().map(|(k, s)| (*k, s)).chain(live).collect();
            self.judge_refs(svc, all, t, flagged, enricher, true);
        }
        std::mem::take(&mut self.out)
    }

    /// Decide the members of one run and report it if large enough.
    fn judge(
        &mut self,
        svc: u16,
        all: Vec<(NodeId, Source)>,
        t: &Tables,
        flagged: &HashSet<NodeId>,
        enricher: &Enricher,
    ) {
        let refs = all.iter().map(|(k, s)| (*k, s)).collect();
        self.judge_refs(svc, refs, t, flagged, enricher, true);
    }

    fn judge_refs(
        &mut self,
        svc: u16,
        mut all: Vec<(NodeId, &Source)>,
        t: &Tables,
        flagged: &HashSet<NodeId>,
        enricher: &Enricher,
        end_of_run: bool,
    ) {
        all.sort_unstable_by_key(|(k, _)| *k);
        all.retain(|(src, s)| self.low_rate(s) && !flagged.contains(src));
        let low = all;
        // Low-rate sources per cluster (/24 as a u32, IPv6 /64 hashed):
        // sorted keys and a binary search, no table.
        let mut clusters: Vec<u64> = low
            .iter()
            .filter_map(|(src, _)| t.ip(*src).map(cluster_key))
            .collect();
        clusters.sort_unstable();
        let cluster_size = |k: u64| {
            let lo = clusters.partition_point(|c| *c < k);
            let hi = clusters.partition_point(|c| *c <= k);
            (hi - lo) as u32
        };
        let mut members = Vec::new();
        for (src, s) in low {
            let Some(ip) = t.ip(src) else { continue };
            let accts = &s.accounts[..s.n_accounts as usize];
            let shared_n = accts
                .iter()
                .filter(|a| {
                    self.accounts
                        .get(&(svc, **a))
                        .is_some_and(|x| x.shared(self.cfg.shared_account_sources))
                })
                .count();
            let persistent = u32::from(s.days) >= self.cfg.persistent_days;
            let shared = !accts.is_empty() && shared_n * 2 >= accts.len();
            let valid = accts.iter().any(|a| {
                self.accounts
                    .get(&(svc, *a))
                    .is_some_and(|x| x.successes > 0 && x.shared(self.cfg.shared_account_sources))
            });
            let cluster = cluster_size(cluster_key(ip)) >= self.cfg.cluster_sources;
            let points = [persistent, shared, valid, cluster];
            if points.iter().filter(|p| **p).count() as u32 >= self.cfg.min_points {
                members.push(Member {
                    src,
                    first: ms_of(s.first),
                    last: ms_of(s.last) + 999,
                    failures: s.failures,
                    days: s.days,
                    points,
                });
            }
        }
        if members.len() as u32 >= self.cfg.min_sources {
            let d = self.report(svc, &members, t, enricher);
            self.out.push(d);
        }
        if end_of_run {
            self.accounts.retain(|(s, _), _| *s != svc);
        }
    }

    fn report(&self, svc: u16, m: &[Member], t: &Tables, enricher: &Enricher) -> Draft {
        let service = t.name(u32::from(svc));
        let first = m.iter().map(|x| x.first).min().unwrap_or(0);
        let last = m.iter().map(|x| x.last).max().unwrap_or(0);
        let failures: u64 = m.iter().map(|x| u64::from(x.failures)).sum();
        let max_per_source = m.iter().map(|x| x.failures).max().unwrap_or(0);
        // The most active member; ties go to the one that started first,
        // then to the lowest address: never to the order in which files
        // were given or read.
        let top = m
            .iter()
            .max_by_key(|x| {
                (
                    x.failures,
                    std::cmp::Reverse(x.first),
                    std::cmp::Reverse(t.ip(x.src)),
                )
            })
            .and_then(|x| t.ip(x.src));
        let mut ips: Vec<IpAddr> = m.iter().filter_map(|x| t.ip(x.src)).collect();
        ips.sort_unstable();
        let mut f = new_finding(
            FindingKind::DistributedBruteforce,
            &[service, &first.to_string()],
            first,
            last,
            failures,
            top,
        );
        // Accounts the members share, most-tried first.
        let mut accts: Vec<(&str, u32)> = self
            .accounts
            .iter()
            .filter(|((s, _), a)| *s == svc && a.shared(self.cfg.shared_account_sources))
            .map(|((_, u), a)| (t.name(*u), a.sources))
            .collect();
        accts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let n_shared = accts.len();
        let svc_words = if service.is_empty() {
            "one service".to_string()
        } else {
            service.to_string()
        };
        f.reasons.push(format!(
            "{} sources failed to log in to {svc_words} {failures} times in {}, none more than {}",
            m.len(),
            human_span(last - first),
            plural(u64::from(max_per_source), "time")
        ));
        let count = |i: usize| m.iter().filter(|x| x.points[i]).count();
        let persistent = count(0);
        if persistent > 0 {
            let max_days = m.iter().map(|x| x.days).max().unwrap_or(0);
            f.reasons.push(format!(
                "{persistent} of them came back on {} or more days (up to {max_days}), at most {} failures a day each",
                self.cfg.persistent_days, self.cfg.max_daily_failures
            ));
        }
        if n_shared > 0 {
            f.reasons.push(format!(
                "{} tried by {} or more of these sources",
                if n_shared == 1 {
                    "1 account was".to_string()
                } else {
                    format!("{n_shared} accounts were each")
                },
                self.cfg.shared_account_sources
            ));
        }
        let valid = count(2);
        if valid > 0 {
            f.reasons.push(format!(
                "{valid} sources tried accounts that log in successfully elsewhere: the attacker knows real account names"
            ));
        }
        // Cluster summaries. Counted by numeric prefix and named only for
        // the few shown (ties in prefix order): a campaign can have a
        // million members.
        let mut by24: HashMap<u64, (u32, IpAddr)> = HashMap::new();
        let mut by16: HashMap<u64, (u32, IpAddr)> = HashMap::new();
        let mut by_asn: HashMap<String, u32> = HashMap::new();
        for ip in &ips {
            by24.entry(cluster_key(*ip)).or_insert((0, *ip)).0 += 1;
            by16.entry(prefix16_key(*ip)).or_insert((0, *ip)).0 += 1;
            if let Some(info) = enricher.lookup(*ip) {
                *by_asn.entry(info.label()).or_default() += 1;
            }
        }
        let named = |m: &HashMap<u64, (u32, IpAddr)>, n: usize, name: fn(IpAddr) -> String| {
            let v: Vec<((u64, IpAddr), u32)> =
                m.iter().map(|(k, (c, ip))| ((*k, *ip), *c)).collect();
            largest(v, n)
                .into_iter()
                .map(|((_, ip), c)| (name(ip), c))
                .collect::<Vec<_>>()
        };
        let top_n = |v: Vec<(String, u32)>| -> Vec<serde_json::Value> {
            v.into_iter()
                .map(|(k, n)| serde_json::json!({"prefix": k, "sources": n}))
                .collect()
        };
        let clustered = count(3);
        if clustered > 0 {
            let shown: Vec<String> = named(&by24, 3, cluster_name)
                .into_iter()
                .map(|(k, n)| format!("{k} ({n})"))
                .collect();
            f.reasons.push(format!(
                "{clustered} sources share a /24 with other sources of the campaign: {}",
                shown.join(", ")
            ));
        }
        f.reasons.push(format!(
            "spread over {} and {}{}",
            plural(by24.len() as u64, "/24 network"),
            plural(by16.len() as u64, "/16 network"),
            if by_asn.is_empty() {
                String::new()
            } else {
                format!(" in {}", plural(by_asn.len() as u64, "ASN"))
            }
        ));
        let score = (60.0 + (m.len() as f64).ln() * 4.0)
            .round()
            .clamp(0.0, 95.0) as u8;
        f.score = Some(score);
        f.severity = Some(severity_of(score));
        f.targets = if service.is_empty() {
            Vec::new()
        } else {
            vec![service.to_string()]
        };
        f.accounts = capped(accts.iter().take(20).map(|(a, _)| a.to_string()), 20);
        // A campaign can have millions of members (a year of internet
        // background noise on one sshd): list the most active ones, count
        // them all.
        let cap = self.cfg.max_listed_sources as usize;
        let listed: Vec<&Member> = if cap > 0 && m.len() > cap {
            let mut v: Vec<&Member> = m.iter().collect();
            v.select_nth_unstable_by_key(cap - 1, |x| {
                (std::cmp::Reverse(x.failures), x.first, x.src)
            });
            v.truncate(cap);
            f.reasons.push(format!(
                "the {cap} most active members are listed in sources; {} more are counted in details.members",
                m.len() - cap
            ));
            v
        } else {
            m.iter().collect()
        };
        if listed.len() < m.len() {
            ips = listed.iter().filter_map(|x| t.ip(x.src)).collect();
            ips.sort_unstable();
        }
        f.sources = ips;
        f.details = Some(serde_json::json!({
            "service": service,
            "members": m.len(),
            "failures": failures,
            "max_failures_per_source": max_per_source,
            "points": {
                "persistent": persistent,
                "shared_accounts": count(1),
                "valid_accounts": valid,
                "cluster": clustered,
            },
            "shared_accounts": n_shared,
            "clusters": {
                "by_24": top_n(named(&by24, 20, cluster_name)),
                "by_16": top_n(named(&by16, 20, prefix16)),
                "by_asn": top_n(largest(by_asn.iter().map(|(k, n)| (k.clone(), *n)).collect(), 20)),
                "distinct_24": by24.len(),
                "distinct_16": by16.len(),
                "distinct_asn": by_asn.len(),
            },
        }));
        if by_asn.is_empty()
            && let Some(obj) = f.details.as_mut().and_then(|d| d.as_object_mut())
        {
            obj.insert(
                "asn_note".into(),
                serde_json::Value::String(
                    "no ASN database given (--asn-db): clusters by ASN skipped".into(),
                ),
            );
        }
        Draft {
            finding: f,
            srcs: listed.iter().map(|x| x.src).collect(),
            kinds: vec![ObsKind::AuthFailure],
            svc: Some(svc),
            from: first,
            to: last,
        }
    }
}

/// The `n` entries with the most sources, most first, ties by key: a
/// selection, not a sort of every entry (a campaign can have a million
/// members).
fn largest<K: Ord>(mut v: Vec<(K, u32)>, n: usize) -> Vec<(K, u32)> {
    let order = |a: &(K, u32), b: &(K, u32)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > n && n > 0 {
        v.select_nth_unstable_by(n - 1, order);
        v.truncate(n);
    }
    v.sort_by(order);
    v
}

/// The /16 of an IPv4 address, the /48 of an IPv6 one, as a number.
fn prefix16_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4) & 0xffff_0000),
        IpAddr::V6(v6) => ((u128::from(v6) >> 80) as u64) | 1 << 63,
    }
}

/// "1 time", "3 times".
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The /16 of an IPv4 address, the /48 of an IPv6 one.
pub fn prefix16(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.0.0/16", o[0], o[1])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}
