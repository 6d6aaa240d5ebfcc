//! Login floods against services whose outcome is encrypted: many answered
//! connections from one source to SSH, RDP, SMB, VNC or Telnet, on one
//! host or many, within minutes.
//!
//! An SSH or RDP password guess happens inside an encrypted session, so a
//! connection log (Zeek `conn.log`/`ssh.log`/`rdp.log`, EVE flows, packet
//! flows, NetFlow) never says "failed". The rate of new connections does:
//! a person opens a few sessions an hour, a guessing tool opens one per
//! guess or per few guesses. Peers use the same signal: Suricata's ET SCAN
//! threshold rules fire on 5 SSH SYNs from one source in 120 s, and Zeek's
//! `SSH::Password_Guessing` counts connections its size heuristic calls
//! failed logins (30 by default, 10 in its own test of a guessing capture).
//! The default here sits between them: 10 answered connections to one
//! service class of one host within 120 s (a sliding window, estimated
//! from two adjacent buckets), or 100 within 120 s across hosts (one or
//! two guesses on each of many hosts), set with `[login_flood]` in the
//! behaviour configuration. Counting per host keeps a monitoring or
//! automation host that touches many servers a few times a minute below
//! the bar, while a guessing tool hammers its target.
//!
//! Unanswered or refused attempts are probes and belong to `port_scan`; a
//! source already reported for failed logins on the same service gets a
//! reason added to that finding instead of a second one. The finding is a
//! `brute_force` with a lower score than one built from failed logins,
//! and its reasons say that the outcome is not visible.

use hashbrown::{HashMap, HashSet};
use serde::{Deserialize, Serialize};

use super::observe::HeldIds;
use super::{
    Draft, NodeId, Obs, ObsKind, SmallDistinct, Tables, human_span, new_finding, severity_of,
};
use crate::finding::FindingKind;

/// `login_flood` thresholds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoginFloodConfig {
    /// Answered connections from one source to one service class of one
    /// host that trigger within `window_secs` (default 10 in 120 s:
    /// between Suricata's ET SCAN 5 SYNs in 120 s and Zeek's 30 guesses).
    pub min_connections: u32,
    /// Answered connections to one service class across hosts that
    /// trigger within `window_secs` (default 100).
    pub min_connections_any_host: u32,
    pub window_secs: i64,
    /// An episode ends after this many seconds without a connection
    /// (default 1800, Zeek's `guessing_timeout`).
    pub idle_secs: i64,
    /// Episodes (one per source and service class with an answered
    /// connection) open at once, per partition (default 500,000: about
    /// 120 MB with their per-host windows). Beyond it the least recently
    /// active quarter ends at once, as if idle (one that triggered is
    /// reported then), counted and logged: connection logs from a flood
    /// of clients, each new, no longer grow memory for the half hour of
    /// `idle_secs`.
    pub max_open: u64,
}

impl Default for LoginFloodConfig {
    fn default() -> Self {
        Self {
            min_connections: 10,
            min_connections_any_host: 100,
            window_secs: 120,
            idle_secs: 1800,
            max_open: 500_000,
        }
    }
}

/// The login service class of a connection: by destination port first
/// (flows and NetFlow name no application), then by the service the
/// record names.
pub fn service_of(port: Option<u16>, service: Option<&str>) -> Option<&'static str> {
    let by_port = match port {
        Some(22) => Some("ssh"),
        Some(23) => Some("telnet"),
        Some(139 | 445) => Some("smb"),
        Some(3389) => Some("rdp"),
        Some(5900..=5909) => Some("vnc"),
        _ => None,
    };
    by_port.or_else(|| {
        // No allocation: this runs for every connection record.
        let s = service?;
        [
            ("ssh", "ssh"),
            ("telnet", "telnet"),
            ("smb", "smb"),
            ("microsoft-ds", "smb"),
            ("netbios-ssn", "smb"),
            ("rdp", "rdp"),
            ("ms-wbt-server", "rdp"),
            ("vnc", "vnc"),
            ("rfb", "vnc"),
        ]
        .iter()
        .find(|(n, _)| s.eq_ignore_ascii_case(n))
        .map(|(_, class)| *class)
    })
}

/// A sliding window estimated from two adjacent buckets.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    bucket_start: i64,
    cur: u32,
    prev: u32,
}

impl Window {
    fn new(t: i64) -> Self {
        Self {
            bucket_start: t,
            cur: 0,
            prev: 0,
        }
    }

