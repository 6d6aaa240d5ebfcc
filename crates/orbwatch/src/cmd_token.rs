//! `orbwatch token`: the API tokens that `orbwatch serve` accepts.
//!
//! `token create` prints the token once, on stdout (so that it can be
//! piped into a secret store); the store keeps only its SHA-256.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use orbwatch_store::{Store, TokenScope};

use crate::Cli;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it once (it cannot be shown again).
    Create {
        /// A name that says who or what uses the token (unique).
        #[arg(long)]
        name: String,
        /// read (findings, hunts, feeds, blocklists, EDL, metrics), triage
        /// (read and record triage decisions) or admin (everything).
        #[arg(long, value_parser = ["read", "triage", "admin"])]
        scope: String,
    },
    /// List the tokens (names, scopes, dates; never the secrets).
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name; `serve` refuses it from its next request.
    Revoke {
        /// The token's name as `token list` shows it.
        name: String,
    },
}

fn open(cli: &Cli) -> Result<Store> {
    let path = crate::db_path::resolve(cli)?;
    Store::open(&path).with_context(|| format!("cannot open the store {}", path.display()))
}

/// Run a `token` subcommand.
pub fn run(cli: &Cli, cmd: &TokenCommand) -> Result<ExitCode> {
    match cmd {
        TokenCommand::Create { name, scope } => {
            let scope = TokenScope::parse(scope)
                .with_context(|| format!("--scope {scope:?}: use read, triage or admin"))?;
            let mut store = open(cli)?;
            let (info, token) = store.create_token(name, scope)?;
            println!("{token}");
            if !cli.quiet {
                eprintln!(
                    "orbwatch: token `{}` ({}) created; it is printed once and cannot be shown again — send it as `Authorization: Bearer TOKEN`",
                    info.name, info.scope
                );
            }
        }
        TokenCommand::List { json } => {
            let store = open(cli)?;
            let tokens = store.tokens()?;
            if *json || !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                for t in &tokens {
                    println!("{}", serde_json::to_string(t)?);
                }
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.scope.to_string(),
                            t.created.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                            t.revoked
                                .map(|r| r.strftime("%Y-%m-%d %H:%M:%S").to_string())
                                .unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                let mut out = std::io::stdout().lock();
                crate::table::write(
                    &mut out,
                    crate::table::Dest::Stdout,
                    &["name", "scope", "created", "revoked"],
                    &rows,
                    None,
                )?;
            }
            if tokens.is_empty() && !cli.quiet {
                eprintln!(
                    "orbwatch: no tokens yet; `orbwatch token create --name N --scope read` makes one"
                );
            }
        }
        TokenCommand::Revoke { name } => {
            let mut store = open(cli)?;
            if store.revoke_token(name)? {
                if !cli.quiet {
                    eprintln!("orbwatch: token `{name}` revoked");
                }
            } else if !cli.quiet {
                eprintln!("orbwatch: token `{name}` was revoked already");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
