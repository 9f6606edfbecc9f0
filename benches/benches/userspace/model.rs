//! A model of the live capture's user-space path without the kernel, shared by the `userspace`
//! criterion bench and the `userspace-report` binary.
//!
//! Per batch of [`BATCH`] frames, as the live pipeline does it (capture/src/live/pipeline.rs):
//! - receive stage: take an empty batch from the pool ring, copy each frame (headers only, as
//!   the XDP program delivers them) into its fixed [`SLOT`]-byte slot, send the batch on;
//! - anonymiser stage: receive it, run the per-frame step on every slot, send it on;
//! - writer stage: receive it, ERF-encode every record into a memory buffer, give the batch back
//!   to the pool.
//!
//! The rings are crossbeam bounded channels, as in the live pipeline; the stages run one after
//! the other on one thread, so the figure is the CPU cost per packet of one core doing all of
//! it (the live pipeline splits it over threads, which only adds cross-core traffic).
//!
//! Three per-frame steps run through the same machinery: [`Baseline`] (the slot is encoded as it
//! is), [`Anonymise`] (the live step as capture/src/live/adapt.rs runs it: [`FrameProcessor`]
//! copies the slot into its scratch buffer, rewrites it there, and the result is copied back
//! into the slot) and [`AnonymiseInPlace`] (the same rewrite done in the slot, no copies).

#![allow(dead_code)]

use std::collections::HashSet;
use std::hint::black_box;
use std::path::Path;

use anonymise::AddressMapper;
use capture::erf::encode_packet;
use capture::input::Trace;
use capture::offline::{FrameProcessor, Processed, ProcessedRange};
use capture::packet::{FrameKind, LinkType, Packet, Timestamp};
use crossbeam::channel::{bounded, Receiver, Sender};

/// Frames per batch (the live pipeline's default).
pub const BATCH: usize = 64;
/// Bytes per slot (the live pipeline's default: the XDP program has already cut frames to their
/// headers, so this is a bound, not a snap length).
pub const SLOT: usize = 256;
/// Batches in the pool (and the capacity of each ring).
pub const POOL: usize = 4;
/// The trace looped in memory.
pub const TRACE: &str = "zeek-echo-connections.pcap";

/// One input frame: what the receive stage finds in the UMEM.
pub struct Frame {
    /// Capture time.
    pub ts: Timestamp,
    /// Length on the wire.
    pub wlen: u32,
    /// The captured bytes (at most [`SLOT`]).
    pub data: Vec<u8>,
}

/// The frames of the bundled throughput trace (cut to a slot, as the live path would).
pub fn trace_frames() -> Vec<Frame> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces")
        .join(TRACE);
    let trace = Trace::open(&path).expect("the bundled trace");
    trace
        .packets()
        .map(|p| p.expect("a readable record"))
        .filter(|p| p.link == LinkType::Ethernet)
        .map(|p| Frame {
            ts: p.ts,
            wlen: p.wlen,
            data: p.data[..p.data.len().min(SLOT)].to_vec(),
        })
        .collect()
}

/// splitmix64: a small deterministic generator, so every run sees the same frames.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf(s) over `n` ranks, sampled by inverting the cumulative distribution.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 0..n {
            total += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf(cdf)
    }

    fn sample(&self, r: &mut Rng) -> usize {
        let u = r.unit();
        self.0.partition_point(|&c| c < u).min(self.0.len() - 1)
    }
}

