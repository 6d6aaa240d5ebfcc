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
}

impl Default for ExplicitSprayConfig {
    fn default() -> Self {
        Self {
            min_accounts: 7,
            window_secs: 600,
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
}

impl<'a> ExplicitSpray<'a> {
    pub fn new(cfg: &'a ExplicitSprayConfig) -> Self {
        Self {
            cfg,
            open: HashMap::new(),
            next_sweep: i64::MIN,
        }
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

    /// End of input: judge every open episode, in key order.
    /// Judge the episodes idle at `now` (ms): called as event time
    /// passes, also without attempts.
    pub fn advance(&mut self, now: i64, t: &Tables, out: &mut Vec<Draft>) {
        let gap = self.cfg.window_secs.max(1) * 1000;
        for (k, ep) in super::take_where(&mut self.open, |e| e.last < now.saturating_sub(gap)) {
            self.judge(k, &ep, t, out);
        }
        self.next_sweep = now.saturating_add(gap);
    }

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
