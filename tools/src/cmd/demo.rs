//! `anoncap demo` (being written).

use std::process::ExitCode;

/// Flags of `anoncap demo`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `anoncap demo`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("anoncap demo is not available in this build yet")
}
