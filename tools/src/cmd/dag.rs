//! The `--dag` part of `anoncap capture`: capture from an Endace DAG card's receive stream
//! instead of AF_XDP sockets, into the same rewriter, anonymiser and writer.
//!
//! `anoncap capture --dag /dev/dag0 [--stream N] --key FILE --out DIR`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use capture::dag::pipeline::{self, run_dag, DagSummary, Ended, Limits};
use capture::dag::{DagDevice, DagStream, StreamOptions, LINKED_LIBRARY};
use capture::offline::FrameProcessor;
use capture::output::{ErfWriter, FullDiskPolicy, OutputTarget, RunInfo};
use capture::rewrite::{RewriteOptions, Rewriter};
use capture::stats::LossCause;

use super::common::{self, KeyArgs, OutputArgs};

/// The DAG flags of `anoncap capture`.
#[derive(clap::Args, Debug, Clone)]
pub struct DagArgs {
    /// Capture from this Endace DAG card (e.g. /dev/dag0) instead of network interfaces.
    #[arg(long, value_name = "DEVICE")]
    pub dag: Option<PathBuf>,
    /// The card's receive stream to read (receive streams are even-numbered: 0, 2, 4...).
    #[arg(long, default_value_t = 0, value_name = "N", requires = "dag")]
    pub stream: u32,
    /// A configuration string passed to dag_configure before capturing (e.g. "slen=1536");
    /// current DAG software configures cards with dagconfig instead.
    #[arg(long, value_name = "PARAMS", requires = "dag")]
    pub dag_config: Option<String>,
}

/// Runs a DAG capture until `stop` is set (the caller wires SIGINT/SIGTERM to it), a limit is
/// reached, or an error. `dag.dag` must be set.
pub fn run(
    dag: &DagArgs,
    key: &KeyArgs,
    output: &OutputArgs,
    stop: &AtomicBool,
    limits: Limits,
) -> anyhow::Result<ExitCode> {
    let device = dag
        .dag
        .as_deref()
        .context("no DAG device given (--dag /dev/dagN)")?;
    // The key is loaded before the card is touched: a missing or unreadable key refuses to
    // start, and nothing is captured without it.
    let (key_material, policy) = key.load()?;
    let mapper = anonymise::Anonymiser::new(&key_material, &policy, key.cache);
    if LINKED_LIBRARY.starts_with("stand-in") {
        eprintln!(
            "anoncap: this build uses the DAG stand-in library, a test double that serves an \
             ERF file and reads no card: {LINKED_LIBRARY}"
        );
    }

    let dev = DagDevice::open(device)?;
    if let Some(params) = &dag.dag_config {
        dev.configure(params)?;
    }
    let mut stream = DagStream::attach(&dev, dag.stream, &StreamOptions::default())?;

    let run = RunInfo {
        sources: vec![format!("{}:{}", device.display(), dag.stream)],
        policy: policy.to_string(),
        key_fingerprint: key_material.fingerprint(),
        interfaces: pipeline::interfaces(device),
        clock_source: pipeline::CLOCK_SOURCE.to_string(),
        ..common::run_info()
    };
    let mut config = output.config(run)?;
    config.on_full_disk = FullDiskPolicy::DropAndResume;
    // A rotation must not stall the writer for the sync of the closed file.
    config.background_close = true;
    if config.run.trace.capture_hardware.is_none() {
        config.run.trace.capture_hardware = Some(format!(
            "Endace DAG card {} stream {} ({LINKED_LIBRARY})",
            device.display(),
            dag.stream
        ));
    }
    if let OutputTarget::Directory { dir, .. } = &config.target {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let writer = ErfWriter::create(config)
        .with_context(|| format!("cannot create output {}", output.out.display()))?;
    let rewriter = Rewriter::new(RewriteOptions {
        anonymise_mac: key.anonymise_mac,
        ..RewriteOptions::default()
    });
    let mut processor = FrameProcessor::new(rewriter, mapper);

    stream.start()?;
    let outcome = run_dag(&mut stream, &mut processor, writer, stop, limits);
    print_summary(&outcome.summary);
    match outcome.error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(anyhow::Error::new(e).context(
            "DAG capture stopped; everything received before the error was written, and the \
             output files are complete",
        )),
    }
}

fn print_summary(s: &DagSummary) {
    let c = &s.counters;
    let why = match s.ended {
        Ended::Stopped => "stopped on request",
        Ended::Limit => "limit reached",
        Ended::EndOfData => "end of the stand-in's data",
        Ended::Error => "stopped by an error",
    };
    eprintln!(
        "DAG: {} records from the card, {} packets ({why})",
        c.records, c.packets
    );
    if c.card_loss > 0 {
        eprintln!(
            "  lost between the card and host memory: {} ({})",
            c.card_loss,
            LossCause::Card.name()
        );
    }
    for (what, n) in [
        (
            "rxerror records not written (link-layer errors)",
            c.rx_error,
        ),
        (
            "dserror records not written (card data-stream errors)",
            c.ds_error,
        ),
        (
            "trunc records written short (card buffer overrun)",
            c.truncated,
        ),
        ("records of other ERF types not written", c.unsupported),
        ("colour records (no loss count)", c.colour),
        ("PAD records", c.pad),
        ("META records from the card", c.meta),
    ] {
        if n > 0 {
            eprintln!("  {what}: {n}");
        }
    }
    if let Some(out) = &s.output {
        let t = &out.totals;
        eprintln!(
            "{} records written ({} bytes), losses {}",
            t.written.packets,
            t.written.bytes_captured,
            t.losses.total()
        );
        for (name, n) in t.cuts.named() {
            eprintln!("  cut short of their headers: {n} ({name})");
        }
        for (name, n) in t.dropped.named() {
            eprintln!("  dropped: {n} ({name})");
        }
        for f in &out.files {
            eprintln!("wrote {}", f.display());
        }
    }
}
