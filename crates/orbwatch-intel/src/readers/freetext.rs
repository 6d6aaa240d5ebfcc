//! Indicators extracted from prose: research write-ups, IOC appendices,
//! pasted tables.
//!
//! Reports on relay networks (KV-botnet, AVrecon, ArcaneDoor…) publish their
//! indicators as text, defanged so that nobody clicks them, often in a table
//! that says *when* each address was in use. The time frame matters more than
//! the address: relay routers change hands within weeks. So besides the
//! values this reader takes the dates written on the same line of a short,
//! table-like line as first/last seen, and the rest of that line (the role
//! column: "Proxy Router C2", "Payload Server") as roles.
//!
//! Extraction is conservative, to keep prose out of the feed:
//! - IPv4 (`1.2.3[.]4`, CIDR, `ip:port`) only with strict boundaries:
//!   `1.2.3.4.5` and version numbers are not addresses;
//! - IPv6 when the token parses as one;
//! - hashes: hex runs of exactly 32/40/64/128 digits as whole tokens,
//!   `Sha256:…`-style labels checked against the length;
//!   under a heading about certificates or fingerprints, they are
//!   certificate fingerprints;
//! - URLs with a scheme (`hxxp`, `[:]` refanged);
//! - domains only when defanged, or when the top-level domain is a real one
//!   and the name does not look like a file (`Kv-all.sh`, `setup.exe`).
//!
//! A value counts once per line; the same value on two lines gives two
//! indicators (two time frames are two windows).
//!
//! Date forms understood (en dash, em dash, `-` or `to` between):
//! `Dec 5, 2023 - Jan 3, 2024`, `Feb. 7 – May 6 2022` (the end's year applies
//! to the start), `May – Nov. 2 2022` (a month without a day starts on its
//! first day and ends on its last), `Nov. 15 – 20, 2023`, `Dec 15, 2023`
//! (first = last), `5 Dec 2023`, `2023-12-05`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::Date;

use super::plain::{LineReader, provenance, text};
use super::{ParsedFeed, ReadOptions};
use crate::model::{HashAlgo, Indicator, IndicatorValue, Tags, excerpt};
use crate::value::{TypeHint, is_domain, parse_value, refang};

/// Top-level domains accepted for domains that are not defanged.
const TLDS: &str = "com net org info biz edu gov mil int arpa io co me tv cc ws xyz top online site \
club shop store app dev tech live pro name mobi asia tel travel jobs cat coop aero museum icu vip \
win bid loan work click link space website fun host press news today world life email cloud agency \
digital network solutions services support global center company group ltd llc onion page blog art \
design lol mom party review stream download racing date faith trade webcam science accountant \
cricket men gdn kim ooo rest buzz monster cyou sbs cfd bond quest rocks tokyo xin ren ink zone guru \
one best uno pw su \
ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw \
by bz ca cd cf cg ch ci ck cl cm cn cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi \
fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im \
in iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc \
md mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa \
pe pf pg ph pk pl pm pn pr ps pt py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss \
st sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tw tz ua ug uk us uy uz va vc ve vg vi vn vu \
wf ye yt za zm zw";

/// File extensions: a name ending in one of these is a file, not a domain,
/// unless it is defanged (even where the TLD exists: `.sh`, `.py`, `.zip`).
const FILE_EXTS: &str = "sh bash exe dll bin py pyc txt json zip so elf ps1 psm1 bat cmd vbs vbe \
js jse jar apk msi doc docx docm xls xlsx xlsm ppt pptx pdf rtf lnk iso img vhd vhdx tar gz tgz bz2 \
xz 7z rar cab dat log cfg conf ini xml html htm php asp aspx jsp rb c h cpp md csv yaml yml tmp sys \
drv scr hta o ko dmg pkg deb rpm gif png jpg jpeg svg ico css map lock toml go java class war swf \
pem crt cer der key pub ovpn db sqlite bak old out arm mips mipsel x86 x64 i686 ppc sparc m68k rs \
mpsl mov";

static TLD_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| TLDS.split_whitespace().collect());
static EXT_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| FILE_EXTS.split_whitespace().collect());

/// URL schemes accepted in text.
const SCHEMES: &[&str] = &[
    "http", "https", "ftp", "ftps", "sftp", "ws", "wss", "tcp", "udp", "smb", "ssh", "telnet",
];

