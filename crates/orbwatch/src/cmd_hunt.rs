//! `orbwatch hunt` (in progress).
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::Cli;

#[derive(Args, Debug)]
pub struct HuntArgs {}

pub fn run(_cli: &Cli, _args: &HuntArgs) -> Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
