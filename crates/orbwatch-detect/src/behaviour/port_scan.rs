//! `port_scan`: one source making many refused or unanswered attempts.
//!
//! Vertical: many ports on one host. Horizontal: one or a few ports across
//! many hosts. Built from [`ObsKind::Probe`](super::ObsKind) observations:
//! firewall denies, Zeek `S0`/`REJ`/`RSTOS0`, EVE TCP flows left `new`
//! with nothing back, logged bare SYNs, whatever decoder produced them.
//! Answered connections do not count as probes, and a source with more
//! than `max_answered_ratio` (4) answered connections per probe in the
//! same hours is not reported: a busy client or proxy is not a scanner.
//!
//! State per source, in two tiers: a source that has probed one port of
//! one host so far (most internet background) costs a 32-byte record; on
//! its second distinct port or host it is promoted to a full episode
//! (first/last time, probe count, distinct ports and hosts — exact up to
//! 32 and 6, sketched beyond). An episode ends after `idle_secs` without
//! a probe; it is then judged.

use hashbrown::HashMap;

use super::observe::{FLAG_DST_INTERNAL, HeldIds, NONE};
use super::{
    Draft, NodeId, Obs, ObsKind, PortScanConfig, SmallDistinct, Tables, human_span, ms_of,
    new_finding, secs, severity_of,
};
use crate::finding::FindingKind;

#[derive(Debug, Clone, Default)]
struct Episode {
    first: i64,
    last: i64,
    probes: u32,
    /// Answered connections of the source during the episode.
    answered: u32,
    ports: SmallDistinct<u16, 24>,
    /// Distinct hosts, counted by 16-bit hashes of their addresses (exact
    /// to 22, which covers the horizontal threshold; collisions 1 in
    /// 65,536). Hashing the address, not the interned id, keeps the count
    /// independent of the order units were merged in.
    hosts: SmallDistinct<u16, 22, 2>,
    /// The first hosts, for the reasons.
    host_sample: [NodeId; 3],
    n_host_sample: u8,
    internal_targets: bool,
}

impl Episode {
    fn add_host(&mut self, h: NodeId, key: u64) {
        self.hosts.insert((super::mix(key) & 0xffff) as u16);
        let n = self.n_host_sample as usize;
        if n < self.host_sample.len() && !self.host_sample[..n].contains(&h) {
            self.host_sample[n] = h;
            self.n_host_sample += 1;
        }
    }
}

/// A source seen probing one port of one host so far.
#[derive(Debug, Clone, Copy)]
struct Single {
    /// Seconds since 2000 (see `secs`).
    first: u32,
    last: u32,
    dst: NodeId,
    port: u16,
    probes: u16,
    internal: bool,
}

/// Bytes per tracked source (key and state) in the full tier.
pub const STATE_BYTES: usize = std::mem::size_of::<NodeId>() + std::mem::size_of::<Episode>();
/// Bytes per tracked source in the first tier.
pub const SINGLE_BYTES: usize = std::mem::size_of::<NodeId>() + std::mem::size_of::<Single>();

/// The port-scan detector.
pub struct PortScan<'a> {
    cfg: &'a PortScanConfig,
    open: HashMap<NodeId, Episode>,
    single: HashMap<NodeId, Single>,
    next_sweep: i64,
    /// Sources ended early, over `max_sources`.
    ended_early: u64,
}

impl<'a> PortScan<'a> {
    /// A detector with no state yet.
    pub fn new(cfg: &'a PortScanConfig) -> Self {
        Self {
            cfg,
            open: HashMap::new(),
            single: HashMap::new(),
            next_sweep: i64::MIN,
            ended_early: 0,
        }
    }

    /// Mark the sources it tracks and the hosts they probed.
    pub fn mark_held(&self, m: &mut HeldIds) {
        for (&src, e) in &self.open {
            m.mark_node(src);
            let n = usize::from(e.n_host_sample).min(e.host_sample.len());
            e.host_sample[..n].iter().for_each(|&h| m.mark_node(h));
        }
        for (&src, s) in &self.single {
            m.mark_node(src);
            m.mark_node(s.dst);
        }
    }

