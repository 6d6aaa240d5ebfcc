//! Turning the text a feed gives into a normalised [`IndicatorValue`].
//!
//! Reports defang values so that nobody clicks them (`1.2.3[.]4`,
//! `hxxp://`, `evil(.)example`, `[:]`, `[dot]`). Every reader goes through
//! [`refang`] and [`parse_value`] so that the same value written two ways is
//! the same indicator.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{HashAlgo, IndicatorValue};

/// What the feed says a value is, when it says anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeHint {
    Ip,
    Cidr,
    Domain,
    Url,
    Hash(Option<HashAlgo>),
    Cert(Option<HashAlgo>),
}

/// Undo the usual defanging conventions. Idempotent on clean values.
pub fn refang(s: &str) -> String {
    let mut out = s.trim().to_string();
    if out.is_empty() {
        return out;
    }
    // Cheap exit: nothing that looks defanged.
    if !out.contains(['[', '(', '{'])
        && !out.to_ascii_lowercase().contains("hxxp")
        && !out.to_ascii_lowercase().contains("fxp")
        && !out.contains('\\')
    {
        return out;
    }
    for pat in [
        "[.]", "(.)", "{.}", "[dot]", "(dot)", "{dot}", "[DOT]", "(DOT)", "{DOT}",
    ] {
        out = out.replace(pat, ".");
    }
    out = out.replace("\\.", ".");
    for pat in ["[:]", "(:)", "{:}"] {
        out = out.replace(pat, ":");
    }
    for pat in ["[/]", "(/)"] {
        out = out.replace(pat, "/");
    }
    for pat in ["[@]", "(@)", "[at]", "(at)"] {
        out = out.replace(pat, "@");
    }
    // `hxxp`, `hXXp`, `hxxps`, `fxp` schemes, and `http[:]//` handled above.
    let lower = out.to_ascii_lowercase();
    for (bad, good) in [("hxxps", "https"), ("hxxp", "http"), ("fxp", "ftp")] {
        if lower.starts_with(bad) {
            out = format!("{good}{}", &out[bad.len()..]);
            break;
        }
    }
    // A lone leading/trailing bracket left over from `[1.2.3.4]`.
    let trimmed = out.trim_matches(|c| c == '[' || c == ']');
    if trimmed.parse::<IpAddr>().is_ok() {
        return trimmed.to_string();
    }
    out
}

