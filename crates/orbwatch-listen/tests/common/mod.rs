//! Helpers shared by the listener tests: start a listener on a loopback
//! port chosen by the kernel, collect what it hands to the pipeline, wait
//! for counters.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orbwatch_listen::{ListenerConfig, ListenerHandle, Shutdown, spawn};
use orbwatch_live::{LiveRecord, RecordReceiver, SourceStats, SourceStatsSnapshot, channel};

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A started listener with the pipeline's end of its channel.
pub struct Running {
    pub handle: ListenerHandle,
    pub rx: RecordReceiver,
    pub stats: Arc<SourceStats>,
    pub shutdown: Shutdown,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    pub fn snap(&self) -> SourceStatsSnapshot {
        self.stats.snapshot()
    }

    /// The counters once `cond` holds, waiting up to 2 s; panics with
    /// them if it never does. A listener counts a record after handing it
    /// to the pipeline, so a test that has just taken the record may see
    /// the counter a moment late: assert counters through this, not
    /// through a bare `snap()` right after `take`.
    pub fn settled(&self, cond: impl Fn(&SourceStatsSnapshot) -> bool) -> SourceStatsSnapshot {
        let mut last = self.snap();
        wait_for(Duration::from_secs(2), || {
            last = self.snap();
            cond(&last)
        });
        assert!(cond(&last), "the counters never settled: {last:?}");
        last
    }

    /// Take `n` records, waiting up to `within` in all; fewer if they do
    /// not come.
    pub fn take(&self, n: usize, within: Duration) -> Vec<LiveRecord> {
        let end = Instant::now() + within;
        let mut out = Vec::new();
        while out.len() < n {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(r) => out.push(r),
                Err(_) => break,
            }
        }
        out
    }

    /// Records that arrive within `quiet` of each other, until none does.
    pub fn drain(&self, quiet: Duration) -> Vec<LiveRecord> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.recv_timeout(quiet) {
            out.push(r);
        }
        out
    }
}

pub fn start(cfg: ListenerConfig, capacity: usize) -> Running {
    let (tx, rx) = channel(capacity);
    let stats = Arc::new(SourceStats::default());
    let shutdown = Shutdown::new();
    let handle = spawn(cfg, tx, stats.clone(), shutdown.clone()).expect("listener starts");
    Running {
        handle,
        rx,
        stats,
        shutdown,
    }
}

/// Wait until `cond` holds (checked every 10 ms), at most `within`.
pub fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn text(r: &LiveRecord) -> String {
    String::from_utf8_lossy(&r.bytes).into_owned()
}

/// Is util-linux `logger` with network options here? Prints "skipped"
/// when not.
pub fn have_logger() -> bool {
    let ok = std::process::Command::new("logger")
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--octet-count"))
        .unwrap_or(false);
    if !ok {
        println!("skipped: util-linux logger with --octet-count is not installed");
    }
    ok
}
