//! `orbwatch watch` settings: flags for quick use, a TOML file
//! (`--config`, documented in `examples/watch.toml`) for a daemon. A flag
//! given on the command line wins over the file; lists given on the
//! command line replace the file's. Unknown keys in the file are errors,
//! so a misspelt setting never silently falls back to a default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Settings file (TOML; see examples/watch.toml). Flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Follow files as they grow, through rotation (repeatable; a glob
    /// picks up new files).
    #[arg(long = "tail", value_name = "PATH_OR_GLOB")]
    pub tail: Vec<String>,
    /// Files already there at the first start (no stored offset): read
    /// them from the `beginning`, or only what is written from now on
    /// (`end`, the default: a first start on months of logs would alert
    /// and block on old events; `orbwatch hunt` reads the past).
    #[arg(long, value_name = "beginning|end")]
    pub tail_start_at: Option<orbwatch_tail::StartAt>,
    /// Receive syslog over UDP on ADDR (e.g. 0.0.0.0:514). Best effort:
    /// UDP loses messages under load; prefer TCP or TLS.
    #[arg(long = "syslog-udp", value_name = "ADDR")]
    pub syslog_udp: Vec<String>,
    /// Receive syslog over TCP on ADDR (RFC 6587: octet counting or
    /// newline framing).
    #[arg(long = "syslog-tcp", value_name = "ADDR")]
    pub syslog_tcp: Vec<String>,
    /// Receive syslog over TLS on ADDR (needs --tls-cert and --tls-key).
    #[arg(long = "syslog-tls", value_name = "ADDR")]
    pub syslog_tls: Vec<String>,
    /// TLS certificate chain (PEM) for --syslog-tls.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --syslog-tls.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Receive buffer asked for each UDP socket, in bytes (default 8 MiB;
    /// the log says what the kernel granted).
    #[arg(long, value_name = "BYTES")]
    pub udp_recv_buffer: Option<usize>,
    /// Longer syslog messages are cut to this and counted (default 65536).
    #[arg(long, value_name = "BYTES")]
    pub syslog_max_message: Option<usize>,
    /// TCP/TLS connections open at once; more are refused and counted
    /// (default 256).
    #[arg(long, value_name = "N")]
    pub tcp_max_connections: Option<usize>,
    /// Close a TCP/TLS connection silent this long (default 5m).
    #[arg(long, value_name = "DUR")]
    pub tcp_idle_timeout: Option<String>,
    /// Collect NetFlow v5/v9 and IPFIX on ADDR (e.g. 0.0.0.0:2055).
    #[arg(long, value_name = "ADDR")]
    pub netflow: Vec<String>,
    /// Read log lines from standard input (until it ends).
    #[arg(long)]
    pub stdin: bool,
    /// Feed file to match besides the store's feeds (repeatable).
    #[arg(long = "feed", value_name = "FILE")]
    pub feeds: Vec<PathBuf>,
    /// Decoder for followed files and stdin instead of detecting it.
    #[arg(long, value_name = "NAME")]
    pub input_format: Option<String>,
    /// Zone of log times written without one (default: the machine's).
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Year for syslog lines that carry none (default: the year they are
    /// received in; set it to replay an old log through stdin).
    #[arg(long)]
    pub year: Option<i16>,
    /// Internal network (repeatable; default RFC 1918, RFC 4193,
    /// loopback, link-local).
    #[arg(long, value_name = "CIDR")]
    pub internal: Vec<ipnet::IpNet>,
    /// Indicator matches only, no behaviour detectors.
    #[arg(long)]
    pub no_behaviour: bool,
    /// TOML file overriding behaviour thresholds.
    #[arg(long, value_name = "FILE")]
    pub behaviour_config: Option<PathBuf>,
    /// ASN database for enrichment (.mmdb or ip2asn TSV).
    #[arg(long, value_name = "FILE")]
    pub asn_db: Option<PathBuf>,
    /// Country database (.mmdb) for enrichment.
    #[arg(long, value_name = "FILE")]
    pub geo_db: Option<PathBuf>,
    /// How far behind the newest event an event may arrive and still be
    /// put in order for the behaviour detectors (default 1m; also the
    /// delay of live behaviour reports).
    #[arg(long, value_name = "DUR")]
    pub allowed_lateness: Option<String>,
    /// How often findings, offsets and alerts are committed to the store
    /// (default 1s).
    #[arg(long, value_name = "DUR")]
    pub commit_interval: Option<String>,
    /// Write alerts as JSON lines to FILE (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    pub alert_jsonl: Option<String>,
    /// POST every alert as JSON to URL (retried; kept in the store's
    /// outbox until delivered).
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Forward alerts as CEF over syslog to a SIEM: udp://HOST:PORT or
    /// tcp://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub syslog_forward: Option<String>,
    /// Alert only on findings at least this serious (info, low, medium,
    /// high, critical; default medium).
    #[arg(long, value_name = "SEVERITY")]
    pub min_severity: Option<String>,
    /// Alert only on findings with at least this score (0–100).
    #[arg(long, value_name = "N")]
    pub min_score: Option<u8>,
    /// Put the sources of findings into a firewall set:
    /// nftables:FAMILY:TABLE:SET or ipset:NAME (repeatable).
    #[arg(long = "block", value_name = "TARGET")]
    pub block: Vec<String>,
    /// Block only sources of findings with at least this score (default 70).
    #[arg(long, value_name = "N")]
    pub block_min_score: Option<u8>,
    /// How long a blocked address stays in the set (default 1h).
    #[arg(long, value_name = "DUR")]
    pub block_timeout: Option<String>,
    /// Never block what this file lists (addresses or CIDRs, one per
    /// line; repeatable), as for `export blocklist`.
    #[arg(long, value_name = "FILE")]
    pub allowlist: Vec<PathBuf>,
    /// Log what would be blocked; change no firewall.
    #[arg(long)]
    pub dry_run: bool,
    /// Serve the store over HTTP from the daemon, as `orbwatch serve`
    /// does (API, dashboard, EDLs), with the daemon's counters in
    /// /metrics. Loopback only unless --serve-tls-cert or
    /// --insecure-listen.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// `orbwatch serve`'s configuration file (limits, named EDLs).
    #[arg(long, value_name = "FILE")]
    pub serve_config: Option<PathBuf>,
    /// PEM certificate chain for --listen: serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "serve_tls_key")]
    pub serve_tls_cert: Option<PathBuf>,
    /// PEM private key of --serve-tls-cert.
    #[arg(long, value_name = "FILE", requires = "serve_tls_cert")]
    pub serve_tls_key: Option<PathBuf>,
    /// Allow --listen in clear text beyond loopback.
    #[arg(long)]
    pub insecure_listen: bool,
    /// Audit the routers of this inventory (see examples/routers.toml) when
    /// the daemon starts and then every --routers-audit-every, as
    /// `orbwatch routers audit` does.
    #[arg(long, value_name = "FILE")]
    pub routers: Option<PathBuf>,
    /// Time between two audits of the routers (default 24h).
    #[arg(long, value_name = "DUR")]
    pub routers_audit_every: Option<String>,
    /// Also reboot each router inside its reboot window, once per
    /// opening of the window, as `orbwatch routers reboot` does.
    #[arg(long)]
    pub routers_reboot: bool,
}

