//! Syslog (RFC 3164 and 5424, journald exports) with one parser per
//! program or device family, and the vendor firewall formats that usually
//! travel over syslog (Cisco ASA, JunOS/NetScreen, FortiGate, SonicWall,
//! Check Point, PAN-OS, MikroTik, pf/OPNsense, netfilter).
//!
//! # How a line is read
//!
//! 1. Blank lines and lines starting with `#` are [`Decoded::Skip`]
//!    (comments in test files and exports).
//! 2. The envelope (`envelope`) gives time, host, program, pid and the
//!    message. It is optional: vendor records that arrive without one (raw
//!    `%ASA-` lines, FortiGate `key=value`, PAN-OS CSV, audit.log, MySQL and
//!    MSSQL error logs, Proxmox firewall logs...) are recognised by shape.
//! 3. Dispatch by program name first (`sshd`, `dropbear`, `vsftpd`,
//!    `proftpd`, `kernel`, `filterlog`, `mysqld`, `fail2ban.*`, `smbd`...),
//!    then by message shape (`%ASA-`, `RT_FLOW`, `NetScreen device_id=`,
//!    `logid=`/`devname=`, `id=firewall sn=`, `,TRAFFIC,`...). A program
//!    nobody claims goes to `generic`, which keeps every address in
//!    `other_ips`.
//! 4. A line with neither an envelope nor a recognised shape is rejected:
//!    `not a syslog line: ...`.
//!
//! # Time
//!
//! * Timestamps without a zone are taken as **UTC**.
//! * RFC 3164 timestamps carry no year. The decoder starts from
//!   [`DecoderConfig::year`], which is the year of the **first** such line
//!   of the file. If it is `None`, the current (UTC) year is used, and if
//!   that would put the first line more than a day in the future the
//!   previous year is used (a file read in January that starts in December).
//! * Within a file, the year follows the months: a month more than six
//!   months *before* the previous line's (December → January) starts the
//!   next year; a month more than six months *after* it (a late December
//!   line among January lines) is put in the year before. Each line is thus
//!   within six months of the previous one, and timestamps stay as
//!   monotonic as the file itself is. A line carrying its own year resets
//!   the running year.
//! * When both the envelope and the message carry a time (PAN-OS, JunOS,
//!   FortiGate, audit), the more precise wins: a zoned time over a zone-less
//!   one, a time with a year over one without; on a tie, the message's.
//!
//! # sshd connections
//!
//! Some sshd failures carry no address (`Disconnecting: Too many
//! authentication failures`, `fatal: Read from socket failed`,
//! `kex_exchange_identification: ...`). The decoder remembers the last
//! remote address seen for each (host, pid) in a small fixed table, and
//! fills it in, as fail2ban's multi-line filters do. The table travels with
//! [`Decoder::fork`].

use jiff::Timestamp;

use super::{DecodeError, Decoded, Decoder, DecoderConfig, DecoderInfo};
use crate::model::Event;

pub(crate) mod envelope;
pub(crate) mod fields;
pub(crate) mod timestamp;

mod audit;
mod checkpoint;
mod cisco_asa;
mod dovecot;
mod dropbear;
mod fail2ban;
mod filterlog;
mod fortigate;
mod generic;
mod juniper;
mod login;
mod mikrotik;
mod mssql;
mod mysqld;
mod netfilter;
mod paloalto;
mod pam_unix;
mod portsentry;
mod proftpd;
mod samba;
mod sonicwall;
mod sshd;
mod vsftpd;

use envelope::Envelope;
use timestamp::CivilTime;

/// Registration of the syslog decoder.
pub const INFO: DecoderInfo = DecoderInfo {
    name: "syslog",
    description: "Syslog RFC 3164/5424 and journald exports: sshd, dropbear, vsftpd, proftpd, pam, \
                  netfilter/UFW, pf filterlog, MikroTik, Cisco ASA, JunOS/NetScreen, FortiGate, \
                  SonicWall, Check Point, PAN-OS, MySQL/MSSQL, audit, fail2ban, Samba",
    sniff,
    make: |cfg: &DecoderConfig| Box::new(SyslogDecoder::new(cfg)),
};

