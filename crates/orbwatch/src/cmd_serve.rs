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
    /// a free one). Without TLS only loopback is accepted.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Configuration file (TOML: limits and the named EDLs; see
    /// examples/serve.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Allow a clear-text listener beyond loopback (only on a trusted
    /// network, or behind a TLS-terminating proxy on the same host).
    #[arg(long)]
    pub insecure_listen: bool,
}

/// Run the server until ctrl-c or SIGTERM.
pub fn run(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    let config = match &args.config {
        Some(p) => ServeConfig::load(p)?,
        None => ServeConfig::default(),
    };
    let listen = args
        .listen
        .clone()
        .or_else(|| config.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let addr: SocketAddr = listen.parse().with_context(|| {
        format!("--listen {listen:?} is not an address and port; write e.g. 127.0.0.1:8440 or [::1]:8440")
    })?;
    orbwatch_serve::check_listen(addr, false, args.insecure_listen)?;
    let path = match (&cli.db, &config.db) {
        (None, Some(p)) => p.clone(),
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
    let state = AppState::new(store, config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}; is another program using it?"))?;
        let bound = listener
            .local_addr()
            .context("cannot read the bound address")?;
        if !cli.quiet {
            eprintln!("orbwatch: serving {} on http://{bound}", path.display());
        }
        orbwatch_serve::serve(listener, state, orbwatch_serve::shutdown_signal())
            .await
            .context("the server stopped on an error")
    })?;
    if !cli.quiet {
        eprintln!("orbwatch: stopped");
    }
    Ok(ExitCode::SUCCESS)
}
