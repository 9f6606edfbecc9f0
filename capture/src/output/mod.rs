//! The ERF file writer: single files or rotated directories, META records and sidecars.
//!
//! Records are encoded with [`crate::erf::encode_packet`] into one preallocated buffer (no
//! allocation per packet) and written when it fills. The buffer only ever holds whole records,
//! and a file's length on disk is always advanced a whole number of records at a time: if a
//! write fails (a full disk), the file is truncated back to its last whole record, so a finished
//! file never holds half a record.
//!
//! Every file is written under a temporary name (`.<name>.part` in the same directory) and
//! renamed when complete, without ever replacing an existing file. Each finished file gets a
//! JSON sidecar (`<file>.json`, also written atomically) with its counts and the run's
//! provenance. With `meta` on, each file starts with a META record (capture, host and one
//! interface section per interface) and ends with a stats META record (one FF05 section per
//! interface). See `docs/erf-output.md`.
//!
//! Wire lengths above 65535 do not fit ERF's 16-bit wlen: they are written as 65535 and counted
//! (`wlen_clamped`). Losses reported with [`ErfWriter::add_loss`] go into the lctr of that
//! interface's next record (saturating at 0xFFFF, the excess carried to the following records)
//! and, exactly, into the sidecar and the stats META record.

mod closer;
mod sidecar;
mod sys;
mod time;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::erf::meta::{section, tag, MetaBuilder};
use crate::erf::{self, HostId, PacketLayout, RecordIter, RecordType, MAX_RLEN};
use crate::packet::{FrameKind, Timestamp};
use crate::stats::{CutCounts, CutReason, LossCause, LossCounts};

pub use sidecar::recover_partials;
pub use time::{compact as format_compact_time, rfc3339 as format_rfc3339};

/// The default size at which a directory output starts a new file (100 MB, as the WIDE trace
/// guidelines suggest).
pub const DEFAULT_ROTATE_BYTES: u64 = 100_000_000;
/// The default write buffer (bytes of records gathered before one write). Small enough that
/// the records are still in the core's cache when `write` copies them into the page cache: a
/// 1 MiB buffer made that copy a quarter of a live capture's CPU time at 500 kpps, 64 KiB
/// about 2 %, at 16 times the (still few) system calls.
pub const DEFAULT_BUFFER_BYTES: usize = 1 << 16;
/// The number of interfaces ERF's flag bits can name.
pub const MAX_INTERFACES: usize = 4;
/// The prefix of every file name the writer chooses in a directory.
pub const FILE_PREFIX: &str = "anoncap-";

/// Where the records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputTarget {
    /// One file, never rotated (written as a temporary file, then renamed to this path).
    File(PathBuf),
    /// A directory of files named by time, rotated by size and optionally by time.
    Directory {
        /// The directory (must exist).
        dir: PathBuf,
        /// Start a new file before one would grow past this many bytes.
        rotate_bytes: u64,
        /// Also start a new file at every multiple of this interval in record time (UTC).
        rotate_interval: Option<Duration>,
    },
}

/// One capture interface, as META interface sections and sidecars describe it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InterfaceInfo {
    /// The interface name (e.g. `eth0`, `xdp0`, `dag0:0`).
    pub name: String,
    /// True if wlen counts the 4-byte FCS (input ERF from a DAG card usually does; XDP never).
    pub fcs_included: bool,
    /// The snap length records were cut to (header-only capture: the rewriter's limit).
    pub snaplen: u32,
    /// The line rate in bit/s, if known.
    pub speed_bps: Option<u64>,
}

/// The fields of a traffic data description (the WIDE/MAWI trace description and the Internet
/// Traffic Archive's submission fields). Each is free text given by the operator; absent
/// fields are written as `null`. Counts, times, format and tool are filled in by the writer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TraceDescription {
    /// A short title of the data set.
    pub title: Option<String>,
    /// The measurement (sampling) point, e.g. "transit link of AS64500 to its upstream".
    pub sampling_point: Option<String>,
    /// Geographic location of the probe.
    pub location: Option<String>,
    /// The monitored link: medium, rate, direction(s).
    pub link: Option<String>,
    /// Capture hardware (NIC or DAG card, tap or SPAN port).
    pub capture_hardware: Option<String>,
    /// How timestamps are disciplined and their resolution (e.g. "NTP, sub-ms").
    pub timestamp_accuracy: Option<String>,
    /// Known measurement artefacts, gaps, anomalies.
    pub known_issues: Option<String>,
    /// Who to contact about the data.
    pub contact: Option<String>,
    /// Redistribution and use restrictions.
    pub restrictions: Option<String>,
    /// How use of the data should be acknowledged.
    pub acknowledgement: Option<String>,
}