    /// Count one at `t` and return the estimated count of the last
    /// `window` ms: the current bucket plus the part of the previous one
    /// still inside.
    fn add(&mut self, t: i64, window: i64) -> u32 {
        if t - self.bucket_start >= window {
            let gap = (t - self.bucket_start) / window;
            self.prev = if gap == 1 { self.cur } else { 0 };
            self.cur = 0;
            self.bucket_start += gap * window;
        }
        self.cur = self.cur.saturating_add(1);
        let into = (t - self.bucket_start) as f64 / window as f64;
        let est = f64::from(self.cur) + f64::from(self.prev) * (1.0 - into).max(0.0);
        (est.floor() as u32).max(self.cur)
    }
}

#[derive(Debug, Clone, Default)]
struct Episode {
    first: i64,
    last: i64,
    total: u32,
    /// Most connections seen in one sliding window, over all hosts and
    /// to one host.
    peak: u32,
    peak_host: u32,
    win: Window,
    hosts: SmallDistinct<NodeId, 6>,
    /// The last two (time, destination) seen: the same connection logged
    /// twice (Zeek `conn.log` and `ssh.log` share the start time) is
    /// counted once.
    recent: [(i64, NodeId); 2],
    triggered: bool,
}

/// Bytes per tracked (source, service) key and its state.
pub const STATE_BYTES: usize = std::mem::size_of::<u128>() + std::mem::size_of::<Episode>();
/// Bytes per tracked (source, service, host) window.
pub const HOST_BYTES: usize =
    std::mem::size_of::<(u128, NodeId)>() + std::mem::size_of::<(Window, i64)>();

fn key(src: NodeId, svc: u16) -> u128 {
    u128::from(src) << 16 | u128::from(svc)
}

/// The login flood detector.
pub struct LoginFlood<'a> {
    cfg: &'a LoginFloodConfig,
    open: HashMap<u128, Episode>,
    /// Per (key, host): the window and the last time seen.
    hosts: HashMap<(u128, NodeId), (Window, i64)>,
    next_sweep: i64,
    /// Episodes ended early, over `max_open` (see `bound`).
    ended_early: u64,
}

impl<'a> LoginFlood<'a> {
    pub fn new(cfg: &'a LoginFloodConfig) -> Self {
        Self {
            cfg,
            open: HashMap::new(),
            hosts: HashMap::new(),
            next_sweep: i64::MIN,
            ended_early: 0,
        }
    }

    /// Keys tracked right now.
    pub fn tracked(&self) -> usize {
        self.open.len()
    }

    /// Episodes ended early, over `max_open` (see `bound`).
    pub fn ended_early(&self) -> u64 {
        self.ended_early
    }

    /// Episode `k` is about to be fed: if it is new and `max_open` are
    /// open, end the least recently active quarter now, each judged as if
    /// it had gone idle (ties by the address's key, never by id), with
    /// their per-host windows. Counted and logged.
    ///
    /// Why: every source with one answered SSH, RDP, SMB, VNC or Telnet
    /// connection opens an episode that lives half an hour
    /// (`idle_secs`), and a connection log of many clients, each new,
    /// grew them without a bound for that half hour.
    fn bound(&mut self, k: u128, t: &Tables, out: &mut Vec<Draft>) {
        let gone = super::end_least_recent_episodes(
            &mut self.open,
            k,
            self.cfg.max_open,
            |e| e.last,
            t,
            &mut self.ended_early,
            "login_flood",
        );
        if gone.is_empty() {
            return;
        }
        let mut ended = HashSet::with_capacity(gone.len());
        for (k, ep) in gone {
            self.judge(k, &ep, t, out);
            ended.insert(k);
        }
        self.hosts.retain(|(k, _), _| !ended.contains(k));
    }

    /// Mark the sources it tracks and the hosts they logged in to.
    pub fn mark_held(&self, m: &mut HeldIds) {
        for (&k, e) in &self.open {
            m.mark_node((k >> 16) as NodeId);
            e.hosts.first().iter().for_each(|&h| m.mark_node(h));
            e.recent.iter().for_each(|&(_, h)| m.mark_node(h));
        }
        for &(k, h) in self.hosts.keys() {
            m.mark_node((k >> 16) as NodeId);
            m.mark_node(h);
        }
    }

