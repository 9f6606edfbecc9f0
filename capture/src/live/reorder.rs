//! The merge of records from all queues and interfaces in timestamp order, within a bounded
//! reorder window.
//!
//! Each source (one AF_XDP socket) delivers its batches in the order it received them, so each
//! source's stream is (nearly) sorted. The merger holds batches per source and releases the
//! oldest head record when either every source has a record waiting (then the oldest head is the
//! next one in time, as in a k-way merge), or the head is older than the horizon minus the
//! window (a source that stays quiet for longer than the window cannot hold the others back).
//! A record that would go out behind one already written is still written, and counted as out
//! of order. The number of batches held is bounded: past `max_held`, the oldest head goes out
//! regardless, so the receive threads never starve for batches because of the window.

use super::batch::Batch;
use crate::packet::{FrameKind, Timestamp};
use crate::stats::CutReason;
use std::collections::VecDeque;

/// A reorder window over the batches of `n` sources.
#[derive(Debug)]
pub struct Merger {
    sources: Vec<VecDeque<Batch>>,
    pos: Vec<usize>,
    window: u64,
    max_held: usize,
    held: usize,
    last_out: Timestamp,
    max_seen: Timestamp,
    out_of_order: u64,
}

/// One record released by the merger, borrowed from its batch.
#[derive(Debug)]
pub struct Released<'a> {
    /// The record's capture time.
    pub ts: Timestamp,
    /// Its interface (port) number.
    pub iface: u8,
    /// Its source (socket) index.
    pub source: usize,
    /// Its record kind; `None` for a frame the rewriter dropped (count it, write nothing).
    pub kind: Option<FrameKind>,
    /// Why the rewriter cut (or, without a kind, dropped) the frame.
    pub cut: Option<CutReason>,
    /// Its length on the wire.
    pub wlen: u32,
    /// The bytes to write.
    pub data: &'a [u8],
    /// Whether it goes out behind a record already released.
    pub out_of_order: bool,
}

impl Merger {
    /// A merger over `sources` sources, with a window of `window_ns` nanoseconds, holding at most
    /// `max_held` batches (at least one).
    pub fn new(sources: usize, window_ns: u64, max_held: usize) -> Self {
        Merger {
            sources: (0..sources).map(|_| VecDeque::new()).collect(),
            pos: vec![0; sources],
            window: ((window_ns as u128) << 32).div_euclid(1_000_000_000) as u64,
            max_held: max_held.max(1),
            held: 0,
            last_out: Timestamp(0),
            max_seen: Timestamp(0),
            out_of_order: 0,
        }
    }

    /// Adds a batch (its `source` field names the source). A batch for an unknown source, or an
    /// empty one, is handed straight back through `recycle`.
    pub fn push(&mut self, batch: Batch, mut recycle: impl FnMut(Batch)) {
        if batch.source >= self.sources.len() || batch.is_empty() {
            recycle(batch);
            return;
        }
        for i in 0..batch.len() {
            if let Some(info) = batch.info(i) {
                if info.kind.is_some() && info.ts > self.max_seen {
                    self.max_seen = info.ts;
                }
            }
        }
        self.sources[batch.source].push_back(batch);
        self.held += 1;
    }

    /// The number of batches held.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Records released behind a later one so far.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// The newest timestamp pushed so far.
    pub fn max_seen(&self) -> Timestamp {
        self.max_seen
    }

    /// Skips records without a kind at the head of `s`, recycling exhausted batches; returns the
    /// head's timestamp.
    fn head(&mut self, s: usize, recycle: &mut impl FnMut(Batch)) -> Option<Timestamp> {
        loop {
            let batch = self.sources[s].front()?;
            let p = self.pos[s];
            match batch.info(p) {
                None => {
                    let done = self.sources[s].pop_front()?;
                    self.pos[s] = 0;
                    self.held -= 1;
                    recycle(done);
                }
                Some(info) if info.kind.is_none() && info.cut.is_none() => self.pos[s] += 1,
                Some(info) => return Some(info.ts),
            }
        }
    }

