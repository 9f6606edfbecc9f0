//! The whole DAG pipeline against the stand-in library: the card's records go through the same
//! per-frame step and writer as the offline pipeline, so the output records equal the offline
//! pipeline's on the same records, with the card's losses counted once under `dropped-by-card`,
//! through buffer wrap-arounds, with the card's clock and FCS convention in the metadata.
#![cfg(feature = "dag")]

mod dag_support;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anonymise::AddressMapper;
use capture::dag::pipeline::{self, run_dag, Ended, Limits};
use capture::dag::{DagDevice, DagStream, PollParams, StreamOptions};
use capture::input::Trace;
use capture::offline::{run_offline, FrameProcessor};
use capture::output::{ErfWriter, OutputConfig, OutputSummary, OutputTarget, RunInfo};
use capture::rewrite::{RewriteOptions, Rewriter};
use capture::stats::LossCause;
use dag_support::{trace, walk, RefRecord, Standin};

/// A mapper that is easy to tell from the identity (and not the code under test).
struct Flip;

impl AddressMapper for Flip {
    fn map_ipv4(&mut self, a: [u8; 4]) -> [u8; 4] {
        a.map(|b| b ^ 0x5a)
    }
    fn map_ipv6(&mut self, a: [u8; 16]) -> [u8; 16] {
        a.map(|b| b ^ 0x5a)
    }
    fn map_mac(&mut self, a: [u8; 6]) -> [u8; 6] {
        a
    }
}

fn processor() -> FrameProcessor<Flip> {
    FrameProcessor::new(Rewriter::new(RewriteOptions::default()), Flip)
}

fn writer(out: &Path, run: RunInfo) -> ErfWriter {
    ErfWriter::create(OutputConfig::new(
        OutputTarget::File(out.to_path_buf()),
        run,
    ))
    .unwrap()
}

fn dag_run_info() -> RunInfo {
    RunInfo {
        clock_source: pipeline::CLOCK_SOURCE.to_string(),
        interfaces: pipeline::interfaces(Path::new("/dev/dag0")),
        sources: vec!["/dev/dag0:0".to_string()],
        ..RunInfo::default()
    }
}

fn opts() -> StreamOptions {
    StreamOptions {
        poll: PollParams {
            mindata: 16,
            maxwait: Duration::from_millis(20),
            interval: Duration::from_micros(100),
        },
        ..StreamOptions::default()
    }
}

/// Runs the DAG pipeline on the stand-in configured by `cfg` into `out`.
fn dag_capture(
    cfg: &Standin,
    out: &Path,
    stop: &AtomicBool,
    limits: Limits,
) -> (Ended, capture::dag::DagCounters, OutputSummary) {
    let guard = cfg.apply();
    let dev = DagDevice::open(Path::new("/dev/dag0")).unwrap();
    let mut stream = DagStream::attach(&dev, 0, &opts()).unwrap();
    drop(guard);
    stream.start().unwrap();
    let outcome = run_dag(
        &mut stream,
        &mut processor(),
        writer(out, dag_run_info()),
        stop,
        limits,
    );
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let s = outcome.summary;
    (s.ended, s.counters, s.output.unwrap())
}

fn offline(input: &Path, out: &Path) -> OutputSummary {
    let traces = vec![Trace::open(input).unwrap()];
    let outcome = run_offline(
        &traces,
        &mut processor(),
        writer(out, RunInfo::default()),
        &mut |_| {},
    );
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    outcome.summary.output.unwrap()
}

/// The packet records of an output file (META records left out), as whole record bytes.
fn packet_records(path: &Path) -> Vec<(RefRecord, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    walk(&bytes)
        .into_iter()
        .filter(|r| r.ty != 27)
        .map(|r| {
            let raw = bytes[r.offset..r.offset + r.rlen].to_vec();
            (r, raw)
        })
        .collect()
}

/// The trace with these lctr values set, as the stand-in serves it with
/// ANONCAP_DAG_STANDIN_LCTR.
fn with_lctr(src: &[u8], lctr: &[(u64, u16)]) -> Vec<u8> {
    let mut bytes = src.to_vec();
    for (i, r) in walk(src).iter().enumerate() {
        if let Some((_, v)) = lctr.iter().find(|(j, _)| *j == i as u64) {
            bytes[r.offset + 12..r.offset + 14].copy_from_slice(&v.to_be_bytes());
        }
    }
    bytes
}

