//! STIX 2.0 and 2.1: bundles, bare objects, arrays of objects and JSON
//! lines (one object or one bundle per line).
//!
//! Only `indicator` objects carry indicators. Their STIX pattern is parsed
//! with [`super::stix_pattern`] and every `=`, `IN` and `ISSUBSET`
//! comparison on a matchable object path becomes one [`Indicator`]:
//!
//! | object path | indicator |
//! |---|---|
//! | `ipv4-addr:value`, `ipv6-addr:value` | address or CIDR |
//! | `domain-name:value` | domain |
//! | `url:value` | URL |
//! | `file:hashes.<algo>` (`MD5`, `SHA-1`, `SHA-256`, `SHA-512`) | hash |
//! | `x509-certificate:hashes.<algo>` | certificate fingerprint |
//! | `network-traffic:src_ref.value` / `dst_ref.value` | address or domain, tagged `stix-ref=src_ref`/`dst_ref` |
//!
//! `network-traffic:*_ref.type` comparisons only say what kind of object
//! the reference is and are consumed silently. Negated comparisons (`!=`,
//! `NOT`), other operators (`LIKE`, `MATCHES`, `ISSUPERSET`, orderings),
//! `EXISTS` and other object paths are counted as skipped with the reason.
//! A pattern that does not parse is rejected with the column of the error.
//!
//! Metadata taken from the indicator object and from the rest of the bundle:
//!
//! - `valid_from`/`valid_until` form the validity window; `created` is
//!   `published`; `confidence` (2.1, 0–100) is kept; `name` and
//!   `description` become the description; the STIX id is the record id.
//! - `indicator_types` (2.1) and `labels` (2.0) are roles, lower-cased, as
//!   given. `anonymization` and `compromised` add the role `relay` (in the
//!   ORB context, compromised and anonymising hosts are relays). Labels
//!   written as `key:value` or `key=value` (MISP exports such as
//!   `misp:type="ip-dst"`) go to `tags.other` verbatim; a `tlp:` label sets
//!   the TLP; `misp:to_ids="False"` lowers the confidence as the MISP reader
//!   does for `to_ids: false`.
//! - `created_by_ref` naming an identity in the bundle adds `source=<name>`.
//! - `object_marking_refs`: the well-known TLP 1.0 and 2.0 marking ids, and
//!   TLP marking definitions in the bundle; the most restrictive wins.
//! - `indicates` relationships to campaigns add to `campaigns`, to
//!   intrusion sets and threat actors to `actors`, to malware, tools and
//!   infrastructure add `malware=`/`tool=`/`infrastructure=` tags; a
//!   campaign's own `attributed-to` relationships add its actors.
//! - A `report` listing the indicator in `object_refs` adds
//!   `report=<name>`, lends its TLP (markings or `TLP:` labels) when the
//!   indicator has none, and lends the actors of any MISP `threat-actor`
//!   attribute (`x-misp-attribute`) it lists: that is how MISP exports
//!   attribute an event.
//! - Revoked indicators, and versions superseded by a newer `modified` of
//!   the same id, are skipped.
//!
//! `observed-data`, custom `x-…` objects and unknown object types are
//! counted as skipped. Other standard objects (identities, markings,
//! relationships, reports, campaigns, cyber observables…) are context and
//! are not counted.
//!
//! Lines: in JSON lines the line is exact; in a bundle it is the line of
//! the object's `"id"` (1 for a bundle written on one line).

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::stix_pattern::{self, Comparison, Literal, Operand, Operator};
use super::{FeedError, FeedFormat, ParsedFeed, ReadOptions};
use crate::model::{HashAlgo, Indicator, IndicatorValue, Provenance, Tags};
use crate::time::parse_timestamp;
use crate::value::{TypeHint, parse_value};

/// Does the start of a file look like STIX: a bundle, an indicator with
/// a pattern, or any object with a STIX identifier (`"id":
/// "attack-pattern--<uuid>"`)? The last case is what JSON lines exports
/// open with: identities, marking definitions and ATT&CK techniques come
/// before the first indicator, sometimes for megabytes.
pub fn looks_like(head: &str) -> bool {
    has_key_value(head, "type", "bundle")
        || (has_key_value(head, "type", "indicator") && head.contains("\"pattern\""))
        || has_stix_id(head)
}

/// Does `"id": "<type>--<uuid>"` occur in `text` with a STIX object type
/// (standard, or custom `x-…`)? The first 1,000 `"id"` keys are looked at.
pub(crate) fn has_stix_id(text: &str) -> bool {
    text.match_indices("\"id\"").take(1000).any(|(i, _)| {
        let rest = text[i + 4..].trim_start();
        let Some(r) = rest.strip_prefix(':') else {
            return false;
        };
        let Some(r) = r.trim_start().strip_prefix('"') else {
            return false;
        };
        let Some(end) = r.find('"') else {
            return false;
        };
        is_stix_id(&r[..end])
    })
}

/// `<type>--<uuid>` with a STIX object type (standard or `x-…`) and an
/// RFC 4122 shaped uuid (36 characters of hex digits and dashes).
pub(crate) fn is_stix_id(id: &str) -> bool {
    let Some((ty, uuid)) = id.split_once("--") else {
        return false;
    };
    let known = ty == "indicator"
        || ty == "observed-data"
        || ty == "bundle"
        || CONTEXT_TYPES.contains(&ty)
        || SCO_TYPES.contains(&ty)
        || (ty.starts_with("x-") && ty.len() > 2);
    known
        && uuid.len() == 36
        && uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && uuid.bytes().filter(|b| *b == b'-').count() == 4
}

/// What the first JSON value of a file says it is, read completely
/// whatever its length: STIX (a bundle, or an object whose `id` is a STIX
/// identifier of its `type`, or which has a `spec_version`), MISP (an
/// `Event`, an API `response`, or a bare event), or something else,
/// described by its first keys. For JSON lines this is the first line;
/// for an array, its first element. Values are skipped without being
/// built, so a long first object costs one pass over its bytes.
pub(crate) fn probe_json(bytes: &[u8]) -> JsonProbe {
    let bytes = strip_bom(bytes);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match FirstValue::deserialize(&mut de) {
        Ok(FirstValue(Some(p))) => p.verdict(),
        Ok(FirstValue(None)) => JsonProbe::Other("an empty JSON array".into()),
        Err(e) => JsonProbe::Invalid(e.to_string()),
    }
}

