//! MISP events (JSON) and MISP feed directories (`manifest.json` plus one
//! `<uuid>.json` per event).
//!
//! An event file may hold `{"Event": {...}}`, a bare event object,
//! `{"response": [{"Event": ...}, ...]}` as the MISP API returns it, or an
//! array of events. Attributes are read from `Event.Attribute` and from
//! `Event.Object[].Attribute`.
//!
//! Attribute types:
//!
//! | MISP type | indicator |
//! |---|---|
//! | `ip-src`, `ip-dst` | address or CIDR |
//! | `ip-src\|port`, `ip-dst\|port` | address, tag `port=N` |
//! | `domain`, `hostname` | domain |
//! | `hostname\|port` | domain, tag `port=N` |
//! | `domain\|ip` | two indicators: the domain and the address |
//! | `url` (`uri` only with a scheme) | URL; a URL without scheme gets `http://` and the tag `url-scheme-assumed` |
//! | `md5`, `sha1`, `sha256`, `sha512`, `filename\|<hash>` | hash (tag `filename=` for the composite) |
//! | `x509-fingerprint-md5`/`-sha1`/`-sha256` | certificate fingerprint |
//!
//! `link` (a reference), handshake fingerprints (`ja3-fingerprint-md5`,
//! `jarm-fingerprint`, `hassh-md5`…), other hash types and non-network types
//! (`AS`, `comment`, `text`, `other`, `email-src`…) are counted as skipped
//! with the reason, as are deleted attributes and attributes of deleted
//! objects.
//!
//! Metadata:
//!
//! - record id = the attribute `uuid`; `first_seen`/`last_seen` (ISO 8601 or
//!   epoch; an object's dates serve its attributes without their own) are
//!   the sighting dates, and the window comes from them (see
//!   [`super::finalize`]); `published` is when the event was published
//!   (`publish_timestamp`), else its `date`, else the attribute's
//!   `timestamp` (its last change), else the event's; the comment is the
//!   description.
//! - the event `info` is a campaign; `Orgc.name` adds `source=<name>`;
//!   the attribute's type and category are kept as `misp:type="…"` and
//!   `misp:category="…"` (as MISP's own STIX export writes them), and the
//!   object name as `misp-object=<name>`.
//! - tags of the event and of the attribute: `tlp:*` sets the TLP (the
//!   attribute's wins over the event's, and the most restrictive at one
//!   level); `misp-galaxy:threat-actor="X"` adds actor X; galaxy clusters of
//!   type `threat-actor` (event or attribute `Galaxy`) add actors; and
//!   `threat-actor` attributes attribute the whole event. Other galaxy tags
//!   and all other tags go to `tags.other` verbatim.
//! - confidence from tags (the lowest at a level; the attribute's level wins
//!   over the event's):
//!   - `estimative-language:confidence-in-analytic-judgment`: high 90,
//!     moderate 60, low 30;
//!   - `estimative-language:likelihood-probability`: almost-certain 95,
//!     very-likely 85, likely 70, roughly-even-chance 50, unlikely 30,
//!     very-unlikely 15, almost-no-chance 5;
//!   - `admiralty-scale:source-reliability`: a 95, b 80, c 60, d 40, e 20
//!     (f: cannot be judged, ignored);
//!   - `admiralty-scale:information-credibility`: 1 95, 2 80, 3 60, 4 40,
//!     5 20 (6 ignored);
//!   - `misp:confidence-level`: completely-confident 100,
//!     usually-confident 75, fairly-confident 50, rarely-confident 25,
//!     unconfident 0.
//! - `to_ids: false` means the producer does not want the value used for
//!   detection, usually because it is shared context or prone to false
//!   positives. Such attributes are still loaded, so that a hunt can show
//!   them, but tagged `to_ids=false` with their confidence halved (from 50
//!   when the feed gives none): see [`lower_for_no_ids`].
//!
//! Lines: the line of the attribute's `"uuid"` in the file, else 0.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::stix::{key_lines, normalise_tlp, stricter_tlp, strip_bom};
use super::{FeedError, FeedFormat, ParsedFeed, ReadOptions};
use crate::model::{HashAlgo, Indicator, IndicatorValue, Provenance, Tags, excerpt};
use crate::time::parse_timestamp;
use crate::value::{TypeHint, parse_value};

mod stream;
pub use stream::read_event_stream;

