//! Alerts and blocking for `orbwatch watch`.
//!
//! # Alerts
//!
//! The pipeline calls [`Alerts::on_findings`] with the findings it raised
//! or updated, inside the transaction that stores them. Each finding that
//! passes the [`AlertFilter`] and is news (see [`document`] for when an
//! update alerts again) becomes an [`AlertDocument`] queued in the store's
//! outbox, once per sink. Committing the transaction commits the findings
//! and their alerts together; a `kill -9` before the commit loses both,
//! after it loses neither.
//!
//! [`Alerts::start_delivery`] starts one thread per sink that sends the
//! outbox in order (JSON lines, webhook, syslog/CEF), with retries and
//! capped exponential backoff; see [`delivery`].
//!
//! # Blocking
//!
//! [`Bouncer`] adds the hostile addresses of serious findings to an
//! nftables or ipset set with a timeout, through the blocklist guard; see
//! [`bouncer`].

use std::path::Path;

use jiff::Timestamp;
use orbwatch_detect::Finding;
use rusqlite::Transaction;

pub mod bouncer;
pub mod cef;
pub mod delivery;
pub mod document;
pub mod sink;

pub use bouncer::{BlockTarget, Bouncer, BouncerConfig, Decision, add_system_resolvers};
pub use cef::{Framing, SyslogHeader};
pub use delivery::{DeliveryConfig, DeliveryHandle, SinkCounts};
pub use document::{AlertDocument, AlertEvent, AlertFilter};
pub use sink::{JsonlTarget, SinkSpec, SyslogSpec, Transport, WebhookSpec};

/// Errors of alerting and blocking. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A sink or target that cannot be used as configured.
    #[error("{0}")]
    Config(String),
    /// The firewall set is missing or unusable.
    #[error("{0}")]
    Firewall(String),
    #[error(transparent)]
    Store(#[from] orbwatch_store::StoreError),
}

/// What `watch` configured for alerts.
#[derive(Debug, Clone, Default)]
pub struct AlertConfig {
    /// `--min-severity`, `--min-score`.
    pub filter: AlertFilter,
    pub sinks: Vec<SinkSpec>,
    pub delivery: DeliveryConfig,
}

/// What one [`Alerts::on_findings`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertCounts {
    /// Alerts queued (one per sink).
    pub queued: u64,
    /// Findings that passed the filter but were not news (already alerted
    /// at this severity or above).
    pub repeated: u64,
    /// Findings held back by `--min-severity`/`--min-score`.
    pub filtered: u64,
}

/// The alerting side of `watch`: turns findings into queued alerts.
#[derive(Debug, Clone)]
pub struct Alerts {
    cfg: AlertConfig,
    sink_names: Vec<String>,
}

impl Alerts {
    pub fn new(cfg: AlertConfig) -> Alerts {
        let sink_names = cfg.sinks.iter().map(SinkSpec::name).collect();
        Alerts { cfg, sink_names }
    }

    /// The outbox names of the configured sinks.
    pub fn sink_names(&self) -> &[String] {
        &self.sink_names
    }

    /// Queue the alerts of `findings` in the caller's transaction (commit
    /// it to make them deliverable; roll it back and they were never
    /// queued). Stateless: whether a finding is news is read from the
    /// outbox itself, so a restart or a rollback never loses or repeats an
    /// alert.
    pub fn on_findings(
        &self,
        tx: &Transaction<'_>,
        findings: &[Finding],
    ) -> Result<AlertCounts, AlertError> {
        self.on_findings_at(tx, findings, Timestamp::now())
    }

    /// [`Alerts::on_findings`] with the alert time given (tests, replays).
    pub fn on_findings_at(
        &self,
        tx: &Transaction<'_>,
        findings: &[Finding],
        now: Timestamp,
    ) -> Result<AlertCounts, AlertError> {
        let mut counts = AlertCounts::default();
        if self.sink_names.is_empty() {
            return Ok(counts);
        }
        for f in findings {
            if !self.cfg.filter.passes(f) {
                counts.filtered += 1;
                continue;
            }
            let above = document::ids_at_or_above(&f.id, f.severity);
            let above: Vec<&str> = above.iter().map(String::as_str).collect();
            let below = document::ids_below(&f.id, f.severity);
            let below: Vec<&str> = below.iter().map(String::as_str).collect();
            let mut any = false;
            for sink in &self.sink_names {
                if orbwatch_store::outbox::alert_known(tx, sink, &above)? {
                    continue;
                }
                let event = if orbwatch_store::outbox::alert_known(tx, sink, &below)? {
                    AlertEvent::Escalated
                } else {
                    AlertEvent::Raised
                };
                let doc = AlertDocument::new(f, event, now);
                let body = serde_json::to_string(&doc).map_err(|e| {
                    AlertError::Config(format!("finding {} cannot be written as JSON: {e}", f.id))
                })?;
                if orbwatch_store::outbox::enqueue_alert(tx, sink, &doc.alert_id, &body, now)? {
                    counts.queued += 1;
                    any = true;
                    tracing::info!(sink = %sink, alert_id = %doc.alert_id, kind = %f.kind, ?event, "alert queued");
                }
            }
            if !any {
                counts.repeated += 1;
            }
        }
        Ok(counts)
    }

    /// Start the delivery threads (one per sink) on the store at
    /// `store_path`. Call [`DeliveryHandle::stop`] on SIGTERM.
    pub fn start_delivery(&self, store_path: &Path) -> Result<DeliveryHandle, AlertError> {
        delivery::start(store_path, &self.cfg.sinks, &self.cfg.delivery)
    }
}
