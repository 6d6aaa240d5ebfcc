//! Reading the routers' history (`router_history`, written by `orbwatch
//! routers audit` and `reboot`).
//!
//! Every step of an audit or a reboot is one row: pre-check, reboot sent,
//! back, proof, health, re-audit, never came back. The report, the API and
//! `routers history` read it from here, on a read connection: showing a
//! router's story must not wait for, or hold up, a hunt writing findings.

use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::Store;
use crate::error::{Result, SqlContext};
use crate::router_detail::RouterStepDetail;
use crate::rows::parse_ts;

/// One step of one router's audit or reboot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterStep {
    /// Order of writing, across all routers: later steps have higher ones
    /// (also the API's paging cursor).
    pub seq: i64,
    pub router: String,
    pub at: Timestamp,
    /// `audit` or `reboot`.
    pub action: String,
    /// `precheck`, `refused`, `sent`, `returned`, `never_returned`,
    /// `proof`, `health`, `reaudit`, `done`, `dry_run`, `audited`,
    /// `skipped`, `not_started`, `error`…
    pub step: String,
    pub ok: bool,
    /// The hunt that holds the findings of this run, when there is one.
    pub hunt_id: Option<i64>,
    /// What the step found: the reason of a refusal, the uptimes of the
    /// proof, each health check, the findings cleared and persistent
    /// (written as its JSON, as stored).
    pub detail: RouterStepDetail,
}

/// Where one router stands, from its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterStanding {
    pub router: String,
    /// Steps kept for it.
    pub steps: u64,
    /// Steps that failed (a refusal, a failed health check, a persistent
    /// finding on re-audit, no return).
    pub failed_steps: u64,
    /// The latest completed audit (`audited`).
    pub last_audit: Option<Timestamp>,
    /// The latest reboot that was sent (`sent`).
    pub last_reboot: Option<Timestamp>,
    /// The latest step of any kind: what happened last.
    pub last: RouterStep,
}

const STEP_COLUMNS: &str = "seq, router, at, action, step, ok, hunt_id, detail_json";

impl Store {
    /// The steps of one router (or of all with `None`), oldest first,
    /// after `after_seq` when given, at most `limit`.
    pub fn router_history(
        &self,
        router: Option<&str>,
        after_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RouterStep>> {
        let p = &self.path;
        let a = "reading the router history";
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM router_history \
             WHERE (?1 IS NULL OR router = ?1) AND seq > ?2 ORDER BY seq LIMIT ?3"
        );
        let mut stmt = self.conn.prepare_cached(&sql).ctx(p, a)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut q = stmt
            .query(params![router, after_seq.unwrap_or(i64::MIN), limit])
            .ctx(p, a)?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, a)? {
            out.push(self.router_step(r)?);
        }
        Ok(out)
    }

    /// The latest `n` steps of one router, oldest first: what its last
    /// audit or reboot did, for the report.
    pub fn router_recent_steps(&self, router: &str, n: usize) -> Result<Vec<RouterStep>> {
        let p = &self.path;
        let a = "reading the router history";
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM router_history WHERE router = ?1 ORDER BY seq DESC LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql).ctx(p, a)?;
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let mut q = stmt.query(params![router, n]).ctx(p, a)?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, a)? {
            out.push(self.router_step(r)?);
        }
        out.reverse();
        Ok(out)
    }

    /// Every router that has a history, by name, with where it stands.
    ///
    /// One query: the sums per router (a `GROUP BY` over
    /// `router_history_by_router`) joined to each router's last row by
    /// `seq`. It used to read that last row with one more query per router,
    /// which for 1,000 routers was most of the time spent here.
    pub fn router_standings(&self) -> Result<Vec<RouterStanding>> {
        let p = &self.path;
        let a = "summing up the router history";
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT h.seq, h.router, h.at, h.action, h.step, h.ok, h.hunt_id, h.detail_json, \
                 g.steps, g.failed, g.last_audit, g.last_reboot \
                 FROM (SELECT router, COUNT(*) AS steps, SUM(ok = 0) AS failed, \
                       MAX(CASE WHEN step = 'audited' THEN at END) AS last_audit, \
                       MAX(CASE WHEN step = 'sent' THEN at END) AS last_reboot, \
                       MAX(seq) AS last_seq \
                       FROM router_history GROUP BY router) g \
                 JOIN router_history h ON h.seq = g.last_seq \
                 ORDER BY g.router",
            )
            .ctx(p, a)?;
        let mut q = stmt.query([]).ctx(p, a)?;
        let mut out = Vec::new();
        while let Some(r) = q.next().ctx(p, a)? {
            let last = self.router_step(r)?;
            let steps: i64 = r.get(8).ctx(p, a)?;
            let failed: i64 = r.get(9).ctx(p, a)?;
            let when = |i: usize| -> Result<Option<Timestamp>> {
                let t: Option<String> = r.get(i).ctx(p, a)?;
                t.map(|t| {
                    parse_ts(&t).map_err(|e| self.corrupt(format!("router {}: {e}", last.router)))
                })
                .transpose()
            };
            out.push(RouterStanding {
                last_audit: when(10)?,
                last_reboot: when(11)?,
                steps: u64::try_from(steps).unwrap_or(0),
                failed_steps: u64::try_from(failed).unwrap_or(0),
                router: last.router.clone(),
                last,
            });
        }
        Ok(out)
    }

    fn router_step(&self, r: &rusqlite::Row<'_>) -> Result<RouterStep> {
        let p = &self.path;
        let a = "reading a router step";
        let seq: i64 = r.get(0).ctx(p, a)?;
        let bad = |e: String| self.corrupt(format!("router history row {seq}: {e}"));
        let at: String = r.get(2).ctx(p, a)?;
        let detail: String = r.get(7).ctx(p, a)?;
        let step: String = r.get(4).ctx(p, a)?;
        // Text that is not JSON at all is damage; JSON of a shape this
        // build does not know is only older or newer, and is kept as is.
        let detail = serde_json::from_str(&detail)
            .map(|json| RouterStepDetail::read(&step, json))
            .map_err(|e| bad(format!("unreadable detail ({e})")))?;
        Ok(RouterStep {
            seq,
            router: r.get(1).ctx(p, a)?,
            at: parse_ts(&at).map_err(bad)?,
            action: r.get(3).ctx(p, a)?,
            step,
            ok: r.get(5).ctx(p, a)?,
            hunt_id: r.get(6).ctx(p, a)?,
            detail,
        })
    }
}
