//! Feed subscriptions (schema 3): what `orbwatch feed subscribe` records so
//! that `feed update` can fetch a feed again. The store keeps the two JSON
//! documents opaque (their shape belongs to `orbwatch-subscribe`), plus the
//! history policy as columns because [`crate::Store::indicators_stream_with_history`]
//! needs it.

use jiff::{SignedDuration, Timestamp};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::error::{Result, SqlContext};
use crate::rows::{parse_ts, ts_text};
use crate::{Store, validate_name};

/// One subscription.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionRow {
    /// The feed name the subscription fills.
    pub name: String,
    /// Where it comes from, as the user wrote it (`https://…`,
    /// `taxii2+https://…`); never holds a credential.
    pub source: String,
    /// How to fetch (format, headers by reference, limits).
    pub spec: serde_json::Value,
    /// What the last fetch left (validators, cursors, last error).
    pub state: serde_json::Value,
    pub created_at: Timestamp,
    /// Look-back before the time an undated entry was first listed.
    pub lookback: SignedDuration,
    /// Grace after the time an undated entry was last listed.
    pub grace: SignedDuration,
    /// Lifetime from the last update of undated entries still listed
    /// (`None`: they stay valid while listed).
    pub ttl: Option<SignedDuration>,
}

fn secs(d: SignedDuration) -> i64 {
    d.as_secs()
}

impl Store {
    /// Add or replace a subscription (by name). The state is replaced too.
    pub fn put_subscription(&mut self, row: &SubscriptionRow) -> Result<()> {
        validate_name(&row.name)?;
        self.conn
            .execute(
                "INSERT INTO subscriptions (name, source, spec_json, state_json, created_at, \
                 lookback_s, grace_s, ttl_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT(name) DO UPDATE SET source = ?2, spec_json = ?3, state_json = ?4, \
                 lookback_s = ?6, grace_s = ?7, ttl_s = ?8",
                params![
                    row.name,
                    row.source,
                    row.spec.to_string(),
                    row.state.to_string(),
                    ts_text(row.created_at),
                    secs(row.lookback),
                    secs(row.grace),
                    row.ttl.map(secs),
                ],
            )
            .ctx(&self.path, "saving the subscription")?;
        Ok(())
    }

    /// Replace the state of a subscription (after a fetch).
    pub fn set_subscription_state(&mut self, name: &str, state: &serde_json::Value) -> Result<()> {
        self.conn
            .execute(
                "UPDATE subscriptions SET state_json = ?2 WHERE name = ?1",
                params![name, state.to_string()],
            )
            .ctx(&self.path, "saving the subscription state")?;
        Ok(())
    }

    /// Delete a subscription; the feed and its versions stay. Returns
    /// whether there was one.
    pub fn remove_subscription(&mut self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM subscriptions WHERE name = ?1", [name])
            .ctx(&self.path, "removing the subscription")?;
        Ok(n > 0)
    }

    /// One subscription by feed name.
    pub fn subscription(&self, name: &str) -> Result<Option<SubscriptionRow>> {
        let p = &self.path;
        let raw = self
            .conn
            .query_row(&format!("{SELECT_SUB} WHERE name = ?1"), [name], raw_row)
            .optional()
            .ctx(p, "reading the subscription")?;
        raw.map(|r| self.decode_sub(r)).transpose()
    }

    /// All subscriptions, by name.
    pub fn subscriptions(&self) -> Result<Vec<SubscriptionRow>> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare(&format!("{SELECT_SUB} ORDER BY name"))
            .ctx(p, "listing subscriptions")?;
        let rows = stmt
            .query_map([], raw_row)
            .ctx(p, "listing subscriptions")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .ctx(p, "listing subscriptions")?;
        rows.into_iter().map(|r| self.decode_sub(r)).collect()
    }

    fn decode_sub(&self, r: RawSub) -> Result<SubscriptionRow> {
        let bad = |e: String| self.corrupt(format!("subscription `{}`: {e}", r.0));
        let json = |s: &str| -> Result<serde_json::Value> {
            serde_json::from_str(s).map_err(|e| bad(format!("unreadable JSON ({e})")))
        };
        Ok(SubscriptionRow {
            spec: json(&r.2)?,
            state: json(&r.3)?,
            created_at: parse_ts(&r.4).map_err(bad)?,
            lookback: SignedDuration::from_secs(r.5),
            grace: SignedDuration::from_secs(r.6),
            ttl: r.7.map(SignedDuration::from_secs),
            source: r.1,
            name: r.0,
        })
    }
}

const SELECT_SUB: &str = "SELECT name, source, spec_json, state_json, created_at, lookback_s, \
     grace_s, ttl_s FROM subscriptions";

type RawSub = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawSub> {
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
}
