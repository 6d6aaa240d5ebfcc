//! The `orbwatch` command: CLI, configuration, progress and wiring of the
//! library crates. Each subcommand lives in its own `cmd_*.rs` file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc, not glibc's malloc: `watch` decodes syslog on each
/// connection's thread and frees the events on the pipeline's, and glibc
/// handles memory freed by another thread than the one that took it
/// badly (the connection thread then spent 30 % of its time in
/// `_int_malloc`, and `watch` fell from 320,000 to 170,000 msg/s).
/// jemalloc returns such memory through per-thread caches: `watch` runs
/// 8 % faster on it alone, a hunt as fast, for 20 to 60 MB more peak RSS
/// (bench/README.md, "The allocator").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts (its `malloc_conf`, under
/// the prefix the crate builds it with; `_RJEM_MALLOC_CONF` in the
/// environment still overrides them). A background thread gives freed
/// pages back to the kernel after a second (`dirty_decay_ms`), in every
/// arena. Without it, an arena purges only when its own threads allocate
/// again, and a hunt's sweep threads stop before the replay: what they
/// freed stayed resident through it. Measured in one run (bench/README.md,
/// session 30): the 1 GB and 3 GB bench hunts peaked at 630-654 and
/// 677-693 MB without, 548-563 and 606-640 MB with, in the same time;
/// `watch` took 2,000,000 messages at 569,000-605,000 msg/s without and
/// 594,000-622,000 with, 15 MB smaller.
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 60] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

mod cli_values;
mod closed_pipe;
mod cmd_export;
mod cmd_feed;
mod cmd_feed_publish;
mod cmd_feed_subscribe;
mod cmd_findings;
mod cmd_hunt;
mod cmd_hunts;
mod cmd_report;
mod cmd_routers;
mod cmd_serve;
mod cmd_token;
mod cmd_triage;
mod cmd_watch;
mod cmd_worker;
mod coverage_summary;
mod db_path;
mod feed_input;
mod feed_reload;
mod feed_topic;
mod findings_intake;
mod hunt_store;
mod indicator_sources;
mod output_file;
mod partition_rebuild;
mod progress;
mod rehunt;
mod table;
mod watch_config;
mod watch_routers;
mod watch_status;
mod worker_tasks;

/// Hunt relay-router (ORB) networks in logs, captures and flows.
#[derive(Parser, Debug)]
#[command(name = "orbwatch", version, about, long_about = None)]
pub struct Cli {
    /// The store (SQLite). Default: $XDG_DATA_HOME/orbwatch/orbwatch.db;
    /// ORBWATCH_DB overrides it.
    #[arg(long, global = true, env = "ORBWATCH_DB")]
    pub db: Option<PathBuf>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage threat-intel feeds in the store.
    #[command(subcommand)]
    Feed(cmd_feed::FeedCommand),
    /// Sweep logs for indicators, aware of time and direction.
    Hunt(Box<cmd_hunt::HuntArgs>),
    /// Export blocklists for firewalls and IDS.
    #[command(subcommand)]
    Export(cmd_export::ExportCommand),
    /// Record a triage decision on a finding (or show its history).
    Triage(cmd_triage::TriageArgs),
    /// List and filter the findings kept in the store.
    Findings(cmd_findings::FindingsArgs),
    /// Write reports: HTML, STIX 2.1, MISP sightings or event, CSV.
    Report(Box<cmd_report::ReportArgs>),
    /// List the hunts kept in the store.
    Hunts(cmd_hunts::HuntsArgs),
    /// Serve the store over HTTP: JSON API, EDLs for firewalls, Prometheus
    /// metrics; every route but /healthz needs a token.
    Serve(cmd_serve::ServeArgs),
    /// Create, list and revoke the API tokens of `orbwatch serve`.
    #[command(subcommand)]
    Token(cmd_token::TokenCommand),
    /// Watch live: follow files, receive syslog and NetFlow, match and
    /// detect as records arrive, keep findings, alert and block.
    Watch(Box<watch_config::WatchArgs>),
    /// One member of a Kafka consumer group: consume raw records, match
    /// and detect as `watch` does, write findings to a topic and/or the
    /// store, commit offsets after their findings are written.
    Worker(Box<cmd_worker::WorkerArgs>),
    /// Audit the organisation's own routers for implants over SSH, and
    /// reboot them safely, verified, on a schedule.
    #[command(subcommand)]
    Routers(cmd_routers::RoutersCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell), e.g. `orbwatch completions bash > /etc/bash_completion.d/orbwatch`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `orbwatch man > orbwatch.1`.
    Man,
}

/// `completions` and `man`: generated from the same definitions as
/// `--help`, so they never drift from the flags.
fn print_generated(cmd: &Command) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    use std::io::Write;
    let mut app = Cli::command();
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut app, "orbwatch", &mut out);
        }
        _ => clap_mangen::Man::new(app).render(&mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The log target of output a person asked for (see `init_logging`).
pub(crate) const ASKED_FOR: &str = "orbwatch::asked";

fn init_logging(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    // What an operator asks for (`watch`'s status line on SIGUSR1) is
    // shown at any verbosity: a daemon runs with the default one, and a
    // signal that printed nothing looked like a daemon that did not
    // answer. `ORBWATCH_LOG`, when set, decides alone.
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORBWATCH_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},{ASKED_FOR}=info"))
    });
    // Colour codes only when a person reads stderr (not in a log file or
    // a pipe), and never with NO_COLOR.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    closed_pipe::install();
    init_logging(&cli);
    let result = std::panic::catch_unwind(|| match &cli.command {
        Command::Feed(cmd) => cmd_feed::run(&cli, cmd),
        Command::Hunt(args) => cmd_hunt::run(&cli, args),
        Command::Export(cmd) => cmd_export::run(&cli, cmd),
        Command::Triage(args) => cmd_triage::run(&cli, args),
        Command::Findings(args) => cmd_findings::run(&cli, args),
        Command::Report(args) => cmd_report::run(&cli, args),
        Command::Hunts(args) => cmd_hunts::run(&cli, args),
        Command::Serve(args) => cmd_serve::run(&cli, args),
        Command::Token(cmd) => cmd_token::run(&cli, cmd),
        Command::Watch(args) => cmd_watch::run(&cli, args),
        Command::Worker(args) => cmd_worker::run(&cli, args),
        Command::Routers(cmd) => cmd_routers::run(&cli, cmd),
        Command::Completions { .. } | Command::Man => print_generated(&cli.command),
    });
    match result {
        Ok(Ok(code)) => code,
        // A closed pipe ends quietly (see closed_pipe).
        Ok(Err(e)) if closed_pipe::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            closed_pipe::note(format_args!("orbwatch: error: {e:#}"));
            ExitCode::from(2)
        }
        Err(_) if closed_pipe::was_closed() => ExitCode::SUCCESS,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
