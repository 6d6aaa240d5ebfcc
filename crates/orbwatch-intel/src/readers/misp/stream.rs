//! A MISP event file read in memory bounded by one attribute, not by the
//! document: a 170 MB event of a million attributes took 4 GB as one
//! `serde_json::Value`.
//!
//! An event says things about all of its attributes (tags, galaxies,
//! `threat-actor` attributes, dates, creator) that MISP writes anywhere in
//! the event, often after the attributes (`Tag` comes last in MISP's own
//! export). So the file is read twice, each time as a stream of JSON
//! tokens: the first pass keeps each event's head and the metadata of its
//! objects (a few hundred bytes each) and skips the attribute values; the
//! second pass turns each attribute into indicators as it is read, with
//! its event's head already known, and hands them on.
//!
//! The answer is that of [`super::read_event_file`] on the same bytes
//! (the test `misp_stream_equals_whole` compares them on every MISP file of
//! the corpus and on hostile variants, and the `feed_misp` fuzz target on
//! whatever it makes). Two kinds of file are left to the whole reader:
//! - one in which the first pass finds no event: the whole reader explains
//!   what it is (a manifest, a STIX file…);
//! - one that repeats a key in an event, an object or a wrapper of events.
//!   Such JSON is ambiguous (RFC 8259 §4); serde_json's map, like Python's
//!   `json` (MISP's own language), keeps the last value, which a stream
//!   that has already handed on the first cannot do.
//!
//! Bytes that are not UTF-8 make the file an error anywhere in it, as for
//! the whole reader: serde_json checks only the strings it keeps, and the
//! stream skips most of them.

use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::rc::Rc;

use crate::readers::json_io::{JsonInput, Utf8Checked};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    EventDefaults, EventHead, EventInfo, Loose, MispAttribute, MispObject, event_info, is_deleted,
    prefix, read_attribute,
};
use crate::readers::{FeedError, FeedFormat, ParsedFeed, ReadOptions, apply_window_policy};

/// What the first pass learns about one JSON object that may be an event.
#[derive(Default)]
struct EventCtx {
    /// The value of an `Event` key: an event whatever its keys.
    forced: bool,
    /// Found under the `response` of an object that also has `Event`,
    /// which the whole reader does not search.
    excluded: bool,
    /// `Attribute` or `Object` was there but not a list.
    shape_error: Option<String>,
    /// Event keys seen (`Attribute`, `Object`, or `info` with `uuid` or
    /// `date`), and no `Event` key: the object is an event, not a wrapper.
    has_attribute_or_object: bool,
    has_info: bool,
    has_uuid_or_date: bool,
    has_event_key: bool,
    has_response_key: bool,
    uuid: Option<String>,
    line: u64,
    /// The head fields, raw, until the pass ends.
    head: serde_json::Map<String, Value>,
    /// `threat-actor` values: (value, deleted, object index).
    actors: Vec<(String, bool, Option<usize>)>,
    /// Each object's metadata, or why it is malformed.
    objects: Vec<Result<MispObject, BadObject>>,
    /// Built after the first pass: the event's info, or why the event is
    /// malformed.
    info: Option<Result<EventInfo, String>>,
}

impl EventCtx {
    fn is_event(&self) -> bool {
        !self.excluded
            && (self.forced
                || (!self.has_event_key
                    && !self.has_response_key
                    && (self.has_attribute_or_object || (self.has_info && self.has_uuid_or_date))))
    }
}

/// Why an object is malformed, its line and uuid.
type BadObject = (String, u64, Option<String>);

/// The head keys the first pass keeps.
const HEAD_KEYS: [&str; 7] = [
    "info",
    "date",
    "timestamp",
    "publish_timestamp",
    "Orgc",
    "Tag",
    "Galaxy",
];

/// The object keys the first pass keeps (not its attributes).
const OBJECT_KEYS: [&str; 6] = [
    "name",
    "comment",
    "deleted",
    "first_seen",
    "last_seen",
    "uuid",
];

