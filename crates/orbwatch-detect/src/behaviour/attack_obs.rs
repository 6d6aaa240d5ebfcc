//! Which events make the observations of the attack detectors added for
//! issue 11: logon attempts without an outcome (`explicit_spray`), IDS
//! verdicts (`ids_verdict`) and answered connections to login services
//! whose outcome is encrypted (`login_flood`).
//!
//! Kept apart from `observe` so that the event-to-observation rules of
//! these detectors sit next to each other and `observe` only calls
//! [`extra_kind`].

use std::borrow::Cow;

use orbwatch_event::{Event, EventKind};

use super::ObsKind;
use super::ids_verdict;
use super::login_flood;

/// What goes into an extra observation's `aux`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraAux {
    /// A name, interned into the name table (an account).
    Name(String),
    /// A plain value (a verdict class).
    Value(u64),
}

/// `sshd_5848`: the virtual account OpenSSH for Windows creates for each
/// connection (seen in the EVTX-to-MITRE-Attack samples).
fn is_per_process_account(user: &str) -> bool {
    user.strip_prefix("sshd_")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Does this record stand for a new connection? A NetFlow/IPFIX record
/// (`conn_state` `flags:…`) without SYN continues a connection an earlier
/// record opened: exporters cut long flows into several records (active
/// timeout), and each is not another login attempt.
fn opens_connection(ev: &Event) -> bool {
    match ev
        .conn_state
        .as_deref()
        .and_then(|s| s.strip_prefix("flags:"))
    {
        Some(letters) => letters.contains('S'),
        None => true,
    }
}

/// The extra observation an event makes, if any: kind, service or
/// signature name (interned into `svc`), and `aux`.
pub fn extra_kind(ev: &Event) -> Option<(ObsKind, Cow<'_, str>, ExtraAux)> {
    if let Some(sig) = ev.signature.as_deref()
        && let Some(class) = ids_verdict::class_of(sig)
        && ev.src_ip.is_some()
    {
        return Some((
            ObsKind::IdsVerdict,
            Cow::Borrowed(sig),
            ExtraAux::Value(class),
        ));
    }
    if ev.auth.is_some() {
        return None;
    }
    if ev.kind == EventKind::Auth
        && let Some(user) = ev.user.as_deref().map(str::trim)
        && !user.is_empty()
        && user != "-"
        && !user.ends_with('$')
        && !is_per_process_account(user)
    {
        // A logon attempt with a named account and no outcome (Windows
        // 4648). Machine accounts (`HOST$`) use explicit credentials for
        // their own services all day, and OpenSSH for Windows logs one
        // 4648 per connection for a fresh `sshd_<pid>` virtual account;
        // neither is a spray target.
        return Some((
            ObsKind::AuthAttempt,
            Cow::Borrowed(ev.service.as_deref().unwrap_or_default()),
            ExtraAux::Name(user.to_string()),
        ));
    }
    if matches!(
        ev.kind,
        EventKind::Connection | EventKind::Auth | EventKind::Other
    ) && ev.src_ip.is_some()
        && !super::observe::is_probe(ev)
        && opens_connection(ev)
        && let Some(svc) = login_flood::service_of(ev.dst_port, ev.service.as_deref())
    {
        return Some((
            ObsKind::LoginConnection,
            Cow::Borrowed(svc),
            ExtraAux::Value(0),
        ));
    }
    None
}
