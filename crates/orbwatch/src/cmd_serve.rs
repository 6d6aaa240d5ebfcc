//! `orbwatch serve`: wiring of orbwatch-serve (flags, configuration file,
//! store, runtime, signals). Everything else lives in that crate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use orbwatch_serve::{AppState, ServeConfig};

use crate::Cli;

/// The address when neither --listen nor the configuration gives one.
const DEFAULT_LISTEN: &str = "127.0.0.1:8440";

/// Arguments of `orbwatch serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on (default 127.0.0.1:8440; port 0 picks
    /// a free one). Without --tls-cert/--tls-key only loopback is accepted.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Configuration file (TOML: limits and the named EDLs; see
    /// examples/serve.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PEM certificate chain (server certificate first): serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow a clear-text listener beyond loopback (only on a trusted
    /// network, or behind a TLS-terminating proxy on the same host).
    #[arg(long)]
    pub insecure_listen: bool,
    /// Keep the findings that `orbwatch worker`s write to this Kafka topic
    /// in the store (every partition, from where the store left off; no
    /// consumer group: every store gets every finding).
    #[arg(long, value_name = "TOPIC")]
    pub findings_topic: Option<String>,
    /// Kafka brokers of --findings-topic, HOST:PORT,...
    #[arg(long, value_name = "HOST:PORT,...")]
    pub brokers: Option<String>,
    /// A librdkafka property for --findings-topic, `key=value`
    /// (repeatable).
    #[arg(short = 'X', long = "kafka-config")]
    pub kafka_config: Vec<String>,
}

/// Where and how to serve: `serve`'s flags, or `watch`'s `--listen`
/// and `--serve-*` flags.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub listen: Option<String>,
    pub config: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_listen: bool,
}

impl From<&ServeArgs> for ServeOptions {
    fn from(a: &ServeArgs) -> Self {
        ServeOptions {
            listen: a.listen.clone(),
            config: a.config.clone(),
            tls_cert: a.tls_cert.clone(),
            tls_key: a.tls_key.clone(),
            insecure_listen: a.insecure_listen,
        }
    }
}

/// A server checked and bound, ready to run.
struct Prepared {
    listener: std::net::TcpListener,
    tls: Option<std::sync::Arc<orbwatch_serve::TlsServerConfig>>,
    state: AppState,
    path: PathBuf,
    /// The configuration's `[findings_topic]`.
    findings_topic: Option<orbwatch_serve::config::FindingsTopic>,
}

