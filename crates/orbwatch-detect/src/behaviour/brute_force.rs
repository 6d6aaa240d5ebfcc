//! `brute_force` and `password_spray`: many failed logins from one source
//! against one service.
//!
//! A key's first failure costs nothing here: it is read back from the
//! shared per-key record of [`distributed`](super::distributed) when the
//! second one comes. From then on both share one state per (source,
//! service): the times of the last
//! `max_failures` failures (fail2ban's "maxretry in findtime", a ring of
//! at most 16 second offsets), the episode's failure count and the
//! accounts tried. An episode that triggered is
//! reported when it ends (`idle_secs` without a failure, or end of input)
//! as `password_spray` when the source tried many accounts with few tries
//! each, else as `brute_force`. One episode gives one finding, not one per
//! failure.

use hashbrown::{HashMap, HashSet};

use super::observe::{FLAG_INVALID_USER, HeldIds};
use super::{
    BruteForceConfig, Draft, NodeId, Obs, ObsKind, SmallDistinct, Tables, capped, human_span,
    new_finding, severity_of,
};
use crate::finding::FindingKind;

#[derive(Debug, Clone, Default)]
struct Episode {
    first: i64,
    last: i64,
    failures: u32,
    invalid_users: u32,
    /// Seconds since `first` of the last failures, by failure number.
    ring: [u32; RING],
    accounts: SmallDistinct<u32, 6>,
    triggered: bool,
    /// Live: no ongoing report until `failures` passes this.
    reported_at: u32,
}

/// Most failures the sliding window can hold (`max_failures` is capped
/// to it).
pub const RING: usize = 16;

/// Bytes per tracked (source, service) key and state in the full tier.
pub const STATE_BYTES: usize = std::mem::size_of::<u128>() + std::mem::size_of::<Episode>();
/// Bytes per tracked key in the first tier: none of its own; a key with
/// one failure lives only in the shared record of `distributed`.
pub const SINGLE_BYTES: usize = 0;

fn key(src: NodeId, svc: u16) -> u128 {
    u128::from(src) << 16 | u128::from(svc)
}

/// The brute-force / password-spray detector.
pub struct BruteForce<'a> {
    cfg: &'a BruteForceConfig,
    open: HashMap<u128, Episode>,
    flagged: HashSet<NodeId>,
    next_sweep: i64,
    /// Episodes ended early, over `max_open` (see `bound`).
    ended_early: u64,
}

impl<'a> BruteForce<'a> {
    /// A detector with no state yet.
    pub fn new(cfg: &'a BruteForceConfig) -> Self {
        Self {
            cfg,
            open: HashMap::new(),
            flagged: HashSet::new(),
            next_sweep: i64::MIN,
            ended_early: 0,
        }
    }

    /// Episodes ended early, over `max_open` (see `bound`).
    pub fn ended_early(&self) -> u64 {
        self.ended_early
    }

    /// Episode `k` is about to open with `max_open` open: end the
    /// least recently active quarter now, each judged as if it had gone
    /// idle (ties by the address's key, never by id). Counted and logged.
    ///
    /// Why: an episode lives an hour (`idle_secs`) after its last
    /// failure, and failed logins from a flood of addresses, each failing
    /// twice (below every threshold), opened one per address for that
    /// hour without a bound. Least recently active first: a brute force
    /// going on stays.
    fn bound(&mut self, k: u128, t: &Tables, out: &mut Vec<Draft>) {
        let gone = super::end_least_recent_episodes(
            &mut self.open,
            k,
            self.cfg.max_open,
            |e| e.last,
            t,
            &mut self.ended_early,
            "brute_force",
        );
        for (k, ep) in gone {
            self.judge(k, &ep, t, out);
        }
    }

