//! `orbwatch feed subscribe | unsubscribe | update | schedule`, and the
//! subscription and history parts of `feed show`. The fetching itself is
//! in `orbwatch-subscribe`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use jiff::{SignedDuration, Timestamp};
use orbwatch_intel::FeedFormat;
use orbwatch_store::Store;
use orbwatch_subscribe::update::is_due;
use orbwatch_subscribe::{
    Credential, HeaderSpec, Source, SubscriptionSpec, SubscriptionState, UpdateOutcome,
};

use crate::Cli;
use crate::cli_values::parse_dur;
use crate::cmd_feed::{open_store, parse_confidence, parse_format, plural, time_text};

/// History windows listed by `feed show` (all of them with --json).
const HISTORY_SHOWN: usize = 20;

#[derive(Args, Debug)]
pub struct SubscribeArgs {
    /// Name of the feed in the store.
    pub name: String,
    /// Where the feed is published: https://HOST/PATH (any format `feed add`
    /// reads), taxii2+https://HOST/API-ROOT/collections/ID/,
    /// misp-feed+https://HOST/PATH/manifest.json or misp+https://HOST.
    pub source: String,
    /// TAXII: SOURCE is a discovery URL (taxii2+https://HOST/taxii2/); use
    /// this collection id of its default API root.
    #[arg(long, value_name = "ID")]
    pub collection: Option<String>,
    /// How often `feed update --due` fetches it (e.g. 6h, 1d).
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_dur)]
    pub every: SignedDuration,
    /// The feed's format, as for `feed add` (HTTP sources only).
    #[arg(long, value_parser = parse_format)]
    pub format: Option<FeedFormat>,
    /// A header for every request, NAME: VALUE. A credential must come from
    /// the environment or a 0600 file: 'Authorization: Bearer ${FEED_TOKEN}'
    /// or 'X-Api-Key: ${file:/etc/orbwatch/key}'.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// Send the token in this environment variable as the Authorization
    /// header (Bearer; MISP: the bare key).
    #[arg(long, value_name = "VAR", conflicts_with = "token_file")]
    pub token_env: Option<String>,
    /// Like --token-env, from a file only its owner can read (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust this CA (PEM) besides the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Largest download accepted (e.g. 256M, 2G); a larger one is cut
    /// there and the update fails, keeping the last version.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub max_size: u64,
    /// Connect and read timeout.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_dur)]
    pub timeout: SignedDuration,
    /// Retries of a failed download (connection errors, 5xx, 429).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// Wait before the first retry, doubled after each.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_dur)]
    pub retry_wait: SignedDuration,
    /// Widening of first/last-seen dates into a validity window.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_dur)]
    pub grace: SignedDuration,
    /// Confidence 0-100 to use instead of the feed's.
    #[arg(long, value_name = "N", value_parser = parse_confidence)]
    pub confidence: Option<u8>,
    /// Entries without dates: their window starts this long before the
    /// version that first listed them.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_dur)]
    pub lookback: SignedDuration,
    /// Entries without dates: their window ends this long after the
    /// version that no longer listed them.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_dur)]
    pub history_grace: SignedDuration,
    /// Entries without dates still listed: their window ends this long
    /// after the latest version (default: open while listed).
    #[arg(long, value_name = "DURATION", value_parser = parse_dur)]
    pub ttl: Option<SignedDuration>,
    /// TAXII: objects per page.
    #[arg(long, value_name = "N")]
    pub page_limit: Option<u32>,
    /// MISP REST: how far back the first fetch goes (MISP's `last`).
    #[arg(long, value_name = "PERIOD", default_value = "30d")]
    pub misp_last: String,
    /// Record the subscription without fetching now.
    #[arg(long)]
    pub no_fetch: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Feeds to update (their names).
    pub names: Vec<String>,
    /// Update every subscribed feed.
    #[arg(long, conflicts_with_all = ["names", "due"])]
    pub all: bool,
    /// Update the subscribed feeds whose interval (--every) has passed.
    #[arg(long, conflicts_with = "names")]
    pub due: bool,
}

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    /// Print a crontab line instead of systemd units.
    #[arg(long)]
    pub cron: bool,
    /// How often the timer runs `feed update --due` (default: the shortest
    /// --every of the subscriptions).
    #[arg(long, value_name = "DURATION", value_parser = parse_dur)]
    pub every: Option<SignedDuration>,
}

