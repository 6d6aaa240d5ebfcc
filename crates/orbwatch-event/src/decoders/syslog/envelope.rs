//! The syslog envelope: everything before the message text.
//!
//! A small hand parser rather than `syslog_loose`: it borrows every field,
//! allocates nothing, and accepts exactly the shapes found in real files:
//!
//! * RFC 3164 `<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`, with or without
//!   `<PRI>`, host or colon (`proftpd[1] ...`, `[sshd] ...`), with
//!   fractional seconds (`-o short-precise`), Cisco `Mmm dd yyyy hh:mm:ss:`
//!   and ctime `Www Mmm dd hh:mm:ss yyyy`;
//! * ISO timestamps in place of the BSD one (rsyslog high precision,
//!   journald `short-iso`, application logs): `2021-07-20T10:00:00.123+02:00 host tag: msg`;
//! * RFC 5424 `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD...] MSG`, also
//!   without `<PRI>` (as some collectors store it);
//! * journal exports without a timestamp: `host tag[pid]: msg` (the pid is
//!   required there, so that ordinary text is not taken for syslog).

use super::fields::space;
use super::timestamp::{CivilTime, parse_bsd, parse_iso};

/// Which envelope a line had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Envelope {
    /// BSD timestamp, usually without year or zone.
    Rfc3164,
    /// ISO timestamp followed by an RFC 3164-style host and tag.
    Iso,
    Rfc5424,
    /// `<PRI>` or `host tag[pid]:` without any timestamp.
    NoTimestamp,
}

/// The parsed envelope of one line. Every field borrows from the line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header<'a> {
    pub kind: Envelope,
    pub time: Option<CivilTime>,
    pub host: Option<&'a str>,
    pub app: Option<&'a str>,
    pub pid: Option<&'a str>,
    /// RFC 5424 structured data, brackets included (`""` when none).
    pub sd: &'a str,
    /// The message after the tag.
    pub msg: &'a str,
    /// Everything after the host: tag and message (RFC 5424: MSGID, SD and
    /// message).
    pub body: &'a str,
    /// journald `short-unix`: the time as an epoch instead of civil fields.
    pub epoch: Option<jiff::Timestamp>,
}

/// Parse the envelope of `line`; `None` when the line does not start like
/// syslog.
pub(crate) fn parse(line: &str) -> Option<Header<'_>> {
    let mut s = line.trim_start_matches([' ', '\t']);
    let mut had_pri = false;
    if s.starts_with('<') {
        let lim = s.len().min(6);
        if let Some(end) = s.as_bytes()[..lim].iter().position(|&c| c == b'>')
            && end > 1
            && s.as_bytes()[1..end].iter().all(u8::is_ascii_digit)
        {
            s = &s[end + 1..];
            had_pri = true;
        }
    }
    let b = s.as_bytes();
    if b.len() > 3
        && b[0] == b'1'
        && b[1] == b' '
        && (b[2].is_ascii_digit() || b[2] == b'-')
        && let Some(h) = rfc5424(&s[2..])
    {
        return Some(h);
    }
    if let Some((ct, n)) = parse_bsd(b) {
        return Some(after_time(&s[n..], Some(ct), Envelope::Rfc3164));
    }
    if let Some((ct, n)) = parse_iso(b)
        && ct.year.is_some()
        && b.get(4) == Some(&b'-')
    {
        return Some(after_time(&s[n..], Some(ct), Envelope::Iso));
    }
    if let Some(h) = journald_forms(s) {
        return Some(h);
    }
    if had_pri {
        return Some(after_time(s, None, Envelope::NoTimestamp));
    }
    journal_without_time(s)
}

