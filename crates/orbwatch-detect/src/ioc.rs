//! IOC matching that knows time and direction.
//!
//! A record is matched on two things:
//! - every IP token in the raw record, found with strict boundaries
//!   (`orbwatch_event::ipscan`), so that the number of records matched
//!   equals an exact record-level grep whatever the decoder understood;
//! - the decoded event's roles (source, destination) and its DNS, HTTP and
//!   TLS names, URLs and hashes, which give the direction and the domain
//!   matches.
//!
//! Each indicator counts once per record, and so does a value its feed
//! lists on several rows (other dates, tiers or tags): the rows make one
//! sighting, inside the validity window when any row's window holds it.
//! A sighting outside the window is kept but marked, and never merged
//! with sightings inside it. Each sighting gets the [`outcome`] its record
//! shows, from which the finding's [`severity`] follows.

pub mod outcome;
pub mod severity;
mod snapshot;

use std::net::IpAddr;

use hashbrown::HashMap;
use jiff::Timestamp;
use orbwatch_event::{AddrRole, Event, EventKind, Origin};
use orbwatch_intel::{Index, IndexBuilder, Indicator, IndicatorValue, MatchRef, Tags};

use crate::aggregate::{Aggregator, Row, Sighting};
use crate::direction::InternalNets;
use crate::finding::{Direction, ValidityWindow};
use outcome::{IndicatorSide, bytes_to_indicator, classify};

/// What findings say about an indicator, shared by many indicators (one
/// feed's entries usually have identical metadata), so it is stored once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndicatorMeta {
    pub feed: String,
    pub type_name: &'static str,
    pub confidence: Option<u8>,
    pub tags: Tags,
}

/// A view of one indicator for building a finding.
#[derive(Debug, Clone)]
pub struct IndicatorView<'a> {
    pub value: String,
    pub meta: &'a IndicatorMeta,
    pub record_id: Option<&'a str>,
}

/// Per-feed counts and validity span, for the coverage report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedSpan {
    pub feed: String,
    pub indicators: u64,
    /// Earliest start; `None` when some indicator has an open start.
    pub from: Option<Timestamp>,
    /// Latest end; `None` when some indicator has an open end.
    pub until: Option<Timestamp>,
    open_from: bool,
    open_until: bool,
}

/// The fine type name without allocating.
fn type_name(v: &IndicatorValue) -> &'static str {
    use orbwatch_intel::HashAlgo::*;
    match v {
        IndicatorValue::Ip(IpAddr::V4(_)) => "ipv4",
        IndicatorValue::Ip(IpAddr::V6(_)) => "ipv6",
        IndicatorValue::Cidr(_) => "cidr",
        IndicatorValue::Range { .. } => "range",
        IndicatorValue::Domain(_) => "domain",
        IndicatorValue::Url(_) => "url",
        IndicatorValue::Hash { algo, .. } => match algo {
            Md5 => "md5",
            Sha1 => "sha1",
            Sha256 => "sha256",
            Sha512 => "sha512",
        },
        IndicatorValue::CertFingerprint { algo, .. } => match algo {
            Md5 => "cert-md5",
            Sha1 => "cert-sha1",
            Sha256 => "cert-sha256",
            Sha512 => "cert-sha512",
        },
    }
}

/// Compiles indicators one at a time into an [`IocEngine`].
///
/// Memory is what makes a ten-million-entry feed workable: per indicator
/// the builder keeps only a 4-byte metadata id; the value is kept only when
/// a match cannot restate it (a CIDR, a domain), and the source's record id
/// only when there is one.
pub struct IocEngineBuilder {
    index: IndexBuilder,
    metas: Vec<IndicatorMeta>,
    meta_ids: HashMap<IndicatorMeta, u32>,
    last_meta: Option<u32>,
    rec_meta: Vec<u32>,
    values: HashMap<u32, Box<str>>,
    record_ids: HashMap<u32, Box<str>>,
    feeds: Vec<FeedSpan>,
    /// Text every record naming a domain, URL or hash indicator contains.
    name_patterns: hashbrown::HashSet<String>,
}