/// The verdict of [`probe_json`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonProbe {
    Stix,
    Misp,
    /// Valid JSON of another kind: a short description of it.
    Other(String),
    /// Not valid JSON: the parser's message.
    Invalid(String),
}

/// The keys of one JSON object that tell STIX and MISP apart.
#[derive(Debug, Default)]
struct ObjectProbe {
    ty: Option<String>,
    id: Option<String>,
    spec_version: bool,
    event: bool,
    response: bool,
    info: bool,
    threat_level: bool,
    keys: Vec<String>,
    /// The value was not an object: its JSON kind.
    not_object: Option<&'static str>,
}

impl ObjectProbe {
    fn verdict(self) -> JsonProbe {
        if let Some(kind) = self.not_object {
            return JsonProbe::Other(format!("JSON whose first value is {kind}"));
        }
        let ty = self.ty.as_deref();
        let stix = ty == Some("bundle")
            || ty.is_some_and(|t| {
                self.spec_version
                    || self
                        .id
                        .as_deref()
                        .is_some_and(|id| id.strip_prefix(t).is_some_and(|r| r.starts_with("--")))
            });
        if stix {
            return JsonProbe::Stix;
        }
        if self.event || self.response || (self.info && self.threat_level) {
            return JsonProbe::Misp;
        }
        let mut keys = self.keys;
        let more = keys.len() > 8;
        keys.truncate(8);
        JsonProbe::Other(if keys.is_empty() {
            "an empty JSON object".to_string()
        } else {
            format!(
                "JSON with the keys {}{}",
                keys.join(", "),
                if more { ", …" } else { "" }
            )
        })
    }
}

impl<'de> Deserialize<'de> for ObjectProbe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProbeVisitor)
    }
}

struct ProbeVisitor;

