//! `orbwatch watch`: the live daemon. Sources (followed files, syslog and
//! NetFlow listeners, stdin) feed one bounded channel, each testing its
//! records' raw addresses against the indicators on its own thread first
//! ([`LivePipeline::prefilter`]); one pipeline thread (the engine's
//! [`LivePipeline`]: the hunt's decoders, matcher and detectors) takes
//! records from it; every `commit_interval` the findings
//! raised since the last commit, the followed files' offsets and the
//! alerts for the outbox are kept in the store in one transaction.
//!
//! ```text
//!  sources ──► channel ──► LivePipeline ──► commit (one transaction) ──► alerts, blocking
//!                              ▲              findings, offsets, outbox
//!                 reload: new index built on a thread, swapped in
//! ```
//!
//! Why one transaction: after `kill -9` the store holds either a batch's
//! findings *and* the offsets of the records behind them, or neither, so
//! a restart reads each record again exactly when its findings were not
//! kept. Signals: SIGTERM/SIGINT stop reading, flush the detectors,
//! commit and exit 0; SIGHUP reloads the feeds; SIGUSR1 logs a status
//! line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jiff::Timestamp;
use orbwatch_detect::behaviour::BehaviourConfig;
use orbwatch_detect::{Finding, InternalNets, IocEngine};
use orbwatch_engine::event_time::EventTimeConfig;
use orbwatch_engine::{
    BehaviourOptions, Engine, EngineOptions, LiveOptions, LiveOutput, LivePipeline, OUTPUT_BATCH,
};
use orbwatch_live::{LiveRecord, Payload, RecordSender, SourceStats};
use orbwatch_store::Store;

use crate::Cli;
use crate::feed_reload::FeedReload;
use crate::watch_config::{WatchArgs, WatchSettings};

/// How often the pipeline does its housekeeping (detection of new
/// streams' formats, idle flush, closing idle sessions).
const TICK: Duration = Duration::from_millis(200);
/// Records taken from the channel between two looks at the clock.
const BURST: usize = 4096;

/// A running source: its name, counters, and how to stop it.
struct RunningSource {
    name: String,
    stats: Arc<SourceStats>,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

/// The signals the daemon reacts to, as flags set by the handlers.
struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    status: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        let s = Self {
            stop: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
            status: Arc::new(AtomicBool::new(false)),
        };
        for sig in [SIGTERM, SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&s.stop))
                .context("cannot install the SIGTERM/SIGINT handler")?;
        }
        signal_hook::flag::register(SIGHUP, Arc::clone(&s.reload))
            .context("cannot install the SIGHUP handler")?;
        signal_hook::flag::register(SIGUSR1, Arc::clone(&s.status))
            .context("cannot install the SIGUSR1 handler")?;
        Ok(s)
    }
}