/// The one's complement sum of `data` as big-endian words (for building valid checksums).
fn sum(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// `n` minimum-size (64 bytes on the wire) Ethernet/IPv4/UDP frames cut to their 42 bytes of
/// headers, as the XDP program delivers them. Source and destination are drawn independently,
/// with Zipf(1.0) popularity, from `distinct` addresses of 198.18.0.0/15 (RFC 2544's
/// benchmarking range); ports are random; both checksums are valid for the whole original
/// frame (18 zero bytes of payload).
pub fn synthetic_frames(n: usize, distinct: usize, seed: u64) -> Vec<Frame> {
    let mut r = Rng(seed);
    let mut seen = HashSet::with_capacity(distinct);
    let mut pool = Vec::with_capacity(distinct);
    while pool.len() < distinct {
        let a = 0xc612_0000u32 | (r.next_u64() as u32 & 0x1_ffff);
        if seen.insert(a) {
            pool.push(a.to_be_bytes());
        }
    }
    let zipf = Zipf::new(distinct, 1.0);
    let mut ts = 1_700_000_000u64 << 32;
    (0..n)
        .map(|i| {
            let src = pool[zipf.sample(&mut r)];
            let dst = pool[zipf.sample(&mut r)];
            let ports = r.next_u64();
            let mut f = vec![0u8; 42];
            f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
            f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut f[14..34];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&46u16.to_be_bytes()); // 20 + 8 + 18 bytes of payload
            ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
            ip[8] = 64;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&src);
            ip[16..20].copy_from_slice(&dst);
            let ck = !fold(sum(ip, 0));
            ip[10..12].copy_from_slice(&ck.to_be_bytes());
            let udp = &mut f[34..42];
            udp[0..2].copy_from_slice(&(ports as u16).to_be_bytes());
            udp[2..4].copy_from_slice(&((ports >> 16) as u16).to_be_bytes());
            udp[4..6].copy_from_slice(&26u16.to_be_bytes());
            let pseudo = sum(&src, sum(&dst, 17 + 26));
            let mut ck = !fold(sum(udp, pseudo));
            if ck == 0 {
                ck = 0xffff;
            }
            udp[6..8].copy_from_slice(&ck.to_be_bytes());
            ts += 0x10000; // about 15 us apart
            Frame {
                ts: Timestamp(ts),
                wlen: 64,
                data: f,
            }
        })
        .collect()
}

/// What the anonymiser stage made of one slot.
#[derive(Copy, Clone, Default)]
struct Info {
    ts: Timestamp,
    wlen: u32,
    caplen: u16,
    end: u16,
    kind: Option<FrameKind>,
}

/// A batch of fixed-size slots, allocated once.
struct Batch {
    len: usize,
    info: Box<[Info]>,
    data: Box<[u8]>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            len: 0,
            info: vec![Info::default(); BATCH].into_boxed_slice(),
            data: vec![0u8; BATCH * SLOT].into_boxed_slice(),
        }
    }
}

/// The per-frame step of the anonymiser stage: rewrites `slot` (the frame is `slot[..caplen]`)
/// in place and returns the length to write and the record kind (`None`: not written).
pub trait Step {
    /// Processes one slot.
    fn step(&mut self, slot: &mut [u8], caplen: usize, wlen: u32) -> (usize, Option<FrameKind>);
}

/// The baseline: every frame is written as it was captured.
pub struct Baseline;

impl Step for Baseline {
    #[inline]
    fn step(&mut self, _slot: &mut [u8], caplen: usize, _wlen: u32) -> (usize, Option<FrameKind>) {
        (caplen, Some(FrameKind::Ethernet))
    }
}

/// The live step: [`FrameProcessor::process`] on the slot, the output copied back into it
/// (what capture/src/live/adapt.rs's `LiveProcessor` does).
pub struct Anonymise<M>(pub FrameProcessor<M>);

impl<M: AddressMapper> Step for Anonymise<M> {
    #[inline]
    fn step(&mut self, slot: &mut [u8], caplen: usize, wlen: u32) -> (usize, Option<FrameKind>) {
        let packet = Packet {
            ts: Timestamp(0),
            link: LinkType::Ethernet,
            iface: 0,
            wlen,
            lost_before: 0,
            data: &slot[..caplen],
        };
        match self.0.process(&packet) {
            Processed::Write { kind, data, .. } => {
                let n = data.len().min(slot.len());
                slot[..n].copy_from_slice(&data[..n]);
                (n, Some(kind))
            }
            Processed::Drop(_) => (0, None),
        }
    }
}