/// The TOML file. Every section and key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchFile {
    /// The store (as --db / ORBWATCH_DB).
    pub db: Option<PathBuf>,
    #[serde(default)]
    pub sources: SourcesSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub feeds: FeedsSection,
    #[serde(default)]
    pub detect: DetectSection,
    #[serde(default)]
    pub event_time: EventTimeSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub alerts: AlertsSection,
    #[serde(default)]
    pub block: BlockSection,
    #[serde(default)]
    pub serve: ServeSection,
    #[serde(default)]
    pub routers: RoutersSection,
}

/// `[routers]`: audits and reboots of the organisation's own routers run
/// by the daemon (see `watch_routers`).
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RoutersSection {
    /// The router inventory; without it the daemon runs no router job.
    pub inventory: Option<PathBuf>,
    /// Time between two audits (default 24h).
    pub audit_every: Option<String>,
    /// Reboot each router inside its window (default false).
    pub reboot: Option<bool>,
    /// Routers rebooted at the same time (default 1).
    pub max_parallel: Option<usize>,
}

/// `[serve]`: the HTTP server run inside the daemon (`--listen`).
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    pub listen: Option<String>,
    /// `orbwatch serve`'s configuration file.
    pub config: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_listen: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesSection {
    #[serde(default)]
    pub tail: Vec<String>,
    #[serde(default)]
    pub syslog_udp: Vec<String>,
    #[serde(default)]
    pub syslog_tcp: Vec<String>,
    #[serde(default)]
    pub syslog_tls: Vec<String>,
    #[serde(default)]
    pub netflow: Vec<String>,
    #[serde(default)]
    pub stdin: bool,
    /// Files already there at the first start, with no stored offset:
    /// read from their `beginning` or only from their `end` (default).
    pub tail_start_at: Option<orbwatch_tail::StartAt>,
    pub input_format: Option<String>,
    /// Records waiting between the sources and the pipeline.
    pub queue: Option<usize>,
    /// Receive buffer asked for each UDP socket, bytes (default 8 MiB).
    pub udp_recv_buffer: Option<usize>,
    /// Longer syslog messages are cut to this and counted (default 64 KiB).
    pub max_message: Option<usize>,
    /// TCP/TLS connections open at once; more are refused and counted
    /// (default 256).
    pub tcp_max_connections: Option<usize>,
    /// A TCP/TLS connection silent this long is closed (default 5m).
    pub tcp_idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedsSection {
    /// Feed files besides the store's feeds.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// How often the store is checked for changed feeds (default 1s: one
    /// small query, and the check is most of the delay before a new feed
    /// is matched).
    pub reload_check: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectSection {
    pub behaviour: Option<bool>,
    pub behaviour_config: Option<PathBuf>,
    #[serde(default)]
    pub internal: Vec<ipnet::IpNet>,
    pub asn_db: Option<PathBuf>,
    pub geo_db: Option<PathBuf>,
    pub timezone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTimeSection {
    pub allowed_lateness: Option<String>,
    pub max_pending: Option<usize>,
    pub idle_flush: Option<String>,
    pub max_stream_skew: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub commit_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    pub min_severity: Option<String>,
    pub min_score: Option<u8>,
    pub jsonl: Option<String>,
    pub webhook: Option<String>,
    pub syslog_forward: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSection {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub allowlist: Vec<PathBuf>,
    pub min_score: Option<u8>,
    pub timeout: Option<String>,
    pub dry_run: Option<bool>,
}

/// How far behind the newest event an event may arrive and still reach
/// the behaviour detectors in order. A brute force is reported once the
/// watermark passes its threshold-crossing failure, so this is also the
/// delay of a live report: one minute covers syslog relays' batching and
/// NetFlow exporters' usual active timeout (60 s) without holding blocks
/// back for long. Raise it for exporters with longer timeouts.
pub const DEFAULT_LATENESS: Duration = Duration::from_secs(60);

/// Everything `watch` runs with, resolved from flags and file.
#[derive(Debug)]
pub struct WatchSettings {
    pub db: Option<PathBuf>,
    pub tail: Vec<String>,
    pub tail_start_at: orbwatch_tail::StartAt,
    pub syslog_udp: Vec<String>,
    pub syslog_tcp: Vec<String>,
    pub syslog_tls: Vec<String>,
    pub netflow: Vec<String>,
    pub stdin: bool,
    pub queue: usize,
    pub udp_recv_buffer: Option<usize>,
    pub max_message: Option<usize>,
    pub tcp_max_connections: Option<usize>,
    pub tcp_idle_timeout: Option<Duration>,
    pub tls: TlsSection,
    pub feeds: Vec<PathBuf>,
    pub reload_check: Duration,
    pub input_format: Option<String>,
    pub timezone: Option<String>,
    pub internal: Vec<ipnet::IpNet>,
    pub behaviour: bool,
    pub behaviour_config: Option<PathBuf>,
    pub asn_db: Option<PathBuf>,
    pub geo_db: Option<PathBuf>,
    pub allowed_lateness: Duration,
    pub max_pending: usize,
    pub idle_flush: Duration,
    /// How far the slowest sending stream may hold the reorder clock
    /// behind the newest (zero: one clock for all streams).
    pub max_stream_skew: Duration,
    pub commit_interval: Duration,
    pub alerts: AlertsSection,
    pub block: BlockSection,
    /// `None`: no HTTP server in the daemon.
    pub serve: Option<crate::cmd_serve::ServeOptions>,
    /// `None`: no router jobs.
    pub routers: Option<crate::watch_routers::RoutersSettings>,
}

/// A duration setting: `500ms`, `5s`, `5m`, `1h`, `7d`.
fn duration(what: &str, v: &str) -> Result<Duration> {
    if let Some(ms) = v.strip_suffix("ms") {
        let n: u64 = ms
            .trim()
            .parse()
            .with_context(|| format!("{what} = {v:?}: write e.g. 500ms, 5s, 5m or 1h"))?;
        return Ok(Duration::from_millis(n));
    }
    let d = crate::cli_values::parse_dur(v).map_err(|e| anyhow::anyhow!("{what} = {v:?}: {e}"))?;
    Duration::try_from(d).with_context(|| format!("{what} = {v:?} is out of range"))
}

/// Command-line list if given, else the file's.
fn pick<T: Clone>(flag: &[T], file: &[T]) -> Vec<T> {
    if flag.is_empty() {
        file.to_vec()
    } else {
        flag.to_vec()
    }
}

impl WatchSettings {
    /// Resolve flags over the file named by `--config`, if any.
    pub fn resolve(args: &WatchArgs) -> Result<Self> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => WatchFile::default(),
        };
        let s = &file.sources;
        let settings = Self {
            db: file.db.clone(),
            tail: pick(&args.tail, &s.tail),
            tail_start_at: args.tail_start_at.or(s.tail_start_at).unwrap_or_default(),
            syslog_udp: pick(&args.syslog_udp, &s.syslog_udp),
            syslog_tcp: pick(&args.syslog_tcp, &s.syslog_tcp),
            syslog_tls: pick(&args.syslog_tls, &s.syslog_tls),
            netflow: pick(&args.netflow, &s.netflow),
            stdin: args.stdin || s.stdin,
            queue: s.queue.unwrap_or(65_536).max(1),
            udp_recv_buffer: args.udp_recv_buffer.or(s.udp_recv_buffer),
            max_message: args.syslog_max_message.or(s.max_message),
            tcp_max_connections: args.tcp_max_connections.or(s.tcp_max_connections),
            tcp_idle_timeout: match args
                .tcp_idle_timeout
                .as_deref()
                .or(s.tcp_idle_timeout.as_deref())
            {
                Some(v) => Some(duration("tcp_idle_timeout", v)?),
                None => None,
            },
            tls: TlsSection {
                cert: args.tls_cert.clone().or(file.tls.cert.clone()),
                key: args.tls_key.clone().or(file.tls.key.clone()),
                client_ca: args.tls_client_ca.clone().or(file.tls.client_ca.clone()),
            },
            feeds: pick(&args.feeds, &file.feeds.files),
            reload_check: match &file.feeds.reload_check {
                Some(v) => duration("feeds.reload_check", v)?,
                None => Duration::from_secs(1),
            },
            input_format: args
                .input_format
                .clone()
                .or(file.sources.input_format.clone()),
            timezone: args.timezone.clone().or(file.detect.timezone.clone()),
            internal: pick(&args.internal, &file.detect.internal),
            behaviour: !args.no_behaviour && file.detect.behaviour.unwrap_or(true),
            behaviour_config: args
                .behaviour_config
                .clone()
                .or(file.detect.behaviour_config.clone()),
            asn_db: args.asn_db.clone().or(file.detect.asn_db.clone()),
            geo_db: args.geo_db.clone().or(file.detect.geo_db.clone()),
            allowed_lateness: match args
                .allowed_lateness
                .as_deref()
                .or(file.event_time.allowed_lateness.as_deref())
            {
                Some(v) => duration("allowed_lateness", v)?,
                None => DEFAULT_LATENESS,
            },
            max_pending: file.event_time.max_pending.unwrap_or(1_000_000),
            idle_flush: match &file.event_time.idle_flush {
                Some(v) => duration("event_time.idle_flush", v)?,
                // As long as the lateness: when input pauses, what waits is
                // judged after the same delay as while it flows.
                None => Duration::ZERO,
            },
            max_stream_skew: match &file.event_time.max_stream_skew {
                Some(v) => duration("event_time.max_stream_skew", v)?,
                None => Duration::ZERO,
            },
            commit_interval: match args
                .commit_interval
                .as_deref()
                .or(file.store.commit_interval.as_deref())
            {
                Some(v) => duration("commit_interval", v)?,
                None => Duration::from_secs(1),
            },
            alerts: AlertsSection {
                min_severity: args
                    .min_severity
                    .clone()
                    .or(file.alerts.min_severity.clone()),
                min_score: args.min_score.or(file.alerts.min_score),
                jsonl: args.alert_jsonl.clone().or(file.alerts.jsonl.clone()),
                webhook: args.webhook.clone().or(file.alerts.webhook.clone()),
                syslog_forward: args
                    .syslog_forward
                    .clone()
                    .or(file.alerts.syslog_forward.clone()),
            },
            block: BlockSection {
                targets: pick(&args.block, &file.block.targets),
                allowlist: pick(&args.allowlist, &file.block.allowlist),
                min_score: args.block_min_score.or(file.block.min_score),
                timeout: args.block_timeout.clone().or(file.block.timeout.clone()),
                dry_run: Some(args.dry_run || file.block.dry_run.unwrap_or(false)),
            },
            serve: args
                .listen
                .clone()
                .or(file.serve.listen.clone())
                .map(|listen| crate::cmd_serve::ServeOptions {
                    listen: Some(listen),
                    config: args.serve_config.clone().or(file.serve.config.clone()),
                    tls_cert: args.serve_tls_cert.clone().or(file.serve.tls_cert.clone()),
                    tls_key: args.serve_tls_key.clone().or(file.serve.tls_key.clone()),
                    insecure_listen: args.insecure_listen
                        || file.serve.insecure_listen.unwrap_or(false),
                }),
            routers: match args.routers.clone().or(file.routers.inventory.clone()) {
                None => None,
                Some(inventory) => {
                    let audit_every = match args
                        .routers_audit_every
                        .as_deref()
                        .or(file.routers.audit_every.as_deref())
                    {
                        Some(v) => duration("routers.audit_every", v)?,
                        None => Duration::from_secs(86_400),
                    };
                    if audit_every < Duration::from_secs(60) {
                        bail!(
                            "routers.audit_every must be at least 1m: each audit opens an SSH session on every router"
                        );
                    }
                    Some(crate::watch_routers::RoutersSettings {
                        inventory,
                        audit_every,
                        reboot: args.routers_reboot || file.routers.reboot.unwrap_or(false),
                        max_parallel: file.routers.max_parallel.unwrap_or(1).max(1),
                    })
                }
            },
        };
        if let Some(s) = &settings.serve
            && s.tls_cert.is_some() != s.tls_key.is_some()
        {
            bail!("[serve] needs both tls_cert and tls_key, or neither");
        }
        let mut settings = settings;
        if settings.idle_flush.is_zero() {
            settings.idle_flush = settings.allowed_lateness.max(Duration::from_secs(1));
        }
        if settings.commit_interval.is_zero() {
            bail!("commit_interval must be more than 0 (e.g. 1s)");
        }
        if !settings.has_source() {
            bail!(
                "nothing to watch: give --tail PATH, --syslog-udp ADDR, --syslog-tcp ADDR, --syslog-tls ADDR, --netflow ADDR or --stdin (or [sources] in --config)"
            );
        }
        if !settings.syslog_tls.is_empty()
            && (settings.tls.cert.is_none() || settings.tls.key.is_none())
        {
            bail!("--syslog-tls needs --tls-cert FILE and --tls-key FILE (or [tls] cert and key)");
        }
        Ok(settings)
    }

    fn has_source(&self) -> bool {
        !(self.tail.is_empty()
            && self.syslog_udp.is_empty()
            && self.syslog_tcp.is_empty()
            && self.syslog_tls.is_empty()
            && self.netflow.is_empty())
            || self.stdin
    }
}

/// Read and check the settings file; errors name the file and the key.
pub fn read_file(path: &Path) -> Result<WatchFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the watch settings {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {} (see examples/watch.toml for every setting)",
            path.display(),
            e.to_string().trim_end()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `watch` flags as the command line gives them.
    fn args(argv: &[&str]) -> WatchArgs {
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            watch: WatchArgs,
        }
        <Cmd as clap::Parser>::parse_from(std::iter::once("watch").chain(argv.iter().copied()))
            .watch
    }

    #[test]
    fn serve_settings_come_from_the_file_and_flags_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("w.toml");
        std::fs::write(
            &cfg,
            "[sources]\nstdin = true\n[serve]\nlisten = \"127.0.0.1:9000\"\nconfig = \"/etc/orbwatch/serve.toml\"\n",
        )
        .expect("write");
        let c = cfg.to_str().expect("utf-8");
        let s = WatchSettings::resolve(&args(&["--config", c])).expect("settings");
        let serve = s.serve.expect("a server");
        assert_eq!(serve.listen.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(
            serve.config,
            Some(PathBuf::from("/etc/orbwatch/serve.toml"))
        );
        assert!(!serve.insecure_listen);
        let s = WatchSettings::resolve(&args(&["--config", c, "--listen", "[::1]:0"]))
            .expect("settings");
        assert_eq!(s.serve.and_then(|x| x.listen).as_deref(), Some("[::1]:0"));
        // No listen anywhere: no server.
        let s = WatchSettings::resolve(&args(&["--stdin"])).expect("settings");
        assert!(s.serve.is_none());
        // Half a TLS set-up is refused.
        std::fs::write(
            &cfg,
            "[sources]\nstdin = true\n[serve]\nlisten = \"0.0.0.0:8440\"\ntls_cert = \"c.pem\"\n",
        )
        .expect("write");
        let err = WatchSettings::resolve(&args(&["--config", c]))
            .expect_err("refused")
            .to_string();
        assert!(err.contains("tls_cert and tls_key"), "{err}");
    }

    #[test]
    fn router_jobs_come_from_the_file_and_flags_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("w.toml");
        std::fs::write(
            &cfg,
            "[sources]\nstdin = true\n[routers]\ninventory = \"/etc/orbwatch/routers.toml\"\naudit_every = \"6h\"\nmax_parallel = 2\n",
        )
        .expect("write");
        let c = cfg.to_str().expect("utf-8");
        let r = WatchSettings::resolve(&args(&["--config", c]))
            .expect("settings")
            .routers
            .expect("router jobs");
        assert_eq!(r.inventory, PathBuf::from("/etc/orbwatch/routers.toml"));
        assert_eq!(r.audit_every, Duration::from_secs(6 * 3600));
        assert_eq!(r.max_parallel, 2);
        assert!(!r.reboot, "reboots only when asked");
        let r = WatchSettings::resolve(&args(&[
            "--config",
            c,
            "--routers",
            "lab.toml",
            "--routers-reboot",
            "--routers-audit-every",
            "30m",
        ]))
        .expect("settings")
        .routers
        .expect("router jobs");
        assert_eq!(r.inventory, PathBuf::from("lab.toml"));
        assert_eq!(r.audit_every, Duration::from_secs(1800));
        assert!(r.reboot);
        // No inventory anywhere: no router jobs; an audit every few
        // seconds is refused.
        let s = WatchSettings::resolve(&args(&["--stdin"])).expect("settings");
        assert!(s.routers.is_none());
        let err = WatchSettings::resolve(&args(&[
            "--stdin",
            "--routers",
            "r.toml",
            "--routers-audit-every",
            "10s",
        ]))
        .expect_err("refused")
        .to_string();
        assert!(err.contains("at least 1m"), "{err}");
    }

    #[test]
    fn the_example_file_is_valid_and_unknown_keys_are_refused() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/watch.toml");
        let f = read_file(&example).expect("examples/watch.toml reads");
        assert!(!f.sources.tail.is_empty());
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[sources]\ntial = [\"/var/log/auth.log\"]\n").expect("write");
        let err = read_file(&bad)
            .expect_err("unknown key refused")
            .to_string();
        assert!(err.contains("tial") && err.contains("bad.toml"), "{err}");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(
            duration("x", "500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(duration("x", "5m").ok(), Some(Duration::from_secs(300)));
        assert_eq!(duration("x", "1h").ok(), Some(Duration::from_secs(3600)));
        assert!(duration("x", "-5m").is_err());
        assert!(duration("x", "soon").is_err());
    }
}
