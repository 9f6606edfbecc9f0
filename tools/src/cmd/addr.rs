//! `anoncap addr` (being written).

use std::process::ExitCode;

/// Flags of `anoncap addr`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `anoncap addr`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("anoncap addr is not available in this build yet")
}