#[test]
fn dag_output_equals_offline_output_on_the_same_records_with_losses_carried() {
    let dir = tempfile::tempdir().unwrap();
    let src_path = trace("libtrace-100_packets.erf");
    let src = std::fs::read(&src_path).unwrap();
    let lctr = [(0u64, 2u16), (10, 1), (57, 300), (99, 7)];
    let total: u64 = lctr.iter().map(|(_, v)| u64::from(*v)).sum();

    // Offline: the same records, with the same lctr values, read from a file.
    let same_records = dir.path().join("same-records.erf");
    std::fs::write(&same_records, with_lctr(&src, &lctr)).unwrap();
    let off_out = dir.path().join("offline.erf");
    let off = offline(&same_records, &off_out);

    // DAG: the stand-in serves the original file with those lctr values set on the records,
    // through a 1001-byte buffer (records wrap around its end many times) in 250-byte arrivals.
    let mut cfg = Standin::new(&src_path);
    cfg.bufsize = Some(1001);
    cfg.chunk = Some(250);
    cfg.lctr = lctr.to_vec();
    let dag_out = dir.path().join("dag.erf");
    let (ended, counters, dag) =
        dag_capture(&cfg, &dag_out, &AtomicBool::new(false), Limits::default());
    assert_eq!(ended, Ended::EndOfData);
    assert_eq!(counters.packets, 100);

    let a = packet_records(&off_out);
    let b = packet_records(&dag_out);
    assert_eq!(a.len(), 100);
    assert_eq!(b.len(), 100, "a record was lost or duplicated");
    for (i, ((ra, bytes_a), (rb, bytes_b))) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            bytes_a, bytes_b,
            "output record {i} differs ({ra:?} vs {rb:?})"
        );
    }
    // The card's timestamps and interface bits are kept.
    let input = walk(&src);
    for ((r, _), i) in b.iter().zip(&input) {
        assert_eq!((r.ts, r.flags & 3), (i.ts, i.flags & 3));
    }
    // Losses: counted once, under the card's cause on the DAG path.
    assert_eq!(dag.totals.losses.get(LossCause::Card), total);
    assert_eq!(dag.totals.losses.get(LossCause::Recorded), 0);
    assert_eq!(dag.totals.losses.total(), total);
    assert_eq!(off.totals.losses.get(LossCause::Recorded), total);
    let lctr_out: u64 = b.iter().map(|(r, _)| u64::from(r.lctr)).sum();
    assert_eq!(lctr_out, total, "the output records' lctr carry every loss");
}

#[test]
fn the_metadata_names_the_card_clock_and_the_losses_by_cause() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Standin::new(&trace("libtrace-100_packets.erf"));
    cfg.lctr = vec![(3, 9)];
    let out = dir.path().join("dag.erf");
    dag_capture(&cfg, &out, &AtomicBool::new(false), Limits::default());
    let bytes = std::fs::read(&out).unwrap();
    let metas: Vec<_> = walk(&bytes).into_iter().filter(|r| r.ty == 27).collect();
    assert!(!metas.is_empty(), "the file starts with a META record");
    let clock = pipeline::CLOCK_SOURCE.as_bytes();
    assert!(
        bytes.windows(clock.len()).any(|w| w == clock),
        "META records name the card's clock"
    );
    // The interface sections say wlen counts the FCS: tag fcs_len (8), length 4, 32 bits.
    let fcs_tag = [0u8, 8, 0, 4, 0, 0, 0, 32];
    assert!(bytes.windows(8).any(|w| w == fcs_tag), "META fcs_len is 32");
    let sidecar = std::fs::read_to_string(dir.path().join("dag.erf.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&sidecar).unwrap();
    let text = json.to_string();
    assert!(text.contains(pipeline::CLOCK_SOURCE), "{text}");
    assert!(text.contains("\"dropped-by-card\":9"), "{text}");
    assert!(text.contains("dag0:0"), "{text}");
    assert!(text.contains("\"wlen_includes_fcs\":true"), "{text}");
}

#[test]
fn a_stop_request_ends_an_idle_capture_with_everything_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Standin::new(&trace("libtrace-100_packets.erf"));
    cfg.idle_at_end = true;
    let out = dir.path().join("dag.erf");
    let stop = AtomicBool::new(false);
    let (ended, counters, summary) = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        dag_capture(&cfg, &out, &stop, Limits::default())
    });
    assert_eq!(ended, Ended::Stopped);
    assert_eq!(counters.packets, 100);
    assert_eq!(summary.totals.written.packets, 100);
    assert_eq!(packet_records(&out).len(), 100);
}

#[test]
fn a_packet_limit_stops_after_that_many_packets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Standin::new(&trace("libtrace-100_packets.erf"));
    let out = dir.path().join("dag.erf");
    let limits = Limits {
        packets: Some(37),
        duration: None,
    };
    let (ended, _, summary) = dag_capture(&cfg, &out, &AtomicBool::new(false), limits);
    assert_eq!(ended, Ended::Limit);
    assert_eq!(summary.totals.written.packets, 37);
}

#[test]
fn rotation_splits_a_dag_capture_into_files_that_each_start_with_meta() {
    let dir = tempfile::tempdir().unwrap();
    let src_path = trace("libtrace-100_packets.erf");
    let input = walk(&std::fs::read(&src_path).unwrap());
    let mut cfg = Standin::new(&src_path);
    cfg.bufsize = Some(1500);
    let guard = cfg.apply();
    let dev = DagDevice::open(Path::new("/dev/dag0")).unwrap();
    let mut stream = DagStream::attach(&dev, 0, &opts()).unwrap();
    drop(guard);
    stream.start().unwrap();
    let target = OutputTarget::Directory {
        dir: dir.path().to_path_buf(),
        rotate_bytes: 4096,
        rotate_interval: None,
    };
    let w = ErfWriter::create(OutputConfig::new(target, dag_run_info())).unwrap();
    let outcome = run_dag(
        &mut stream,
        &mut processor(),
        w,
        &AtomicBool::new(false),
        Limits::default(),
    );
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let files = outcome.summary.output.unwrap().files;
    assert!(files.len() >= 2, "{files:?}");
    let mut ts = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let recs = walk(&bytes);
        assert_eq!(recs[0].ty, 27, "{} starts with META", f.display());
        ts.extend(recs.iter().filter(|r| r.ty != 27).map(|r| r.ts));
    }
    // Every record once, in the card's order, across the files.
    assert_eq!(ts, input.iter().map(|r| r.ts).collect::<Vec<_>>());
}
