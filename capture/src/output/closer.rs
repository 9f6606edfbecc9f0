//! Finishing a closed output file: sync, move to its final name, sidecar, retention.
//!
//! Syncing a file of 100 MB takes tens of milliseconds, more on a busy disk. A live writer
//! that waited for it at every rotation would fall that far behind its rings (at 1 Mpps, a
//! pool of 65,536 frames lasts 65 ms). With [`OutputConfig::background_close`] the writer
//! hands each closed file to a [`Closer`] thread and goes on with the next file at once; the
//! finished names and errors come back in the order the files were closed, and the writer
//! collects them at its next close and at [`super::ErfWriter::finish`], which waits for all.
//! Until a file is finished it keeps its temporary name, so a run killed in between leaves a
//! `.part` file that the next start recovers like any other.

use std::fs::File;
use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam::channel::{self, Receiver, Sender};

use super::{
    apply_retention, finalize_name, io_err, is_disk_full, sidecar, FileStats, FullDiskPolicy,
    OutputConfig, OutputError,
};
use crate::packet::Timestamp;

/// Files the closer may hold before the writer waits for it: a disk slower than the rotation
/// rate slows the writer instead of piling up open files.
const QUEUE_DEPTH: usize = 4;

/// A file the writer has closed: whole records only, its counts final.
#[derive(Debug)]
pub(super) struct ClosedFile {
    pub file: File,
    pub tmp: PathBuf,
    pub final_path: PathBuf,
    pub seq: u32,
    /// Bytes of records in the file.
    pub committed: u64,
    pub name_time: Option<Timestamp>,
    pub stats: FileStats,
    /// False when the file was closed by a failed write: its errors are not the caller's.
    pub report_errors: bool,
}

/// The outcome for one closed file.
#[derive(Debug)]
pub(super) struct Finished {
    /// The file's final name, once it has one.
    pub path: Option<PathBuf>,
    /// The first error met (`Ok` when the file is synced, named and has its sidecar).
    pub result: Result<(), OutputError>,
    /// Whether `result` is to be returned to the writer's caller.
    pub report: bool,
}

/// Syncs the file, moves it to its final name (never replacing a file), writes its sidecar and
/// applies retention. On [`FullDiskPolicy::DropAndResume`], a sidecar that does not fit on a
/// full disk is left out without an error: the ERF file itself is complete and ends with its
/// stats record, which holds the same totals.
pub(super) fn finish_file(closed: ClosedFile, cfg: &OutputConfig) -> Finished {
    let report = closed.report_errors;
    let sync = closed.file.sync_all();
    drop(closed.file);
    let final_path = match finalize_name(&closed.tmp, &closed.final_path, closed.seq) {
        Ok(p) => p,
        Err(e) => {
            return Finished {
                path: None,
                result: Err(e),
                report,
            }
        }
    };
    let mut result = sync.map_err(io_err(&final_path));
    if cfg.sidecar {
        let sc = sidecar::Sidecar::new(
            &final_path,
            closed.seq,
            false,
            closed.committed,
            closed.name_time,
            &closed.stats,
            cfg,
        );
        match sidecar::write_atomic(&final_path, &sc) {
            Ok(()) => {}
            Err(OutputError::Io { source, .. })
                if is_disk_full(&source) && cfg.on_full_disk == FullDiskPolicy::DropAndResume => {}
            Err(e) => {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
    }
    apply_retention(cfg);
    Finished {
        path: Some(final_path),
        result,
        report,
    }
}

/// A thread that finishes closed files in the order it receives them.
#[derive(Debug)]
pub(super) struct Closer {
    jobs: Option<Sender<ClosedFile>>,
    done: Receiver<Finished>,
    thread: Option<JoinHandle<()>>,
}

impl Closer {
    /// Starts the thread (named `anoncap-close`; it inherits the writer's CPU affinity and
    /// spends its time waiting for the disk).
    pub fn spawn(cfg: OutputConfig) -> Result<Closer, OutputError> {
        let (jobs, job_rx) = channel::bounded::<ClosedFile>(QUEUE_DEPTH);
        let (done_tx, done) = channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("anoncap-close".into())
            .spawn(move || {
                for closed in job_rx {
                    if done_tx.send(finish_file(closed, &cfg)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| OutputError::Config(format!("cannot start the file closer: {e}")))?;
        Ok(Closer {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Hands a closed file over; waits only while [`QUEUE_DEPTH`] files are already queued.
    /// If the thread is gone (it panicked), the file is finished here.
    pub fn submit(&self, closed: ClosedFile, cfg: &OutputConfig) -> Option<Finished> {
        match &self.jobs {
            Some(jobs) => match jobs.send(closed) {
                Ok(()) => None,
                Err(channel::SendError(closed)) => Some(finish_file(closed, cfg)),
            },
            None => Some(finish_file(closed, cfg)),
        }
    }

    /// The outcomes that are ready, in order, without waiting.
    pub fn ready(&self) -> impl Iterator<Item = Finished> + '_ {
        self.done.try_iter()
    }

    /// Waits until every file handed over is finished; returns their outcomes in order.
    pub fn wait_all(&mut self) -> Vec<Finished> {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.done.try_iter().collect()
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        // Files handed over are finished before the writer goes away.
        let _ = self.wait_all();
    }
}
