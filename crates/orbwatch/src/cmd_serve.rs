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
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(orbwatch_serve::tls_config(cert, key)?),
        _ => None,
    };
    orbwatch_serve::check_listen(addr, tls.is_some(), args.insecure_listen)?;
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
    let mut state = AppState::new(store, config)?;
    if tls.is_some() {
        state = state.with_tls();
    }
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
        let scheme = if tls.is_some() { "https" } else { "http" };
        if !cli.quiet {
            eprintln!("orbwatch: serving {} on {scheme}://{bound}", path.display());
        }
        let stop = orbwatch_serve::shutdown_signal();
        match tls {
            Some(tls) => orbwatch_serve::serve_tls(listener, state, tls, stop).await,
            None => orbwatch_serve::serve(listener, state, stop).await,
        }
        .context("the server stopped on an error")
    })?;
    if !cli.quiet {
        eprintln!("orbwatch: stopped");
    }
    Ok(ExitCode::SUCCESS)
}
