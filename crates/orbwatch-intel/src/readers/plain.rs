//! Plain indicator lists: one value per line.
//!
//! Block lists (FireHOL netsets, Spamhaus DROP, vendor exports, the IP list
//! at the end of a report) are the most common feed there is, and some are
//! large: a million-line IPv4/CIDR list must import in seconds. The per-line
//! path therefore avoids allocations for clean addresses and networks and
//! only falls back to the general [`parse_value`] for everything else.
//!
//! Accepted per line: an IP, a CIDR, a range `a.b.c.d-e.f.g.h`, a domain, a
//! URL or a hash, defanged or not; `a.b.c.d:port`. Comments start with `#`,
//! `;` or `//`, on their own line or after whitespace following the value
//! (the trailing comment becomes the description). Blank lines, a UTF-8 BOM
//! and CRLF line ends are fine. A line whose first token is a value and whose
//! rest is text keeps the text as description.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use super::{ParsedFeed, ReadOptions};
use crate::model::{Indicator, IndicatorValue, Provenance};
use crate::value::parse_value;

/// The lines of a stream as `(1-based number, line)`, without the line
/// terminator (`\n`, `\r\n`) and without a UTF-8 BOM at the start: the
/// streaming form of [`lines`]. One line is held at a time, so reading a
/// list costs the memory of its longest line, not of the file.
pub(crate) struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    no: u64,
}

impl<R: std::io::BufRead> LineReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(256),
            no: 0,
        }
    }

    /// The next line, `None` at the end of the stream.
    pub(crate) fn next_line(&mut self) -> std::io::Result<Option<(u64, &[u8])>> {
        self.buf.clear();
        if self.inner.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        self.no += 1;
        let mut raw: &[u8] = &self.buf;
        if self.no == 1 {
            raw = strip_bom(raw);
        }
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        Ok(Some((self.no, raw.strip_suffix(b"\r").unwrap_or(raw))))
    }
}

/// Drop a UTF-8 byte-order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
}

/// A line as text; invalid UTF-8 becomes U+FFFD (borrowed when valid).
pub(crate) fn text(line: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(line)
}

/// Provenance for a record at `line` of `file`.
pub(crate) fn provenance(opts: &ReadOptions, file: &str, line: u64) -> Provenance {
    Provenance {
        feed: opts.feed_name.clone(),
        file: file.to_string(),
        line,
        record_id: None,
    }
}

/// Is this (trimmed) line a full-line comment?
pub(crate) fn is_comment(t: &str) -> bool {
    t.starts_with('#') || t.starts_with(';') || t.starts_with("//")
}

/// Split `value   # comment` into the value and the comment text. A comment
/// marker only counts after whitespace, so URL fragments (`/a#b`) and
/// parameters (`a;b`) stay intact.
pub(crate) fn split_trailing_comment(t: &str) -> (&str, Option<&str>) {
    let b = t.as_bytes();
    let mut i = 1;
    while i < b.len() {
        if (b[i] == b'#' || b[i] == b';' || (b[i] == b'/' && b.get(i + 1) == Some(&b'/')))
            && (b[i - 1] == b' ' || b[i - 1] == b'\t')
        {
            let value = t[..i].trim_end();
            let mut comment = &t[i..];
            comment = comment.trim_start_matches(['#', ';', '/']).trim();
            return (value, (!comment.is_empty()).then_some(comment));
        }
        i += 1;
    }
    (t, None)
}

/// Fast path for the clean IPv4 addresses and networks that make up large
/// block lists: no allocation. Anything else returns `None`.
pub(crate) fn fast_ipv4(s: &str) -> Option<IndicatorValue> {
    let b = s.as_bytes();
    if b.is_empty()
        || b.len() > 18
        || !b
            .iter()
            .all(|c| c.is_ascii_digit() || *c == b'.' || *c == b'/')
    {
        return None;
    }
    if memchr::memchr(b'/', b).is_some() {
        let net: Ipv4Net = s.parse().ok()?;
        let net = net.trunc();
        if net.prefix_len() == 32 {
            return Some(IndicatorValue::Ip(IpAddr::V4(net.addr())));
        }
        return Some(IndicatorValue::Cidr(IpNet::V4(net)));
    }
    s.parse::<Ipv4Addr>()
        .ok()
        .map(|ip| IndicatorValue::Ip(IpAddr::V4(ip)))
}