/// Does the start of a file look like a MISP event (or a MISP feed
/// manifest, which [`read_event_file`] recognises and explains)?
pub fn looks_like(head: &str) -> bool {
    let event = head.contains("\"Event\"")
        && (head.contains("\"Attribute\"")
            || head.contains("\"info\"")
            || head.contains("\"Orgc\""));
    let bare = head.contains("\"info\"")
        && (head.contains("\"threat_level_id\"") || head.contains("\"analysis\""))
        && (head.contains("\"uuid\"") || head.contains("\"Orgc\""));
    event || bare
}

/// Confidence given to an attribute marked `to_ids: false`: half of what
/// the feed says, or 25 when it says nothing.
pub fn lower_for_no_ids(confidence: Option<u8>) -> u8 {
    confidence.unwrap_or(50).min(100) / 2
}

/// Read a MISP event file (one event or a list of events).
pub fn read_event_file(
    bytes: &[u8],
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    read_events(bytes, file, None, FeedFormat::Misp, opts, out)
}

/// Read a MISP feed directory: `manifest` is the bytes of `manifest.json`;
/// `load_event(uuid)` returns the bytes of `<uuid>.json` (the caller does
/// the I/O). Events that fail to load are rejected, the others still read.
/// Events are read in uuid order; manifest keys that are not uuids are
/// rejected rather than handed to `load_event`.
pub fn read_feed_dir(
    manifest: &[u8],
    manifest_file: &str,
    load_event: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    let doc: Value =
        serde_json::from_slice(strip_bom(manifest)).map_err(|e| FeedError::Malformed {
            file: manifest_file.to_string(),
            format: FeedFormat::MispFeed,
            reason: format!(
                "invalid JSON: {e}; a MISP feed manifest maps event uuids to summaries"
            ),
        })?;
    let Value::Object(map) = doc else {
        return Err(FeedError::Malformed {
            file: manifest_file.to_string(),
            format: FeedFormat::MispFeed,
            reason: "manifest.json must be a JSON object mapping event uuids to event summaries"
                .into(),
        });
    };
    let mut uuids: Vec<&String> = map.keys().collect();
    uuids.sort();
    for uuid in uuids {
        if !is_uuid(uuid) {
            out.reject(
                manifest_file,
                0,
                format!(
                    "manifest key `{}` is not an event uuid; not loading it",
                    excerpt(uuid)
                ),
                uuid,
            );
            continue;
        }
        let event_file = format!("{uuid}.json");
        let defaults = map
            .get(uuid)
            .and_then(|v| EventDefaults::deserialize(v).ok());
        let bytes = match load_event(uuid) {
            Ok(b) => b,
            Err(e) => {
                out.reject(
                    &event_file,
                    0,
                    format!("event {uuid} listed in {manifest_file} could not be loaded: {e}"),
                    "",
                );
                continue;
            }
        };
        // Streamed, as a single event file is: the event's bytes are in
        // memory, but never a JSON tree of all its attributes.
        let mut open = || Ok::<_, std::io::Error>(&bytes[..]);
        let streamed = stream::read_events_streamed(
            &mut open,
            &event_file,
            opts,
            defaults.as_ref(),
            FeedFormat::MispFeed,
            &mut |p| {
                out.indicators.append(&mut p.indicators);
                out.rejected.append(&mut p.rejected);
                out.skipped.append(&mut p.skipped);
            },
        );
        let res = match streamed {
            Ok(true) => Ok(()),
            // No event found, or a key given twice: the whole reader
            // answers, or says what the file is.
            Ok(false) => read_events(
                &bytes,
                &event_file,
                defaults.as_ref(),
                FeedFormat::MispFeed,
                opts,
                out,
            ),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
            out.reject(&event_file, 0, e.to_string(), &head);
        }
    }
    Ok(())
}

