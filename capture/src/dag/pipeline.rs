//! A whole DAG capture: card records in, anonymised header-only ERF out.
//!
//! Each packet goes through [`FrameProcessor::process_into`], the per-frame step of the offline
//! pipeline (copy into a scratch buffer, rewrite and anonymise, write), so a card's records
//! give the same output records as the same records read from an ERF file offline. The one
//! difference is where losses are counted: the card's lctr goes to
//! [`LossCause::Card`] (`dropped-by-card`) here, where offline counts an input file's lctr as
//! `recorded-in-input`; each loss is counted once, under one cause.
//!
//! No allocation, lock or system call happens per record: the records are read in place from
//! the card's memory, and the only system calls are libdag's (once per window) and the
//! writer's (once per write buffer).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anonymise::AddressMapper;

use super::{DagCounters, DagError, DagRecord, DagStream};
use crate::offline::{FrameProcessor, MAX_HEADER_BYTES};
use crate::output::{ErfWriter, InterfaceInfo, OutputError, OutputSummary, MAX_INTERFACES};
use crate::packet::Packet;
use crate::stats::LossCause;

/// The clock source recorded in the metadata of a DAG capture.
pub const CLOCK_SOURCE: &str = "DAG card hardware clock (the card's ERF timestamps, unchanged)";

/// The interfaces of a DAG capture as the metadata describes them: one per ERF interface
/// number (`dag0:0` ... `dag0:3`, the card's ports A-D), with wlen counting the FCS as DAG
/// cards report it.
pub fn interfaces(device: &Path) -> Vec<InterfaceInfo> {
    let name = device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| device.display().to_string());
    (0..MAX_INTERFACES)
        .map(|port| InterfaceInfo {
            name: format!("{name}:{port}"),
            fcs_included: true,
            snaplen: MAX_HEADER_BYTES as u32,
            speed_bps: None,
        })
        .collect()
}

/// When a capture stops on its own (besides a stop request or the end of the stand-in's file).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Stop after this many packets have been handed to the writer.
    pub packets: Option<u64>,
    /// Stop after this much time.
    pub duration: Option<Duration>,
}

/// Why a DAG capture stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DagRunError {
    /// The card (or libdag) failed.
    #[error(transparent)]
    Dag(#[from] DagError),
    /// The output could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Why a capture ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The stop flag was set (e.g. by SIGINT/SIGTERM).
    Stopped,
    /// A [`Limits`] bound was reached.
    Limit,
    /// The library reported the end of its data (only the stand-in does).
    EndOfData,
    /// An error; see [`DagOutcome::error`].
    Error,
}

/// Totals of a DAG capture.
#[derive(Debug)]
pub struct DagSummary {
    /// What the stream delivered, by kind of record.
    pub counters: DagCounters,
    /// Why the capture ended.
    pub ended: Ended,
    /// What the writer reported when it closed the output.
    pub output: Option<OutputSummary>,
}

/// How a capture ended: its totals, and the error that stopped it, if any. Even after an error
/// every record read before it was written and the output files were closed as valid files.
#[derive(Debug)]
pub struct DagOutcome {
    /// Totals.
    pub summary: DagSummary,
    /// The error that stopped the capture.
    pub error: Option<DagRunError>,
}

/// Feeds one record of the card to the processor and writer.
fn handle<M: AddressMapper>(
    record: DagRecord<'_>,
    processor: &mut FrameProcessor<M>,
    writer: &mut ErfWriter,
) -> Result<bool, OutputError> {
    match record {
        DagRecord::Packet { packet, .. } => {
            if packet.lost_before > 0 {
                writer.add_loss(packet.iface, LossCause::Card, u64::from(packet.lost_before));
            }
            // The losses were just counted under their cause; the shared step must not count
            // them again as an input file's.
            let packet = Packet {
                lost_before: 0,
                ..packet
            };
            processor.process_into(&packet, writer)?;
            Ok(true)
        }
        DagRecord::Skipped {
            iface, lost_before, ..
        } => {
            if lost_before > 0 {
                writer.add_loss(iface, LossCause::Card, u64::from(lost_before));
            }
            Ok(false)
        }
    }
}

/// Runs a capture from a started `stream` through `processor` into `writer` until `stop` is
/// set, a limit is reached, the library reports the end of its data, or an error; then stops
/// the stream and closes the writer.
pub fn run_dag<M: AddressMapper>(
    stream: &mut DagStream<'_>,
    processor: &mut FrameProcessor<M>,
    mut writer: ErfWriter,
    stop: &AtomicBool,
    limits: Limits,
) -> DagOutcome {
    let started = Instant::now();
    let mut packets = 0u64;
    let mut error: Option<DagRunError> = None;
    let ended = 'capture: loop {
        // Relaxed: the flag carries no data, it is only polled once per window.
        if stop.load(Ordering::Relaxed) {
            break Ended::Stopped;
        }
        if limits.duration.is_some_and(|d| started.elapsed() >= d) {
            break Ended::Limit;
        }
        let mut batch = match stream.next_batch() {
            Ok(Some(b)) => b,
            Ok(None) => break Ended::EndOfData,
            Err(e) => {
                error = Some(e.into());
                break Ended::Error;
            }
        };
        while let Some(record) = batch.next_record() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    error = Some(e.into());
                    break 'capture Ended::Error;
                }
            };
            match handle(record, processor, &mut writer) {
                Ok(true) => packets += 1,
                Ok(false) => {}
                Err(e) => {
                    error = Some(e.into());
                    break 'capture Ended::Error;
                }
            }
            if limits.packets.is_some_and(|n| packets >= n) {
                break 'capture Ended::Limit;
            }
        }
    };
    if let Err(e) = stream.stop() {
        error.get_or_insert(e.into());
    }
    let output = match writer.finish() {
        Ok(out) => Some(out),
        Err(e) => {
            error.get_or_insert(e.into());
            None
        }
    };
    DagOutcome {
        summary: DagSummary {
            counters: stream.counters().clone(),
            ended,
            output,
        },
        error,
    }
}