/// How trustworthy a timestamp is; the better of envelope and message wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimeQuality {
    None,
    /// No year in the line: the year was inferred.
    NoYear,
    /// Full date, no zone (taken as UTC).
    Local,
    /// Full date with a zone or an epoch.
    Zoned,
}

/// Quality of a parsed civil time.
pub(crate) fn quality_of(ct: &CivilTime) -> TimeQuality {
    match (ct.year.is_some(), ct.offset.is_some()) {
        (false, _) => TimeQuality::NoYear,
        (true, false) => TimeQuality::Local,
        (true, true) => TimeQuality::Zoned,
    }
}

/// One line, split by the envelope, as the message parsers see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub host: Option<&'a str>,
    /// Program name (`""` when none).
    pub app: &'a str,
    pub pid: Option<&'a str>,
    /// The message text.
    pub msg: &'a str,
    /// Everything after the host (tag, structured data and message); the
    /// whole line when there was no envelope.
    pub body: &'a str,
    /// RFC 5424 structured data.
    pub sd: &'a str,
    pub time: Option<Timestamp>,
    pub time_q: TimeQuality,
    /// The running year, for message timestamps without one.
    pub year: i16,
    /// Offset (seconds east of UTC) of the configured zone at the line's
    /// time, for message timestamps without a zone (0 without a zone).
    pub local_offset: i32,
    /// True when the line had no envelope at all.
    pub raw: bool,
    /// rsyslog's `message repeated N times`.
    pub count: u64,
}

impl Ctx<'_> {
    /// Set `ev.time` from a time found in the message if it is at least as
    /// good as the envelope's.
    pub(crate) fn pick_time(&self, ev: &mut Event, body: Option<(Timestamp, TimeQuality)>) {
        match body {
            Some((t, q)) if q >= self.time_q => ev.time = Some(t),
            _ => ev.time = self.time,
        }
    }

    /// A civil time from the message, resolved with the running year.
    pub(crate) fn civil(&self, ct: &CivilTime) -> Option<(Timestamp, TimeQuality)> {
        ct.to_timestamp_at(self.year, self.local_offset)
            .map(|t| (t, quality_of(ct)))
    }
}

/// The running year of RFC 3164 lines.
#[derive(Debug, Clone)]
pub(crate) struct YearState {
    year: i16,
    last_month: u8,
    /// The year was not given: check the first line against "now".
    guessed: bool,
    /// Zone of timestamps without offset (`None`: UTC).
    tz: Option<jiff::tz::TimeZone>,
    /// Offset of `tz` at the last resolved time, seconds east.
    offset: i32,
    /// Lines dated with an assumed year (they carried none): the coverage
    /// says how the year was chosen only when there were some.
    assumed: u64,
}

impl YearState {
    #[cfg(test)]
    pub(crate) fn new(cfg_year: Option<i16>) -> Self {
        Self::with_zone(cfg_year, None)
    }

    pub(crate) fn with_zone(cfg_year: Option<i16>, tz: Option<jiff::tz::TimeZone>) -> Self {
        let (year, guessed) = match cfg_year {
            Some(y) => (y, false),
            None => (timestamp::year_month_of(Timestamp::now()).0, true),
        };
        Self {
            year,
            last_month: 0,
            guessed,
            tz,
            offset: 0,
            assumed: 0,
        }
    }

    /// `ct` in the configured zone (UTC without one) with year `year`;
    /// remembers the zone's offset at that time for message timestamps.
    fn instant(&mut self, ct: &CivilTime, year: i16) -> Option<Timestamp> {
        match &self.tz {
            None => ct.to_timestamp(year),
            Some(tz) => {
                let t = ct.to_timestamp_in(year, tz)?;
                self.offset = tz.to_offset(t).seconds();
                Some(t)
            }
        }
    }