/// MISP uuids are hex and hyphens; anything else in a manifest key (a path
/// separator, `..`) must not reach the caller's file system.
fn is_uuid(s: &str) -> bool {
    (32..=36).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn read_events(
    bytes: &[u8],
    file: &str,
    defaults: Option<&EventDefaults>,
    format: FeedFormat,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    let malformed = |reason: String| FeedError::Malformed {
        file: file.to_string(),
        format,
        reason,
    };
    let bytes = strip_bom(bytes);
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        malformed(format!(
            "invalid JSON: {e}; fix the file or re-export the event"
        ))
    })?;
    let mut events = Vec::new();
    collect_events(&doc, &mut events, 0);
    if events.is_empty() {
        if is_manifest(&doc) {
            return Err(malformed(
                "this is a MISP feed manifest (manifest.json), not an event; \
                 read the feed directory that holds it instead"
                    .into(),
            ));
        }
        return Err(malformed(
            "no MISP event found: expected {\"Event\": {...}}, a bare event, \
             {\"response\": [...]} or a list of events"
                .into(),
        ));
    }
    let lines = key_lines(bytes, "uuid");
    for ev in events {
        read_event(ev, file, &lines, defaults, opts, out);
    }
    Ok(())
}

/// Find the events in the shapes MISP writes them.
fn collect_events<'a>(v: &'a Value, out: &mut Vec<&'a Value>, depth: u8) {
    if depth > 2 {
        return;
    }
    match v {
        Value::Object(m) => {
            if let Some(ev) = m.get("Event") {
                if ev.is_object() {
                    out.push(ev);
                }
            } else if let Some(r) = m.get("response") {
                collect_events(r, out, depth + 1);
            } else if is_bare_event(v) {
                out.push(v);
            }
        }
        Value::Array(items) => {
            for it in items {
                collect_events(it, out, depth + 1);
            }
        }
        _ => {}
    }
}

fn is_bare_event(v: &Value) -> bool {
    v.get("Attribute").is_some()
        || v.get("Object").is_some()
        || (v.get("info").is_some() && (v.get("uuid").is_some() || v.get("date").is_some()))
}

/// A manifest maps uuids to summaries that have `info`.
fn is_manifest(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            !m.is_empty() && m.iter().all(|(k, v)| is_uuid(k) && v.get("info").is_some())
        }
        _ => false,
    }
}

