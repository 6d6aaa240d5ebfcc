//! OpenSSH `sshd` (also `sshd-session`, `sshd-auth`, `[sshd]`) messages.
//!
//! This is the hot path of the main benchmark (hunting gigabytes of sshd
//! logs), so it dispatches on the first byte of the message, uses
//! `str::find`/`strip_prefix` on borrowed slices and allocates only the
//! strings the [`Event`] must own.
//!
//! Outcomes follow what the line says, and fail2ban's "aggressive" view of
//! hostile pre-authentication behaviour:
//!
//! * `Failed <method> for [invalid user] U from H`, `PAM: Authentication
//!   failure`, `maximum authentication attempts exceeded`, `User U from H
//!   not allowed`, `ROOT LOGIN REFUSED`, `refused connect`: failure
//!   (`InvalidUser` when sshd says the account does not exist);
//! * `Invalid user U from H`: `InvalidUser`;
//! * `Accepted <method> for U from H`: success;
//! * connections dropped before authentication (`... [preauth]` closes,
//!   resets and disconnects, `Did not receive identification string`,
//!   `banner exchange`, `Unable to negotiate`, `kex_exchange_identification`,
//!   `Timeout before authentication`, penalties): failure;
//! * other lines with an address (`Connection from`, normal disconnects):
//!   an event without outcome, so the address is still hunted.
//!
//! User names are attacker-controlled and may contain ` from 1.2.3.4 port
//! 22`: the address is taken from the first `from` whose tail is what sshd
//! writes after an address (end of line, ` port N`, `ssh2`, `: ...`,
//! `[preauth]`), or anchored at the end of the line for `Connection closed
//! by ... port N [preauth]`.

use std::net::IpAddr;
use std::sync::LazyLock;

use memchr::memmem::Finder;

/// Searchers for the words every sshd attempt line is cut at, built once:
/// `memmem::find` and `str::split_once` build a searcher at each call,
/// which cost as much as the search itself on these short lines (3 % of
/// a 1 GB hunt's sweep threads).
static FOR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(" for "));
static FROM: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(" from "));
static PORT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(" port "));

/// `s` split around the first match of `word` (a [`Finder`] for it).
fn split_at_word<'a>(s: &'a str, word: &Finder<'_>) -> Option<(&'a str, &'a str)> {
    let i = word.find(s.as_bytes())?;
    // The words are ASCII, so both ends of a match are char boundaries.
    Some((&s[..i], &s[i + word.needle().len()..]))
}

use super::Ctx;
use super::fields::{Peer, parse_ip, parse_peer, parse_port, set_src_peer, split_ip_port};
use super::fields::{rsplit_space, space};
use super::pam_unix;
use crate::model::{AuthOutcome, Event, EventKind};

const SLOTS: usize = 4096;

/// Slots in use before the table is made dense.
const DENSE_AT: usize = 256;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u64,
    ip: Option<IpAddr>,
    /// A failure without address was seen on this connection: the next
    /// line with an address reports it.
    pending: bool,
}

/// The last remote address of each sshd connection, keyed by (host, pid);
/// a direct-mapped table of [`SLOTS`] slots, so old connections are simply
/// overwritten.
///
/// The slots in use are kept apart until [`DENSE_AT`] are, and only then
/// is the whole table (128 KiB) made. Why: a live pipeline has a decoder
/// per stream, one per UDP sender, and a flood of datagrams from forged
/// source addresses made a stream (and a table) for each: 28,580 of them
/// took 3.9 GB, and zeroing each table held the pipeline to 3,000
/// records a second. The answers are those of the dense table: the same
/// slot for the same connection, overwritten alike.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnCache {
    /// Every slot, once [`DENSE_AT`] are in use (empty before).
    dense: Vec<Slot>,
    /// The slots in use, by index, while the table is not dense.
    sparse: hashbrown::HashMap<u16, Slot>,
}

impl ConnCache {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn key(host: Option<&str>, pid: Option<&str>) -> Option<(u64, usize)> {
        let pid: u32 = pid?.parse().ok()?;
        let mut h: u32 = 0x811c_9dc5;
        for &b in host.unwrap_or("").as_bytes() {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
        let key = ((h as u64) << 32 | pid as u64) | 1;
        Some((key, (pid ^ h.rotate_left(13)) as usize & (SLOTS - 1)))
    }