    pub(crate) fn resolve(&mut self, ct: &CivilTime) -> Option<Timestamp> {
        if let Some(y) = ct.year {
            if (1..=12).contains(&ct.month) {
                self.year = y;
                self.last_month = ct.month;
                self.guessed = false;
            }
            return self.instant(ct, y);
        }
        self.assumed += 1;
        let m = ct.month;
        if self.last_month == 0 {
            if self.guessed
                && let Some(t) = ct.to_timestamp(self.year)
            {
                let limit = Timestamp::now().as_second() + 86_400;
                if t.as_second() > limit {
                    self.year -= 1;
                }
            }
        } else {
            let d = m as i32 - self.last_month as i32;
            if d < -6 {
                self.year = self.year.saturating_add(1);
            } else if d > 6 {
                self.year = self.year.saturating_sub(1);
            }
        }
        if (1..=12).contains(&m) {
            self.last_month = m;
        }
        self.instant(ct, self.year)
    }
}

/// The syslog decoder for one file.
#[derive(Debug, Clone)]
pub struct SyslogDecoder {
    years: YearState,
    conns: sshd::ConnCache,
    /// The last classic (`Mmm dd hh:mm:ss `) timestamp seen by `time_of`
    /// and its value: consecutive lines mostly share their second.
    last_bsd: Option<([u8; 16], Option<Timestamp>)>,
}

/// Does the line start with a classic BSD timestamp `Mmm dd hh:mm:ss `?
fn bsd_prefix(b: &[u8]) -> Option<&[u8; 16]> {
    let p: &[u8; 16] = b.get(..16)?.try_into().ok()?;
    let ok = p[0].is_ascii_uppercase()
        && p[1].is_ascii_lowercase()
        && p[2].is_ascii_lowercase()
        && p[3] == b' '
        && (p[4] == b' ' || p[4].is_ascii_digit())
        && p[5].is_ascii_digit()
        && p[6] == b' '
        && p[9] == b':'
        && p[12] == b':'
        && p[15] == b' '
        && [7, 8, 10, 11, 13, 14]
            .iter()
            .all(|i| p[*i].is_ascii_digit());
    ok.then_some(p)
}

impl SyslogDecoder {
    /// A decoder using `cfg.year` for lines without a year.
    pub fn new(cfg: &DecoderConfig) -> Self {
        Self {
            years: YearState::with_zone(cfg.year, cfg.timezone.clone()),
            conns: sshd::ConnCache::new(),
            last_bsd: None,
        }
    }

    fn decode_str(&mut self, line: &str) -> Result<Decoded, DecodeError> {
        let (ctx, _) = match build_ctx(line, &mut self.years) {
            Some(x) => x,
            None => return Ok(Decoded::Skip),
        };
        let ev = match self.dispatch(&ctx) {
            Some(ev) => ev,
            None if ctx.raw => {
                return Err(DecodeError::new(format!(
                    "not a syslog line: {}",
                    excerpt(line)
                )));
            }
            None => Box::new(generic::parse(&ctx)),
        };
        Ok(Decoded::Event(finish(ev, &ctx)))
    }

    /// Pick the parser: by program, then by shape. Events are boxed where
    /// they are made: an `Event` is large, and moving it costs more than
    /// parsing an sshd line.
    fn dispatch(&mut self, c: &Ctx) -> Option<Box<Event>> {
        self.dispatch_inner(c)
            .or_else(|| self.by_shape(c).map(Box::new))
    }

