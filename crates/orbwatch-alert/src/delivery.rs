//! The delivery threads: one per sink, each with its own store connection,
//! sending the outbox in `seq` order.
//!
//! Order is kept by never sending past the oldest undelivered alert: when
//! it fails, the thread waits (exponential backoff, capped) and tries it
//! again, and nothing behind it goes first. A sink that is down for an
//! hour therefore receives everything afterwards, in order. An alert is
//! marked delivered only after the sink accepted it, so a crash between
//! the two sends it again on restart, under the same `alert_id`.
//!
//! A sink that fails does not hold back the others: each has its thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::Timestamp;
use orbwatch_store::Store;

use crate::AlertError;
use crate::sink::{Deliver, SinkSpec, connect};

/// How delivery paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// How often an idle thread looks at the outbox (a [`DeliveryHandle::wake`]
    /// after a commit makes it look at once).
    pub poll: Duration,
    /// The wait after the first failure; doubled after each further one.
    pub backoff_initial: Duration,
    /// The longest wait between two attempts.
    pub backoff_max: Duration,
    /// Alerts taken per round (a JSON lines batch is written and flushed
    /// together).
    pub batch: usize,
    /// Delivered alerts older than this are pruned from the outbox
    /// (`None`: kept). Pruned ids are forgotten: a finding replayed after
    /// that is alerted again, with the same id.
    pub retention: Option<Duration>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            poll: Duration::from_millis(250),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            batch: 100,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

impl DeliveryConfig {
    /// The wait after `attempts` failed attempts (1 or more).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        self.backoff_initial
            .saturating_mul(1u32 << shift)
            .min(self.backoff_max)
    }
}

#[derive(Default)]
struct Signal {
    stop: bool,
    /// Bumped by `wake`.
    generation: u64,
}

struct Shared {
    state: Mutex<Signal>,
    cv: Condvar,
}

impl Shared {
    /// Sleep up to `d`, or until stopped or woken. Returns whether to stop.
    fn wait(&self, d: Duration, seen_generation: &mut u64) -> bool {
        let Ok(guard) = self.state.lock() else {
            return true;
        };
        if guard.stop {
            return true;
        }
        if guard.generation != *seen_generation {
            *seen_generation = guard.generation;
            return false;
        }
        match self
            .cv
            .wait_timeout_while(guard, d, |s| !s.stop && s.generation == *seen_generation)
        {
            Ok((g, _)) => {
                *seen_generation = g.generation;
                g.stop
            }
            Err(_) => true,
        }
    }

    fn stopped(&self) -> bool {
        self.state.lock().map(|s| s.stop).unwrap_or(true)
    }
}

/// Counters of one sink since its thread started (for the status line).
#[derive(Debug, Default)]
struct SinkStats {
    delivered: AtomicU64,
    failures: AtomicU64,
    abandoned: AtomicU64,
}

/// What one sink did since delivery started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// Alerts the sink accepted.
    pub delivered: u64,
    /// Failed attempts (each retried later).
    pub failures: u64,
    /// Alerts given up because the sink refuses them for good.
    pub abandoned: u64,
}

/// The running delivery threads.
pub struct DeliveryHandle {
    shared: Arc<Shared>,
    threads: Vec<(String, JoinHandle<()>)>,
    stats: Vec<(String, Arc<SinkStats>)>,
}

impl DeliveryHandle {
    /// Look at the outbox now (call after committing new alerts).
    pub fn wake(&self) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.generation = s.generation.wrapping_add(1);
        }
        self.shared.cv.notify_all();
    }

    /// Stop the threads (SIGTERM) and wait for them. A send in progress
    /// finishes first (bounded by the sink's timeout); what is still
    /// pending stays in the outbox for the next run. Returns the final
    /// [`DeliveryHandle::stats`].
    pub fn stop(mut self) -> Vec<(String, SinkCounts)> {
        self.stop_inner();
        self.stats()
    }

    fn stop_inner(&mut self) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.stop = true;
        }
        self.shared.cv.notify_all();
        for (name, t) in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!(sink = %name, "the alert delivery thread panicked");
            }
        }
    }

    /// Per sink (outbox name): what it did since delivery started. The
    /// backlog is in the store: `Store::pending_alert_count`.
    pub fn stats(&self) -> Vec<(String, SinkCounts)> {
        self.stats
            .iter()
            .map(|(n, s)| {
                (
                    n.clone(),
                    SinkCounts {
                        delivered: s.delivered.load(Ordering::Relaxed),
                        failures: s.failures.load(Ordering::Relaxed),
                        abandoned: s.abandoned.load(Ordering::Relaxed),
                    },
                )
            })
            .collect()
    }

    /// The sinks delivered to.
    pub fn sinks(&self) -> Vec<&str> {
        self.threads.iter().map(|(n, _)| n.as_str()).collect()
    }
}