impl Default for IocEngineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl IocEngineBuilder {
    pub fn new() -> Self {
        Self {
            index: IndexBuilder::new(),
            metas: Vec::new(),
            meta_ids: HashMap::new(),
            last_meta: None,
            rec_meta: Vec::new(),
            values: HashMap::new(),
            record_ids: HashMap::new(),
            feeds: Vec::new(),
            name_patterns: hashbrown::HashSet::new(),
        }
    }

    /// Number of indicators added.
    pub fn len(&self) -> usize {
        self.rec_meta.len()
    }

    /// Make room for about `n` more indicators, mostly IPv4 addresses, so
    /// that a large list is not rehashed several times while it loads.
    pub fn reserve(&mut self, n: usize) {
        self.index.reserve_ipv4(n);
        self.rec_meta.reserve(n);
    }

    pub fn is_empty(&self) -> bool {
        self.rec_meta.is_empty()
    }

    fn meta_id(&mut self, ind: &Indicator, tn: &'static str) -> u32 {
        if let Some(id) = self.last_meta {
            let m = &self.metas[id as usize];
            if m.type_name == tn
                && m.confidence == ind.confidence
                && m.feed == ind.provenance.feed
                && m.tags == ind.tags
            {
                return id;
            }
        }
        let meta = IndicatorMeta {
            feed: ind.provenance.feed.clone(),
            type_name: tn,
            confidence: ind.confidence,
            tags: ind.tags.clone(),
        };
        let next = self.metas.len() as u32;
        let id = *self.meta_ids.entry(meta.clone()).or_insert(next);
        if id == next {
            self.metas.push(meta);
        }
        self.last_meta = Some(id);
        id
    }

    fn feed_span(&mut self, ind: &Indicator) {
        let name = &ind.provenance.feed;
        let pos = match self.feeds.iter().rposition(|f| &f.feed == name) {
            Some(p) => p,
            None => {
                self.feeds.push(FeedSpan {
                    feed: name.clone(),
                    ..Default::default()
                });
                self.feeds.len() - 1
            }
        };
        let f = &mut self.feeds[pos];
        f.indicators += 1;
        match ind.valid_from {
            None => f.open_from = true,
            Some(t) => f.from = Some(f.from.map_or(t, |x| x.min(t))),
        }
        match ind.valid_until {
            None => f.open_until = true,
            Some(t) => f.until = Some(f.until.map_or(t, |x| x.max(t))),
        }
    }

    /// Add one indicator (its own validity window is kept).
    pub fn add(&mut self, ind: &Indicator) {
        let id = self.rec_meta.len() as u32;
        let tn = type_name(&ind.value);
        let meta = self.meta_id(ind, tn);
        self.rec_meta.push(meta);
        self.index
            .add(id, &ind.value, ind.valid_from, ind.valid_until);
        if !matches!(ind.value, IndicatorValue::Ip(_)) {
            self.values
                .insert(id, ind.value.to_string().into_boxed_str());
        }
        if let Some(r) = &ind.provenance.record_id {
            self.record_ids.insert(id, r.clone().into_boxed_str());
        }
        match &ind.value {
            IndicatorValue::Domain(d) => {
                self.name_patterns.insert(d.clone());
            }
            IndicatorValue::Url(u) => {
                // Logs often split a URL (Zeek: host and uri columns): the
                // host is what every record of it contains.
                let host = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
                let host = host.split(['/', '?', '#']).next().unwrap_or(host);
                let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
                self.name_patterns.insert(host.to_string());
            }
            IndicatorValue::Hash { hex, .. } => {
                self.name_patterns.insert(hex.clone());
            }
            IndicatorValue::CertFingerprint { hex, .. } => {
                // Also as colon-separated pairs, as EVE and x509 tools write it.
                let pairs: Vec<&str> = (0..hex.len() / 2)
                    .filter_map(|i| hex.get(2 * i..2 * i + 2))
                    .collect();
                self.name_patterns.insert(pairs.join(":"));
                self.name_patterns.insert(hex.clone());
            }
            _ => {}
        }
        self.feed_span(ind);
    }