    fn dispatch_inner(&mut self, c: &Ctx) -> Option<Box<Event>> {
        let app = c.app;
        if !app.is_empty() {
            let base = program_base(app);
            let b = base.as_bytes();
            if b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"sshd") {
                if c.msg.starts_with("SSHD_") {
                    // JunOS sshd: `SSHD_LOGIN_FAILED: Login failed for user ...`
                    return juniper::parse(c).map(Box::new);
                }
                return Some(sshd::parse(c, &mut self.conns));
            }
            if base.eq_ignore_ascii_case("dropbear") {
                if let Some(ev) = dropbear::parse(c) {
                    return Some(Box::new(ev));
                }
            } else if base.eq_ignore_ascii_case("vsftpd") {
                if let Some(ev) = vsftpd::parse(c) {
                    return Some(Box::new(ev));
                }
            } else if base.eq_ignore_ascii_case("proftpd") {
                if let Some(ev) = proftpd::parse(c) {
                    return Some(Box::new(ev));
                }
            } else if base.eq_ignore_ascii_case("kernel") {
                if let Some(ev) = netfilter::parse(c) {
                    return Some(Box::new(ev));
                }
            } else if base.eq_ignore_ascii_case("filterlog") {
                if let Some(ev) = filterlog::parse(c) {
                    return Some(Box::new(ev));
                }
            } else if base.eq_ignore_ascii_case("mysqld")
                || base.eq_ignore_ascii_case("mariadbd")
                || base.eq_ignore_ascii_case("mysql")
            {
                if let Some(ev) = mysqld::parse(c) {
                    return Some(Box::new(ev));
                }
            } else if fields::starts_with_ci(base, "fail2ban") {
                if let Some(ev) = fail2ban::parse(c) {
                    return Some(Box::new(ev));
                }
            } else if ["nginx", "apache", "apache2", "httpd"]
                .iter()
                .any(|n| base.eq_ignore_ascii_case(n))
            {
                // An access log line forwarded through syslog: decode the
                // body as one, so web logins count as auth events.
                if let Some(mut ev) = crate::decoders::web_access::parse_access(c.msg.as_bytes()) {
                    if ev.time.is_none() {
                        ev.time = c.time;
                    }
                    return Some(Box::new(ev));
                }
            } else if base.eq_ignore_ascii_case("dovecot") && !c.msg.starts_with("pam_") {
                if let Some(ev) = dovecot::parse(c.msg) {
                    return Some(Box::new(ev));
                }
            } else if base.eq_ignore_ascii_case("login")
                && (c.msg.starts_with("FAILED LOGIN ") || c.msg.contains(" LOGIN FAILURES FROM "))
            {
                if let Some(ev) = login::parse(c.msg) {
                    return Some(Box::new(ev));
                }
            } else if base.eq_ignore_ascii_case("portsentry") {
                if let Some(ev) = portsentry::parse(c) {
                    return Some(Box::new(ev));
                }
            } else if (base.eq_ignore_ascii_case("smbd")
                || base.eq_ignore_ascii_case("smb")
                || base.eq_ignore_ascii_case("samba"))
                && let Some(ev) = samba::parse(c)
            {
                return Some(Box::new(ev));
            }
            if (c.msg.starts_with("pam_") || c.msg.starts_with("(pam_") || app.contains("(pam_"))
                && let Some(ev) = pam_unix::parse(c.msg, base)
            {
                return Some(Box::new(ev));
            }
        }
        None
    }

    /// Recognise vendor records by what they contain.
    fn by_shape(&mut self, c: &Ctx) -> Option<Event> {
        let body = c.body;
        let bb = body.as_bytes();
        let has_pct = memchr::memchr(b'%', bb).is_some();
        let has_eq = memchr::memchr(b'=', bb).is_some();
        let has_comma = memchr::memchr(b',', bb).is_some();
        let has_pipe = memchr::memchr(b'|', bb).is_some();
        if has_pct && cisco_asa::looks_like(body) {
            return cisco_asa::parse(c);
        }
        if has_pipe {
            if body.contains("CEF:") || (c.raw && super::cef::looks_headerless(body)) {
                return super::cef::parse_record(body, c);
            }
            if body.contains("LEEF:") {
                return super::leef::parse_record(body, c);
            }
        }
        if body.contains("NetScreen device_id=") {
            return juniper::parse_netscreen(c);
        }
        if juniper::looks_like(body) {
            return juniper::parse(c);
        }
        if has_eq {
            if fortigate::looks_like(body) {
                return fortigate::parse(c);
            }
            if sonicwall::looks_like(body) {
                return sonicwall::parse(c);
            }
            if audit::looks_like(body)
                && let Some(ev) = audit::parse(c)
            {
                return Some(ev);
            }
            if netfilter::looks_like(body)
                && let Some(ev) = netfilter::parse(c)
            {
                return Some(ev);
            }
            if body.contains("authentication failure; logname=")
                && let Some(ev) = pam_unix::parse(c.msg, program_base(c.app))
            {
                return Some(ev);
            }
        }
        if checkpoint::looks_like(c)
            && let Some(ev) = checkpoint::parse(c)
        {
            return Some(ev);
        }
        if has_comma {
            if paloalto::looks_like(body)
                && let Some(ev) = paloalto::parse(c)
            {
                return Some(ev);
            }
            if filterlog::looks_like(body)
                && let Some(ev) = filterlog::parse(c)
            {
                return Some(ev);
            }
        }
        if mikrotik::looks_like(body)
            && let Some(ev) = mikrotik::parse(c)
        {
            return Some(ev);
        }
        if body.contains("Access denied for user '") {
            return mysqld::parse(c);
        }
        if body.contains("Login failed for user '") || body.contains("Login succeeded for user '") {
            return mssql::parse(c);
        }
        if (body.contains("fail2ban.") || fields::starts_with_ci(c.app, "fail2ban"))
            && let Some(ev) = fail2ban::parse(c)
        {
            return Some(ev);
        }
        if portsentry::looks_like(body) {
            return portsentry::parse(c);
        }
        if body.contains("remote host [") && body.contains("Auth: [") {
            return samba::parse(c);
        }
        if vsftpd::looks_like(c.msg) {
            return vsftpd::parse(c);
        }
        None
    }
}

