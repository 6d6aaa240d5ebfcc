//! The durable alert outbox and the bouncer's record (schema 4).
//!
//! `watch` must not lose an alert when a webhook or a SIEM is down, nor
//! send one twice under two ids when it is killed and restarted. So an
//! alert is first written to `alert_outbox` in the same transaction that
//! stores its finding, and a delivery thread sends it later, in `seq`
//! order per sink, marking it delivered only once the sink accepted it.
//! `UNIQUE (sink, alert_id)` with `INSERT OR IGNORE` makes a replay of the
//! same finding (after a restart) a no-op instead of a duplicate.
//!
//! `blocks` keeps every decision of the bouncer, the refusals included,
//! so that "why was this address (not) blocked?" has an answer after the
//! fact.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::Store;
use crate::error::{Result, SqlContext, StoreError};
use crate::rows::{parse_opt_ts, parse_ts, ts_text};

/// One alert waiting in (or delivered from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxItem {
    pub seq: i64,
    /// Which sink it is for (`webhook https://…`, `jsonl /var/log/…`).
    pub sink: String,
    /// Stable id of the alert: receivers deduplicate on it.
    pub alert_id: String,
    /// The alert document (JSON text), formatted by the sink at delivery.
    pub body: String,
    pub created: Timestamp,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// Not before this instant (after a failure).
    pub next_attempt: Option<Timestamp>,
    pub last_error: Option<String>,
    pub delivered: Option<Timestamp>,
}

/// What the bouncer did with one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockAction {
    /// Added to the firewall set.
    Blocked,
    /// Held back by the guard (internal, special-purpose, allowlisted,
    /// resolver) or because the target cannot hold it.
    Refused,
    /// `--dry-run`: would have been added.
    DryRun,
    /// The firewall command failed.
    Failed,
}