    /// Sources ended early, over `max_sources` (see `bound`).
    pub fn ended_early(&self) -> u64 {
        self.ended_early
    }

    /// `src` is coming into a tier: if it is new there and the tier holds
    /// `max_sources`, end the least recently active quarter of it now (an
    /// episode is judged as if it had gone idle), ties by the address's
    /// key, never by id. Counted and logged.
    ///
    /// Why: a source stays an hour (`idle_secs`) after its last probe, and
    /// a firewall logging a flood of probes from spoofed addresses, each
    /// new, made one entry per address for that hour, without a bound.
    fn bound(&mut self, episodes: bool, src: NodeId, t: &Tables, out: &mut Vec<Draft>) {
        let warning = |cap, excess| {
            format!(
                "more than {cap} sources probing at once (port_scan.max_sources): the {excess} least recently active end now instead of after port_scan.idle_secs, and so on each time the limit is passed"
            )
        };
        let cap = self.cfg.max_sources;
        // Judged in a fixed order, as idle episodes are.
        if episodes {
            let gone = super::shed_for_new_key(
                &mut self.open,
                &src,
                cap,
                |&k, e| (e.last, t.ip_key(k)),
                &mut self.ended_early,
                warning,
            );
            for (k, ep) in gone {
                self.judge(k, &ep, t, out);
            }
        } else {
            super::shed_for_new_key(
                &mut self.single,
                &src,
                cap,
                |&k, s| (ms_of(s.last), t.ip_key(k)),
                &mut self.ended_early,
                warning,
            );
        }
    }

    /// Sources tracked right now.
    pub fn tracked(&self) -> usize {
        self.open.len() + self.single.len()
    }

    /// Feed one probe; judge the source's previous episode if it ended.
    pub fn observe(&mut self, o: &Obs, t: &Tables, out: &mut Vec<Draft>) {
        let idle = self.cfg.idle_secs * 1000;
        if o.time >= self.next_sweep {
            self.advance(o.time, t, out);
        }
        if let Some(ep) = self.open.get(&o.src)
            && o.time - ep.last > idle
            && let Some(ep) = self.open.remove(&o.src)
        {
            self.judge(o.src, &ep, t, out);
        }
        // One port on one host is never a scan at thresholds above 1: keep
        // such sources in the small tier until they probe something else.
        let tiered = self.cfg.min_ports > 1 && self.cfg.min_hosts > 1;
        let internal = o.flags & FLAG_DST_INTERNAL != 0;
        if tiered && !self.open.contains_key(&o.src) {
            match self.single.get_mut(&o.src) {
                Some(s)
                    if o.time - ms_of(s.last) <= idle && s.dst == o.dst && s.port == o.dst_port =>
                {
                    s.last = s.last.max(secs(o.time));
                    s.probes = s.probes.saturating_add(1);
                    return;
                }
                Some(s) if o.time - ms_of(s.last) <= idle => {
                    let s = *s;
                    self.single.remove(&o.src);
                    let mut ep = Episode {
                        first: ms_of(s.first),
                        last: ms_of(s.last),
                        probes: u32::from(s.probes),
                        internal_targets: s.internal,
                        ..Default::default()
                    };
                    ep.ports.insert(s.port);
                    if s.dst != NONE {
                        ep.add_host(s.dst, t.ip_key(s.dst));
                    }
                    self.bound(true, o.src, t, out);
                    self.open.insert(o.src, ep);
                }
                _ => {
                    self.bound(false, o.src, t, out);
                    self.single.insert(
                        o.src,
                        Single {
                            first: secs(o.time),
                            last: secs(o.time),
                            dst: o.dst,
                            port: o.dst_port,
                            probes: 1,
                            internal,
                        },
                    );
                    return;
                }
            }
        }
        self.bound(true, o.src, t, out);
        let ep = self.open.entry(o.src).or_insert_with(|| Episode {
            first: o.time,
            last: o.time,
            ..Default::default()
        });
        ep.last = ep.last.max(o.time);
        ep.probes = ep.probes.saturating_add(1);
        ep.ports.insert(o.dst_port);
        if o.dst != NONE {
            ep.add_host(o.dst, t.ip_key(o.dst));
        }
        ep.internal_targets |= o.flags & FLAG_DST_INTERNAL != 0;
    }