impl Decoder for SyslogDecoder {
    fn name(&self) -> &'static str {
        "syslog"
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        let record = trim_line(record);
        if record.is_empty() || record[0] == b'#' {
            return Ok(Decoded::Skip);
        }
        match super::utf8(record) {
            Some(s) => self.decode_str(s),
            None => {
                let s = String::from_utf8_lossy(record);
                self.decode_str(&s)
            }
        }
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }

    fn assumed_years(&self) -> u64 {
        self.years.assumed
    }

    /// The record's time for an IOC sweep's fast path: a classic BSD
    /// timestamp is read directly (and reused while lines share their
    /// second); anything else is decoded. A vendor body with its own zoned
    /// time behind a BSD header gives the header's time here.
    fn time_of(&mut self, record: &[u8]) -> Option<Timestamp> {
        let record = trim_line(record);
        if record.is_empty() || record[0] == b'#' {
            return None;
        }
        let prefix = bsd_prefix(record).copied();
        if let Some(p) = prefix {
            if let Some((last, t)) = &self.last_bsd
                && p == *last
            {
                return *t;
            }
            // A classic timestamp at the start: no need for the envelope.
            if let Some((ct, _)) = timestamp::parse_bsd(record) {
                let t = self.years.resolve(&ct);
                self.last_bsd = Some((p, t));
                return t;
            }
        } else if record.len() > 10
            && record[4] == b'-'
            && record[..4].iter().all(u8::is_ascii_digit)
            && let Some((ct, _)) = timestamp::parse_iso(record)
            && ct.year.is_some()
        {
            // rsyslog's ISO 8601 stamp (Debian 12's default): read it as
            // the envelope would, without decoding the line.
            return self.years.resolve(&ct);
        }
        // Other envelopes (ISO, RFC 5424, vendor bodies with their own
        // zone) are rarer: decode them fully so that the time is exactly
        // what `decode` gives.
        match self.decode(record) {
            Ok(Decoded::Event(e)) => e.time,
            _ => None,
        }
    }
}