impl Drop for DeliveryHandle {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Start one thread per sink. Sinks are connected (files opened, HTTP
/// clients built) before any thread starts, so configuration errors are
/// returned here.
pub fn start(
    store_path: &Path,
    sinks: &[SinkSpec],
    cfg: &DeliveryConfig,
) -> Result<DeliveryHandle, AlertError> {
    let mut connected = Vec::new();
    for spec in sinks {
        connected.push((spec.name(), connect(spec)?));
    }
    // Open (and migrate) once here so that a bad store fails now.
    Store::open(store_path)?;
    let shared = Arc::new(Shared {
        state: Mutex::new(Signal::default()),
        cv: Condvar::new(),
    });
    let mut threads = Vec::new();
    let mut stats = Vec::new();
    for (name, sink) in connected {
        let st = Arc::new(SinkStats::default());
        stats.push((name.clone(), st.clone()));
        let worker = Worker {
            stats: st,
            store_path: store_path.to_path_buf(),
            sink_name: name.clone(),
            sink,
            cfg: cfg.clone(),
            shared: shared.clone(),
        };
        let t = std::thread::Builder::new()
            .name(format!("alert {name}"))
            .spawn(move || worker.run())
            .map_err(|e| AlertError::Config(format!("cannot start a delivery thread: {e}")))?;
        threads.push((name, t));
    }
    Ok(DeliveryHandle {
        shared,
        threads,
        stats,
    })
}

struct Worker {
    stats: Arc<SinkStats>,
    store_path: PathBuf,
    sink_name: String,
    sink: Box<dyn Deliver>,
    cfg: DeliveryConfig,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(mut self) {
        let mut generation = 0u64;
        let mut store: Option<Store> = None;
        let mut last_prune: Option<Timestamp> = None;
        while !self.shared.stopped() {
            let s = match &mut store {
                Some(s) => s,
                None => match Store::open(&self.store_path) {
                    Ok(s) => store.insert(s),
                    Err(e) => {
                        tracing::error!(sink = %self.sink_name, error = %e, "cannot open the store for alert delivery; retrying");
                        if self.shared.wait(
                            self.cfg.backoff_max.min(Duration::from_secs(5)),
                            &mut generation,
                        ) {
                            break;
                        }
                        continue;
                    }
                },
            };
            let wait = match self.round(s, &mut last_prune) {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(sink = %self.sink_name, error = %e, "alert outbox unavailable; retrying");
                    Some(self.cfg.poll.max(Duration::from_millis(100)))
                }
            };
            if let Some(w) = wait
                && self.shared.wait(w, &mut generation)
            {
                break;
            }
        }
        tracing::debug!(sink = %self.sink_name, "alert delivery stopped");
    }

    /// One round: send what is due. Returns how long to wait before the
    /// next (`None`: go on at once, there is more).
    fn round(
        &mut self,
        store: &mut Store,
        last_prune: &mut Option<Timestamp>,
    ) -> Result<Option<Duration>, AlertError> {
        let now = Timestamp::now();
        if let Some(keep) = self.cfg.retention
            && last_prune.is_none_or(|t| now.duration_since(t).as_secs() >= 3600)
        {
            *last_prune = Some(now);
            let before = now
                .checked_sub(
                    jiff::SignedDuration::try_from(keep).unwrap_or(jiff::SignedDuration::MAX),
                )
                .unwrap_or(Timestamp::MIN);
            let n = store.prune_delivered_alerts(before)?;
            if n > 0 {
                tracing::debug!(sink = %self.sink_name, pruned = n, "old delivered alerts pruned");
            }
        }
        let items = store.pending_alerts(&self.sink_name, self.cfg.batch.max(1))?;
        let Some(head) = items.first() else {
            return Ok(Some(self.cfg.poll));
        };
        if let Some(next) = head.next_attempt
            && next > now
        {
            let left = now.duration_until(next).unsigned_abs();
            return Ok(Some(left.min(self.cfg.backoff_max)));
        }
        let out = self.sink.send(&items);
        let delivered_at = Timestamp::now();
        let done: Vec<i64> = items[..out.delivered.min(items.len())]
            .iter()
            .map(|i| i.seq)
            .collect();
        if !done.is_empty() {
            store.mark_alerts_delivered(&done, delivered_at)?;
            self.stats
                .delivered
                .fetch_add(done.len() as u64, Ordering::Relaxed);
            tracing::debug!(sink = %self.sink_name, delivered = done.len(), "alerts delivered");
        }
        let Some(err) = out.error else {
            return Ok(if items.len() >= self.cfg.batch.max(1) {
                None
            } else {
                Some(self.cfg.poll)
            });
        };
        let Some(failed) = items.get(out.delivered) else {
            return Ok(None);
        };
        if err.permanent {
            tracing::error!(sink = %self.sink_name, alert_id = %failed.alert_id, error = %err.message, "the sink refuses this alert for good; it is abandoned so that the alerts behind it can go");
            store.abandon_alert(failed.seq, &err.message, delivered_at)?;
            self.stats.abandoned.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let attempts = failed.attempts.saturating_add(1);
        let wait = self.cfg.backoff(attempts);
        let next = delivered_at
            .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        tracing::warn!(sink = %self.sink_name, alert_id = %failed.alert_id, attempts, error = %err.message, "alert delivery failed; retrying in {wait:?}");
        store.record_alert_failure(failed.seq, &err.message, next)?;
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        Ok(Some(wait))
    }
}