/// Provenance of a run, written to META records and sidecars.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunInfo {
    /// anoncap's version.
    pub software_version: String,
    /// The inputs: trace file names or interface/queue names.
    pub sources: Vec<String>,
    /// The anonymisation policy (its name or a canonical summary).
    pub policy: String,
    /// The fingerprint of the key (never the key).
    pub key_fingerprint: String,
    /// The capture interfaces, indexed by ERF interface number (at most 4).
    pub interfaces: Vec<InterfaceInfo>,
    /// The capture filter, if any.
    pub filter: Option<String>,
    /// Where timestamps come from (e.g. "input trace", "NIC hardware", "system clock").
    pub clock_source: String,
    /// The probe's host name.
    pub hostname: String,
    /// A free-form description of the run.
    pub description: Option<String>,
    /// The 48-bit ERF host id put in META records' Host ID extension (0 = the implicit host).
    pub host_id: u64,
    /// The traffic data description fields.
    pub trace: TraceDescription,
}

/// What the writer does when the disk is full.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum FullDiskPolicy {
    /// Close the file cleanly and return [`OutputError::DiskFull`] (offline runs).
    #[default]
    Stop,
    /// Close the file cleanly, count what cannot be written as writer losses, and start a new
    /// file when free space returns (live capture).
    DropAndResume,
}

/// Deleting the oldest finished files of a directory output (files named `anoncap-*.erf`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many files.
    pub max_files: Option<usize>,
    /// Keep at most this many bytes of ERF files.
    pub max_bytes: Option<u64>,
    /// Delete the oldest files while less than this many bytes are free.
    pub min_free_bytes: Option<u64>,
}

/// Writer configuration.
#[derive(Clone, Debug)]
pub struct OutputConfig {
    /// Where to write.
    pub target: OutputTarget,
    /// Write META records (start and end of each file); off for old readers (`--no-meta`).
    pub meta: bool,
    /// The run's provenance.
    pub run: RunInfo,
    /// What to do on a full disk.
    pub on_full_disk: FullDiskPolicy,
    /// Optional deletion of the oldest files (directory outputs only).
    pub retention: Option<Retention>,
    /// Bytes of records gathered before one write.
    pub buffer_bytes: usize,
    /// With [`FullDiskPolicy::DropAndResume`]: free bytes needed before writing resumes
    /// (default: 4 write buffers).
    pub resume_free_bytes: Option<u64>,
    /// Write JSON sidecars.
    pub sidecar: bool,
    /// Finish closed files (sync, final name, sidecar, retention) on a thread of their own, so
    /// that a rotation does not stall the writer for the sync (live capture). Off: each file
    /// is finished before the call that closed it returns.
    pub background_close: bool,
}

impl OutputConfig {
    /// A configuration with META records, sidecars, [`FullDiskPolicy::Stop`], no retention and
    /// the default buffer.
    pub fn new(target: OutputTarget, run: RunInfo) -> Self {
        OutputConfig {
            target,
            meta: true,
            run,
            on_full_disk: FullDiskPolicy::Stop,
            retention: None,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            resume_free_bytes: None,
            sidecar: true,
            background_close: false,
        }
    }
}

/// An output error; each names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// An I/O error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The disk is full; the file was closed after its last whole record.
    #[error("{}: disk full; the file was closed after its last whole record", path.display())]
    DiskFull {
        /// The file that was being written (its final name).
        path: PathBuf,
    },
    /// The output file exists; anoncap never overwrites.
    #[error("{}: already exists (anoncap never overwrites an output file)", .0.display())]
    Exists(PathBuf),
    /// An interface number that does not fit ERF's two interface bits.
    #[error("interface {0} does not fit ERF's interface bits (0-3)")]
    BadInterface(u8),
    /// A bad configuration.
    #[error("output configuration: {0}")]
    Config(String),
    /// The writer stopped after an earlier error.
    #[error("the ERF writer stopped after an earlier error")]
    Stopped,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Counts of the packet records in a file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PacketCounts {
    /// Packet records (META records excluded).
    pub packets: u64,
    /// Captured bytes (the records' data, padding excluded).
    pub bytes_captured: u64,
    /// Bytes on the wire (the records' wlen).
    pub bytes_wire: u64,
    /// The earliest record timestamp.
    #[serde(skip)]
    pub first: Option<Timestamp>,
    /// The latest record timestamp.
    #[serde(skip)]
    pub last: Option<Timestamp>,
    /// Packet records per interface.
    pub iface_packets: [u64; MAX_INTERFACES],
    /// Wire bytes per interface.
    pub iface_bytes_wire: [u64; MAX_INTERFACES],
    /// Sum of the lctr values written per interface.
    pub iface_lctr: [u64; MAX_INTERFACES],
}

