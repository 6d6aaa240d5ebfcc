//! A STIX bundle read in memory bounded by its largest object, not by the
//! document: a bundle is one JSON value, and parsing it whole took the
//! file and a `serde_json::Value` tree of every object (several times the
//! file) at once.
//!
//! What a bundle says about an indicator can come after it: the
//! relationship that ties it to a campaign, the report that lists it, the
//! identity that created it, the marking definition of its TLP, a newer
//! version of it. So the document is read twice, each time as a stream of
//! JSON tokens, one element of `objects` at a time:
//!
//! - the first pass keeps what the objects say about others (identities,
//!   TLP markings, names of campaigns and actors, `indicates` and
//!   `attributed-to` relationships, reports, the newest version of each
//!   indicator id) and the line of each `"id"`, as compact keys
//!   ([`super::IdKey`]), and notes the objects that do not deserialize;
//! - the second turns each indicator into indicators as it is read, with
//!   all of that known, and hands them on.
//!
//! The answer is that of [`super::read_whole`] on the same bytes, in the
//! same order (objects that do not deserialize are rejected first, as the
//! whole reader does); the test `stix_stream_equals_whole` compares them
//! on every STIX file of the tests and the corpus and on reordered and
//! damaged variants, and the `feed_stix` fuzz target on whatever it makes.
//! The one known difference is the line of an object whose id is written
//! with a JSON escape (`\u002d`): the whole reader finds ids in the raw
//! bytes and gives 0, the stream gives the line of its `"id"` key.
//!
//! STIX JSON lines are read a line at a time by [`super::lines`].
//!
//! Left to the whole reader (`Ok(false)`, nothing handed on):
//! - anything else that is not one JSON document, and JSON lines whose
//!   first lines are longer than [`super::lines::HEAD_LIMIT`] (the whole
//!   reader says where the JSON breaks);
//! - a document that is not a bundle or an array of objects (a single
//!   object is bounded by itself anyway; other JSON is explained there);
//! - a bundle whose `type` or `objects` key is given twice (serde_json,
//!   like Python's `json`, keeps the last, which a stream cannot do);
//! - bytes that are not JSON or not UTF-8 (the whole reader says where).

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    Context, ContextBuilder, IdKey, IdKeys, StixObject, Versions, push_item, read_object,
    reject_malformed,
};
use crate::readers::json_io::{JsonInput, Utf8Checked};
use crate::readers::{FeedError, ParsedFeed, ReadOptions, apply_window_policy};

/// The shape of the document, learnt by the first pass.
#[derive(Default)]
struct Envelope {
    /// The document is an array of objects.
    array: bool,
    /// The document is a JSON object.
    object: bool,
    /// Its `type`: `None` when absent, `Some(None)` when not a string.
    ty: Option<Option<String>>,
    /// Its `objects`: `None` when absent, else whether it is an array.
    objects_array: Option<bool>,
    /// `type` or `objects` given twice.
    repeated: bool,
}

impl Envelope {
    /// Is the document one the stream reads: an array of objects, or a
    /// bundle (`"type": "bundle"`, or no string `type` and an `objects`
    /// array, as a TAXII envelope), each key once? The rule of
    /// [`super::flatten`].
    fn streamable(&self) -> bool {
        if self.array {
            return true;
        }
        if !self.object || self.repeated {
            return false;
        }
        match self.ty.as_ref().and_then(Option::as_deref) {
            Some("bundle") => true,
            Some(_) => false,
            None => self.objects_array == Some(true),
        }
    }
}

/// State shared by both passes.
struct Walk<'w> {
    second: bool,
    line: Rc<Cell<u64>>,
    file: &'w str,
    opts: &'w ReadOptions,
    apply_policy: bool,
    envelope: Envelope,
    /// The first line of each `"id": "<text>"` in the document, at any
    /// depth: the line the whole reader gives an object ([`super::key_lines`]).
    first_line: HashMap<IdKey, u64>,
    line_keys: IdKeys,
    /// First pass: what the objects say about each other.
    builder: Option<ContextBuilder>,
    /// Second pass: the context built from the first.
    ctx: Option<(Context, Versions)>,
    /// First pass: objects that do not deserialize, rejected before the
    /// rest as the whole reader does.
    early: ParsedFeed,
    /// Second pass: what one element gave, drained by `sink`.
    out: ParsedFeed,
    sink: &'w mut dyn FnMut(&mut ParsedFeed),
}

