//! From selected candidates to the entries a firewall loads.
//!
//! The order of the steps is what makes the guard hold:
//! 1. refuse candidates wider than `--max-prefix` (unless `--force-wide`)
//!    and name every candidate that touches a guarded range;
//! 2. take the union of the rest (each address keeps its latest expiry);
//! 3. subtract every guarded range; a candidate that only partly overlaps
//!    one is split, and its remainder is exported (the held-back part is
//!    named on stderr);
//! 4. widen (`--widen /N:K`) blocks with at least K listed addresses, then
//!    subtract the guard again, so that widening never brings a guarded
//!    address back;
//! 5. cover what is left with the fewest prefixes, none wider than
//!    `--max-prefix`.

use std::collections::BTreeMap;

use ipnet::IpNet;
use jiff::Timestamp;

use crate::guard::Guard;
use crate::select::{Candidate, Selection};
use crate::span::{
    Expiry, Family, Span, cidr_cover, make_net, merge_intervals, size, subtract, union_max_expiry,
};

/// `--widen /N:K`: list the whole IPv4 `/N` once at least K of its
/// addresses are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widen {
    pub prefix_len: u8,
    pub min_listed: u64,
}

impl std::str::FromStr for Widen {
    type Err = String;
    fn from_str(s: &str) -> Result<Widen, String> {
        let bad = || format!("`{s}` is not a widening rule; write /N:K, e.g. /24:8");
        let (n, k) = s
            .trim()
            .trim_start_matches('/')
            .split_once(':')
            .ok_or_else(bad)?;
        let prefix_len: u8 = n.parse().map_err(|_| bad())?;
        let min_listed: u64 = k.parse().map_err(|_| bad())?;
        if !(1..=31).contains(&prefix_len) {
            return Err(format!(
                "`{s}`: the prefix of --widen must be an IPv4 length from /1 to /31"
            ));
        }
        if min_listed < 2 {
            return Err(format!(
                "`{s}`: K must be at least 2 (with K=1 one address would block its whole /{prefix_len})"
            ));
        }
        Ok(Widen {
            prefix_len,
            min_listed,
        })
    }
}

/// How candidates become entries.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Widest IPv4 prefix allowed (16 means /16).
    pub max_prefix4: u8,
    /// Widest IPv6 prefix allowed.
    pub max_prefix6: u8,
    /// Allow wider prefixes than the maxima.
    pub force_wide: bool,
    pub widen: Option<Widen>,
    /// Timeouts are counted from this instant (the `--at` time, or the
    /// start of the current hour so that re-runs within the hour give the
    /// same file).
    pub timeout_base: Timestamp,
    /// The `--at` time when one was given: it is then written in headers.
    pub at_given: Option<Timestamp>,
}

impl BuildOptions {
    fn max_prefix(&self, f: Family) -> u8 {
        match f {
            Family::V4 => self.max_prefix4.min(32),
            Family::V6 => self.max_prefix6.min(128),
        }
    }
}

/// Errors in build settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error(
        "--widen /{widen} is wider than --max-prefix /{max}: widening would build entries the guard refuses; use a longer prefix or --force-wide"
    )]
    WidenTooWide { widen: u8, max: u8 },
}

/// One line of a blocklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub net: IpNet,
    pub expiry: Expiry,
    /// The entry lies in a block that `--widen` listed whole.
    pub widened: bool,
}

/// A candidate the guard refused, wholly or in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The candidate as a CIDR or range.
    pub entry: String,
    /// `feed:line` or the findings it came from.
    pub origin: String,
    /// Refused entirely; otherwise only the parts named in `reasons` were
    /// held back and the remainder is exported.
    pub whole: bool,
    pub reasons: Vec<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.whole { "refused" } else { "split" };
        write!(
            f,
            "{what} {} (from {}): {}",
            self.entry,
            self.origin,
            self.reasons.join("; ")
        )
    }
}

/// A block that `--widen` listed whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidenedBlock {
    pub net: IpNet,
    /// Addresses of the block that were listed before widening.
    pub listed: u64,
}