    /// Mark the sources and account names its open episodes hold, and
    /// the sources it flagged.
    pub fn mark_held(&self, m: &mut HeldIds) {
        for (&k, e) in &self.open {
            m.mark_node((k >> 16) as NodeId);
            e.accounts.first().iter().for_each(|&a| m.mark_name(a));
        }
        self.flagged.iter().for_each(|&s| m.mark_node(s));
    }

    /// Keys tracked right now.
    pub fn tracked(&self) -> usize {
        self.open.len()
    }

    /// Sources with a brute-force or spray finding so far.
    pub fn flagged_sources(&self) -> HashSet<NodeId> {
        self.flagged.clone()
    }

    /// How many sources are flagged now.
    pub fn flagged_count(&self) -> usize {
        self.flagged.len()
    }

    /// Is `src` flagged?
    pub fn is_flagged(&self, src: NodeId) -> bool {
        self.flagged.contains(&src)
    }

    /// Keep only the flagged sources `keep` holds; returns how many went
    /// (see `LiveDetectors`' pruning, the only caller).
    pub fn retain_flagged(&mut self, keep: &HashSet<NodeId>) -> usize {
        let before = self.flagged.len();
        self.flagged.retain(|s| keep.contains(s));
        before - self.flagged.len()
    }

    /// Feed one auth observation. `prev` is the key's previous failure
    /// (time, account, invalid user) from the shared per-key record.
    /// Returns whether its (source, service) is over the per-source
    /// thresholds (triggered).
    pub fn observe(
        &mut self,
        o: &Obs,
        prev: Option<(i64, u32, bool)>,
        t: &Tables,
        out: &mut Vec<Draft>,
    ) -> bool {
        if o.kind != ObsKind::AuthFailure {
            return self
                .open
                .get(&key(o.src, o.svc))
                .is_some_and(|e| e.triggered);
        }
        let idle = self.cfg.idle_secs * 1000;
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
        // First failure of a key: the small tier, unless one failure is
        // already enough to trigger.
        let tiered = self.cfg.max_failures > 1 && self.cfg.slow_failures > 1;
        let opening = !self.open.contains_key(&k);
        if tiered && opening {
            match prev {
                Some((time, account, invalid)) if o.time - time <= idle => {
                    self.bound(k, t, out);
                    let mut ep = Episode {
                        first: time,
                        last: time,
                        failures: 1,
                        invalid_users: u32::from(invalid),
                        ..Default::default()
                    };
                    if account != 0 {
                        ep.accounts.insert_keyed(account, t.name_key(account));
                    }
                    self.open.insert(k, ep);
                }
                _ => return false,
            }
        }
        if opening && !tiered {
            self.bound(k, t, out);
        }
        let ep = self.open.entry(k).or_insert_with(|| Episode {
            first: o.time,
            last: o.time,
            ..Default::default()
        });
        let rel = ((o.time - ep.first).max(0) / 1000).min(i64::from(u32::MAX)) as u32;
        ep.ring[ep.failures as usize % RING] = rel;
        ep.last = ep.last.max(o.time);
        ep.failures = ep.failures.saturating_add(1);
        if o.flags & FLAG_INVALID_USER != 0 {
            ep.invalid_users = ep.invalid_users.saturating_add(1);
        }
        if o.aux != 0 {
            ep.accounts
                .insert_keyed(o.aux as u32, t.name_key(o.aux as u32));
        }
        // Sliding window: the failure `n` failures ago is recent enough.
        let n = (self.cfg.max_failures.max(1) as usize).min(RING);
        let count = ep.failures as usize;
        if count >= n {
            let oldest = ep.ring[(count - n) % RING];
            if i64::from(rel - oldest.min(rel)) <= self.cfg.window_secs {
                ep.triggered = true;
            }
        }
        if ep.failures >= self.cfg.slow_failures {
            ep.triggered = true;
        }
        ep.triggered
    }