/// `a.b.c.d:port` (defanged or not) → the address and the port.
fn ipv4_with_port(s: &str) -> Option<(IndicatorValue, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.contains(':') {
        return None;
    }
    match parse_value(host, Some(crate::value::TypeHint::Ip)) {
        Ok(v @ IndicatorValue::Ip(IpAddr::V4(_))) => Some((v, port)),
        _ => None,
    }
}

/// Parse one value the way a plain list writes it.
fn parse_entry(s: &str) -> Result<(IndicatorValue, Option<u16>), String> {
    if let Some(v) = fast_ipv4(s) {
        return Ok((v, None));
    }
    match parse_value(s, None) {
        Ok(v) => Ok((v, None)),
        Err(e) => match ipv4_with_port(s) {
            Some((v, p)) => Ok((v, Some(p))),
            None => Err(e),
        },
    }
}

/// Does the head of a file look like a plain list? Either most
/// non-comment lines (80 %) are a single token that parses as an
/// indicator, or every line is list-shaped: a single token that is a
/// value, or a mistyped address or hash (`300.1.1.1`, `1.2.3.4/33`, 63 hex
/// digits). The second rule keeps a
/// short list with one typo a list, so that the typo is rejected with its
/// line number instead of vanishing into free-text extraction. Headings
/// (`Domains`, `MD5:…`, `2nd Stage Servers`) and table rows with dates are
/// not list-shaped, so reports stay free text. A file of comments only (an empty block list) also
/// counts.
pub fn looks_like(head: &str) -> bool {
    const MAX_LINES: usize = 200;
    let mut content = 0usize;
    let mut good = 0usize;
    let mut comments = 0usize;
    let mut list_shaped = 0usize;
    let mut it = head.split('\n').peekable();
    let mut n = 0usize;
    while let Some(line) = it.next() {
        // The last piece of a cut-off head may be a partial line.
        if it.peek().is_none() && n > 0 && !head.ends_with('\n') {
            break;
        }
        n += 1;
        if n > MAX_LINES {
            break;
        }
        let t = line.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if t.is_empty() {
            continue;
        }
        if is_comment(t) {
            comments += 1;
            continue;
        }
        content += 1;
        let (v, _) = split_trailing_comment(t);
        let single = !v.contains(char::is_whitespace);
        if single && parse_entry(v).is_ok() {
            good += 1;
            list_shaped += 1;
        } else if single && mistyped_value(v) {
            list_shaped += 1;
        }
    }
    if content == 0 {
        return comments > 0;
    }
    good > 0 && (good * 10 >= content * 8 || list_shaped == content)
}

/// A token that was meant as an address, network or hash but is not a
/// valid one: only digits, dots, `/`, `:` and defang brackets with at
/// least one dot (`300.1.1.1`, `10.0.0.0/33`, `1.2.3[.]4:99999`), or a run
/// of 24 or more hex digits of the wrong length.
fn mistyped_value(t: &str) -> bool {
    let b = t.as_bytes();
    let addressy = b.iter().any(u8::is_ascii_digit)
        && b.contains(&b'.')
        && b.iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'/' | b':' | b'[' | b']'));
    let hexy = b.len() >= 24 && b.iter().all(u8::is_ascii_hexdigit);
    addressy || hexy
}

/// Read a plain list. Lines that are not an indicator are rejected with
/// their number; comments and blank lines are ignored.
pub fn read(b: &[u8], file: &str, opts: &ReadOptions, out: &mut ParsedFeed) {
    // One indicator per line at most: reserving up front saves re-copying
    // a large vector several times on million-line lists.
    out.indicators
        .reserve(memchr::memchr_iter(b'\n', b).count().saturating_add(1));
    // A slice cannot fail to read.
    let _ = read_from(b, file, opts, out);
}

/// [`read`] from a stream: the list is read line by line, so memory is that
/// of the indicators kept, not of the file.
pub fn read_from(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    out: &mut ParsedFeed,
) -> std::io::Result<()> {
    let mut lines = LineReader::new(reader);
    while let Some((no, raw)) = lines.next_line()? {
        match read_line(no, raw, file, opts) {
            Some(Ok(ind)) => out.indicators.push(ind),
            Some(Err((reason, text))) => out.reject(file, no, reason, &text),
            None => {}
        }
    }
    Ok(())
}

