//! Memory-mapped readers of pcap, pcapng and ERF traces.
//!
//! [`Trace::open`] maps a file, detects its format from its first bytes (never from its name)
//! and checks its file header. [`Trace::packets`] walks its records without copying them: each
//! [`Packet`] borrows its bytes from the map. [`Merge`] interleaves several traces by timestamp,
//! as mergecap does.
//!
//! Supported: pcap (both byte orders, micro- and nanosecond magic), pcapng (several sections and
//! interfaces, per-interface `if_tsresol` / `if_tsoffset`, enhanced, simple and obsolete packet
//! blocks), ERF (ETH family, IPv4, IPv6). Link types: Ethernet, raw IP (101, 228, 229), Linux
//! cooked v1/v2, BSD loopback. Packets of other link types, ERF META/PAD records and other ERF
//! types are skipped and counted in [`SkipCounts`]. `docs/formats.md` lists the per-format facts.
//!
//! # No-panic contract
//!
//! No function here panics on any input bytes, and every slice handed out lies inside the map.
//! A malformed record ends the iteration with one [`InputError::Record`] naming the file, the
//! 1-based record number and the byte offset; every record before it has been delivered.
//! The property tests in `capture/tests/input_props.rs` and the fuzz targets `pcap`, `pcapng`
//! and `erf_input` check this over arbitrary and mutated bytes.

mod erf;
mod map;
mod merge;
mod pcap;
mod pcapng;

pub use merge::Merge;
/// The pcap/pcapng crate the readers are built on, for tools that write those formats with the
/// same version (e.g. `anoncap convert`).
pub use pcap_file;

use crate::packet::{LinkType, Packet};
use memmap2::Mmap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The trace formats anoncap reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// libpcap's format (any byte order, micro- or nanosecond timestamps).
    Pcap,
    /// pcapng.
    PcapNg,
    /// Endace ERF (records with no file header).
    Erf,
}

impl Format {
    /// The format's name as tools print it.
    pub const fn name(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
            Format::Erf => "erf",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Detects the format of a trace from its first bytes, or `None` if they are not a trace.
///
/// pcap and pcapng are recognised by their magic numbers; ERF, which has no file header, by a
/// plausibility check of its first records (as libtrace and Wireshark do, see `docs/formats.md`).
pub fn detect(bytes: &[u8]) -> Option<Format> {
    if pcap::is_pcap(bytes) {
        Some(Format::Pcap)
    } else if pcapng::is_pcapng(bytes) {
        Some(Format::PcapNg)
    } else if erf::is_erf(bytes) {
        Some(Format::Erf)
    } else {
        None
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The file ends inside the record (`need` bytes from the record's start, `have` remain).
    Truncated {
        /// Bytes the record needs from its start.
        need: u64,
        /// Bytes left in the file from the record's start.
        have: u64,
    },
    /// The captured length is larger than the interface's snap length.
    ExceedsSnaplen {
        /// The record's captured length.
        caplen: u32,
        /// The interface's snap length.
        snaplen: u32,
    },
    /// A packet refers to an interface that no interface description defined.
    UnknownInterface(u32),
    /// A length or field is impossible.
    Corrupt(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Truncated { need, have } => write!(
                f,
                "record needs {need} bytes but the file ends {have} bytes after its start \
                 (truncated file?)"
            ),
            RecordError::ExceedsSnaplen { caplen, snaplen } => write!(
                f,
                "captured length {caplen} exceeds the snap length {snaplen}"
            ),
            RecordError::UnknownInterface(id) => {
                write!(
                    f,
                    "packet of interface {id}, which no interface block describes"
                )
            }
            RecordError::Corrupt(why) => write!(f, "corrupt record: {why}"),
        }
    }
}

/// An error reading a trace. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or mapped.
    #[error("{}: cannot read: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{}: empty file, not a trace", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a pcap, pcapng or ERF trace.
    #[error("{}: not a pcap, pcapng or ERF trace", path.display())]
    NotATrace {
        /// The file.
        path: PathBuf,
    },
    /// The file header (pcap header, first pcapng section header) is corrupt.
    #[error("{}: corrupt {format} file header: {reason}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: Format,
        /// What is wrong.
        reason: String,
    },
    /// A record (packet, block) is malformed; every record before it was delivered.
    #[error("{}: record {record} at byte offset {offset}: {kind}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based record number (see `docs/formats.md`: equal to Wireshark's frame number
        /// for pcap and ERF).
        record: u64,
        /// Byte offset of the record's start in the file.
        offset: u64,
        /// What is wrong.
        kind: RecordError,
    },
}

