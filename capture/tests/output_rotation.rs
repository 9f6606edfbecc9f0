//! Directory outputs: rotation by size and by time, names that sort by time and never
//! overwrite, SIGHUP rotation, retention, and recovery of the files of a killed run.

mod output_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use capture::erf::RecordIter;
use capture::output::{
    recover_partials, ErfWriter, OutputConfig, OutputTarget, Retention, DEFAULT_ROTATE_BYTES,
};
use capture::packet::Timestamp;
use output_support::*;

const START_NS: u64 = 1_767_268_800_250_000_000; // 2026-01-01T12:00:00.25Z

fn dir_target(dir: &Path, rotate_bytes: u64, interval: Option<Duration>) -> OutputTarget {
    OutputTarget::Directory {
        dir: dir.to_path_buf(),
        rotate_bytes,
        rotate_interval: interval,
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn write_all(w: &mut ErfWriter, s: &[Sample]) {
    for p in s {
        w.write_packet(p.ts, p.iface, p.kind, p.wlen, &p.data)
            .unwrap();
    }
}

#[test]
fn default_rotation_size_is_100_mb() {
    assert_eq!(DEFAULT_ROTATE_BYTES, 100_000_000);
}

#[test]
fn rotates_by_size_and_every_file_is_whole() {
    rotation_by_size(false);
}

#[test]
fn files_finished_on_the_closer_thread_are_the_same() {
    // The live capture's writer hands closed files to a thread of their own; the files, their
    // names, order and sidecars must be what the writer that finishes them itself makes.
    rotation_by_size(true);
}

fn rotation_by_size(background_close: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = OutputConfig::new(dir_target(dir.path(), 8192, None), run_info(2));
    cfg.buffer_bytes = 4096;
    cfg.background_close = background_close;
    let mut w = ErfWriter::create(cfg).unwrap();
    let s = samples(1000, START_NS, 1_000_000);
    write_all(&mut w, &s);
    let sum = w.finish().unwrap();
    assert!(sum.files.len() > 5, "{} files", sum.files.len());
    assert_eq!(sum.totals.written.packets, 1000);

    // Names sort as the files were written, and by time.
    let mut sorted = sum.files.clone();
    sorted.sort();
    assert_eq!(sorted, sum.files);
    let mut rows = Vec::new();
    for f in &sum.files {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size <= 8192, "{} is {size} bytes", f.display());
        assert_eq!(
            meta_records(f),
            2,
            "META at start and end of {}",
            f.display()
        );
        let t = tshark_rows(f);
        assert_eq!(t, own_rows(f));
        let sc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sidecar(f)).unwrap()).unwrap();
        assert_eq!(sc["packets"].as_u64(), Some(t.len() as u64));
        assert_eq!(sc["file_bytes"].as_u64(), Some(size));
        rows.extend(t);
    }
    let want: Vec<u64> = s.iter().map(|p| p.ts.to_unix_nanos()).collect();
    let got: Vec<u64> = rows.iter().map(|r| r.time_ns).collect();
    assert_eq!(got, want, "every packet once, in order, across the files");
    // No temporary file is left, and every .erf has its sidecar.
    let names = listing(dir.path());
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    assert_eq!(names.len(), 2 * sum.files.len());
    // The first file is named after its first record.
    let first = sum.files[0].file_name().unwrap().to_str().unwrap();
    assert_eq!(first, "anoncap-20260101T120000.250000000Z-0001.erf");
}

