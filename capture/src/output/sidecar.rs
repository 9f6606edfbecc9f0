//! JSON sidecars, the listing of a directory's outputs, and the recovery of partial files.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    finalize_name, io_err, time, FileStats, OutputConfig, OutputError, OutputTarget, PacketCounts,
    TraceDescription, FILE_PREFIX, MAX_INTERFACES,
};
use crate::erf;
use crate::packet::Timestamp;
use crate::stats::{CutCounts, LossCounts};

/// The sidecar schema name and version.
pub const SIDECAR_FORMAT: &str = "anoncap-erf-sidecar/1";

#[derive(Serialize)]
struct TimeWindow {
    first: Option<String>,
    last: Option<String>,
    first_unix_ns: Option<u64>,
    last_unix_ns: Option<u64>,
    /// The start of the file's rotation window (time rotation), or the first record's time.
    file_name_time: Option<String>,
}

impl TimeWindow {
    fn new(c: &PacketCounts, name_time: Option<Timestamp>) -> Self {
        TimeWindow {
            first: c.first.map(time::rfc3339),
            last: c.last.map(time::rfc3339),
            first_unix_ns: c.first.map(Timestamp::to_unix_nanos),
            last_unix_ns: c.last.map(Timestamp::to_unix_nanos),
            file_name_time: name_time.map(time::rfc3339),
        }
    }
}

#[derive(Serialize)]
struct InterfaceJson<'a> {
    if_num: usize,
    name: &'a str,
    wlen_includes_fcs: bool,
    snaplen: u32,
    speed_bps: Option<u64>,
    packets: u64,
    bytes_wire: u64,
    lctr_total: u64,
    losses: &'a LossCounts,
}

#[derive(Serialize)]
struct RunJson<'a> {
    software: &'static str,
    software_version: &'a str,
    sources: &'a [String],
    policy: &'a str,
    key_fingerprint: &'a str,
    filter: Option<&'a str>,
    clock_source: &'a str,
    hostname: &'a str,
    description: Option<&'a str>,
    host_id: u64,
    meta_records: bool,
}

#[derive(Serialize)]
struct DescriptionJson<'a> {
    trace_format: &'static str,
    capture_tool: String,
    start: Option<String>,
    end: Option<String>,
    duration_s: Option<f64>,
    packets: u64,
    bytes_wire: u64,
    mean_rate_bps: Option<f64>,
    snap_method: &'static str,
    anonymization: String,
    timezone: &'static str,
    rotation_policy: String,
    #[serde(flatten)]
    operator: &'a TraceDescription,
}

/// The sidecar of one finished file.
#[derive(Serialize)]
pub struct Sidecar<'a> {
    format: &'static str,
    file: String,
    sequence: u32,
    partial: bool,
    file_bytes: u64,
    time_window: TimeWindow,
    packets: u64,
    bytes_captured: u64,
    bytes_wire: u64,
    losses: &'a LossCounts,
    losses_total: u64,
    cuts: &'a CutCounts,
    cuts_total: u64,
    dropped: &'a CutCounts,
    dropped_total: u64,
    wlen_clamped: u64,
    interfaces: Vec<InterfaceJson<'a>>,
    run: RunJson<'a>,
    trace_description: DescriptionJson<'a>,
}

fn duration_s(c: &PacketCounts) -> Option<f64> {
    match (c.first, c.last) {
        (Some(f), Some(l)) => Some((l.to_unix_nanos() - f.to_unix_nanos()) as f64 / 1e9),
        _ => None,
    }
}

impl<'a> Sidecar<'a> {
    /// Builds the sidecar of a finished file.
    pub fn new(
        path: &Path,
        sequence: u32,
        partial: bool,
        file_bytes: u64,
        name_time: Option<Timestamp>,
        st: &'a FileStats,
        cfg: &'a OutputConfig,
    ) -> Self {
        let run = &cfg.run;
        let c = &st.written;
        let n_if = run.interfaces.len().max(
            (0..MAX_INTERFACES)
                .rev()
                .find(|i| c.iface_packets[*i] > 0)
                .map_or(0, |i| i + 1),
        );
        let interfaces = (0..n_if)
            .map(|i| {
                let info = run.interfaces.get(i);
                InterfaceJson {
                    if_num: i,
                    name: info.map_or("", |x| x.name.as_str()),
                    wlen_includes_fcs: info.is_some_and(|x| x.fcs_included),
                    snaplen: info.map_or(0, |x| x.snaplen),
                    speed_bps: info.and_then(|x| x.speed_bps),
                    packets: c.iface_packets[i],
                    bytes_wire: c.iface_bytes_wire[i],
                    lctr_total: c.iface_lctr[i],
                    losses: &st.iface_losses[i],
                }
            })
            .collect();
        let dur = duration_s(c);
        let rotation_policy = match &cfg.target {
            OutputTarget::File(_) => "single file".to_string(),
            OutputTarget::Directory {
                rotate_bytes,
                rotate_interval,
                ..
            } => match rotate_interval {
                Some(iv) => format!(
                    "new file every {rotate_bytes} bytes and at every multiple of {} s (UTC)",
                    iv.as_secs_f64()
                ),
                None => format!("new file every {rotate_bytes} bytes"),
            },
        };
        Sidecar {
            format: SIDECAR_FORMAT,
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sequence,
            partial,
            file_bytes,
            time_window: TimeWindow::new(c, name_time),
            packets: c.packets,
            bytes_captured: c.bytes_captured,
            bytes_wire: c.bytes_wire,
            losses: &st.losses,
            losses_total: st.losses.total(),
            cuts: &st.cuts,
            cuts_total: st.cuts.total(),
            dropped: &st.dropped,
            dropped_total: st.dropped.total(),
            wlen_clamped: st.wlen_clamped,
            interfaces,
            run: RunJson {
                software: "anoncap",
                software_version: &run.software_version,
                sources: &run.sources,
                policy: &run.policy,
                key_fingerprint: &run.key_fingerprint,
                filter: run.filter.as_deref(),
                clock_source: &run.clock_source,
                hostname: &run.hostname,
                description: run.description.as_deref(),
                host_id: run.host_id,
                meta_records: cfg.meta,
            },
            trace_description: DescriptionJson {
                trace_format: "ERF",
                capture_tool: format!("anoncap {}", run.software_version),
                start: c.first.map(time::rfc3339),
                end: c.last.map(time::rfc3339),
                duration_s: dur,
                packets: c.packets,
                bytes_wire: c.bytes_wire,
                mean_rate_bps: dur
                    .filter(|d| *d > 0.0)
                    .map(|d| c.bytes_wire as f64 * 8.0 / d),
                snap_method: "L2-L4 headers kept, payload removed",
                anonymization: format!(
                    "IP addresses: prefix-preserving Crypto-PAn (key fingerprint {}); policy {}",
                    run.key_fingerprint, run.policy
                ),
                timezone: "UTC",
                rotation_policy,
                operator: &run.trace,
            },
        }
    }
}

