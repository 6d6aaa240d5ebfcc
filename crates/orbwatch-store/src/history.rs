//! Validity learned from a feed's history (issue 18).
//!
//! Many feeds (plain lists, ANSSI's CSV) carry no dates, so an entry has no
//! window and matches forever. Once a feed is subscribed, its versions say
//! when each value first appeared and when it left. For an entry without
//! dates of a subscribed feed the window is then:
//!
//! - start: the time of the first version that listed it, minus the
//!   subscription's look-back (relays were active before anyone listed
//!   them; default 30 days);
//! - end: the time of the version that no longer listed it, plus the grace
//!   period; while it is still listed, the time of the latest version plus
//!   the subscription's TTL, or open without one.
//!
//! Entries that carry their own dates keep them ([`WindowOrigin::Feed`]).
//! Feeds that are not subscribed are left exactly as loaded: a file added
//! once by hand has no history to learn from.

use std::collections::HashMap;
use std::ops::ControlFlow;

use jiff::Timestamp;
use serde::Serialize;

use crate::error::{Result, SqlContext};
use crate::rows::{parse_opt_ts, parse_ts};
use crate::{Store, StoredIndicator, SubscriptionRow};

/// Where an indicator's validity window came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowOrigin {
    /// The feed's own dates (or the options it was loaded with).
    Feed,
    /// Derived from the feed's version history.
    History,
}

impl WindowOrigin {
    /// The tag put on indicators whose window came from history, so that
    /// findings say so.
    pub const HISTORY_TAG: &'static str = "window:feed-history";
}

/// The history-derived window of one undated value of a subscribed feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryWindow {
    pub type_name: String,
    pub value: String,
    /// Time of the first version that listed the value.
    pub first_listed: Timestamp,
    /// Time of the version that no longer listed it (`None`: still listed).
    pub removed_at: Option<Timestamp>,
    /// The window used for matching.
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
}

impl HistoryWindow {
    pub fn present(&self) -> bool {
        self.removed_at.is_none()
    }
}

const SELECT_UNDATED_REMOVED: &str = "SELECT i.id, f.name, t.name, i.value, i.valid_from, \
     i.valid_until, i.first_seen, i.last_seen, i.published, i.confidence, i.tags_json, \
     i.description, ff.path, i.line, i.record_id FROM indicators i JOIN feeds f ON f.id = i.feed_id \
     JOIN indicator_types t ON t.id = i.type_id JOIN feed_files ff ON ff.id = i.file_id \
     WHERE i.present = 0 AND i.valid_from IS NULL AND i.valid_until IS NULL AND i.feed_id = ?1 \
     ORDER BY i.id";

fn key(type_name: &str, value: &str) -> String {
    format!("{type_name}\u{1f}{value}")
}

impl Store {
    /// The history-derived windows of a subscribed feed's undated values,
    /// present and removed, in the order they were stored. `None` when the
    /// feed is not subscribed (or not loaded yet).
    pub fn history_windows(&self, name: &str) -> Result<Option<Vec<HistoryWindow>>> {
        let Some(sub) = self.subscription(name)? else {
            return Ok(None);
        };
        let Some(feed_id) = self
            .conn
            .query_row(
                "SELECT id FROM feeds WHERE name = ?1 AND version > 0",
                [name],
                |r| r.get::<_, i64>(0),
            )
            .ok()
        else {
            return Ok(None);
        };
        self.compute_history(feed_id, &sub).map(Some)
    }