/// State shared by both passes.
struct Walk<'w> {
    second: bool,
    line: Rc<Cell<u64>>,
    events: Vec<EventCtx>,
    next_event: usize,
    file: &'w str,
    opts: &'w ReadOptions,
    /// The second pass's output for one attribute, drained by `sink`.
    out: ParsedFeed,
    /// Set by an `Attribute` or `Object` value that is not a list (first
    /// pass), for the object or event that holds it.
    list_error: Option<String>,
    /// A key repeated in an event, an object or a wrapper (first pass):
    /// the file is left to the whole reader.
    repeated_key: bool,
    sink: &'w mut dyn FnMut(&mut ParsedFeed),
    /// The event's summary in a feed's manifest, for what the event file
    /// leaves out.
    defaults: Option<&'w EventDefaults>,
    /// `misp`, or `misp-feed` for an event of a feed folder (errors say it).
    format: FeedFormat,
}

/// Read the MISP event file that `open` opens (it is called twice), as
/// [`super::read_event_file`] would, handing what each attribute gave
/// to `sink` (indicators with the window policy applied, rejected and
/// skipped entries); `sink` drains what it takes. `Ok(false)` means that
/// nothing was handed on and the file must be read whole instead: the
/// first pass found no event (the whole reader explains what the file
/// is), or a key repeated in an event (see the module's doc).
pub fn read_event_stream<R: Read>(
    open: &mut dyn FnMut() -> std::io::Result<R>,
    file: &str,
    opts: &ReadOptions,
    sink: &mut dyn FnMut(&mut ParsedFeed),
) -> Result<bool, FeedError> {
    read_events_streamed(open, file, opts, None, FeedFormat::Misp, sink)
}

/// [`read_event_stream`] for an event of a MISP feed folder as well:
/// `defaults` is its summary in the manifest, `format` is named in errors.
pub(super) fn read_events_streamed<R: Read>(
    open: &mut dyn FnMut() -> std::io::Result<R>,
    file: &str,
    opts: &ReadOptions,
    defaults: Option<&EventDefaults>,
    format: FeedFormat,
    sink: &mut dyn FnMut(&mut ParsedFeed),
) -> Result<bool, FeedError> {
    let mut walk = Walk {
        second: false,
        line: Rc::new(Cell::new(1)),
        events: Vec::new(),
        next_event: 0,
        file,
        opts,
        out: ParsedFeed::default(),
        list_error: None,
        repeated_key: false,
        sink,
        defaults,
        format,
    };
    run_pass(&mut walk, open)?;
    if walk.repeated_key || !walk.events.iter().any(EventCtx::is_event) {
        return Ok(false);
    }
    for ev in &mut walk.events {
        if !ev.is_event() {
            continue;
        }
        let head = std::mem::take(&mut ev.head);
        if let Some(e) = ev.shape_error.take() {
            ev.info = Some(Err(e));
            continue;
        }
        ev.info = Some(match EventHead::deserialize(Value::Object(head)) {
            Ok(head) => {
                // In the whole reader's order: the event's attributes,
                // then each object's (a stable sort keeps the file's order
                // within each).
                ev.actors
                    .sort_by_key(|(_, _, obj)| obj.map_or((0, 0), |i| (1, i)));
                let actors = ev
                    .actors
                    .drain(..)
                    .filter(|(_, deleted, obj)| {
                        // As the whole reader: not deleted, and not in a
                        // deleted or malformed object.
                        !deleted
                            && obj.is_none_or(|i| {
                                matches!(ev.objects.get(i), Some(Ok(o)) if !is_deleted(o.deleted.as_ref()))
                            })
                    })
                    .map(|(v, _, _)| v)
                    .collect();
                Ok(event_info(&head, walk.defaults, actors))
            }
            Err(e) => Err(e.to_string()),
        });
    }
    walk.second = true;
    walk.next_event = 0;
    walk.line.set(1);
    run_pass(&mut walk, open)?;
    Ok(true)
}

