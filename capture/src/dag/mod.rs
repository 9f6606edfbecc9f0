//! The Endace DAG backend (feature `dag`): ERF records straight from a DAG card's receive
//! stream, through the same rewriter, anonymiser and writer as every other path.
//!
//! - [`DagDevice::open`] opens the card (`dag_open`), optionally [`DagDevice::configure`]s it;
//! - [`DagStream::attach`] attaches a receive stream (even-numbered) and sets its polling
//!   parameters, [`DagStream::start`] starts it;
//! - [`DagStream::next_batch`] waits for new records (`dag_advance_stream`) and returns a
//!   [`Batch`] over the new window; [`Batch::next_record`] parses the card's ERF records in
//!   place and yields each as a [`DagRecord`] whose packet borrows the card's memory. The space
//!   of the records a batch yielded is handed back to the card when the batch is dropped, and
//!   not before, so the card can never overwrite a record that is still being read;
//! - [`pipeline`] runs a whole capture: each packet is copied, rewritten and written exactly as
//!   the offline pipeline does it, and the card's losses are added under
//!   [`LossCause::Card`](crate::stats::LossCause::Card).
//!
//! Every call into the C library and every read of the card's memory is in `ffi`, the one
//! module of this crate that allows `unsafe`; this module and its children are safe code.
//!
//! # What the card's records mean here
//!
//! - Timestamps, interface bits (0-1) and wlen are the card's. On Ethernet, DAG cards count the
//!   4-byte FCS in wlen (and in the captured bytes of a full capture): the output keeps wlen as
//!   the card reported it and its META interface sections say `fcs_len` 32 bits.
//! - lctr (records lost between the card and host memory since the previous record of the
//!   stream) is added once to the loss totals under `dropped-by-card`, whatever the record is.
//!   Colour types (11, 16, 20) hold a colour there, so they carry no loss count.
//! - Records flagged `rxerror` (a link-layer error: bad FCS, PHY error, frame too long or short)
//!   or `dserror` (an internal card error: the record is not to be trusted) are not written;
//!   each is counted in [`DagCounters`]. A `dserror` record's lctr is not trusted either and is
//!   not added to the losses. Records flagged `trunc` (cut short because the card's buffer
//!   overran) are written like any other and counted.
//! - PAD records are skipped; META records from the card are skipped (the output gets its own);
//!   record types that are not Ethernet, IPv4 or IPv6 are skipped and counted.
//!
//! # No-panic contract
//!
//! Nothing here panics on any bytes the card (or the stand-in) delivers: a record that cannot be
//! parsed ends the capture with [`DagError::BadRecord`], naming the stream and the offset.

mod ffi;
pub mod pipeline;

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::erf::{Record, RecordType};
use crate::packet::{LinkType, Packet};

/// Which DAG library this build links: `libdag from ...` or `stand-in (...)`.
pub const LINKED_LIBRARY: &str = env!("ANONCAP_DAG_LIBRARY");

/// What can go wrong with the card.
#[derive(Debug, thiserror::Error)]
pub enum DagError {
    /// The device path holds a NUL byte.
    #[error("DAG device path {0:?} contains a NUL byte")]
    BadPath(PathBuf),
    /// `dag_open` failed.
    #[error("cannot open DAG device {path}: {source}")]
    Open {
        /// The device.
        path: PathBuf,
        /// errno from libdag.
        source: io::Error,
    },
    /// `dag_configure` failed.
    #[error("dag_configure({params:?}) failed on {path}: {source}")]
    Configure {
        /// The device.
        path: PathBuf,
        /// The configuration string.
        params: String,
        /// errno from libdag.
        source: io::Error,
    },
    /// The stream number is odd (a transmit stream).
    #[error("stream {0} is a transmit stream: DAG receive streams are even-numbered (0, 2, 4...)")]
    NotReceiveStream(u32),
    /// A stream call (`dag_attach_stream64`, `dag_set_stream_poll64`, `dag_start_stream`,
    /// `dag_stop_stream`, `dag_advance_stream`) failed.
    #[error("{call} failed on stream {stream} of {path}: {source}")]
    Stream {
        /// The C function.
        call: &'static str,
        /// The device.
        path: PathBuf,
        /// The stream number.
        stream: u32,
        /// errno from libdag.
        source: io::Error,
    },
    /// The card's window holds bytes that are not a whole ERF record.
    #[error("stream {stream}: malformed ERF record at byte {offset} of the window: {kind}")]
    BadRecord {
        /// The stream number.
        stream: u32,
        /// The offset of the record in the window.
        offset: usize,
        /// What is wrong.
        kind: crate::erf::RecordError,
    },
}

