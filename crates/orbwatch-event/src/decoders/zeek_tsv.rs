//! Zeek TSV logs (any log type), driven by their own header lines.
//!
//! A Zeek ASCII log says how to read it: `#separator`, `#set_separator`,
//! `#empty_field`, `#unset_field`, `#path` (the log type) and `#fields` /
//! `#types` (column names and Zeek types). Header lines update the state and
//! are skipped; data lines are split by the separator and each column is
//! mapped by name through `super::zeek_fields`. Columns not mapped by name
//! are still searched for addresses: by Zeek type (`addr`, `set[addr]` →
//! addresses; `string` → scanned for address tokens), so nothing is missed.
//! Several logs concatenated in one file work: each new header resets the
//! state.

use std::borrow::Cow;

use super::zeek_fields::{Acc, LogKind, Role, Val, role, unescape};
use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};

/// Registry entry.
pub const INFO: DecoderInfo = DecoderInfo {
    name: "zeek-tsv",
    description: "Zeek TSV logs driven by the #fields header",
    sniff,
    make: |_cfg: &DecoderConfig| Box::new(ZeekTsv::default()),
};

fn sniff(lines: &[&[u8]]) -> u8 {
    let mut score = 0;
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with(b"###") || l.is_empty() {
            continue;
        }
        if l.starts_with(b"#separator") {
            return 100;
        }
        if l.starts_with(b"#fields\t") || l.starts_with(b"#path\t") {
            score = 90;
        } else if i > 8 && score == 0 {
            break;
        }
    }
    score
}

/// Column handling computed once per `#fields`/`#types` header.
#[derive(Clone, Copy)]
struct Column {
    role: Role,
    /// A Zeek container (`set[...]`, `vector[...]`): split by the set
    /// separator and map each element.
    split: bool,
}

/// Header state of one Zeek TSV file.
#[derive(Clone)]
struct ZeekTsv {
    sep: String,
    set_sep: String,
    empty: String,
    unset: String,
    kind: LogKind,
    fields: Vec<String>,
    types: Vec<String>,
    columns: Vec<Column>,
    dirty: bool,
}

impl Default for ZeekTsv {
    fn default() -> Self {
        ZeekTsv {
            sep: "\t".into(),
            set_sep: ",".into(),
            empty: "(empty)".into(),
            unset: "-".into(),
            kind: LogKind::Other,
            fields: Vec::new(),
            types: Vec::new(),
            columns: Vec::new(),
            dirty: false,
        }
    }
}

impl ZeekTsv {
    fn header(&mut self, line: &str) {
        // `#separator` is always followed by a space; the others by the
        // separator itself (a space in some canonified test baselines).
        if let Some(rest) = line.strip_prefix("#separator") {
            let v = unescape(rest.trim_start_matches([' ', '\t']));
            if !v.is_empty() {
                self.sep = v.into_owned();
            }
            return;
        }
        let body = &line[1..];
        let (key, value) = match body.split_once(self.sep.as_str()) {
            Some(kv) => kv,
            None => body.split_once(' ').unwrap_or((body, "")),
        };
        match key {
            "set_separator" => self.set_sep = unescape(value).into_owned(),
            "empty_field" => self.empty = unescape(value).into_owned(),
            "unset_field" => self.unset = unescape(value).into_owned(),
            "path" => {
                self.kind = LogKind::from_path(value);
                self.dirty = true;
            }
            "fields" => {
                self.fields = value.split(self.sep.as_str()).map(str::to_owned).collect();
                // Types belong to the previous field list until replaced.
                self.types.clear();
                self.dirty = true;
            }
            "types" => {
                self.types = value.split(self.sep.as_str()).map(str::to_owned).collect();
                self.dirty = true;
            }
            _ => {}
        }
    }

    fn compute_columns(&mut self) {
        let kind = self.kind;
        let have_types = self.types.len() == self.fields.len();
        self.columns = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let ty = if have_types {
                    self.types.get(i).map(String::as_str)
                } else {
                    None
                };
                let mut r = role(kind, name, ty);
                if ty.is_none() && r == Role::Generic {
                    r = Role::Scan;
                }
                let split = match ty {
                    Some(t) => {
                        (t.starts_with("set[")
                            || t.starts_with("vector[")
                            || t.starts_with("table["))
                            && r.per_element()
                    }
                    None => matches!(r, Role::Answers | Role::SanDns | Role::Addr | Role::Hash),
                };
                Column { role: r, split }
            })
            .collect();
        self.dirty = false;
    }

    fn data<'a>(&mut self, text: &'a str) -> Result<Decoded, DecodeError> {
        if self.fields.is_empty() {
            return Err(DecodeError::new(
                "data line before any #fields header: not a Zeek TSV log, or its header is missing",
            ));
        }
        if self.dirty {
            self.compute_columns();
        }
        let got = if self.sep.len() == 1 {
            memchr::memchr_iter(self.sep.as_bytes()[0], text.as_bytes()).count() + 1
        } else {
            text.matches(self.sep.as_str()).count() + 1
        };
        if got != self.fields.len() {
            let what = if self.sep == "\t" {
                "tab-separated".to_owned()
            } else {
                format!("{:?}-separated", self.sep)
            };
            return Err(DecodeError::new(format!(
                "expected {} {what} fields per #fields header, got {got}",
                self.fields.len()
            )));
        }
        let mut acc: Acc<'a> = Acc::new(self.kind);
        let unset = self.unset.as_str();
        let empty = self.empty.as_str();
        let set_sep = self.set_sep.as_str();
        for (col, value) in self.columns.iter().zip(text.split(self.sep.as_str())) {
            if col.role == Role::Ignore || value == unset || value == empty {
                continue;
            }
            if col.split && !set_sep.is_empty() {
                for el in value.split(set_sep) {
                    if el != unset && el != empty && !el.is_empty() {
                        acc.apply(col.role, Val::Str(el));
                    }
                }
            } else {
                acc.apply(col.role, Val::Str(value));
            }
        }
        Ok(Decoded::Event(Box::new(acc.finish())))
    }
}

impl Decoder for ZeekTsv {
    fn name(&self) -> &'static str {
        "zeek-tsv"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        if record.is_empty() || record.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Decoded::Skip);
        }
        let text: Cow<'_, str> = String::from_utf8_lossy(record);
        if text.starts_with('#') {
            self.header(&text);
            return Ok(Decoded::Skip);
        }
        self.data(&text)
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }

    /// The `ts` column only (an IOC sweep's fast path). Header lines still
    /// update the state.
    fn time_of(&mut self, record: &[u8]) -> Option<jiff::Timestamp> {
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        if record.first() == Some(&b'#') {
            let _ = self.decode(record);
            return None;
        }
        let ts_col = self.fields.iter().position(|f| f == "ts")?;
        let sep = self.sep.as_bytes();
        let field = if sep.len() == 1 {
            record.split(|b| *b == sep[0]).nth(ts_col)?
        } else {
            let text = std::str::from_utf8(record).ok()?;
            text.split(self.sep.as_str()).nth(ts_col)?.as_bytes()
        };
        epoch_seconds(field)
    }
}

/// Zeek's `time` values: seconds since the epoch with up to nine decimals.
fn epoch_seconds(b: &[u8]) -> Option<jiff::Timestamp> {
    let text = std::str::from_utf8(b).ok()?;
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|c| c.is_ascii_digit()) || whole.len() > 12 {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    let digits = &frac[..frac.len().min(9)];
    let mut nanos: i32 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    for _ in digits.len()..9 {
        nanos *= 10;
    }
    jiff::Timestamp::new(secs, nanos).ok()
}