/// The live step without its two copies: [`FrameProcessor::process_in_place`] on the slot
/// (what `LiveProcessor` can do instead of copying the frame out and the result back).
pub struct AnonymiseInPlace<M>(pub FrameProcessor<M>);

impl<M: AddressMapper> Step for AnonymiseInPlace<M> {
    #[inline]
    fn step(&mut self, slot: &mut [u8], caplen: usize, wlen: u32) -> (usize, Option<FrameKind>) {
        let caplen = caplen.min(slot.len());
        match self
            .0
            .process_in_place(LinkType::Ethernet, &mut slot[..caplen], wlen)
        {
            ProcessedRange::Write { kind, range, .. } => {
                let n = range.len();
                if range.start != 0 {
                    slot.copy_within(range, 0);
                }
                (n, Some(kind))
            }
            ProcessedRange::Drop(_) => (0, None),
        }
    }
}

/// The three stages and their rings.
pub struct Pipeline {
    free: (Sender<Batch>, Receiver<Batch>),
    work: (Sender<Batch>, Receiver<Batch>),
    done: (Sender<Batch>, Receiver<Batch>),
    out: Vec<u8>,
}

/// What one pass over the frames produced (kept so the compiler cannot drop the work).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Records encoded.
    pub records: usize,
    /// Bytes encoded.
    pub bytes: usize,
    /// A running checksum of the encoded bytes at buffer wrap points.
    pub digest: u64,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// The rings, the batch pool and a 1 MiB output buffer.
    pub fn new() -> Pipeline {
        let p = Pipeline {
            free: bounded(POOL),
            work: bounded(POOL),
            done: bounded(POOL),
            out: vec![0u8; 1 << 20],
        };
        for _ in 0..POOL {
            p.free.0.send(Batch::new()).expect("room in the pool");
        }
        p
    }

    /// Runs every frame through the receive, anonymiser (with `step`) and writer stages.
    pub fn run<S: Step>(&mut self, frames: &[Frame], step: &mut S) -> Totals {
        let mut t = Totals::default();
        let mut pos = 0usize;
        for chunk in frames.chunks(BATCH) {
            // Receive stage.
            let mut b = self.free.1.recv().expect("a free batch");
            for (i, f) in chunk.iter().enumerate() {
                let n = f.data.len().min(SLOT);
                b.data[i * SLOT..i * SLOT + n].copy_from_slice(&f.data[..n]);
                b.info[i] = Info {
                    ts: f.ts,
                    wlen: f.wlen.max(n as u32),
                    caplen: n as u16,
                    end: 0,
                    kind: None,
                };
            }
            b.len = chunk.len();
            self.work.0.send(b).expect("room in the ring");

            // Anonymiser stage.
            let mut b = self.work.1.recv().expect("a batch to process");
            for i in 0..b.len {
                let info = &mut b.info[i];
                let slot = &mut b.data[i * SLOT..(i + 1) * SLOT];
                let (end, kind) = step.step(slot, usize::from(info.caplen), info.wlen);
                info.end = end.min(SLOT) as u16;
                info.kind = kind;
            }
            self.done.0.send(b).expect("room in the ring");

            // Writer stage.
            let b = self.done.1.recv().expect("a batch to write");
            for i in 0..b.len {
                let info = &b.info[i];
                let Some(kind) = info.kind else { continue };
                if self.out.len() - pos < 2 * SLOT {
                    t.digest = t.digest.wrapping_mul(31).wrapping_add(
                        self.out[..pos]
                            .iter()
                            .step_by(61)
                            .map(|&x| u64::from(x))
                            .sum(),
                    );
                    pos = 0;
                }
                let data = &b.data[i * SLOT..i * SLOT + usize::from(info.end)];
                let wlen = info.wlen.min(u32::from(u16::MAX)) as u16;
                let n = encode_packet(&mut self.out[pos..], info.ts, 0, kind, 0, wlen, data)
                    .expect("room in the output buffer");
                pos += n;
                t.records += 1;
                t.bytes += n;
            }
            self.free.0.send(b).expect("room in the pool");
        }
        black_box(&self.out);
        t
    }
}