    /// Answered connections of a source in one hour: counted against its
    /// open episode, if any and not idle yet (decided from the source's
    /// own times, not from when other sources happened to be swept).
    pub fn answered(&mut self, o: &Obs) {
        let idle = self.cfg.idle_secs * 1000;
        if let Some(ep) = self.open.get_mut(&o.src)
            && o.time - ep.last <= idle
        {
            ep.answered = ep
                .answered
                .saturating_add(o.aux.min(u64::from(u32::MAX)) as u32);
        }
    }

    /// Judge the episodes idle at `now` (ms) and forget them: called as
    /// event time passes, also without probes (a live pipeline's
    /// watermark), so a scan is reported once it has ended.
    pub fn advance(&mut self, now: i64, t: &Tables, out: &mut Vec<Draft>) {
        let idle = self.cfg.idle_secs * 1000;
        self.evict(now.saturating_sub(idle), t, out);
        self.next_sweep = now.saturating_add(idle);
    }

    fn evict(&mut self, before: i64, t: &Tables, out: &mut Vec<Draft>) {
        let before_s = secs(before);
        self.single.retain(|_, s| s.last >= before_s);
        for (k, ep) in super::take_where(&mut self.open, |e| e.last < before) {
            self.judge(k, &ep, t, out);
        }
    }

    /// Judge every open episode (end of input).
    pub fn finish(&mut self, t: &Tables, out: &mut Vec<Draft>) {
        for (k, ep) in super::take_where(&mut self.open, |_| true) {
            self.judge(k, &ep, t, out);
        }
    }

