//! `orbwatch feed …` (in progress).
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::Cli;

#[derive(Subcommand, Debug)]
pub enum FeedCommand {
    /// List the feeds in the store.
    List,
}

pub fn run(_cli: &Cli, _cmd: &FeedCommand) -> Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