fn run_pass<R: Read>(
    walk: &mut Walk<'_>,
    open: &mut dyn FnMut() -> std::io::Result<R>,
) -> Result<(), FeedError> {
    let io = |source: std::io::Error| FeedError::Io {
        file: walk.file.to_string(),
        source,
    };
    let input = JsonInput::new(Utf8Checked::new(open().map_err(io)?), walk.line.clone());
    let file = walk.file.to_string();
    let mut de = serde_json::Deserializer::from_reader(input);
    let res = Node {
        walk,
        depth: 0,
        event_value: false,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    let format = walk.format;
    res.map_err(|e| FeedError::Malformed {
        file,
        format,
        reason: format!("invalid JSON: {e}; fix the file or re-export the event"),
    })
}

/// Remembers the keys of one JSON object in the first pass, to find a
/// key given twice.
#[derive(Default)]
struct KeysSeen(std::collections::HashSet<String>);

impl KeysSeen {
    /// Note `key`; true when it was there already.
    fn repeated(&mut self, key: &str) -> bool {
        !self.0.insert(key.to_string())
    }
}

/// Anything: an object that may be an event or a wrapper of events, an
/// array of them, or something to skip.
struct Node<'a, 'w> {
    walk: &'a mut Walk<'w>,
    depth: u8,
    /// The value of an `Event` key: an event when it is an object, and
    /// nothing to search otherwise.
    event_value: bool,
}

/// A visitor that skips any value it is not interested in, without
/// failing on its type (serde's default would be an error).
macro_rules! skip_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}