    /// Slot `i` as it is (a slot never written is the default one).
    fn slot(&self, i: usize) -> Slot {
        if self.dense.is_empty() {
            self.sparse.get(&(i as u16)).copied().unwrap_or_default()
        } else {
            self.dense[i]
        }
    }

    /// Slot `i`, to write.
    fn slot_mut(&mut self, i: usize) -> &mut Slot {
        if self.dense.is_empty() {
            if self.sparse.len() < DENSE_AT || self.sparse.contains_key(&(i as u16)) {
                return self.sparse.entry(i as u16).or_default();
            }
            let mut dense = vec![Slot::default(); SLOTS];
            for (j, s) in self.sparse.drain() {
                dense[usize::from(j)] = s;
            }
            self.sparse = hashbrown::HashMap::new();
            self.dense = dense;
        }
        &mut self.dense[i]
    }

    /// Remember `ip` for the connection; true if a failure was pending.
    fn remember(&mut self, k: (u64, usize), ip: IpAddr) -> bool {
        let slot = self.slot_mut(k.1);
        let pending = slot.key == k.0 && slot.pending;
        *slot = Slot {
            key: k.0,
            ip: Some(ip),
            pending: false,
        };
        pending
    }

    fn lookup(&self, k: (u64, usize)) -> Option<IpAddr> {
        let slot = self.slot(k.1);
        if slot.key == k.0 { slot.ip } else { None }
    }

    fn set_pending(&mut self, k: (u64, usize)) {
        let slot = self.slot_mut(k.1);
        if slot.key != k.0 {
            *slot = Slot {
                key: k.0,
                ip: None,
                pending: true,
            };
        } else {
            slot.pending = true;
        }
    }
}

/// What one sshd message says.
#[derive(Debug, Default)]
struct Msg<'a> {
    outcome: Option<AuthOutcome>,
    /// An authentication step without verdict (`Postponed`, `input_userauth_request`).
    auth: bool,
    user: Option<&'a str>,
    peer: Option<Peer<'a>>,
    port: Option<u16>,
    local: Option<(IpAddr, Option<u16>)>,
    /// The line has no address: use the connection's.
    needs_cache: bool,
    /// `Connection from A port p on B port q`.
    connection: bool,
    count: u64,
    unknown: bool,
}

impl<'a> Msg<'a> {
    fn unknown() -> Self {
        Msg {
            unknown: true,
            ..Default::default()
        }
    }

    fn cached(outcome: Option<AuthOutcome>) -> Self {
        Msg {
            outcome,
            needs_cache: true,
            ..Default::default()
        }
    }
}

/// Parse one sshd message into an event (never fails: unknown messages
/// keep their addresses in `other_ips`).
pub(crate) fn parse(c: &Ctx, conns: &mut ConnCache) -> Box<Event> {
    let m = strip_prefixes(c.msg.trim_end());
    let key = ConnCache::key(c.host, c.pid);
    // `sshd(pam_unix)[pid]: authentication failure; ...`: the old tag puts
    // the module in the program name and the message starts bare.
    if (m.starts_with("pam_")
        || m.starts_with("(pam_")
        || m.starts_with("authentication failure; logname=")
        || m.starts_with("PAM ") && m.contains(" more authentication failure"))
        && let Some(ev) = pam_unix::parse(m, "sshd")
    {
        let mut ev = Box::new(ev);
        match ev.src_ip {
            Some(ip) => {
                if let Some(k) = key {
                    conns.remember(k, ip);
                }
            }
            None if ev.domain.is_none() => {
                if let Some(ip) = key.and_then(|k| conns.lookup(k)) {
                    ev.src_ip = Some(ip);
                }
            }
            None => {}
        }
        return ev;
    }
    let mut r = classify(m);
    let mut ev = Box::new(Event::new(EventKind::Other));
    ev.service = Some("sshd".to_string());
    if r.unknown {
        super::generic::add_ips(&mut ev, m);
        return ev;
    }
    match r.peer {
        Some(p) => {
            set_src_peer(&mut ev, p);
            if let (Peer::Ip(ip), Some(k)) = (p, key)
                && conns.remember(k, ip)
                && r.outcome.is_none()
            {
                r.outcome = Some(AuthOutcome::Failure);
            }
        }
        None if r.needs_cache => {
            if let Some(k) = key {
                match conns.lookup(k) {
                    Some(ip) => ev.src_ip = Some(ip),
                    None if r.outcome.is_some() => conns.set_pending(k),
                    None => {}
                }
            }
        }
        None => {}
    }
    ev.src_port = r.port;
    if let Some((ip, port)) = r.local {
        ev.dst_ip = Some(ip);
        ev.dst_port = port;
    }
    if let Some(u) = r.user
        && !u.is_empty()
        && u != "<invalid username>"
    {
        ev.user = Some(u.to_string());
    }
    ev.auth = r.outcome;
    ev.kind = if r.connection {
        EventKind::Connection
    } else if r.outcome.is_some() || r.auth {
        EventKind::Auth
    } else {
        EventKind::Other
    };
    if r.count > 1 {
        ev.count = r.count;
    }
    ev
}