/// Read the STIX bundle that `open` opens (it is called twice), as
/// [`super::read_whole`] would, handing what each object gave to `sink`
/// (indicators with the window policy applied, rejected and skipped
/// entries); `sink` drains what it takes. `Ok(false)` means that nothing
/// was handed on and the file must be read whole instead (see the
/// module's doc for when).
pub fn read_bundle_stream<R: Read>(
    open: &mut dyn FnMut() -> std::io::Result<R>,
    file: &str,
    opts: &ReadOptions,
    sink: &mut dyn FnMut(&mut ParsedFeed),
) -> Result<bool, FeedError> {
    read_stream(open, file, opts, true, sink)
}

/// [`read_bundle_stream`], with the window policy applied or not (the
/// bytes API applies it once at its end).
pub(super) fn read_stream<R: Read>(
    open: &mut dyn FnMut() -> std::io::Result<R>,
    file: &str,
    opts: &ReadOptions,
    apply_policy: bool,
    sink: &mut dyn FnMut(&mut ParsedFeed),
) -> Result<bool, FeedError> {
    let mut walk = Walk {
        second: false,
        line: Rc::new(Cell::new(1)),
        file,
        opts,
        apply_policy,
        envelope: Envelope::default(),
        first_line: HashMap::new(),
        line_keys: IdKeys::default(),
        builder: Some(ContextBuilder::new()),
        ctx: None,
        early: ParsedFeed::default(),
        out: ParsedFeed::default(),
        sink,
    };
    match run_pass(&mut walk, open) {
        Ok(()) => {}
        Err(PassError::Io(e)) => {
            return Err(FeedError::Io {
                file: file.to_string(),
                source: e,
            });
        }
        // Not one JSON document: JSON lines, read a line at a time
        // ([`super::lines`]), or broken, which the whole reader says
        // where.
        Err(PassError::Json(_)) => {
            let head = open().and_then(super::lines::is_json_lines);
            return match head {
                Ok(Some(true)) => {
                    super::lines::read_json_lines(open, file, opts, apply_policy, &mut *walk.sink)
                        .map(|()| true)
                }
                Ok(_) => Ok(false),
                Err(e) => Err(FeedError::Io {
                    file: file.to_string(),
                    source: e,
                }),
            };
        }
    }
    if !walk.envelope.streamable() {
        return Ok(false);
    }
    let builder = walk.builder.take().unwrap_or_else(ContextBuilder::new);
    walk.ctx = Some(builder.finish());
    if !walk.early.rejected.is_empty() {
        (walk.sink)(&mut walk.early);
    }
    walk.second = true;
    walk.line.set(1);
    match run_pass(&mut walk, open) {
        Ok(()) => Ok(true),
        Err(PassError::Io(e)) => Err(FeedError::Io {
            file: file.to_string(),
            source: e,
        }),
        Err(PassError::Json(e)) => Err(FeedError::Io {
            file: file.to_string(),
            source: std::io::Error::other(format!(
                "the file changed while it was read (the first reading was valid JSON, the \
                 second fails: {e}); read it again once it is written"
            )),
        }),
    }
}

enum PassError {
    Io(std::io::Error),
    Json(String),
}

fn run_pass<R: Read>(
    walk: &mut Walk<'_>,
    open: &mut dyn FnMut() -> std::io::Result<R>,
) -> Result<(), PassError> {
    let input = JsonInput::new(
        Utf8Checked::new(open().map_err(PassError::Io)?),
        walk.line.clone(),
    );
    let mut de = serde_json::Deserializer::from_reader(input);
    let res = Top { walk }.deserialize(&mut de).and_then(|()| de.end());
    res.map_err(|e| {
        if !e.is_io() {
            return PassError::Json(e.to_string());
        }
        let message = e.to_string();
        let io = std::io::Error::from(e);
        if io.kind() == std::io::ErrorKind::InvalidData {
            // Bytes that are not UTF-8 (`Utf8Checked`): the whole reader
            // says where, as it does for JSON that does not parse.
            PassError::Json(message)
        } else {
            PassError::Io(io)
        }
    })
}