/// A decoder for a vendor record format (CEF, LEEF) that comes raw or
/// behind a syslog header: the envelope is read as for syslog, and the body
/// is handed to the format's `parse`.
#[derive(Debug, Clone)]
pub(crate) struct BodyDecoder {
    name: &'static str,
    years: YearState,
    parse: fn(&str, &Ctx) -> Result<Event, String>,
}

impl BodyDecoder {
    /// `cfg.year` dates syslog headers without a year.
    pub(crate) fn new(
        name: &'static str,
        cfg: &DecoderConfig,
        parse: fn(&str, &Ctx) -> Result<Event, String>,
    ) -> Self {
        Self {
            name,
            years: YearState::with_zone(cfg.year, cfg.timezone.clone()),
            parse,
        }
    }

    fn decode_str(&mut self, line: &str) -> Result<Decoded, DecodeError> {
        let Some((ctx, _)) = build_ctx(line, &mut self.years) else {
            return Ok(Decoded::Skip);
        };
        let text = if ctx.raw { line } else { ctx.body };
        match (self.parse)(text, &ctx) {
            Ok(ev) => Ok(Decoded::Event(finish(Box::new(ev), &ctx))),
            Err(e) => Err(DecodeError::new(format!("{e}: {}", excerpt(line)))),
        }
    }
}

impl Decoder for BodyDecoder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn decode(&mut self, record: &[u8]) -> Result<Decoded, DecodeError> {
        let record = trim_line(record);
        if record.is_empty() || record[0] == b'#' {
            return Ok(Decoded::Skip);
        }
        match super::utf8(record) {
            Some(s) => self.decode_str(s),
            None => self.decode_str(&String::from_utf8_lossy(record)),
        }
    }

    fn fork(&self) -> Box<dyn Decoder> {
        Box::new(self.clone())
    }

    fn assumed_years(&self) -> u64 {
        self.years.assumed
    }
}

/// Split a line into its envelope and message. `None` for lines that carry
/// nothing (`last message repeated N times`). The second value is the
/// repeat count of rsyslog's `message repeated N times: [ ... ]`, whose
/// inner message becomes `msg`.
pub(crate) fn build_ctx<'a>(line: &'a str, years: &mut YearState) -> Option<(Ctx<'a>, u64)> {
    let hdr = envelope::parse(line);
    let mut ctx = match &hdr {
        Some(h) => {
            let (time, time_q) = match (&h.time, h.epoch) {
                (_, Some(t)) => (Some(t), TimeQuality::Zoned),
                (Some(ct), None) => (years.resolve(ct), quality_of(ct)),
                (None, None) => (None, TimeQuality::None),
            };
            let time_q = if time.is_none() {
                TimeQuality::None
            } else {
                time_q
            };
            Ctx {
                host: h.host,
                app: h.app.unwrap_or(""),
                pid: h.pid,
                msg: h.msg,
                body: h.body,
                sd: h.sd,
                time,
                time_q,
                year: years.year,
                local_offset: years.offset,
                raw: false,
                count: 1,
            }
        }
        None => Ctx {
            host: None,
            app: "",
            pid: None,
            msg: line,
            body: line,
            sd: "",
            time: None,
            time_q: TimeQuality::None,
            year: years.year,
            local_offset: years.offset,
            raw: true,
            count: 1,
        },
    };
    let mut count = 1u64;
    if let Some(r) = ctx.msg.strip_prefix("message repeated ") {
        if let Some((n, inner)) = r.split_once(" times: [")
            && let Ok(n) = n.parse::<u64>()
        {
            count = n.max(1);
            let inner = inner.strip_suffix(']').unwrap_or(inner);
            ctx.msg = inner.trim_start();
            ctx.body = ctx.msg;
        }
    } else if ctx.msg.starts_with("last message repeated ") && !ctx.raw {
        return None;
    }
    ctx.count = count;
    Some((ctx, count))
}