/// journalctl `-o short-full` (`Tue 2021-07-20 10:00:00 CEST host tag: msg`)
/// and `-o short-unix` (`1626775200.123456 host tag: msg`). Zone names other
/// than UTC/GMT cannot be resolved without a time zone database lookup that
/// is ambiguous anyway (`CST`): such times are read as UTC.
fn journald_forms(s: &str) -> Option<Header<'_>> {
    let b = s.as_bytes();
    if b.len() > 14
        && b[3] == b' '
        && b[4].is_ascii_digit()
        && b[..3].iter().all(u8::is_ascii_alphabetic)
    {
        let (mut ct, n) = parse_iso(&b[4..])?;
        let mut rest = &s[4 + n..];
        if let Some(r) = rest.strip_prefix(' ') {
            let end = space(r).unwrap_or(r.len());
            let zone = &r[..end];
            if (2..=5).contains(&zone.len()) && zone.bytes().all(|c| c.is_ascii_uppercase()) {
                if ct.offset.is_none() && (zone == "UTC" || zone == "GMT") {
                    ct.offset = Some(0);
                }
                rest = &r[end..];
            }
        }
        return Some(after_time(rest, Some(ct), Envelope::Iso));
    }
    if b.len() > 17 && b[10] == b'.' && b[..10].iter().all(u8::is_ascii_digit) {
        let end = space(s)?;
        let t = super::timestamp::parse_epoch(&s[..end])?;
        let mut h = after_time(&s[end..], None, Envelope::Iso);
        h.epoch = Some(t);
        return Some(h);
    }
    None
}

/// Host, tag and message after the timestamp.
fn after_time(rest: &str, time: Option<CivilTime>, kind: Envelope) -> Header<'_> {
    // Cisco writes `hh:mm:ss: %ASA-...`.
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let rest = rest.trim_start_matches(' ');
    let mut h = Header {
        kind,
        time,
        host: None,
        app: None,
        pid: None,
        sd: "",
        msg: rest,
        body: rest,
        epoch: None,
    };
    if let Some((app, pid, n)) = tag_at(rest) {
        h.app = Some(app);
        h.pid = pid;
        h.msg = skip_one_space(&rest[n..]);
        return h;
    }
    let tok_end = space(rest).unwrap_or(rest.len());
    let tok = &rest[..tok_end];
    if !is_host_token(tok) {
        return h;
    }
    h.host = Some(tok);
    let mut r2 = rest[tok_end..].trim_start_matches(' ');
    // `host : msg` (Cisco).
    if let Some(x) = r2.strip_prefix(": ") {
        r2 = x.trim_start_matches(' ');
    } else if r2 == ":" {
        r2 = "";
    }
    h.body = r2;
    h.msg = r2;
    if let Some((app, pid, n)) = tag_at(r2) {
        h.app = Some(app);
        h.pid = pid;
        h.msg = skip_one_space(&r2[n..]);
    }
    h
}

#[inline]
fn skip_one_space(s: &str) -> &str {
    s.strip_prefix(' ').unwrap_or(s)
}

/// A plausible host token: letters, digits, `.-_:` (IPv6), `@`, `/`.
fn is_host_token(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 255
        && !t.ends_with(':')
        && t.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'@' | b'/')
        })
}

/// A program name as syslog tags carry it: `sshd`, `postfix/smtpd`,
/// `sshd(pam_unix)`, `fail2ban.actions`, `sshd-session`.
fn is_tag_name(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'/' | b'(' | b')' | b'@')
        })
        && t.bytes().any(|c| c.is_ascii_alphabetic())
}