/// Characters that end a token.
fn is_sep(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ',' | ';'
                | '"'
                | '\''
                | '<'
                | '>'
                | '|'
                | '`'
                | '\u{2018}'
                | '\u{2019}'
                | '\u{201c}'
                | '\u{201d}'
                | '\u{ab}'
                | '\u{bb}'
                | '\u{200b}'
                | '\u{feff}'
        )
}

/// Tokens of a line with their byte ranges.
fn tokens(line: &str) -> Vec<(Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in line.char_indices() {
        if is_sep(c) {
            if let Some(s) = start.take() {
                out.push((s..i, &line[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s..line.len(), &line[s..]));
    }
    out
}

/// A label before a value (`Sha256:`, `MD5:`, `Fingerprint:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Hash(Option<HashAlgo>),
    Cert(Option<HashAlgo>),
    Other,
}

fn label_of(word: &str) -> Label {
    let w: String = word
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    if let Some(a) = HashAlgo::from_name(&w) {
        return Label::Hash(Some(a));
    }
    match w.as_str() {
        "hash" | "filehash" | "hashes" => Label::Hash(None),
        "cert" | "certificate" | "fingerprint" | "thumbprint" | "x509" => Label::Cert(None),
        _ => Label::Other,
    }
}

/// What one token turned out to be.
enum Tok {
    Nothing,
    /// A label on its own (`Sha1:`), which applies to the next token.
    Label(Label),
    Value(IndicatorValue),
    Reject(String),
}

fn strip_punct(t: &str) -> &str {
    const TRAIL: [char; 6] = ['.', ',', ':', ';', '!', '?'];
    let t = t.trim_start_matches(['(', '[', '{', '*', '\u{2022}']);
    let mut t = t.trim_end_matches(['.', ',', ':', ';', '!', '?', '*', '\u{2026}']);
    // Closing brackets only when unbalanced: keep `1.2.3[.]4`, drop `(1.2.3.4)`.
    // Counted once, so that a token of a million `)` stays linear.
    let count = |b: u8| t.bytes().filter(|x| *x == b).count();
    let open = [count(b'('), count(b'['), count(b'{')];
    let mut close = [count(b')'), count(b']'), count(b'}')];
    while let Some(last) = t.bytes().last() {
        let k = match last {
            b')' => 0,
            b']' => 1,
            b'}' => 2,
            _ => break,
        };
        if open[k] >= close[k] {
            break;
        }
        close[k] -= 1;
        t = &t[..t.len() - 1];
        // The trimmed punctuation holds no brackets: the counts stay right.
        t = t.trim_end_matches(TRAIL);
    }
    t
}

fn has_letter(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Is `v` (refanged, lower case) a host we accept as a domain here?
fn accept_domain(host: &str, defanged: bool) -> bool {
    let host = host.trim_end_matches('.');
    if !is_domain(host)
        || host
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if defanged {
        return true;
    }
    let last = host.rsplit('.').next().unwrap_or("");
    TLD_SET.contains(last) && !EXT_SET.contains(last)
}

/// Parse the dotted-quad forms: `a.b.c.d`, `/len`, `:port`, ranges.
fn ipv4ish(v: &str, defanged: bool) -> Option<Tok> {
    if !v
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'/' | b':' | b'-'))
    {
        return None;
    }
    if v.contains('-') {
        return match parse_value(v, Some(TypeHint::Cidr)) {
            Ok(r @ IndicatorValue::Range { .. }) => Some(Tok::Value(r)),
            _ => None,
        };
    }
    // `a.b.c.d:port`: the port is not part of the indicator.
    let addr = match v.split_once(':') {
        Some((a, p)) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => a,
        Some(_) => return None,
        None => v,
    };
    let (ip, len) = match addr.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (addr, None),
    };
    let parts: Vec<&str> = ip.split('.').collect();
    if parts.len() != 4 || parts.iter().any(|p| p.is_empty() || p.len() > 3) {
        return None;
    }
    let Ok(addr4) = ip.parse::<Ipv4Addr>() else {
        return defanged.then(|| Tok::Reject(format!("`{ip}` is not a valid IPv4 address")));
    };
    match len {
        None => Some(Tok::Value(IndicatorValue::Ip(IpAddr::V4(addr4)))),
        Some(l) => match parse_value(&format!("{ip}/{l}"), Some(TypeHint::Cidr)) {
            Ok(v) => Some(Tok::Value(v)),
            Err(e) => defanged.then_some(Tok::Reject(e)),
        },
    }
}