    fn compute_history(&self, feed_id: i64, sub: &SubscriptionRow) -> Result<Vec<HistoryWindow>> {
        let p = &self.path;
        let a = "reading the feed's history";
        let mut versions: HashMap<i64, Timestamp> = HashMap::new();
        let mut first_at: Option<Timestamp> = None;
        let mut latest_at: Option<Timestamp> = None;
        {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT version, at FROM feed_versions WHERE feed_id = ?1 ORDER BY version",
                )
                .ctx(p, a)?;
            let rows = stmt
                .query_map([feed_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .ctx(p, a)?;
            for row in rows {
                let (v, at) = row.ctx(p, a)?;
                let at = parse_ts(&at).map_err(|e| self.corrupt(e))?;
                first_at.get_or_insert(at);
                latest_at = Some(at);
                versions.insert(v, at);
            }
        }
        // The first change of each undated value: an `added` says when it
        // (first) came; a `removed` first means it was in version 1.
        let mut first_change: HashMap<String, (i64, bool)> = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT type_name, value, version, change FROM feed_changes WHERE feed_id = ?1 \
                     AND version <= (SELECT version FROM feeds WHERE id = ?1) \
                     AND valid_from IS NULL AND valid_until IS NULL ORDER BY version, rowid",
                )
                .ctx(p, a)?;
            let rows = stmt
                .query_map([feed_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .ctx(p, a)?;
            for row in rows {
                let (t, v, version, change) = row.ctx(p, a)?;
                first_change
                    .entry(key(&t, &v))
                    .or_insert((version, change == "added"));
            }
        }
        let mut out = Vec::new();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT t.name, i.value, i.added_version, i.removed_at, i.present FROM indicators i \
                 JOIN indicator_types t ON t.id = i.type_id WHERE i.feed_id = ?1 AND i.present < 2 \
                 AND i.valid_from IS NULL AND i.valid_until IS NULL ORDER BY i.id",
            )
            .ctx(p, a)?;
        let rows = stmt
            .query_map([feed_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .ctx(p, a)?;
        for row in rows {
            let (type_name, value, added_version, removed_at, present) = row.ctx(p, a)?;
            let first_listed = match first_change.get(&key(&type_name, &value)) {
                Some((v, true)) => versions.get(v).copied(),
                Some((_, false)) => first_at,
                None => versions.get(&added_version).copied(),
            };
            let Some(first_listed) = first_listed.or(first_at) else {
                continue;
            };
            let removed_at = if present != 0 {
                None
            } else {
                parse_opt_ts(removed_at).map_err(|e| self.corrupt(e))?
            };
            let valid_until = match removed_at {
                Some(t) => t.checked_add(sub.grace).ok(),
                None => match (sub.ttl, latest_at) {
                    (Some(ttl), Some(l)) => l.checked_add(ttl).ok(),
                    _ => None,
                },
            };
            out.push(HistoryWindow {
                valid_from: first_listed.checked_sub(sub.lookback).ok(),
                valid_until,
                first_listed,
                removed_at,
                type_name,
                value,
            });
        }
        Ok(out)
    }

    /// What `hunt` matches against: the present indicators of one feed or
    /// of all, as [`Store::indicators_stream`] gives them, except that the
    /// undated entries of subscribed feeds get their history-derived window
    /// (tagged [`WindowOrigin::HISTORY_TAG`]), and the undated entries those
    /// feeds have dropped come too, with a window that closes after the
    /// grace period, so that sightings from when they were listed still
    /// match in window.
    pub fn indicators_stream_with_history(
        &self,
        feed: Option<&str>,
        mut f: impl FnMut(StoredIndicator, WindowOrigin) -> ControlFlow<()>,
    ) -> Result<()> {
        let subs: Vec<SubscriptionRow> = self
            .subscriptions()?
            .into_iter()
            .filter(|s| feed.is_none_or(|n| n == s.name))
            .collect();
        let mut windows: HashMap<String, HashMap<String, HistoryWindow>> = HashMap::new();
        for s in &subs {
            if let Some(ws) = self.history_windows(&s.name)? {
                let m = ws
                    .into_iter()
                    .map(|w| (key(&w.type_name, &w.value), w))
                    .collect();
                windows.insert(s.name.clone(), m);
            }
        }
        let apply = |mut s: StoredIndicator| -> (StoredIndicator, WindowOrigin) {
            let ind = &mut s.indicator;
            if ind.valid_from.is_some() || ind.valid_until.is_some() {
                return (s, WindowOrigin::Feed);
            }
            let Some(w) = windows.get(&s.feed).and_then(|m| {
                let row = crate::rows::Row::from_indicator(ind);
                m.get(&key(&row.type_name, &row.value))
            }) else {
                return (s, WindowOrigin::Feed);
            };
            ind.valid_from = w.valid_from;
            ind.valid_until = w.valid_until;
            orbwatch_intel::Tags::push_unique(&mut ind.tags.other, WindowOrigin::HISTORY_TAG);
            (s, WindowOrigin::History)
        };
        let mut stopped = false;
        self.indicators_stream(feed, |s| {
            let (s, origin) = apply(s);
            let flow = f(s, origin);
            stopped = flow.is_break();
            flow
        })?;
        if stopped {
            return Ok(());
        }
        let p = &self.path;
        for s in &subs {
            let Ok(feed_id) = self.feed_id(&s.name) else {
                continue;
            };
            let mut stmt = self
                .conn
                .prepare(SELECT_UNDATED_REMOVED)
                .ctx(p, "reading removed indicators")?;
            let mut q = stmt.query([feed_id]).ctx(p, "reading removed indicators")?;
            while let Some(r) = q.next().ctx(p, "reading removed indicators")? {
                let (ind, origin) = apply(self.decode_indicator(r)?);
                if origin != WindowOrigin::History {
                    continue;
                }
                if f(ind, origin).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