/// An open DAG card (`dag_open`), closed on drop.
#[derive(Debug)]
pub struct DagDevice {
    fd: ffi::DeviceFd,
    path: PathBuf,
}

impl DagDevice {
    /// Opens the card, e.g. `/dev/dag0`.
    pub fn open(path: &Path) -> Result<Self, DagError> {
        let name = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| DagError::BadPath(path.to_path_buf()))?;
        let fd = ffi::DeviceFd::open(&name).map_err(|source| DagError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(DagDevice {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Passes a configuration string to `dag_configure` (the classic libdag tokens, e.g.
    /// `"slen=128 varlen"`). Current DAG software configures cards with `dagconfig` and may
    /// refuse a non-empty string here; leave it out unless the card's software accepts it.
    pub fn configure(&self, params: &str) -> Result<(), DagError> {
        let err = |source| DagError::Configure {
            path: self.path.clone(),
            params: params.to_string(),
            source,
        };
        let c =
            CString::new(params).map_err(|_| err(io::Error::from_raw_os_error(libc::EINVAL)))?;
        self.fd.configure(&c).map_err(err)
    }

    /// The device path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor libdag returned (for log messages).
    pub fn raw_fd(&self) -> i32 {
        self.fd.raw()
    }
}

/// `dag_set_stream_poll64` parameters: how long `dag_advance_stream` waits for data.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PollParams {
    /// Return once this many bytes are available (0 = never wait).
    pub mindata: u64,
    /// Return after this long even with less data (0 = wait for `mindata` forever).
    pub maxwait: Duration,
    /// Sleep this long between checks while waiting.
    pub interval: Duration,
}

impl Default for PollParams {
    /// One record header, at most 100 ms (so a stop request is seen quickly), checks every ms.
    fn default() -> Self {
        PollParams {
            mindata: 16,
            maxwait: Duration::from_millis(100),
            interval: Duration::from_millis(1),
        }
    }
}

/// How a receive stream is attached and read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// The extra window of `dag_attach_stream64`: 0 maps the whole buffer twice (Endace's
    /// recommendation); a smaller size saves address space and must exceed the largest record.
    pub extra_window: u64,
    /// Polling parameters.
    pub poll: PollParams,
    /// At most this many bytes are read from one window before the space is handed back to
    /// the card (libtrace uses 4 MiB), so a slow batch does not hold the card's whole buffer.
    pub max_batch_bytes: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            extra_window: 0,
            poll: PollParams::default(),
            max_batch_bytes: 4 << 20,
        }
    }
}

/// Why a record of the card was not turned into a packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// A PAD record.
    Pad,
    /// A META record from the card.
    Meta,
    /// Flagged `rxerror`: a link-layer receive error.
    RxError,
    /// Flagged `dserror`: an internal data-stream error in the card.
    DsError,
    /// A record type other than Ethernet, IPv4 or IPv6 (the type code).
    Unsupported(u8),
}

/// One record of the card's stream.
#[derive(Copy, Clone, Debug)]
pub enum DagRecord<'a> {
    /// A frame to rewrite and write. `packet.lost_before` is the card's lctr (0 for colour
    /// types); `truncated` is the record's `trunc` flag.
    Packet {
        /// The frame, borrowed from the card's memory.
        packet: Packet<'a>,
        /// The record was cut short by a buffer overrun in the card.
        truncated: bool,
    },
    /// A record that is not written.
    Skipped {
        /// Why.
        reason: Skip,
        /// Its interface bits.
        iface: u8,
        /// The card's losses it reports (0 when not trusted or a colour).
        lost_before: u16,
    },
}