/// The result: entries ready to render, and everything the run should say.
#[derive(Debug, Clone)]
pub struct Blocklist {
    /// IPv4 entries first, then IPv6, each sorted by address.
    pub entries: Vec<Entry>,
    pub refused: Vec<Refusal>,
    pub widened: Vec<WidenedBlock>,
    /// Address intervals of indicators that were left out because they
    /// expired (merged per family), for diffs.
    pub expired4: Vec<(u128, u128)>,
    pub expired6: Vec<(u128, u128)>,
    /// Candidates taken in.
    pub candidates: u64,
    pub timeout_base: Timestamp,
    pub at_given: Option<Timestamp>,
    /// Where the entries come from: each accepted candidate's interval
    /// with its origin (feed name, or the findings) and actors, sorted by
    /// family and start. See [`Blocklist::provenance_of`].
    pub provenance: Vec<Provenance>,
}

/// One candidate's interval and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub family: Family,
    pub start: u128,
    pub end: u128,
    pub origin: std::sync::Arc<str>,
    pub actors: Option<std::sync::Arc<str>>,
}

impl Blocklist {
    /// The origins (feed names) and actors of the candidates that overlap
    /// each entry, in entry order, each list sorted and without repeats.
    /// One sweep over entries and candidates, both sorted by address.
    pub fn provenance_of(&self) -> Vec<(Vec<String>, Vec<String>)> {
        let mut out = Vec::with_capacity(self.entries.len());
        let mut next = 0usize;
        let mut active: Vec<&Provenance> = Vec::new();
        let mut last_family = None;
        for e in &self.entries {
            let (family, s, end) = crate::span::net_bounds(e.net);
            if last_family != Some(family) {
                // Entries list IPv4 first, then IPv6: start the family over.
                active.clear();
                next = self.provenance.partition_point(|p| p.family < family);
                last_family = Some(family);
            }
            while next < self.provenance.len()
                && self.provenance[next].family == family
                && self.provenance[next].start <= end
            {
                active.push(&self.provenance[next]);
                next += 1;
            }
            active.retain(|p| p.end >= s);
            let mut origins: Vec<String> = active
                .iter()
                .filter(|p| p.start <= end)
                .map(|p| p.origin.to_string())
                .collect();
            origins.sort();
            origins.dedup();
            let mut actors: Vec<String> = active
                .iter()
                .filter_map(|p| p.actors.as_deref())
                .flat_map(|a| a.split(", ").map(str::to_string))
                .collect();
            actors.sort();
            actors.dedup();
            out.push((origins, actors));
        }
        out
    }

    /// Seconds of validity left for an entry, from the timeout base,
    /// rounded up to whole seconds and at least 1; `None` for entries that
    /// never expire.
    pub fn timeout_secs(&self, e: &Entry) -> Option<u64> {
        let Expiry::At(t) = e.expiry else {
            return None;
        };
        let d = t.duration_since(self.timeout_base);
        let secs = d.as_secs() + i64::from(d.subsec_nanos() > 0);
        Some(secs.max(1) as u64)
    }

    pub fn v4(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.net, IpNet::V4(_)))
    }

    pub fn v6(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.net, IpNet::V6(_)))
    }

    /// The listed address set of a family, as sorted disjoint intervals.
    pub fn intervals(&self, family: Family) -> Vec<(u128, u128)> {
        merge_intervals(
            self.entries
                .iter()
                .map(|e| crate::span::net_bounds(e.net))
                .filter(|(f, _, _)| *f == family)
                .map(|(_, s, e)| (s, e))
                .collect(),
        )
    }
}

