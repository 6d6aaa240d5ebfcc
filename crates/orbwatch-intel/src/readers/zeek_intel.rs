//! Zeek Intel framework input files.
//!
//! Many sites already keep their indicators in the form Zeek's Intel
//! framework loads (`Intel::read_files`): a `#fields` line naming tab-separated
//! columns, `indicator` and `indicator_type` first, then `meta.*` columns.
//! `-` means unset; other `#` lines are comments. Reading these files lets a
//! site hunt its archived logs with the list its sensors already use.
//!
//! Types: `Intel::ADDR`, `Intel::SUBNET`, `Intel::DOMAIN`, `Intel::URL`
//! (Zeek URLs have no scheme; `http://` is prepended), `Intel::FILE_HASH`,
//! `Intel::CERT_HASH`. E-mail addresses, user names, software, file names,
//! public-key hashes and JA3 are valid Zeek types that orbwatch cannot match:
//! they are skipped with the reason.
//!
//! `meta.source` → tag `source=…`, `meta.desc` → description, `meta.url` →
//! tag `url=…`, `meta.cif_confidence` → confidence (a value up to 10 is read
//! on CIF's 0–10 scale, above that on 0–100), `meta.cif_tags` → tags; other
//! `meta.*` columns are kept as `name=value` tags.

use super::csv_generic::{add_tag, is_null, split_tags};
use super::plain::{LineReader, provenance, text};
use super::{ParsedFeed, ReadOptions};
use crate::model::{Indicator, Tags};
use crate::time::parse_timestamp;
use crate::value::{TypeHint, parse_value};

/// Does the head contain a `#fields` line with `indicator` and
/// `indicator_type` columns?
pub fn looks_like(head: &str) -> bool {
    head.lines().take(20).any(|l| {
        let l = l.trim_start_matches('\u{feff}');
        l.strip_prefix("#fields").is_some_and(|rest| {
            let mut f = rest.split('\t').map(str::trim);
            let names: Vec<&str> = f.by_ref().filter(|x| !x.is_empty()).collect();
            names.contains(&"indicator") && names.contains(&"indicator_type")
        })
    })
}

