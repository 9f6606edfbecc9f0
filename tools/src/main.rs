//! `anoncap`: a capture engine that writes anonymised, header-only ERF traces for research.
//!
//! The binary is thin: each subcommand parses its flags (in `cmd::*`) and calls the libraries.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// anoncap: anonymised, header-only packet traces for research networks.
#[derive(Parser)]
#[command(name = "anoncap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Anonymise existing pcap, pcapng or ERF traces into header-only ERF.
    Offline(cmd::offline::Args),
    /// Convert between ERF, pcap and pcapng.
    Convert(cmd::convert::Args),
    /// Print packets, bytes, time span, losses and a protocol breakdown of traces.
    Stats(cmd::stats::Args),
    /// Anonymise addresses read one per line from standard input.
    Addr(cmd::addr::Args),
    /// Write a new random key file (mode 0600).
    Keygen(cmd::keygen::Args),
    /// Show what a policy does to each address class.
    Policy(cmd::policy::Args),
    /// Capture live from network interfaces (AF_XDP) into anonymised ERF.
    #[cfg(feature = "live")]
    Capture(cmd::capture::Args),
    /// Run a live capture between two network namespaces on a bundled trace.
    #[cfg(feature = "live")]
    Demo(cmd::demo::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ANONCAP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Offline(args) => cmd::offline::run(args),
        Command::Convert(args) => cmd::convert::run(args),
        Command::Stats(args) => cmd::stats::run(args),
        Command::Addr(args) => cmd::addr::run(args),
        Command::Keygen(args) => cmd::keygen::run(args),
        Command::Policy(args) => cmd::policy::run(args),
        #[cfg(feature = "live")]
        Command::Capture(args) => cmd::capture::run(args),
        #[cfg(feature = "live")]
        Command::Demo(args) => cmd::demo::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("anoncap: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// A closed pipe on stdout (e.g. `anoncap addr | head`) ends the program quietly, as ripgrep does.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
