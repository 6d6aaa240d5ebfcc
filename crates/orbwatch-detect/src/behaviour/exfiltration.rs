//! `exfiltration`: an internal host sending one external address far more
//! than it usually sends in an hour.
//!
//! Observations are hourly byte totals per (internal source, external
//! destination), summed by the unit of work that read the flows. State
//! per internal host: how many hours it has been seen sending and its
//! total, so its baseline is the mean hourly volume before the hour being
//! judged. A host with less than `min_history_hours` of history is held to
//! `min_bytes × baseline_factor` instead.

use hashbrown::HashMap;

use super::observe::HeldIds;
use super::{Draft, ExfilConfig, NodeId, Obs, ObsKind, Tables, new_finding, severity_of};
use crate::finding::FindingKind;
use crate::ioc::severity::human_bytes;

#[derive(Debug, Clone, Copy, Default)]
struct Host {
    /// Completed hours and their total bytes (the baseline).
    hours: u32,
    total: u64,
    /// The hour being filled and its bytes so far.
    hour: i64,
    hour_bytes: u64,
}

/// Bytes per tracked internal host.
pub const STATE_BYTES: usize = std::mem::size_of::<NodeId>() + std::mem::size_of::<Host>();

/// The exfiltration detector.
pub struct Exfiltration<'a> {
    cfg: &'a ExfilConfig,
    hosts: HashMap<NodeId, Host>,
    /// Baselines forgotten, over `max_hosts` (see `bound`).
    forgotten: u64,
}

impl<'a> Exfiltration<'a> {
    /// A detector with no state yet.
    pub fn new(cfg: &'a ExfilConfig) -> Self {
        Self {
            cfg,
            hosts: HashMap::new(),
            forgotten: 0,
        }
    }

    /// Baselines forgotten so far, over `max_hosts`.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// `host` is about to be fed: if it is new and `max_hosts` baselines
    /// are kept, the quarter whose last hour with bytes is oldest goes
    /// (ties by the address's key, never by id). Counted and logged once.
    fn bound(&mut self, host: NodeId, t: &Tables) {
        super::shed_for_new_key(
            &mut self.hosts,
            &host,
            self.cfg.max_hosts,
            |&k, h| (h.hour, t.ip_key(k)),
            &mut self.forgotten,
            |cap, excess| {
                format!(
                    "more than {cap} internal hosts with an exfiltration baseline (exfiltration.max_hosts): the {excess} idle longest are forgotten, and so on each time the limit is passed"
                )
            },
        );
    }

    /// Mark the hosts it keeps a baseline of.
    pub fn mark_held(&self, m: &mut HeldIds) {
        self.hosts.keys().for_each(|&h| m.mark_node(h));
    }

    /// Feed one hourly outbound total; report it when far above the
    /// host's baseline.
    pub fn observe(&mut self, o: &Obs, t: &Tables, out: &mut Vec<Draft>) {
        let hour = o.time.div_euclid(3_600_000);
        self.bound(o.src, t);
        let h = self.hosts.entry(o.src).or_insert(Host {
            hour,
            ..Default::default()
        });
        if hour != h.hour {
            if h.hour_bytes > 0 {
                h.hours = h.hours.saturating_add(1);
                h.total = h.total.saturating_add(h.hour_bytes);
            }
            h.hour = hour;
            h.hour_bytes = 0;
        }
        h.hour_bytes = h.hour_bytes.saturating_add(o.aux);
        let bytes = o.aux;
        if bytes < self.cfg.min_bytes {
            return;
        }
        let baseline =
            (h.hours >= self.cfg.min_history_hours.max(1)).then(|| h.total / u64::from(h.hours));
        let bar = match baseline {
            Some(b) => ((b as f64) * self.cfg.baseline_factor).max(self.cfg.min_bytes as f64),
            None => self.cfg.min_bytes as f64 * self.cfg.baseline_factor,
        };
        if (bytes as f64) < bar {
            return;
        }
        let (Some(src), Some(dst)) = (t.ip(o.src), t.ip(o.dst)) else {
            return;
        };
        // The observation is dated at its hour's last millisecond (when
        // the sum is complete); the finding spans the hour.
        let from = hour * 3_600_000;
        let mut f = new_finding(
            FindingKind::Exfiltration,
            &[&src.to_string(), &dst.to_string(), &hour.to_string()],
            from,
            from + 3_599_999,
            1,
            Some(src),
        );
        f.dst_ip = Some(dst);
        f.reasons.push(format!(
            "{} sent {} to {dst} within one hour",
            src,
            human_bytes(bytes)
        ));
        match baseline {
            Some(b) => f.reasons.push(format!(
                "{:.0} times its usual {} an hour (mean of {} earlier hours)",
                bytes as f64 / (b.max(1) as f64),
                human_bytes(b),
                h.hours
            )),
            None => f.reasons.push(format!(
                "no baseline yet ({} hours of history); above the {} bar for new hosts",
                h.hours,
                human_bytes(bar as u64)
            )),
        }
        let ratio = baseline.map_or(self.cfg.baseline_factor, |b| bytes as f64 / b.max(1) as f64);
        let score = (50.0 + ratio.log10() * 15.0).round().clamp(0.0, 90.0) as u8;
        f.score = Some(score);
        f.severity = Some(severity_of(score));
        f.targets = vec![dst.to_string()];
        f.details = Some(serde_json::json!({
            "bytes": bytes,
            "baseline_bytes_per_hour": baseline,
            "history_hours": h.hours,
        }));
        out.push(Draft {
            finding: f,
            srcs: vec![o.src],
            kinds: vec![ObsKind::Outbound],
            svc: None,
            from,
            to: from + 3_599_999,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::observe::FLAG_SRC_INTERNAL;

    /// The outbound sum of internal `src` to one external address in
    /// `hour` (since the epoch), as the sums are dated.
    fn sum(hour: i64, src: NodeId, bytes: u64) -> Obs {
        Obs {
            aux: bytes,
            dst: 0xc633_6401,
            dst_port: 443,
            flags: FLAG_SRC_INTERNAL,
            ..Obs::test(ObsKind::Outbound, hour * 3_600_000 + 3_599_999, src)
        }
    }

    /// Over `max_hosts`, the hosts idle longest lose their baseline: a
    /// flood of new internal addresses keeps the table at the bound, and
    /// a host sending every hour keeps its history.
    #[test]
    fn a_flood_of_new_internal_hosts_keeps_the_baselines_bounded() {
        let cfg = ExfilConfig {
            max_hosts: 16,
            ..ExfilConfig::default()
        };
        let t = Tables::new();
        let mut exfil = Exfiltration::new(&cfg);
        let mut out = Vec::new();
        let regular: NodeId = 0x0a00_0001;
        for hour in 0..400i64 {
            exfil.observe(&sum(hour, regular, 1_000_000), &t, &mut out);
            for k in 0..3 {
                let src = 0x0a01_0000 + (hour * 3 + k) as NodeId;
                exfil.observe(&sum(hour, src, 1_000), &t, &mut out);
                assert!(exfil.hosts.len() <= 16, "at hour {hour}");
            }
        }
        assert!(exfil.forgotten() > 1_100, "{}", exfil.forgotten());
        assert_eq!(exfil.hosts[&regular].hours, 399, "its history whole");
        assert!(out.is_empty());
    }
}