impl InputError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            InputError::Open { path, .. }
            | InputError::Empty { path }
            | InputError::NotATrace { path }
            | InputError::BadHeader { path, .. }
            | InputError::Record { path, .. } => path,
        }
    }
}

/// Records a reader skipped instead of handing them on, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkipCounts {
    /// Packets of link types anoncap does not read: (LINKTYPE number, count), in order of first
    /// appearance.
    pub other_link: Vec<(u32, u64)>,
    /// ERF META (provenance) records: metadata, not packets; never copied to the output.
    pub erf_meta: u64,
    /// ERF PAD records.
    pub erf_pad: u64,
    /// ERF records of other types: (ERF type, count), in order of first appearance.
    pub erf_other: Vec<(u8, u64)>,
}

impl SkipCounts {
    pub(crate) fn count_link(&mut self, linktype: u32) {
        bump(&mut self.other_link, linktype);
    }

    pub(crate) fn count_erf_type(&mut self, ty: u8) {
        bump(&mut self.erf_other, ty);
    }

    /// Packets skipped because of their link type or ERF type (META and PAD excluded: they
    /// are not packets).
    pub fn skipped_packets(&self) -> u64 {
        self.other_link.iter().map(|(_, n)| n).sum::<u64>()
            + self.erf_other.iter().map(|(_, n)| n).sum::<u64>()
    }

    /// Whether nothing was skipped.
    pub fn is_empty(&self) -> bool {
        self.skipped_packets() == 0 && self.erf_meta == 0 && self.erf_pad == 0
    }

    /// Adds another set of counts to this one.
    pub fn add(&mut self, other: &SkipCounts) {
        for &(lt, n) in &other.other_link {
            add_n(&mut self.other_link, lt, n);
        }
        for &(ty, n) in &other.erf_other {
            add_n(&mut self.erf_other, ty, n);
        }
        self.erf_meta += other.erf_meta;
        self.erf_pad += other.erf_pad;
    }

    /// Each kind of skipped record with a short description and its count (for sidecars and
    /// summaries).
    pub fn described(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for &(lt, n) in &self.other_link {
            out.push((
                format!(
                    "link type {lt} ({}), not read by anoncap",
                    linktype_name(lt)
                ),
                n,
            ));
        }
        for &(ty, n) in &self.erf_other {
            out.push((format!("ERF type {ty}, not read by anoncap"), n));
        }
        if self.erf_meta > 0 {
            out.push((
                "ERF META records (metadata, not packets)".to_string(),
                self.erf_meta,
            ));
        }
        if self.erf_pad > 0 {
            out.push(("ERF PAD records".to_string(), self.erf_pad));
        }
        out
    }

    /// One line per kind of skipped record, for the end-of-run summary.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for &(lt, n) in &self.other_link {
            out.push(format!(
                "skipped {n} packet(s) of link type {lt} ({}): anoncap reads Ethernet, raw IP \
                 (101, 228, 229), Linux cooked (113, 276) and BSD loopback (0)",
                linktype_name(lt)
            ));
        }
        for &(ty, n) in &self.erf_other {
            out.push(format!(
                "skipped {n} ERF record(s) of type {ty}: anoncap reads ERF types 2, 11, 16, 20 \
                 (Ethernet), 22 (IPv4) and 23 (IPv6)"
            ));
        }
        if self.erf_meta > 0 {
            out.push(format!(
                "skipped {} ERF META (provenance) record(s): metadata, not packets",
                self.erf_meta
            ));
        }
        if self.erf_pad > 0 {
            out.push(format!("skipped {} ERF PAD record(s)", self.erf_pad));
        }
        out
    }
}

fn bump<K: PartialEq + Copy>(v: &mut Vec<(K, u64)>, k: K) {
    add_n(v, k, 1);
}

fn add_n<K: PartialEq + Copy>(v: &mut Vec<(K, u64)>, k: K, n: u64) {
    match v.iter_mut().find(|(key, _)| *key == k) {
        Some((_, c)) => *c += n,
        None => v.push((k, n)),
    }
}