/// Drop `error: `, `fatal: `, Solaris `[ID 800047 auth.info] ` and the
/// journald `kernel:[ 970.69]: ` noise in front of the message.
fn strip_prefixes(mut m: &str) -> &str {
    loop {
        let b = m.as_bytes();
        let Some(&c) = b.first() else { return m };
        let next = match c {
            b'e' => m.strip_prefix("error: "),
            b'f' => m.strip_prefix("fatal: "),
            b'd' => m.strip_prefix("debug1: "),
            b'[' if m.starts_with("[ID ") => m.find("] ").map(|p| &m[p + 2..]),
            b'k' if m.starts_with("kernel:") => m
                .find(']')
                .map(|p| m[p + 1..].trim_start_matches(':').trim_start_matches(' ')),
            _ => None,
        };
        match next {
            Some(n) => m = n,
            None => return m,
        }
    }
}

fn classify(m: &str) -> Msg<'_> {
    use AuthOutcome::{Failure, InvalidUser, Success};
    let Some(&first) = m.as_bytes().first() else {
        return Msg::unknown();
    };
    let got = match first {
        b'F' => m
            .strip_prefix("Failed ")
            .and_then(|r| attempt(r, Some(Failure))),
        b'A' => {
            if let Some(r) = m.strip_prefix("Accepted ") {
                attempt(r, Some(Success))
            } else if let Some(r) = m.strip_prefix("Address ") {
                host_port(r).map(|(p, _)| Msg {
                    peer: Some(p),
                    ..Default::default()
                })
            } else {
                None
            }
        }
        b'P' => {
            if let Some(r) = m.strip_prefix("Postponed ") {
                attempt(r, None).map(|mut x| {
                    x.auth = true;
                    x
                })
            } else if let Some(r) = m.strip_prefix("PAM: ") {
                pam_message(r)
            } else {
                None
            }
        }
        b'I' => m
            .strip_prefix("Invalid user ")
            .or_else(|| m.strip_prefix("Illegal user "))
            .and_then(|r| {
                let (user, peer, port, _) = from_candidate(r)?;
                Some(Msg {
                    outcome: Some(InvalidUser),
                    user: Some(user),
                    peer: Some(peer),
                    port,
                    ..Default::default()
                })
            }),
        b'i' => m
            .strip_prefix("input_userauth_request: invalid user ")
            .map(|r| Msg {
                auth: true,
                user: Some(r.strip_suffix(" [preauth]").unwrap_or(r)),
                needs_cache: true,
                ..Default::default()
            }),
        b'U' => {
            if let Some(r) = m.strip_prefix("User ") {
                user_not_allowed(r)
            } else if let Some(r) = m.strip_prefix("Unable to negotiate with ") {
                host_port(r).map(|(p, port)| Msg {
                    outcome: Some(Failure),
                    peer: Some(p),
                    port,
                    ..Default::default()
                })
            } else if m.starts_with("Unable to negotiate") {
                Some(Msg::cached(Some(Failure)))
            } else {
                None
            }
        }
        b'C' => {
            if let Some(r) = m
                .strip_prefix("Connection closed by ")
                .or_else(|| m.strip_prefix("Connection reset by "))
            {
                closed(r)
            } else if let Some(r) = m.strip_prefix("Connection from ") {
                connection_from(r)
            } else if m.starts_with("Corrupted MAC on input") {
                Some(Msg::cached(None))
            } else {
                None
            }
        }
        b'D' => {
            if let Some(r) = m.strip_prefix("Disconnected from ") {
                closed(r)
            } else if let Some(r) = m.strip_prefix("Disconnecting: ") {
                if r.contains("Too many authentication failures") {
                    let user = split_at_word(r, &FOR)
                        .map(|(_, u)| u.strip_suffix(" [preauth]").unwrap_or(u));
                    Some(Msg {
                        user,
                        ..Msg::cached(Some(Failure))
                    })
                } else {
                    Some(Msg::cached(None))
                }
            } else if let Some(r) = m.strip_prefix("Disconnecting ") {
                disconnecting_user(r)
            } else if let Some(r) = m.strip_prefix("Did not receive identification string from ") {
                host_port(r).map(|(p, port)| Msg {
                    outcome: Some(Failure),
                    peer: Some(p),
                    port,
                    ..Default::default()
                })
            } else {
                None
            }
        }
        b'R' => {
            if let Some(r) = m.strip_prefix("Received disconnect from ") {
                received_disconnect(r)
            } else if let Some(r) = m.strip_prefix("ROOT LOGIN REFUSED FROM ") {
                host_port(r).map(|(p, port)| Msg {
                    outcome: Some(Failure),
                    user: Some("root"),
                    peer: Some(p),
                    port,
                    ..Default::default()
                })
            } else if m.starts_with("Read from socket failed") {
                Some(Msg::cached(Some(Failure)))
            } else if let Some(r) = m.strip_prefix("Read error from remote host ") {
                host_port(r).map(|(p, port)| Msg {
                    peer: Some(p),
                    port,
                    ..Default::default()
                })
            } else {
                None
            }
        }
        b'r' => {
            if let Some(r) = m.strip_prefix("refused connect from ") {
                refused_connect(r)
            } else if let Some(r) = m.strip_prefix("reverse mapping checking getaddrinfo for ") {
                bracketed_ip(r).map(|ip| Msg {
                    peer: Some(Peer::Ip(ip)),
                    ..Default::default()
                })
            } else {
                None
            }
        }
        b'm' => m
            .strip_prefix("maximum authentication attempts exceeded for ")
            .and_then(|r| attempt_after_for(r, Some(Failure))),
        b'b' => m
            .strip_prefix("banner exchange: ")
            .and_then(|r| from_anywhere(r, Failure)),
        b'B' => {
            if m.starts_with("Bad protocol version identification") {
                from_anywhere(m, Failure)
            } else if m.starts_with("Bad packet length") {
                Some(Msg::cached(None))
            } else {
                None
            }
        }
        b'k' => {
            if m.starts_with("kex_exchange_identification:") {
                Some(Msg::cached(Some(Failure)))
            } else if m.starts_with("kex_protocol_error") {
                Some(Msg::cached(None))
            } else {
                None
            }
        }
        b's' => m
            .strip_prefix("ssh_dispatch_run_fatal: ")
            .and_then(|r| from_anywhere(r, Failure)),
        b'T' => {
            if let Some(r) = m.strip_prefix("Timeout before authentication for ") {
                let r = r.strip_prefix("connection from ").unwrap_or(r);
                host_port(r).map(|(p, port)| Msg {
                    outcome: Some(Failure),
                    peer: Some(p),
                    port,
                    ..Default::default()
                })
            } else if m.starts_with("Too many authentication failures") {
                let user =
                    split_at_word(m, &FOR).map(|(_, u)| u.strip_suffix(" [preauth]").unwrap_or(u));
                Some(Msg {
                    user,
                    ..Msg::cached(Some(Failure))
                })
            } else {
                None
            }
        }
        b'M' => {
            if m.starts_with("Magic value check failed") {
                from_anywhere(m, Failure)
            } else {
                None
            }
        }
        b'n' => m
            .starts_with("no matching ")
            .then(|| Msg::cached(Some(Failure))),
        b'S' => m.strip_prefix("SSH: Server;").and_then(ssh_remote),
        b'd' => m.strip_prefix("drop connection #").and_then(penalty),
        _ => None,
    };
    got.unwrap_or_else(Msg::unknown)
}