    /// Report the episodes idle at `now` (ms) and forget them: called as
    /// event time passes, also without failures (a live pipeline's
    /// watermark).
    pub fn advance(&mut self, now: i64, t: &Tables, out: &mut Vec<Draft>) {
        let idle = self.cfg.idle_secs * 1000;
        self.evict(now.saturating_sub(idle), t, out);
        self.next_sweep = now.saturating_add(idle);
    }

    fn evict(&mut self, before: i64, t: &Tables, out: &mut Vec<Draft>) {
        for (k, ep) in super::take_where(&mut self.open, |e| e.last < before) {
            self.judge(k, &ep, t, out);
        }
    }

    /// End of input: judge every open episode, in key order.
    pub fn finish(&mut self, t: &Tables, out: &mut Vec<Draft>) {
        for (k, ep) in super::take_where(&mut self.open, |_| true) {
            self.judge(k, &ep, t, out);
        }
    }

    fn judge(&mut self, k: u128, ep: &Episode, t: &Tables, out: &mut Vec<Draft>) {
        if !ep.triggered {
            return;
        }
        self.flagged.insert((k >> 16) as NodeId);
        out.push(self.draft(k, ep, t));
    }

    /// Live: the finding of a (source, service) whose episode is over the
    /// thresholds and still going, as it stands now, when its failures
    /// have just reached the trigger or a power of two since (so a live
    /// pipeline reports an attack while it lasts, and again as it grows,
    /// not only once it has been idle for `idle_secs`). The final finding
    /// of the episode has the same id unless its kind changes (a brute
    /// force that turns out to be a spray).
    pub fn ongoing(&self, src: NodeId, svc: u16, t: &Tables) -> Option<Draft> {
        let k = key(src, svc);
        let ep = self.open.get(&k)?;
        if !ep.triggered || ep.reported_at >= ep.failures {
            return None;
        }
        Some(self.draft(k, ep, t))
    }

    /// Note that [`ongoing`](Self::ongoing) reported this episode at its
    /// current failures: the next report comes at twice as many.
    pub fn reported_ongoing(&mut self, src: NodeId, svc: u16) {
        if let Some(ep) = self.open.get_mut(&key(src, svc)) {
            ep.reported_at = ep.failures.saturating_mul(2).max(1) - 1;
        }
    }