fn is_pid(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 20
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Recognise a tag at the start of `r`: `name:`, `name[pid]:`,
/// `name[pid]` (proftpd), `[name]`, `[name]:`, `name   [pid]:` (fail2ban's
/// padded logger name). Returns (name, pid, bytes consumed).
fn tag_at(r: &str) -> Option<(&str, Option<&str>, usize)> {
    let tend = space(r).unwrap_or(r.len());
    let tok = &r[..tend];
    if tok.is_empty() {
        return None;
    }
    if let Some(inner) = tok.strip_prefix('[') {
        let inner = inner.strip_suffix(':').unwrap_or(inner);
        let name = inner.strip_suffix(']')?;
        return is_tag_name(name).then_some((name, None, tend));
    }
    let (t, colon) = match tok.strip_suffix(':') {
        Some(t) => (t, true),
        None => (tok, false),
    };
    if let Some(open) = t.find('[') {
        let name = &t[..open];
        let pid = t[open + 1..].strip_suffix(']')?;
        if is_tag_name(name) && is_pid(pid) {
            return Some((name, Some(pid), tend));
        }
        return None;
    }
    if colon {
        return is_tag_name(t).then_some((t, None, tend));
    }
    // `fail2ban.actions        [123]: ...`
    if is_tag_name(t) {
        let after = &r[tend..];
        let trimmed = after.trim_start_matches(' ');
        if let Some(x) = trimmed.strip_prefix('[')
            && let Some(close) = x.find("]:")
        {
            let pid = &x[..close];
            if pid.bytes().all(|c| c.is_ascii_digit()) && !pid.is_empty() {
                let consumed = tend + (after.len() - trimmed.len()) + 1 + close + 2;
                return Some((t, Some(pid), consumed));
            }
        }
    }
    None
}

/// `host tag[pid]: msg` without any timestamp (journalctl `-o cat`-like
/// exports with the host kept).
fn journal_without_time(s: &str) -> Option<Header<'_>> {
    let tok_end = space(s)?;
    let host = &s[..tok_end];
    if !is_host_token(host) {
        return None;
    }
    let r2 = &s[tok_end + 1..];
    let (app, pid, n) = tag_at(r2)?;
    pid?;
    if !r2[..n].ends_with(':') {
        return None;
    }
    Some(Header {
        kind: Envelope::NoTimestamp,
        time: None,
        host: Some(host),
        app: Some(app),
        pid,
        sd: "",
        msg: skip_one_space(&r2[n..]),
        body: r2,
        epoch: None,
    })
}

/// RFC 5424 after `<PRI>1 `.
fn rfc5424(s: &str) -> Option<Header<'_>> {
    let mut parts = s.splitn(6, ' ');
    let ts = parts.next()?;
    let host = parts.next()?;
    let app = parts.next()?;
    let procid = parts.next()?;
    let msgid = parts.next()?;
    let rest = parts.next().unwrap_or("");
    // `body` starts at MSGID: JunOS puts its event name there.
    let msgid_at = ts.len() + host.len() + app.len() + procid.len() + 4;
    let body = s.get(msgid_at..).unwrap_or(rest);
    let _ = msgid;
    let time = if ts == "-" {
        None
    } else {
        let (ct, n) = parse_iso(ts.as_bytes())?;
        if n != ts.len() {
            return None;
        }
        Some(ct)
    };
    fn nil(x: &str) -> Option<&str> {
        if x == "-" || x.is_empty() {
            None
        } else {
            Some(x)
        }
    }
    let (sd, msg) = split_sd(rest);
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some(Header {
        kind: Envelope::Rfc5424,
        time,
        host: nil(host),
        app: nil(app),
        pid: nil(procid),
        sd,
        msg,
        body,
        epoch: None,
    })
}