/// A short name for a LINKTYPE number, for messages.
pub fn linktype_name(lt: u32) -> &'static str {
    match lt {
        0 => "BSD loopback",
        1 => "Ethernet",
        101 => "raw IP",
        105 => "IEEE 802.11",
        113 => "Linux cooked v1",
        127 => "802.11 radiotap",
        197 => "ERF",
        228 => "raw IPv4",
        229 => "raw IPv6",
        276 => "Linux cooked v2",
        _ => "unsupported",
    }
}

/// What a trace says about one capture interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceDesc {
    /// The link type, or `None` for one anoncap skips.
    pub link: Option<LinkType>,
    /// The raw LINKTYPE number (for ERF: the LINKTYPE equivalent of the record type).
    pub linktype: u32,
    /// Bytes of frame check sequence at the end of each complete frame, when known: the
    /// interface's wire lengths include it. ERF Ethernet from DAG cards: 4 (unless a META
    /// record says otherwise); pcap: the FCS bits of the link-type field; pcapng: `if_fcslen`.
    pub fcs_len: Option<u32>,
    /// The snap length (0: no limit).
    pub snaplen: u32,
    /// The interface's name, if the trace gives one.
    pub name: Option<String>,
}

impl InterfaceDesc {
    /// Whether wire lengths (and complete frames) of this interface include an FCS.
    pub fn fcs_included(&self) -> bool {
        self.fcs_len.is_some_and(|n| n > 0)
    }
}

/// An open, memory-mapped trace.
pub struct Trace {
    path: Arc<Path>,
    map: Mmap,
    format: Format,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("path", &self.path)
            .field("len", &self.map.len())
            .field("format", &self.format)
            .finish()
    }
}

impl Trace {
    /// Opens and maps `path`, detects its format and checks its file header.
    ///
    /// An empty file, a file that is not a trace and a corrupt file header are errors.
    pub fn open(path: &Path) -> Result<Trace, InputError> {
        let open_err = |source| InputError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        if len == 0 {
            return Err(InputError::Empty {
                path: path.to_path_buf(),
            });
        }
        let map = map::map(&file).map_err(open_err)?;
        let format = check(path, &map)?;
        Ok(Trace {
            path: Arc::from(path),
            map,
            format,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The detected format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The mapped bytes of the whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The file's packets, in file order.
    pub fn packets(&self) -> Packets<'_> {
        Packets::new(self.path.clone(), &self.map, self.format)
    }

    /// Every capture interface of the trace, in the order of [`Packet::iface`] numbers.
    ///
    /// pcap: the one interface of the file header. pcapng: every interface description block
    /// of every section (numbered across sections). ERF: the interfaces (flags bits 0-1) that
    /// packet records use, found by walking the record headers. A malformed record ends the
    /// walk: the error is reported by [`Trace::packets`].
    pub fn interfaces(&self) -> Vec<InterfaceDesc> {
        match self.format {
            Format::Pcap => pcap::interfaces(&self.map),
            Format::PcapNg => pcapng::interfaces(&self.map),
            Format::Erf => erf::interfaces(&self.map),
        }
    }
}

/// Detects the format of `bytes` and checks its file header, as [`Trace::open`] does.
fn check(path: &Path, bytes: &[u8]) -> Result<Format, InputError> {
    if bytes.is_empty() {
        return Err(InputError::Empty {
            path: path.to_path_buf(),
        });
    }
    let format = detect(bytes).ok_or_else(|| InputError::NotATrace {
        path: path.to_path_buf(),
    })?;
    let header_check = match format {
        Format::Pcap => pcap::check_header(bytes),
        Format::PcapNg => pcapng::check_header(bytes),
        Format::Erf => Ok(()),
    };
    header_check.map_err(|reason| InputError::BadHeader {
        path: path.to_path_buf(),
        format,
        reason,
    })?;
    Ok(format)
}

enum Reader<'a> {
    Pcap(pcap::PcapReader<'a>),
    PcapNg(pcapng::NgReader<'a>),
    Erf(erf::ErfReader),
    Done,
}

/// A reader's position, shared by the format readers to build errors.
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    /// Offset of the next record.
    pub(crate) offset: usize,
    /// Records read so far (the next one is `records + 1`).
    pub(crate) records: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.offset..).unwrap_or(&[])
    }
}