/// `password for [invalid user ]U from H port N ssh2[: info]`.
fn attempt(r: &str, outcome: Option<AuthOutcome>) -> Option<Msg<'_>> {
    let (_method, rest) = split_at_word(r, &FOR)?;
    attempt_after_for(rest, outcome)
}

/// `[invalid user ]U from H port N ssh2[: info]`.
fn attempt_after_for(rest: &str, outcome: Option<AuthOutcome>) -> Option<Msg<'_>> {
    let (invalid, rest) = match rest
        .strip_prefix("invalid user ")
        .or_else(|| rest.strip_prefix("illegal user "))
    {
        Some(x) => (true, x),
        None => (false, rest),
    };
    let (user, peer, port, _) = from_candidate(rest)?;
    let invalid = invalid || user == "<invalid username>";
    let outcome = match outcome {
        Some(AuthOutcome::Failure) if invalid => Some(AuthOutcome::InvalidUser),
        o => o,
    };
    Some(Msg {
        outcome,
        auth: true,
        user: Some(user),
        peer: Some(peer),
        port,
        ..Default::default()
    })
}

/// The address after ` from ` whose tail is what sshd writes after an
/// address. Returns (text before ` from `, peer, port, `via` address).
fn from_candidate(s: &str) -> Option<(&str, Peer<'_>, Option<u16>, Option<IpAddr>)> {
    let mut from = 0;
    // An empty user name leaves `from` at the very start.
    if let Some(after) = s.strip_prefix("from ")
        && let Some((peer, port, tail)) = peer_at(after)
        && let Some(via) = tail_ok(tail)
    {
        return Some(("", peer, port, via));
    }
    while let Some(i) = s.get(from..).and_then(|x| FROM.find(x.as_bytes())) {
        let at = from + i;
        if let Some((peer, port, tail)) = peer_at(&s[at + 6..])
            && let Some(via) = tail_ok(tail)
        {
            return Some((&s[..at], peer, port, via));
        }
        from = at + 1;
    }
    None
}

