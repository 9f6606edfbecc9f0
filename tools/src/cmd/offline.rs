//! `anoncap offline` (being written).

use std::process::ExitCode;

/// Flags of `anoncap offline`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `anoncap offline`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("anoncap offline is not available in this build yet")
}
