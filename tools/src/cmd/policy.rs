//! `anoncap policy` (being written).

use std::process::ExitCode;

/// Flags of `anoncap policy`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `anoncap policy`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("anoncap policy is not available in this build yet")
}