    /// Feed one [`ObsKind::LoginConnection`] observation.
    pub fn observe(&mut self, o: &Obs, t: &Tables, out: &mut Vec<Draft>) {
        if o.kind != ObsKind::LoginConnection {
            return;
        }
        let idle = self.cfg.idle_secs.max(1) * 1000;
        let window = self.cfg.window_secs.max(1) * 1000;
        if o.time >= self.next_sweep {
            self.advance(o.time, t, out);
        }
        let k = key(o.src, o.svc);
        if let Some(ep) = self.open.get(&k)
            && o.time - ep.last > idle
            && let Some(ep) = self.open.remove(&k)
        {
            self.judge(k, &ep, t, out);
        }
        self.bound(k, t, out);
        let ep = self.open.entry(k).or_insert_with(|| Episode {
            first: o.time,
            last: o.time,
            win: Window::new(o.time),
            recent: [(i64::MIN, super::observe::NONE); 2],
            ..Default::default()
        });
        if ep.recent.contains(&(o.time, o.dst)) {
            return;
        }
        ep.recent = [ep.recent[1], (o.time, o.dst)];
        ep.total = ep.total.saturating_add(1);
        ep.last = ep.last.max(o.time);
        if o.dst != super::observe::NONE {
            ep.hosts.insert(o.dst);
        }
        ep.peak = ep.peak.max(ep.win.add(o.time, window));
        // A record without a destination (RdpCoreTS 131 names only the
        // client) was logged by the host it reached: one host.
        let h = self
            .hosts
            .entry((k, o.dst))
            .or_insert((Window::new(o.time), o.time));
        h.1 = o.time;
        ep.peak_host = ep.peak_host.max(h.0.add(o.time, window));
        if ep.peak_host >= self.cfg.min_connections.max(1)
            || ep.peak >= self.cfg.min_connections_any_host.max(1)
        {
            ep.triggered = true;
        }
    }

    /// End of input: judge every open episode, in key order.
    /// Judge the episodes idle at `now` (ms) and forget stale windows:
    /// called as event time passes, also without connections.
    pub fn advance(&mut self, now: i64, t: &Tables, out: &mut Vec<Draft>) {
        let idle = self.cfg.idle_secs.max(1) * 1000;
        let window = self.cfg.window_secs.max(1) * 1000;
        for (k, ep) in super::take_where(&mut self.open, |e| e.last < now.saturating_sub(idle)) {
            self.judge(k, &ep, t, out);
        }
        let stale = now.saturating_sub(window);
        self.hosts.retain(|_, (_, last)| *last >= stale);
        self.next_sweep = now.saturating_add(idle);
    }

    pub fn finish(&mut self, t: &Tables, out: &mut Vec<Draft>) {
        for (k, ep) in super::take_where(&mut self.open, |_| true) {
            self.judge(k, &ep, t, out);
        }
    }

    fn judge(&self, k: u128, ep: &Episode, t: &Tables, out: &mut Vec<Draft>) {
        if !ep.triggered {
            return;
        }
        let src = (k >> 16) as NodeId;
        let svc = (k & 0xffff) as u16;
        let service = t.service(svc);
        let ip_s = t.source_label(src);
        let mut f = new_finding(
            FindingKind::BruteForce,
            &["login_flood", &ip_s, service, &ep.first.to_string()],
            ep.first,
            ep.last,
            u64::from(ep.total),
            t.ip(src),
        );
        let hosts = ep.hosts.count();
        let host_words = if hosts == 1 {
            "1 host".to_string()
        } else {
            format!("{} hosts", ep.hosts.words())
        };
        f.reasons.push(format!(
            "{} answered {service} connections to {host_words} in {} (up to {} within {} s, {} to one host)",
            ep.total,
            human_span(ep.last - ep.first),
            ep.peak,
            self.cfg.window_secs,
            ep.peak_host
        ));
        f.reasons.push(format!(
            "the login outcome is encrypted and not visible in these records: a brute force in progress is likely, not confirmed (threshold {} connections to one host, or {} to any, in {} s)",
            self.cfg.min_connections, self.cfg.min_connections_any_host, self.cfg.window_secs
        ));
        if hosts == 1
            && let Some(d) = ep.hosts.first().first().and_then(|d| t.ip(*d))
        {
            f.dst_ip = Some(d);
        }
        let score = (25.0 + (f64::from(ep.total).ln() * 4.0).min(20.0))
            .round()
            .clamp(0.0, 50.0) as u8;
        f.score = Some(score);
        f.severity = Some(severity_of(score));
        f.targets = vec![service.to_string()];
        f.details = Some(serde_json::json!({
            "method": "connection_flood",
            "outcome_visible": false,
            "source": ip_s,
            "service": service,
            "connections": ep.total,
            "hosts": hosts,
            "peak_per_window": ep.peak,
            "peak_per_window_one_host": ep.peak_host,
            "window_secs": self.cfg.window_secs,
        }));
        out.push(Draft {
            finding: f,
            srcs: vec![src],
            kinds: vec![ObsKind::LoginConnection],
            svc: Some(svc),
            from: ep.first,
            to: ep.last,
        });
    }
}