    fn judge(&self, src: NodeId, ep: &Episode, t: &Tables, out: &mut Vec<Draft>) {
        let ports = ep.ports.count();
        let hosts = ep.hosts.count().max(1);
        let burst = hosts == 1
            && ports >= self.cfg.burst_ports
            && ports < self.cfg.min_ports
            && ep.last - ep.first <= self.cfg.burst_secs.saturating_mul(1000);
        let vertical = ports >= self.cfg.min_ports || burst;
        let horizontal = hosts >= self.cfg.min_hosts;
        // A client whose connections overwhelmingly succeed is not
        // scanning: its failures are the ordinary few of a busy host (a
        // proxy, a NAT). A scanner meets open ports too, so the bar is a
        // ratio, not "more answered than failed".
        let busy = f64::from(ep.answered) > self.cfg.max_answered_ratio * f64::from(ep.probes);
        if (!vertical && !horizontal) || busy {
            return;
        }
        let ip = t.ip(src);
        let ip_s = ip.map(|i| i.to_string()).unwrap_or_default();
        let mut f = new_finding(
            FindingKind::PortScan,
            &[&ip_s, &ep.first.to_string()],
            ep.first,
            ep.last,
            u64::from(ep.probes),
            ip,
        );
        let span = human_span(ep.last - ep.first);
        let shape = match (vertical, horizontal) {
            (true, true) => "vertical and horizontal",
            (true, false) => "vertical",
            _ => "horizontal",
        };
        let host_list: Vec<String> = ep.host_sample[..ep.n_host_sample as usize]
            .iter()
            .filter_map(|h| t.ip(*h))
            .map(|h| h.to_string())
            .collect();
        let mut port_list: Vec<u16> = ep.ports.first().to_vec();
        port_list.sort_unstable();
        let ports_s: Vec<String> = port_list.iter().map(u16::to_string).collect();
        if vertical {
            let on = if hosts == 1 {
                format!(
                    "1 host ({})",
                    host_list.first().cloned().unwrap_or_default()
                )
            } else {
                format!("{} hosts", ep.hosts.words())
            };
            f.reasons.push(format!(
                "{} distinct ports probed on {on} in {span} ({} refused or unanswered attempts){}",
                ep.ports.words(),
                ep.probes,
                if burst {
                    format!(
                        ": a burst (at least {} ports within {} s)",
                        self.cfg.burst_ports, self.cfg.burst_secs
                    )
                } else {
                    String::new()
                }
            ));
        }
        if horizontal {
            f.reasons.push(format!(
                "{} hosts probed on {} port{} ({}{}) in {span}",
                ep.hosts.words(),
                ep.ports.words(),
                if ports == 1 { "" } else { "s" },
                ports_s.join(", "),
                if ports as usize > ports_s.len() {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        if ep.internal_targets {
            f.reasons
                .push("the probes target internal addresses".to_string());
        }
        if ep.answered > 0 {
            f.reasons.push(format!(
                "{} other connections of this source were answered in the same hours",
                ep.answered
            ));
        }
        let breadth = ports.max(hosts);
        let mut score = 45u32 + (breadth.min(1000) * 40 / 1000).max(breadth.min(100) / 5);
        if ep.internal_targets {
            score += 10;
        }
        let score = score.min(95) as u8;
        f.score = Some(score);
        f.severity = Some(severity_of(score));
        f.targets = host_list
            .iter()
            .take(8)
            .cloned()
            .chain(ports_s.iter().take(16).map(|p| format!("port {p}")))
            .collect();
        f.details = Some(serde_json::json!({
            "scan": shape,
            "distinct_ports": ports,
            "distinct_hosts": hosts,
            "probes": ep.probes,
            "answered_connections": ep.answered,
            "ports_sample": port_list,
            "hosts_sample": host_list,
        }));
        out.push(Draft {
            finding: f,
            srcs: vec![src],
            kinds: vec![ObsKind::Probe],
            svc: None,
            from: ep.first,
            to: ep.last,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::observe::ObsKind;

    /// 2021-01-01 in ms.
    const BASE: i64 = 1_609_459_200_000;

    fn probe(ms: i64, src: NodeId, port: u16) -> Obs {
        Obs {
            evidence: ms as u64,
            dst_port: port,
            ..Obs::test(ObsKind::Probe, BASE + ms, src)
        }
    }

    /// Over `max_sources`, the least recently active sources of a tier
    /// end at once: a flood of one-probe and two-probe sources from new
    /// addresses keeps both tiers at the bound, and a scanner probing
    /// all along is still reported whole.
    #[test]
    fn a_flood_of_new_probing_sources_keeps_both_tiers_bounded() {
        let cfg = PortScanConfig {
            max_sources: 16,
            ..PortScanConfig::default()
        };
        let t = Tables::new();
        let mut scan = PortScan::new(&cfg);
        let mut out = Vec::new();
        let scanner: NodeId = 0x0a00_0001;
        for i in 0..400i64 {
            let src = 0x0b00_0000 + i as NodeId;
            scan.observe(&probe(i * 100, src, 22), &t, &mut out);
            // Every other new source probes a second port: an episode.
            if i % 2 == 0 {
                scan.observe(&probe(i * 100 + 1, src, 23), &t, &mut out);
            }
            // The scanner probes a new port every second.
            if i % 10 == 0 {
                scan.observe(&probe(i * 100 + 2, scanner, 1000 + i as u16), &t, &mut out);
            }
            assert!(scan.single.len() <= 16 && scan.open.len() <= 16, "at {i}");
        }
        assert!(scan.ended_early() > 300, "{}", scan.ended_early());
        assert!(out.is_empty(), "no flood source is a scan: {out:?}");
        scan.finish(&t, &mut out);
        let found: Vec<&Draft> = out.iter().filter(|d| d.srcs == [scanner]).collect();
        assert_eq!(found.len(), 1, "the scanner, once: {out:?}");
        assert_eq!(found[0].finding.count, 40, "all its probes");
    }
}
