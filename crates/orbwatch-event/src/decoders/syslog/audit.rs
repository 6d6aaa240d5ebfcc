//! Linux audit records (`/var/log/audit/audit.log`, or `audit:` through
//! syslog): `type=USER_AUTH msg=audit(1373129280.000:9): pid=1277 uid=0 ...
//! msg='op=PAM:authentication acct="root" exe="/usr/sbin/sshd"
//! hostname=1.2.3.4 addr=1.2.3.4 terminal=ssh res=failed'`.
//!
//! `USER_AUTH` gives the outcome of an authentication (`res=failed` →
//! failure, `success` → success); `USER_ERR` with `res=failed` is a failure
//! (`InvalidUser` for `op=PAM:bad_ident`). `USER_LOGIN` and the other
//! `USER_*`/`CRED_*` records summarise the same attempts again: they become
//! auth events without an outcome, so that attempts are not counted twice.
//! `acct` may be hex-encoded (`acct=28756E6B6E6F776E207573657229` is
//! "(unknown user)"). The service is the basename of `exe`. Time comes from
//! `audit(epoch:serial)`.

use super::Ctx;
use super::TimeQuality;
use super::fields::{add_remaining_ips, for_each_kv, nonempty, parse_peer, set_src_peer};
use super::timestamp::parse_epoch;
use crate::model::{AuthOutcome, Event, EventKind};

/// Does the text hold an audit record?
pub(crate) fn looks_like(s: &str) -> bool {
    s.contains("audit(") && s.contains("type=")
}

/// Parse an audit record.
pub(crate) fn parse(c: &Ctx) -> Option<Event> {
    let body = c.body;
    let a = body.find("audit(")?;
    let after = &body[a + 6..];
    let colon = after.find([':', ')'])?;
    let epoch = parse_epoch(&after[..colon]);
    let typ = body[..a]
        .rfind("type=")
        .map(|i| {
            let t = &body[i + 5..a];
            t.split([' ', ',']).next().unwrap_or("")
        })
        .unwrap_or("");
    let typ = match typ {
        "1100" => "USER_AUTH",
        "1101" => "USER_ACCT",
        "1103" => "CRED_ACQ",
        "1105" => "USER_START",
        "1106" => "USER_END",
        "1109" => "USER_ERR",
        "1112" => "USER_LOGIN",
        t => t,
    };
    let mut ev = Event::new(EventKind::Other);
    c.pick_time(&mut ev, epoch.map(|t| (t, TimeQuality::Zoned)));
    // The user-space message: msg='...'
    let inner = match body.find("msg='") {
        Some(i) => {
            let r = &body[i + 5..];
            &r[..r.find('\'').unwrap_or(r.len())]
        }
        None => after,
    };
    let mut op = "";
    let mut acct = None;
    let mut exe = "";
    let mut res = "";
    let mut addr = None;
    let mut hostname = None;
    for_each_kv(inner, |k, v| match k {
        "op" => op = v,
        "acct" => acct = decode_acct(v),
        "exe" => exe = v,
        "res" => res = v,
        "addr" => addr = parse_peer(v),
        "hostname" => hostname = parse_peer(v),
        _ => {}
    });
    let is_user = typ.starts_with("USER_") || typ.starts_with("CRED_");
    if is_user {
        ev.kind = EventKind::Auth;
        let failed = res.starts_with("fail");
        ev.auth = match typ {
            "USER_AUTH" if failed => Some(AuthOutcome::Failure),
            "USER_AUTH" if res == "success" => Some(AuthOutcome::Success),
            "USER_ERR" if failed && op.contains("bad_ident") => Some(AuthOutcome::InvalidUser),
            "USER_ERR" if failed => Some(AuthOutcome::Failure),
            _ => None,
        };
        ev.user = acct
            .and_then(|a| nonempty(&a))
            .filter(|a| a != "(unknown user)" && a != "(invalid user)");
        if let Some(p) = addr.or(hostname) {
            set_src_peer(&mut ev, p);
        }
        let base = exe.rsplit('/').next().unwrap_or(exe);
        ev.service = nonempty(base);
    }
    add_remaining_ips(&mut ev, inner);
    Some(ev)
}

/// `"root"` (quotes already removed) or hex-encoded `28756E...`.
fn decode_acct(v: &str) -> Option<String> {
    if v.len() >= 2
        && v.len().is_multiple_of(2)
        && v.bytes().all(|b| b.is_ascii_hexdigit())
        && v.bytes().any(|b| b.is_ascii_alphabetic() || b > b'7')
    {
        let bytes: Option<Vec<u8>> = (0..v.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&v[i..i + 2], 16).ok())
            .collect();
        if let Some(b) = bytes
            && let Ok(s) = String::from_utf8(b)
        {
            return Some(s);
        }
    }
    nonempty(v)
}