/// `null` is read as the default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// MISP writes scalars loosely: `"to_ids": true`, `"1"` or `1`;
/// timestamps as strings or numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Loose {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Loose {
    fn text(&self) -> String {
        match self {
            Loose::Bool(b) => b.to_string(),
            Loose::Int(i) => i.to_string(),
            Loose::Float(f) => f.to_string(),
            Loose::Str(s) => s.clone(),
        }
    }

    fn truthy(&self) -> Option<bool> {
        match self {
            Loose::Bool(b) => Some(*b),
            Loose::Int(i) => Some(*i != 0),
            Loose::Float(f) => Some(*f != 0.0),
            Loose::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Some(true),
                "0" | "false" | "no" | "" => Some(false),
                _ => None,
            },
        }
    }

    /// `None` for an empty string (MISP writes `""` for no date).
    fn time(&self) -> Result<Option<Timestamp>, String> {
        match self {
            Loose::Int(i) => Timestamp::from_second(*i)
                .map(Some)
                .map_err(|_| format!("{i} is not a time")),
            Loose::Str(s) if s.trim().is_empty() => Ok(None),
            other => {
                let t = other.text();
                parse_timestamp(&t)
                    .map(Some)
                    .ok_or_else(|| format!("`{t}` is not a time"))
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct MispOrg {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct MispTag {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct MispGalaxy {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(rename = "GalaxyCluster", default, deserialize_with = "null_default")]
    clusters: Vec<MispCluster>,
}

#[derive(Debug, Default, Deserialize)]
struct MispCluster {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    tag_name: Option<String>,
}

/// Event summary from a feed manifest, used where the event file lacks it.
#[derive(Debug, Default, Deserialize)]
struct EventDefaults {
    #[serde(default)]
    info: Option<String>,
    #[serde(rename = "Orgc", default)]
    orgc: Option<MispOrg>,
    #[serde(rename = "Tag", default, deserialize_with = "null_default")]
    tags: Vec<MispTag>,
    #[serde(default)]
    date: Option<Loose>,
    #[serde(default)]
    timestamp: Option<Loose>,
}

/// What an event says about all of its attributes, as written.
#[derive(Debug, Default, Deserialize)]
struct EventHead {
    #[serde(default)]
    info: Option<String>,
    #[serde(default)]
    date: Option<Loose>,
    #[serde(default)]
    timestamp: Option<Loose>,
    #[serde(default)]
    publish_timestamp: Option<Loose>,
    #[serde(rename = "Orgc", default)]
    orgc: Option<MispOrg>,
    #[serde(rename = "Tag", default, deserialize_with = "null_default")]
    tags: Vec<MispTag>,
    #[serde(rename = "Galaxy", default, deserialize_with = "null_default")]
    galaxies: Vec<MispGalaxy>,
}

#[derive(Debug, Deserialize)]
struct MispEvent {
    #[serde(flatten)]
    head: EventHead,
    /// Kept raw so that one bad attribute does not lose the event.
    #[serde(rename = "Attribute", default, deserialize_with = "null_default")]
    attributes: Vec<Value>,
    #[serde(rename = "Object", default, deserialize_with = "null_default")]
    objects: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct MispObject {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    deleted: Option<Loose>,
    #[serde(default)]
    first_seen: Option<Loose>,
    #[serde(default)]
    last_seen: Option<Loose>,
    #[serde(rename = "Attribute", default, deserialize_with = "null_default")]
    attributes: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct MispAttribute {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    value: Option<Loose>,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    to_ids: Option<Loose>,
    #[serde(default)]
    deleted: Option<Loose>,
    #[serde(default)]
    timestamp: Option<Loose>,
    #[serde(default)]
    first_seen: Option<Loose>,
    #[serde(default)]
    last_seen: Option<Loose>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(rename = "Tag", default, deserialize_with = "null_default")]
    tags: Vec<MispTag>,
    #[serde(rename = "Galaxy", default, deserialize_with = "null_default")]
    galaxies: Vec<MispGalaxy>,
}

/// What the tags and galaxies at one level (event or attribute) say.
#[derive(Debug, Default, Clone)]
struct TagInfo {
    tlp: Option<String>,
    actors: Vec<String>,
    other: Vec<String>,
    confidence: Option<u8>,
}

impl TagInfo {
    fn add_tag(&mut self, name: &str) {
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("tlp:")
            && let Some(level) = normalise_tlp(name)
        {
            stricter_tlp(&mut self.tlp, level);
            return;
        }
        if let Some((ns, value)) = split_machine_tag(name) {
            if ns.eq_ignore_ascii_case("misp-galaxy:threat-actor") {
                Tags::push_unique(&mut self.actors, value);
                return;
            }
            if let Some(c) = tag_confidence(&ns.to_ascii_lowercase(), &value.to_ascii_lowercase()) {
                self.confidence = Some(self.confidence.map_or(c, |x| x.min(c)));
            }
        }
        Tags::push_unique(&mut self.other, name);
    }

    fn add_galaxies(&mut self, galaxies: &[MispGalaxy]) {
        for g in galaxies {
            for c in &g.clusters {
                let kind = c.kind.as_deref().or(g.kind.as_deref()).unwrap_or("");
                let Some(value) = c.value.as_deref() else {
                    continue;
                };
                if kind.eq_ignore_ascii_case("threat-actor") {
                    Tags::push_unique(&mut self.actors, value);
                } else {
                    let tag = c
                        .tag_name
                        .clone()
                        .unwrap_or_else(|| format!("misp-galaxy:{kind}=\"{value}\""));
                    Tags::push_unique(&mut self.other, tag);
                }
            }
        }
    }
}

/// `ns:predicate="value"` → (`ns:predicate`, `value`).
fn split_machine_tag(tag: &str) -> Option<(&str, String)> {
    let (ns, value) = tag.split_once('=')?;
    Some((ns.trim(), value.trim().trim_matches('"').to_string()))
}

/// The confidence mapping documented at the top of the module.
fn tag_confidence(ns: &str, value: &str) -> Option<u8> {
    let c = match (ns, value) {
        ("estimative-language:confidence-in-analytic-judgment", v) => match v {
            "high" => 90,
            "moderate" => 60,
            "low" => 30,
            _ => return None,
        },
        ("estimative-language:likelihood-probability", v) => match v {
            "almost-certain" => 95,
            "very-likely" => 85,
            "likely" => 70,
            "roughly-even-chance" => 50,
            "unlikely" => 30,
            "very-unlikely" => 15,
            "almost-no-chance" => 5,
            _ => return None,
        },
        ("admiralty-scale:source-reliability", v) => match v {
            "a" => 95,
            "b" => 80,
            "c" => 60,
            "d" => 40,
            "e" => 20,
            _ => return None,
        },
        ("admiralty-scale:information-credibility", v) => match v {
            "1" => 95,
            "2" => 80,
            "3" => 60,
            "4" => 40,
            "5" => 20,
            _ => return None,
        },
        ("misp:confidence-level", v) => match v {
            "completely-confident" => 100,
            "usually-confident" => 75,
            "fairly-confident" => 50,
            "rarely-confident" => 25,
            "unconfident" => 0,
            _ => return None,
        },
        _ => return None,
    };
    Some(c)
}

/// What the event says about all of its attributes.
struct EventInfo {
    tags: TagInfo,
    campaign: Option<String>,
    source: Option<String>,
    /// `publish_timestamp` or `date`.
    published: Option<Timestamp>,
    /// The event's `timestamp` (last change).
    modified: Option<Timestamp>,
}

fn read_event(
    ev: &Value,
    file: &str,
    lines: &HashMap<String, u64>,
    defaults: Option<&EventDefaults>,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) {
    let ev_uuid = ev.get("uuid").and_then(Value::as_str);
    let ev_line = ev_uuid.and_then(|u| lines.get(u)).copied().unwrap_or(0);
    let event = match MispEvent::deserialize(ev) {
        Ok(e) => e,
        Err(e) => {
            out.reject(
                file,
                ev_line,
                format!("{}malformed MISP event: {e}", prefix(ev_uuid)),
                &ev.to_string(),
            );
            return;
        }
    };

    // Parse objects and attributes once; `threat-actor` attributes
    // attribute the whole event, so they are gathered before reading.
    let mut items: Vec<(MispAttribute, Option<usize>)> = Vec::new();
    let mut objects: Vec<MispObject> = Vec::new();
    let mut parse_attr =
        |v: &Value, obj: Option<usize>, out: &mut ParsedFeed| match MispAttribute::deserialize(v) {
            Ok(a) => items.push((a, obj)),
            Err(e) => {
                let u = v.get("uuid").and_then(Value::as_str);
                let line = u.and_then(|u| lines.get(u)).copied().unwrap_or(ev_line);
                out.reject(
                    file,
                    line,
                    format!("{}malformed MISP attribute: {e}", prefix(u)),
                    &v.to_string(),
                );
            }
        };
    for v in &event.attributes {
        parse_attr(v, None, out);
    }
    for v in &event.objects {
        match MispObject::deserialize(v) {
            Ok(o) => {
                let idx = objects.len();
                for a in &o.attributes {
                    parse_attr(a, Some(idx), out);
                }
                objects.push(o);
            }
            Err(e) => {
                let u = v.get("uuid").and_then(Value::as_str);
                let line = u.and_then(|u| lines.get(u)).copied().unwrap_or(ev_line);
                out.reject(
                    file,
                    line,
                    format!("{}malformed MISP object: {e}", prefix(u)),
                    &v.to_string(),
                );
            }
        }
    }
    let mut actors = Vec::new();
    for (a, obj) in &items {
        let deleted = is_deleted(a.deleted.as_ref())
            || obj.is_some_and(|i| {
                objects
                    .get(i)
                    .is_some_and(|o| is_deleted(o.deleted.as_ref()))
            });
        if a.kind == "threat-actor"
            && !deleted
            && let Some(v) = a.value.as_ref().map(Loose::text)
        {
            actors.push(v);
        }
    }
    let info = event_info(&event.head, defaults, actors);
    for (a, obj) in &items {
        let obj = obj.and_then(|i| objects.get(i));
        let line = a
            .uuid
            .as_deref()
            .and_then(|u| lines.get(u))
            .copied()
            .unwrap_or(ev_line);
        read_attribute(a, obj, &info, file, line, opts, out);
    }
}

/// What an event says about all of its attributes: its tags and
/// galaxies (those of the feed manifest's summary when it has none), the
/// actors of its `threat-actor` attributes, its `info`, creator and dates.
fn event_info(
    head: &EventHead,
    defaults: Option<&EventDefaults>,
    actors: Vec<String>,
) -> EventInfo {
    let mut tags = TagInfo::default();
    let event_tags = if head.tags.is_empty() {
        defaults.map(|d| d.tags.as_slice()).unwrap_or(&[])
    } else {
        head.tags.as_slice()
    };
    for t in event_tags {
        if let Some(n) = t.name.as_deref() {
            tags.add_tag(n);
        }
    }
    tags.add_galaxies(&head.galaxies);
    for v in actors {
        Tags::push_unique(&mut tags.actors, v);
    }
    let info = head
        .info
        .clone()
        .or_else(|| defaults.and_then(|d| d.info.clone()));
    let source = head.orgc.as_ref().and_then(|o| o.name.clone()).or_else(|| {
        defaults
            .and_then(|d| d.orgc.as_ref())
            .and_then(|o| o.name.clone())
    });
    // MISP writes publish_timestamp "0" for never published.
    let first_time = |candidates: &[Option<&Loose>]| {
        candidates
            .iter()
            .flatten()
            .filter_map(|l| l.time().ok().flatten())
            .find(|t| t.as_second() > 0)
    };
    let published = first_time(&[
        head.publish_timestamp.as_ref(),
        head.date.as_ref(),
        defaults.and_then(|d| d.date.as_ref()),
    ]);
    let modified = first_time(&[
        head.timestamp.as_ref(),
        defaults.and_then(|d| d.timestamp.as_ref()),
    ]);
    EventInfo {
        tags,
        campaign: info.filter(|s| !s.trim().is_empty()),
        source: source.filter(|s| !s.trim().is_empty()),
        published,
        modified,
    }
}

fn prefix(uuid: Option<&str>) -> String {
    uuid.map(|u| format!("{u}: ")).unwrap_or_default()
}

fn is_deleted(v: Option<&Loose>) -> bool {
    v.and_then(Loose::truthy).unwrap_or(false)
}

/// How an attribute type turns into indicators.
enum Plan {
    /// (text, hint) pairs, and extra tags.
    Values(Vec<(String, TypeHint)>, Vec<String>),
    Skip(String),
}

fn hash_algo_of(kind: &str) -> Option<HashAlgo> {
    match kind {
        "md5" => Some(HashAlgo::Md5),
        "sha1" => Some(HashAlgo::Sha1),
        "sha256" => Some(HashAlgo::Sha256),
        "sha512" => Some(HashAlgo::Sha512),
        _ => None,
    }
}

const OTHER_HASHES: &[&str] = &[
    "sha224",
    "sha384",
    "sha512/224",
    "sha512/256",
    "sha3-224",
    "sha3-256",
    "sha3-384",
    "sha3-512",
    "ssdeep",
    "imphash",
    "tlsh",
    "authentihash",
    "pehash",
    "impfuzzy",
    "vhash",
    "cdhash",
    "telfhash",
];

const HANDSHAKE_FINGERPRINTS: &[&str] = &[
    "ja3-fingerprint-md5",
    "ja3s-fingerprint-md5",
    "ja4-fingerprint",
    "jarm-fingerprint",
    "hassh-md5",
    "hasshserver-md5",
];

fn plan(kind: &str, value: &str) -> Plan {
    let port_tag = |p: &str| {
        let p = p.trim();
        if p.is_empty() {
            vec![]
        } else {
            vec![format!("port={p}")]
        }
    };
    match kind {
        "ip-src" | "ip-dst" => Plan::Values(vec![(value.into(), TypeHint::Ip)], vec![]),
        "ip-src|port" | "ip-dst|port" => match value.rsplit_once('|') {
            Some((ip, port)) => Plan::Values(vec![(ip.into(), TypeHint::Ip)], port_tag(port)),
            None => Plan::Values(vec![(value.into(), TypeHint::Ip)], vec![]),
        },
        "domain" | "hostname" => Plan::Values(vec![(value.into(), TypeHint::Domain)], vec![]),
        "hostname|port" => match value.rsplit_once('|') {
            Some((h, port)) => Plan::Values(vec![(h.into(), TypeHint::Domain)], port_tag(port)),
            None => Plan::Values(vec![(value.into(), TypeHint::Domain)], vec![]),
        },
        "domain|ip" => match value.split_once('|') {
            Some((d, ip)) => Plan::Values(
                vec![(d.into(), TypeHint::Domain), (ip.into(), TypeHint::Ip)],
                vec![],
            ),
            None => Plan::Values(vec![(value.into(), TypeHint::Domain)], vec![]),
        },
        "url" => Plan::Values(vec![(value.into(), TypeHint::Url)], vec![]),
        "uri" if value.contains("://") => Plan::Values(vec![(value.into(), TypeHint::Url)], vec![]),
        "uri" => Plan::Skip("uri without scheme and host cannot be matched".into()),
        "link" => Plan::Skip("link is a reference to a report, not an indicator".into()),
        k if hash_algo_of(k).is_some() => Plan::Values(
            vec![(value.into(), TypeHint::Hash(hash_algo_of(k)))],
            vec![],
        ),
        k if k.starts_with("filename|") => {
            let algo = &k["filename|".len()..];
            match hash_algo_of(algo) {
                Some(a) => match value.rsplit_once('|') {
                    Some((name, h)) => Plan::Values(
                        vec![(h.into(), TypeHint::Hash(Some(a)))],
                        vec![format!("filename={}", name.trim())],
                    ),
                    None => Plan::Values(vec![(value.into(), TypeHint::Hash(Some(a)))], vec![]),
                },
                None => Plan::Skip(format!("hash type {kind} is not supported")),
            }
        }
        k if k.starts_with("x509-fingerprint-") => {
            match hash_algo_of(&k["x509-fingerprint-".len()..]) {
                Some(a) => Plan::Values(vec![(value.into(), TypeHint::Cert(Some(a)))], vec![]),
                None => Plan::Skip(format!("hash type {kind} is not supported")),
            }
        }
        k if HANDSHAKE_FINGERPRINTS.contains(&k) => Plan::Skip(format!(
            "{k} is a TLS/SSH handshake fingerprint, which orbwatch does not match"
        )),
        k if OTHER_HASHES.contains(&k) => Plan::Skip(format!("hash type {k} is not supported")),
        k => Plan::Skip(format!(
            "MISP type {k} is not an indicator orbwatch can match"
        )),
    }
}

/// One attribute into indicators; `line` is the line of its `uuid`.
fn read_attribute(
    a: &MispAttribute,
    obj: Option<&MispObject>,
    ev: &EventInfo,
    file: &str,
    line: u64,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) {
    let uuid = a.uuid.as_deref();
    if is_deleted(a.deleted.as_ref()) {
        out.skip(file, line, "deleted attribute");
        return;
    }
    if obj.is_some_and(|o| is_deleted(o.deleted.as_ref())) {
        out.skip(file, line, "attribute of a deleted object");
        return;
    }
    let kind = a.kind.trim().to_ascii_lowercase();
    let value = a.value.as_ref().map(Loose::text).unwrap_or_default();
    let raw = format!("{kind} {value}");
    if value.trim().is_empty() {
        out.reject(
            file,
            line,
            format!("{}{kind} attribute has no value", prefix(uuid)),
            &raw,
        );
        return;
    }
    let (items, extra) = match plan(&kind, &value) {
        Plan::Skip(reason) => {
            out.skip(file, line, reason);
            return;
        }
        Plan::Values(items, extra) => (items, extra),
    };

    let mut time = |field: &str, own: Option<&Loose>, from_obj: Option<&Loose>| {
        let v = own
            .filter(|l| !matches!(l, Loose::Str(s) if s.trim().is_empty()))
            .or(from_obj);
        match v.map(Loose::time) {
            None => Ok(None),
            Some(Ok(t)) => Ok(t),
            Some(Err(e)) => {
                out.reject(file, line, format!("{}{field}: {e}", prefix(uuid)), &raw);
                Err(())
            }
        }
    };
    let Ok(first_seen) = time(
        "first_seen",
        a.first_seen.as_ref(),
        obj.and_then(|o| o.first_seen.as_ref()),
    ) else {
        return;
    };
    let Ok(last_seen) = time(
        "last_seen",
        a.last_seen.as_ref(),
        obj.and_then(|o| o.last_seen.as_ref()),
    ) else {
        return;
    };
    if let (Some(f), Some(l)) = (first_seen, last_seen)
        && l < f
    {
        out.reject(
            file,
            line,
            format!("{}last_seen {l} is before first_seen {f}", prefix(uuid)),
            &raw,
        );
        return;
    }
    let published = ev
        .published
        .or_else(|| {
            a.timestamp
                .as_ref()
                .and_then(|t| t.time().ok().flatten())
                .filter(|t| t.as_second() > 0)
        })
        .or(ev.modified);

    let mut own = TagInfo::default();
    for t in &a.tags {
        if let Some(n) = t.name.as_deref() {
            own.add_tag(n);
        }
    }
    own.add_galaxies(&a.galaxies);

    let mut tags = Tags {
        tlp: own.tlp.clone().or_else(|| ev.tags.tlp.clone()),
        ..Tags::default()
    };
    for x in ev.tags.actors.iter().chain(&own.actors) {
        Tags::push_unique(&mut tags.actors, x.as_str());
    }
    if let Some(c) = &ev.campaign {
        Tags::push_unique(&mut tags.campaigns, c.as_str());
    }
    if let Some(s) = &ev.source {
        Tags::push_unique(&mut tags.other, format!("source={s}"));
    }
    Tags::push_unique(&mut tags.other, format!("misp:type=\"{kind}\""));
    if let Some(c) = a.category.as_deref().filter(|c| !c.trim().is_empty()) {
        Tags::push_unique(&mut tags.other, format!("misp:category=\"{}\"", c.trim()));
    }
    if let Some(n) = obj.and_then(|o| o.name.as_deref()) {
        Tags::push_unique(&mut tags.other, format!("misp-object={n}"));
    }
    for x in ev.tags.other.iter().chain(&own.other).chain(&extra) {
        Tags::push_unique(&mut tags.other, x.as_str());
    }
    let mut confidence = own.confidence.or(ev.tags.confidence);
    if a.to_ids.as_ref().and_then(Loose::truthy) == Some(false) {
        confidence = Some(lower_for_no_ids(confidence));
        Tags::push_unique(&mut tags.other, "to_ids=false");
    }
    let description = a
        .comment
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            obj.and_then(|o| o.comment.as_deref())
                .filter(|c| !c.trim().is_empty())
        })
        .map(|c| c.trim().to_string());

    for (text, hint) in items {
        let mut item_tags = tags.clone();
        let parsed = match parse_value(&text, Some(hint)) {
            Ok(v) => Ok(v),
            Err(e) if hint == TypeHint::Url && !text.contains("://") => {
                match parse_value(&format!("http://{}", text.trim()), Some(hint)) {
                    Ok(v) => {
                        Tags::push_unique(&mut item_tags.other, "url-scheme-assumed");
                        Ok(v)
                    }
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let v: IndicatorValue = match parsed {
            Ok(v) => v,
            Err(e) => {
                out.reject(file, line, format!("{}{kind}: {e}", prefix(uuid)), &raw);
                continue;
            }
        };
        let mut ind = Indicator::new(
            v,
            Provenance {
                feed: opts.feed_name.clone(),
                file: file.to_string(),
                line,
                record_id: uuid.map(str::to_string),
            },
        );
        ind.first_seen = first_seen;
        ind.last_seen = last_seen;
        ind.published = published;
        ind.confidence = confidence;
        ind.tags = item_tags;
        ind.description = description.clone();
        out.indicators.push(ind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert!(looks_like(r#"{"Event": {"info": "x", "Attribute": []}}"#));
        assert!(looks_like(r#"{"response": [{"Event": {"info": "x"}}]}"#));
        assert!(looks_like(
            r#"{"info": "x", "threat_level_id": "1", "uuid": "u", "Attribute": []}"#
        ));
        assert!(!looks_like(r#"{"type": "bundle", "objects": []}"#));
    }

    #[test]
    fn tag_mapping() {
        let mut t = TagInfo::default();
        t.add_tag("tlp:green");
        t.add_tag("TLP:AMBER");
        t.add_tag("misp-galaxy:threat-actor=\"APT31\"");
        t.add_tag("misp-galaxy:mitre-attack-pattern=\"Proxy - T1090\"");
        t.add_tag("admiralty-scale:source-reliability=\"b\"");
        t.add_tag("estimative-language:confidence-in-analytic-judgment=\"moderate\"");
        assert_eq!(t.tlp.as_deref(), Some("amber"));
        assert_eq!(t.actors, vec!["APT31"]);
        assert_eq!(t.confidence, Some(60));
        assert!(t.other.iter().any(|o| o.contains("mitre-attack-pattern")));
    }

    #[test]
    fn no_ids_lowering() {
        assert_eq!(lower_for_no_ids(None), 25);
        assert_eq!(lower_for_no_ids(Some(90)), 45);
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("5e3a4b1c-0000-4a4a-9b9b-0123456789ab"));
        assert!(!is_uuid("../../etc/passwd"));
        assert!(!is_uuid("x"));
    }
}
