//! The live path's stages made of the offline pipeline's parts, so that live and offline output
//! agree record for record: [`LiveProcessor`] is the offline [`FrameProcessor`] (rewriter plus
//! anonymiser) working on a batch slot, and the [`ErfWriter`] is the live [`RecordSink`].

use super::pipeline::{Processed, RecordSink, SinkError, SlotProcessor};
use crate::offline::{self, FrameProcessor};
use crate::output::ErfWriter;
use crate::packet::{FrameKind, LinkType, Timestamp};
use crate::stats::{CutReason, LossCause};
use anonymise::AddressMapper;

/// The offline per-frame step, applied to frames in batch slots.
pub struct LiveProcessor<M>(pub FrameProcessor<M>);

impl<M: AddressMapper> SlotProcessor for LiveProcessor<M> {
    fn process(&mut self, buf: &mut [u8], caplen: usize, wlen: u32) -> Processed {
        let caplen = caplen.min(buf.len());
        // Rewritten in the slot itself (same rules and bytes as the offline copy path); only
        // the returned range is ever written, so what lies outside it never leaves the slot.
        match self
            .0
            .process_in_place(LinkType::Ethernet, &mut buf[..caplen], wlen)
        {
            offline::ProcessedRange::Write { kind, range, cut } => {
                let range = range.start.min(caplen)..range.end.min(caplen);
                if range.start != 0 {
                    buf.copy_within(range.clone(), 0);
                }
                Processed::Write {
                    len: range.len(),
                    kind,
                    cut,
                }
            }
            offline::ProcessedRange::Drop(reason) => Processed::Drop(reason),
        }
    }
}

impl RecordSink for ErfWriter {
    fn write(
        &mut self,
        ts: Timestamp,
        iface: u8,
        kind: FrameKind,
        wlen: u32,
        data: &[u8],
    ) -> Result<(), SinkError> {
        self.write_packet(ts, iface, kind, wlen, data)
            .map_err(|e| Box::new(e) as SinkError)
    }
    fn add_loss(&mut self, iface: u8, cause: LossCause, n: u64) {
        ErfWriter::add_loss(self, iface, cause, n)
    }
    fn count_cut(&mut self, reason: CutReason) {
        ErfWriter::count_cut(self, reason)
    }
    fn count_dropped(&mut self, reason: CutReason) {
        ErfWriter::count_dropped(self, reason)
    }
    fn rotate(&mut self) -> Result<(), SinkError> {
        ErfWriter::rotate(self).map_err(|e| Box::new(e) as SinkError)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        ErfWriter::flush(self).map_err(|e| Box::new(e) as SinkError)
    }
}
