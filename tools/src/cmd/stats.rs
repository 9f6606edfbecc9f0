//! `anoncap stats` (being written).

use std::process::ExitCode;

/// Flags of `anoncap stats`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `anoncap stats`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("anoncap stats is not available in this build yet")
}