/// Accept the tail sshd writes after an address; returns the `via` address
/// of PAM's `... from H via 192.168.1.201`.
fn tail_ok(t: &str) -> Option<Option<IpAddr>> {
    if t.is_empty() || t.starts_with(':') || t.starts_with(" [preauth]") {
        return Some(None);
    }
    if let Some(v) = t.strip_prefix(" via ") {
        let tok = v.split(' ').next().unwrap_or(v);
        return Some(parse_ip(tok));
    }
    None
}

/// `H[ port N][ ssh2]...` → (peer, port, rest).
fn peer_at(s: &str) -> Option<(Peer<'_>, Option<u16>, &str)> {
    let end = space(s).unwrap_or(s.len());
    let peer = parse_peer(&s[..end])?;
    let mut tail = &s[end..];
    let mut port = None;
    if let Some(r) = tail.strip_prefix(" port ") {
        let pe = r
            .bytes()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(r.len());
        port = Some(parse_port(&r[..pe])?);
        tail = &r[pe..];
    }
    if let Some(r) = tail
        .strip_prefix(" ssh2")
        .or_else(|| tail.strip_prefix(" ssh1"))
    {
        tail = r;
    }
    Some((peer, port, tail))
}

/// `H[:][ port N]...`: the first token as a peer, then an optional port.
fn host_port(r: &str) -> Option<(Peer<'_>, Option<u16>)> {
    let end = space(r).unwrap_or(r.len());
    let tok = r[..end].trim_end_matches([':', ',', ';']);
    let peer = parse_peer(tok)?;
    let mut port = None;
    if let Some(p) = r[end..].strip_prefix(" port ") {
        let pe = p
            .bytes()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(p.len());
        port = parse_port(&p[..pe]);
    }
    Some((peer, port))
}

/// The first ` from H port N` / `from H` in the message with a valid tail.
fn from_anywhere(r: &str, outcome: AuthOutcome) -> Option<Msg<'_>> {
    let (_, peer, port, _) = from_candidate(r).or_else(|| {
        // `Connection from H port N: invalid format` at the very start.
        let i = r.find("from ")?;
        let (peer, port, tail) = peer_at(&r[i + 5..])?;
        tail_ok(tail)?;
        Some(("", peer, port, None))
    })?;
    Some(Msg {
        outcome: Some(outcome),
        peer: Some(peer),
        port,
        ..Default::default()
    })
}