/// For a value that must be a list (or null): anything else is noted in
/// `walk.list_error` (first pass), as the whole reader's type error.
macro_rules! not_a_list {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
            self.not_a_list(&format!("boolean `{v}`"));
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
            self.not_a_list(&format!("integer `{v}`"));
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
            self.not_a_list(&format!("integer `{v}`"));
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
            self.not_a_list(&format!("floating point `{v}`"));
            Ok(())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
            self.not_a_list(&format!("string {v:?}"));
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            self.not_a_list("map");
            Ok(())
        }
    };
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a MISP event, a list of events or a response")
    }
    skip_scalars!();

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth > 2 || self.event_value {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        while seq
            .next_element_seed(Node {
                walk: &mut *self.walk,
                depth: self.depth + 1,
                event_value: false,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.walk;
        if self.depth > 2 && !self.event_value {
            // The whole reader looks no deeper.
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let idx = walk.next_event;
        walk.next_event += 1;
        if !walk.second {
            walk.events.push(EventCtx {
                forced: self.event_value,
                ..Default::default()
            });
        }
        let mut objects_seen = 0usize;
        let mut response_events = None;
        let mut keys = KeysSeen::default();
        while let Some(key) = map.next_key::<String>()? {
            let key_line = walk.line.get();
            if !walk.second && keys.repeated(&key) {
                walk.repeated_key = true;
            }
            match key.as_str() {
                // An event is not searched for further events.
                "Event" | "response" if !self.event_value => {
                    if !walk.second {
                        let ev = &mut walk.events[idx];
                        if key == "Event" {
                            ev.has_event_key = true;
                        } else {
                            ev.has_response_key = true;
                        }
                    }
                    let first = walk.next_event;
                    map.next_value_seed(Node {
                        walk: &mut *walk,
                        depth: self.depth.saturating_add(1),
                        event_value: key == "Event",
                    })?;
                    if key == "response" {
                        response_events = Some(first..walk.next_event);
                    }
                }
                "Attribute" => {
                    if !walk.second {
                        walk.events[idx].has_attribute_or_object = true;
                    }
                    map.next_value_seed(Attributes {
                        walk: &mut *walk,
                        event: idx,
                        object: None,
                    })?;
                    if let Some(e) = walk.list_error.take() {
                        walk.events[idx].shape_error.get_or_insert(e);
                    }
                }
                "Object" => {
                    if !walk.second {
                        walk.events[idx].has_attribute_or_object = true;
                    }
                    map.next_value_seed(Objects {
                        walk: &mut *walk,
                        event: idx,
                        seen: &mut objects_seen,
                    })?;
                    if let Some(e) = walk.list_error.take() {
                        walk.events[idx].shape_error.get_or_insert(e);
                    }
                }
                k if !walk.second && (k == "uuid" || HEAD_KEYS.contains(&k)) => {
                    let v: Value = map.next_value()?;
                    let ev = &mut walk.events[idx];
                    match k {
                        "uuid" => {
                            ev.uuid = v.as_str().map(str::to_string);
                            ev.line = key_line;
                            ev.has_uuid_or_date = true;
                        }
                        "info" => ev.has_info = true,
                        "date" => ev.has_uuid_or_date = true,
                        _ => {}
                    }
                    if k != "uuid" {
                        ev.head.insert(key, v);
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // `Event` wins over `response`, as in the whole reader.
        if !walk.second
            && walk.events[idx].has_event_key
            && let Some(range) = response_events
        {
            for ev in &mut walk.events[range] {
                ev.excluded = true;
            }
        }
        if walk.second
            && let Some(ev) = walk.events.get(idx)
            && ev.is_event()
            && let Some(Err(e)) = &ev.info
        {
            let (line, uuid) = (ev.line, ev.uuid.clone());
            walk.out.reject(
                walk.file,
                line,
                format!("{}malformed MISP event: {e}", prefix(uuid.as_deref())),
                uuid.as_deref().unwrap_or(""),
            );
            (walk.sink)(&mut walk.out);
        }
        Ok(())
    }
}

/// An `Attribute` array, of an event or of one of its objects.
struct Attributes<'a, 'w> {
    walk: &'a mut Walk<'w>,
    event: usize,
    object: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for Attributes<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Attributes<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of MISP attributes")
    }
    not_a_list!();

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let walk = self.walk;
        let line = walk.line.clone();
        while let Some(lined) = seq.next_element_seed(LinedValue { line: &line })? {
            attribute(walk, self.event, self.object, lined);
        }
        Ok(())
    }
}

impl Attributes<'_, '_> {
    fn not_a_list(self, what: &str) {
        if !self.walk.second {
            self.walk.list_error = Some(format!("invalid type: {what}, expected a sequence"));
        }
    }
}

impl Objects<'_, '_, '_> {
    fn not_a_list(self, what: &str) {
        if !self.walk.second {
            self.walk.list_error = Some(format!("invalid type: {what}, expected a sequence"));
        }
    }
}

/// One attribute: in the first pass a `threat-actor` is noted, in the
/// second it becomes indicators (as the whole reader makes them).
fn attribute(
    walk: &mut Walk<'_>,
    event: usize,
    object: Option<usize>,
    (v, uuid_line): (Value, u64),
) {
    if !walk.second {
        if v.get("type").and_then(Value::as_str) == Some("threat-actor")
            && let Ok(a) = MispAttribute::deserialize(&v)
            && let Some(value) = a.value.as_ref().map(Loose::text)
        {
            let deleted = is_deleted(a.deleted.as_ref());
            walk.events[event].actors.push((value, deleted, object));
        }
        return;
    }
    let Some(ev) = walk.events.get(event) else {
        return;
    };
    if !ev.is_event() {
        return;
    }
    let Some(Ok(info)) = &ev.info else {
        return;
    };
    let obj = match object.map(|i| ev.objects.get(i)) {
        None => None,
        Some(Some(Ok(o))) => Some(o),
        // A malformed object was rejected whole, with its attributes.
        Some(_) => return,
    };
    let line = if uuid_line > 0 { uuid_line } else { ev.line };
    match MispAttribute::deserialize(&v) {
        Ok(a) => read_attribute(&a, obj, info, walk.file, line, walk.opts, &mut walk.out),
        Err(e) => {
            let u = v.get("uuid").and_then(Value::as_str);
            walk.out.reject(
                walk.file,
                line,
                format!("{}malformed MISP attribute: {e}", prefix(u)),
                &v.to_string(),
            );
        }
    }
    for ind in &mut walk.out.indicators {
        apply_window_policy(ind, walk.opts);
    }
    (walk.sink)(&mut walk.out);
}

/// A JSON value, with the line of its `uuid` key when it is an object
/// that has one (0 otherwise): the line the whole reader gives.
struct LinedValue<'l> {
    line: &'l Rc<Cell<u64>>,
}

impl<'de> DeserializeSeed<'de> for LinedValue<'_> {
    type Value = (Value, u64);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LinedValue<'_> {
    type Value = (Value, u64);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok((Value::Bool(v), 0))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok((Value::from(v), 0))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok((Value::from(v), 0))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok((Value::from(v), 0))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((Value::String(v.to_string()), 0))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok((Value::String(v), 0))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((Value::Null, 0))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((Value::Null, 0))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok((v, 0))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut m = serde_json::Map::new();
        let mut uuid_line = 0;
        while let Some(k) = map.next_key::<String>()? {
            if k == "uuid" && uuid_line == 0 {
                uuid_line = self.line.get();
            }
            let v: Value = map.next_value()?;
            m.insert(k, v);
        }
        Ok((Value::Object(m), uuid_line))
    }
}