/// `<file>.json`.
pub fn sidecar_path(erf_path: &Path) -> PathBuf {
    let mut s = erf_path.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Writes `value` as pretty JSON to `<erf_path>.json` through a temporary file and a rename.
pub fn write_atomic<T: Serialize>(erf_path: &Path, value: &T) -> Result<(), OutputError> {
    let path = sidecar_path(erf_path);
    let tmp = super::temp_path(&path);
    let mut text =
        serde_json::to_vec_pretty(value).map_err(|e| io_err(&path)(io::Error::other(e)))?;
    text.push(b'\n');
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(&path)(e)
    })
}

/// The finished output files of a directory (`anoncap-*.erf`), oldest (by name) first, with
/// their sizes.
pub fn list_outputs(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(PathBuf, u64)> = rd
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with(FILE_PREFIX) && n.ends_with(".erf")
        })
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file().then(|| (e.path(), m.len()))
        })
        .collect();
    v.sort();
    v
}

#[derive(Serialize)]
struct RecoveredSidecar {
    format: &'static str,
    file: String,
    partial: bool,
    recovered_from: String,
    file_bytes: u64,
    bytes_discarded: u64,
    time_window: TimeWindow,
    packets: u64,
    bytes_captured: u64,
    bytes_wire: u64,
    lctr_total: u64,
    note: &'static str,
}

/// Completes the temporary files a killed run left in `dir` (`.<name>.erf.part`): each is cut
/// back to its last whole record and renamed `<name>.partial.erf` (never replacing a file),
/// with a sidecar counted from its records. Files with no whole packet record, and leftover
/// temporary sidecars (`.<name>.erf.json.part`), are deleted. Returns
/// the recovered files. Call it before a new run writes into the same directory.
pub fn recover_partials(dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    let mut out = Vec::new();
    let rd = fs::read_dir(dir).map_err(io_err(dir))?;
    let mut temps: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.ends_with(".erf.part"))
        })
        .collect();
    temps.sort();
    // A sidecar's temporary file is only ever a sidecar not yet complete: its ERF file is
    // finished (or recovered below, with a new sidecar), so the leftover is removed.
    if let Ok(rd) = fs::read_dir(dir) {
        for p in rd.filter_map(Result::ok).map(|e| e.path()) {
            let stale = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') && n.ends_with(".erf.json.part"));
            if stale {
                let _ = fs::remove_file(p);
            }
        }
    }
    for tmp in temps {
        let data = fs::read(&tmp).map_err(io_err(&tmp))?;
        let keep = erf::whole_records_len(&data);
        let counts = PacketCounts::of_records(&data[..keep]);
        if counts.packets == 0 {
            fs::remove_file(&tmp).map_err(io_err(&tmp))?;
            continue;
        }
        let f = OpenOptions::new()
            .write(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.set_len(keep as u64).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        drop(f);
        let name = tmp.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let erf_name = &name[1..name.len() - ".erf.part".len()];
        let want = dir.join(format!("{erf_name}.partial.erf"));
        let final_path = finalize_partial(&tmp, &want)?;
        let sc = RecoveredSidecar {
            format: SIDECAR_FORMAT,
            file: final_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            partial: true,
            recovered_from: name.to_string(),
            file_bytes: keep as u64,
            bytes_discarded: (data.len() - keep) as u64,
            time_window: TimeWindow::new(&counts, None),
            packets: counts.packets,
            bytes_captured: counts.bytes_captured,
            bytes_wire: counts.bytes_wire,
            lctr_total: counts.iface_lctr.iter().sum(),
            note: "left by an interrupted run; counted from the records; the run's loss and cut \
                   totals were not recorded",
        };
        write_atomic(&final_path, &sc)?;
        out.push(final_path);
    }
    Ok(out)
}

fn finalize_partial(tmp: &Path, want: &Path) -> Result<PathBuf, OutputError> {
    let mut target = want.to_path_buf();
    for n in 1..10_000u32 {
        if !target.exists() {
            return finalize_name(tmp, &target, 0);
        }
        let s = want.to_string_lossy();
        let base = s.strip_suffix(".partial.erf").unwrap_or(&s);
        target = PathBuf::from(format!("{base}.partial-{n}.erf"));
    }
    Err(OutputError::Exists(want.to_path_buf()))
}