/// `[authenticating |invalid ]user U H port N [preauth]`, `H port N`,
/// `H [preauth]`: anchored at the end of the line.
fn closed(r: &str) -> Option<Msg<'_>> {
    let r = r.trim_end();
    let preauth = r.ends_with("[preauth]");
    let core = r.strip_suffix("[preauth]").unwrap_or(r).trim_end();
    let (core, port) = match memchr::memmem::rfind(core.as_bytes(), b" port ") {
        Some(i) if parse_port(&core[i + 6..]).is_some() => (&core[..i], parse_port(&core[i + 6..])),
        _ => (core, None),
    };
    let (pre, host) = rsplit_space(core).unwrap_or(("", core));
    let peer = parse_peer(host)?;
    let (user, invalid) = user_prefix(pre);
    let outcome = match (preauth, invalid) {
        (true, true) => Some(AuthOutcome::InvalidUser),
        (true, false) => Some(AuthOutcome::Failure),
        _ => None,
    };
    Some(Msg {
        outcome,
        auth: user.is_some(),
        user,
        peer: Some(peer),
        port,
        ..Default::default()
    })
}

/// `authenticating user U` / `invalid user U` / `user U` → (user, invalid).
fn user_prefix(pre: &str) -> (Option<&str>, bool) {
    let pre = pre.strip_suffix(' ').unwrap_or(pre);
    if let Some(u) = pre.strip_prefix("authenticating user ") {
        (Some(u), false)
    } else if let Some(u) = pre
        .strip_prefix("invalid user ")
        .or_else(|| (pre == "invalid user").then_some(""))
    {
        (Some(u), true)
    } else if let Some(u) = pre.strip_prefix("user ") {
        (Some(u), false)
    } else {
        (None, false)
    }
}

/// `invalid user U H port N: reason [preauth]`.
fn disconnecting_user(r: &str) -> Option<Msg<'_>> {
    let mut from = 0;
    while let Some(i) = r.get(from..).and_then(|x| PORT.find(x.as_bytes())) {
        let at = from + i;
        let after = &r[at + 6..];
        let pe = after
            .bytes()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(after.len());
        if pe > 0 && after[pe..].starts_with(':') {
            let pre = &r[..at];
            let (pre, host) = rsplit_space(pre).unwrap_or(("", pre));
            if let Some(peer) = parse_peer(host) {
                let (user, invalid) = user_prefix(pre);
                return Some(Msg {
                    outcome: Some(if invalid {
                        AuthOutcome::InvalidUser
                    } else {
                        AuthOutcome::Failure
                    }),
                    user,
                    peer: Some(peer),
                    port: parse_port(&after[..pe]),
                    ..Default::default()
                });
            }
        }
        from = at + 1;
    }
    None
}

/// `H[ port N]:[ ]CODE: text [preauth]`.
fn received_disconnect(r: &str) -> Option<Msg<'_>> {
    let end = space(r).unwrap_or(r.len());
    let tok = &r[..end];
    let mut after = &r[end..];
    // `1.2.3.4:` / `1.2.3.4` / `2001:db8::1:`
    let host = tok.strip_suffix(':').unwrap_or(tok);
    let peer = parse_peer(host)?;
    let mut port = None;
    if let Some(p) = after.strip_prefix(" port ") {
        let pe = p
            .bytes()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(p.len());
        port = parse_port(&p[..pe]);
        after = &p[pe..];
    }
    let t = after.trim_start_matches([':', ' ']);
    let ce = t
        .bytes()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(t.len());
    let code: u32 = t[..ce].parse().unwrap_or(0);
    let text = &t[ce..];
    let failed = r.ends_with("[preauth]")
        || code == 3
        || code == 14
        || super::fields::contains_ci(text, "auth fail");
    Some(Msg {
        outcome: failed.then_some(AuthOutcome::Failure),
        peer: Some(peer),
        port,
        ..Default::default()
    })
}

/// `A port p on B port q[ rdomain ""]`, or just `A[ port p]`.
fn connection_from(r: &str) -> Option<Msg<'_>> {
    let (peer, port, tail) = peer_at(r)?;
    let mut local = None;
    if let Some(t) = tail.strip_prefix(" on ")
        && let Some((Peer::Ip(ip), lport, _)) = peer_at(t)
    {
        local = Some((ip, lport));
    }
    Some(Msg {
        peer: Some(peer),
        port,
        local,
        connection: true,
        ..Default::default()
    })
}