impl PacketCounts {
    #[inline]
    fn count(&mut self, ts: Timestamp, iface: usize, caplen: usize, wlen: u16, lctr: u16) {
        self.packets += 1;
        self.bytes_captured += caplen as u64;
        self.bytes_wire += wlen as u64;
        self.first = Some(self.first.map_or(ts, |f| f.min(ts)));
        self.last = Some(self.last.map_or(ts, |l| l.max(ts)));
        self.iface_packets[iface] += 1;
        self.iface_bytes_wire[iface] += wlen as u64;
        self.iface_lctr[iface] += lctr as u64;
    }

    /// Adds another set of counts to this one.
    pub fn merge(&mut self, o: &PacketCounts) {
        self.packets += o.packets;
        self.bytes_captured += o.bytes_captured;
        self.bytes_wire += o.bytes_wire;
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, o.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for i in 0..MAX_INTERFACES {
            self.iface_packets[i] += o.iface_packets[i];
            self.iface_bytes_wire[i] += o.iface_bytes_wire[i];
            self.iface_lctr[i] += o.iface_lctr[i];
        }
    }

    /// Counts the packet records of a byte slice of whole records (META and PAD skipped).
    pub fn of_records(data: &[u8]) -> PacketCounts {
        let mut c = PacketCounts::default();
        for r in RecordIter::new(data).map_while(Result::ok) {
            if matches!(r.record_type(), RecordType::Meta | RecordType::Pad) {
                continue;
            }
            c.count(
                r.ts_le(),
                r.iface() as usize,
                r.caplen(),
                r.wlen_be(),
                r.lctr_be(),
            );
        }
        c
    }
}

/// Everything counted for one file (or, summed, for a run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// The packet records written.
    pub written: PacketCounts,
    /// Losses by cause.
    pub losses: LossCounts,
    /// Losses by cause, per interface.
    pub iface_losses: [LossCounts; MAX_INTERFACES],
    /// Frames written cut short, by reason.
    pub cuts: CutCounts,
    /// Frames not written at all, by reason.
    pub dropped: CutCounts,
    /// Records whose wire length was above 65535 and written as 65535.
    pub wlen_clamped: u64,
}

impl FileStats {
    fn merge(&mut self, o: &FileStats) {
        self.written.merge(&o.written);
        self.losses.merge(&o.losses);
        for i in 0..MAX_INTERFACES {
            self.iface_losses[i].merge(&o.iface_losses[i]);
        }
        self.cuts.add(&o.cuts);
        self.dropped.add(&o.dropped);
        self.wlen_clamped += o.wlen_clamped;
    }
}

/// What [`ErfWriter::finish`] returns.
#[derive(Clone, Debug, Default)]
pub struct OutputSummary {
    /// The finished files, in the order they were written.
    pub files: Vec<PathBuf>,
    /// Totals over the run.
    pub totals: FileStats,
    /// True if the writer stopped on an error (the files listed are still valid).
    pub stopped_on_error: bool,
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    tmp: PathBuf,
    final_path: PathBuf,
    seq: u32,
    /// Bytes on disk, always a whole number of records.
    committed: u64,
    /// The start META record has been written (deferred until the first record's time is
    /// known, so the file stays time-ordered for Wireshark's heuristic).
    started: bool,
    window_end_ns: Option<u64>,
    /// The time in the file name.
    name_time: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Suspended { next_check: Instant },
    Stopped,
}

/// The ERF file writer. Not thread-safe: one writer thread owns it.
#[derive(Debug)]
pub struct ErfWriter {
    cfg: OutputConfig,
    buf: Box<[u8]>,
    len: usize,
    threshold: usize,
    cur: Option<OpenFile>,
    /// Packet counts of the records in `buf` (not yet on disk).
    pending: PacketCounts,
    /// Counts for the current (or next) file.
    stats: FileStats,
    totals: FileStats,
    lctr_due: [u64; MAX_INTERFACES],
    next_seq: u32,
    files: Vec<PathBuf>,
    state: State,
    /// Bytes kept free in each rotated file for its closing stats META record.
    end_reserve: u64,
    /// The thread finishing closed files, with [`OutputConfig::background_close`].
    closer: Option<closer::Closer>,
}

fn now_ts() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
}

