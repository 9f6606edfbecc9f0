//! The offline pipeline: existing traces in, anonymised header-only ERF out.
//!
//! [`FrameProcessor`] is the per-frame step that every backend shares (offline, AF_XDP, DAG):
//! copy the captured bytes into a scratch buffer, let the [`Rewriter`] cut them to their headers
//! and anonymise every address, and hand the result to the [`ErfWriter`]. Using the same step
//! everywhere is what makes live and offline output agree record for record.
//!
//! [`run_offline`] drives it over several traces merged by timestamp (as mergecap does).

use anonymise::AddressMapper;

use crate::input::{InputError, Merge, Trace};
use crate::output::{ErfWriter, OutputError, OutputSummary};
use crate::packet::{FrameKind, LinkType, Packet};
use crate::rewrite::Rewriter;
use crate::stats::{CutCounts, CutReason, LossCause};

/// The most bytes of a frame the rewriter looks at. Headers longer than this (never seen in
/// practice: it allows for a full Ethernet/VLAN/MPLS stack, IPv6 extension headers, options and
/// an inner tunnel header) are cut at this length by the rewriter's own rules.
pub const MAX_HEADER_BYTES: usize = 1024;

/// What became of one frame.
#[derive(Debug)]
pub enum Processed<'a> {
    /// Write these bytes as a record of this kind.
    Write {
        /// The ERF record type to write.
        kind: FrameKind,
        /// The rewritten headers.
        data: &'a [u8],
        /// Set when the frame was cut short of its headers to keep it safe.
        cut: Option<CutReason>,
    },
    /// The frame cannot be written at all (nothing of it is known to be safe); count it.
    Drop(CutReason),
}

/// What [`FrameProcessor::process_in_place`] made of a frame: [`Processed`] as a range of the
/// caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessedRange {
    /// Write `frame[range]` as a record of this kind.
    Write {
        /// The ERF record type to write.
        kind: FrameKind,
        /// Where the rewritten headers are in the buffer (`start <= end <= len`).
        range: core::ops::Range<usize>,
        /// Set when the frame was cut short of its headers to keep it safe.
        cut: Option<CutReason>,
    },
    /// The frame cannot be written at all; count it.
    Drop(CutReason),
}

/// The per-frame step shared by every backend: copy, rewrite, anonymise.
///
/// Holds its own scratch buffer and mapper (with its cache), so one processor serves one thread
/// with no allocation, locking or system call per frame.
pub struct FrameProcessor<M> {
    rewriter: Rewriter,
    mapper: M,
    scratch: Box<[u8]>,
}

impl<M: AddressMapper> FrameProcessor<M> {
    /// A processor that rewrites with `rewriter` and maps addresses with `mapper`.
    pub fn new(rewriter: Rewriter, mapper: M) -> Self {
        FrameProcessor {
            rewriter,
            mapper,
            scratch: vec![0u8; MAX_HEADER_BYTES].into_boxed_slice(),
        }
    }