    pub fn build(self, internal: InternalNets) -> IocEngine {
        let mut feeds = self.feeds;
        for f in &mut feeds {
            if f.open_from {
                f.from = None;
            }
            if f.open_until {
                f.until = None;
            }
        }
        let mut name_patterns: Vec<String> = self.name_patterns.into_iter().collect();
        name_patterns.sort_unstable();
        IocEngine {
            names: name_filter(&name_patterns),
            name_patterns,
            index: self.index.build(),
            metas: self.metas,
            rec_meta: self.rec_meta,
            values: self.values,
            record_ids: self.record_ids,
            feeds,
            internal,
            feed_versions: HashMap::new(),
        }
    }
}

/// The Aho-Corasick pre-filter for records that may name a domain, URL or
/// hash indicator.
fn name_filter(patterns: &[String]) -> Option<aho_corasick::AhoCorasick> {
    (!patterns.is_empty())
        .then(|| {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                .build(patterns.iter())
                .ok()
        })
        .flatten()
}

/// The compiled indicators plus the settings that matching needs.
pub struct IocEngine {
    /// Pre-filter for records that may name a domain, URL or hash indicator.
    names: Option<aho_corasick::AhoCorasick>,
    /// What `names` was built from (kept for snapshots).
    name_patterns: Vec<String>,
    index: Index,
    metas: Vec<IndicatorMeta>,
    rec_meta: Vec<u32>,
    values: HashMap<u32, Box<str>>,
    record_ids: HashMap<u32, Box<str>>,
    feeds: Vec<FeedSpan>,
    internal: InternalNets,
    /// The version of each feed compiled in, where known (a feed from
    /// the store or the Kafka feeds topic), written into its findings.
    feed_versions: HashMap<String, i64>,
}

impl IocEngine {
    /// Record that the indicators of `feed` are its version `version`:
    /// findings of them say so (`feed_version`).
    pub fn set_feed_version(&mut self, feed: &str, version: i64) {
        self.feed_versions.insert(feed.to_string(), version);
    }

    /// The version of `feed` compiled in, where known.
    pub fn feed_version(&self, feed: &str) -> Option<i64> {
        self.feed_versions.get(feed).copied()
    }

    /// Compile indicators. Each indicator keeps its own window, so the same
    /// value from two feeds, or twice with different dates, matches twice.
    pub fn new(indicators: impl IntoIterator<Item = Indicator>, internal: InternalNets) -> Self {
        let mut b = IocEngineBuilder::new();
        for ind in indicators {
            b.add(&ind);
        }
        b.build(internal)
    }