impl ErfWriter {
    /// Creates the writer. A file target is opened (as its temporary name) at once, so a bad
    /// path fails here; a directory target opens its first file at the first packet.
    pub fn create(config: OutputConfig) -> Result<Self, OutputError> {
        if config.run.interfaces.len() > MAX_INTERFACES {
            return Err(OutputError::Config(format!(
                "{} interfaces given, ERF records can name 4",
                config.run.interfaces.len()
            )));
        }
        match &config.target {
            OutputTarget::Directory {
                dir,
                rotate_bytes,
                rotate_interval,
            } => {
                if !dir.is_dir() {
                    return Err(OutputError::Io {
                        path: dir.clone(),
                        source: io::Error::new(io::ErrorKind::NotFound, "not a directory"),
                    });
                }
                if *rotate_bytes < 4096 {
                    return Err(OutputError::Config(format!(
                        "rotation size {rotate_bytes} is below 4096 bytes"
                    )));
                }
                if rotate_interval.is_some_and(|i| i.as_nanos() == 0) {
                    return Err(OutputError::Config("rotation interval is zero".into()));
                }
            }
            OutputTarget::File(p) => {
                if p.exists() {
                    return Err(OutputError::Exists(p.clone()));
                }
            }
        }
        let threshold = config.buffer_bytes.max(4096);
        let mut w = ErfWriter {
            buf: vec![0u8; threshold + MAX_RLEN].into_boxed_slice(),
            len: 0,
            threshold,
            cur: None,
            pending: PacketCounts::default(),
            stats: FileStats::default(),
            totals: FileStats::default(),
            lctr_due: [0; MAX_INTERFACES],
            next_seq: 1,
            files: Vec::new(),
            state: State::Running,
            end_reserve: 0,
            closer: None,
            cfg: config,
        };
        if w.cfg.background_close {
            w.closer = Some(closer::Closer::spawn(w.cfg.clone())?);
        }
        if w.cfg.meta {
            // The stats record has a fixed layout: its size does not depend on the counts.
            let tlvs = w.stats_meta(&FileStats::default());
            let mut rec = Vec::new();
            w.end_reserve =
                erf::encode_meta(&mut rec, Timestamp(0), HostId::default(), &tlvs) as u64;
        }
        if let OutputTarget::File(p) = &w.cfg.target {
            let p = p.clone();
            w.open_at(p, None, None)?;
        }
        Ok(w)
    }

    /// The configuration.
    pub fn config(&self) -> &OutputConfig {
        &self.cfg
    }

    /// Counts for the file being written (or the next one), including records not yet flushed.
    pub fn current_stats(&self) -> FileStats {
        let mut s = self.stats.clone();
        s.written.merge(&self.pending);
        s
    }

    /// Losses seen for an interface since its previous record; they go into the lctr of that
    /// interface's next record (saturating at 0xFFFF, the excess carried to following records)
    /// and into the exact totals by cause.
    pub fn add_loss(&mut self, iface: u8, cause: LossCause, n: u64) {
        let i = (iface as usize) & (MAX_INTERFACES - 1);
        self.lctr_due[i] = self.lctr_due[i].saturating_add(n);
        self.stats.losses.add(cause, n);
        self.stats.iface_losses[i].add(cause, n);
    }

    /// Counts a frame written cut short (for the sidecar totals).
    pub fn count_cut(&mut self, reason: CutReason) {
        self.stats.cuts.count(reason);
    }

    /// Counts a frame not written at all.
    pub fn count_dropped(&mut self, reason: CutReason) {
        self.stats.dropped.count(reason);
    }

    /// Writes one packet record. `data` is the rewritten frame (at most `wlen` bytes are kept);
    /// `wlen` is the wire length as the source reported it (clamped to 65535 and counted).
    #[inline]
    pub fn write_packet(
        &mut self,
        ts: Timestamp,
        iface: u8,
        kind: FrameKind,
        wlen: u32,
        data: &[u8],
    ) -> Result<(), OutputError> {
        if iface as usize >= MAX_INTERFACES {
            return Err(OutputError::BadInterface(iface));
        }
        match self.state {
            State::Running => {}
            State::Stopped => return Err(OutputError::Stopped),
            State::Suspended { .. } => {
                if !self.try_resume() {
                    self.add_loss(iface, LossCause::Writer, 1);
                    return Ok(());
                }
            }
        }
        let wlen16 = if wlen > u16::MAX as u32 {
            self.stats.wlen_clamped += 1;
            u16::MAX
        } else {
            wlen as u16
        };
        // The record's lengths, computed once for the room check, the encoding and the counts.
        let layout = PacketLayout::new(kind, wlen16, data.len());
        self.prepare(ts, layout.rlen)?;
        if self.state != State::Running {
            // A full disk while opening or flushing suspended the writer: this frame is lost.
            self.add_loss(iface, LossCause::Writer, 1);
            return Ok(());
        }
        let i = iface as usize;
        let lctr = self.lctr_due[i].min(0xFFFF) as u16;
        self.lctr_due[i] -= lctr as u64;
        // `iface` was checked above; `layout` is for this kind, wire length and data.
        let n = erf::encode_packet_with(
            &mut self.buf[self.len..],
            &layout,
            ts,
            iface,
            lctr,
            wlen16,
            data,
        )
        .map_err(|e| OutputError::Config(e.to_string()))?;
        self.pending.count(ts, i, layout.caplen, wlen16, lctr);
        self.len += n;
        Ok(())
    }