fn ipv6ish(v: &str) -> Option<IndicatorValue> {
    if v.matches(':').count() < 2 {
        return None;
    }
    let v = v.strip_prefix('[').unwrap_or(v);
    let v = match v.find(']') {
        Some(i) => &v[..i],
        None => v,
    };
    let (addr, len) = match v.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (v, None),
    };
    let ip: Ipv6Addr = addr.parse().ok()?;
    if ip.is_unspecified() {
        return None;
    }
    match len {
        None => Some(IndicatorValue::Ip(IpAddr::V6(ip))),
        Some(_) => parse_value(v, Some(TypeHint::Cidr)).ok(),
    }
}

fn url(v: &str) -> Option<IndicatorValue> {
    let (scheme, rest) = v.split_once("://")?;
    if !SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(h) = host.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    let host_ok = host.parse::<IpAddr>().is_ok() || is_domain(host.trim_end_matches('.'));
    if !host_ok {
        return None;
    }
    parse_value(v, Some(TypeHint::Url)).ok()
}

/// Classify one token. `pending` is a label from the token before.
fn classify(raw: &str, pending: Option<Label>, cert_context: bool) -> Tok {
    let t = raw.trim_start_matches(['(', '[', '{', '*']);
    // A lone label: `Sha1:`.
    if let Some(w) = t.strip_suffix(':').or_else(|| t.strip_suffix('=')) {
        let l = label_of(w);
        if l != Label::Other {
            return Tok::Label(l);
        }
    }
    let t = strip_punct(raw);
    if t.is_empty() || t.contains('@') {
        return Tok::Nothing;
    }
    // Cheap exit for words.
    if t.len() < 32 && !t.contains(['.', ':', '[', '(', '{']) {
        return Tok::Nothing;
    }
    let mut label = pending;
    let mut body = t;
    let refanged_whole = refang(t);
    if ipv6ish(&refanged_whole).is_none()
        && let Some(i) = t.find([':', '='])
    {
        let (head, tail) = (&t[..i], &t[i + 1..]);
        let is_word = !head.is_empty()
            && head
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && has_letter(head);
        if is_word && !tail.starts_with("//") && !tail.starts_with("[/") {
            let l = label_of(head);
            if l != Label::Other || !tail.is_empty() {
                label = Some(l);
                body = tail.trim_start_matches(['=', ':']);
            }
        }
    }
    let body = strip_punct(body);
    if body.is_empty() {
        return Tok::Nothing;
    }
    let v = refang(body);
    let defanged = v != body;

    if v.contains("://") {
        return url(&v).map_or(Tok::Nothing, Tok::Value);
    }
    if let Some(ip) = ipv6ish(&v) {
        return Tok::Value(ip);
    }
    if let Some(tok) = ipv4ish(&v, defanged) {
        return tok;
    }
    // Hashes: a whole token of hex digits.
    if v.len() >= 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        let by_len = HashAlgo::from_hex_len(v.len());
        let (labelled, cert) = match label {
            Some(Label::Hash(a)) => (a, cert_context),
            Some(Label::Cert(a)) => (a, true),
            _ => (None, cert_context),
        };
        return match (by_len, labelled) {
            (Some(a), Some(l)) if a != l => Tok::Reject(format!(
                "`{v}` is labelled {} but has {} hex digits, the length of {}",
                l.as_str(),
                v.len(),
                a.as_str()
            )),
            (Some(algo), _) => {
                let hex = v.to_ascii_lowercase();
                Tok::Value(if cert {
                    IndicatorValue::CertFingerprint { algo, hex }
                } else {
                    IndicatorValue::Hash { algo, hex }
                })
            }
            (None, Some(l)) => Tok::Reject(format!(
                "`{}` is labelled {} but has {} hex digits",
                excerpt(&v),
                l.as_str(),
                v.len()
            )),
            (None, None) => Tok::Nothing,
        };
    }
    // Domains: `host`, `host:port` or `host/path` without a scheme.
    let host = v.split(['/', '?', '#']).next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.to_ascii_lowercase();
    if accept_domain(&host, defanged) {
        return Tok::Value(IndicatorValue::Domain(
            host.trim_end_matches('.').to_string(),
        ));
    }
    Tok::Nothing
}

/// What one line gave.
#[derive(Default)]
struct LineScan {
    values: Vec<IndicatorValue>,
    /// The values already taken on this line (a value counts once per line).
    seen: HashSet<IndicatorValue>,
    rejects: Vec<String>,
    /// Byte ranges of tokens used as values or labels.
    used: Vec<Range<usize>>,
}

