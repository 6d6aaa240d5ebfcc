//! `password_spray` from logon attempts that carry no outcome: Windows
//! Security 4648 ("a logon was attempted using explicit credentials").
//!
//! A 4648 is written when a process hands a user name and password to a
//! logon (`runas`, `net use`, a tool spraying SMB or LDAP binds from a
//! compromised host); it does not say whether the password was right. One
//! source naming many different target accounts within minutes is the
//! spray pattern DeepBlueCLI flags as "Distributed Account Explicit
//! Credential Use (Password Spray Attack)": its threshold is more than 6
//! target accounts (`$passsprayuniqusermax = 6`), which is the default
//! here, counted within a sliding gap of `window_secs` (600 s) between
//! attempts. Machine accounts (`HOST$`) are not counted (see
//! `attack_obs`).

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use super::observe::HeldIds;
use super::{Draft, NodeId, Obs, ObsKind, SmallDistinct, Tables, capped, human_span, new_finding};
use crate::finding::{FindingKind, Severity};

/// Thresholds of the explicit-credential spray detector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExplicitSprayConfig {
    /// Distinct target accounts from one source that make a spray
    /// (default 7: DeepBlueCLI alerts above 6).
    pub min_accounts: u32,
    /// An episode ends after this many seconds without an attempt
    /// (default 600).
    pub window_secs: i64,
    /// Episodes (one per source) open at once, per partition (default
    /// 500,000: about 80 MB). Beyond it the least recently active quarter
    /// ends at once, as if idle (one that named enough accounts is
    /// reported then), counted and logged: 4648 events from a flood of
    /// sources, each new, no longer grow memory for `window_secs`.
    pub max_open: u64,
}