    /// Opens, rotates and flushes as needed so that a `rec_len`-byte record at `ts` fits.
    #[inline]
    fn prepare(&mut self, ts: Timestamp, rec_len: usize) -> Result<(), OutputError> {
        if let Some(f) = &self.cur {
            if let OutputTarget::Directory { rotate_bytes, .. } = self.cfg.target {
                let size = f.committed + self.len as u64;
                // Cheapest test first: most records neither cross the size nor the time limit.
                let over_size =
                    f.started && size + rec_len as u64 + self.end_reserve > rotate_bytes;
                if (over_size || f.window_end_ns.is_some_and(|end| ts.to_unix_nanos() >= end))
                    && self.stats.written.packets + self.pending.packets > 0
                {
                    self.close_current(true)?;
                }
            }
        }
        if self.cur.is_none() {
            self.open_for(ts)?;
            if self.state != State::Running {
                return Ok(());
            }
        }
        let needs_start = self.cur.as_ref().is_some_and(|f| !f.started);
        if needs_start {
            self.start_file(ts);
        }
        if self.len + rec_len > self.threshold {
            self.flush()?;
        }
        Ok(())
    }

    /// Starts a new file at the next packet (SIGHUP). A single-file target is only flushed.
    pub fn rotate(&mut self) -> Result<(), OutputError> {
        match self.cfg.target {
            OutputTarget::File(_) => self.flush(),
            OutputTarget::Directory { .. } => {
                if self.cur.is_some() {
                    self.close_current(true)?;
                }
                Ok(())
            }
        }
    }

    /// Writes buffered records to the file.
    pub fn flush(&mut self) -> Result<(), OutputError> {
        if self.len == 0 {
            return Ok(());
        }
        let Some(f) = self.cur.as_mut() else {
            self.len = 0;
            return Ok(());
        };
        match f.file.write_all(&self.buf[..self.len]) {
            Ok(()) => {
                f.committed += self.len as u64;
                self.stats.written.merge(&self.pending);
                self.pending = PacketCounts::default();
                self.len = 0;
                Ok(())
            }
            Err(e) => self.write_failed(e),
        }
    }

    /// A write failed: keep the whole records that reached the disk, count the others as writer
    /// losses (their lctr carried on), close the file, and stop or suspend.
    fn write_failed(&mut self, e: io::Error) -> Result<(), OutputError> {
        let full = is_disk_full(&e);
        let Some(f) = self.cur.as_mut() else {
            return Err(OutputError::Stopped);
        };
        let on_disk = f.file.metadata().map(|m| m.len()).unwrap_or(f.committed);
        let written = (on_disk.saturating_sub(f.committed) as usize).min(self.len);
        let keep = erf::whole_records_len(&self.buf[..written]);
        let new_len = f.committed + keep as u64;
        let trunc = f
            .file
            .set_len(new_len)
            .and_then(|_| f.file.seek(SeekFrom::Start(new_len)).map(|_| ()));
        f.committed = new_len;
        let path = f.final_path.clone();
        let kept = PacketCounts::of_records(&self.buf[..keep]);
        let lost = PacketCounts::of_records(&self.buf[keep..self.len]);
        self.stats.written.merge(&kept);
        self.pending = PacketCounts::default();
        self.len = 0;
        for i in 0..MAX_INTERFACES {
            // The lost records' own lctr is owed again, plus one loss per lost record.
            self.lctr_due[i] += lost.iface_lctr[i];
            if lost.iface_packets[i] > 0 {
                self.add_loss(i as u8, LossCause::Writer, lost.iface_packets[i]);
            }
        }
        // Close without a stats record: it would not fit either.
        let close = self.close_current(false);
        if let Err(t) = trunc {
            self.state = State::Stopped;
            return Err(io_err(&path)(t));
        }
        // On a full disk the sidecar may not fit: the ERF file is renamed before its sidecar
        // is written, so it stays valid; the sidecar error is not what the caller must see.
        if full && self.cfg.on_full_disk == FullDiskPolicy::DropAndResume {
            let _ = close;
            self.apply_retention();
            self.state = State::Suspended {
                next_check: Instant::now(),
            };
            return Ok(());
        }
        self.state = State::Stopped;
        if !full {
            close?;
        }
        if full {
            Err(OutputError::DiskFull { path })
        } else {
            Err(io_err(&path)(e))
        }
    }