/// Is this a plausible DNS name (after refanging)? Requires at least one dot,
/// labels of letters, digits, `-`, `_`, and a TLD that is not all digits.
pub fn is_domain(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.len() > 253 || !s.contains('.') {
        return false;
    }
    let mut labels = 0;
    for label in s.split('.') {
        if label.is_empty() || label.len() > 63 {
            return false;
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
        labels += 1;
    }
    let tld = s.rsplit('.').next().unwrap_or("");
    labels >= 2 && tld.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Dotted-quad IPv4 that tolerates leading zeros (`192.030.0.6`), read as
/// decimal like the log scanner does. Rust's parser refuses them.
pub fn parse_ipv4_lenient(s: &str) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    parts
        .next()
        .is_none()
        .then(|| std::net::Ipv4Addr::from(octets))
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| parse_ipv4_lenient(s).map(IpAddr::V4))
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parse an `a.b.c.d-e.f.g.h` range (spaces around the dash allowed).
fn parse_range(s: &str) -> Option<IndicatorValue> {
    let (a, b) = s.split_once('-')?;
    let first: IpAddr = a.trim().parse().ok()?;
    let last: IpAddr = b.trim().parse().ok()?;
    if first.is_ipv4() != last.is_ipv4() || first > last {
        return None;
    }
    Some(IndicatorValue::Range { first, last })
}

fn parse_cidr(s: &str) -> Result<IndicatorValue, String> {
    let net: IpNet = s
        .parse()
        .map_err(|_| format!("`{s}` is not a valid CIDR network"))?;
    let net = net.trunc();
    // A /32 or /128 is a plain address.
    if net.prefix_len() == net.max_prefix_len() {
        return Ok(IndicatorValue::Ip(net.addr()));
    }
    Ok(IndicatorValue::Cidr(net))
}

fn normalise_hex(s: &str) -> String {
    s.chars()
        .filter(|c| *c != ':' && *c != ' ')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Parse a feed value into an indicator. `hint` is what the feed says the
/// type is; without it the type is inferred from the text. The error says in
/// plain words why the value was refused.
pub fn parse_value(raw: &str, hint: Option<TypeHint>) -> Result<IndicatorValue, String> {
    let s = refang(raw);
    let s = s.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    if s.is_empty() {
        return Err("empty value".into());
    }
    match hint {
        Some(TypeHint::Ip) => {
            if let Some(ip) = parse_ip(s) {
                return Ok(IndicatorValue::Ip(ip));
            }
            if s.contains('/') {
                return parse_cidr(s);
            }
            if let Some(r) = parse_range(s) {
                return Ok(r);
            }
            Err(format!("`{s}` is not an IP address"))
        }
        Some(TypeHint::Cidr) => {
            if let Some(ip) = parse_ip(s) {
                return Ok(IndicatorValue::Ip(ip));
            }
            if let Some(r) = parse_range(s) {
                return Ok(r);
            }
            parse_cidr(s)
        }
        Some(TypeHint::Domain) => {
            let d = s.trim_end_matches('.').to_ascii_lowercase();
            if is_domain(&d) {
                Ok(IndicatorValue::Domain(d))
            } else {
                Err(format!("`{s}` is not a valid domain name"))
            }
        }
        Some(TypeHint::Url) => parse_url(s),
        Some(TypeHint::Hash(algo)) => parse_hash(s, algo, false),
        Some(TypeHint::Cert(algo)) => parse_hash(s, algo, true),
        None => infer(s),
    }
}

fn parse_url(s: &str) -> Result<IndicatorValue, String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!("`{s}` is not a URL (no scheme://)"));
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        || rest.is_empty()
    {
        return Err(format!("`{s}` is not a URL"));
    }
    // Lower-case scheme and host; path is case-sensitive.
    let (host, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    Ok(IndicatorValue::Url(format!(
        "{}://{}{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase(),
        path
    )))
}

fn parse_hash(s: &str, algo: Option<HashAlgo>, cert: bool) -> Result<IndicatorValue, String> {
    let hex = normalise_hex(s);
    if !is_hex(&hex) {
        return Err(format!("`{s}` is not a hex digest"));
    }
    let by_len = HashAlgo::from_hex_len(hex.len()).ok_or_else(|| {
        format!(
            "`{s}` has {} hex digits, which is no known hash length",
            hex.len()
        )
    })?;
    if let Some(a) = algo
        && a != by_len
    {
        return Err(format!(
            "`{s}` is labelled {} but has the length of {}",
            a.as_str(),
            by_len.as_str()
        ));
    }
    Ok(if cert {
        IndicatorValue::CertFingerprint { algo: by_len, hex }
    } else {
        IndicatorValue::Hash { algo: by_len, hex }
    })
}

fn infer(s: &str) -> Result<IndicatorValue, String> {
    if let Some(ip) = parse_ip(s) {
        return Ok(IndicatorValue::Ip(ip));
    }
    // `[2001:db8::1]` bracketed IPv6.
    if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']'))
        && let Ok(ip) = inner.parse::<IpAddr>()
    {
        return Ok(IndicatorValue::Ip(ip));
    }
    if s.contains('/')
        && !s.contains("://")
        && let Ok(v) = parse_cidr(s)
    {
        return Ok(v);
    }
    if let Some(r) = parse_range(s) {
        return Ok(r);
    }
    if s.contains("://") {
        return parse_url(s);
    }
    let hexish = normalise_hex(s);
    if is_hex(&hexish) && HashAlgo::from_hex_len(hexish.len()).is_some() {
        return parse_hash(s, None, false);
    }
    let d = s.trim_end_matches('.').to_ascii_lowercase();
    if is_domain(&d) && d.parse::<IpAddr>().is_err() && !looks_like_dotted_numbers(&d) {
        return Ok(IndicatorValue::Domain(d));
    }
    Err(format!(
        "`{}` is not an IP address, CIDR, range, domain, URL or hash",
        crate::model::excerpt(s)
    ))
}

/// `1.2.3.999` or `10.0.0` must not become domains.
fn looks_like_dotted_numbers(s: &str) -> bool {
    s.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refang_common_forms() {
        assert_eq!(refang("1.2.3[.]4"), "1.2.3.4");
        assert_eq!(refang("hxxp://evil[.]example/a"), "http://evil.example/a");
        assert_eq!(refang("hXXps://evil(.)example"), "https://evil.example");
        assert_eq!(refang("evil[dot]example"), "evil.example");
        assert_eq!(refang("2001:db8[:]1::1"), "2001:db8:1::1");
        assert_eq!(refang("[1.2.3.4]"), "1.2.3.4");
        assert_eq!(refang("http[:]//x[.]y"), "http://x.y");
    }

    #[test]
    fn infers_types() {
        assert!(matches!(infer("10.0.0.0/8"), Ok(IndicatorValue::Cidr(_))));
        assert!(matches!(infer("1.2.3.4/32"), Ok(IndicatorValue::Ip(_))));
        assert!(matches!(
            infer("1.2.3.4-1.2.3.9"),
            Ok(IndicatorValue::Range { .. })
        ));
        assert!(
            matches!(infer("Evil.Example."), Ok(IndicatorValue::Domain(d)) if d == "evil.example")
        );
        assert!(matches!(
            infer("d41d8cd98f00b204e9800998ecf8427e"),
            Ok(IndicatorValue::Hash {
                algo: HashAlgo::Md5,
                ..
            })
        ));
        assert!(infer("1.2.3.999").is_err());
        assert_eq!(
            infer("192.030.0.6").unwrap(),
            IndicatorValue::Ip("192.30.0.6".parse().unwrap())
        );
        assert!(infer("hello").is_err());
        assert!(infer("9.9.9.9-1.1.1.1").is_err());
    }

    #[test]
    fn cidr_host_bits_cleared() {
        assert_eq!(
            parse_value("10.1.2.3/8", None).unwrap(),
            IndicatorValue::Cidr("10.0.0.0/8".parse().unwrap())
        );
    }

    #[test]
    fn hint_mismatch_is_explained() {
        let e = parse_value("abcd", Some(TypeHint::Hash(Some(HashAlgo::Sha256)))).unwrap_err();
        assert!(e.contains("hash length"), "{e}");
    }
}
