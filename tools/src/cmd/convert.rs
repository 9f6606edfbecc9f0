//! `anoncap convert` (being written).

use std::process::ExitCode;

/// Flags of `anoncap convert`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `anoncap convert`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("anoncap convert is not available in this build yet")
}
