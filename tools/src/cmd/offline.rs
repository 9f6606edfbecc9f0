//! `anoncap offline`: anonymise existing pcap, pcapng or ERF traces into header-only ERF.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use capture::input::Trace;
use capture::offline::{run_offline, FrameProcessor, OfflineSummary};
use capture::output::{ErfWriter, InterfaceInfo, OutputTarget, RunInfo};
use capture::rewrite::{RewriteOptions, Rewriter};
use capture::stats::LossCause;

use super::common::{self, KeyArgs, OutputArgs};

/// Flags of `anoncap offline`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Input traces (pcap, pcapng or ERF, detected by content); several are merged by timestamp.
    #[arg(required = true, value_name = "IN")]
    inputs: Vec<PathBuf>,
}

/// Runs `anoncap offline`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (key, policy) = args.key.load()?;
    let mapper = anonymise::Anonymiser::new(&key, &policy, args.key.cache);

    // Open every input up front, so that a missing or unreadable file stops the run before
    // any output exists, and the metadata can describe the inputs' interfaces.
    let traces = args
        .inputs
        .iter()
        .map(|path| Trace::open(path).with_context(|| format!("cannot read {}", path.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut interfaces: Vec<InterfaceInfo> = Vec::new();
    for trace in &traces {
        let file = trace
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let descs = trace.interfaces();
        for (i, desc) in descs.iter().enumerate() {
            if interfaces.len() == 4 {
                break;
            }
            interfaces.push(InterfaceInfo {
                name: match &desc.name {
                    Some(n) => format!("{file}:{n}"),
                    None if descs.len() == 1 => file.clone(),
                    None => format!("{file}:{i}"),
                },
                fcs_included: desc.fcs_included(),
                snaplen: capture::offline::MAX_HEADER_BYTES as u32,
                speed_bps: None,
            });
        }
    }
    let run = RunInfo {
        sources: args
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        policy: policy.to_string(),
        key_fingerprint: key.fingerprint(),
        interfaces,
        clock_source: "input trace timestamps".to_string(),
        ..common::run_info()
    };
    let config = args.output.config(run)?;
    if let OutputTarget::Directory { dir, .. } = &config.target {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let writer = ErfWriter::create(config)
        .with_context(|| format!("cannot create output {}", args.output.out.display()))?;

    let rewriter = Rewriter::new(RewriteOptions {
        anonymise_mac: args.key.anonymise_mac,
        ..RewriteOptions::default()
    });
    let mut processor = FrameProcessor::new(rewriter, mapper);
    let progress = common::progress_bar();
    let outcome = run_offline(&traces, &mut processor, writer, &mut |n| {
        progress.set_position(n)
    });
    progress.finish_and_clear();
    print_summary(&outcome.summary);
    match outcome.error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(anyhow::Error::new(e).context(
            "stopped early; everything read before the error was written, and the output files are complete",
        )),
    }
}

fn print_summary(s: &OfflineSummary) {
    eprintln!(
        "{} packets in ({} bytes captured, {} on the wire), {} records out ({} bytes)",
        s.packets_in, s.bytes_in, s.wire_bytes_in, s.packets_out, s.bytes_out
    );
    for (name, n) in s.cuts.named() {
        eprintln!("  cut short of their headers: {n} ({name})");
    }
    for (name, n) in s.dropped.named() {
        eprintln!("  dropped: {n} ({name})");
    }
    if s.recorded_losses > 0 {
        eprintln!(
            "  losses recorded in the input: {} ({})",
            s.recorded_losses,
            LossCause::Recorded.name()
        );
    }
    for (what, n) in &s.skipped {
        eprintln!("  skipped: {n} {what}");
    }
    if let Some(out) = &s.output {
        for f in &out.files {
            eprintln!("wrote {}", f.display());
        }
    }
}

/// The output target for `--out`: a file ending in `.erf`, else a directory of rotated files.
pub fn target_for(
    out: &Path,
    rotate_bytes: u64,
    rotate_interval: Option<Duration>,
) -> OutputTarget {
    if out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("erf"))
    {
        OutputTarget::File(out.to_path_buf())
    } else {
        OutputTarget::Directory {
            dir: out.to_path_buf(),
            rotate_bytes,
            rotate_interval,
        }
    }
}