/// An iterator over the packets of a [`Trace`].
///
/// Yields `Ok(packet)` for each packet of a supported link type, then ends; or yields one
/// `Err` at the first malformed record and ends. Skipped records are counted in
/// [`Packets::skipped`].
pub struct Packets<'a> {
    path: Arc<Path>,
    reader: Reader<'a>,
    cur: Cursor<'a>,
    skipped: SkipCounts,
    delivered: u64,
}

impl<'a> Packets<'a> {
    fn new(path: Arc<Path>, bytes: &'a [u8], format: Format) -> Packets<'a> {
        let mut cur = Cursor {
            bytes,
            offset: 0,
            records: 0,
        };
        let reader = match format {
            Format::Pcap => pcap::PcapReader::new(&mut cur).map(Reader::Pcap),
            Format::PcapNg => pcapng::NgReader::new(&mut cur).map(Reader::PcapNg),
            Format::Erf => Some(Reader::Erf(erf::ErfReader::new())),
        }
        .unwrap_or(Reader::Done);
        Packets {
            path,
            reader,
            cur,
            skipped: SkipCounts::default(),
            delivered: 0,
        }
    }

    /// Reads a trace held in memory (e.g. by a fuzzer) exactly as [`Trace::open`] and
    /// [`Trace::packets`] read a file; `path` names it in errors.
    pub fn from_bytes(path: &Path, bytes: &'a [u8]) -> Result<Packets<'a>, InputError> {
        let format = check(path, bytes)?;
        Ok(Packets::new(Arc::from(path), bytes, format))
    }

    /// Records skipped so far: other link types, ERF META/PAD and other ERF types.
    pub fn skipped(&self) -> &SkipCounts {
        &self.skipped
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Packets delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Records read so far (delivered, skipped, and for ERF META/PAD records).
    pub fn records(&self) -> u64 {
        self.cur.records
    }

    /// Interfaces the reader has met so far (see [`Trace::interfaces`] for all of them).
    pub fn interfaces(&self) -> Vec<InterfaceDesc> {
        match &self.reader {
            Reader::Pcap(r) => r.interfaces(),
            Reader::PcapNg(r) => r.interfaces(),
            Reader::Erf(r) => r.interfaces(),
            Reader::Done => Vec::new(),
        }
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<Packet<'a>, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        let res = match &mut self.reader {
            Reader::Pcap(r) => r.next(&mut self.cur, &mut self.skipped),
            Reader::PcapNg(r) => r.next(&mut self.cur, &mut self.skipped),
            Reader::Erf(r) => r.next(&mut self.cur, &mut self.skipped),
            Reader::Done => return None,
        };
        match res {
            Ok(Some(p)) => {
                self.delivered += 1;
                Some(Ok(p))
            }
            Ok(None) => {
                self.reader = Reader::Done;
                None
            }
            Err(kind) => {
                // Keep the state of the files at the error; this iterator is fused.
                let err = InputError::Record {
                    path: self.path.to_path_buf(),
                    record: self.cur.records + 1,
                    offset: self.cur.offset as u64,
                    kind,
                };
                self.reader = Reader::Done;
                Some(Err(err))
            }
        }
    }
}

impl std::iter::FusedIterator for Packets<'_> {}

/// Reads a big- or little-endian integer from a slice known to be long enough; 0 otherwise.
pub(crate) fn rd_u16(b: &[u8], at: usize, big: bool) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => {
            let a = [s[0], s[1]];
            if big {
                u16::from_be_bytes(a)
            } else {
                u16::from_le_bytes(a)
            }
        }
        None => 0,
    }
}

/// See [`rd_u16`].
pub(crate) fn rd_u32(b: &[u8], at: usize, big: bool) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => {
            let a = [s[0], s[1], s[2], s[3]];
            if big {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        }
        None => 0,
    }
}

/// See [`rd_u16`].
pub(crate) fn rd_u64(b: &[u8], at: usize, big: bool) -> u64 {
    match b.get(at..at + 8) {
        Some(s) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            if big {
                u64::from_be_bytes(a)
            } else {
                u64::from_le_bytes(a)
            }
        }
        None => 0,
    }
}