/// `256M`, `2G`, `512K`, `1000` (bytes).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'B' => 1,
                _ => 0,
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    match num.trim().parse::<u64>() {
        Ok(n) if mult > 0 && n > 0 => n
            .checked_mul(mult)
            .ok_or_else(|| format!("`{s}` is too large")),
        _ => Err(format!("`{s}` is not a size; write e.g. 256M, 2G or 500K")),
    }
}

/// A duration as people write it: `30d`, `6h`, `15m`, `90s`.
fn dur_text(d: SignedDuration) -> String {
    let s = d.as_secs();
    if s != 0 && s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s != 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s != 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

pub fn subscribe(cli: &Cli, args: &SubscribeArgs) -> Result<ExitCode> {
    let source = match &args.collection {
        None => Some(Source::parse(&args.source)?),
        Some(_) => {
            if !args.source.trim().starts_with("taxii2+") {
                bail!("--collection goes with a TAXII discovery URL: taxii2+https://HOST/taxii2/");
            }
            None
        }
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        headers.push(HeaderSpec::parse(h)?);
    }
    let cred = match (&args.token_env, &args.token_file) {
        (Some(v), _) => Some(Credential::Env(v.clone())),
        (None, Some(p)) => Some(Credential::File(
            std::fs::canonicalize(p).with_context(|| format!("--token-file {}", p.display()))?,
        )),
        _ => None,
    };
    if let Some(c) = cred {
        if headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("authorization"))
        {
            bail!(
                "--token-env/--token-file and --header 'Authorization: …' both set the Authorization header; keep one"
            );
        }
        let bearer = !matches!(source, Some(Source::MispRest { .. }));
        headers.push(HeaderSpec::authorization(&c, bearer));
    }
    let ca_file = args
        .ca_file
        .as_ref()
        .map(|p| std::fs::canonicalize(p).with_context(|| format!("--ca-file {}", p.display())))
        .transpose()?;
    let spec = SubscriptionSpec {
        format: args.format.map(|f| f.as_str().to_string()),
        every: dur_text(args.every),
        headers,
        ca_file,
        max_bytes: args.max_size,
        timeout_secs: u64::try_from(args.timeout.as_secs()).unwrap_or(30).max(1),
        retries: args.retries,
        retry_wait_ms: u64::try_from(args.retry_wait.as_millis()).unwrap_or(2000),
        grace: dur_text(args.grace),
        confidence: args.confidence,
        page_limit: args.page_limit,
        misp_last: Some(args.misp_last.clone()),
    };
    let source = match source {
        Some(s) => s,
        None => {
            let discovery = args.source.trim().trim_start_matches("taxii2+");
            let collection = args.collection.as_deref().unwrap_or_default();
            orbwatch_subscribe::update::resolve_taxii_collection(
                discovery,
                collection,
                &spec,
                &process_env,
            )
            .map_err(anyhow::Error::msg)
            .with_context(|| {
                format!("cannot find TAXII collection {collection} from {discovery}")
            })?
        }
    };
    let name = args.name.trim();
    let mut store = open_store(cli)?;
    if store.subscription(name)?.is_none()
        && let Some(info) = store.feed(name)?
    {
        eprintln!(
            "orbwatch: note: feed `{name}` exists (version {}, from {}); updates add versions to it",
            info.version, info.source_path
        );
    }
    orbwatch_subscribe::subscribe(
        &mut store,
        name,
        &source,
        &spec,
        args.lookback,
        args.history_grace,
        args.ttl,
    )?;
    println!(
        "subscribed `{name}` to {source} ({}, every {})",
        source.kind(),
        spec.every
    );
    if args.no_fetch {
        return Ok(ExitCode::SUCCESS);
    }
    let ok = run_update(&mut store, name)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn unsubscribe(cli: &Cli, name: &str) -> Result<ExitCode> {
    let mut store = open_store(cli)?;
    if !store.remove_subscription(name)? {
        bail!("no subscription named `{name}`; `orbwatch feed list` shows the feeds");
    }
    match store.feed(name)? {
        Some(info) => println!(
            "unsubscribed `{name}`; its {} version{} stay in the store (`orbwatch feed remove {name}` deletes them)",
            info.version,
            plural(u64::try_from(info.version).unwrap_or(0))
        ),
        None => println!("unsubscribed `{name}`"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Update one feed and print what happened. Returns false on failure.
fn run_update(store: &mut Store, name: &str) -> Result<bool> {
    let outcome = orbwatch_subscribe::update(store, name, &process_env)?;
    let mut out = io::stdout().lock();
    match outcome {
        UpdateOutcome::Updated {
            report,
            requests,
            bytes,
            detail,
        } => {
            writeln!(
                out,
                "feed `{name}` version {}: {} indicator{} ({} added, {} removed, {} unchanged); {detail}; {requests} request{}, {bytes} bytes",
                report.version,
                report.loaded,
                plural(report.loaded),
                report.added,
                report.removed,
                report.unchanged,
                plural(u64::from(requests)),
            )?;
            if report.rejected > 0 {
                writeln!(
                    out,
                    "  {} rejected entr{} (`orbwatch feed show {name}` lists them)",
                    report.rejected,
                    if report.rejected == 1 { "y" } else { "ies" }
                )?;
            }
            Ok(true)
        }
        UpdateOutcome::Unchanged { version, detail } => {
            match version {
                Some(v) => writeln!(out, "feed `{name}` unchanged ({detail}); still version {v}")?,
                None => writeln!(out, "feed `{name}`: nothing to load yet ({detail})")?,
            }
            Ok(true)
        }
        UpdateOutcome::Failed {
            error,
            kept_version,
            kept_at,
        } => {
            out.flush()?;
            match (kept_version, kept_at) {
                (Some(v), Some(t)) => eprintln!(
                    "orbwatch: feed `{name}`: update failed: {error}\norbwatch: feed `{name}`: kept version {v} of {}",
                    time_text(t)
                ),
                _ => eprintln!(
                    "orbwatch: feed `{name}`: update failed: {error}\norbwatch: feed `{name}` has no version yet; `orbwatch feed update {name}` tries again"
                ),
            }
            Ok(false)
        }
    }
}

pub fn update(cli: &Cli, args: &UpdateArgs) -> Result<ExitCode> {
    let mut store = open_store(cli)?;
    let names: Vec<String> = if args.all || args.due {
        let now = Timestamp::now();
        let mut v = Vec::new();
        for s in store.subscriptions()? {
            if args.all || is_due(&store, &s.name, now)? {
                v.push(s.name);
            }
        }
        if v.is_empty() && !cli.quiet {
            eprintln!(
                "orbwatch: {}",
                if args.all {
                    "no subscriptions; `orbwatch feed subscribe NAME SOURCE` adds one"
                } else {
                    "no subscription is due"
                }
            );
        }
        v
    } else if args.names.is_empty() {
        bail!(
            "name the feeds to update, or pass --all (every subscription) or --due (those whose interval has passed)"
        );
    } else {
        args.names.clone()
    };
    let mut failed = 0;
    for name in &names {
        if !run_update(&mut store, name)? {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!(
            "orbwatch: {failed} of {} update{} failed; the feeds kept their last good version",
            names.len(),
            plural(names.len() as u64)
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `OnUnitActiveSec=` / cron from a duration.
fn cron_line(every: SignedDuration, command: &str) -> String {
    let mins = (every.as_secs() / 60).max(1);
    let spec = if mins < 60 {
        format!("*/{mins} * * * *")
    } else if mins < 24 * 60 {
        let h = mins / 60;
        if h == 1 {
            "0 * * * *".to_string()
        } else {
            format!("0 */{h} * * *")
        }
    } else {
        "0 3 * * *".to_string()
    };
    format!("{spec} {command}")
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn schedule(cli: &Cli, args: &ScheduleArgs) -> Result<ExitCode> {
    let store = open_store(cli)?;
    let subs = store.subscriptions()?;
    let every = match args.every {
        Some(e) => e,
        None => subs
            .iter()
            .filter_map(|s| {
                serde_json::from_value::<SubscriptionSpec>(s.spec.clone())
                    .ok()
                    .and_then(|sp| orbwatch_intel::time::parse_duration(&sp.every).ok())
            })
            .min()
            .unwrap_or(SignedDuration::from_hours(6)),
    };
    if every.as_secs() < 60 {
        bail!("--every must be at least 1m");
    }
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "orbwatch".into());
    let db = store.path().display().to_string();
    let command = format!(
        "{} --quiet --db {} feed update --due",
        shell_quote(&exe),
        shell_quote(&db)
    );
    let mut out = io::stdout().lock();
    if subs.is_empty() {
        eprintln!(
            "orbwatch: note: no subscriptions yet; the schedule will do nothing until `orbwatch feed subscribe` adds one"
        );
    }
    if args.cron {
        writeln!(
            out,
            "# orbwatch: fetch subscribed feeds (crontab -e, then paste)"
        )?;
        writeln!(out, "{}", cron_line(every, &command))?;
    } else {
        writeln!(
            out,
            "# /etc/systemd/system/orbwatch-feeds.service (or ~/.config/systemd/user/)"
        )?;
        writeln!(
            out,
            "[Unit]\nDescription=orbwatch: fetch subscribed threat-intel feeds\nWants=network-online.target\nAfter=network-online.target\n"
        )?;
        writeln!(out, "[Service]\nType=oneshot\nExecStart={command}")?;
        writeln!(
            out,
            "# Credentials named by --token-env must be set here, e.g.:\n# EnvironmentFile=/etc/orbwatch/feeds.env\n"
        )?;
        writeln!(out, "# /etc/systemd/system/orbwatch-feeds.timer")?;
        writeln!(
            out,
            "[Unit]\nDescription=Run orbwatch-feeds.service every {}\n\n[Timer]\nOnBootSec=5min\nOnUnitActiveSec={}s\nRandomizedDelaySec=60\nPersistent=true\n\n[Install]\nWantedBy=timers.target",
            dur_text(every),
            every.as_secs()
        )?;
        writeln!(
            out,
            "\n# then: systemctl daemon-reload && systemctl enable --now orbwatch-feeds.timer"
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn state_of(row: &orbwatch_store::SubscriptionRow) -> SubscriptionState {
    serde_json::from_value(row.state.clone()).unwrap_or_default()
}

/// The subscription and history lines of `feed show`.
pub fn show_text(store: &Store, name: &str, out: &mut dyn Write) -> Result<()> {
    let Some(row) = store.subscription(name)? else {
        return Ok(());
    };
    let state = state_of(&row);
    let spec: Option<SubscriptionSpec> = serde_json::from_value(row.spec.clone()).ok();
    writeln!(
        out,
        "  subscribed  {} (every {})",
        row.source,
        spec.as_ref().map_or("?", |s| s.every.as_str())
    )?;
    let when = |t: Option<Timestamp>| t.map_or_else(|| "never".to_string(), time_text);
    writeln!(
        out,
        "  fetched     last attempt {}, last success {}; {} update{}, {} unchanged, {} failed",
        when(state.last_attempt),
        when(state.last_success),
        state.updates,
        plural(state.updates),
        state.unchanged,
        state.failures
    )?;
    if let Some(e) = &state.last_error {
        writeln!(out, "  last error  {e}")?;
    }
    if let Some(windows) = store.history_windows(name)? {
        let ttl = row.ttl.map_or_else(
            || "open while listed".to_string(),
            |t| format!("{} after the latest version", dur_text(t)),
        );
        writeln!(
            out,
            "history windows ({} undated value{}: first listed - {} … removed + {}; still listed: {ttl})",
            windows.len(),
            plural(windows.len() as u64),
            dur_text(row.lookback),
            dur_text(row.grace)
        )?;
        let bound = |t: Option<Timestamp>| t.map_or_else(|| "open".to_string(), time_text);
        for w in windows.iter().take(HISTORY_SHOWN) {
            writeln!(
                out,
                "  {:<40} listed {} … {}  window {} … {}",
                w.value,
                time_text(w.first_listed),
                w.removed_at.map_or_else(|| "now".to_string(), time_text),
                bound(w.valid_from),
                bound(w.valid_until)
            )?;
        }
        if windows.len() > HISTORY_SHOWN {
            writeln!(
                out,
                "  … {} more (`orbwatch feed show {name} --json` lists all)",
                windows.len() - HISTORY_SHOWN
            )?;
        }
    }
    Ok(())
}

/// The subscription and history parts of `feed show --json`.
pub fn show_json(
    store: &Store,
    name: &str,
    o: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let Some(row) = store.subscription(name)? else {
        return Ok(());
    };
    o.insert(
        "subscription".into(),
        serde_json::json!({
            "source": row.source,
            "spec": row.spec,
            "state": row.state,
            "lookback": dur_text(row.lookback),
            "history_grace": dur_text(row.grace),
            "ttl": row.ttl.map(dur_text),
        }),
    );
    if let Some(w) = store.history_windows(name)? {
        o.insert("history_windows".into(), serde_json::to_value(&w)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        for bad in ["", "0", "M", "12X", "-1", "99999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron_lines() {
        assert_eq!(
            cron_line(SignedDuration::from_hours(6), "x"),
            "0 */6 * * * x"
        );
        assert_eq!(
            cron_line(SignedDuration::from_mins(15), "x"),
            "*/15 * * * * x"
        );
        assert_eq!(cron_line(SignedDuration::from_hours(1), "x"), "0 * * * * x");
        assert_eq!(
            cron_line(SignedDuration::from_hours(48), "x"),
            "0 3 * * * x"
        );
    }
}