/// `U from H not allowed because ...` or `U not allowed because ...`.
fn user_not_allowed(r: &str) -> Option<Msg<'_>> {
    let i = r.rfind(" not allowed because")?;
    let before = &r[..i];
    match before.rfind(" from ") {
        Some(j) => {
            let peer = parse_peer(&before[j + 6..])?;
            Some(Msg {
                outcome: Some(AuthOutcome::Failure),
                user: Some(&before[..j]),
                peer: Some(peer),
                ..Default::default()
            })
        }
        None => Some(Msg {
            auth: true,
            user: Some(before),
            needs_cache: true,
            ..Default::default()
        }),
    }
}

/// tcp_wrappers: `X (IP)` or `H`.
fn refused_connect(r: &str) -> Option<Msg<'_>> {
    let r = r.trim_end();
    let peer = if let (Some(open), true) = (r.rfind('('), r.ends_with(')')) {
        parse_peer(&r[open + 1..r.len() - 1])
    } else {
        None
    };
    let peer = match peer {
        Some(p) => p,
        None => {
            let tok = r.split(' ').next().unwrap_or(r);
            let tok = tok.rsplit('@').next().unwrap_or(tok);
            parse_peer(tok)?
        }
    };
    Some(Msg {
        outcome: Some(AuthOutcome::Failure),
        peer: Some(peer),
        ..Default::default()
    })
}

/// `PAM: Authentication failure for [illegal user ]U from H[ via IP]`.
fn pam_message(r: &str) -> Option<Msg<'_>> {
    let (_, rest) = split_at_word(r, &FOR)?;
    let (invalid, rest) = match rest
        .strip_prefix("illegal user ")
        .or_else(|| rest.strip_prefix("invalid user "))
    {
        Some(x) => (true, x),
        None => (false, rest),
    };
    let (user, peer, port, via) = from_candidate(rest)?;
    let invalid = invalid || r.starts_with("User not known");
    Some(Msg {
        outcome: Some(if invalid {
            AuthOutcome::InvalidUser
        } else {
            AuthOutcome::Failure
        }),
        user: Some(user),
        peer: Some(peer),
        port,
        local: via.map(|ip| (ip, None)),
        ..Default::default()
    })
}

/// `Ltype: Version;Remote: 127.0.0.1-1780;...`.
fn ssh_remote(r: &str) -> Option<Msg<'_>> {
    let i = r.find("Remote: ")?;
    let v = &r[i + 8..];
    let v = &v[..v.find(';').unwrap_or(v.len())];
    let (ip, port) = match v.rsplit_once('-') {
        Some((a, p)) => (parse_ip(a)?, parse_port(p)),
        None => (parse_ip(v)?, None),
    };
    Some(Msg {
        peer: Some(Peer::Ip(ip)),
        port,
        ..Default::default()
    })
}

/// `[IP]` somewhere in the text.
fn bracketed_ip(r: &str) -> Option<IpAddr> {
    let o = r.find('[')?;
    let c = r[o..].find(']')? + o;
    parse_ip(&r[o + 1..c])
}