impl BlockAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockAction::Blocked => "blocked",
            BlockAction::Refused => "refused",
            BlockAction::DryRun => "dry-run",
            BlockAction::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<BlockAction> {
        [
            BlockAction::Blocked,
            BlockAction::Refused,
            BlockAction::DryRun,
            BlockAction::Failed,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// One row of `blocks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockRecord {
    /// Row number; ignored when recording.
    pub seq: i64,
    pub address: String,
    /// `nftables inet filter orbwatch`, `ipset orbwatch`.
    pub target: String,
    pub finding_id: String,
    pub action: BlockAction,
    /// Why: the guard's reason for a refusal, the finding's summary for a
    /// block.
    pub reason: String,
    pub at: Timestamp,
    /// When the set's timeout removes it (blocked and dry-run).
    pub until: Option<Timestamp>,
}

fn tx_path(tx: &Transaction<'_>) -> std::path::PathBuf {
    std::path::PathBuf::from(tx.path().unwrap_or(":memory:"))
}

/// Queue an alert for `sink` inside the caller's transaction, so that it
/// is committed together with the finding it reports. Returns `false`
/// when the outbox already holds this `(sink, alert_id)` (a replay).
pub fn enqueue_alert(
    tx: &Transaction<'_>,
    sink: &str,
    alert_id: &str,
    body: &str,
    at: Timestamp,
) -> Result<bool> {
    let n = tx
        .execute(
            "INSERT OR IGNORE INTO alert_outbox (sink, alert_id, body, created) \
             VALUES (?1, ?2, ?3, ?4)",
            params![sink, alert_id, body, ts_text(at)],
        )
        .ctx(&tx_path(tx), "queueing an alert")?;
    Ok(n > 0)
}

/// Does the outbox of `sink` hold any of `alert_ids` (delivered or not)?
pub fn alert_known(tx: &Transaction<'_>, sink: &str, alert_ids: &[&str]) -> Result<bool> {
    let mut stmt = tx
        .prepare_cached("SELECT 1 FROM alert_outbox WHERE sink = ?1 AND alert_id = ?2")
        .ctx(&tx_path(tx), "looking up an alert")?;
    for id in alert_ids {
        let hit = stmt
            .query_row(params![sink, id], |_| Ok(()))
            .optional()
            .ctx(&tx_path(tx), "looking up an alert")?;
        if hit.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Record a bouncer decision inside the caller's transaction.
pub fn record_block(tx: &Transaction<'_>, rec: &BlockRecord) -> Result<i64> {
    tx.execute(
        "INSERT INTO blocks (address, target, finding_id, action, reason, at, until) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            rec.address,
            rec.target,
            rec.finding_id,
            rec.action.as_str(),
            rec.reason,
            ts_text(rec.at),
            rec.until.map(ts_text),
        ],
    )
    .ctx(&tx_path(tx), "recording a block decision")?;
    Ok(tx.last_insert_rowid())
}

const SELECT_ITEM: &str = "SELECT seq, sink, alert_id, body, created, attempts, next_attempt, \
     last_error, delivered FROM alert_outbox";

type RawItem = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn raw_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawItem> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

type RawBlock = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

impl Store {
    /// An immediate (write-locking) transaction on the store, for a caller
    /// that writes findings, alerts ([`enqueue_alert`]) and block decisions
    /// ([`record_block`]) together: all of them are committed, or none.
    pub fn write_transaction(&mut self) -> Result<Transaction<'_>> {
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx(&self.path, "starting a transaction")
    }

    /// [`enqueue_alert`] in a transaction of its own.
    pub fn enqueue_alert(
        &mut self,
        sink: &str,
        alert_id: &str,
        body: &str,
        at: Timestamp,
    ) -> Result<bool> {
        let tx = self.write_transaction()?;
        let added = enqueue_alert(&tx, sink, alert_id, body, at)?;
        tx.commit().ctx(&self.path, "queueing an alert")?;
        Ok(added)
    }

    /// The oldest undelivered alerts of `sink`, in `seq` order (at most
    /// `limit`). Delivery must not skip the first one even when it waits
    /// for a retry: order is kept by sending nothing behind it.
    pub fn pending_alerts(&self, sink: &str, limit: usize) -> Result<Vec<OutboxItem>> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "{SELECT_ITEM} WHERE sink = ?1 AND delivered IS NULL ORDER BY seq LIMIT ?2"
            ))
            .ctx(p, "reading the alert outbox")?;
        let rows = stmt
            .query_map(params![sink, limit.min(i64::MAX as usize) as i64], raw_item)
            .ctx(p, "reading the alert outbox")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(p, "reading the alert outbox")?;
        rows.into_iter().map(|r| self.decode_item(r)).collect()
    }

    /// The oldest undelivered alert of `sink`.
    pub fn next_pending_alert(&self, sink: &str) -> Result<Option<OutboxItem>> {
        Ok(self.pending_alerts(sink, 1)?.into_iter().next())
    }

    /// Every alert of `sink`, delivered or not, in `seq` order.
    pub fn outbox(&self, sink: &str) -> Result<Vec<OutboxItem>> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare(&format!("{SELECT_ITEM} WHERE sink = ?1 ORDER BY seq"))
            .ctx(p, "reading the alert outbox")?;
        let rows = stmt
            .query_map([sink], raw_item)
            .ctx(p, "reading the alert outbox")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(p, "reading the alert outbox")?;
        rows.into_iter().map(|r| self.decode_item(r)).collect()
    }

    /// Number of undelivered alerts of `sink` (for the status line).
    pub fn pending_alert_count(&self, sink: &str) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM alert_outbox WHERE sink = ?1 AND delivered IS NULL",
                [sink],
                |r| r.get(0),
            )
            .ctx(&self.path, "counting pending alerts")?;
        Ok(n.max(0) as u64)
    }

    /// Mark alerts delivered (the sink accepted them).
    pub fn mark_alerts_delivered(&mut self, seqs: &[i64], at: Timestamp) -> Result<()> {
        let p = self.path.clone();
        let tx = self.write_transaction()?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE alert_outbox SET delivered = ?2, next_attempt = NULL WHERE seq = ?1",
                )
                .ctx(&p, "marking alerts delivered")?;
            for s in seqs {
                stmt.execute(params![s, ts_text(at)])
                    .ctx(&p, "marking alerts delivered")?;
            }
        }
        tx.commit().ctx(&p, "marking alerts delivered")
    }

    /// Record a failed attempt: one more attempt, the error, and when to
    /// try again.
    pub fn record_alert_failure(
        &mut self,
        seq: i64,
        error: &str,
        next_attempt: Timestamp,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?2, \
                 next_attempt = ?3 WHERE seq = ?1",
                params![seq, error, ts_text(next_attempt)],
            )
            .ctx(&self.path, "recording a failed alert delivery")?;
        Ok(())
    }

    /// Give up on an alert the sink refuses for good (a webhook answering
    /// 400 to this body): it is marked delivered with `last_error`
    /// starting `abandoned:` so that the alerts behind it can go.
    pub fn abandon_alert(&mut self, seq: i64, error: &str, at: Timestamp) -> Result<()> {
        self.conn
            .execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?2, \
                 next_attempt = NULL, delivered = ?3 WHERE seq = ?1",
                params![seq, format!("abandoned: {error}"), ts_text(at)],
            )
            .ctx(&self.path, "abandoning an alert")?;
        Ok(())
    }

    /// Delete delivered alerts older than `before`; returns how many. Their
    /// ids are then forgotten: a finding replayed after that is alerted
    /// again, under the same id.
    pub fn prune_delivered_alerts(&mut self, before: Timestamp) -> Result<u64> {
        let n = self
            .conn
            .execute(
                "DELETE FROM alert_outbox WHERE delivered IS NOT NULL AND delivered < ?1",
                [ts_text(before)],
            )
            .ctx(&self.path, "pruning the alert outbox")?;
        Ok(n as u64)
    }

    /// [`record_block`] in a transaction of its own.
    pub fn record_block(&mut self, rec: &BlockRecord) -> Result<i64> {
        let tx = self.write_transaction()?;
        let seq = record_block(&tx, rec)?;
        tx.commit().ctx(&self.path, "recording a block decision")?;
        Ok(seq)
    }

    /// The latest `limit` block decisions, newest first; only those for
    /// `address` when given.
    pub fn recent_blocks(&self, address: Option<&str>, limit: usize) -> Result<Vec<BlockRecord>> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, address, target, finding_id, action, reason, at, until FROM blocks \
                 WHERE ?1 IS NULL OR address = ?1 ORDER BY seq DESC LIMIT ?2",
            )
            .ctx(p, "listing block decisions")?;
        let rows = stmt
            .query_map(params![address, limit.min(i64::MAX as usize) as i64], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .ctx(p, "listing block decisions")?
            .collect::<rusqlite::Result<Vec<RawBlock>>>()
            .ctx(p, "listing block decisions")?;
        rows.into_iter()
            .map(|r| {
                let bad = |e: String| self.corrupt(format!("block decision {}: {e}", r.0));
                Ok(BlockRecord {
                    seq: r.0,
                    action: BlockAction::parse(&r.4)
                        .ok_or_else(|| bad(format!("unknown action `{}`", r.4)))?,
                    address: r.1,
                    target: r.2,
                    finding_id: r.3,
                    reason: r.5,
                    at: parse_ts(&r.6).map_err(bad)?,
                    until: parse_opt_ts(r.7).map_err(bad)?,
                })
            })
            .collect()
    }

    fn decode_item(&self, r: RawItem) -> Result<OutboxItem> {
        let bad = |e: String| -> StoreError { self.corrupt(format!("alert {}: {e}", r.0)) };
        Ok(OutboxItem {
            seq: r.0,
            created: parse_ts(&r.4).map_err(bad)?,
            attempts: r.5.clamp(0, i64::from(u32::MAX)) as u32,
            next_attempt: parse_opt_ts(r.6).map_err(bad)?,
            delivered: parse_opt_ts(r.8).map_err(bad)?,
            sink: r.1,
            alert_id: r.2,
            body: r.3,
            last_error: r.7,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn replays_do_not_duplicate_and_order_is_kept_per_sink() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("s.db")).unwrap();
        let t = at("2026-01-01T00:00:00Z");
        {
            let tx = store.write_transaction().unwrap();
            assert!(enqueue_alert(&tx, "webhook a", "f1-high", "{}", t).unwrap());
            assert!(enqueue_alert(&tx, "webhook b", "f1-high", "{}", t).unwrap());
            assert!(enqueue_alert(&tx, "webhook a", "f2-high", "{}", t).unwrap());
            // Same (sink, id): ignored.
            assert!(!enqueue_alert(&tx, "webhook a", "f1-high", "{\"x\":1}", t).unwrap());
            assert!(alert_known(&tx, "webhook a", &["zz", "f2-high"]).unwrap());
            assert!(!alert_known(&tx, "webhook b", &["f2-high"]).unwrap());
            tx.commit().unwrap();
        }
        // A rolled-back transaction leaves nothing.
        {
            let tx = store.write_transaction().unwrap();
            enqueue_alert(&tx, "webhook a", "f3-high", "{}", t).unwrap();
            drop(tx);
        }
        let a = store.pending_alerts("webhook a", 10).unwrap();
        let ids: Vec<_> = a.iter().map(|i| i.alert_id.as_str()).collect();
        assert_eq!(ids, ["f1-high", "f2-high"]);
        assert_eq!(a[0].body, "{}");
        assert_eq!(store.pending_alert_count("webhook b").unwrap(), 1);

        store
            .record_alert_failure(a[0].seq, "HTTP 500", at("2026-01-01T00:00:02Z"))
            .unwrap();
        let head = store.next_pending_alert("webhook a").unwrap().unwrap();
        assert_eq!(head.alert_id, "f1-high");
        assert_eq!(head.attempts, 1);
        assert_eq!(head.last_error.as_deref(), Some("HTTP 500"));
        assert_eq!(head.next_attempt, Some(at("2026-01-01T00:00:02Z")));

        store
            .mark_alerts_delivered(&[a[0].seq], at("2026-01-01T00:00:03Z"))
            .unwrap();
        let head = store.next_pending_alert("webhook a").unwrap().unwrap();
        assert_eq!(head.alert_id, "f2-high");
        store
            .abandon_alert(head.seq, "HTTP 400", at("2026-01-01T00:00:04Z"))
            .unwrap();
        assert!(store.next_pending_alert("webhook a").unwrap().is_none());
        let all = store.outbox("webhook a").unwrap();
        assert_eq!(all.len(), 2);
        assert!(
            all[1]
                .last_error
                .as_deref()
                .unwrap()
                .starts_with("abandoned:")
        );
        assert_eq!(
            store
                .prune_delivered_alerts(at("2026-01-01T00:00:04Z"))
                .unwrap(),
            1
        );
        assert_eq!(store.outbox("webhook a").unwrap().len(), 1);
    }

    #[test]
    fn blocks_are_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("s.db")).unwrap();
        let rec = |addr: &str, action| BlockRecord {
            seq: 0,
            address: addr.into(),
            target: "nftables inet filter orbwatch".into(),
            finding_id: "f1".into(),
            action,
            reason: "r".into(),
            at: at("2026-01-01T00:00:00Z"),
            until: Some(at("2026-01-01T01:00:00Z")),
        };
        store
            .record_block(&rec("45.1.2.3", BlockAction::Blocked))
            .unwrap();
        store
            .record_block(&rec("10.0.0.1", BlockAction::Refused))
            .unwrap();
        let all = store.recent_blocks(None, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].address, "10.0.0.1");
        assert_eq!(all[0].action, BlockAction::Refused);
        assert_eq!(all[1].until, Some(at("2026-01-01T01:00:00Z")));
        let one = store.recent_blocks(Some("45.1.2.3"), 10).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].action, BlockAction::Blocked);
    }
}