/// The document: a bundle (or TAXII envelope), an array of objects, or
/// something the stream leaves to the whole reader.
struct Top<'a, 'w> {
    walk: &'a mut Walk<'w>,
}

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Scalars: a document the stream does not read (the whole reader
/// explains), or a value nobody looks at.
macro_rules! ignore_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    };
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a STIX bundle or an array of STIX objects")
    }
    ignore_scalars!();

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.walk.envelope.array = true;
        elements(self.walk, seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let walk = self.walk;
        walk.envelope.object = true;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "objects" => {
                    if walk.envelope.objects_array.is_some() {
                        walk.envelope.repeated = true;
                    }
                    map.next_value_seed(Objects { walk: &mut *walk })?;
                }
                _ => {
                    let key_line = walk.line.get();
                    let mut ids = Vec::new();
                    let v = map.next_value_seed(IdLined {
                        line: &walk.line.clone(),
                        ids: &mut ids,
                    })?;
                    if key == "id"
                        && let Value::String(s) = &v
                    {
                        ids.push((s.clone(), key_line));
                    }
                    note_ids(walk, ids);
                    if key == "type" {
                        if walk.envelope.ty.is_some() {
                            walk.envelope.repeated = true;
                        }
                        walk.envelope.ty = Some(v.as_str().map(str::to_string));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The value of a bundle's `objects`: streamed when it is an array.
struct Objects<'a, 'w> {
    walk: &'a mut Walk<'w>,
}

impl<'de> DeserializeSeed<'de> for Objects<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // Noted as not an array unless `visit_seq` says otherwise.
        self.walk.envelope.objects_array = Some(false);
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Objects<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the objects of a STIX bundle")
    }
    ignore_scalars!();

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.walk.envelope.objects_array = Some(true);
        elements(self.walk, seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// Each element of `objects` (or of a top-level array), one at a time.
fn elements<'de, A: SeqAccess<'de>>(walk: &mut Walk<'_>, mut seq: A) -> Result<(), A::Error> {
    let line = walk.line.clone();
    loop {
        let mut ids = Vec::new();
        let Some(v) = seq.next_element_seed(IdLined {
            line: &line,
            ids: &mut ids,
        })?
        else {
            return Ok(());
        };
        note_ids(walk, ids);
        element(walk, v);
    }
}

/// Record where ids are first written (first pass).
fn note_ids(walk: &mut Walk<'_>, ids: Vec<(String, u64)>) {
    if walk.second {
        return;
    }
    for (id, line) in ids {
        let k = walk.line_keys.key(&id);
        walk.first_line.entry(k).or_insert(line);
    }
}

/// One element: a bundle nested in it is unwrapped as the whole reader
/// does; in the first pass each object adds to the context (or is noted
/// as malformed), in the second it is read and what it gave handed on.
fn element(walk: &mut Walk<'_>, v: Value) {
    let mut vals = Vec::new();
    push_item(v, &mut vals, 0);
    for v in vals {
        let line = v
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| walk.line_keys.find(id))
            .and_then(|k| walk.first_line.get(&k))
            .copied()
            .unwrap_or(0);
        let parsed = StixObject::deserialize(&v);
        if !walk.second {
            match parsed {
                Ok(o) => {
                    if let Some(b) = walk.builder.as_mut() {
                        b.add(&o);
                    }
                }
                Err(e) => reject_malformed(&v, line, &e, walk.file, &mut walk.early),
            }
            continue;
        }
        // Malformed objects were rejected after the first pass.
        if let (Ok(o), Some((ctx, versions))) = (parsed, walk.ctx.as_mut()) {
            read_object(&o, line, ctx, versions, walk.file, walk.opts, &mut walk.out);
        }
    }
    if walk.second
        && !(walk.out.indicators.is_empty()
            && walk.out.rejected.is_empty()
            && walk.out.skipped.is_empty())
    {
        if walk.apply_policy {
            for ind in &mut walk.out.indicators {
                apply_window_policy(ind, walk.opts);
            }
        }
        (walk.sink)(&mut walk.out);
    }
}

/// A JSON value, built as serde_json builds it, noting the line of every
/// `"id"` key whose value is a string, at any depth (what
/// [`super::key_lines`] finds in the raw bytes).
struct IdLined<'a> {
    line: &'a Rc<Cell<u64>>,
    ids: &'a mut Vec<(String, u64)>,
}

impl<'de> DeserializeSeed<'de> for IdLined<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IdLined<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(IdLined {
            line: self.line,
            ids: &mut *self.ids,
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let key_line = self.line.get();
            let v = map.next_value_seed(IdLined {
                line: self.line,
                ids: &mut *self.ids,
            })?;
            if k == "id"
                && let Value::String(s) = &v
            {
                self.ids.push((s.clone(), key_line));
            }
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}