/// Read a plain list from a stream, one indicator at a time, so that a list
/// of ten million entries never sits in memory as a whole. Each indicator
/// has the window policy applied ([`super::apply_window_policy`]).
/// Rejections are handed to `on_reject`. Returns the I/O error that ended
/// the stream early, if any.
pub fn read_stream(
    reader: impl std::io::BufRead,
    file: &str,
    opts: &ReadOptions,
    mut on_indicator: impl FnMut(Indicator),
    mut on_reject: impl FnMut(crate::model::Rejected),
) -> std::io::Result<()> {
    let mut lines = LineReader::new(reader);
    while let Some((no, raw)) = lines.next_line()? {
        match read_line(no, raw, file, opts) {
            Some(Ok(mut ind)) => {
                super::apply_window_policy(&mut ind, opts);
                on_indicator(ind)
            }
            Some(Err((reason, text))) => on_reject(crate::model::Rejected {
                file: file.to_string(),
                line: no,
                reason,
                raw: crate::model::excerpt(&text),
            }),
            None => {}
        }
    }
    Ok(())
}

/// One line of a plain list: `None` for blank and comment lines, the
/// indicator, or the reason and text of a rejection.
fn read_line(
    no: u64,
    raw: &[u8],
    file: &str,
    opts: &ReadOptions,
) -> Option<Result<Indicator, (String, String)>> {
    let line = text(raw);
    let t = line.trim();
    if t.is_empty() || is_comment(t) {
        return None;
    }
    let (value, comment) = split_trailing_comment(t);
    let mut description = comment.map(str::to_string);
    let port;
    let v = match parse_entry(value) {
        Ok((v, p)) => {
            port = p;
            v
        }
        Err(e) => {
            // `value free text`: the first token is the value.
            let first = value.split(char::is_whitespace).next().unwrap_or("");
            match (first.len() < value.len())
                .then(|| parse_entry(first))
                .and_then(Result::ok)
            {
                Some((v, p)) => {
                    port = p;
                    let rest = value[first.len()..].trim();
                    description = Some(match description {
                        Some(c) => format!("{rest} {c}"),
                        None => rest.to_string(),
                    });
                    v
                }
                None => return Some(Err((e, t.to_string()))),
            }
        }
    };
    let mut ind = Indicator::new(v, provenance(opts, file, no));
    ind.description = description.map(|d| crate::model::excerpt(&d));
    if let Some(p) = port {
        ind.tags.other.push(format!("port={p}"));
    }
    Some(Ok(ind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_iteration() {
        fn all(b: &[u8]) -> Vec<(u64, Vec<u8>)> {
            let mut r = LineReader::new(b);
            let mut v = Vec::new();
            while let Ok(Some((no, l))) = r.next_line() {
                v.push((no, l.to_vec()));
            }
            v
        }
        assert_eq!(
            all(b"\xef\xbb\xbfa\r\nb\n\nc"),
            vec![
                (1, b"a".to_vec()),
                (2, b"b".to_vec()),
                (3, b"".to_vec()),
                (4, b"c".to_vec())
            ]
        );
        assert_eq!(all(b"a\n").len(), 1);
        assert_eq!(all(b"").len(), 0);
        assert_eq!(all(b"\n").len(), 1);
    }

    #[test]
    fn trailing_comments() {
        assert_eq!(
            split_trailing_comment("1.2.3.4 # x"),
            ("1.2.3.4", Some("x"))
        );
        assert_eq!(
            split_trailing_comment("1.2.3.0/24 ; SBL1"),
            ("1.2.3.0/24", Some("SBL1"))
        );
        assert_eq!(
            split_trailing_comment("http://a/b#c"),
            ("http://a/b#c", None)
        );
        assert_eq!(
            split_trailing_comment("a.example\t// c"),
            ("a.example", Some("c"))
        );
    }

    #[test]
    fn fast_path_agrees_with_parse_value() {
        for s in ["1.2.3.4", "10.1.2.3/8", "1.2.3.4/32", "0.0.0.0/0"] {
            assert_eq!(fast_ipv4(s), parse_value(s, None).ok(), "{s}");
        }
        assert_eq!(fast_ipv4("1.2.3.999"), None);
        assert_eq!(fast_ipv4("1.2.3.4/33"), None);
    }
}