/// An `Object` array: each object's metadata (first pass) and its
/// attributes.
struct Objects<'a, 'w, 's> {
    walk: &'a mut Walk<'w>,
    event: usize,
    /// Objects of this event met so far (an event may, against MISP's
    /// own writing, hold several `Object` keys).
    seen: &'s mut usize,
}

impl<'de> DeserializeSeed<'de> for Objects<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Objects<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of MISP objects")
    }
    not_a_list!();

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let index = *self.seen;
            let more = seq.next_element_seed(Object {
                walk: &mut *self.walk,
                event: self.event,
                index,
            })?;
            if more.is_none() {
                return Ok(());
            }
            *self.seen += 1;
        }
    }
}

/// One element of an `Object` array.
struct Object<'a, 'w> {
    walk: &'a mut Walk<'w>,
    event: usize,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for Object<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Object<'_, '_> {
    /// A value that is not an object: malformed, as the whole reader says.
    fn not_an_object(self, what: &str) {
        let walk = self.walk;
        if !walk.second {
            let line = walk.events[self.event].line;
            walk.events[self.event].objects.push(Err((
                format!("invalid type: {what}, expected struct MispObject"),
                line,
                None,
            )));
            return;
        }
        object_rejected(walk, self.event, self.index);
    }
}

/// The second pass's rejection of a malformed object.
fn object_rejected(walk: &mut Walk<'_>, event: usize, index: usize) {
    let Some(ev) = walk.events.get(event) else {
        return;
    };
    if !ev.is_event() || !matches!(ev.info, Some(Ok(_))) {
        return;
    }
    if let Some(Err((e, line, uuid))) = ev.objects.get(index) {
        let (e, line, uuid) = (e.clone(), *line, uuid.clone());
        walk.out.reject(
            walk.file,
            line,
            format!("{}malformed MISP object: {e}", prefix(uuid.as_deref())),
            uuid.as_deref().unwrap_or(""),
        );
        (walk.sink)(&mut walk.out);
    }
}

impl<'de> Visitor<'de> for Object<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a MISP object")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.not_an_object(&format!("boolean `{v}`"));
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.not_an_object(&format!("integer `{v}`"));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.not_an_object(&format!("integer `{v}`"));
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.not_an_object(&format!("floating point `{v}`"));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.not_an_object(&format!("string {v:?}"));
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_an_object("null");
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_an_object("sequence");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.walk;
        let mut meta = serde_json::Map::new();
        let mut uuid_line = 0;
        let mut list_error = None;
        let mut keys = KeysSeen::default();
        while let Some(key) = map.next_key::<String>()? {
            if !walk.second && keys.repeated(&key) {
                walk.repeated_key = true;
            }
            if key == "Attribute" {
                map.next_value_seed(Attributes {
                    walk: &mut *walk,
                    event: self.event,
                    object: Some(self.index),
                })?;
                if let Some(e) = walk.list_error.take() {
                    list_error.get_or_insert(e);
                }
            } else if !walk.second && OBJECT_KEYS.contains(&key.as_str()) {
                if key == "uuid" && uuid_line == 0 {
                    uuid_line = walk.line.get();
                }
                let v: Value = map.next_value()?;
                meta.insert(key, v);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if walk.second {
            object_rejected(walk, self.event, self.index);
            return Ok(());
        }
        let ev = &mut walk.events[self.event];
        let uuid = meta.get("uuid").and_then(Value::as_str).map(str::to_string);
        let line = if uuid_line > 0 { uuid_line } else { ev.line };
        let parsed = match list_error {
            Some(e) => Err(e),
            None => MispObject::deserialize(Value::Object(meta)).map_err(|e| e.to_string()),
        };
        ev.objects.push(parsed.map_err(|e| (e, line, uuid)));
        Ok(())
    }
}
