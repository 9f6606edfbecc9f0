//! Batches: the unit that travels between the receive, anonymiser and writer threads.
//!
//! A batch is allocated once, at start-up, from a per-queue pool, and recycled by the writer:
//! nothing is allocated per packet. It holds up to `capacity` frames, each copied out of the
//! UMEM into a fixed-size slot, plus what the anonymiser made of each frame (the range of the
//! slot to write and its record kind).
//!
//! No method panics: pushing into a full batch returns `false`, and slot accessors clamp their
//! ranges to the slot.

use crate::packet::{FrameKind, Timestamp};
use crate::stats::CutReason;
use std::time::Instant;

/// What the pipeline knows about one frame in a batch.
#[derive(Copy, Clone, Debug, Default)]
pub struct RecordInfo {
    /// Capture time (UTC).
    pub ts: Timestamp,
    /// The frame's length on the wire.
    pub wlen: u32,
    /// How many bytes of the frame were copied into the slot.
    pub caplen: u16,
    /// Start of the bytes to write, within the slot (set by the anonymiser).
    pub start: u16,
    /// End of the bytes to write, within the slot (set by the anonymiser).
    pub end: u16,
    /// The record kind to write; `None` until the anonymiser has made the frame safe, and for
    /// frames the filter rejected or the rewriter dropped. A record without a kind is never
    /// written.
    pub kind: Option<FrameKind>,
    /// Why the rewriter cut the frame short of its headers (it is still written), or, for a
    /// frame without a kind, why it dropped it (counted, not written).
    pub cut: Option<CutReason>,
}

/// A fixed-capacity batch of frames from one (interface, queue) source.
#[derive(Debug)]
pub struct Batch {
    /// Index of the source (socket) the frames came from.
    pub source: usize,
    /// The interface's port number (0-3, the ERF interface bits).
    pub iface: u8,
    /// When the receive thread handed the batch on.
    pub t_rx: Instant,
    /// When the anonymiser finished the batch.
    pub t_anon: Instant,
    len: usize,
    slot: usize,
    info: Box<[RecordInfo]>,
    data: Box<[u8]>,
}

impl Batch {
    /// A new empty batch of `capacity` slots of `slot` bytes each.
    pub fn new(source: usize, iface: u8, capacity: usize, slot: usize) -> Self {
        let now = Instant::now();
        Batch {
            source,
            iface,
            t_rx: now,
            t_anon: now,
            len: 0,
            slot,
            info: vec![RecordInfo::default(); capacity].into_boxed_slice(),
            data: vec![0u8; capacity * slot].into_boxed_slice(),
        }
    }

    /// The number of frames in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the batch is full.
    pub fn is_full(&self) -> bool {
        self.len == self.info.len()
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.info.len()
    }

    /// The size of one slot in bytes (the most of a frame a batch keeps).
    pub fn slot_size(&self) -> usize {
        self.slot
    }

    /// Empties the batch for reuse.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Copies (at most a slot of) `frame` into the next slot. Returns `false` if the batch is full.
    pub fn push(&mut self, ts: Timestamp, wlen: u32, frame: &[u8]) -> bool {
        if self.is_full() {
            return false;
        }
        let n = frame.len().min(self.slot).min(u16::MAX as usize);
        let off = self.len * self.slot;
        self.data[off..off + n].copy_from_slice(&frame[..n]);
        self.info[self.len] = RecordInfo {
            ts,
            wlen: wlen.max(n as u32),
            caplen: n as u16,
            start: 0,
            end: 0,
            kind: None,
            cut: None,
        };
        self.len += 1;
        true
    }

    /// The information on frame `i` (`None` past the end).
    pub fn info(&self, i: usize) -> Option<&RecordInfo> {
        self.info[..self.len].get(i)
    }

    /// Frame `i`'s information and its whole slot, for the anonymiser to rewrite in place.
    pub fn slot_mut(&mut self, i: usize) -> Option<(&mut RecordInfo, &mut [u8])> {
        if i >= self.len {
            return None;
        }
        let off = i * self.slot;
        Some((&mut self.info[i], &mut self.data[off..off + self.slot]))
    }

    /// The bytes of frame `i` to write (`start..end` of its slot, clamped), if it has a kind.
    pub fn output(&self, i: usize) -> Option<(&RecordInfo, FrameKind, &[u8])> {
        let info = self.info(i)?;
        let kind = info.kind?;
        let off = i * self.slot;
        let end = (info.end as usize).min(self.slot);
        let start = (info.start as usize).min(end);
        Some((info, kind, &self.data[off + start..off + end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_copies_up_to_a_slot_and_stops_when_full() {
        let mut b = Batch::new(3, 1, 2, 8);
        assert!(b.push(Timestamp(5), 100, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
        assert!(b.push(Timestamp(6), 2, &[7, 7, 7]));
        assert!(!b.push(Timestamp(7), 3, &[1]));
        assert_eq!(b.len(), 2);
        let i0 = *b.info(0).unwrap();
        assert_eq!((i0.caplen, i0.wlen), (8, 100));
        // A wire length below the captured length is raised to it.
        assert_eq!(b.info(1).unwrap().wlen, 3);
        // Nothing is written before the anonymiser sets a kind.
        assert!(b.output(0).is_none());
        let (info, slot) = b.slot_mut(0).unwrap();
        assert_eq!(&slot[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        info.start = 2;
        info.end = 200; // clamped to the slot
        info.kind = Some(FrameKind::Ethernet);
        let (_, kind, data) = b.output(0).unwrap();
        assert_eq!(kind, FrameKind::Ethernet);
        assert_eq!(data, &[3, 4, 5, 6, 7, 8]);
        b.clear();
        assert!(b.is_empty() && b.output(0).is_none());
    }
}