/// Fill what the message parser left open from the envelope: time, host,
/// repeat count. A parser sets `host` to `""` to drop a host token that was
/// not one (a MySQL thread id).
pub(crate) fn finish(mut ev: Box<Event>, ctx: &Ctx) -> Box<Event> {
    if ev.time.is_none() {
        ev.time = ctx.time;
    }
    match ev.host.as_deref() {
        None => ev.host = ctx.host.map(str::to_string),
        Some("") => ev.host = None,
        Some(_) => {}
    }
    if ctx.count > 1 {
        ev.count = ev.count.max(1) * ctx.count;
    }
    ev
}

/// How sure a sniffer of an enveloped format (CEF, LEEF) is, from the
/// share of the non-empty, non-comment lines `matches` accepts: 90 when
/// at least 80 % do, 60 for half, 10 for any, 0 for none.
pub(crate) fn sniff_share(lines: &[&[u8]], matches: impl Fn(&[u8]) -> bool) -> u8 {
    let mut total = 0;
    let mut hits = 0;
    for l in lines {
        let l = trim_line(l);
        if l.is_empty() || l[0] == b'#' {
            continue;
        }
        total += 1;
        if matches(l) {
            hits += 1;
        }
    }
    if total == 0 || hits == 0 {
        0
    } else if hits * 10 >= total * 8 {
        90
    } else if hits * 2 >= total {
        60
    } else {
        10
    }
}