impl<'de> serde::de::Visitor<'de> for ProbeVisitor {
    type Value = ObjectProbe;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ObjectProbe, A::Error> {
        use serde::de::IgnoredAny;
        let mut p = ObjectProbe::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "type" => p.ty = map.next_value::<Value>()?.as_str().map(str::to_string),
                "id" => p.id = map.next_value::<Value>()?.as_str().map(str::to_string),
                k => {
                    match k {
                        "spec_version" => p.spec_version = true,
                        "Event" => p.event = true,
                        "response" => p.response = true,
                        "info" => p.info = true,
                        "threat_level_id" => p.threat_level = true,
                        _ => {}
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if p.keys.len() <= 8 {
                p.keys.push(excerpt_key(&key));
            }
        }
        Ok(p)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ObjectProbe, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(not_object("an array"))
    }

    fn visit_str<E>(self, _: &str) -> Result<ObjectProbe, E> {
        Ok(not_object("a string"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<ObjectProbe, E> {
        Ok(not_object("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<ObjectProbe, E> {
        Ok(not_object("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<ObjectProbe, E> {
        Ok(not_object("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<ObjectProbe, E> {
        Ok(not_object("a number"))
    }
    fn visit_unit<E>(self) -> Result<ObjectProbe, E> {
        Ok(not_object("null"))
    }
}

fn not_object(kind: &'static str) -> ObjectProbe {
    ObjectProbe {
        not_object: Some(kind),
        ..Default::default()
    }
}

/// A key for a message: short and on one line.
fn excerpt_key(k: &str) -> String {
    let k: String = k.chars().filter(|c| !c.is_control()).take(40).collect();
    format!("`{k}`")
}

/// The first JSON value of a document: an object is probed; for an array,
/// its first element (the rest is skipped, `None` when it is empty).
struct FirstValue(Option<ObjectProbe>);

impl<'de> Deserialize<'de> for FirstValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FirstValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object or array")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<FirstValue, A::Error> {
                ProbeVisitor.visit_map(map).map(|p| FirstValue(Some(p)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FirstValue, A::Error> {
                let first = seq.next_element::<ObjectProbe>()?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FirstValue(first))
            }
            fn visit_str<E>(self, _: &str) -> Result<FirstValue, E> {
                Ok(FirstValue(Some(not_object("a string"))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<FirstValue, E> {
                Ok(FirstValue(Some(not_object("a boolean"))))
            }
            fn visit_i64<E>(self, _: i64) -> Result<FirstValue, E> {
                Ok(FirstValue(Some(not_object("a number"))))
            }
            fn visit_u64<E>(self, _: u64) -> Result<FirstValue, E> {
                Ok(FirstValue(Some(not_object("a number"))))
            }
            fn visit_f64<E>(self, _: f64) -> Result<FirstValue, E> {
                Ok(FirstValue(Some(not_object("a number"))))
            }
            fn visit_unit<E>(self) -> Result<FirstValue, E> {
                Ok(FirstValue(Some(not_object("null"))))
            }
        }
        d.deserialize_any(V)
    }
}

mod lines;
mod stream;
pub use stream::read_bundle_stream;

/// Read a STIX bundle or STIX JSON lines. A bundle (or an array of
/// objects) is streamed object by object ([`read_bundle_stream`]), so its
/// objects are never all in memory at once as JSON trees; anything else
/// is read by [`read_whole`].
pub fn read(
    bytes: &[u8],
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    let mut open = || Ok::<_, std::io::Error>(bytes);
    let streamed = stream::read_stream(&mut open, file, opts, false, &mut |p| {
        out.indicators.append(&mut p.indicators);
        out.rejected.append(&mut p.rejected);
        out.skipped.append(&mut p.skipped);
    })?;
    if streamed {
        return Ok(());
    }
    read_whole(bytes, file, opts, out)
}

/// Read a STIX document whole: parsed as one `serde_json::Value` (JSON
/// lines: each line parsed alone, a bad line rejected), then each object.
/// Used for what is neither a bundle nor JSON lines; kept for those as the
/// reference the stream is checked against (test `stix_stream_equals_whole`,
/// fuzz target `feed_stix`).
pub fn read_whole(
    bytes: &[u8],
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> Result<(), FeedError> {
    let bytes = strip_bom(bytes);
    let mut raw: Vec<(u64, Value)> = Vec::new();
    match serde_json::from_slice::<Value>(bytes) {
        Ok(doc) => {
            let lines = key_lines(bytes, "id");
            let mut vals = Vec::new();
            if !flatten(doc, &mut vals, 0) {
                return Err(malformed(
                    file,
                    "the JSON document is neither a STIX bundle nor a STIX object \
                     (it has no \"type\" and no \"objects\"); check that this is a STIX feed",
                ));
            }
            for v in vals {
                let line = v
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| lines.get(id))
                    .copied()
                    .unwrap_or(0);
                raw.push((line, v));
            }
        }
        Err(e) => {
            if !is_json_lines(bytes) {
                return Err(malformed(
                    file,
                    &format!("invalid JSON: {e}; fix the file or re-export it"),
                ));
            }
            for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
                let lineno = n as u64 + 1;
                let t = line.trim_ascii();
                if t.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<Value>(t) {
                    Ok(v) => {
                        let mut vals = Vec::new();
                        if flatten(v, &mut vals, 0) {
                            raw.extend(vals.into_iter().map(|v| (lineno, v)));
                        } else {
                            out.reject(
                                file,
                                lineno,
                                "line is neither a STIX bundle nor a STIX object (no \"type\")",
                                &String::from_utf8_lossy(t),
                            );
                        }
                    }
                    Err(e) => out.reject(
                        file,
                        lineno,
                        format!("invalid JSON: {e}"),
                        &String::from_utf8_lossy(t),
                    ),
                }
            }
        }
    }

    let mut objs: Vec<(u64, StixObject)> = Vec::with_capacity(raw.len());
    for (line, v) in &raw {
        match StixObject::deserialize(v) {
            Ok(o) => objs.push((*line, o)),
            Err(e) => reject_malformed(v, *line, &e, file, out),
        }
    }
    drop(raw);

    let mut builder = ContextBuilder::new();
    for (_, o) in &objs {
        builder.add(o);
    }
    let (ctx, mut versions) = builder.finish();
    for (line, o) in &objs {
        read_object(o, *line, &ctx, &mut versions, file, opts, out);
    }
    Ok(())
}

/// Reject an object that does not deserialize as a [`StixObject`].
fn reject_malformed(v: &Value, line: u64, e: &serde_json::Error, file: &str, out: &mut ParsedFeed) {
    let what = v
        .get("id")
        .and_then(Value::as_str)
        .map(|id| format!("{id}: "))
        .unwrap_or_default();
    out.reject(
        file,
        line,
        format!("{what}malformed STIX object: {e}"),
        &v.to_string(),
    );
}

/// What one object gives: an indicator object its indicators (or why it
/// gives none), an object that is not an indicator a skip when it is not
/// context. `ctx` is what the whole feed says about its indicators.
fn read_object(
    o: &StixObject,
    line: u64,
    ctx: &Context,
    versions: &mut Versions,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) {
    match o.kind.as_str() {
        "indicator" => read_indicator(o, line, ctx, versions, file, opts, out),
        "observed-data" => out.skip(
            file,
            line,
            "observed-data is an observation, not an indicator",
        ),
        k if k.starts_with("x-") => out.skip(
            file,
            line,
            format!("custom STIX object {k} is not an indicator"),
        ),
        k if CONTEXT_TYPES.contains(&k) || SCO_TYPES.contains(&k) => {}
        k => out.skip(
            file,
            line,
            format!("STIX object type {k} is not an indicator"),
        ),
    }
}

/// Standard objects that give context to indicators (or none) and are not
/// counted as skipped.
const CONTEXT_TYPES: &[&str] = &[
    "identity",
    "marking-definition",
    "relationship",
    "sighting",
    "report",
    "campaign",
    "intrusion-set",
    "threat-actor",
    "malware",
    "malware-analysis",
    "tool",
    "attack-pattern",
    "course-of-action",
    "vulnerability",
    "infrastructure",
    "location",
    "note",
    "opinion",
    "grouping",
    "incident",
    "language-content",
    "extension-definition",
];

/// STIX 2.1 cyber-observable objects: the parts of `observed-data`, which
/// is itself counted.
const SCO_TYPES: &[&str] = &[
    "artifact",
    "autonomous-system",
    "directory",
    "domain-name",
    "email-addr",
    "email-message",
    "file",
    "ipv4-addr",
    "ipv6-addr",
    "mac-addr",
    "mutex",
    "network-traffic",
    "process",
    "software",
    "url",
    "user-account",
    "windows-registry-key",
    "x509-certificate",
];

fn malformed(file: &str, reason: &str) -> FeedError {
    FeedError::Malformed {
        file: file.to_string(),
        format: FeedFormat::Stix,
        reason: reason.to_string(),
    }
}

pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
}

/// More than one non-empty line, and one of the first few parses alone as
/// a JSON object: JSON lines rather than a broken document.
fn is_json_lines(bytes: &[u8]) -> bool {
    let first: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty())
        .take(JSON_LINES_HEAD)
        .collect();
    head_is_json_lines(&first)
}

/// How many non-empty lines [`is_json_lines`] looks at.
const JSON_LINES_HEAD: usize = 5;

/// The rule of [`is_json_lines`] on the first [`JSON_LINES_HEAD`]
/// non-empty lines (trimmed), which is all it reads: the stream applies it
/// to the head of a file without reading the rest.
fn head_is_json_lines(first: &[&[u8]]) -> bool {
    if first.len() < 2 {
        return false;
    }
    first.iter().any(|l| {
        l.first() == Some(&b'{') && serde_json::from_slice::<Value>(l).is_ok_and(|v| v.is_object())
    })
}

/// Unwrap bundles (`{"type":"bundle"}` or a TAXII envelope
/// `{"objects":[...]}`) and arrays into their objects. Returns false when
/// the value is none of these and not an object with a `type`.
fn flatten(v: Value, out: &mut Vec<Value>, depth: u8) -> bool {
    match v {
        Value::Object(mut m) => {
            let ty = m.get("type").and_then(Value::as_str);
            let is_bundle = ty == Some("bundle")
                || (ty.is_none() && m.get("objects").is_some_and(Value::is_array));
            if is_bundle {
                if let Some(Value::Array(items)) = m.remove("objects") {
                    for item in items {
                        push_item(item, out, depth);
                    }
                }
                true
            } else if ty.is_some() {
                out.push(Value::Object(m));
                true
            } else {
                false
            }
        }
        Value::Array(items) => {
            for item in items {
                push_item(item, out, depth);
            }
            true
        }
        _ => false,
    }
}

/// One element of a bundle or array: a bundle nested once is unwrapped,
/// anything else is kept as an object (to be checked later).
fn push_item(item: Value, out: &mut Vec<Value>, depth: u8) {
    let nested_bundle = item.get("type").and_then(Value::as_str) == Some("bundle");
    if nested_bundle && depth == 0 {
        flatten(item, out, 1);
    } else {
        out.push(item);
    }
}

/// Does `"key" : "value"` occur in `text` (whitespace allowed)?
pub(crate) fn has_key_value(text: &str, key: &str, value: &str) -> bool {
    let needle = format!("\"{key}\"");
    text.match_indices(&needle).any(|(i, _)| {
        let rest = text[i + needle.len()..].trim_start();
        rest.strip_prefix(':')
            .map(|r| r.trim_start())
            .and_then(|r| r.strip_prefix('"'))
            .and_then(|r| r.strip_prefix(value))
            .is_some_and(|r| r.starts_with('"'))
    })
}

/// Map each string value of `"key": "…"` to the 1-based line where it first
/// occurs. Used to give objects in a JSON document a line number.
pub(crate) fn key_lines(bytes: &[u8], key: &str) -> HashMap<String, u64> {
    let needle = format!("\"{key}\"");
    let mut map = HashMap::new();
    let mut line = 1u64;
    let mut counted = 0usize;
    for pos in memchr::memmem::find_iter(bytes, needle.as_bytes()) {
        let mut i = pos + needle.len();
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'"') {
            continue;
        }
        let start = i + 1;
        let Some(len) = memchr::memchr2(b'"', b'\\', &bytes[start..]) else {
            continue;
        };
        if bytes[start + len] != b'"' {
            continue;
        }
        line += memchr::memchr_iter(b'\n', &bytes[counted..pos]).count() as u64;
        counted = pos;
        if let Ok(s) = std::str::from_utf8(&bytes[start..start + len]) {
            map.entry(s.to_string()).or_insert(line);
        }
    }
    map
}

/// `null` is read as the default (STIX producers write `"labels": null`).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The properties of STIX objects that orbwatch reads. Unknown properties
/// are ignored; a property of the wrong type rejects the object.
#[derive(Debug, Deserialize)]
struct StixObject {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    created_by_ref: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    object_marking_refs: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    labels: Vec<String>,
    #[serde(default)]
    revoked: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    // indicator
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    pattern_type: Option<String>,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_until: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    indicator_types: Vec<String>,
    #[serde(default)]
    confidence: Option<Value>,
    // relationship
    #[serde(default)]
    relationship_type: Option<String>,
    #[serde(default)]
    source_ref: Option<String>,
    #[serde(default)]
    target_ref: Option<String>,
    // marking-definition
    #[serde(default)]
    definition_type: Option<String>,
    #[serde(default)]
    definition: Option<Value>,
    #[serde(default)]
    extensions: Option<Value>,
    // report
    #[serde(default, deserialize_with = "null_default")]
    object_refs: Vec<String>,
    // MISP custom attribute objects
    #[serde(default)]
    x_misp_type: Option<Value>,
    #[serde(default)]
    x_misp_value: Option<Value>,
}

/// TLP marking-definition ids fixed by the STIX 2.0/2.1 specifications
/// (TLP 1.0) and by the OASIS TLP 2.0 extension.
const WELL_KNOWN_TLP: &[(&str, &str)] = &[
    (
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
        "white",
    ),
    (
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        "green",
    ),
    (
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
        "amber",
    ),
    (
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
        "red",
    ),
    (
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        "clear",
    ),
    (
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        "green",
    ),
    (
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        "amber",
    ),
    (
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        "amber+strict",
    ),
    (
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        "red",
    ),
];

/// The TLP level of a well-known TLP marking-definition id.
pub(crate) fn well_known_tlp(id: &str) -> Option<&'static str> {
    WELL_KNOWN_TLP
        .iter()
        .find(|(k, _)| *k == id.trim())
        .map(|(_, l)| *l)
}

/// Normalise a TLP level (`TLP:AMBER`, `amber`, `"white"`) to lower case,
/// or `None` if it is not one.
pub(crate) fn normalise_tlp(s: &str) -> Option<String> {
    let s = s.trim().trim_matches('"').trim();
    let lower = s.to_ascii_lowercase();
    let level = lower.strip_prefix("tlp:").unwrap_or(&lower).trim();
    let level = level.trim_matches('"');
    matches!(
        level,
        "white" | "clear" | "green" | "amber" | "amber+strict" | "red"
    )
    .then(|| level.to_string())
}

/// Rank of a TLP level: higher is more restrictive.
pub(crate) fn tlp_rank(level: &str) -> u8 {
    match level {
        "white" | "clear" => 0,
        "green" => 1,
        "amber" => 2,
        "amber+strict" => 3,
        _ => 4,
    }
}

/// Keep the more restrictive of two TLP levels.
pub(crate) fn stricter_tlp(current: &mut Option<String>, new: String) {
    if current
        .as_deref()
        .is_none_or(|c| tlp_rank(&new) > tlp_rank(c))
    {
        *current = Some(new);
    }
}

/// Coerce a confidence given as a number or numeric string to 0–100.
pub(crate) fn coerce_confidence(v: &Value) -> Option<u8> {
    let f = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    Some(f.round().min(100.0) as u8)
}

/// A STIX identifier as a map key: `<type>--<uuid>` with a lower-case
/// RFC 4122 uuid (what producers write) as the type's number and the
/// uuid's 128 bits, 24 bytes in all; anything else as its text. Equal keys
/// are equal strings, so lookups answer as they would on the text, and a
/// bundle of a million indicators keeps tens of megabytes of keys rather
/// than a hundred.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdKey {
    Uuid { ty: u32, uuid: [u64; 2] },
    Text(Box<str>),
}

/// The object types met, numbered, for [`IdKey`].
#[derive(Default)]
struct IdKeys {
    types: HashMap<Box<str>, u32>,
}

impl IdKeys {
    /// The key of `id`, numbering its type if it is new.
    fn key(&mut self, id: &str) -> IdKey {
        match split_canonical(id) {
            Some((ty, uuid)) => {
                let next = self.types.len() as u32;
                let ty = *self.types.entry(ty.into()).or_insert(next);
                IdKey::Uuid { ty, uuid }
            }
            None => IdKey::Text(id.into()),
        }
    }

    /// The key of `id` if any key made so far can equal it.
    fn find(&self, id: &str) -> Option<IdKey> {
        match split_canonical(id) {
            Some((ty, uuid)) => self.types.get(ty).map(|&ty| IdKey::Uuid { ty, uuid }),
            None => Some(IdKey::Text(id.into())),
        }
    }
}

/// `<type>--<uuid>` with a lower-case hyphenated uuid: the type and the
/// uuid's value. `None` for any other text (upper case, braces, no uuid),
/// which is then kept as text, so that two ids are equal keys exactly when
/// they are equal strings.
fn split_canonical(id: &str) -> Option<(&str, [u64; 2])> {
    let (ty, uuid) = id.rsplit_once("--")?;
    let b = uuid.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u128::from(d);
    }
    Some((ty, [(v >> 64) as u64, v as u64]))
}

/// The relationships an indicator's tags come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelKind {
    /// indicator `indicates` campaign, actor, malware…
    Indicates,
    /// campaign `attributed-to` actor.
    AttributedTo,
}

struct ReportInfo {
    name: Option<String>,
    tlp: Option<String>,
    actors: Vec<String>,
}

/// A report until every marking definition and MISP attribute is known.
struct PendingReport {
    name: Option<String>,
    marking_refs: Vec<String>,
    labels: Vec<String>,
    object_refs: Vec<IdKey>,
}

/// What the non-indicator objects of a feed say about its indicators.
struct Context {
    keys: IdKeys,
    identities: HashMap<IdKey, String>,
    markings: HashMap<IdKey, String>,
    /// id → (type, name) for campaigns, intrusion sets, actors, malware…
    named: HashMap<IdKey, (&'static str, String)>,
    /// source id → (relationship, target id), the kinds orbwatch uses.
    rels: HashMap<IdKey, Vec<(RelKind, IdKey)>>,
    reports: Vec<ReportInfo>,
    reports_of: HashMap<IdKey, Vec<u32>>,
}

impl Context {
    fn key(&self, id: &str) -> Option<IdKey> {
        self.keys.find(id)
    }
}

/// The versions of each indicator id: the newest `modified`, and whether
/// an indicator of that version was read already (a later copy of it is a
/// duplicate; an older version is superseded).
#[derive(Default)]
struct Versions {
    newest: HashMap<IdKey, (Option<Timestamp>, bool)>,
}

/// Builds a [`Context`] one object at a time, in the feed's order, so that
/// a stream keeps what the objects say, not the objects.
struct ContextBuilder {
    ctx: Context,
    versions: Versions,
    pending: Vec<PendingReport>,
    misp_actors: HashMap<IdKey, String>,
}

impl ContextBuilder {
    fn new() -> Self {
        let mut keys = IdKeys::default();
        let markings = WELL_KNOWN_TLP
            .iter()
            .map(|(id, l)| (keys.key(id), l.to_string()))
            .collect();
        ContextBuilder {
            ctx: Context {
                keys,
                identities: HashMap::new(),
                markings,
                named: HashMap::new(),
                rels: HashMap::new(),
                reports: Vec::new(),
                reports_of: HashMap::new(),
            },
            versions: Versions::default(),
            pending: Vec::new(),
            misp_actors: HashMap::new(),
        }
    }

    fn add(&mut self, o: &StixObject) {
        let c = &mut self.ctx;
        if o.kind == "report" {
            // A report needs no id to lend its name and TLP.
            self.pending.push(PendingReport {
                name: o.name.clone(),
                marking_refs: o.object_marking_refs.clone(),
                labels: o.labels.clone(),
                object_refs: o.object_refs.iter().map(|r| c.keys.key(r)).collect(),
            });
            return;
        }
        let Some(id) = o.id.as_deref() else { return };
        match o.kind.as_str() {
            "identity" => {
                if let Some(n) = o.name.as_deref() {
                    c.identities.insert(c.keys.key(id), n.to_string());
                }
            }
            "marking-definition" => {
                if let Some(l) = marking_tlp(o) {
                    c.markings.insert(c.keys.key(id), l);
                }
            }
            kind @ ("campaign" | "intrusion-set" | "threat-actor" | "malware" | "tool"
            | "infrastructure") => {
                let kind: &'static str = match kind {
                    "campaign" => "campaign",
                    "intrusion-set" => "intrusion-set",
                    "threat-actor" => "threat-actor",
                    "malware" => "malware",
                    "tool" => "tool",
                    _ => "infrastructure",
                };
                if let Some(n) = o.name.as_deref() {
                    c.named.insert(c.keys.key(id), (kind, n.to_string()));
                }
            }
            "relationship" => {
                if let (Some(rt), Some(s), Some(t)) = (
                    o.relationship_type.as_deref(),
                    o.source_ref.as_deref(),
                    o.target_ref.as_deref(),
                ) {
                    let kind = if rt.eq_ignore_ascii_case("indicates") {
                        RelKind::Indicates
                    } else if rt.eq_ignore_ascii_case("attributed-to") {
                        RelKind::AttributedTo
                    } else {
                        return;
                    };
                    let (s, t) = (c.keys.key(s), c.keys.key(t));
                    c.rels.entry(s).or_default().push((kind, t));
                }
            }
            "x-misp-attribute" => {
                let ty = o.x_misp_type.as_ref().and_then(Value::as_str);
                let val = o.x_misp_value.as_ref().and_then(Value::as_str);
                if let (Some("threat-actor"), Some(v)) = (ty, val) {
                    self.misp_actors.insert(c.keys.key(id), v.to_string());
                }
            }
            "indicator" => {
                let m = o.modified.as_deref().and_then(parse_timestamp);
                let e = self
                    .versions
                    .newest
                    .entry(c.keys.key(id))
                    .or_insert((m, false));
                if m > e.0 {
                    e.0 = m;
                }
            }
            _ => {}
        }
    }

    /// The context, once every object has been added: reports take the
    /// markings and MISP actors defined anywhere in the feed.
    fn finish(self) -> (Context, Versions) {
        let mut c = self.ctx;
        for rep in self.pending {
            let mut tlp = None;
            for m in &rep.marking_refs {
                if let Some(l) = c.key(m).and_then(|k| c.markings.get(&k)) {
                    stricter_tlp(&mut tlp, l.clone());
                }
            }
            if tlp.is_none() {
                // Only `TLP:x` labels, not a bare `red` label.
                for l in &rep.labels {
                    if l.trim().to_ascii_lowercase().starts_with("tlp:")
                        && let Some(t) = normalise_tlp(l)
                    {
                        stricter_tlp(&mut tlp, t);
                    }
                }
            }
            let actors = rep
                .object_refs
                .iter()
                .filter_map(|r| self.misp_actors.get(r).cloned())
                .collect();
            let idx = c.reports.len() as u32;
            c.reports.push(ReportInfo {
                name: rep.name,
                tlp,
                actors,
            });
            for r in rep.object_refs {
                c.reports_of.entry(r).or_default().push(idx);
            }
        }
        (c, self.versions)
    }
}

/// The TLP level a marking definition stands for, if it is a TLP marking.
fn marking_tlp(o: &StixObject) -> Option<String> {
    if let Some(l) = o
        .definition
        .as_ref()
        .and_then(|d| d.get("tlp"))
        .and_then(Value::as_str)
        .and_then(normalise_tlp)
    {
        return Some(l);
    }
    if let Some(Value::Object(exts)) = &o.extensions {
        for ext in exts.values() {
            if let Some(l) = ext
                .get("tlp_2_0")
                .and_then(Value::as_str)
                .and_then(normalise_tlp)
            {
                return Some(l);
            }
        }
    }
    for s in [o.name.as_deref(), o.definition_type.as_deref()]
        .into_iter()
        .flatten()
    {
        if s.trim().to_ascii_lowercase().starts_with("tlp:") {
            return normalise_tlp(s);
        }
    }
    None
}

/// What an object path stands for.
enum Target<'p> {
    /// A value with a known type.
    Value(TypeHint),
    /// An address object's value: `ISSUBSET` makes sense on it.
    Address,
    /// `network-traffic:src_ref.value` / `dst_ref.value`.
    RefValue(&'p str),
    /// `network-traffic:*_ref.type`: a constraint on the reference.
    RefType,
    UnsupportedHash(&'p str),
    Unsupported,
}

fn target(c: &Comparison) -> Target<'_> {
    if c.path
        .components
        .iter()
        .any(|p| matches!(p, stix_pattern::PathComponent::Index(_)))
    {
        return Target::Unsupported;
    }
    let props = c.path.properties();
    match (c.path.object_type.as_str(), props.as_slice()) {
        ("ipv4-addr" | "ipv6-addr", ["value"]) => Target::Address,
        ("domain-name", ["value"]) => Target::Value(TypeHint::Domain),
        ("url", ["value"]) => Target::Value(TypeHint::Url),
        ("file", ["hashes", algo]) => match HashAlgo::from_name(algo) {
            Some(a) => Target::Value(TypeHint::Hash(Some(a))),
            None => Target::UnsupportedHash(algo),
        },
        ("x509-certificate", ["hashes", algo]) => match HashAlgo::from_name(algo) {
            Some(a) => Target::Value(TypeHint::Cert(Some(a))),
            None => Target::UnsupportedHash(algo),
        },
        ("network-traffic", [r @ ("src_ref" | "dst_ref"), "value"]) => Target::RefValue(r),
        ("network-traffic", ["src_ref" | "dst_ref", "type"]) => Target::RefType,
        _ => Target::Unsupported,
    }
}

/// How a comparison contributes to an indicator object.
enum Outcome {
    /// Values to parse: (text, hint, reference role).
    Values(Vec<(String, Option<TypeHint>, Option<String>)>),
    Ignore,
    Skip(String),
    Reject(String),
}

fn classify(c: &Comparison) -> Outcome {
    let t = target(c);
    match t {
        Target::RefType => return Outcome::Ignore,
        Target::Unsupported => {
            return Outcome::Skip(format!(
                "object path {} is not one orbwatch can match",
                path_kind(c)
            ));
        }
        Target::UnsupportedHash(a) => {
            return Outcome::Skip(format!("hash algorithm {a} is not supported"));
        }
        _ => {}
    }
    if c.negated || c.op == Operator::Neq {
        return Outcome::Skip(format!(
            "negated comparison on {} names what the indicator is not",
            path_kind(c)
        ));
    }
    let (hint, role) = match &t {
        Target::Value(h) => (Some(*h), None),
        Target::Address => (Some(TypeHint::Ip), None),
        Target::RefValue(r) => (None, Some(format!("stix-ref={r}"))),
        _ => return Outcome::Ignore,
    };
    let strings = |lits: &[&Literal]| -> Result<Vec<String>, String> {
        lits.iter()
            .map(|l| {
                l.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{c}` compares with {l}, which is not a string"))
            })
            .collect()
    };
    let texts = match (c.op, &c.operand) {
        (Operator::Eq, Operand::Single(l)) => strings(&[l]),
        (Operator::In, Operand::Set(items)) => strings(&items.iter().collect::<Vec<_>>()),
        (Operator::IsSubset, Operand::Single(l)) => match t {
            Target::Address | Target::RefValue(_) => {
                return match strings(&[l]) {
                    Ok(v) => Outcome::Values(
                        v.into_iter()
                            .map(|s| (s, Some(TypeHint::Cidr), role.clone()))
                            .collect(),
                    ),
                    Err(e) => Outcome::Reject(e),
                };
            }
            _ => {
                return Outcome::Skip(format!(
                    "ISSUBSET on {} does not name a value",
                    path_kind(c)
                ));
            }
        },
        (op, _) => {
            return Outcome::Skip(format!(
                "operator {} does not name an exact value",
                op.as_str()
            ));
        }
    };
    match texts {
        Ok(v) => Outcome::Values(v.into_iter().map(|s| (s, hint, role.clone())).collect()),
        Err(e) => Outcome::Reject(e),
    }
}

/// The path of a comparison for messages that are grouped by reason: list
/// indices and quoting normalised.
fn path_kind(c: &Comparison) -> String {
    format!("{}:{}", c.path.object_type, c.path.properties().join("."))
}

/// Split labels into roles, TLP and other tags. Returns the TLP a label
/// sets and whether a MISP `to_ids="False"` label was present.
pub(crate) fn classify_labels(labels: &[String], tags: &mut Tags) -> (Option<String>, bool) {
    let mut tlp = None;
    let mut no_ids = false;
    for l in labels {
        let t = l.trim();
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("tlp:")
            && let Some(level) = normalise_tlp(t)
        {
            stricter_tlp(&mut tlp, level);
            continue;
        }
        if t.contains([':', '=', '"']) {
            if lower.replace(' ', "") == "misp:to_ids=\"false\"" {
                no_ids = true;
            }
            Tags::push_unique(&mut tags.other, t);
            continue;
        }
        Tags::push_unique(&mut tags.roles, lower.as_str());
        if lower == "anonymization" || lower == "compromised" {
            Tags::push_unique(&mut tags.roles, "relay");
        }
    }
    (tlp, no_ids)
}

fn read_indicator(
    o: &StixObject,
    line: u64,
    ctx: &Context,
    versions: &mut Versions,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) {
    let pattern_raw = o.pattern.as_deref().unwrap_or("");
    let Some(id) = o.id.as_deref() else {
        out.reject(
            file,
            line,
            "indicator has no id; STIX requires one and sightings refer to it",
            pattern_raw,
        );
        return;
    };
    if o.revoked == Some(true) {
        out.skip(file, line, "revoked indicator");
        return;
    }
    let modified = o.modified.as_deref().and_then(parse_timestamp);
    // Every indicator of the feed was counted in `versions`, so this one's
    // version is there, and it is the newest unless it is older.
    if let Some(v) = ctx.key(id).and_then(|k| versions.newest.get_mut(&k)) {
        if modified < v.0 {
            out.skip(
                file,
                line,
                "older version of an indicator that the feed also has in a newer version",
            );
            return;
        }
        if v.1 {
            out.skip(
                file,
                line,
                "duplicate of an indicator already read (same id and version)",
            );
            return;
        }
        v.1 = true;
    }
    if let Some(pt) = o.pattern_type.as_deref() {
        let pt = pt.trim();
        if !pt.eq_ignore_ascii_case("stix") {
            out.skip(
                file,
                line,
                format!(
                    "pattern_type {} is not a STIX pattern",
                    pt.to_ascii_lowercase()
                ),
            );
            return;
        }
    }
    let Some(pattern) = o.pattern.as_deref() else {
        out.reject(file, line, format!("{id}: indicator has no pattern"), id);
        return;
    };
    let parsed = match stix_pattern::parse(pattern) {
        Ok(p) => p,
        Err(e) => {
            out.reject(
                file,
                line,
                format!("{id}: STIX pattern does not parse at {e}"),
                pattern,
            );
            return;
        }
    };
    let mut time = |field: &str, v: Option<&str>| -> Result<Option<Timestamp>, ()> {
        match v {
            None => Ok(None),
            Some(s) => match parse_timestamp(s) {
                Some(t) => Ok(Some(t)),
                None => {
                    out.reject(
                        file,
                        line,
                        format!("{id}: {field} `{s}` is not a timestamp"),
                        pattern,
                    );
                    Err(())
                }
            },
        }
    };
    let Ok(valid_from) = time("valid_from", o.valid_from.as_deref()) else {
        return;
    };
    let Ok(valid_until) = time("valid_until", o.valid_until.as_deref()) else {
        return;
    };
    if let (Some(f), Some(u)) = (valid_from, valid_until)
        && u < f
    {
        out.reject(
            file,
            line,
            format!("{id}: valid_until {u} is before valid_from {f}"),
            pattern,
        );
        return;
    }

    // Values first: nothing else matters if the pattern names none.
    let values = pattern_values(&parsed, id, pattern, file, line, out);
    if values.is_empty() {
        return;
    }

    let mut tags = Tags::default();
    let mut types = o.indicator_types.clone();
    types.extend(o.labels.iter().cloned());
    let (label_tlp, no_ids) = classify_labels(&types, &mut tags);
    if let Some(name) = o
        .created_by_ref
        .as_deref()
        .and_then(|r| ctx.key(r))
        .and_then(|k| ctx.identities.get(&k))
    {
        Tags::push_unique(&mut tags.other, format!("source={name}"));
    }
    for m in &o.object_marking_refs {
        if let Some(l) = ctx.key(m).and_then(|k| ctx.markings.get(&k)) {
            stricter_tlp(&mut tags.tlp, l.clone());
        }
    }
    if tags.tlp.is_none() {
        tags.tlp = label_tlp;
    }
    let key = ctx.key(id);
    let mut campaigns = Vec::new();
    for (rt, target) in key
        .as_ref()
        .and_then(|k| ctx.rels.get(k))
        .into_iter()
        .flatten()
    {
        if *rt != RelKind::Indicates {
            continue;
        }
        if let Some((kind, name)) = ctx.named.get(target) {
            add_named(kind, name, &mut tags);
            if *kind == "campaign" {
                campaigns.push(target);
            }
        }
    }
    for camp in campaigns {
        for (rt, target) in ctx.rels.get(camp).into_iter().flatten() {
            if *rt == RelKind::AttributedTo
                && let Some((kind, name)) = ctx.named.get(target)
            {
                add_named(kind, name, &mut tags);
            }
        }
    }
    for &r in key
        .as_ref()
        .and_then(|k| ctx.reports_of.get(k))
        .into_iter()
        .flatten()
    {
        let Some(rep) = ctx.reports.get(r as usize) else {
            continue;
        };
        if let Some(n) = &rep.name {
            Tags::push_unique(&mut tags.other, format!("report={n}"));
        }
        for a in &rep.actors {
            Tags::push_unique(&mut tags.actors, a.as_str());
        }
        if tags.tlp.is_none() {
            tags.tlp = rep.tlp.clone();
        }
    }
    let mut confidence = o.confidence.as_ref().and_then(coerce_confidence);
    if no_ids {
        confidence = Some(super::misp::lower_for_no_ids(confidence));
        Tags::push_unique(&mut tags.other, "to_ids=false");
    }
    let description = match (o.name.as_deref(), o.description.as_deref()) {
        (Some(n), Some(d)) if !n.trim().is_empty() && !d.trim().is_empty() => {
            Some(format!("{} — {}", n.trim(), d.trim()))
        }
        (Some(n), _) if !n.trim().is_empty() => Some(n.trim().to_string()),
        (_, Some(d)) if !d.trim().is_empty() => Some(d.trim().to_string()),
        _ => None,
    };
    let published = o.created.as_deref().and_then(parse_timestamp);
    let shared = PatternRecord {
        record_id: Some(id.to_string()),
        valid_from,
        valid_until,
        first_seen: None,
        last_seen: None,
        published,
        confidence,
        description,
        tags,
    };
    push_pattern_values(values, &shared, file, line, opts, out);
}

/// What every indicator of one STIX pattern shares: its indicator object
/// (a bundle, JSON lines) or its row (a CSV export of indicators).
pub(crate) struct PatternRecord {
    pub record_id: Option<String>,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    pub published: Option<Timestamp>,
    pub confidence: Option<u8>,
    pub description: Option<String>,
    pub tags: Tags,
}

/// One indicator per value a pattern names, with the record's window,
/// confidence and tags, and the roles the value was named under.
pub(crate) fn push_pattern_values(
    values: Vec<(IndicatorValue, Vec<String>)>,
    rec: &PatternRecord,
    file: &str,
    line: u64,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) {
    for (value, roles) in values {
        let mut ind = Indicator::new(
            value,
            Provenance {
                feed: opts.feed_name.clone(),
                file: file.to_string(),
                line,
                record_id: rec.record_id.clone(),
            },
        );
        ind.valid_from = rec.valid_from;
        ind.valid_until = rec.valid_until;
        ind.first_seen = rec.first_seen;
        ind.last_seen = rec.last_seen;
        ind.published = rec.published;
        ind.confidence = rec.confidence;
        ind.description = rec.description.clone();
        ind.tags = rec.tags.clone();
        for r in roles {
            Tags::push_unique(&mut ind.tags.other, r);
        }
        out.indicators.push(ind);
    }
}

/// The values a parsed STIX pattern names, each with the reference roles
/// (`stix-ref=src_ref`…) it was named under. Comparisons that name no
/// value are counted in `out` as skipped, values that do not parse as
/// rejected, both at `line` and prefixed with `id`. Shared by the STIX
/// reader and the CSV export reader ([`super::stix_csv`]), so that a
/// pattern means the same in both.
pub(crate) fn pattern_values(
    parsed: &stix_pattern::Pattern,
    id: &str,
    pattern: &str,
    file: &str,
    line: u64,
    out: &mut ParsedFeed,
) -> Vec<(IndicatorValue, Vec<String>)> {
    let mut values: Vec<(IndicatorValue, Vec<String>)> = Vec::new();
    let mut traces = 0usize;
    for c in parsed.comparisons() {
        match classify(c) {
            Outcome::Ignore => {}
            Outcome::Skip(reason) => {
                traces += 1;
                out.skip(file, line, reason);
            }
            Outcome::Reject(reason) => {
                traces += 1;
                out.reject(file, line, format!("{id}: {reason}"), pattern);
            }
            Outcome::Values(items) => {
                for (text, hint, role) in items {
                    let parsed = parse_value(&text, hint).and_then(|v| match (hint, &v) {
                        // A reference may point at an address or a domain name.
                        (
                            None,
                            IndicatorValue::Ip(_)
                            | IndicatorValue::Cidr(_)
                            | IndicatorValue::Range { .. }
                            | IndicatorValue::Domain(_),
                        ) => Ok(v),
                        (None, _) => Err(format!("`{text}` is not an address or a domain name")),
                        _ => Ok(v),
                    });
                    match parsed {
                        Ok(v) => match values.iter_mut().find(|(x, _)| *x == v) {
                            Some((_, roles)) => roles.extend(role),
                            None => values.push((v, role.into_iter().collect())),
                        },
                        Err(e) => {
                            traces += 1;
                            out.reject(file, line, format!("{id}: {} in `{c}`", e), pattern);
                        }
                    }
                }
            }
        }
    }
    for p in parsed.exists() {
        traces += 1;
        out.skip(
            file,
            line,
            format!(
                "EXISTS {}:{} does not name a value",
                p.object_type,
                p.properties().join(".")
            ),
        );
    }
    if values.is_empty() && traces == 0 {
        out.skip(file, line, "STIX pattern names no value orbwatch can match");
    }
    values
}

fn add_named(kind: &str, name: &str, tags: &mut Tags) {
    match kind {
        "campaign" => Tags::push_unique(&mut tags.campaigns, name),
        "intrusion-set" | "threat-actor" => Tags::push_unique(&mut tags.actors, name),
        other => Tags::push_unique(&mut tags.other, format!("{other}={name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_detection() {
        assert!(has_key_value(r#"{"type" : "bundle"}"#, "type", "bundle"));
        assert!(!has_key_value(r#"{"type": "bundles"}"#, "type", "bundle"));
        assert!(looks_like(
            r#"{"type":"indicator","pattern":"[ipv4-addr:value = '1.2.3.4']"}"#
        ));
        assert!(!looks_like(r#"{"Event": {"info": "x"}}"#));
        // A STIX id is enough, wherever the object's type is written.
        assert!(looks_like(
            r#"{"created": "x", "id": "attack-pattern--a782ebe2-daba-42c7-bc82-e8e9d923162d"}"#
        ));
        assert!(looks_like(
            r#"{"id" : "x-mitre-tactic--4ca45d45-df4d-4613-8980-bac22d278fa5"}"#
        ));
        // Not a type, not a uuid, not the `id` key: no.
        assert!(!looks_like(
            r#"{"id": "event--a782ebe2-daba-42c7-bc82-e8e9d923162d"}"#
        ));
        assert!(!looks_like(r#"{"id": "indicator--1"}"#));
        assert!(!looks_like(
            r#"{"ref": "indicator--a782ebe2-daba-42c7-bc82-e8e9d923162d"}"#
        ));
    }

    #[test]
    fn probing_the_first_value() {
        let p = |s: &str| probe_json(s.as_bytes());
        assert_eq!(p(r#"{"objects": [], "type": "bundle"}"#), JsonProbe::Stix);
        assert_eq!(
            p(r#"{"type": "note", "spec_version": "2.1"} trailing"#),
            JsonProbe::Stix
        );
        assert_eq!(
            p(r#"[{"type": "malware", "id": "malware--x"}, 1, [2]]"#),
            JsonProbe::Stix
        );
        assert_eq!(p(r#"{"response": [{"Event": {}}]}"#), JsonProbe::Misp);
        assert_eq!(
            p(r#"{"type": "ip", "id": "7", "nested": {"type": "bundle"}}"#),
            JsonProbe::Other("JSON with the keys `type`, `id`, `nested`".into())
        );
        assert!(matches!(p("{\"a\": "), JsonProbe::Invalid(_)));
    }

    #[test]
    fn lines_of_ids() {
        let text = b"{\n \"id\": \"a\",\n \"objects\": [\n  {\"id\" : \"b\"},\n  {\"x\": \"id\", \"id\":\"c\"}]}";
        let m = key_lines(text, "id");
        assert_eq!(m.get("a"), Some(&2));
        assert_eq!(m.get("b"), Some(&4));
        assert_eq!(m.get("c"), Some(&5));
    }

    #[test]
    fn tlp_names() {
        assert_eq!(
            normalise_tlp("TLP:AMBER+STRICT").as_deref(),
            Some("amber+strict")
        );
        assert_eq!(normalise_tlp(" TLP:WHITE").as_deref(), Some("white"));
        assert_eq!(normalise_tlp("tlp:ex:chr"), None);
        let mut t = Some("green".to_string());
        stricter_tlp(&mut t, "white".into());
        assert_eq!(t.as_deref(), Some("green"));
        stricter_tlp(&mut t, "red".into());
        assert_eq!(t.as_deref(), Some("red"));
    }
}