/// OpenSSH 9.8 `PerSourcePenalties`: `drop connection #0 from [1.2.3.4]:5678
/// on [5.6.7.8]:22 penalty: failed authentication`.
fn penalty(r: &str) -> Option<Msg<'_>> {
    let i = r.find(" from ")?;
    let after = &r[i + 6..];
    let tok = after.split(' ').next().unwrap_or(after);
    let (ip, port) = split_ip_port(tok, ':')?;
    let mut local = None;
    if let Some(j) = after.find(" on ") {
        let t = &after[j + 4..];
        let t = t.split(' ').next().unwrap_or(t);
        local = split_ip_port(t, ':');
    }
    Some(Msg {
        outcome: Some(AuthOutcome::Failure),
        peer: Some(Peer::Ip(ip)),
        port,
        local,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table kept sparse, then made dense, answers as a dense table
    /// from the start does, through many connections (collisions and
    /// overwrites included); a small stream never makes the dense table.
    #[test]
    fn the_sparse_connection_table_answers_as_the_dense_one() {
        let mut cache = ConnCache::new();
        // The model: the same table, dense from the start.
        let mut model = ConnCache {
            dense: vec![Slot::default(); SLOTS],
            sparse: hashbrown::HashMap::new(),
        };
        for i in 0..20_000u32 {
            let pid = (i * 7919 % 3000).to_string();
            let host = ["a", "bb", "gw-1"][i as usize % 3];
            let k = ConnCache::key(Some(host), Some(&pid)).expect("a pid");
            let ip = IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
            match i % 4 {
                0 | 1 => assert_eq!(cache.remember(k, ip), model.remember(k, ip), "step {i}"),
                2 => {
                    cache.set_pending(k);
                    model.set_pending(k);
                }
                _ => assert_eq!(cache.lookup(k), model.lookup(k), "step {i}"),
            }
            if i == 100 {
                assert!(cache.dense.is_empty(), "a few connections: no dense table");
            }
        }
        assert_eq!(cache.dense.len(), SLOTS);
        assert!(model.sparse.is_empty());
        for i in 0..3000u32 {
            let k = ConnCache::key(Some("bb"), Some(&i.to_string())).expect("a pid");
            assert_eq!(cache.lookup(k), model.lookup(k));
        }
    }

    fn cls(m: &str) -> Msg<'_> {
        classify(strip_prefixes(m))
    }

    fn ip(m: &Msg) -> String {
        match m.peer {
            Some(Peer::Ip(ip)) => ip.to_string(),
            Some(Peer::Name(n)) => n.to_string(),
            None => String::new(),
        }
    }

    proptest::proptest! {
        /// Splitting at a prebuilt word gives what `split_once` gives,
        /// with multibyte text around, in and between the words.
        #[test]
        fn split_at_word_is_split_once(s in "(( for | from | port |x|é|  |for|from)){0,12}") {
            for (finder, word) in [(&*FOR, " for "), (&*FROM, " from "), (&*PORT, " port ")] {
                proptest::prop_assert_eq!(split_at_word(&s, finder), s.split_once(word));
            }
        }
    }

    #[test]
    fn injections() {
        let m = cls(
            "Failed password for invalid user test from 10.10.1.2 port 55555 ssh2 from 127.0.0.1 port 58946 ssh2",
        );
        assert_eq!(ip(&m), "127.0.0.1");
        assert_eq!(m.user, Some("test from 10.10.1.2 port 55555 ssh2"));
        let m = cls(
            "Failed password for invalid user test from 127.0.0.1 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2",
        );
        assert_eq!(ip(&m), "127.0.0.1");
        let m =
            cls("Failed password for invalid user from 10.10.1.1 from 127.0.0.1 port 58946 ssh2");
        assert_eq!(ip(&m), "127.0.0.1");
        let m = cls(
            "Connection closed by authenticating user test 127.0.0.1 port 12345 192.0.2.11 port 46039 [preauth]",
        );
        assert_eq!(ip(&m), "192.0.2.11");
        assert_eq!(m.user, Some("test 127.0.0.1 port 12345"));
        let m = cls(
            "Bad protocol version identification 'dummy string' from 192.0.2.1' from 69.61.56.115 port 31778",
        );
        assert_eq!(ip(&m), "69.61.56.115");
    }

    #[test]
    fn outcomes() {
        assert_eq!(
            cls("Invalid user  from 192.0.2.68 port 34916").outcome,
            Some(AuthOutcome::InvalidUser)
        );
        assert_eq!(
            cls("Received disconnect from 1.2.3.4 port 5:11: disconnected by user").outcome,
            None
        );
        assert_eq!(
            cls("error: Received disconnect from 1.2.3.4: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]").outcome,
            Some(AuthOutcome::Failure)
        );
        assert_eq!(
            cls("Disconnecting invalid user admin 192.0.2.117 port 44004: Change of username or service not allowed: (admin,ssh-connection) -> (user,ssh-connection) [preauth]").outcome,
            Some(AuthOutcome::InvalidUser)
        );
        let m = cls("Connection from 192.0.2.3 port 39678 on 192.168.1.9 port 22 rdomain \"\"");
        assert!(m.connection);
        assert_eq!(m.local.map(|l| l.1), Some(Some(22)));
        let m =
            cls("error: PAM: authentication error for james from example.com via 192.168.1.201");
        assert_eq!(ip(&m), "example.com");
        let m = cls(
            "drop connection #0 from [1.2.3.4]:5678 on [5.6.7.8]:22 penalty: failed authentication",
        );
        assert_eq!(ip(&m), "1.2.3.4");
    }
}