    fn draft(&self, k: u128, ep: &Episode, t: &Tables) -> Draft {
        let src = (k >> 16) as NodeId;
        let svc = (k & 0xffff) as u16;
        let accounts = ep.accounts.count();
        let spray = accounts >= self.cfg.spray_min_accounts
            && f64::from(ep.failures) / f64::from(accounts.max(1))
                <= self.cfg.spray_max_per_account;
        let kind = if spray {
            FindingKind::PasswordSpray
        } else {
            FindingKind::BruteForce
        };
        let ip = t.ip(src);
        let ip_s = t.source_label(src);
        let service = t.service(svc);
        let service_s = if service.is_empty() {
            "an unnamed service".to_string()
        } else {
            service.to_string()
        };
        let mut f = new_finding(
            kind,
            &[&ip_s, service, &ep.first.to_string()],
            ep.first,
            ep.last,
            u64::from(ep.failures),
            ip,
        );
        let span = human_span(ep.last - ep.first);
        let acc_words = match accounts {
            0 => String::new(),
            1 => " for 1 account".to_string(),
            n => format!(" for {n} accounts"),
        };
        f.reasons.push(format!(
            "{} failed logins{acc_words} on {service_s} in {span}",
            ep.failures
        ));
        if ip.is_none() {
            f.reasons.push(format!(
                "the records give no source address; counted on the {ip_s} that logged them"
            ));
        }
        if spray {
            f.reasons.push(format!(
                "{:.1} tries per account on average: many accounts, few tries each",
                f64::from(ep.failures) / f64::from(accounts.max(1))
            ));
        }
        if ep.invalid_users > 0 {
            f.reasons.push(format!(
                "{} of the attempts named accounts that do not exist",
                ep.invalid_users
            ));
        }
        let minutes = ((ep.last - ep.first) as f64 / 60_000.0).max(1.0);
        let per_min = f64::from(ep.failures) / minutes;
        let mut score = 40.0 + (f64::from(ep.failures).ln() * 8.0).min(30.0);
        if per_min >= 10.0 {
            score += 5.0;
        }
        if spray {
            score += 5.0;
        }
        let score = score.round().clamp(0.0, 95.0) as u8;
        f.score = Some(score);
        f.severity = Some(severity_of(score));
        f.targets = if service.is_empty() {
            Vec::new()
        } else {
            vec![service.to_string()]
        };
        f.accounts = capped(
            ep.accounts.first().iter().map(|a| t.name(*a).to_string()),
            8,
        );
        f.details = Some(serde_json::json!({
            "source": ip_s,
            "service": service,
            "failures": ep.failures,
            "distinct_accounts": accounts,
            "invalid_user_attempts": ep.invalid_users,
            "failures_per_minute": (per_min * 10.0).round() / 10.0,
        }));
        Draft {
            finding: f,
            srcs: vec![src],
            kinds: vec![ObsKind::AuthFailure],
            svc: Some(svc),
            from: ep.first,
            to: ep.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2021-01-01 in ms.
    const BASE: i64 = 1_609_459_200_000;

    fn failure(ms: i64, src: NodeId) -> Obs {
        Obs {
            evidence: ms as u64,
            dst_port: 22,
            svc: 1,
            ..Obs::test(ObsKind::AuthFailure, BASE + ms, src)
        }
    }

    /// Over `max_open`, the least recently active episodes end at once:
    /// a flood of sources failing twice each keeps the open episodes at
    /// the bound, and a brute force going on all along is still reported
    /// once, with all its failures.
    #[test]
    fn a_flood_of_sources_failing_twice_keeps_the_episodes_bounded() {
        let cfg = BruteForceConfig {
            max_open: 16,
            ..BruteForceConfig::default()
        };
        let t = Tables::new();
        let mut bf = BruteForce::new(&cfg);
        let mut out = Vec::new();
        let attacker: NodeId = 0x0a00_0001;
        let mut attacker_last = None;
        for i in 0..400i64 {
            let src = 0x0b00_0000 + i as NodeId;
            // The second failure reads the first back from the shared
            // record (as `AuthRecords` hands it on), and opens an episode.
            let first = i * 1000;
            bf.observe(
                &failure(first + 1, src),
                Some((BASE + first, 0, false)),
                &t,
                &mut out,
            );
            if i % 10 == 0 {
                let o = failure(first + 2, attacker);
                bf.observe(&o, attacker_last, &t, &mut out);
                attacker_last = Some((o.time, 0, false));
            }
            assert!(bf.open.len() <= 16, "at {i}: {}", bf.open.len());
        }
        assert!(bf.ended_early() > 350, "{}", bf.ended_early());
        assert!(out.is_empty(), "no flood source is a brute force: {out:?}");
        bf.finish(&t, &mut out);
        assert_eq!(out.len(), 1, "the attacker, once: {out:?}");
        assert_eq!(out[0].srcs, [attacker]);
        assert_eq!(out[0].finding.count, 40, "all its failures");
    }

    /// Below the bound nothing ends early.
    #[test]
    fn below_the_bound_no_episode_ends_early() {
        let cfg = BruteForceConfig {
            max_open: 1000,
            ..BruteForceConfig::default()
        };
        let t = Tables::new();
        let mut bf = BruteForce::new(&cfg);
        let mut out = Vec::new();
        for i in 0..999i64 {
            let src = 0x0b00_0000 + i as NodeId;
            bf.observe(
                &failure(i + 1, src),
                Some((BASE + i, 0, false)),
                &t,
                &mut out,
            );
        }
        assert_eq!(bf.open.len(), 999);
        assert_eq!(bf.ended_early(), 0);
    }
}