/// Counts of what a stream delivered, for the summary and the docs' error handling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DagCounters {
    /// Records read from the card's windows.
    pub records: u64,
    /// Records handed on as packets.
    pub packets: u64,
    /// Of those, records flagged `trunc` (written anyway).
    pub truncated: u64,
    /// Of those, colour-type records (no loss count in their lctr).
    pub colour: u64,
    /// PAD records skipped.
    pub pad: u64,
    /// META records from the card skipped.
    pub meta: u64,
    /// Records flagged `rxerror`, not written.
    pub rx_error: u64,
    /// Records flagged `dserror`, not written (their lctr not trusted).
    pub ds_error: u64,
    /// Records of other types, not written.
    pub unsupported: u64,
    /// The sum of the lctr values counted as losses.
    pub card_loss: u64,
    /// `dag_advance_stream` calls that returned a window.
    pub windows: u64,
}

/// An attached receive stream of a [`DagDevice`]; stopped and detached on drop.
#[derive(Debug)]
pub struct DagStream<'d> {
    win: ffi::StreamWindow<'d>,
    path: &'d Path,
    stream: u32,
    max_batch: usize,
    counters: DagCounters,
    ended: bool,
}

impl<'d> DagStream<'d> {
    /// Attaches receive stream `stream` (`dag_attach_stream64`) and sets its polling parameters.
    pub fn attach(dev: &'d DagDevice, stream: u32, opts: &StreamOptions) -> Result<Self, DagError> {
        if stream % 2 != 0 {
            return Err(DagError::NotReceiveStream(stream));
        }
        let poll = ffi::Poll {
            mindata: opts.poll.mindata,
            maxwait: opts.poll.maxwait,
            interval: opts.poll.interval,
        };
        let win = ffi::StreamWindow::attach(&dev.fd, stream, opts.extra_window, poll).map_err(
            |(call, source)| DagError::Stream {
                call,
                path: dev.path.clone(),
                stream,
                source,
            },
        )?;
        Ok(DagStream {
            win,
            path: &dev.path,
            stream,
            max_batch: opts.max_batch_bytes.max(crate::erf::HEADER_LEN),
            counters: DagCounters::default(),
            ended: false,
        })
    }

    fn err(&self, call: &'static str, source: io::Error) -> DagError {
        DagError::Stream {
            call,
            path: self.path.to_path_buf(),
            stream: self.stream,
            source,
        }
    }

    /// Starts receiving (`dag_start_stream`).
    pub fn start(&mut self) -> Result<(), DagError> {
        self.win
            .start()
            .map_err(|e| self.err("dag_start_stream", e))
    }

    /// Stops receiving (`dag_stop_stream`); records already in the buffer can still be read.
    pub fn stop(&mut self) -> Result<(), DagError> {
        self.win.stop().map_err(|e| self.err("dag_stop_stream", e))
    }

    /// The stream number.
    pub fn number(&self) -> u32 {
        self.stream
    }

    /// What the stream has delivered so far.
    pub fn counters(&self) -> &DagCounters {
        &self.counters
    }

    /// Whether the library reported the end of its data (only the stand-in does, when its
    /// file is exhausted; a card never ends).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Hands back what earlier batches consumed, waits for new records as the polling
    /// parameters say (`dag_advance_stream`), and returns a batch over them. The batch may be
    /// empty (the wait timed out). `None` when the library reports the end of its data.
    pub fn next_batch(&mut self) -> Result<Option<Batch<'_, 'd>>, DagError> {
        if self.ended {
            return Ok(None);
        }
        match self.win.advance() {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {
                // libdag documents no ENODATA from dag_advance_stream; the stand-in uses it to
                // say that its file is exhausted and every record has been handed back.
                self.ended = true;
                return Ok(None);
            }
            Err(e) => return Err(self.err("dag_advance_stream", e)),
        }
        self.counters.windows += 1;
        Ok(Some(Batch {
            stream: self,
            pos: 0,
        }))
    }
}