    /// Describe indicator `id` for a finding; `matched` is the value seen
    /// in the record, which for an exact address is the indicator itself.
    pub fn describe(&self, id: u32, matched: &str) -> Option<IndicatorView<'_>> {
        let meta = self.metas.get(*self.rec_meta.get(id as usize)? as usize)?;
        let value = match self.values.get(&id) {
            Some(v) => v.to_string(),
            None => match matched
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .and_then(|a| a.to_ipv4_mapped())
            {
                Some(v4) => v4.to_string(),
                None => matched.to_string(),
            },
        };
        Some(IndicatorView {
            value,
            meta,
            record_id: self.record_ids.get(&id).map(|b| &**b),
        })
    }

    /// Indicator counts and validity spans per feed, in the order added.
    pub fn feeds(&self) -> &[FeedSpan] {
        &self.feeds
    }

    /// Number of indicators compiled.
    pub fn len(&self) -> usize {
        self.rec_meta.len()
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn internal(&self) -> &InternalNets {
        &self.internal
    }

    pub fn is_empty(&self) -> bool {
        self.rec_meta.is_empty()
    }

    /// May the raw record name a domain, URL or hash indicator? True when
    /// it contains one as text (any case); records that do not are never
    /// matched by name, so they need no decoding for names.
    pub fn raw_may_name(&self, raw: &[u8]) -> bool {
        match &self.names {
            Some(ac) => ac.is_match(raw),
            None => self.index.has_names() || self.index.has_hashes(),
        }
    }

    /// Does the raw record mention any indicator address? Cheap pre-check.
    pub fn raw_may_match(&self, raw: &[u8]) -> bool {
        let mut hit = false;
        if self.index.has_ipv6() {
            orbwatch_event::ipscan::for_each_ip(raw, |ip, _, _| {
                hit = hit || self.index.contains_ip(ip);
            });
        } else {
            orbwatch_event::ipscan::for_each_ipv4(raw, |ip, _, _| {
                hit = hit || self.index.contains_ip(std::net::IpAddr::V4(ip));
            });
        }
        hit
    }

    /// Match one record and feed its sightings to `agg`. `event` is the
    /// decoded record when the decoder understood it; `raw_is_text` says
    /// that `raw` is the record's text (false for binary records, whose
    /// addresses come from the event alone). Returns the number of
    /// indicators matched.
    pub fn match_record(
        &self,
        raw: &[u8],
        raw_is_text: bool,
        event: Option<&Event>,
        origin: &Origin,
        scratch: &mut MatchScratch,
        agg: &mut Aggregator,
    ) -> usize {
        scratch.clear();
        // Addresses: the raw record's tokens, so that counts equal an exact
        // record-level grep. Event fields only add roles to those, except
        // for binary records (flows, captures), which have no text to scan.
        if raw_is_text {
            orbwatch_event::ipscan::for_each_ip(raw, |ip, _, _| scratch.push_ip(ip));
        }
        let named = scratch.ips.len();
        // Addresses the decoder attributed without the record naming them
        // (an sshd line tied to its session's address): looked up too, but
        // reported as context, not counted.
        if let Some(ev) = event {
            for (ip, _) in ev.addresses() {
                scratch.push_ip(ip);
            }
        }
        for i in 0..scratch.ips.len() {
            let ip = scratch.ips[i];
            let context = raw_is_text && i >= named;
            let before = scratch.matches.len();
            self.index.lookup_ip(ip, &mut scratch.matches);
            for k in before..scratch.matches.len() {
                let m = scratch.matches[k];
                scratch.hits.push(Hit {
                    m,
                    value: HitValue::Ip(ip),
                    context,
                });
            }
        }
        if let Some(ev) = event {
            if self.index.has_names() {
                let names = ev.domain.iter().chain(ev.other_domains.iter());
                for name in names {
                    let before = scratch.matches.len();
                    self.index.lookup_domain(name, &mut scratch.matches);
                    for k in before..scratch.matches.len() {
                        scratch.hits.push(Hit {
                            m: scratch.matches[k],
                            value: HitValue::Name("domain", name.clone()),
                            context: false,
                        });
                    }
                }
                if let Some(url) = &ev.url {
                    let before = scratch.matches.len();
                    self.index.lookup_url(url, &mut scratch.matches);
                    for k in before..scratch.matches.len() {
                        scratch.hits.push(Hit {
                            m: scratch.matches[k],
                            value: HitValue::Name("url", url.clone()),
                            context: false,
                        });
                    }
                }
            }
            if self.index.has_hashes() {
                for h in &ev.hashes {
                    let before = scratch.matches.len();
                    self.index.lookup_hash(h, &mut scratch.matches);
                    for k in before..scratch.matches.len() {
                        scratch.hits.push(Hit {
                            m: scratch.matches[k],
                            value: HitValue::Name("hash", h.clone()),
                            context: false,
                        });
                    }
                }
            }
        }
        if scratch.hits.is_empty() {
            return 0;
        }
        let time = event.and_then(|e| e.time);
        let local_dst = event.is_some_and(|e| {
            e.dst_ip.is_none() && matches!(e.kind, EventKind::Auth | EventKind::Http)
        });
        // One sighting per feed *and value* per record: the same indicator
        // seen via two addresses of one record counts once, and so does a
        // value its feed lists on several rows (CERT-FR style lists repeat
        // an address with other dates or tags).
        let mut groups: Vec<(usize, Vec<Row>)> = Vec::new();
        for (i, hit) in scratch.hits.iter().enumerate() {
            let row = Row {
                id: hit.m.indicator,
                window: ValidityWindow {
                    from: hit.m.window.from,
                    until: hit.m.window.until,
                },
            };
            let key = self.value_key(hit);
            match groups
                .iter_mut()
                .find(|(first, _)| self.value_key(&scratch.hits[*first]) == key)
            {
                Some((_, rows)) => {
                    if !rows.iter().any(|r| r.id == row.id) {
                        rows.push(row);
                    }
                }
                None => groups.push((i, vec![row])),
            }
        }
        let mut matched = 0;
        for (first, rows) in groups {
            let hit = &scratch.hits[first];
            if !hit.context {
                matched += 1;
            }
            let (field, matched_value, role) = match &hit.value {
                HitValue::Ip(ip) => {
                    let role = event.map_or(AddrRole::Unknown, |e| {
                        if e.src_ip == Some(*ip) {
                            AddrRole::Src
                        } else if e.dst_ip == Some(*ip) {
                            AddrRole::Dst
                        } else {
                            AddrRole::Unknown
                        }
                    });
                    let field = match role {
                        AddrRole::Src => "src_ip",
                        AddrRole::Dst => "dst_ip",
                        AddrRole::Unknown => "ip",
                    };
                    (field, ip.to_string(), role)
                }
                HitValue::Name(field, v) => (*field, v.clone(), AddrRole::Unknown),
            };
            let (src, dst) = event.map_or((None, None), |e| (e.src_ip, e.dst_ip));
            let direction = match (role, &hit.value) {
                (AddrRole::Unknown, HitValue::Ip(_)) => Direction::Unknown,
                _ => self.internal.direction(src, dst, local_dst),
            };
            let peer = match role {
                AddrRole::Src => dst,
                AddrRole::Dst => src,
                AddrRole::Unknown => match &hit.value {
                    // A name seen in an event: the peer is the client.
                    HitValue::Name(..) => src,
                    HitValue::Ip(_) => None,
                },
            };
            let side = match &hit.value {
                HitValue::Ip(_) => IndicatorSide::Address(role),
                HitValue::Name(..) => IndicatorSide::Name,
            };
            let outcome = classify(event, side, direction);
            let in_window =
                time.is_none_or(|t| rows.iter().any(|r| hit_window_contains(r.window, t)));
            agg.add(Sighting {
                indicator: rows.iter().map(|r| r.id).min().unwrap_or(hit.m.indicator),
                rows,
                in_window,
                peer,
                src_ip: src,
                dst_ip: dst,
                direction,
                matched_field: field,
                matched_value,
                time,
                origin,
                raw,
                context: hit.context,
                outcome,
                bytes_to_indicator: bytes_to_indicator(event, side, direction, outcome),
                user: event.and_then(|e| e.user.as_deref()),
            });
        }
        scratch.hits.clear();
        matched
    }

    /// What makes two hits the same listed value: the feed, and the value
    /// as the feed wrote it (an exact address is restated from the match,
    /// IPv4-mapped IPv6 folded to IPv4).
    fn value_key(&self, hit: &Hit) -> (&str, ValueKey<'_>) {
        let id = hit.m.indicator;
        let feed = self
            .rec_meta
            .get(id as usize)
            .and_then(|m| self.metas.get(*m as usize))
            .map_or("", |m| m.feed.as_str());
        let value = match (self.values.get(&id), &hit.value) {
            (Some(v), _) => ValueKey::Stored(v),
            (None, HitValue::Ip(ip)) => ValueKey::Ip(ip.to_canonical()),
            (None, HitValue::Name(..)) => ValueKey::Row(id),
        };
        (feed, value)
    }
}

/// Is `t` inside a row's window (bounds inclusive, as the index says)?
fn hit_window_contains(w: ValidityWindow, t: Timestamp) -> bool {
    w.from.is_none_or(|f| t >= f) && w.until.is_none_or(|u| t <= u)
}

/// The value part of [`IocEngine::value_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKey<'a> {
    Ip(IpAddr),
    Stored(&'a str),
    /// No value to compare (should not happen): the row stands alone.
    Row(u32),
}

#[derive(Debug, Clone)]
enum HitValue {
    Ip(IpAddr),
    Name(&'static str, String),
}

#[derive(Debug, Clone)]
struct Hit {
    m: MatchRef,
    value: HitValue,
    /// Attributed by the decoder, not named in the record.
    context: bool,
}

/// Reusable buffers for [`IocEngine::match_record`], one per thread, so the
/// hot loop does not allocate.
#[derive(Default)]
pub struct MatchScratch {
    ips: Vec<IpAddr>,
    matches: Vec<MatchRef>,
    hits: Vec<Hit>,
}

impl MatchScratch {
    fn clear(&mut self) {
        self.ips.clear();
        self.matches.clear();
        self.hits.clear();
    }

    fn push_ip(&mut self, ip: IpAddr) {
        if !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }
}