/// Check the options, open the store and bind the address, so that every
/// mistake (a bad address, clear text beyond loopback, a bad certificate,
/// a port in use) stops the start with its reason. `db` is the store when
/// the caller has one (`watch`); otherwise the configuration's or the
/// usual one.
fn prepare(cli: &Cli, opts: &ServeOptions, db: Option<&std::path::Path>) -> Result<Prepared> {
    let config = match &opts.config {
        Some(p) => ServeConfig::load(p)?,
        None => ServeConfig::default(),
    };
    let listen = opts
        .listen
        .clone()
        .or_else(|| config.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let addr: SocketAddr = listen.parse().with_context(|| {
        format!("--listen {listen:?} is not an address and port; write e.g. 127.0.0.1:8440 or [::1]:8440")
    })?;
    let tls = match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => Some(orbwatch_serve::tls_config(cert, key)?),
        _ => None,
    };
    orbwatch_serve::check_listen(addr, tls.is_some(), opts.insecure_listen)?;
    let path = match (db, &cli.db, &config.db) {
        (Some(p), _, _) => p.to_path_buf(),
        (None, None, Some(p)) => p.clone(),
        _ => crate::db_path::resolve(cli)?,
    };
    let store = orbwatch_store::Store::open(&path)
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    if store.tokens()?.iter().all(|t| t.revoked.is_some()) && !cli.quiet {
        eprintln!(
            "orbwatch: warning: the store {} has no live token, so every request but /healthz will be refused; `orbwatch token create --name NAME --scope read` makes one",
            path.display()
        );
    }
    let findings_topic = config.findings_topic.clone();
    let mut state = AppState::new(store, config)?;
    if tls.is_some() {
        state = state.with_tls();
    }
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr}; is another program using it?"))?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listening socket non-blocking")?;
    Ok(Prepared {
        listener,
        tls,
        state,
        path,
        findings_topic,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("cannot start the async runtime")
}

/// Serve `p` until `stop` completes.
async fn serve_until(
    cli_quiet: bool,
    p: Prepared,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(p.listener)
        .context("cannot hand the listening socket to the async runtime")?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let scheme = if p.tls.is_some() { "https" } else { "http" };
    if !cli_quiet {
        eprintln!(
            "orbwatch: serving {} on {scheme}://{bound}",
            p.path.display()
        );
    }
    match p.tls {
        Some(tls) => orbwatch_serve::serve_tls(listener, p.state, tls, stop).await,
        None => orbwatch_serve::serve(listener, p.state, stop).await,
    }
    .context("the server stopped on an error")
}

/// Run the server until ctrl-c or SIGTERM (with `--findings-topic`, the
/// findings intake beside it: it stops with the server, after keeping
/// what it read).
pub fn run(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    let prepared = prepare(cli, &ServeOptions::from(args), None)?;
    let intake = match intake_settings(args, &prepared)? {
        Some(settings) => Some(crate::findings_intake::FindingsIntake::spawn(settings)?),
        None => None,
    };
    let ended = intake.as_ref().map(|i| i.ended());
    let stop = async move {
        let intake_ended = async {
            loop {
                match &ended {
                    Some(e) if e.load(std::sync::atomic::Ordering::Relaxed) => break,
                    _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                }
            }
        };
        tokio::select! {
            _ = orbwatch_serve::shutdown_signal() => {}
            _ = intake_ended => {
                tracing::error!("serve: the findings intake stopped; stopping the server so that its supervisor starts it again");
            }
        }
    };
    let served = runtime()?.block_on(serve_until(cli.quiet, prepared, stop));
    if let Some(intake) = intake {
        let stats = std::sync::Arc::clone(&intake.stats);
        let stopped = intake.stop();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        if !cli.quiet {
            eprintln!(
                "orbwatch: findings topic: {} messages read, {} finding states kept in {} commits, {} malformed skipped, {} commits retried",
                load(&stats.messages),
                load(&stats.findings_kept),
                load(&stats.commits),
                load(&stats.malformed),
                load(&stats.failed_commits)
            );
        }
        stopped?;
    }
    served?;
    if !cli.quiet {
        eprintln!("orbwatch: stopped");
    }
    Ok(ExitCode::SUCCESS)
}

/// `--findings-topic` and `--brokers` (with `-X`), else the
/// configuration's `[findings_topic]`; `None`: no intake.
fn intake_settings(
    args: &ServeArgs,
    p: &Prepared,
) -> Result<Option<crate::findings_intake::IntakeSettings>> {
    let from_config = p.findings_topic.as_ref();
    let topic = args
        .findings_topic
        .clone()
        .or_else(|| from_config.map(|c| c.topic.clone()));
    let Some(topic) = topic else {
        anyhow::ensure!(
            args.brokers.is_none() && args.kafka_config.is_empty(),
            "--brokers and -X are for --findings-topic TOPIC, which is not given (nor [findings_topic] in the configuration)"
        );
        return Ok(None);
    };
    let brokers = args
        .brokers
        .clone()
        .or_else(|| from_config.map(|c| c.brokers.clone()))
        .context("--findings-topic needs --brokers HOST:PORT (or brokers in [findings_topic])")?;
    let mut extra: Vec<(String, String)> = from_config
        .map(|c| c.kafka.clone().into_iter().collect())
        .unwrap_or_default();
    extra.extend(crate::cmd_worker::parse_kafka_config(&args.kafka_config)?);
    Ok(Some(crate::findings_intake::IntakeSettings {
        brokers,
        topic,
        extra,
        db: p.path.clone(),
    }))
}

/// A server running on its own thread beside a daemon (`watch --listen`).
pub struct RunningServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl RunningServer {
    /// Finish the requests under way and stop.
    pub fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => {
                anyhow::bail!("the HTTP server thread panicked (a bug: please report it)")
            }
            None => Ok(()),
        }
    }

    /// The server stopped on its own (an error); its result.
    pub fn failed(&mut self) -> Option<anyhow::Error> {
        if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            return match self.thread.take().map(|t| t.join()) {
                Some(Ok(Err(e))) => Some(e),
                Some(Ok(Ok(()))) => Some(anyhow::anyhow!("the HTTP server stopped")),
                Some(Err(_)) => Some(anyhow::anyhow!("the HTTP server thread panicked")),
                None => None,
            };
        }
        None
    }
}

/// Start serving the store `db` on a thread of its own, with a daemon's
/// counters appended to `/metrics`. Errors of the set-up (address, TLS,
/// port in use) are returned here, before the daemon goes on.
pub fn start(
    cli: &Cli,
    opts: &ServeOptions,
    db: &std::path::Path,
    live: std::sync::Arc<orbwatch_serve::metrics::LiveMetrics>,
) -> Result<RunningServer> {
    let mut prepared = prepare(cli, opts, Some(db))?;
    prepared.state = prepared.state.with_live_metrics(live);
    let rt = runtime()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let quiet = cli.quiet;
    let thread = std::thread::Builder::new()
        .name("orbwatch-serve".into())
        .spawn(move || {
            rt.block_on(serve_until(quiet, prepared, async move {
                let _ = rx.await;
            }))
        })
        .context("cannot start the HTTP server thread")?;
    Ok(RunningServer {
        stop: Some(tx),
        thread: Some(thread),
    })
}