/// Add flood drafts to `drafts`: a source already reported for failed
/// logins (`brute_force`, `password_spray`) gets the flood as one more
/// reason on that finding; the others become findings of their own.
pub fn merge(drafts: &mut Vec<Draft>, floods: Vec<Draft>) {
    let reported: HashSet<NodeId> = drafts
        .iter()
        .filter(|d| {
            matches!(
                d.finding.kind,
                FindingKind::BruteForce | FindingKind::PasswordSpray
            )
        })
        .flat_map(|d| d.srcs.iter().copied())
        .collect();
    for fl in floods {
        let src = fl.srcs.first().copied();
        if let Some(s) = src.filter(|s| reported.contains(s))
            && let Some(d) = drafts.iter_mut().find(|d| {
                matches!(
                    d.finding.kind,
                    FindingKind::BruteForce | FindingKind::PasswordSpray
                ) && d.srcs.contains(&s)
            })
        {
            if let Some(r) = fl.finding.reasons.first() {
                d.finding.reasons.push(format!("also {r}"));
            }
            continue;
        }
        drafts.push(fl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peak of the window estimate over connections at `times` (seconds).
    fn peak(times: impl IntoIterator<Item = i64>) -> u32 {
        let mut w: Option<Window> = None;
        let mut peak = 0;
        for t in times {
            let ms = t * 1000;
            let w = w.get_or_insert(Window::new(ms));
            peak = peak.max(w.add(ms, 120_000));
        }
        peak
    }

    #[test]
    fn window_estimate() {
        // Ten within 119 s, straddling a bucket edge.
        assert!(peak((0..10).map(|i| 100 + i * 13)) >= 10);
        // One a minute for two hours: never more than 3 in a window.
        assert!(peak((0..120).map(|i| i * 60)) <= 3);
        // A long gap empties both buckets.
        assert_eq!(peak([0, 1, 2, 10_000]), 3);
        assert_eq!(peak([]), 0);
    }

    fn connection(ms: i64, src: NodeId, dst: NodeId) -> Obs {
        Obs {
            evidence: ms as u64,
            dst,
            dst_port: 22,
            svc: 1,
            ..Obs::test(ObsKind::LoginConnection, 1_609_459_200_000 + ms, src)
        }
    }

    /// Over `max_open`, the least recently active episodes end at once
    /// with their per-host windows: a flood of clients, each new, keeps
    /// both at the bound, and a source guessing all along is still
    /// reported once, with all its connections.
    #[test]
    fn a_flood_of_new_clients_keeps_the_episodes_bounded() {
        let cfg = LoginFloodConfig {
            max_open: 16,
            ..LoginFloodConfig::default()
        };
        let t = Tables::new();
        let mut flood = LoginFlood::new(&cfg);
        let mut out = Vec::new();
        let guesser: NodeId = 0x0a00_0001;
        let server: NodeId = 0xc0a8_0001;
        for i in 0..400i64 {
            flood.observe(
                &connection(i * 100, 0x0b00_0000 + i as NodeId, server),
                &t,
                &mut out,
            );
            if i % 2 == 0 {
                flood.observe(&connection(i * 100 + 1, guesser, server), &t, &mut out);
            }
            assert!(flood.open.len() <= 16, "at {i}: {}", flood.open.len());
            assert!(flood.hosts.len() <= 17, "at {i}: {}", flood.hosts.len());
        }
        assert!(flood.ended_early() > 350, "{}", flood.ended_early());
        assert!(out.is_empty(), "no client is a flood: {out:?}");
        flood.finish(&t, &mut out);
        assert_eq!(out.len(), 1, "the guesser, once: {out:?}");
        assert_eq!(out[0].srcs, [guesser]);
        assert_eq!(out[0].finding.count, 200, "all its connections");
    }

    #[test]
    fn service_classes() {
        assert_eq!(service_of(Some(22), None), Some("ssh"));
        assert_eq!(service_of(Some(5905), None), Some("vnc"));
        assert_eq!(service_of(None, Some("RDP")), Some("rdp"));
        assert_eq!(service_of(Some(2222), Some("ssh")), Some("ssh"));
        assert_eq!(service_of(Some(443), Some("tls")), None);
        assert_eq!(service_of(None, None), None);
    }
}
