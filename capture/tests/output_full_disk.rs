//! A full disk (a 64 KiB tmpfs mounted by the test; needs root, as CI runs): the offline
//! policy stops with an error and leaves a valid file; the live policy counts writer losses
//! and resumes when space returns. The tmpfs is unmounted even when a test fails.

mod output_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use capture::erf::RecordIter;
use capture::output::{
    ErfWriter, FullDiskPolicy, OutputConfig, OutputError, OutputTarget, DEFAULT_ROTATE_BYTES,
};
use capture::stats::LossCause;
use output_support::*;

const START_NS: u64 = 1_767_268_800_000_000_000;

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount must exist");
        assert!(
            st.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn assert_whole_and_readable(f: &Path) -> usize {
    let data = std::fs::read(f).unwrap();
    let mut total = 0;
    for r in RecordIter::new(&data) {
        total += r.expect("only whole records").rlen_be() as usize;
    }
    assert_eq!(
        total,
        data.len(),
        "{} ends with a whole record",
        f.display()
    );
    let rows = tshark_rows(f);
    assert_eq!(rows, own_rows(f));
    rows.len()
}

#[test]
fn a_full_disk_stops_the_run_with_a_valid_file() {
    let fs = Tmpfs::mount("64k");
    let path = fs.path().join("full.erf");
    let mut cfg = OutputConfig::new(OutputTarget::File(path.clone()), run_info(1));
    cfg.buffer_bytes = 5000; // not a multiple of the page size: writes end mid-record
    let mut w = ErfWriter::create(cfg).unwrap();
    let s = samples(5000, START_NS, 1000);
    let mut offered = 0u64;
    let mut err = None;
    for p in &s {
        match w.write_packet(p.ts, 0, p.kind, p.wlen, &p.data) {
            Ok(()) => offered += 1,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("64 KiB fill up before 5000 records");
    assert!(
        matches!(&err, OutputError::DiskFull { path: p } if *p == path),
        "{err}"
    );
    // The writer refuses more records once stopped.
    let p = &s[0];
    assert!(matches!(
        w.write_packet(p.ts, 0, p.kind, p.wlen, &p.data),
        Err(OutputError::Stopped)
    ));
    let sum = w.finish().unwrap();
    assert!(sum.stopped_on_error);
    assert_eq!(sum.files, vec![path.clone()]);
    assert!(!fs.path().join(".full.erf.part").exists());
    let n = assert_whole_and_readable(&path);
    assert!(n > 100, "{n} packets kept");
    assert_eq!(sum.totals.written.packets, n as u64);
    // Every record accepted is either in the file or counted as a writer loss.
    assert_eq!(
        sum.totals.written.packets + sum.totals.losses.get(LossCause::Writer),
        offered
    );
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "erf"))
        .collect();
    v.sort();
    v
}

#[test]
fn live_policy_drops_counts_and_resumes_when_space_returns() {
    let fs = Tmpfs::mount("64k");
    let mut cfg = OutputConfig::new(
        OutputTarget::Directory {
            dir: fs.path().to_path_buf(),
            rotate_bytes: DEFAULT_ROTATE_BYTES,
            rotate_interval: None,
        },
        run_info(1),
    );
    cfg.buffer_bytes = 5000;
    cfg.on_full_disk = FullDiskPolicy::DropAndResume;
    cfg.resume_free_bytes = Some(32 * 1024);
    let mut w = ErfWriter::create(cfg).unwrap();
    let s = samples(3000, START_NS, 1000);
    // Far more than fits: every call succeeds, the excess is counted.
    for p in &s[..2000] {
        w.write_packet(p.ts, 0, p.kind, p.wlen, &p.data).unwrap();
    }
    let lost = w.current_stats().losses.get(LossCause::Writer);
    let first_files = files_in(fs.path());
    assert_eq!(first_files.len(), 1, "{first_files:?}");
    let kept = assert_whole_and_readable(&first_files[0]) as u64;
    assert!(lost > 0 && kept > 0);

    // Space returns (an operator moves the file away); the writer checks once a second.
    let saved = std::env::temp_dir().join(format!("anoncap-full-{}.erf", std::process::id()));
    std::fs::copy(&first_files[0], &saved).unwrap();
    std::fs::remove_file(&first_files[0]).unwrap();
    let _ = std::fs::remove_file(fs.path().join(format!(
        "{}.json",
        first_files[0].file_name().unwrap().to_string_lossy()
    )));
    std::thread::sleep(Duration::from_millis(1100));
    for p in &s[2000..2100] {
        w.write_packet(p.ts, 0, p.kind, p.wlen, &p.data).unwrap();
    }
    let sum = w.finish().unwrap();
    assert!(!sum.stopped_on_error);
    let second = files_in(fs.path());
    assert_eq!(second.len(), 1);
    let rows = own_rows(&second[0]);
    assert_eq!(assert_whole_and_readable(&second[0]), 100);
    // The first record after the gap carries every loss since the last record on disk.
    let writer_losses = sum.totals.losses.get(LossCause::Writer);
    assert_eq!(rows[0].lctr as u64, writer_losses);
    assert_eq!(kept + writer_losses + 100, 2100);
    assert_eq!(sum.totals.written.packets, kept + 100);
    let _ = std::fs::remove_file(saved);
}

#[test]
fn live_policy_on_a_single_file_continues_in_a_numbered_file() {
    let fs = Tmpfs::mount("64k");
    let path = fs.path().join("live.erf");
    let mut cfg = OutputConfig::new(OutputTarget::File(path.clone()), run_info(1));
    cfg.buffer_bytes = 5000;
    cfg.on_full_disk = FullDiskPolicy::DropAndResume;
    cfg.resume_free_bytes = Some(32 * 1024);
    cfg.sidecar = false;
    let mut w = ErfWriter::create(cfg).unwrap();
    let s = samples(2100, START_NS, 1000);
    for p in &s[..2000] {
        w.write_packet(p.ts, 0, p.kind, p.wlen, &p.data).unwrap();
    }
    let kept = assert_whole_and_readable(&path) as u64;
    let saved = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    for p in &s[2000..] {
        w.write_packet(p.ts, 0, p.kind, p.wlen, &p.data).unwrap();
    }
    let sum = w.finish().unwrap();
    let next = fs.path().join("live-0002.erf");
    assert_eq!(sum.files, vec![path.clone(), next.clone()]);
    assert_eq!(assert_whole_and_readable(&next), 100);
    let rows = own_rows(&next);
    assert_eq!(
        rows[0].lctr as u64 + kept + 100,
        2100,
        "the gap's losses are in the first record after it"
    );
    assert!(!saved.is_empty());
}