    fn output_dir(&self) -> PathBuf {
        match &self.cfg.target {
            OutputTarget::Directory { dir, .. } => dir.clone(),
            OutputTarget::File(p) => match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            },
        }
    }

    /// While suspended: resume when enough space is free (checked at most once a second).
    fn try_resume(&mut self) -> bool {
        let State::Suspended { next_check } = self.state else {
            return self.state == State::Running;
        };
        let now = Instant::now();
        if now < next_check {
            return false;
        }
        self.apply_retention();
        let need = self
            .cfg
            .resume_free_bytes
            .unwrap_or(4 * self.threshold as u64);
        let free = sys::free_bytes(&self.output_dir()).unwrap_or(0);
        if free >= need {
            self.state = State::Running;
            true
        } else {
            self.state = State::Suspended {
                next_check: now + Duration::from_secs(1),
            };
            false
        }
    }

    fn open_for(&mut self, ts: Timestamp) -> Result<(), OutputError> {
        let (dir, rotate_interval) = match &self.cfg.target {
            OutputTarget::Directory {
                dir,
                rotate_interval,
                ..
            } => (dir.clone(), *rotate_interval),
            OutputTarget::File(p) => {
                // A single file closed by a full disk (DropAndResume): the rest of the run
                // goes to `<stem>-0002.erf`, `<stem>-0003.erf`... beside it.
                let p = p.clone();
                return self.open_next_single(&p);
            }
        };
        let (name_time, window_end) = match rotate_interval {
            Some(iv) => {
                let iv = iv.as_nanos().min(u64::MAX as u128) as u64;
                let ns = ts.to_unix_nanos();
                let start = ns - ns % iv;
                (
                    Timestamp::from_unix_nanos(start),
                    Some(start.saturating_add(iv)),
                )
            }
            None => (ts, None),
        };
        loop {
            let seq = self.next_seq;
            self.next_seq += 1;
            let name = format!("{FILE_PREFIX}{}-{seq:04}.erf", time::compact(name_time));
            let path = dir.join(&name);
            if path.exists() {
                continue;
            }
            match self.open_at(path, Some(name_time), window_end) {
                Err(OutputError::Exists(_)) => continue,
                Err(OutputError::Io { source, .. })
                    if is_disk_full(&source)
                        && self.cfg.on_full_disk == FullDiskPolicy::DropAndResume =>
                {
                    self.state = State::Suspended {
                        next_check: Instant::now() + Duration::from_secs(1),
                    };
                    return Ok(());
                }
                r => return r,
            }
        }
    }

    fn open_next_single(&mut self, p: &Path) -> Result<(), OutputError> {
        loop {
            self.next_seq += 1;
            let cand = bump_seq(p, self.next_seq).ok_or_else(|| OutputError::Exists(p.into()))?;
            if cand.exists() {
                continue;
            }
            match self.open_at(cand, None, None) {
                Err(OutputError::Exists(_)) => continue,
                Err(OutputError::Io { source, .. })
                    if is_disk_full(&source)
                        && self.cfg.on_full_disk == FullDiskPolicy::DropAndResume =>
                {
                    self.state = State::Suspended {
                        next_check: Instant::now() + Duration::from_secs(1),
                    };
                    return Ok(());
                }
                r => return r,
            }
        }
    }

    fn open_at(
        &mut self,
        final_path: PathBuf,
        name_time: Option<Timestamp>,
        window_end_ns: Option<u64>,
    ) -> Result<(), OutputError> {
        let tmp = temp_path(&final_path);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    OutputError::Exists(tmp.clone())
                } else {
                    io_err(&tmp)(e)
                }
            })?;
        self.cur = Some(OpenFile {
            file,
            tmp,
            final_path,
            seq: self.next_seq.saturating_sub(1),
            committed: 0,
            started: false,
            window_end_ns,
            name_time,
        });
        Ok(())
    }

    /// Puts the start META record into the buffer (when META is on) and marks the file started.
    fn start_file(&mut self, ts: Timestamp) {
        if self.cfg.meta {
            let tlvs = self.start_meta();
            self.push_meta(ts, &tlvs);
        }
        if let Some(f) = self.cur.as_mut() {
            f.started = true;
        }
    }

    fn push_meta(&mut self, ts: Timestamp, tlvs: &[u8]) {
        let mut rec = Vec::with_capacity(tlvs.len() + 32);
        let host = HostId {
            source_id: 0,
            host_id: self.cfg.run.host_id,
        };
        let n = erf::encode_meta(&mut rec, ts, host, tlvs);
        if self.len + n > self.buf.len() {
            // Never happens with a buffer of at least MAX_RLEN spare bytes after a flush.
            return;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&rec);
        self.len += n;
    }

    fn start_meta(&self) -> Vec<u8> {
        let run = &self.cfg.run;
        let mut m = MetaBuilder::new();
        m.time(tag::GEN_TIME, now_ts());
        m.begin_section(section::CAPTURE, 0)
            .string(tag::APP_NAME, "anoncap")
            .string(tag::APP_VERSION, &run.software_version);
        if let Some(f) = &run.filter {
            m.string(tag::FILTER, f);
        }
        if !run.hostname.is_empty() {
            m.string(tag::HOSTNAME, &run.hostname);
        }
        if let Some(d) = &run.description {
            m.string(tag::DESCR, d);
        }
        m.string(
            tag::COMMENT,
            &format!(
                "header-only, addresses anonymised; policy {}; key {}; clock {}; sources {}",
                run.policy,
                run.key_fingerprint,
                run.clock_source,
                run.sources.join(", ")
            ),
        );
        m.begin_section(section::HOST, 0)
            .u64(tag::HOST_ID, run.host_id);
        if !run.hostname.is_empty() {
            m.string(tag::HOSTNAME, &run.hostname);
        }
        m.string(tag::OS, std::env::consts::OS);
        for (i, ifc) in run.interfaces.iter().enumerate() {
            m.begin_section(section::INTERFACE, i as u16 + 1)
                .string(tag::NAME, &ifc.name)
                .u32(tag::IF_NUM, i as u32)
                .u32(tag::FCS_LEN, if ifc.fcs_included { 32 } else { 0 })
                .u32(tag::SNAPLEN, ifc.snaplen);
            if let Some(s) = ifc.speed_bps {
                m.u64(tag::IF_SPEED, s);
            }
        }
        m.finish()
    }

    fn stats_meta(&self, st: &FileStats) -> Vec<u8> {
        let mut m = MetaBuilder::new();
        m.time(tag::GEN_TIME, now_ts());
        let first = st.written.first.unwrap_or_default();
        let last = st.written.last.unwrap_or(first);
        let n = self.cfg.run.interfaces.len().max(1);
        for i in 0..n {
            let l = &st.iface_losses[i];
            let packets = st.written.iface_packets[i];
            m.begin_section(section::STATS, i as u16 + 1)
                .time(tag::START_TIME, first)
                .time(tag::END_TIME, last)
                .u64(tag::STAT_FRAMES, packets + l.total())
                .u64(tag::STAT_CAP, packets)
                .u64(tag::STAT_BYTES, st.written.iface_bytes_wire[i])
                .u64(tag::STAT_IF_DROP, l.get(LossCause::Interface))
                .u64(tag::STAT_OS_DROP, l.get(LossCause::Kernel))
                .u64(
                    tag::STAT_DS_LCTR,
                    l.get(LossCause::Card) + l.get(LossCause::Recorded),
                )
                .u64(
                    tag::STAT_BUF_DROP,
                    l.get(LossCause::Ring) + l.get(LossCause::Writer),
                )
                .u64(tag::STAT_DROP, l.total());
        }
        m.finish()
    }

    /// Closes the current file: flushes, appends the stats META record (if `with_stats` and
    /// META is on), syncs, renames it to its final name, writes its sidecar, applies retention.
    fn close_current(&mut self, with_stats: bool) -> Result<(), OutputError> {
        if with_stats {
            self.flush()?;
            if self.cur.is_none() {
                // The flush failed and already closed the file.
                return Ok(());
            }
            let started = self.cur.as_ref().is_some_and(|f| f.started);
            if self.cfg.meta && started {
                let st = self.current_stats();
                let ts = st.written.last.unwrap_or_else(now_ts);
                let tlvs = self.stats_meta(&st);
                self.push_meta(ts, &tlvs);
                self.flush()?;
                if self.cur.is_none() {
                    return Ok(());
                }
            }
        }
        let Some(f) = self.cur.take() else {
            return Ok(());
        };
        let mut st = std::mem::take(&mut self.stats);
        st.written.merge(&std::mem::take(&mut self.pending));
        self.len = 0;
        self.totals.merge(&st);
        if f.committed == 0 && !matches!(self.cfg.target, OutputTarget::File(_)) {
            // Nothing reached the disk: leave no empty file behind.
            drop(f.file);
            let _ = fs::remove_file(&f.tmp);
            return Ok(());
        }
        let closed = closer::ClosedFile {
            file: f.file,
            tmp: f.tmp,
            final_path: f.final_path,
            seq: f.seq,
            committed: f.committed,
            name_time: f.name_time,
            stats: st,
            report_errors: with_stats,
        };
        let finished = match &self.closer {
            Some(c) => c.submit(closed, &self.cfg),
            None => Some(closer::finish_file(closed, &self.cfg)),
        };
        let mut result = Ok(());
        let ready: Vec<closer::Finished> = match &self.closer {
            Some(c) => c.ready().chain(finished).collect(),
            None => finished.into_iter().collect(),
        };
        for fin in ready {
            self.take_finished(fin, &mut result);
        }
        result
    }

    /// Records a finished file's name; keeps the first error to be reported in `result`.
    fn take_finished(&mut self, fin: closer::Finished, result: &mut Result<(), OutputError>) {
        self.files.extend(fin.path);
        if let Err(e) = fin.result {
            if fin.report && result.is_ok() {
                *result = Err(e);
            }
        }
    }

    /// Deletes the oldest finished files beyond the retention limits (directory outputs).
    fn apply_retention(&self) {
        apply_retention(&self.cfg);
    }

    /// Closes the last file (with its stats record and sidecar) and returns the run's totals
    /// and the list of files written.
    pub fn finish(mut self) -> Result<OutputSummary, OutputError> {
        let stopped = self.state == State::Stopped;
        if !stopped {
            if let Some(f) = &self.cur {
                if !f.started {
                    // A single-file target that saw no packet: it still gets its META record.
                    let ts = now_ts();
                    self.start_file(ts);
                }
            }
            self.close_current(true)?;
        }
        if let Some(mut closer) = self.closer.take() {
            let mut result = Ok(());
            for fin in closer.wait_all() {
                self.take_finished(fin, &mut result);
            }
            result?;
        }
        let mut totals = std::mem::take(&mut self.totals);
        totals.merge(&self.stats);
        Ok(OutputSummary {
            files: std::mem::take(&mut self.files),
            totals,
            stopped_on_error: stopped || self.state == State::Stopped,
        })
    }
}