pub fn run(cli: &Cli, args: &WatchArgs) -> Result<ExitCode> {
    let settings = WatchSettings::resolve(args)?;
    let db_path = match (&cli.db, &settings.db) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => crate::db_path::resolve(cli)?,
    };
    let alerts = alerts_from(&settings)?;
    let signals = Signals::install()?;
    let (timezone, timezone_name) =
        crate::cli_values::parse_timezone(settings.timezone.as_deref())?;
    let internal = if settings.internal.is_empty() {
        InternalNets::default()
    } else {
        InternalNets::new(settings.internal.clone())
    };
    let behaviour = if settings.behaviour {
        let config = match &settings.behaviour_config {
            Some(p) => BehaviourConfig::from_file(p)?,
            None => BehaviourConfig::default(),
        };
        Some(BehaviourOptions {
            config,
            enrichment_dbs: settings
                .asn_db
                .iter()
                .chain(settings.geo_db.iter())
                .cloned()
                .collect(),
            spill_dir: None,
            ioc_findings_in_memory: None,
        })
    } else {
        None
    };
    let options = EngineOptions {
        input_format: settings.input_format.clone(),
        year: args.year,
        timezone: Some(timezone),
        internal: internal.clone(),
        behaviour,
        threads: 1,
        ..Default::default()
    };
    let load_clock = Instant::now();
    let ioc = load_indicators(cli, &settings.feeds, &db_path, &internal)?;
    tracing::info!(
        "watch: {} indicators loaded in {:.2} s",
        ioc.len(),
        load_clock.elapsed().as_secs_f64()
    );
    if ioc.is_empty() && !settings.behaviour {
        anyhow::bail!(
            "no indicators to watch for and behaviour detection is off: add feeds with `orbwatch feed add FILE`, or pass --feed FILE"
        );
    }
    let engine = Engine::new(ioc, options)?;
    let live = LiveOptions {
        event_time: EventTimeConfig {
            allowed_lateness: settings.allowed_lateness,
            max_pending: settings.max_pending,
            idle_flush: settings.idle_flush,
            max_stream_skew: Some(settings.max_stream_skew),
        },
        ..Default::default()
    };
    let mut pipeline = LivePipeline::new(engine, live)?;
    let mut store = Store::open(&db_path)
        .with_context(|| format!("cannot open the store {}", db_path.display()))?;
    let started = Timestamp::now();
    let run_args = serde_json::json!({
        "command": "watch",
        "tail": settings.tail,
        "syslog_udp": settings.syslog_udp,
        "syslog_tcp": settings.syslog_tcp,
        "syslog_tls": settings.syslog_tls,
        "netflow": settings.netflow,
        "stdin": settings.stdin,
        "feeds": settings.feeds,
        "behaviour": settings.behaviour,
        "timezone": timezone_name,
    });
    let run_id = store.begin_live(&run_args, started)?;
    // Delivery threads read the outbox; the bouncer checks its sets now,
    // so a missing set stops the start, not the first block.
    let delivery = if alerts.sink_names().is_empty() {
        None
    } else {
        Some(alerts.start_delivery(&db_path)?)
    };
    let bouncer = bouncer_from(&settings)?;
    // The HTTP server (`--listen`) on the same store, with this daemon's
    // counters in /metrics; started before the sources, so a port in use
    // stops the start.
    let live_metrics = Arc::new(orbwatch_serve::metrics::LiveMetrics::default());
    let mut server = match &settings.serve {
        Some(opts) => Some(crate::cmd_serve::start(
            cli,
            opts,
            &db_path,
            Arc::clone(&live_metrics),
        )?),
        None => None,
    };
    tracing::info!(
        "watch: run {run_id} in the store {} (see `orbwatch hunts`)",
        db_path.display()
    );
    // The routers' audits and reboots, on their own thread (see
    // watch_routers); their findings join the daemon's.
    let routers = match &settings.routers {
        Some(r) => Some(crate::watch_routers::RouterJobs::start(
            r, &db_path, run_id,
        )?),
        None => None,
    };

    // The sources' threads test each record's raw addresses against the
    // indicators before queueing it: the pipeline thread is the one
    // that limits the rate (see LivePipeline::prefilter).
    let (tx, rx) = orbwatch_live::channel(settings.queue);
    let tx = tx.with_prefilter(pipeline.prefilter());
    let offsets = store.load_tail_offsets()?;
    let mut sources = start_sources(&settings, &tx, offsets)?;
    // The pipeline sees the channel close when every source has ended
    // (stdin at its end): the daemon then stops as on SIGTERM.
    drop(tx);

    let mut daemon = Daemon {
        store,
        alerts,
        bouncer,
        delivery,
        run_id,
        pending: Vec::new(),
        pending_at: HashMap::new(),
        pending_checkpoints: Vec::new(),
        committed_findings: 0,
        committed_updates: 0,
        commit_failures: 0,
    };
    let mut last_tick = Instant::now();
    let mut last_commit = Instant::now();
    let commit_interval = settings.commit_interval;
    let started_clock = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let mut reload = FeedReload::new("watch", settings.reload_check, Some(&daemon.store));
        loop {
            let mut ended = false;
            match rx.recv_timeout(TICK) {
                Ok(rec) => {
                    let now = Instant::now();
                    pipeline.handle(rec, now);
                    for rec in rx.try_iter().take(BURST) {
                        pipeline.handle(rec, now);
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => ended = true,
            }
            let now = Instant::now();
            if now.duration_since(last_tick) >= TICK {
                pipeline.tick(now);
                last_tick = now;
            }
            // A flood of findings is kept in batches of this size rather
            // than all at the end of the interval (see `output_waiting`).
            if now.duration_since(last_commit) >= commit_interval
                || pipeline.output_waiting() >= OUTPUT_BATCH
            {
                if let Some(r) = &routers {
                    daemon.take(LiveOutput {
                        findings: r.take_findings(),
                        ..Default::default()
                    });
                }
                daemon.take(pipeline.take_output());
                daemon.commit(None);
                last_commit = now;
                if server.is_some() {
                    live_metrics.set(render_metrics(&pipeline, &sources, &daemon, rx.len()));
                }
            }
            if let Some(e) = server.as_mut().and_then(|s| s.failed()) {
                tracing::error!(
                    "watch: the HTTP server stopped: {e:#}; watching goes on without it"
                );
                server = None;
            }
            if signals.status.swap(false, Ordering::Relaxed) {
                log_status(&pipeline, &sources, &daemon, started_clock, rx.len());
            }
            // Feeds: on SIGHUP, and when `feed add` changed the store.
            let asked = signals.reload.swap(false, Ordering::Relaxed);
            let (feeds, db, internal) = (&settings.feeds, &db_path, &internal);
            if let Some(ioc) = reload.step(scope, now, asked, Some(&daemon.store), move || {
                load_indicators(cli, feeds, db, internal)
            }) {
                pipeline.replace_indicators(ioc);
            }
            if ended || signals.stop.load(Ordering::Relaxed) {
                break;
            }
        }
        Ok(())
    })?;

    // Stop reading, take what is queued, flush the detectors, commit.
    tracing::info!("watch: stopping: no more reading, flushing the detectors");
    if let Some(r) = routers {
        daemon.take(LiveOutput {
            findings: r.stop(Duration::from_secs(30)),
            ..Default::default()
        });
    }
    // A source may wait to hand over its last records: keep taking them
    // while the sources stop.
    let stops: Vec<std::thread::JoinHandle<()>> = sources
        .iter_mut()
        .filter_map(|s| s.stop.take())
        .map(std::thread::spawn)
        .collect();
    while stops.iter().any(|h| !h.is_finished()) {
        let now = Instant::now();
        for rec in rx.try_iter() {
            pipeline.handle(rec, now);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for h in stops {
        let _ = h.join();
    }
    let now = Instant::now();
    for rec in rx.try_iter() {
        pipeline.handle(rec, now);
    }
    log_status(&pipeline, &sources, &daemon, started_clock, 0);
    let coverage = pipeline.coverage();
    daemon.take(pipeline.finish());
    let mut coverage = coverage;
    coverage.timezone = Some(timezone_name);
    coverage.finished = Some(Timestamp::now());
    // A store that stays busy for a while must not cost the last batch.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.commit(Some(&coverage)) {
        if Instant::now() >= deadline {
            let saved = daemon.save_unkept()?;
            anyhow::bail!(
                "the store {} stayed unavailable: {} findings were saved to {} instead",
                db_path.display(),
                daemon.pending.len(),
                saved.display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if let Some(d) = daemon.delivery.take() {
        for (sink, c) in d.stop() {
            tracing::info!("watch: alerts to {sink}: {c:?}");
        }
    }
    if let Some(s) = server.take()
        && let Err(e) = s.stop()
    {
        tracing::warn!("watch: the HTTP server did not stop cleanly: {e:#}");
    }
    tracing::info!(
        "watch: stopped; {} findings kept in run {} of {}",
        daemon.committed_findings,
        run_id,
        db_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Compile the indicators of `feeds` and the store, with each feed's
/// version (a worker's index, with no feed from the feeds topic).
pub(crate) fn load_indicators(
    cli: &Cli,
    feeds: &[PathBuf],
    db: &Path,
    internal: &InternalNets,
) -> Result<IocEngine> {
    crate::feed_topic::build_index(
        cli,
        feeds,
        db,
        internal,
        &crate::feed_topic::Published::new(),
    )
}

/// What waits to be kept, the store it goes to, and what acts on it once
/// kept (alerts, blocking).
struct Daemon {
    store: Store,
    alerts: orbwatch_alert::Alerts,
    bouncer: Option<orbwatch_alert::Bouncer>,
    delivery: Option<orbwatch_alert::DeliveryHandle>,
    run_id: i64,
    /// Findings raised since the last successful commit (latest state per
    /// id).
    pending: Vec<Finding>,
    /// Where each pending finding id sits in `pending`: a finding that
    /// changes again before the commit replaces its earlier state.
    pending_at: HashMap<String, usize>,
    pending_checkpoints: Vec<orbwatch_live::Checkpoint>,
    /// Findings kept so far (distinct ids) and commits of their updates.
    committed_findings: u64,
    committed_updates: u64,
    commit_failures: u64,
}

impl Daemon {
    fn take(&mut self, out: LiveOutput) {
        for f in out.findings {
            match self.pending_at.get(&f.id) {
                Some(&i) => self.pending[i] = f,
                None => {
                    self.pending_at.insert(f.id.clone(), self.pending.len());
                    self.pending.push(f);
                }
            }
        }
        for cp in out.checkpoints {
            match self
                .pending_checkpoints
                .iter_mut()
                .find(|p| p.source == cp.source)
            {
                Some(p) => *p = cp,
                None => self.pending_checkpoints.push(cp),
            }
        }
    }

    /// Keep the pending batch; false when the store refused (the batch
    /// stays pending for the next try).
    ///
    /// One transaction, however many findings one output brought (at
    /// shutdown, every session still open): the followed files'
    /// positions are kept with the findings of the records before them,
    /// and a session's finding is named by its first sighting, so kept
    /// apart, a crash between the two would leave records to be read
    /// again into a second finding of their own. The store writes a big
    /// batch in parts (`keep_live`).
    fn commit(&mut self, coverage: Option<&orbwatch_detect::Coverage>) -> bool {
        if self.pending.is_empty() && self.pending_checkpoints.is_empty() && coverage.is_none() {
            return true;
        }
        let pending = std::mem::take(&mut self.pending);
        match self.commit_once(&pending, coverage) {
            Ok(new) => {
                self.kept(&pending, &new);
                self.pending_at.clear();
                self.pending_checkpoints.clear();
                if let Some(d) = &self.delivery {
                    d.wake();
                }
                true
            }
            Err(e) => {
                self.commit_failures += 1;
                self.pending = pending;
                tracing::warn!(
                    "watch: cannot keep {} findings yet (will retry): {e}",
                    self.pending.len()
                );
                false
            }
        }
    }

    /// Count and log findings just kept; `new[i]`: the run had no copy
    /// of `batch[i]` before.
    fn kept(&mut self, batch: &[Finding], new: &[bool]) {
        self.committed_updates += batch.len() as u64;
        for (f, &new) in batch.iter().zip(new) {
            self.committed_findings += u64::from(new);
            if new {
                let src = f.src_ip.map(|i| i.to_string()).unwrap_or_default();
                let sev = f.severity.map_or("-", |s| s.as_str());
                tracing::info!(
                    "new finding {} {} {src} severity {sev} score {} count {}",
                    f.id,
                    f.kind,
                    f.score.unwrap_or(0),
                    f.count
                );
            } else {
                tracing::debug!("finding {} updated: count {}", f.id, f.count);
            }
        }
    }

    /// One transaction: `findings`, the alerts they raise (outbox), the
    /// block decisions and the followed files' positions. Either all are
    /// kept or none. Returns which findings are new to the run.
    fn commit_once(
        &mut self,
        findings: &[Finding],
        coverage: Option<&orbwatch_detect::Coverage>,
    ) -> Result<Vec<bool>> {
        let path = self.store.path().to_path_buf();
        let tx = self.store.write_transaction()?;
        let new = orbwatch_store::findings::keep_live(&tx, &path, self.run_id, findings, coverage)?;
        // The followed files' positions, with the findings of the records
        // before them: after a crash both are there, or neither.
        let offsets = orbwatch_tail::offsets_from_checkpoints(&self.pending_checkpoints);
        orbwatch_store::save_tail_offsets(&tx, &offsets, Timestamp::now())?;
        let counts = self.alerts.on_findings(&tx, findings)?;
        if counts.queued > 0 {
            tracing::debug!("watch: {} alerts queued", counts.queued);
        }
        if let Some(b) = &mut self.bouncer {
            for d in b.consider(&tx, findings)? {
                tracing::debug!("watch: block decision {d:?}");
            }
        }
        tx.commit()
            .with_context(|| format!("cannot commit to the store {}", path.display()))?;
        Ok(new)
    }

    /// Last resort when the store stays unavailable at shutdown: the
    /// pending findings as JSON lines in a file beside the store.
    fn save_unkept(&self) -> Result<PathBuf> {
        let name = format!(
            "orbwatch-watch-unkept-{}.jsonl",
            Timestamp::now().as_second()
        );
        let path = self
            .store
            .path()
            .parent()
            .map_or_else(|| PathBuf::from(&name), |d| d.join(&name));
        crate::output_file::write_file(&path, "unkept findings", |w| {
            for f in &self.pending {
                serde_json::to_writer(&mut *w, f)?;
                std::io::Write::write_all(w, b"\n")?;
            }
            Ok(())
        })?;
        Ok(path)
    }
}

/// The alert sinks and filter from the settings.
fn alerts_from(settings: &WatchSettings) -> Result<orbwatch_alert::Alerts> {
    use orbwatch_alert::{AlertConfig, AlertFilter, JsonlTarget, SinkSpec, WebhookSpec};
    let a = &settings.alerts;
    let min_severity = match a.min_severity.as_deref() {
        Some(s) => Some(orbwatch_detect::Severity::parse(s).with_context(|| {
            format!("--min-severity {s:?}: use info, low, medium, high or critical")
        })?),
        None => Some(orbwatch_detect::Severity::Medium),
    };
    let mut sinks = Vec::new();
    if let Some(j) = &a.jsonl {
        sinks.push(SinkSpec::Jsonl(if j == "-" {
            JsonlTarget::Stdout
        } else {
            JsonlTarget::File(PathBuf::from(j))
        }));
    }
    if let Some(url) = &a.webhook {
        sinks.push(SinkSpec::Webhook(WebhookSpec::new(url.clone())));
    }
    if let Some(fwd) = &a.syslog_forward {
        sinks
            .push(SinkSpec::Syslog(fwd.parse().map_err(|e| {
                anyhow::anyhow!("--syslog-forward {fwd:?}: {e}")
            })?));
    }
    Ok(orbwatch_alert::Alerts::new(AlertConfig {
        filter: AlertFilter {
            min_severity,
            min_score: a.min_score,
        },
        sinks,
        delivery: Default::default(),
    }))
}

/// The firewall bouncer, when `--block` names targets.
fn bouncer_from(settings: &WatchSettings) -> Result<Option<orbwatch_alert::Bouncer>> {
    let b = &settings.block;
    if b.targets.is_empty() {
        return Ok(None);
    }
    let targets = b
        .targets
        .iter()
        .map(|t| {
            t.parse::<orbwatch_alert::BlockTarget>()
                .map_err(|e| anyhow::anyhow!("--block {t:?}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    // Special-purpose ranges (RFC 1918 among them) are always refused;
    // --internal adds the organisation's own public ranges.
    let guard = crate::cmd_export::guard(&settings.internal, &b.allowlist, true)?;
    let mut cfg = orbwatch_alert::BouncerConfig::new(targets, guard);
    // The score decides (default 70: high and critical findings).
    cfg.min_severity = orbwatch_detect::Severity::Info;
    cfg.min_score = Some(b.min_score.unwrap_or(70));
    if let Some(t) = &b.timeout {
        let d =
            crate::cli_values::parse_dur(t).map_err(|e| anyhow::anyhow!("--block-timeout: {e}"))?;
        cfg.timeout = Duration::try_from(d).context("--block-timeout is out of range")?;
    }
    cfg.dry_run = b.dry_run.unwrap_or(false);
    Ok(Some(orbwatch_alert::Bouncer::new(cfg)?))
}

/// Start every source the settings name; each gets the channel's sender.
fn start_sources(
    settings: &WatchSettings,
    tx: &RecordSender,
    offsets: Vec<orbwatch_store::TailOffset>,
) -> Result<Vec<RunningSource>> {
    let mut out = Vec::new();
    if settings.stdin {
        out.push(start_stdin(tx.clone()));
    }
    if !settings.tail.is_empty() {
        let stats = Arc::new(SourceStats::default());
        let cfg = orbwatch_tail::TailConfig {
            paths: settings.tail.clone(),
            start_at: settings.tail_start_at,
            ..Default::default()
        };
        let handle = orbwatch_tail::spawn(cfg, offsets, tx.clone(), Arc::clone(&stats))
            .context("cannot follow the --tail files")?;
        out.push(RunningSource {
            name: format!("tail {}", settings.tail.join(" ")),
            stats,
            stop: Some(Box::new(move || {
                if let Err(e) = handle.stop() {
                    tracing::warn!("watch: stopping the tail: {e}");
                }
            })),
        });
    }
    let addr = |flag: &str, a: &str| -> Result<std::net::SocketAddr> {
        a.parse().with_context(|| {
            format!("{flag} {a:?}: give an address and port, e.g. 0.0.0.0:514 or [::]:514")
        })
    };
    let mut listeners = Vec::new();
    // The listeners' limits, where the settings change them.
    let tcp = |a: std::net::SocketAddr| {
        let mut c = orbwatch_listen::SyslogTcpConfig::new(a);
        if let Some(m) = settings.max_message {
            c.framing.max_message = m.max(1);
        }
        if let Some(n) = settings.tcp_max_connections {
            c.max_connections = n.max(1);
        }
        if let Some(t) = settings.tcp_idle_timeout {
            c.idle_timeout = t;
        }
        c
    };
    for a in &settings.syslog_udp {
        let mut c = orbwatch_listen::SyslogUdpConfig::new(addr("--syslog-udp", a)?);
        if let Some(b) = settings.udp_recv_buffer {
            c.recv_buffer = b;
        }
        if let Some(m) = settings.max_message {
            c.max_message = m.max(1);
        }
        listeners.push(orbwatch_listen::ListenerConfig::SyslogUdp(c));
    }
    for a in &settings.syslog_tcp {
        listeners.push(orbwatch_listen::ListenerConfig::SyslogTcp(tcp(addr(
            "--syslog-tcp",
            a,
        )?)));
    }
    for a in &settings.syslog_tls {
        let mut c = tcp(addr("--syslog-tls", a)?);
        let (Some(cert), Some(key)) = (&settings.tls.cert, &settings.tls.key) else {
            anyhow::bail!("--syslog-tls needs --tls-cert FILE and --tls-key FILE");
        };
        c.tls = Some(orbwatch_listen::TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: settings.tls.client_ca.clone(),
        });
        listeners.push(orbwatch_listen::ListenerConfig::SyslogTcp(c));
    }
    for a in &settings.netflow {
        let mut c = orbwatch_listen::NetflowConfig::new(addr("--netflow", a)?);
        if let Some(b) = settings.udp_recv_buffer {
            c.recv_buffer = b;
        }
        listeners.push(orbwatch_listen::ListenerConfig::Netflow(c));
    }
    let shutdown = orbwatch_listen::Shutdown::new();
    for cfg in listeners {
        let stats = Arc::new(SourceStats::default());
        let h = orbwatch_listen::spawn(cfg, tx.clone(), Arc::clone(&stats), shutdown.clone())?;
        let name = h.name();
        tracing::info!(
            "watch: listening: {name} on {}{}",
            h.local_addr(),
            h.recv_buffer()
                .map(|b| format!(" (receive buffer {b:?})"))
                .unwrap_or_default()
        );
        if let Some(k) = h.kernel_drop_source() {
            tracing::info!("watch: {name}: kernel drops read from {k:?}");
        }
        out.push(RunningSource {
            name,
            stats,
            stop: Some(Box::new(move || h.stop())),
        });
    }
    Ok(out)
}

/// Standard input, line by line, as one stream.
fn start_stdin(tx: RecordSender) -> RunningSource {
    let stats = Arc::new(SourceStats::default());
    let st = Arc::clone(&stats);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut reader = orbwatch_source::LineReader::new(stdin.lock());
        let stream: Arc<str> = Arc::from("stdin");
        loop {
            match reader.next_line() {
                Ok(Some(line)) => {
                    SourceStats::add(&st.records, 1);
                    SourceStats::add(&st.bytes, line.bytes.len() as u64 + 1);
                    if line.truncated {
                        SourceStats::add(&st.truncated, 1);
                    }
                    let rec = LiveRecord {
                        prefiltered: None,
                        prework: Default::default(),
                        stream: stream.clone(),
                        number: line.number,
                        offset: line.offset,
                        payload: Payload::Line,
                        bytes: line.bytes.to_vec(),
                        received: Timestamp::now(),
                        checkpoint: None,
                    };
                    if tx.send(rec).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    SourceStats::add(&st.malformed, 1);
                    tracing::error!("watch: reading standard input failed: {e}");
                    break;
                }
            }
        }
    });
    RunningSource {
        name: "stdin".into(),
        stats,
        // A thread blocked reading stdin cannot be interrupted; it ends
        // with the process.
        stop: None,
    }
}

/// This daemon's counters in the Prometheus text format, for `/metrics`
/// of the server it runs (`--listen`); refreshed at each commit.
fn render_metrics(
    pipeline: &LivePipeline,
    sources: &[RunningSource],
    daemon: &Daemon,
    queued: usize,
) -> String {
    use std::fmt::Write as _;
    let s = pipeline.stats();
    let mut out = String::new();
    let mut one = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = writeln!(
            out,
            "# HELP orbwatch_watch_{name} {help}\n# TYPE orbwatch_watch_{name} {kind}\norbwatch_watch_{name} {v}"
        );
    };
    one(
        "records_total",
        "counter",
        "Records taken from the sources.",
        s.records as f64,
    );
    one(
        "parsed_total",
        "counter",
        "Records decoded.",
        s.parsed as f64,
    );
    one(
        "rejected_total",
        "counter",
        "Records no decoder could read.",
        s.rejected as f64,
    );
    one(
        "matched_records_total",
        "counter",
        "Records that matched an indicator.",
        s.matched_records as f64,
    );
    one(
        "late_total",
        "counter",
        "Behaviour observations older than the watermark (matched, not given to the detectors).",
        s.late as f64,
    );
    one(
        "findings_kept_total",
        "counter",
        "Findings written to the store.",
        daemon.committed_findings as f64,
    );
    one(
        "finding_updates_total",
        "counter",
        "Updates of findings already kept.",
        daemon.committed_updates as f64,
    );
    one(
        "commit_failures_total",
        "counter",
        "Commits to the store that failed and were retried.",
        daemon.commit_failures as f64,
    );
    one(
        "reloads_total",
        "counter",
        "Indicator sets swapped in (SIGHUP or a changed store).",
        s.indicator_reloads as f64,
    );
    one(
        "pending_findings",
        "gauge",
        "Findings waiting to be written to the store.",
        daemon.pending.len() as f64,
    );
    one(
        "queued_records",
        "gauge",
        "Records read and waiting for the pipeline (lag).",
        queued as f64,
    );
    one(
        "reorder_pending",
        "gauge",
        "Observations waiting in the reorder window.",
        s.reorder.pending as f64,
    );
    one(
        "streams",
        "gauge",
        "Streams open: files, senders and exporters being decoded (and a worker's observation streams).",
        s.streams as f64,
    );
    one(
        "open_ioc_sessions",
        "gauge",
        "Indicator sessions open.",
        s.open_ioc_sessions as f64,
    );
    one(
        "ioc_session_bytes",
        "gauge",
        "About the memory the open indicator sessions take (bounded: 128 MiB).",
        s.ioc_session_bytes as f64,
    );
    one(
        "detector_keys",
        "gauge",
        "Keys the behaviour detectors track.",
        s.tracked_keys as f64,
    );
    one(
        "names_kept",
        "gauge",
        "Account and host names kept for the detectors (given back once nothing holds them).",
        s.names_kept as f64,
    );
    one(
        "names_forgotten_total",
        "counter",
        "Account and host names given back once nothing held them.",
        s.names_forgotten as f64,
    );
    one(
        "addresses_kept",
        "gauge",
        "IPv6 addresses kept for the detectors (given back once nothing holds them; IPv4 addresses take no table).",
        s.addresses_kept as f64,
    );
    one(
        "addresses_forgotten_total",
        "counter",
        "IPv6 addresses given back once nothing held them.",
        s.addresses_forgotten as f64,
    );
    one(
        "hourly_sums",
        "gauge",
        "Hourly sums of answered connections and outbound bytes kept until their hour is over.",
        s.hourly_sums as f64,
    );
    one(
        "hourly_sums_left_early_total",
        "counter",
        "Hourly sums handed to the detectors before their hour was over, over 1,048,576 kept at once.",
        s.sums_left_early as f64,
    );
    one(
        "ioc_sessions_closed_early_total",
        "counter",
        "Indicator sessions closed before an hour without sightings, their memory over 128 MiB.",
        s.ioc_sessions_closed_early as f64,
    );
    one(
        "streams_forgotten_total",
        "counter",
        "Streams (senders, connections, files) forgotten before they were idle 10 minutes, over 65,536 at once.",
        s.streams_forgotten as f64,
    );
    one(
        "orb_sources_forgotten_total",
        "counter",
        "Sources whose findings the ORB likelihood no longer remembers, over 100,000 at once.",
        s.orb_sources_forgotten as f64,
    );
    for limit in pipeline.limits_reached() {
        one(
            &format!("{}_total", limit.name),
            "counter",
            limit.help,
            limit.count as f64,
        );
    }
    one(
        "rss_bytes",
        "gauge",
        "Resident memory of the daemon.",
        crate::watch_status::rss_bytes() as f64,
    );
    if let Some(w) = s.watermark {
        let lag = Timestamp::now().duration_since(w).as_secs_f64().max(0.0);
        one(
            "event_lag_seconds",
            "gauge",
            "Wall clock minus the event time the detectors have judged up to.",
            lag,
        );
    }
    type Count = fn(&orbwatch_live::SourceStatsSnapshot) -> u64;
    let per_source: [(&str, &str, Count); 5] = [
        ("source_records_total", "Records a source read.", |x| {
            x.records
        }),
        (
            "source_dropped_total",
            "Records a source dropped because the queue was full.",
            |x| x.dropped_full,
        ),
        (
            "source_kernel_drops_total",
            "Datagrams the kernel dropped before a UDP source read them.",
            |x| x.kernel_drops,
        ),
        (
            "source_malformed_total",
            "Messages a source could not frame.",
            |x| x.malformed,
        ),
        (
            "source_truncated_total",
            "Messages cut to the maximum size.",
            |x| x.truncated,
        ),
    ];
    let snaps: Vec<(String, orbwatch_live::SourceStatsSnapshot)> = sources
        .iter()
        .map(|r| (orbwatch_serve::metrics::label(&r.name), r.stats.snapshot()))
        .collect();
    for (name, help, get) in per_source {
        let _ = writeln!(
            out,
            "# HELP orbwatch_watch_{name} {help}\n# TYPE orbwatch_watch_{name} counter"
        );
        for (source, x) in &snaps {
            let _ = writeln!(
                out,
                "orbwatch_watch_{name}{{source=\"{source}\"}} {}",
                get(x)
            );
        }
    }
    out
}

/// The SIGUSR1 status line.
fn log_status(
    pipeline: &LivePipeline,
    sources: &[RunningSource],
    daemon: &Daemon,
    started: Instant,
    queued: usize,
) {
    let s = pipeline.stats();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let limits: Vec<String> = pipeline
        .limits_reached()
        .iter()
        .map(|l| format!("{} {}", l.name, l.count))
        .collect();
    let per_source: Vec<String> = sources
        .iter()
        .map(|r| {
            let x = r.stats.snapshot();
            format!(
                "{}: {} records, {} dropped (full), {} kernel drops, {} malformed, {} truncated, {} connections, {} refused, {} closed idle",
                r.name,
                x.records,
                x.dropped_full,
                x.kernel_drops,
                x.malformed,
                x.truncated,
                x.connections,
                x.refused,
                x.idle_closed
            )
        })
        .collect();
    tracing::info!(
        target: crate::ASKED_FOR,
        "watch status: {} records ({:.0}/s), {} parsed, {} rejected, {} matched, {} findings kept ({} updates), {} waiting to be kept, {} failed commits, {} queued (lag), {} late, watermark {}, {} open indicator sessions ({} MB, {} closed early), {} detector keys, {} names kept ({} given back), {} IPv6 addresses kept ({} given back), bounds reached: {}, {} hourly sums ({} left early), {} streams ({} forgotten over the cap), RSS {} MB; {}",
        s.records,
        s.records as f64 / secs,
        s.parsed,
        s.rejected,
        s.matched_records,
        daemon.committed_findings,
        daemon.committed_updates,
        daemon.pending.len(),
        daemon.commit_failures,
        queued,
        s.late,
        s.watermark
            .map(|w| w.to_string())
            .unwrap_or_else(|| "-".into()),
        s.open_ioc_sessions,
        s.ioc_session_bytes >> 20,
        s.ioc_sessions_closed_early,
        s.tracked_keys,
        s.names_kept,
        s.names_forgotten,
        s.addresses_kept,
        s.addresses_forgotten,
        limits.join(", "),
        s.hourly_sums,
        s.sums_left_early,
        s.streams,
        s.streams_forgotten,
        crate::watch_status::rss_bytes() / 1_000_000,
        per_source.join("; ")
    );
}