/// The records of one window. Dropping the batch marks every record it yielded as consumed; the
/// space goes back to the card at the next [`DagStream::next_batch`].
#[must_use = "a batch does nothing unless its records are read"]
#[derive(Debug)]
pub struct Batch<'s, 'd> {
    stream: &'s mut DagStream<'d>,
    pos: usize,
}

impl Batch<'_, '_> {
    /// Bytes in the window (whole records).
    pub fn len(&self) -> usize {
        self.stream.win.pending().len()
    }

    /// Whether the window is empty (the wait timed out with no data).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next record, parsed in place. `None` at the end of the window, or once the batch
    /// has read `max_batch_bytes` (the rest comes in the next batch).
    pub fn next_record(&mut self) -> Option<Result<DagRecord<'_>, DagError>> {
        let pending = self.stream.win.pending();
        if self.pos >= pending.len() || self.pos >= self.stream.max_batch {
            return None;
        }
        let rest = &pending[self.pos..];
        let rec = match Record::new_checked(rest) {
            Ok(r) => r,
            Err(kind) => {
                return Some(Err(DagError::BadRecord {
                    stream: self.stream.stream,
                    offset: self.pos,
                    kind,
                }))
            }
        };
        let rlen = usize::from(rec.rlen_be());
        self.pos += rlen;
        let c = &mut self.stream.counters;
        c.records += 1;
        let out = classify(&rec, rest);
        match &out {
            DagRecord::Packet { packet, truncated } => {
                c.packets += 1;
                c.truncated += u64::from(*truncated);
                c.colour += u64::from(rec.record_type().is_colour());
                c.card_loss += u64::from(packet.lost_before);
            }
            DagRecord::Skipped {
                reason,
                lost_before,
                ..
            } => {
                c.card_loss += u64::from(*lost_before);
                match reason {
                    Skip::Pad => c.pad += 1,
                    Skip::Meta => c.meta += 1,
                    Skip::RxError => c.rx_error += 1,
                    Skip::DsError => c.ds_error += 1,
                    Skip::Unsupported(_) => c.unsupported += 1,
                }
            }
        }
        Some(Ok(out))
    }
}

impl Drop for Batch<'_, '_> {
    fn drop(&mut self) {
        self.stream.win.consume(self.pos);
    }
}

/// Turns a checked record (the start of `bytes`) into a packet or a reason to skip it. The
/// packet rules are those of the offline ERF reader (`input::erf`), so the same records give
/// the same packets on both paths.
fn classify<'a>(rec: &Record<&'a [u8]>, bytes: &'a [u8]) -> DagRecord<'a> {
    let ty = rec.record_type();
    let iface = rec.iface();
    let loss = rec.loss().unwrap_or(0);
    let skip = |reason, lost_before| DagRecord::Skipped {
        reason,
        iface,
        lost_before,
    };
    if rec.dserror() {
        return skip(Skip::DsError, 0);
    }
    if rec.rxerror() {
        return skip(Skip::RxError, loss);
    }
    let link = match ty {
        RecordType::Eth
        | RecordType::ColorEth
        | RecordType::DsmColorEth
        | RecordType::ColorHashEth => LinkType::Ethernet,
        RecordType::Ipv4 => LinkType::Ipv4,
        RecordType::Ipv6 => LinkType::Ipv6,
        RecordType::Pad => return skip(Skip::Pad, loss),
        RecordType::Meta => return skip(Skip::Meta, loss),
        RecordType::Other(code) => return skip(Skip::Unsupported(code), loss),
    };
    let start = rec.framing_len();
    let data = &bytes[start..start + rec.caplen()];
    DagRecord::Packet {
        packet: Packet {
            ts: rec.ts_le(),
            link,
            iface,
            wlen: u32::from(rec.wlen_be()),
            lost_before: loss,
            data,
        },
        truncated: rec.trunc(),
    }
}