/// Turn a selection into a blocklist under `guard`.
pub fn build(sel: &Selection, guard: &Guard, opts: &BuildOptions) -> Result<Blocklist, BuildError> {
    if let Some(w) = opts.widen
        && !opts.force_wide
        && w.prefix_len < opts.max_prefix4
    {
        return Err(BuildError::WidenTooWide {
            widen: w.prefix_len,
            max: opts.max_prefix4,
        });
    }
    let mut refused = Vec::new();
    let mut widened = Vec::new();
    let mut entries = Vec::new();
    for family in [Family::V4, Family::V6] {
        let accepted = screen(sel, family, guard, opts, &mut refused);
        let holes = guard.merged(family);
        let mut spans = subtract(&union_max_expiry(accepted), holes);
        let mut blocks: Vec<(u128, u128)> = Vec::new();
        if family == Family::V4
            && let Some(w) = opts.widen
        {
            let found = widen_blocks(&spans, w);
            if !found.is_empty() {
                let mut all = spans;
                for (start, end, expiry, listed) in &found {
                    all.push(Span {
                        start: *start,
                        end: *end,
                        expiry: *expiry,
                    });
                    blocks.push((*start, *end));
                    widened.push(WidenedBlock {
                        net: make_net(family, *start, w.prefix_len),
                        listed: *listed,
                    });
                }
                spans = subtract(&union_max_expiry(all), holes);
            }
        }
        let min_len = if opts.force_wide {
            0
        } else {
            opts.max_prefix(family)
        };
        for (net, expiry) in cover_pieces(family, &spans, min_len) {
            let (_, ns, ne) = crate::span::net_bounds(net);
            entries.push(Entry {
                net,
                expiry,
                widened: overlaps_sorted(&blocks, ns, ne),
            });
        }
    }
    let expired = |f: Family| {
        merge_intervals(
            sel.expired
                .iter()
                .filter(|(ef, _, _)| *ef == f)
                .map(|&(_, s, e)| (s, e))
                .collect(),
        )
    };
    let names: Vec<std::sync::Arc<str>> = sel
        .origins
        .iter()
        .map(|o| std::sync::Arc::from(o.as_str()))
        .collect();
    let mut actor_names: BTreeMap<&str, std::sync::Arc<str>> = BTreeMap::new();
    let mut provenance: Vec<Provenance> = sel
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| Provenance {
            family: c.family,
            start: c.start,
            end: c.end,
            origin: names
                .get(c.origin as usize)
                .cloned()
                .unwrap_or_else(|| std::sync::Arc::from("?")),
            actors: sel.actors.get(&i).map(|a| {
                actor_names
                    .entry(a.as_str())
                    .or_insert_with(|| std::sync::Arc::from(a.as_str()))
                    .clone()
            }),
        })
        .collect();
    provenance.sort_by_key(|p| (p.family, p.start, p.end));
    Ok(Blocklist {
        provenance,
        entries,
        refused,
        widened,
        expired4: expired(Family::V4),
        expired6: expired(Family::V6),
        candidates: sel.candidates.len() as u64,
        timeout_base: opts.timeout_base,
        at_given: opts.at_given,
    })
}

/// Does `[s, e]` touch any of the sorted, disjoint `blocks`? O(log n).
fn overlaps_sorted(blocks: &[(u128, u128)], s: u128, e: u128) -> bool {
    let i = blocks.partition_point(|&(_, be)| be < s);
    i < blocks.len() && blocks[i].0 <= e
}

/// Step 5: the fewest prefixes covering the listed addresses exactly
/// (pieces of different expiry merge), each with the latest expiry of the
/// addresses it holds. An entry thus lives as long as its longest-lived
/// member; the next export shortens it once that member is gone.
fn cover_pieces(family: Family, pieces: &[Span], min_len: u8) -> Vec<(IpNet, Expiry)> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut i = 0;
    while i < pieces.len() {
        // A run of adjacent pieces.
        let mut j = i;
        while j + 1 < pieces.len() && pieces[j].end.checked_add(1) == Some(pieces[j + 1].start) {
            j += 1;
        }
        let run = &pieces[i..=j];
        if run.len() == 1 {
            for net in cidr_cover(family, run[0].start, run[0].end, min_len) {
                out.push((net, run[0].expiry));
            }
        } else {
            let mut k = 0;
            for net in cidr_cover(family, run[0].start, run[j - i].end, min_len) {
                let (_, ns, ne) = crate::span::net_bounds(net);
                while run[k].end < ns {
                    k += 1;
                }
                let mut expiry = run[k].expiry;
                let mut m = k + 1;
                while m < run.len() && run[m].start <= ne {
                    expiry = expiry.max(run[m].expiry);
                    m += 1;
                }
                out.push((net, expiry));
            }
        }
        i = j + 1;
    }
    out
}

