//! Zeek JSON logs: the native form (`LogAscii::use_json`, one object per
//! line, dotted keys such as `"id.orig_h"`, `ts` as epoch float or ISO 8601
//! string) and the streaming form (`_path`, `_write_ts`, as sent to Kafka
//! or files by the JSON streaming package). Nested objects
//! (`"id": {"orig_h": …}`) are flattened to dotted keys.
//!
//! The log type comes from `_path` when present, otherwise it is inferred
//! from the keys; the field mapping is shared with the TSV decoder in
//! `super::zeek_fields`. A record is read into a flat list of borrowed
//! `(key, value)` pairs, not a `serde_json::Value` tree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::zeek_fields::{Acc, LogKind, Val, role};
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo, json_object_line};

/// Registry entry.
pub const INFO: DecoderInfo = DecoderInfo {
    name: "zeek-json",
    description: "Zeek JSON logs, native and streaming (_path)",
    sniff,
    make: |_cfg: &DecoderConfig| Box::new(ZeekJson),
};

fn sniff(lines: &[&[u8]]) -> u8 {
    let mut best = 0;
    for l in lines.iter().take(20) {
        let l = l.trim_ascii();
        if l.is_empty() {
            continue;
        }
        if l.first() != Some(&b'{') {
            return 0;
        }
        let Ok(f) = serde_json::from_slice::<Fields<'_>>(l) else {
            continue;
        };
        let has = |k: &str| f.0.iter().any(|(n, _)| n == k);
        // Suricata EVE has `event_type` and `timestamp`: not ours.
        if has("event_type") || has("timestamp") && !has("ts") {
            return 0;
        }
        let score = if has("ts")
            && (has("uid")
                || has("id.orig_h")
                || has("_path")
                || has("fuid")
                || has("uids")
                || has("id")
                // A notice about no one connection (Scan::*,
                // SSH::Password_Guessing) has no uid or id.* fields;
                // JSON logs leave unset fields out.
                || has("note") && has("msg"))
        {
            95
        } else if has("_path") || has("id.orig_h") {
            80
        } else {
            0
        };
        best = best.max(score);
    }
    best
}

/// The Zeek JSON decoder: every record is self-describing.
#[derive(Clone)]
struct ZeekJson;

impl Decoder for ZeekJson {
    fn name(&self) -> &'static str {
        "zeek-json"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        match json_object_line::<Fields<'_>>(
            record,
            "not a JSON object: a Zeek JSON log has one {...} object per line",
            "invalid JSON",
        )? {
            Some(fields) => Ok(Decoded::Event(Box::new(map_fields(&fields.0)))),
            None => Ok(Decoded::Skip),
        }
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }
}

/// Build the event of one record from its flattened fields.
pub(crate) fn map_fields<'a>(fields: &'a [(Cow<'a, str>, JVal<'a>)]) -> crate::model::Event {
    let path = fields.iter().find_map(|(k, v)| match (k.as_ref(), v) {
        ("_path", JVal::Str(p)) => Some(p.as_ref()),
        _ => None,
    });
    let kind = match path {
        Some(p) => LogKind::from_path(p),
        None => LogKind::infer(fields.iter().map(|(k, _)| k.as_ref())),
    };
    let mut acc = Acc::new(kind);
    for (k, v) in fields {
        let r = role(kind, k, None);
        match v {
            JVal::Arr(items) => {
                for it in items {
                    if let Some(val) = it.val() {
                        acc.apply(r, val);
                    }
                }
            }
            other => {
                if let Some(val) = other.val() {
                    acc.apply(r, val);
                }
            }
        }
    }
    acc.finish()
}

/// A JSON value of a Zeek record, borrowed where no unescaping was needed.
#[derive(Debug)]
pub(crate) enum JVal<'a> {
    Str(Cow<'a, str>),
    UInt(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Arr(Vec<JVal<'a>>),
}

impl<'a> JVal<'a> {
    fn val(&'a self) -> Option<Val<'a>> {
        Some(match self {
            JVal::Str(s) => Val::Str(s.as_ref()),
            JVal::UInt(n) => Val::UInt(*n),
            JVal::Int(n) => Val::Int(*n),
            JVal::Float(f) => Val::Float(*f),
            JVal::Bool(b) => Val::Bool(*b),
            JVal::Null | JVal::Arr(_) => return None,
        })
    }
}

/// A JSON object flattened to `(dotted key, value)` pairs.
pub(crate) struct Fields<'a>(pub(crate) Vec<(Cow<'a, str>, JVal<'a>)>);

impl<'de> de::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = Vec::with_capacity(24);
        d.deserialize_map(ObjSeed {
            prefix: None,
            out: &mut out,
        })?;
        Ok(Fields(out))
    }
}

/// A string key or value, borrowed from the input when it has no escapes.
struct BStr<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for BStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads an object's members into `out`, keys prefixed by `prefix.`.
struct ObjSeed<'p, 'de> {
    prefix: Option<&'p str>,
    out: &'p mut Vec<(Cow<'de, str>, JVal<'de>)>,
}

impl<'de> DeserializeSeed<'de> for ObjSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(BStr(key)) = map.next_key::<BStr<'de>>()? {
            let full: Cow<'de, str> = match self.prefix {
                None => key,
                Some(p) => Cow::Owned(format!("{p}.{key}")),
            };
            let v = map.next_value_seed(ValSeed {
                key: &full,
                out: self.out,
            })?;
            if let Some(v) = v {
                self.out.push((full, v));
            }
        }
        Ok(())
    }
}

/// Reads one member value; a nested object is flattened into `out` and
/// yields `None`.
struct ValSeed<'p, 'de> {
    key: &'p str,
    out: &'p mut Vec<(Cow<'de, str>, JVal<'de>)>,
}

impl<'de> DeserializeSeed<'de> for ValSeed<'_, 'de> {
    type Value = Option<JVal<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValSeed<'_, 'de> {
    type Value = Option<JVal<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(JVal::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(JVal::Str(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(JVal::Str(Cow::Owned(v))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(JVal::UInt(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(JVal::Int(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(JVal::Float(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(JVal::Bool(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Some(JVal::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Some(JVal::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        // Objects inside arrays are flattened under the array's key.
        while let Some(v) = seq.next_element_seed(ValSeed {
            key: self.key,
            out: self.out,
        })? {
            if let Some(v) = v {
                items.push(v);
            }
        }
        Ok(Some(JVal::Arr(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        ObjSeed {
            prefix: Some(self.key),
            out: self.out,
        }
        .visit_map(map)?;
        Ok(None)
    }
}
