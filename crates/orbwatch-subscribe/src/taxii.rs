//! TAXII 2.1 collections: the `objects/` endpoint, paged with `limit` and
//! `next`, filtered with `added_after` so that each update asks only for
//! what the server added since the last one.

use serde::Deserialize;

/// The media type TAXII 2.1 servers answer with.
pub const ACCEPT: &str = "application/taxii+json;version=2.1";

/// One page of a collection's objects (a TAXII envelope).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub more: bool,
    #[serde(default)]
    pub next: Option<String>,
    #[serde(default)]
    pub objects: Vec<serde_json::Value>,
}

/// Read an envelope. An empty body is an empty page (TAXII servers may
/// answer 200 with nothing when no object matches).
pub fn parse_envelope(bytes: &[u8]) -> Result<Envelope, String> {
    let t = bytes.trim_ascii();
    if t.is_empty() {
        return Ok(Envelope::default());
    }
    let v: serde_json::Value = serde_json::from_slice(t).map_err(|e| {
        format!("the TAXII response is not JSON ({e}); is the URL a TAXII 2.1 collection?")
    })?;
    if !v.is_object() {
        return Err("the TAXII response is not a JSON object (an envelope was expected)".into());
    }
    let env: Envelope = serde_json::from_value(v)
        .map_err(|e| format!("the TAXII response is not a TAXII 2.1 envelope ({e})"))?;
    if env.objects.iter().any(|o| !o.is_object()) {
        return Err("the TAXII envelope lists objects that are not JSON objects".into());
    }
    Ok(env)
}

/// Percent-encode a query value (everything but unreserved characters).
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of one page of `collection_url`'s objects.
pub fn objects_url(
    collection_url: &str,
    added_after: Option<&str>,
    next: Option<&str>,
    limit: Option<u32>,
) -> String {
    let mut q = Vec::new();
    if let Some(a) = added_after {
        q.push(format!("added_after={}", encode(a)));
    }
    if let Some(n) = next {
        q.push(format!("next={}", encode(n)));
    }
    if let Some(l) = limit {
        q.push(format!("limit={l}"));
    }
    let base = format!("{collection_url}objects/");
    if q.is_empty() {
        base
    } else {
        format!("{base}?{}", q.join("&"))
    }
}

/// Is `s` a usable `added_after` value (an RFC 3339 instant)?
pub fn valid_timestamp(s: &str) -> bool {
    s.parse::<jiff::Timestamp>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let e = parse_envelope(br#"{"more":true,"next":"abc","objects":[{"type":"x"}]}"#).unwrap();
        assert!(e.more);
        assert_eq!(e.next.as_deref(), Some("abc"));
        assert_eq!(e.objects.len(), 1);
        assert_eq!(parse_envelope(b"  ").unwrap().objects.len(), 0);
        assert_eq!(parse_envelope(b"{}").unwrap().objects.len(), 0);
        for bad in [
            &b"[1]"[..],
            b"{\"objects\":[1]}",
            b"{\"more\":\"x\"}",
            b"<html>",
        ] {
            assert!(
                parse_envelope(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            objects_url(
                "http://h/api/collections/c/",
                Some("2024-01-01T00:00:00.123456Z"),
                Some("a b"),
                Some(2)
            ),
            "http://h/api/collections/c/objects/?added_after=2024-01-01T00%3A00%3A00.123456Z&next=a%20b&limit=2"
        );
    }
}