impl Drop for ErfWriter {
    fn drop(&mut self) {
        // A writer dropped without finish() (a panic or an early return) still leaves a valid
        // file: close it as finish() would, ignoring errors.
        if self.state != State::Stopped && self.cur.is_some() {
            let _ = self.close_current(true);
        }
    }
}

/// Deletes the oldest finished files beyond the retention limits (directory outputs).
fn apply_retention(cfg: &OutputConfig) {
    let (Some(r), OutputTarget::Directory { dir, .. }) = (cfg.retention, &cfg.target) else {
        return;
    };
    let mut files = sidecar::list_outputs(dir);
    let mut total: u64 = files.iter().map(|(_, s)| *s).sum();
    let mut removed = 0;
    while !files.is_empty() {
        let too_many = r.max_files.is_some_and(|m| files.len() - removed > m);
        let too_big = r.max_bytes.is_some_and(|m| total > m);
        let too_full = r
            .min_free_bytes
            .is_some_and(|m| sys::free_bytes(dir).map(|f| f < m).unwrap_or(false));
        if removed >= files.len() || !(too_many || too_big || too_full) {
            break;
        }
        let (p, size) = &files[removed];
        if fs::remove_file(p).is_ok() {
            let mut j = p.clone().into_os_string();
            j.push(".json");
            let _ = fs::remove_file(PathBuf::from(j));
            total -= size;
        }
        removed += 1;
    }
    files.clear();
}