fn sidecar(f: &Path) -> PathBuf {
    let mut s = f.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

#[test]
fn rotates_at_multiples_of_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = OutputConfig::new(
        dir_target(
            dir.path(),
            DEFAULT_ROTATE_BYTES,
            Some(Duration::from_secs(1)),
        ),
        run_info(1),
    );
    let mut w = ErfWriter::create(cfg).unwrap();
    // 12:00:00.25 to 12:00:03.75, every 250 ms (15 packets): windows 0, 1, 2 and 3.
    let s: Vec<Sample> = samples(15, START_NS, 250_000_000)
        .into_iter()
        .map(|mut p| {
            p.iface = 0;
            p
        })
        .collect();
    write_all(&mut w, &s);
    let sum = w.finish().unwrap();
    let names: Vec<String> = sum
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![
            "anoncap-20260101T120000.000000000Z-0001.erf",
            "anoncap-20260101T120001.000000000Z-0002.erf",
            "anoncap-20260101T120002.000000000Z-0003.erf",
            "anoncap-20260101T120003.000000000Z-0004.erf",
        ]
    );
    let base = START_NS - 250_000_000;
    for (k, f) in sum.files.iter().enumerate() {
        let rows = tshark_rows(f);
        let lo = base + k as u64 * 1_000_000_000;
        assert!(!rows.is_empty());
        assert!(
            rows.iter()
                .all(|r| r.time_ns >= lo && r.time_ns < lo + 1_000_000_000),
            "file {k}: {rows:?}"
        );
    }
    assert_eq!(
        sum.files.iter().map(|f| own_rows(f).len()).sum::<usize>(),
        15
    );
}

#[test]
fn never_overwrites_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let taken = dir
        .path()
        .join("anoncap-20260101T120000.250000000Z-0001.erf");
    std::fs::write(&taken, b"someone else's file").unwrap();
    let mut w = ErfWriter::create(OutputConfig::new(
        dir_target(dir.path(), DEFAULT_ROTATE_BYTES, None),
        run_info(1),
    ))
    .unwrap();
    write_all(&mut w, &samples(5, START_NS, 1000));
    let sum = w.finish().unwrap();
    assert_eq!(std::fs::read(&taken).unwrap(), b"someone else's file");
    assert_eq!(sum.files.len(), 1);
    assert_ne!(sum.files[0], taken);
    assert_eq!(
        sum.files[0].file_name().unwrap(),
        "anoncap-20260101T120000.250000000Z-0002.erf"
    );
    assert_eq!(tshark_rows(&sum.files[0]).len(), 5);
}

#[test]
fn rotate_starts_a_new_file_at_the_next_packet() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ErfWriter::create(OutputConfig::new(
        dir_target(dir.path(), DEFAULT_ROTATE_BYTES, None),
        run_info(1),
    ))
    .unwrap();
    let s = samples(6, START_NS, 1000);
    write_all(&mut w, &s[..3]);
    w.rotate().unwrap();
    w.rotate().unwrap(); // no packet in between: no empty file
    write_all(&mut w, &s[3..]);
    let sum = w.finish().unwrap();
    assert_eq!(sum.files.len(), 2);
    assert_eq!(tshark_rows(&sum.files[0]).len(), 3);
    assert_eq!(tshark_rows(&sum.files[1]).len(), 3);
}

#[test]
fn retention_keeps_the_newest_files() {
    retention(false);
}

#[test]
fn retention_keeps_the_newest_files_with_the_closer_thread() {
    retention(true);
}

fn retention(background_close: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = OutputConfig::new(dir_target(dir.path(), 4096, None), run_info(1));
    cfg.buffer_bytes = 4096;
    cfg.background_close = background_close;
    cfg.retention = Some(Retention {
        max_files: Some(2),
        ..Default::default()
    });
    let mut w = ErfWriter::create(cfg).unwrap();
    write_all(&mut w, &samples(400, START_NS, 1000));
    let sum = w.finish().unwrap();
    assert!(sum.files.len() > 3);
    let left = listing(dir.path());
    let erfs: Vec<&String> = left.iter().filter(|n| n.ends_with(".erf")).collect();
    let newest: Vec<String> = sum.files[sum.files.len() - 2..]
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(erfs, newest.iter().collect::<Vec<_>>());
    assert_eq!(
        left.len(),
        4,
        "the deleted files' sidecars go too: {left:?}"
    );
}

