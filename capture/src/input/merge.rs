//! A k-way merge of several traces by timestamp, as mergecap does.

use super::{InputError, Packets, SkipCounts};
use crate::packet::{Packet, Timestamp};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Merges several packet sources into one stream in timestamp order.
///
/// At each step the packet with the smallest timestamp among the sources' next packets comes
/// out; on equal timestamps the source listed first wins, and each source's own order is kept
/// (a stable merge, like `mergecap`). Items are `(source index, packet)`.
///
/// A source's error is yielded in its place in the stream (after the packets that source
/// delivered before it); that source then ends and the others go on.
pub struct Merge<'a> {
    sources: Vec<Packets<'a>>,
    heads: Vec<Option<Packet<'a>>>,
    heap: BinaryHeap<Reverse<(Timestamp, usize)>>,
    errors: Vec<InputError>,
}

impl<'a> Merge<'a> {
    /// Starts a merge over `sources` (each read from its first packet).
    pub fn new(sources: Vec<Packets<'a>>) -> Self {
        let n = sources.len();
        let mut m = Merge {
            sources,
            heads: vec![None; n],
            heap: BinaryHeap::with_capacity(n),
            errors: Vec::new(),
        };
        for i in 0..n {
            m.refill(i);
        }
        m
    }

    /// The sources, e.g. for their [`Packets::skipped`] counts once the merge has ended.
    pub fn sources(&self) -> &[Packets<'a>] {
        &self.sources
    }

    /// Records the sources skipped so far, added up.
    pub fn skip_counts(&self) -> SkipCounts {
        let mut total = SkipCounts::default();
        for s in &self.sources {
            total.add(s.skipped());
        }
        total
    }

    /// [`Merge::skip_counts`] as (description, count) pairs, see [`SkipCounts::described`].
    pub fn skipped(&self) -> Vec<(String, u64)> {
        self.skip_counts().described()
    }

    fn refill(&mut self, i: usize) {
        match self.sources[i].next() {
            Some(Ok(p)) => {
                self.heap.push(Reverse((p.ts, i)));
                self.heads[i] = Some(p);
            }
            Some(Err(e)) => self.errors.push(e),
            None => {}
        }
    }
}

impl<'a> Iterator for Merge<'a> {
    type Item = Result<(usize, Packet<'a>), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.errors.is_empty() {
            return Some(Err(self.errors.remove(0)));
        }
        let Reverse((_, i)) = self.heap.pop()?;
        let p = self.heads[i].take()?;
        self.refill(i);
        Some(Ok((i, p)))
    }
}