fn scan_line(line: &str, cert_context: bool) -> LineScan {
    let mut s = LineScan::default();
    let mut pending: Option<Label> = None;
    for (range, tok) in tokens(line) {
        match classify(tok, pending.take(), cert_context) {
            Tok::Nothing => {}
            Tok::Label(l) => {
                pending = Some(l);
                s.used.push(range);
            }
            Tok::Value(v) => {
                if s.seen.insert(v.clone()) {
                    s.values.push(v);
                }
                s.used.push(range);
            }
            Tok::Reject(r) => {
                s.rejects.push(r);
                s.used.push(range);
            }
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dt {
    Month(i8),
    /// A number and how many digits it had.
    Num(u32, usize),
    Dash,
    Iso(Date),
    Other,
}

fn month(w: &str) -> Option<i8> {
    let w = w.to_ascii_lowercase();
    Some(match w.as_str() {
        "jan" | "january" => 1,
        "feb" | "february" => 2,
        "mar" | "march" => 3,
        "apr" | "april" => 4,
        "may" => 5,
        "jun" | "june" => 6,
        "jul" | "july" => 7,
        "aug" | "august" => 8,
        "sep" | "sept" | "september" => 9,
        "oct" | "october" => 10,
        "nov" | "november" => 11,
        "dec" | "december" => 12,
        _ => return None,
    })
}

fn date_token(w: &str) -> Dt {
    if matches!(w, "-" | "\u{2013}" | "\u{2014}" | "\u{2012}" | "~")
        || w.eq_ignore_ascii_case("to")
        || w.eq_ignore_ascii_case("until")
        || w.eq_ignore_ascii_case("through")
        || w.eq_ignore_ascii_case("thru")
    {
        return Dt::Dash;
    }
    let b = w.as_bytes();
    if b.len() >= 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && let Some(Ok(d)) = w.get(..10).map(str::parse::<Date>)
    {
        return Dt::Iso(d);
    }
    let core = w.trim_matches(|c: char| matches!(c, ',' | '.' | '(' | ')' | ':' | ';'));
    if let Some(m) = month(core) {
        return Dt::Month(m);
    }
    if !core.is_empty() && core.len() <= 4 && core.bytes().all(|b| b.is_ascii_digit()) {
        return Dt::Num(core.parse().unwrap_or(0), core.len());
    }
    Dt::Other
}

#[derive(Debug, Clone, Copy, Default)]
struct Endpoint {
    y: Option<i16>,
    m: Option<i8>,
    d: Option<i8>,
}

fn is_day(t: Dt) -> Option<i8> {
    match t {
        Dt::Num(n, len) if len <= 2 && (1..=31).contains(&n) => Some(n as i8),
        _ => None,
    }
}

fn is_year(t: Dt) -> Option<i16> {
    match t {
        Dt::Num(n, 4) if (1970..=2100).contains(&n) => Some(n as i16),
        _ => None,
    }
}

/// Parse an endpoint at `i`; `day_only` allows `20, 2023` (a day of the
/// start's month). Returns the endpoint and the index after it.
fn endpoint(t: &[Dt], i: usize, day_only: bool) -> Option<(Endpoint, usize)> {
    let at = |k: usize| t.get(k).copied().unwrap_or(Dt::Other);
    match at(i) {
        Dt::Iso(d) => Some((
            Endpoint {
                y: Some(d.year()),
                m: Some(d.month()),
                d: Some(d.day()),
            },
            i + 1,
        )),
        Dt::Month(m) => {
            let mut e = Endpoint {
                m: Some(m),
                ..Default::default()
            };
            let mut k = i + 1;
            if let Some(d) = is_day(at(k)) {
                e.d = Some(d);
                k += 1;
            }
            if let Some(y) = is_year(at(k)) {
                e.y = Some(y);
                k += 1;
            }
            Some((e, k))
        }
        other => {
            let d = is_day(other)?;
            if let Dt::Month(m) = at(i + 1) {
                let mut e = Endpoint {
                    y: None,
                    m: Some(m),
                    d: Some(d),
                };
                let mut k = i + 2;
                if let Some(y) = is_year(at(k)) {
                    e.y = Some(y);
                    k += 1;
                }
                return Some((e, k));
            }
            if !day_only {
                return None;
            }
            let mut e = Endpoint {
                d: Some(d),
                ..Default::default()
            };
            let mut k = i + 1;
            if let Some(y) = is_year(at(k)) {
                e.y = Some(y);
                k += 1;
            }
            Some((e, k))
        }
    }
}

fn midnight(d: Date) -> Option<Timestamp> {
    jiff::tz::TimeZone::UTC.to_timestamp(d.at(0, 0, 0, 0)).ok()
}

fn first_day(y: i16, m: i8, d: Option<i8>) -> Option<Date> {
    Date::new(y, m, d.unwrap_or(1)).ok()
}

fn last_day(y: i16, m: i8, d: Option<i8>) -> Option<Date> {
    match d {
        Some(d) => Date::new(y, m, d).ok(),
        None => Date::new(y, m, 1).ok().map(|x| x.last_of_month()),
    }
}

/// Resolve a range: missing years come from the other end (crossing a new
/// year when the months go backwards), a missing end month from the start.
fn resolve(a: Endpoint, b: Endpoint) -> Option<(Date, Date)> {
    let m1 = a.m?;
    let m2 = b.m.unwrap_or(m1);
    let (y1, y2) = match (a.y, b.y) {
        (Some(y1), Some(y2)) => (y1, y2),
        (None, Some(y2)) => (if m1 > m2 { y2 - 1 } else { y2 }, y2),
        (Some(y1), None) => (y1, if m2 < m1 { y1 + 1 } else { y1 }),
        (None, None) => return None,
    };
    let start = first_day(y1, m1, a.d)?;
    let end = last_day(y2, m2, b.d)?;
    (start <= end).then_some((start, end))
}

/// Find a date or date range in `s`. Returns first and last day and the
/// byte ranges of the words that made it.
fn find_dates(s: &str) -> Option<(Timestamp, Timestamp, Vec<Range<usize>>)> {
    let words: Vec<(Range<usize>, &str)> = {
        let mut v = Vec::new();
        let mut start = None;
        for (i, c) in s.char_indices() {
            if c.is_whitespace() {
                if let Some(st) = start.take() {
                    v.push((st..i, &s[st..i]));
                }
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(st) = start {
            v.push((st..s.len(), &s[st..]));
        }
        v
    };
    let toks: Vec<Dt> = words.iter().map(|(_, w)| date_token(w)).collect();
    for i in 0..toks.len() {
        if !matches!(toks[i], Dt::Month(_) | Dt::Iso(_)) && is_day(toks[i]).is_none() {
            continue;
        }
        let Some((a, j)) = endpoint(&toks, i, false) else {
            continue;
        };
        let span_of = |from: usize, to: usize| -> Vec<Range<usize>> {
            words
                .get(from..to)
                .unwrap_or_default()
                .iter()
                .map(|(r, _)| r.clone())
                .collect()
        };
        if toks.get(j) == Some(&Dt::Dash)
            && let Some((b, k)) = endpoint(&toks, j + 1, true)
        {
            // A range that does not resolve (no year, start after end, no
            // such day) gives no dates rather than a wrong one.
            let (d1, d2) = resolve(a, b)?;
            return Some((midnight(d1)?, midnight(d2)?, span_of(i, k)));
        }
        // A single date needs a year and a month.
        if let (Some(y), Some(m)) = (a.y, a.m)
            && let (Some(d1), Some(d2)) = (first_day(y, m, a.d), last_day(y, m, a.d))
        {
            return Some((midnight(d1)?, midnight(d2)?, span_of(i, j)));
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

/// Normalised roles for a role column text.
fn roles(text: &str) -> Vec<&'static str> {
    let t = text.to_ascii_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '&')
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    let mut r = Vec::new();
    let c2 = has("c2")
        || has("c&c")
        || has("cnc")
        || t.contains("command and control")
        || t.contains("command-and-control")
        || t.contains("command & control");
    if c2 {
        r.push("c2");
    }
    if t.contains("callback") {
        r.push("callback");
    }
    if t.contains("payload") {
        r.push("payload");
    }
    if t.contains("controller") {
        r.push(if has("upstream") {
            "upstream-controller"
        } else {
            "controller"
        });
    }
    if !c2 && (has("proxy") || has("relay") || has("orb")) {
        r.push("relay");
    }
    if t.contains("scann") || has("scan") {
        r.push("scanner");
    }
    if t.contains("exfil") {
        r.push("exfiltration");
    }
    if t.contains("phish") {
        r.push("phishing");
    }
    r
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_cert_heading(h: &str) -> bool {
    let l = h.to_ascii_lowercase();
    l.contains("certificate")
        || l.contains("fingerprint")
        || l.contains("x.509")
        || l.contains("x509")
}

/// Lines longer than this (in words, values removed) are prose: dates on
/// them are not taken as the value's time frame.
const TABLE_MAX_WORDS: usize = 12;
/// Role texts longer than this are not a role column.
const ROLE_MAX_WORDS: usize = 8;

/// Extract indicators from free text.
pub fn read(b: &[u8], file: &str, opts: &ReadOptions, out: &mut ParsedFeed) {
    // A slice cannot fail to read.
    let _ = read_from(b, file, opts, out);
}

/// [read] from a stream, line by line (the state carried from line to line is the last heading).
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
    let mut heading: Option<String> = None;
    let mut cert_context = false;
    let mut lines = LineReader::new(reader);
    while let Some((no, raw)) = lines.next_line()? {
        super::hand_on_full(out, opts, &mut sink);
        let line = text(raw);
        let scan = scan_line(&line, cert_context);
        for r in &scan.rejects {
            out.reject(file, no, r.as_str(), &line);
        }
        if scan.values.is_empty() {
            if scan.rejects.is_empty() && line.chars().any(char::is_alphanumeric) {
                let h = collapse(&line);
                cert_context = is_cert_heading(&h);
                heading = Some(excerpt(&h));
            }
            continue;
        }
        // The line without its values (and labels), built in one pass.
        let mut rest = String::with_capacity(line.len());
        let mut last = 0;
        for r in &scan.used {
            rest.push_str(line.get(last..r.start).unwrap_or(""));
            rest.extend(std::iter::repeat_n(' ', r.len()));
            last = r.end;
        }
        rest.push_str(line.get(last..).unwrap_or(""));
        let words = rest.split_whitespace().count();
        let table_like = words <= TABLE_MAX_WORDS;
        let mut dates = None;
        if table_like && let Some((first, last, spans)) = find_dates(&rest) {
            for r in spans {
                if let Some(seg) = rest.get(r.clone()) {
                    let blank = " ".repeat(seg.len());
                    rest.replace_range(r, &blank);
                }
            }
            dates = Some((first, last));
        }
        let role_text = collapse(rest.trim_matches(|c: char| {
            c.is_whitespace() || matches!(c, '-' | '\u{2013}' | '\u{2014}' | ':' | ',' | '|')
        }));
        let description = if !table_like {
            Some(excerpt(&collapse(&line)))
        } else if !role_text.is_empty() && role_text.chars().any(char::is_alphanumeric) {
            Some(excerpt(&role_text))
        } else {
            heading.clone()
        };
        let mut tags = Tags::default();
        if dates.is_some()
            && !role_text.is_empty()
            && role_text.split_whitespace().count() <= ROLE_MAX_WORDS
            && role_text.chars().any(char::is_alphabetic)
        {
            for r in roles(&role_text) {
                Tags::push_unique(&mut tags.roles, r);
            }
            Tags::push_unique(&mut tags.other, role_text.as_str());
        }
        for v in scan.values {
            let mut ind = Indicator::new(v, provenance(opts, file, no));
            if let Some((first, last)) = dates {
                ind.first_seen = Some(first);
                ind.last_seen = Some(last);
            }
            ind.tags = tags.clone();
            ind.description = description.clone();
            out.indicators.push(ind);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(line: &str) -> Vec<String> {
        scan_line(line, false)
            .values
            .iter()
            .map(|v| v.to_string())
            .collect()
    }

    fn range(s: &str) -> Option<(String, String)> {
        find_dates(s).map(|(a, b, _)| {
            (
                a.to_string()[..10].to_string(),
                b.to_string()[..10].to_string(),
            )
        })
    }

    #[test]
    fn extraction() {
        assert_eq!(
            vals("152.32.138[.]247\tDec 5, 2023"),
            vec!["152.32.138.247"]
        );
        assert_eq!(vals("see (1.2.3.4) and 1.2.3.4."), vec!["1.2.3.4"]);
        assert!(vals("version 1.2.3.4.5 and 1.2.3").is_empty());
        assert_eq!(
            vals("evil[.]example and hxxp://bad[.]example/x"),
            vec!["evil.example", "http://bad.example/x"]
        );
        assert!(vals("e.g. Kv-all.sh or setup.exe, i.e. node.js, utils2.rs").is_empty());
        assert_eq!(vals("go to example.com now"), vec!["example.com"]);
        assert_eq!(vals("utcp[.]cc"), vec!["utcp.cc"]);
        assert_eq!(vals("evil(.)example [dot] x"), vec!["evil.example"]);
        assert_eq!(vals("bad[dot]example"), vec!["bad.example"]);
        assert_eq!(
            vals("2001:db8::1 and [2001:db8::2]:443"),
            vec!["2001:db8::1", "2001:db8::2"]
        );
        assert_eq!(vals("at 10:20:30 on std::vector"), Vec::<String>::new());
        assert_eq!(
            vals("10.0.0.0/8 1.2.3.4:8080"),
            vec!["10.0.0.0/8", "1.2.3.4"]
        );
        assert_eq!(
            vals("Sha256:c524e118b1e263fccac6e94365b3a0b148a53ea96df21c8377ccd8ec3d6a0874\u{a0}"),
            vec!["c524e118b1e263fccac6e94365b3a0b148a53ea96df21c8377ccd8ec3d6a0874"]
        );
        assert_eq!(
            vals("Sha1:\u{a0} 08ad4f940d488587697820d13c3d175a05e5fa6c").len(),
            1
        );
        let s = scan_line("Sha1:3a2ef359ee152f2f4b19c418d7b3cbee", false);
        assert!(s.values.is_empty());
        assert_eq!(s.rejects.len(), 1);
        assert!(vals("abcdef0123456789abcdef0123456789abc").is_empty());
        assert!(vals("user@evil.example").is_empty());
        assert_eq!(vals("1.2.3[.]4 1.2.3.4"), vec!["1.2.3.4"]);
    }

    #[test]
    fn dates() {
        let r = |s: &str| range(s).map(|(a, b)| format!("{a} {b}"));
        assert_eq!(
            r("Dec 5, 2023 - Jan 3, 2024").unwrap(),
            "2023-12-05 2024-01-03"
        );
        assert_eq!(
            r("Feb. 7 \u{2013} May 6 2022").unwrap(),
            "2022-02-07 2022-05-06"
        );
        assert_eq!(
            r("May \u{2013} Nov. 2 2022").unwrap(),
            "2022-05-01 2022-11-02"
        );
        assert_eq!(
            r("Nov. 15 \u{2013} 20, 2023").unwrap(),
            "2023-11-15 2023-11-20"
        );
        assert_eq!(
            r("Dec 15, 2023 Payload Server").unwrap(),
            "2023-12-15 2023-12-15"
        );
        assert_eq!(
            r("April \u{2013} Dec. 6 2023").unwrap(),
            "2023-04-01 2023-12-06"
        );
        assert_eq!(
            r("Nov. 12 \u{2013} Dec. 2022").unwrap(),
            "2022-11-12 2022-12-31"
        );
        assert_eq!(
            r("Nov. 28, 2022 \u{2013} Nov. 13 2023").unwrap(),
            "2022-11-28 2023-11-13"
        );
        assert_eq!(
            r("Nov. 12 \u{2013} Jan. 3 2023").unwrap(),
            "2022-11-12 2023-01-03"
        );
        assert_eq!(
            r("2023-01-02 to 2023-02-03").unwrap(),
            "2023-01-02 2023-02-03"
        );
        assert_eq!(r("5 Dec 2023").unwrap(), "2023-12-05 2023-12-05");
        assert_eq!(r("Dec. 2022").unwrap(), "2022-12-01 2022-12-31");
        assert!(r("May 6").is_none());
        assert!(r("you may see 12 of them").is_none());
        assert!(r("Feb 30, 2023").is_none());
        assert!(r("Dec 6 2023 - Feb 1 2023").is_none());
        // Multi-byte text where an ISO date would be must not split a char.
        assert!(r("2023-\u{e9}-a\u{e9}").is_none());
    }

    #[test]
    fn role_names() {
        assert_eq!(roles("Proxy Router C2"), vec!["c2"]);
        assert_eq!(roles("Callback Server"), vec!["callback"]);
        assert_eq!(roles("1st stage Payload Server"), vec!["payload"]);
        assert_eq!(
            roles("1st stage Upstream Controller"),
            vec!["upstream-controller"]
        );
        assert_eq!(roles("Relay node"), vec!["relay"]);
    }
}