/// Step 1: the candidates of `family` that may be listed (still with
/// guarded parts, subtracted later), recording refusals.
fn screen(
    sel: &Selection,
    family: Family,
    guard: &Guard,
    opts: &BuildOptions,
    refused: &mut Vec<Refusal>,
) -> Vec<Span> {
    let max = opts.max_prefix(family);
    let limit = 1u128.checked_shl(u32::from(family.bits() - max));
    let mut out = Vec::new();
    for c in sel.candidates.iter().filter(|c| c.family == family) {
        let too_wide = !opts.force_wide && limit.is_some_and(|l| size(c.start, c.end) > l);
        let guarded = guard.overlaps(family, c.start, c.end);
        if !too_wide && !guarded {
            out.push(Span {
                start: c.start,
                end: c.end,
                expiry: c.expiry,
            });
            continue;
        }
        let mut reasons = Vec::new();
        if too_wide {
            reasons.push(format!(
                "wider than /{max} (--max-prefix{}; --force-wide allows it)",
                if family == Family::V6 { "6" } else { "" }
            ));
        }
        let mut whole = too_wide;
        if guarded {
            let left = subtract(
                &[Span {
                    start: c.start,
                    end: c.end,
                    expiry: c.expiry,
                }],
                guard.merged(family),
            );
            whole |= left.is_empty();
            for g in guard.overlapping(family, c.start, c.end) {
                let (s, e) = (g.start.max(c.start), g.end.min(c.end));
                if whole {
                    reasons.push(format!("inside {}", g.reason));
                } else {
                    reasons.push(format!(
                        "{} held back: {}",
                        describe(family, s, e),
                        g.reason
                    ));
                }
            }
        }
        refused.push(Refusal {
            entry: describe(family, c.start, c.end),
            origin: origin_text(sel, c),
            whole,
            reasons,
        });
        if !whole {
            out.push(Span {
                start: c.start,
                end: c.end,
                expiry: c.expiry,
            });
        }
    }
    out
}

fn origin_text(sel: &Selection, c: &Candidate) -> String {
    let name = sel
        .origins
        .get(c.origin as usize)
        .map(String::as_str)
        .unwrap_or("?");
    if c.line > 0 {
        format!("{name}:{}", c.line)
    } else {
        name.to_string()
    }
}

/// An interval as an address, a CIDR, or a range.
pub fn describe(family: Family, s: u128, e: u128) -> String {
    let nets = cidr_cover(family, s, e, 0);
    if nets.len() == 1 {
        let n = nets[0];
        if n.prefix_len() == n.max_prefix_len() {
            return n.addr().to_string();
        }
        return n.to_string();
    }
    format!(
        "{}-{}",
        crate::span::u128_to_ip(family, s),
        crate::span::u128_to_ip(family, e)
    )
}

/// Step 4: IPv4 blocks of `/w.prefix_len` that hold at least `K` listed
/// addresses but are not listed whole: (start, end, latest expiry, listed).
fn widen_blocks(spans: &[Span], w: Widen) -> Vec<(u128, u128, Expiry, u64)> {
    let shift = 32 - u32::from(w.prefix_len);
    let block_size = 1u128 << shift;
    let mut counts: BTreeMap<u128, (u128, Expiry)> = BTreeMap::new();
    for s in spans {
        let first = s.start >> shift;
        let last = s.end >> shift;
        // Blocks strictly inside a span are full already: only the two
        // ends can be partial.
        let ends: &[u128] = if first == last {
            &[first]
        } else {
            &[first, last]
        };
        for &b in ends {
            let bs = b << shift;
            let be = bs + block_size - 1;
            let (is, ie) = (s.start.max(bs), s.end.min(be));
            let c = counts.entry(b).or_insert((0, s.expiry));
            c.0 += ie - is + 1;
            c.1 = c.1.max(s.expiry);
        }
    }
    counts
        .into_iter()
        .filter(|(_, (n, _))| *n >= u128::from(w.min_listed) && *n < block_size)
        .map(|(b, (n, e))| (b << shift, (b << shift) + block_size - 1, e, n as u64))
        .collect()
}
