//! Indicators rebuilt beside the ones in use and swapped in, without
//! stopping the reading: on a signal (SIGHUP), and when the store's feeds
//! change (`feed add`, `feed update`, `feed remove` by anyone). `watch`
//! and `worker` share it, so a feed version added on one machine reaches
//! every daemon and worker reading that store.
//!
//! Why a thread: building the index of millions of indicators takes
//! seconds, and the loop that reads records must not stop for it (a
//! socket's kernel buffer would overflow). The new index is built on a
//! scoped thread while the old one keeps matching; the swap itself is a
//! move. Peak memory is the two indexes side by side, logged.

use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::Result;
use orbwatch_detect::IocEngine;
use orbwatch_store::Store;

/// See the module docs.
pub(crate) struct FeedReload<'scope> {
    /// The command, for log lines (`watch`, `worker`).
    who: &'static str,
    check_every: Duration,
    last_check: Instant,
    /// The store's feeds generation last seen (`None`: unknown).
    generation: Option<(i64, i64, String)>,
    running: Option<(ScopedJoinHandle<'scope, Result<IocEngine>>, Instant)>,
    /// A rebuild was wanted while one ran: it starts when that one ends
    /// (the one running may have read the feeds before the change).
    pending: bool,
}

impl<'scope> FeedReload<'scope> {
    /// `store`: where the feeds live, polled every `check_every` (none:
    /// reload on signal only).
    pub(crate) fn new(who: &'static str, check_every: Duration, store: Option<&Store>) -> Self {
        Self {
            who,
            check_every,
            last_check: Instant::now(),
            generation: store.and_then(|s| s.feeds_generation().ok()),
            running: None,
            pending: false,
        }
    }

    /// Start a rebuild (with `build`) when `asked` or when the store's
    /// feeds changed; while one is running, the next starts when it
    /// ends. Return a finished rebuild's indicators to swap in. A failed
    /// rebuild is logged and the indicators in use stay.
    pub(crate) fn step<'env, B>(
        &mut self,
        scope: &'scope Scope<'scope, 'env>,
        now: Instant,
        asked: bool,
        store: Option<&Store>,
        build: B,
    ) -> Option<IocEngine>
    where
        B: FnOnce() -> Result<IocEngine> + Send + 'scope,
    {
        let who = self.who;
        let mut want = asked;
        if let Some(store) = store
            && now.duration_since(self.last_check) >= self.check_every
        {
            self.last_check = now;
            match store.feeds_generation() {
                Ok(g) if self.generation.as_ref() != Some(&g) => {
                    tracing::info!("{who}: the store's feeds changed: reloading");
                    self.generation = Some(g);
                    want = true;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("{who}: cannot tell whether the feeds changed: {e}"),
            }
        }
        if want && self.running.is_some() {
            self.pending = true;
        }
        if (want || self.pending) && self.running.is_none() {
            self.pending = false;
            let handle = scope.spawn(move || {
                let before = crate::watch_status::peak_rss_bytes();
                let ioc = build()?;
                let after = crate::watch_status::peak_rss_bytes();
                tracing::info!(
                    "{who}: new index of {} indicators built beside the old one ({} bytes of index; peak RSS {} MB before, {} MB during the build)",
                    ioc.len(),
                    ioc.index().heap_bytes(),
                    before / 1_000_000,
                    after / 1_000_000
                );
                Ok(ioc)
            });
            self.running = Some((handle, Instant::now()));
        }
        if !self.running.as_ref().is_some_and(|(h, _)| h.is_finished()) {
            return None;
        }
        let (handle, started) = self.running.take()?;
        match handle.join() {
            Ok(Ok(ioc)) => {
                tracing::info!(
                    "{who}: now matching {} indicators (reload took {:.2} s; no record was skipped)",
                    ioc.len(),
                    started.elapsed().as_secs_f64()
                );
                Some(ioc)
            }
            Ok(Err(e)) => {
                tracing::error!(
                    "{who}: reloading the feeds failed, still matching the previous ones: {e:#}"
                );
                None
            }
            Err(_) => {
                tracing::error!(
                    "{who}: reloading the feeds failed (a bug: please report it); still matching the previous ones"
                );
                None
            }
        }
    }
}