/// The temporary name of an output file: `.<name>.part` in the same directory.
pub fn temp_path(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".{name}.part"))
}

/// Moves `tmp` to `want` without replacing an existing file; if `want` exists, the sequence
/// number in the name is increased until a free name is found.
fn finalize_name(tmp: &Path, want: &Path, seq: u32) -> Result<PathBuf, OutputError> {
    let mut target = want.to_path_buf();
    let mut seq = seq;
    for _ in 0..10_000 {
        match fs::hard_link(tmp, &target) {
            Ok(()) => {
                fs::remove_file(tmp).map_err(io_err(tmp))?;
                return Ok(target);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                seq += 1;
                target = bump_seq(want, seq).ok_or_else(|| OutputError::Exists(want.into()))?;
            }
            Err(_) => {
                // A file system without hard links: check, then rename.
                if target.exists() {
                    seq += 1;
                    target = bump_seq(want, seq).ok_or_else(|| OutputError::Exists(want.into()))?;
                    continue;
                }
                fs::rename(tmp, &target).map_err(io_err(tmp))?;
                return Ok(target);
            }
        }
    }
    Err(OutputError::Exists(want.to_path_buf()))
}

/// `anoncap-<time>-0001.erf` with another sequence number; for other names `<stem>-<seq>.erf`.
fn bump_seq(path: &Path, seq: u32) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".erf").unwrap_or(name);
    let base = match stem.rsplit_once('-') {
        Some((b, s)) if name.starts_with(FILE_PREFIX) && s.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => stem,
    };
    Some(path.with_file_name(format!("{base}-{seq:04}.erf")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_and_bumped_names() {
        let p = Path::new("/d/anoncap-20260101T120000.000000000Z-0001.erf");
        assert_eq!(
            temp_path(p),
            Path::new("/d/.anoncap-20260101T120000.000000000Z-0001.erf.part")
        );
        assert_eq!(
            bump_seq(p, 2).unwrap(),
            Path::new("/d/anoncap-20260101T120000.000000000Z-0002.erf")
        );
        assert_eq!(
            bump_seq(Path::new("/d/out.erf"), 3).unwrap(),
            Path::new("/d/out-0003.erf")
        );
    }
}