#[test]
fn a_dropped_writer_still_finishes_the_files_it_handed_to_its_closer() {
    // An early return or a panic drops the writer without finish(): every file, the closed
    // ones on the closer thread and the open one, still gets its final name and sidecar.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = OutputConfig::new(dir_target(dir.path(), 8192, None), run_info(1));
    cfg.buffer_bytes = 4096;
    cfg.background_close = true;
    let mut w = ErfWriter::create(cfg).unwrap();
    let s = samples(500, START_NS, 1000);
    write_all(&mut w, &s);
    drop(w);
    let names = listing(dir.path());
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    let erfs: Vec<PathBuf> = names
        .iter()
        .filter(|n| n.ends_with(".erf"))
        .map(|n| dir.path().join(n))
        .collect();
    assert!(erfs.len() > 3, "{names:?}");
    assert_eq!(names.len(), 2 * erfs.len(), "every file has its sidecar");
    let rows: usize = erfs.iter().map(|f| own_rows(f).len()).sum();
    assert_eq!(rows, 500);
}

#[test]
fn recovers_the_temporary_file_of_a_killed_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = OutputConfig::new(
        dir_target(dir.path(), DEFAULT_ROTATE_BYTES, None),
        run_info(1),
    );
    cfg.buffer_bytes = 4096;
    let mut w = ErfWriter::create(cfg).unwrap();
    let s = samples(300, START_NS, 1000);
    write_all(&mut w, &s);
    w.flush().unwrap();
    // A kill: the writer never closes or renames its file.
    std::mem::forget(w);
    let temps: Vec<String> = listing(dir.path())
        .into_iter()
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert_eq!(temps.len(), 1);
    let tmp = dir.path().join(&temps[0]);
    let whole = std::fs::read(&tmp).unwrap();
    let whole_packets = RecordIter::new(&whole).count() - 1; // minus the start META record
                                                             // The kill came in the middle of a record.
    let mut f = std::fs::OpenOptions::new().append(true).open(&tmp).unwrap();
    let meta_len = RecordIter::new(&whole).next().unwrap().unwrap().rlen_be() as usize;
    // The first 40 bytes of a 78-byte packet record.
    std::io::Write::write_all(&mut f, &whole[meta_len..meta_len + 40]).unwrap();
    drop(f);

    let rec = recover_partials(dir.path()).unwrap();
    assert_eq!(rec.len(), 1);
    let name = rec[0].file_name().unwrap().to_str().unwrap();
    assert_eq!(name, "anoncap-20260101T120000.250000000Z-0001.partial.erf");
    assert!(!tmp.exists());
    assert_eq!(std::fs::read(&rec[0]).unwrap(), whole);
    let rows = tshark_rows(&rec[0]);
    assert_eq!(rows.len(), whole_packets);
    assert_eq!(rows, own_rows(&rec[0]));
    let sc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sidecar(&rec[0])).unwrap()).unwrap();
    assert_eq!(sc["partial"], true);
    assert_eq!(sc["packets"].as_u64(), Some(whole_packets as u64));
    assert_eq!(sc["bytes_discarded"], 40);
    // A second pass finds nothing more to do.
    assert!(recover_partials(dir.path()).unwrap().is_empty());
}

#[test]
fn a_temporary_file_without_a_whole_record_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir
        .path()
        .join(".anoncap-20260101T120000.000000000Z-0001.erf.part");
    std::fs::write(&tmp, [0u8; 10]).unwrap();
    let json_tmp = dir
        .path()
        .join(".anoncap-20260101T115959.000000000Z-0001.erf.json.part");
    std::fs::write(&json_tmp, b"{\"packets\":").unwrap();
    let other = dir.path().join(".unrelated.part");
    std::fs::write(&other, b"x").unwrap();
    assert!(recover_partials(dir.path()).unwrap().is_empty());
    assert!(!tmp.exists());
    assert!(!json_tmp.exists());
    assert!(
        other.exists(),
        "files the writer does not make are left alone"
    );
}

#[test]
fn directory_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(ErfWriter::create(OutputConfig::new(
        dir_target(&missing, DEFAULT_ROTATE_BYTES, None),
        run_info(1)
    ))
    .is_err());
    let _ = Timestamp(0);
}
