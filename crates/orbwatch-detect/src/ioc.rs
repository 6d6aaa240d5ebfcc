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
//! Each indicator counts once per record. A sighting outside the
//! indicator's validity window is kept but marked, and never merged with
//! sightings inside it.

use std::net::IpAddr;

use jiff::Timestamp;
use orbwatch_event::{AddrRole, Event, EventKind, Origin};
use orbwatch_intel::{Index, IndexBuilder, Indicator, MatchRef, Tags};

use crate::aggregate::{Aggregator, Sighting};
use crate::direction::InternalNets;
use crate::finding::Direction;

/// What the engine keeps of each indicator for reporting.
#[derive(Debug, Clone)]
pub struct IndicatorRecord {
    pub value: String,
    pub type_name: String,
    pub feed: String,
    pub confidence: Option<u8>,
    pub tags: Tags,
    pub record_id: Option<String>,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
}

/// The compiled indicators plus the settings that matching needs.
pub struct IocEngine {
    index: Index,
    records: Vec<IndicatorRecord>,
    internal: InternalNets,
}

impl IocEngine {
    /// Compile indicators. Each indicator keeps its own window, so the same
    /// value from two feeds, or twice with different dates, matches twice.
    pub fn new(indicators: impl IntoIterator<Item = Indicator>, internal: InternalNets) -> Self {
        let mut builder = IndexBuilder::new();
        let mut records = Vec::new();
        for ind in indicators {
            let id = records.len() as u32;
            builder.add(id, &ind.value, ind.valid_from, ind.valid_until);
            records.push(IndicatorRecord {
                value: ind.value.to_string(),
                type_name: ind.value.type_name(),
                feed: ind.provenance.feed.clone(),
                confidence: ind.confidence,
                tags: ind.tags,
                record_id: ind.provenance.record_id,
                valid_from: ind.valid_from,
                valid_until: ind.valid_until,
            });
        }
        Self {
            index: builder.build(),
            records,
            internal,
        }
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn records(&self) -> &[IndicatorRecord] {
        &self.records
    }

    pub fn internal(&self) -> &InternalNets {
        &self.internal
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Does the raw record mention any indicator address? Cheap pre-check.
    pub fn raw_may_match(&self, raw: &[u8]) -> bool {
        let mut hit = false;
        orbwatch_event::ipscan::for_each_ip(raw, |ip, _, _| {
            if !hit && self.index.contains_ip(ip) {
                hit = true;
            }
        });
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
        } else if let Some(ev) = event {
            for (ip, _) in ev.addresses() {
                scratch.push_ip(ip);
            }
        }
        for i in 0..scratch.ips.len() {
            let ip = scratch.ips[i];
            let before = scratch.matches.len();
            self.index.lookup_ip(ip, &mut scratch.matches);
            for k in before..scratch.matches.len() {
                let m = scratch.matches[k];
                scratch.hits.push(Hit {
                    m,
                    value: HitValue::Ip(ip),
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
        let mut matched = 0;
        // One sighting per indicator *and window* per record: the same
        // indicator seen via two addresses of one record counts once.
        let mut seen: Vec<(u32, Option<i64>, Option<i64>)> = Vec::new();
        for hit in scratch.hits.drain(..) {
            let wkey = (
                hit.m.indicator,
                hit.m.window.from.map(|t| t.as_second()),
                hit.m.window.until.map(|t| t.as_second()),
            );
            if seen.contains(&wkey) {
                continue;
            }
            seen.push(wkey);
            matched += 1;
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
            let in_window = time.is_none_or(|t| hit.m.window.contains(t));
            agg.add(Sighting {
                indicator: hit.m.indicator,
                window_from: hit.m.window.from,
                window_until: hit.m.window.until,
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
            });
        }
        matched
    }
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
