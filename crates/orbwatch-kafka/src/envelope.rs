//! The record forms shippers write to Kafka, turned into the line the
//! engine decodes.
//!
//! Vector, Filebeat and rsyslog's JSON templates wrap each log line in a
//! JSON object whose `message` field holds the line; the line is what the
//! decoders know, so the wrapper is taken off. Zeek and Suricata EVE JSON
//! records are the events themselves (no `message` field): they pass
//! through and the stream's decoder is detected from them as in `hunt`.
//! A plain line passes through too.

use std::borrow::Cow;

/// What a record was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// Passed through as it came (a plain line, Zeek or EVE JSON).
    Plain,
    /// A JSON object with a string `message` field: the field's text.
    Message,
}

/// The line inside `bytes`: the `message` field of a shipper's JSON
/// object, else `bytes` themselves (trailing line ending removed). Never
/// fails: what is not a shipper's wrapper is decoded as it is.
pub fn unwrap_record(bytes: &[u8]) -> (Cow<'_, [u8]>, Envelope) {
    let trimmed = trim_line_end(bytes);
    let start = trimmed
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(trimmed.len());
    if trimmed.get(start) == Some(&b'{') && trimmed.windows(9).any(|w| w == b"\"message\"") {
        #[derive(serde::Deserialize)]
        struct Wrapped<'a> {
            #[serde(borrow)]
            message: Option<Cow<'a, str>>,
        }
        if let Ok(Wrapped { message: Some(m) }) = serde_json::from_slice::<Wrapped<'_>>(trimmed) {
            let m = match m {
                Cow::Borrowed(s) => Cow::Borrowed(trim_line_end(s.as_bytes())),
                Cow::Owned(s) => Cow::Owned(trim_line_end(s.as_bytes()).to_vec()),
            };
            return (m, Envelope::Message);
        }
    }
    (Cow::Borrowed(trimmed), Envelope::Plain)
}

fn trim_line_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && (b[end - 1] == b'\n' || b[end - 1] == b'\r') {
        end -= 1;
    }
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(b: &[u8]) -> (String, Envelope) {
        let (l, e) = unwrap_record(b);
        (String::from_utf8_lossy(&l).into_owned(), e)
    }

    #[test]
    fn shippers_wrappers_give_their_message() {
        // Vector's default JSON encoding of a file source event.
        let vector = br#"{"file":"/var/log/auth.log","host":"fw1","message":"Jan 31 16:32:04 fw1 sshd[9]: Failed password for root from 1.2.3.4 port 22 ssh2","source_type":"file","timestamp":"2021-01-31T16:32:04Z"}"#;
        assert_eq!(
            line(vector),
            (
                "Jan 31 16:32:04 fw1 sshd[9]: Failed password for root from 1.2.3.4 port 22 ssh2"
                    .into(),
                Envelope::Message
            )
        );
        // Filebeat: @timestamp and nested objects before the message, an
        // escaped quote and a unicode escape inside it.
        let filebeat = br#"{"@timestamp":"2021-01-31T16:32:04.000Z","agent":{"type":"filebeat"},"log":{"offset":12},"message":"say \"hi\" \u00e9\n"}"#;
        assert_eq!(line(filebeat), ("say \"hi\" é".into(), Envelope::Message));
    }

    #[test]
    fn events_and_lines_pass_through() {
        let eve = br#"{"timestamp":"2021-01-31T16:32:04.000000+0000","event_type":"alert","src_ip":"1.2.3.4"}"#;
        assert_eq!(line(eve).1, Envelope::Plain);
        assert_eq!(line(eve).0.as_bytes(), &eve[..]);
        let zeek = br#"{"ts":1612110724.0,"uid":"C1","id.orig_h":"1.2.3.4"}"#;
        assert_eq!(line(zeek).1, Envelope::Plain);
        assert_eq!(
            line(b"plain line\r\n"),
            ("plain line".into(), Envelope::Plain)
        );
    }

    /// Malformed and hostile input is passed through, never a panic.
    #[test]
    fn malformed_input_passes_through() {
        for b in [
            &b""[..],
            b"\n",
            b"{",
            br#"{"message":"#,
            br#"{"message": 42}"#,
            br#"{"message": null, "x": 1}"#,
            br#"{"message":"\ud800"}"#,
            br#"["message"]"#,
            b"\xff\xfe{\"message\":\"x\"}",
        ] {
            let (l, e) = unwrap_record(b);
            assert_eq!(e, Envelope::Plain, "{:?}", String::from_utf8_lossy(b));
            assert!(l.len() <= b.len());
        }
        let deep = format!("{}\"message\"{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep = format!("{{\"a\":{deep}}}");
        assert_eq!(unwrap_record(deep.as_bytes()).1, Envelope::Plain);
        let huge = format!("{{\"message\":\"{}\"}}", "a".repeat(4 << 20));
        assert_eq!(unwrap_record(huge.as_bytes()).0.len(), 4 << 20);
    }
}
