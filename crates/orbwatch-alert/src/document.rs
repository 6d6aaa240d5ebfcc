//! Which findings alert, when an updated finding alerts again, and what an
//! alert says.
//!
//! # When a finding alerts
//!
//! The pipeline hands over a finding each time it is raised or updated
//! (same id, higher count). Alerting on every update would bury the
//! receiver under copies of one brute force, so an update alerts again
//! only when it is **more serious**: its severity rose above every
//! severity already alerted for that finding. Count and evidence growing
//! alone never re-alert (the finding in the store keeps the latest
//! numbers).
//!
//! # The alert id
//!
//! `alert_id` is `<finding id>-<severity>` (`severity` is `info` … `critical`,
//! or `none` for findings of old versions without one). It is derived only
//! from what the alert reports, never from a clock or a counter, so a
//! restart that replays the same findings produces the same ids, and the
//! outbox (`UNIQUE (sink, alert_id)`) drops the replays. A receiver that
//! deduplicates on `alert_id` (the webhook's `Idempotency-Key` header)
//! therefore sees each alert once, even when a delivery was retried after
//! the receiver had in fact accepted it.
//!
//! The first alert of a finding has `event: "raised"`; later ones (a
//! higher severity) `event: "escalated"`.

use std::net::IpAddr;

use jiff::Timestamp;
use orbwatch_detect::{Finding, FindingKind, Severity};
use serde::{Deserialize, Serialize};

/// `--min-severity` and `--min-score`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Findings less serious than this do not pass. A finding without a
    /// severity (written by an old version) passes only when this is unset.
    pub min_severity: Option<Severity>,
    /// Findings scored lower do not pass. A finding without a score passes
    /// only when this is unset.
    pub min_score: Option<u8>,
}

impl AlertFilter {
    /// Does `f` pass?
    pub fn passes(&self, f: &Finding) -> bool {
        let sev_ok = match (self.min_severity, f.severity) {
            (None, _) => true,
            (Some(min), Some(s)) => s >= min,
            (Some(_), None) => false,
        };
        let score_ok = match (self.min_score, f.score) {
            (None, _) => true,
            (Some(min), Some(s)) => s >= min,
            (Some(_), None) => false,
        };
        sev_ok && score_ok
    }
}

/// Why an alert was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertEvent {
    /// The first alert of this finding.
    Raised,
    /// The finding became more serious than when it was last alerted.
    Escalated,
}

/// The severity name used in alert ids (`none` when absent).
pub fn severity_label(s: Option<Severity>) -> &'static str {
    s.map(Severity::as_str).unwrap_or("none")
}

/// The alert id of `finding_id` at severity `s`.
pub fn alert_id(finding_id: &str, s: Option<Severity>) -> String {
    format!("{finding_id}-{}", severity_label(s))
}

/// The ids an alert of `finding_id` may have had at `s` or above: if any of
/// them was already queued, an update at `s` is not news.
pub fn ids_at_or_above(finding_id: &str, s: Option<Severity>) -> Vec<String> {
    let mut v = vec![alert_id(finding_id, s)];
    for sev in Severity::ALL {
        if s.is_none_or(|s| sev > s) {
            v.push(alert_id(finding_id, Some(sev)));
        }
    }
    v
}

/// The ids of alerts below `s` (an earlier, less serious alert makes this
/// one an escalation).
pub fn ids_below(finding_id: &str, s: Option<Severity>) -> Vec<String> {
    let Some(s) = s else { return Vec::new() };
    let mut v = vec![alert_id(finding_id, None)];
    for sev in Severity::ALL {
        if sev < s {
            v.push(alert_id(finding_id, Some(sev)));
        }
    }
    v
}

/// The alert document: what JSON lines and webhooks receive verbatim and
/// what the CEF forwarder maps to CEF fields. The top-level fields are the
/// ones a receiver routes on; `finding` is the whole finding as `hunt
/// --format json` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDocument {
    pub alert_id: String,
    pub event: AlertEvent,
    /// When the alert was queued.
    pub created: Timestamp,
    pub finding_id: String,
    pub kind: FindingKind,
    pub severity: Option<Severity>,
    pub score: Option<u8>,
    pub count: u64,
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    /// The indicator of an `ioc_match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<String>,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    /// One line for humans: the finding's reasons, or its kind and source.
    pub summary: String,
    pub finding: Finding,
}

impl AlertDocument {
    pub fn new(f: &Finding, event: AlertEvent, created: Timestamp) -> AlertDocument {
        AlertDocument {
            alert_id: alert_id(&f.id, f.severity),
            event,
            created,
            finding_id: f.id.clone(),
            kind: f.kind,
            severity: f.severity,
            score: f.score,
            count: f.count,
            src_ip: f.src_ip,
            dst_ip: f.dst_ip,
            indicator: f.ioc.as_ref().map(|i| i.indicator.clone()),
            feed: f.ioc.as_ref().map(|i| i.feed.clone()),
            first_seen: f.first_seen,
            last_seen: f.last_seen,
            summary: summary(f),
            finding: f.clone(),
        }
    }
}

/// One line naming the finding.
pub fn summary(f: &Finding) -> String {
    if !f.reasons.is_empty() {
        return f.reasons.join("; ");
    }
    let mut s = f.kind.as_str().replace('_', " ");
    if let Some(i) = &f.ioc {
        s.push_str(&format!(": {} ({})", i.indicator, i.feed));
    }
    if let Some(ip) = f.src_ip {
        s.push_str(&format!(" from {ip}"));
    }
    if let Some(ip) = f.dst_ip {
        s.push_str(&format!(" to {ip}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_partition_the_severities() {
        let above = ids_at_or_above("f", Some(Severity::Medium));
        assert_eq!(above, ["f-medium", "f-high", "f-critical"]);
        let below = ids_below("f", Some(Severity::Medium));
        assert_eq!(below, ["f-none", "f-info", "f-low"]);
        // Without a severity every alert of the finding counts as seen.
        assert_eq!(ids_at_or_above("f", None).len(), 6);
        assert!(ids_below("f", None).is_empty());
    }
}