    /// Releases every record that is due, oldest first, given `now` (the current UTC time, or
    /// `None` to go by the records alone). With `flush`, releases everything held.
    pub fn release(
        &mut self,
        now: Option<Timestamp>,
        flush: bool,
        mut emit: impl FnMut(Released<'_>),
        mut recycle: impl FnMut(Batch),
    ) {
        let horizon = now.map_or(self.max_seen, |n| n.max(self.max_seen));
        loop {
            let mut best: Option<(usize, Timestamp)> = None;
            let mut all = true;
            for s in 0..self.sources.len() {
                match self.head(s, &mut recycle) {
                    Some(ts) => {
                        if best.is_none_or(|(_, b)| ts < b) {
                            best = Some((s, ts));
                        }
                    }
                    None => all = false,
                }
            }
            let Some((s, ts)) = best else { return };
            let due = flush
                || all
                || ts.0.saturating_add(self.window) <= horizon.0
                || self.held > self.max_held;
            if !due {
                return;
            }
            let p = self.pos[s];
            let batch = &self.sources[s][0];
            if let Some((info, kind, data)) = batch.output(p) {
                let ooo = info.ts < self.last_out;
                if ooo {
                    self.out_of_order += 1;
                } else {
                    self.last_out = info.ts;
                }
                emit(Released {
                    ts: info.ts,
                    iface: batch.iface,
                    source: s,
                    kind: Some(kind),
                    cut: info.cut,
                    wlen: info.wlen,
                    data,
                    out_of_order: ooo,
                });
            } else if let Some(info) = batch.info(p) {
                // Dropped by the rewriter: no bytes, only the count.
                emit(Released {
                    ts: info.ts,
                    iface: batch.iface,
                    source: s,
                    kind: None,
                    cut: info.cut,
                    wlen: info.wlen,
                    data: &[],
                    out_of_order: false,
                });
            }
            self.pos[s] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1 << 32;

    fn batch(source: usize, stamps: &[u64]) -> Batch {
        let mut b = Batch::new(source, source as u8, stamps.len().max(1), 4);
        for (i, &t) in stamps.iter().enumerate() {
            b.push(Timestamp(t), 4, &[i as u8; 4]);
            let (info, _) = b.slot_mut(i).unwrap();
            info.end = 4;
            // A stamp of 0 stands for a filtered frame.
            info.kind = (t != 0).then_some(FrameKind::Ethernet);
        }
        b
    }

    fn run(m: &mut Merger, now: Option<u64>, flush: bool, out: &mut Vec<(u64, bool)>) -> usize {
        let mut recycled = 0;
        m.release(
            now.map(Timestamp),
            flush,
            |r| out.push((r.ts.0, r.out_of_order)),
            |_| recycled += 1,
        );
        recycled
    }

    #[test]
    fn merges_sources_in_time_order() {
        let mut m = Merger::new(2, 1_000_000_000, 100);
        m.push(batch(0, &[10, 30, 50]), |_| panic!());
        m.push(batch(1, &[20, 0, 40, 60]), |_| panic!());
        let mut out = vec![];
        let first = run(&mut m, None, false, &mut out);
        // Released while both sources have a head: up to 50 (source 1 still holds 60).
        assert_eq!(
            out,
            vec![
                (10, false),
                (20, false),
                (30, false),
                (40, false),
                (50, false)
            ]
        );
        let recycled = first + run(&mut m, None, true, &mut out);
        assert_eq!(out.last(), Some(&(60, false)));
        assert_eq!(recycled, 2);
        assert_eq!(m.held(), 0);
        assert_eq!(m.out_of_order(), 0);
    }

    #[test]
    fn a_quiet_source_holds_back_only_for_the_window() {
        let mut m = Merger::new(2, 1_000_000_000, 100);
        m.push(batch(0, &[SEC, 2 * SEC]), |_| ());
        let mut out = vec![];
        // Source 1 has nothing: records wait until they are a window older than the horizon.
        run(&mut m, None, false, &mut out);
        assert_eq!(out, vec![(SEC, false)]);
        run(&mut m, Some(3 * SEC), false, &mut out);
        assert_eq!(out, vec![(SEC, false), (2 * SEC, false)]);
    }

    #[test]
    fn a_record_behind_the_window_is_written_and_counted() {
        let mut m = Merger::new(2, 1_000, 100);
        m.push(batch(0, &[5 * SEC]), |_| ());
        let mut out = vec![];
        run(&mut m, Some(6 * SEC), false, &mut out);
        m.push(batch(1, &[SEC]), |_| ());
        run(&mut m, Some(6 * SEC), false, &mut out);
        assert_eq!(out, vec![(5 * SEC, false), (SEC, true)]);
        assert_eq!(m.out_of_order(), 1);
    }

    #[test]
    fn too_many_held_batches_are_released_regardless() {
        let mut m = Merger::new(2, 10_000_000_000, 2);
        for t in 1..=3 {
            m.push(batch(0, &[t * SEC]), |_| ());
        }
        let mut out = vec![];
        run(&mut m, None, false, &mut out);
        // Three held, two allowed, all within the window: only the oldest goes out.
        assert_eq!(out, vec![(SEC, false)]);
        assert_eq!(m.held(), 2);
    }
}
