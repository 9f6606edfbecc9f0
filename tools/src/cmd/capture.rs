//! `anoncap capture` (being written).

use std::process::ExitCode;

/// Flags of `anoncap capture`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs `anoncap capture`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("anoncap capture is not available in this build yet")
}