impl Default for ExplicitSprayConfig {
    fn default() -> Self {
        Self {
            min_accounts: 7,
            window_secs: 600,
            max_open: 500_000,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Episode {
    first: i64,
    last: i64,
    attempts: u32,
    /// Exact up to 23 accounts, estimated beyond.
    accounts: SmallDistinct<u32, 24>,
}

/// Bytes per tracked source and its state.
pub const STATE_BYTES: usize = std::mem::size_of::<NodeId>() + std::mem::size_of::<Episode>();

/// The detector.
pub struct ExplicitSpray<'a> {
    cfg: &'a ExplicitSprayConfig,
    open: HashMap<NodeId, Episode>,
    next_sweep: i64,
    /// Episodes ended before their window, over `max_open`.
    ended_early: u64,
}

impl<'a> ExplicitSpray<'a> {
    pub fn new(cfg: &'a ExplicitSprayConfig) -> Self {
        Self {
            cfg,
            open: HashMap::new(),
            next_sweep: i64::MIN,
            ended_early: 0,
        }
    }

    /// Episodes ended before their window, over `max_open`.
    pub fn ended_early(&self) -> u64 {
        self.ended_early
    }

    /// Mark the sources and account names its open episodes hold.
    pub fn mark_held(&self, m: &mut HeldIds) {
        for (&src, e) in &self.open {
            m.mark_node(src);
            e.accounts.first().iter().for_each(|&a| m.mark_name(a));
        }
    }

    /// Feed one [`ObsKind::AuthAttempt`] observation.
    pub fn observe(&mut self, o: &Obs, t: &Tables, out: &mut Vec<Draft>) {
        if o.kind != ObsKind::AuthAttempt {
            return;
        }
        let gap = self.cfg.window_secs.max(1) * 1000;
        if o.time >= self.next_sweep {
            self.advance(o.time, t, out);
        }
        if let Some(ep) = self.open.get(&o.src)
            && o.time - ep.last > gap
            && let Some(ep) = self.open.remove(&o.src)
        {
            self.judge(o.src, &ep, t, out);
        }
        let gone = super::shed_for_new_key(
            &mut self.open,
            &o.src,
            self.cfg.max_open,
            |&src, e| (e.last, t.ip_key(src)),
            &mut self.ended_early,
            |cap, excess| {
                format!(
                    "more than {cap} explicit-credential episodes open at once (explicit_spray.max_open): the {excess} least recently active end now instead of after explicit_spray.window_secs, and so on each time the limit is passed"
                )
            },
        );
        for (src, ep) in gone {
            self.judge(src, &ep, t, out);
        }
        let ep = self.open.entry(o.src).or_insert_with(|| Episode {
            first: o.time,
            last: o.time,
            ..Default::default()
        });
        ep.last = ep.last.max(o.time);
        ep.attempts = ep.attempts.saturating_add(1);
        if o.aux != 0 {
            ep.accounts
                .insert_keyed(o.aux as u32, t.name_key(o.aux as u32));
        }
    }

    /// Judge the episodes idle at `now` (ms): called as event time
    /// passes, also without attempts.
    pub fn advance(&mut self, now: i64, t: &Tables, out: &mut Vec<Draft>) {
        let gap = self.cfg.window_secs.max(1) * 1000;
        for (k, ep) in super::take_where(&mut self.open, |e| e.last < now.saturating_sub(gap)) {
            self.judge(k, &ep, t, out);
        }
        self.next_sweep = now.saturating_add(gap);
    }

    /// End of input: judge every open episode, in key order.
    pub fn finish(&mut self, t: &Tables, out: &mut Vec<Draft>) {
        for (k, ep) in super::take_where(&mut self.open, |_| true) {
            self.judge(k, &ep, t, out);
        }
    }

    fn judge(&self, src: NodeId, ep: &Episode, t: &Tables, out: &mut Vec<Draft>) {
        let accounts = ep.accounts.count();
        if accounts < self.cfg.min_accounts.max(1) {
            return;
        }
        let ip_s = t.source_label(src);
        let mut f = new_finding(
            FindingKind::PasswordSpray,
            &["explicit_credentials", &ip_s, &ep.first.to_string()],
            ep.first,
            ep.last,
            u64::from(ep.attempts),
            t.ip(src),
        );
        f.reasons.push(format!(
            "{} logon attempts with explicit credentials (Windows 4648) for {} different accounts in {}",
            ep.attempts,
            ep.accounts.words(),
            human_span(ep.last - ep.first)
        ));
        f.reasons.push(format!(
            "many target accounts from one source is a password spray (DeepBlueCLI: more than 6); 4648 does not say whether a password was right (threshold {} accounts)",
            self.cfg.min_accounts
        ));
        if t.ip(src).is_none() {
            f.reasons.push(format!(
                "the records give no source address; counted on the {ip_s} they name"
            ));
        }
        let score = (45.0 + (f64::from(accounts).ln() * 5.0).min(25.0))
            .round()
            .clamp(0.0, 80.0) as u8;
        f.score = Some(score);
        f.severity = Some(if score >= 60 {
            Severity::High
        } else {
            Severity::Medium
        });
        f.targets = vec!["explicit-credentials".to_string()];
        f.accounts = capped(
            ep.accounts.first().iter().map(|a| t.name(*a).to_string()),
            8,
        );
        f.details = Some(serde_json::json!({
            "method": "explicit_credentials",
            "source": ip_s,
            "attempts": ep.attempts,
            "distinct_accounts": accounts,
        }));
        out.push(Draft {
            finding: f,
            srcs: vec![src],
            kinds: vec![ObsKind::AuthAttempt],
            svc: None,
            from: ep.first,
            to: ep.last,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempt with explicit credentials from `src` at `ms`, for
    /// account `account` (an interned name).
    fn attempt(ms: i64, src: NodeId, account: u64) -> Obs {
        Obs {
            aux: account,
            ..Obs::test(ObsKind::AuthAttempt, 1_609_459_200_000 + ms, src)
        }
    }

    /// Over `max_open`, the least recently active episodes end at once:
    /// a flood of sources, each naming one account, keeps the episodes at
    /// the bound, and a source spraying all along is reported once, with
    /// every attempt.
    #[test]
    fn a_flood_of_new_sources_keeps_the_episodes_bounded() {
        let cfg = ExplicitSprayConfig {
            max_open: 16,
            ..ExplicitSprayConfig::default()
        };
        let mut t = Tables::new();
        let names: Vec<u64> = (0..10)
            .map(|i| u64::from(t.names.intern_str(&format!("user{i}"))))
            .collect();
        let mut spray = ExplicitSpray::new(&cfg);
        let mut out = Vec::new();
        let sprayer: NodeId = 0x0a00_0003;
        for i in 0..400i64 {
            spray.observe(
                &attempt(i * 100, 0x0b00_0000 + i as NodeId, names[0]),
                &t,
                &mut out,
            );
            if i % 10 == 0 {
                let account = names[(i / 10) as usize % names.len()];
                spray.observe(&attempt(i * 100 + 1, sprayer, account), &t, &mut out);
            }
            assert!(spray.open.len() <= 16, "at {i}: {}", spray.open.len());
        }
        assert!(spray.ended_early() > 350, "{}", spray.ended_early());
        assert!(out.is_empty(), "no flood source is a spray: {out:?}");
        spray.finish(&t, &mut out);
        assert_eq!(out.len(), 1, "the sprayer, once: {out:?}");
        assert_eq!(out[0].srcs, [sprayer]);
        assert_eq!(out[0].finding.count, 40, "every attempt");
    }
}
