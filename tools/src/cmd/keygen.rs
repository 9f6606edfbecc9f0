//! `anoncap keygen` (being written).

use std::process::ExitCode;

/// Flags of `anoncap keygen`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `anoncap keygen`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("anoncap keygen is not available in this build yet")
}