/// Split RFC 5424 structured data from the message. Quoted values may hold
/// `]` and `\"`; an element left open runs to the end of the line.
pub(crate) fn split_sd(rest: &str) -> (&str, &str) {
    let b = rest.as_bytes();
    if b.first() == Some(&b'-') && (b.len() == 1 || b[1] == b' ') {
        return ("", rest.get(2..).unwrap_or(""));
    }
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        i += 1;
        let mut quoted = false;
        while i < b.len() {
            let c = b[i];
            if quoted {
                if c == b'\\' {
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    quoted = false;
                }
            } else if c == b'"' {
                quoted = true;
            } else if c == b']' {
                break;
            }
            i += 1;
        }
        i = (i + 1).min(b.len());
    }
    let i = i.min(b.len());
    // `i` may sit inside a multi-byte character only if the line is cut in
    // one; back off to a boundary.
    let mut j = i;
    while !rest.is_char_boundary(j) {
        j -= 1;
    }
    let sd = &rest[..j];
    let msg = rest[j..].strip_prefix(' ').unwrap_or(&rest[j..]);
    (sd, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Header<'_> {
        parse(s).unwrap_or_else(|| panic!("no envelope: {s}"))
    }

    #[test]
    fn bsd() {
        let h = p("Jun 21 16:47:48 digital-mlhhyiqscv sshd[13709]: error: PAM: x");
        assert_eq!(h.kind, Envelope::Rfc3164);
        assert_eq!(h.host, Some("digital-mlhhyiqscv"));
        assert_eq!(h.app, Some("sshd"));
        assert_eq!(h.pid, Some("13709"));
        assert_eq!(h.msg, "error: PAM: x");
        let h = p("Feb 17 17:40:17 sshd[19725]: Connection from 1.2.3.4");
        assert_eq!((h.host, h.app), (None, Some("sshd")));
        let h = p("Mar  3 00:17:22 [sshd]: User root from 1.2.3.4 not allowed");
        assert_eq!((h.host, h.app), (None, Some("sshd")));
        let h = p("Jun 25 23:53:34 [sshd] User root from 1.2.3.4");
        assert_eq!(h.msg, "User root from 1.2.3.4");
        let h =
            p("Jan 10 00:00:00 myhost proftpd[12345] myhost.domain.com (1.2.3.4[1.2.3.4]): USER x");
        assert_eq!((h.app, h.pid), (Some("proftpd"), Some("12345")));
        assert_eq!(h.msg, "myhost.domain.com (1.2.3.4[1.2.3.4]): USER x");
        let h = p("<134>Jan 14 10:00:00 asa01 : %ASA-6-302013: Built");
        assert_eq!(h.host, Some("asa01"));
        assert_eq!(h.msg, "%ASA-6-302013: Built");
        let h = p("Jan  3 13:45:36 192.168.5.1 id=firewall sn=1");
        assert_eq!(
            (h.host, h.app, h.msg),
            (Some("192.168.5.1"), None, "id=firewall sn=1")
        );
        let h = p("Oct 26 20:01:31 Express-7 CEF:0|Ubiquiti|UniFi Network|x");
        assert_eq!(h.msg, "CEF:0|Ubiquiti|UniFi Network|x");
    }

    #[test]
    fn iso_and_padding() {
        let h = p(
            "2006-02-13 15:52:30,388 fail2ban.actions        [123]: NOTICE  [sendmail] Ban 1.2.3.4",
        );
        assert_eq!((h.app, h.pid), (Some("fail2ban.actions"), Some("123")));
        assert_eq!(h.msg, "NOTICE  [sendmail] Ban 1.2.3.4");
        let h =
            p("2023-03-18T20:35:05.734637+01:00 10.120.127.1 firewall,info drop-in input: in:x");
        assert_eq!(h.host, Some("10.120.127.1"));
        assert_eq!(h.msg, "firewall,info drop-in input: in:x");
    }

    #[test]
    fn rfc5424_forms() {
        let h = p(
            "<38>1 2019-07-08T17:40:17.954167-04:00 hostname.example.com sshd 55555 - [timeQuality tzKnown=\"1\"][xxx@123 test=\"[brackets]\"] Failed unknown",
        );
        assert_eq!(h.kind, Envelope::Rfc5424);
        assert_eq!((h.app, h.pid), (Some("sshd"), Some("55555")));
        assert_eq!(h.msg, "Failed unknown");
        let h = p(
            " 1 2019-05-15T16:25:50Z HOSTNAME CheckPoint 19710 - [action:\"Drop\"; x:\"a\\]\"; ]",
        );
        assert_eq!(h.app, Some("CheckPoint"));
        assert!(h.sd.starts_with("[action"));
        let h = p("<38>1 2019-07-08T17:40:16-04:00 h sshd 57915 - - Failed unknown");
        assert_eq!((h.sd, h.msg), ("", "Failed unknown"));
    }

    #[test]
    fn journal_and_rejects() {
        let h = p("srv sshd[13709]: error: PAM: Authentication failure");
        assert_eq!(h.kind, Envelope::NoTimestamp);
        assert_eq!(h.host, Some("srv"));
        assert!(parse("hello world: foo").is_none());
        assert!(parse("1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\"").is_none());
        assert!(parse("%ASA-2-106001: Inbound").is_none());
        assert!(parse("2021/07/20 10:00:00 [error] 12#0: x").is_none());
        let h = p("Tue 2021-07-20 10:00:00 UTC web1 sshd[7]: x");
        assert_eq!((h.host, h.app, h.msg), (Some("web1"), Some("sshd"), "x"));
        assert_eq!(h.time.and_then(|c| c.offset), Some(0));
        let h = p("1626775200.123456 web1 sshd[7]: x");
        assert_eq!(
            h.epoch.map(|t| t.to_string()).as_deref(),
            Some("2021-07-20T10:00:00.123456Z")
        );
    }
}