    /// Cuts `packet` to its headers and anonymises it.
    ///
    /// The returned bytes borrow the processor's scratch buffer: they hold only what the
    /// rewriter wrote or checked for this frame (never bytes of an earlier frame).
    #[inline]
    pub fn process(&mut self, packet: &Packet<'_>) -> Processed<'_> {
        let len = packet.data.len().min(self.scratch.len());
        let buf = &mut self.scratch[..len];
        buf.copy_from_slice(&packet.data[..len]);
        match rewrite_in(
            &self.rewriter,
            &mut self.mapper,
            packet.link,
            buf,
            packet.wlen,
        ) {
            ProcessedRange::Write { kind, range, cut } => Processed::Write {
                kind,
                data: &self.scratch[range],
                cut,
            },
            ProcessedRange::Drop(reason) => Processed::Drop(reason),
        }
    }

    /// [`Self::process`] without the copy: cuts the frame held in `frame` (the captured bytes
    /// of one frame, in a buffer the caller owns and may overwrite, such as a batch slot) to
    /// its headers and anonymises it in place.
    ///
    /// The same rules and the same output bytes as [`Self::process`] (only the first
    /// [`MAX_HEADER_BYTES`] are looked at); `frame[range]` is what to write, and nothing of
    /// the buffer outside that range may be written.
    #[inline]
    pub fn process_in_place(
        &mut self,
        link: LinkType,
        frame: &mut [u8],
        wlen: u32,
    ) -> ProcessedRange {
        let len = frame.len().min(self.scratch.len());
        rewrite_in(
            &self.rewriter,
            &mut self.mapper,
            link,
            &mut frame[..len],
            wlen,
        )
    }

    /// Processes `packet` and writes the result: the losses its source recorded before it, then
    /// its record (or the count of its drop).
    pub fn process_into(
        &mut self,
        packet: &Packet<'_>,
        writer: &mut ErfWriter,
    ) -> Result<(), OutputError> {
        if packet.lost_before > 0 {
            writer.add_loss(
                packet.iface,
                LossCause::Recorded,
                u64::from(packet.lost_before),
            );
        }
        match self.process(packet) {
            Processed::Write { kind, data, cut } => {
                if let Some(reason) = cut {
                    writer.count_cut(reason);
                }
                writer.write_packet(packet.ts, packet.iface, kind, packet.wlen, data)
            }
            Processed::Drop(reason) => {
                writer.count_dropped(reason);
                Ok(())
            }
        }
    }

    /// The mapper, e.g. to read its cache statistics.
    pub fn mapper(&self) -> &M {
        &self.mapper
    }
}

/// Rewrites `buf` in place and checks the range the rewriter reports against it.
#[inline]
fn rewrite_in<M: AddressMapper>(
    rewriter: &Rewriter,
    mapper: &mut M,
    link: LinkType,
    buf: &mut [u8],
    wlen: u32,
) -> ProcessedRange {
    let len = buf.len();
    let out = rewriter.rewrite(mapper, link, buf, wlen);
    match out.kind {
        Some(kind) if out.start <= out.end && out.end <= len => ProcessedRange::Write {
            kind,
            range: out.start..out.end,
            cut: out.cut,
        },
        _ => ProcessedRange::Drop(out.cut.unwrap_or(CutReason::UnsupportedLinkPayload)),
    }
}

/// Why an offline run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// An input trace could not be opened or read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The output could not be written (e.g. the disk is full).
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Totals of an offline run, for the end-of-run summary.
#[derive(Debug, Default)]
pub struct OfflineSummary {
    /// Packets read from the inputs.
    pub packets_in: u64,
    /// Records written.
    pub packets_out: u64,
    /// Captured bytes read.
    pub bytes_in: u64,
    /// Bytes on the wire of the packets read.
    pub wire_bytes_in: u64,
    /// Captured bytes written (headers only).
    pub bytes_out: u64,
    /// Frames written cut short, by reason.
    pub cuts: CutCounts,
    /// Frames not written, by reason.
    pub dropped: CutCounts,
    /// Losses the inputs recorded (ERF lctr).
    pub recorded_losses: u64,
    /// Records the inputs held that are not packets or are of link types anoncap skips, with
    /// a description of each kind.
    pub skipped: Vec<(String, u64)>,
    /// What the writer reported when it closed the output.
    pub output: Option<OutputSummary>,
}

/// How an offline run ended: what was done, and the error that stopped it early, if any.
///
/// Even when an error stopped the run, everything read before it was written and the output
/// files were closed as complete, valid files.
#[derive(Debug)]
pub struct OfflineOutcome {
    /// Totals of what was read and written.
    pub summary: OfflineSummary,
    /// The error that stopped the run early.
    pub error: Option<OfflineError>,
}

/// The ERF interface number (0-3) of each input's first interface, so that several inputs
/// merged into one output keep their interfaces apart (as mergecap does): the interfaces of
/// all inputs are numbered in order, and any beyond the fourth share number 3 (ERF has two
/// interface bits).
pub fn interface_bases(traces: &[Trace]) -> Vec<u8> {
    let mut next = 0usize;
    traces
        .iter()
        .map(|t| {
            let base = next.min(3) as u8;
            next += t.interfaces().len().max(1);
            base
        })
        .collect()
}

/// Reads `traces`, merged by timestamp, through `processor` into `writer`, then closes it.
///
/// Interfaces are numbered as [`interface_bases`] says. `progress` is called now and then with
/// the number of packets read so far.
pub fn run_offline<M: AddressMapper>(
    traces: &[Trace],
    processor: &mut FrameProcessor<M>,
    mut writer: ErfWriter,
    progress: &mut dyn FnMut(u64),
) -> OfflineOutcome {
    let mut summary = OfflineSummary::default();
    let bases = interface_bases(traces);
    let mut merge = Merge::new(traces.iter().map(|t| t.packets()).collect());
    let mut error = None;
    for item in merge.by_ref() {
        let packet = match item {
            Ok((source, packet)) => Packet {
                iface: (bases[source] + packet.iface).min(3),
                ..packet
            },
            Err(e) => {
                error = Some(OfflineError::Input(e));
                break;
            }
        };
        summary.packets_in += 1;
        summary.bytes_in += packet.data.len() as u64;
        summary.wire_bytes_in += u64::from(packet.wlen);
        summary.recorded_losses += u64::from(packet.lost_before);
        if let Err(e) = processor.process_into(&packet, &mut writer) {
            error = Some(OfflineError::Output(e));
            break;
        }
        if summary.packets_in % 65_536 == 0 {
            progress(summary.packets_in);
        }
    }
    progress(summary.packets_in);
    summary.skipped = merge.skipped();
    match writer.finish() {
        Ok(out) => {
            summary.packets_out = out.totals.written.packets;
            summary.bytes_out = out.totals.written.bytes_captured;
            summary.dropped = out.totals.dropped.clone();
            summary.cuts = out.totals.cuts.clone();
            summary.output = Some(out);
        }
        Err(e) => {
            if error.is_none() {
                error = Some(OfflineError::Output(e));
            }
        }
    }
    OfflineOutcome { summary, error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::RewriteOptions;

    /// Changes every address it is given, deterministically.
    struct Flip;

    impl AddressMapper for Flip {
        fn map_ipv4(&mut self, a: [u8; 4]) -> [u8; 4] {
            a.map(|b| b ^ 0x5a)
        }
        fn map_ipv6(&mut self, a: [u8; 16]) -> [u8; 16] {
            a.map(|b| b ^ 0xa5)
        }
        fn map_mac(&mut self, m: [u8; 6]) -> [u8; 6] {
            m.map(|b| b ^ 0x3c)
        }
    }

    /// `process_in_place` writes the same bytes as `process` (and drops the same frames), on
    /// every frame of the bundled traces and on truncated and bit-flipped copies of them.
    #[test]
    fn in_place_matches_copying_step() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces");
        let opts = RewriteOptions {
            anonymise_mac: true,
            ..RewriteOptions::default()
        };
        let mut a = FrameProcessor::new(Rewriter::new(opts.clone()), Flip);
        let mut b = FrameProcessor::new(Rewriter::new(opts), Flip);
        let mut frames = 0;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for entry in std::fs::read_dir(&dir).expect("the bundled traces") {
            let path = entry.expect("a directory entry").path();
            let Ok(trace) = Trace::open(&path) else {
                continue;
            };
            for packet in trace.packets().take(3000) {
                let Ok(packet) = packet else { break };
                for variant in 0..3 {
                    let mut data = packet.data.to_vec();
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    match variant {
                        1 if !data.is_empty() => data.truncate(seed as usize % data.len()),
                        2 if !data.is_empty() => {
                            let at = (seed >> 8) as usize % data.len().min(96);
                            data[at] ^= 1 << ((seed >> 4) & 7);
                        }
                        _ => {}
                    }
                    let p = Packet {
                        data: &data,
                        ..packet
                    };
                    let want = match a.process(&p) {
                        Processed::Write { kind, data, cut } => Ok((kind, data.to_vec(), cut)),
                        Processed::Drop(r) => Err(r),
                    };
                    let mut slot = data.clone();
                    let got = match b.process_in_place(p.link, &mut slot, p.wlen) {
                        ProcessedRange::Write { kind, range, cut } => {
                            Ok((kind, slot[range].to_vec(), cut))
                        }
                        ProcessedRange::Drop(r) => Err(r),
                    };
                    assert_eq!(got, want, "{} variant {variant}", path.display());
                    frames += 1;
                }
            }
        }
        assert!(frames > 10_000, "only {frames} frames compared");
    }
}