/// What a Zeek indicator type means for orbwatch.
enum ZeekType {
    Hint(TypeHint),
    Url,
    Skip(&'static str),
}

fn zeek_type(t: &str) -> Option<ZeekType> {
    let name = t.trim();
    let name = name.strip_prefix("Intel::").unwrap_or(name);
    Some(match name.to_ascii_uppercase().as_str() {
        "ADDR" => ZeekType::Hint(TypeHint::Ip),
        "SUBNET" => ZeekType::Hint(TypeHint::Cidr),
        "DOMAIN" => ZeekType::Hint(TypeHint::Domain),
        "URL" => ZeekType::Url,
        "FILE_HASH" => ZeekType::Hint(TypeHint::Hash(None)),
        "CERT_HASH" => ZeekType::Hint(TypeHint::Cert(None)),
        "EMAIL" => ZeekType::Skip("Intel::EMAIL: e-mail addresses are not matched"),
        "USER_NAME" => ZeekType::Skip("Intel::USER_NAME: user names are not matched"),
        "SOFTWARE" => ZeekType::Skip("Intel::SOFTWARE: software names are not matched"),
        "FILE_NAME" => ZeekType::Skip("Intel::FILE_NAME: file names are not matched"),
        "PUBKEY_HASH" => ZeekType::Skip("Intel::PUBKEY_HASH: public-key hashes are not matched"),
        "JA3" => ZeekType::Skip("Intel::JA3: JA3 fingerprints are not matched"),
        _ => return None,
    })
}

/// The columns a file has when it gives no `#fields` line.
const DEFAULT_FIELDS: &[&str] = &[
    "indicator",
    "indicator_type",
    "meta.source",
    "meta.desc",
    "meta.url",
];

/// Scale a CIF confidence (0–10, or 0–100) to 0–100.
fn cif_confidence(s: &str) -> Option<u8> {
    let n: f64 = s.trim().parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    if n <= 10.0 {
        Some((n * 10.0).round() as u8)
    } else if n <= 100.0 {
        Some(n.round() as u8)
    } else {
        None
    }
}

/// Read a Zeek Intel input file.
pub fn read(b: &[u8], file: &str, opts: &ReadOptions, out: &mut ParsedFeed) {
    // A slice cannot fail to read.
    let _ = read_from(b, file, opts, out);
}

/// [read] from a stream, line by line.
pub fn read_from(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> std::io::Result<()> {
    read_into(reader, file, opts, out, None)
}

/// [`read_from`], handing on full chunks to `sink` as it goes (see
/// [`super::read_lines_stream`]).
pub(crate) fn read_into(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
    mut sink: Option<super::StreamSink<'_>>,
) -> std::io::Result<()> {
    let mut fields: Option<Vec<String>> = None;
    let default: Vec<String> = DEFAULT_FIELDS.iter().map(|s| s.to_string()).collect();
    let mut lines = LineReader::new(reader);
    while let Some((no, raw)) = lines.next_line()? {
        super::hand_on_full(out, opts, &mut sink);
        let line = text(raw);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("#fields") {
            let names: Vec<String> = rest
                .split('\t')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if !names.iter().any(|n| n == "indicator") {
                out.reject(file, no, "`#fields` line has no `indicator` column", &line);
            }
            fields = Some(names);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let names: &[String] = fields.as_deref().unwrap_or(&default);
        let cols: Vec<&str> = line.split('\t').collect();
        if fields.is_some() && cols.len() != names.len() {
            out.reject(
                file,
                no,
                format!(
                    "line has {} tab-separated fields but `#fields` names {}",
                    cols.len(),
                    names.len()
                ),
                &line,
            );
            continue;
        }
        read_line(names, &cols, file, no, opts, out, &line);
    }
    Ok(())
}

fn read_line(
    names: &[String],
    cols: &[&str],
    file: &str,
    no: u64,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
    line: &str,
) {
    let get = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .and_then(|i| cols.get(i))
            .map(|s| s.trim())
            .filter(|s| !is_null(s))
    };
    let Some(indicator) = get("indicator") else {
        out.reject(file, no, "no indicator", line);
        return;
    };
    let Some(kind) = get("indicator_type") else {
        out.reject(file, no, "no indicator_type", line);
        return;
    };
    let parsed = match zeek_type(kind) {
        None => {
            if kind.starts_with("Intel::") {
                out.skip(file, no, format!("indicator type `{kind}` is not matched"));
            } else {
                out.reject(
                    file,
                    no,
                    format!("`{kind}` is not a Zeek indicator type (Intel::ADDR, Intel::DOMAIN…)"),
                    line,
                );
            }
            return;
        }
        Some(ZeekType::Skip(reason)) => {
            out.skip(file, no, reason);
            return;
        }
        Some(ZeekType::Hint(h)) => parse_value(indicator, Some(h)),
        Some(ZeekType::Url) => {
            if indicator.contains("://") {
                parse_value(indicator, Some(TypeHint::Url))
            } else {
                parse_value(&format!("http://{indicator}"), Some(TypeHint::Url))
            }
        }
    };
    let value = match parsed {
        Ok(v) => v,
        Err(e) => {
            out.reject(file, no, e, line);
            return;
        }
    };
    let mut ind = Indicator::new(value, provenance(opts, file, no));
    let mut tags = Tags::default();
    for (i, name) in names.iter().enumerate() {
        let Some(meta) = name.strip_prefix("meta.") else {
            continue;
        };
        let Some(v) = cols.get(i).map(|s| s.trim()).filter(|s| !is_null(s)) else {
            continue;
        };
        match meta {
            "desc" => ind.description = Some(crate::model::excerpt(v)),
            "source" => Tags::push_unique(&mut tags.other, format!("source={v}")),
            "url" => Tags::push_unique(&mut tags.other, format!("url={v}")),
            "cif_confidence" | "confidence" => match cif_confidence(v) {
                Some(c) => ind.confidence = Some(c),
                None => Tags::push_unique(&mut tags.other, format!("{meta}={v}")),
            },
            "cif_tags" | "tags" => {
                for t in split_tags(v) {
                    add_tag(&mut tags, t);
                }
            }
            "first_seen" | "last_seen" => {
                let t = parse_timestamp(v);
                match (meta, t) {
                    ("first_seen", Some(t)) => ind.first_seen = Some(t),
                    (_, Some(t)) => ind.last_seen = Some(t),
                    (_, None) => Tags::push_unique(&mut tags.other, format!("{meta}={v}")),
                }
            }
            other => Tags::push_unique(&mut tags.other, format!("{other}={v}")),
        }
    }
    ind.tags = tags;
    out.indicators.push(ind);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects() {
        assert!(looks_like(
            "#fields\tindicator\tindicator_type\tmeta.source\n1.2.3.4\tIntel::ADDR\tx\n"
        ));
        assert!(!looks_like(
            "#separator \\x09\n#fields\tts\tuid\tseen.indicator\tseen.indicator_type\n"
        ));
    }

    #[test]
    fn cif_scale() {
        assert_eq!(cif_confidence("8.5"), Some(85));
        assert_eq!(cif_confidence("65"), Some(65));
        assert_eq!(cif_confidence("1000"), None);
        assert_eq!(cif_confidence("x"), None);
    }
}