/// Strip line terminators and trailing blanks.
pub(crate) fn trim_line(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., last] = b {
        if matches!(*last, b'\n' | b'\r' | b' ' | b'\t' | 0) {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// The first 80 characters of a line, for error messages.
pub(crate) fn excerpt(s: &str) -> String {
    let mut end = s.len().min(80);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].to_string();
    if end < s.len() {
        out.push('…');
    }
    out
}

/// Program name without a `(pam_unix)`-style suffix.
fn program_base(app: &str) -> &str {
    match app.find('(') {
        Some(p) if p > 0 => &app[..p],
        _ => app,
    }
}

/// Score how much `lines` look like syslog or a vendor format this decoder
/// reads. CEF and LEEF lines are left to their own decoders.
fn sniff(lines: &[&[u8]]) -> u8 {
    let mut total = 0u32;
    let mut envelope_hits = 0u32;
    let mut vendor_hits = 0u32;
    for l in lines {
        let l = trim_line(l);
        if l.is_empty() || l[0] == b'#' {
            continue;
        }
        total += 1;
        let s = String::from_utf8_lossy(l);
        if s.contains("CEF:") || s.contains("LEEF:") {
            continue;
        }
        match envelope::parse(&s) {
            Some(h) if h.kind != Envelope::NoTimestamp || h.pid.is_some() => {
                envelope_hits += 1;
            }
            _ => {
                if raw_vendor_shape(&s) {
                    vendor_hits += 1;
                }
            }
        }
    }
    if total == 0 {
        return 0;
    }
    let hits = envelope_hits + vendor_hits;
    if hits * 10 >= total * 8 {
        if vendor_hits > envelope_hits { 80 } else { 70 }
    } else if hits * 2 >= total {
        50
    } else if hits > 0 {
        20
    } else {
        0
    }
}

/// Vendor records that come without an envelope.
fn raw_vendor_shape(s: &str) -> bool {
    cisco_asa::looks_like(s)
        || fortigate::looks_like(s)
        || sonicwall::looks_like(s)
        || paloalto::looks_like(s)
        || audit::looks_like(s)
        || netfilter::looks_like(s)
        || juniper::looks_like(s)
        || s.contains("Access denied for user '")
        || s.contains("Login failed for user '")
        || portsentry::looks_like(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(month: u8) -> CivilTime {
        CivilTime {
            year: None,
            month,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            nanos: 0,
            offset: None,
        }
    }

    #[test]
    fn year_rollover() {
        let mut y = YearState::new(Some(2020));
        let t = |y: &mut YearState, m| timestamp::year_month_of(y.resolve(&civil(m)).unwrap());
        assert_eq!(t(&mut y, 11), (2020, 11));
        assert_eq!(t(&mut y, 12), (2020, 12));
        assert_eq!(t(&mut y, 1), (2021, 1));
        // A late December line among January lines: the year before.
        assert_eq!(t(&mut y, 12), (2020, 12));
        assert_eq!(t(&mut y, 1), (2021, 1));
        assert_eq!(t(&mut y, 3), (2021, 3));
    }

    #[test]
    fn year_guess_not_in_future() {
        let now = Timestamp::now();
        let (cy, cm) = timestamp::year_month_of(now);
        let mut y = YearState::new(None);
        // A month after the current one cannot be this year.
        let m = if cm == 12 { 12 } else { cm + 1 };
        let (yy, _) = timestamp::year_month_of(y.resolve(&civil(m)).unwrap());
        if cm == 12 {
            assert_eq!(yy, cy);
        } else {
            assert_eq!(yy, cy - 1);
        }
    }

    /// The decoder with `--year 2021` and a zone, on one line.
    fn time_in(zone: &str, line: &str) -> Option<String> {
        let cfg = DecoderConfig {
            year: Some(2021),
            timezone: Some(jiff::tz::TimeZone::get(zone).expect("tz database")),
            ..Default::default()
        };
        let mut d = SyslogDecoder::new(&cfg);
        let fast = d.time_of(line.as_bytes()).map(|t| t.to_string());
        let full = match d.decode(line.as_bytes()) {
            Ok(Decoded::Event(e)) => e.time.map(|t| t.to_string()),
            _ => None,
        };
        // `time_of` must agree with `decode`.
        assert_eq!(fast, full, "{line}");
        full
    }

    #[test]
    fn zone_less_times_are_read_in_the_configured_zone() {
        let l = |ts: &str| {
            format!("{ts} gw01 sshd[1]: Failed password for root from 192.0.2.7 port 22 ssh2")
        };
        // Winter (UTC+1) and summer (UTC+2) in Paris.
        assert_eq!(
            time_in("Europe/Paris", &l("Mar  2 03:11:07")).as_deref(),
            Some("2021-03-02T02:11:07Z")
        );
        assert_eq!(
            time_in("Europe/Paris", &l("Jul  3 14:22:19")).as_deref(),
            Some("2021-07-03T12:22:19Z")
        );
        // The hour that does not exist (clocks jump 02:00 -> 03:00 on 28
        // March 2021): read as if the clock had not jumped yet, UTC+1.
        assert_eq!(
            time_in("Europe/Paris", &l("Mar 28 02:30:00")).as_deref(),
            Some("2021-03-28T01:30:00Z")
        );
        // The hour that happens twice (31 October): the first, UTC+2.
        assert_eq!(
            time_in("Europe/Paris", &l("Oct 31 02:30:00")).as_deref(),
            Some("2021-10-31T00:30:00Z")
        );
        // A zone west of UTC.
        assert_eq!(
            time_in("America/New_York", &l("Mar  2 03:11:07")).as_deref(),
            Some("2021-03-02T08:11:07Z")
        );
        // A line with its own offset keeps it.
        assert_eq!(
            time_in(
                "Asia/Tokyo",
                "<38>1 2021-03-02T03:11:07+00:00 gw01 sshd 1 - - Failed password for root from 192.0.2.7 port 22 ssh2"
            )
            .as_deref(),
            Some("2021-03-02T03:11:07Z")
        );
        // Impossible dates stay refused.
        assert_eq!(time_in("Europe/Paris", &l("Feb 30 01:00:00")), None);
    }
}
