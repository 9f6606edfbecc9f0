//! The user-space cost per packet of the live capture path, without the kernel: frames copied
//! into the fixed slots of 64-frame batches, passed through bounded rings to the per-frame
//! step, and ERF-encoded into memory (see `userspace/model.rs`).
//!
//! Two inputs, each with two steps measured in the same run:
//! - `trace`: the bundled throughput trace (zeek-echo-connections.pcap, 82,582 TCP frames);
//! - `synthetic`: 64-byte Ethernet/IPv4/UDP frames cut to their headers, with a Zipf(1.0) mix
//!   of 4,096 addresses of 198.18.0.0/15;
//! - `copy`: the baseline, the same rings and encoding with the frame written as captured;
//! - `anonymise`: the live step (`FrameProcessor`: rewrite, Crypto-PAn, checksums), as the live
//!   adapter runs it (frame copied into the processor's scratch buffer and the result back);
//! - `anonymise_in_place`: the same step on the slot itself (`FrameProcessor::process_in_place`).
//!
//! `cargo bench -p benches --bench userspace`; `cargo run --release -p benches --bin
//! userspace-report` prints ns/packet and the ratio to the baseline.

#[path = "userspace/model.rs"]
mod model;

use std::hint::black_box;

use anonymise::{Anonymiser, Key, Policy};
use capture::offline::FrameProcessor;
use capture::rewrite::{RewriteOptions, Rewriter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use model::{Anonymise, AnonymiseInPlace, Baseline, Frame, Pipeline};

fn processor() -> Anonymise<Anonymiser> {
    let key = Key::from_bytes([7u8; 32]);
    Anonymise(FrameProcessor::new(
        Rewriter::new(RewriteOptions::default()),
        Anonymiser::new(&key, &Policy::default(), 1 << 16),
    ))
}

fn group(c: &mut Criterion, name: &str, frames: &[Frame]) {
    let mut pipeline = Pipeline::new();
    let mut step = processor();
    // Every frame of both inputs is written: the bench measures the whole step, not a cut.
    let warm = pipeline.run(frames, &mut step);
    assert_eq!(warm.records, frames.len());

    let mut g = c.benchmark_group(format!("userspace_{name}"));
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.sample_size(20);
    g.bench_function("copy", |b| {
        b.iter(|| black_box(pipeline.run(black_box(frames), &mut Baseline)))
    });
    g.bench_function("anonymise", |b| {
        b.iter(|| black_box(pipeline.run(black_box(frames), &mut step)))
    });
    let mut in_place = AnonymiseInPlace(processor().0);
    assert_eq!(pipeline.run(frames, &mut in_place), warm);
    g.bench_function("anonymise_in_place", |b| {
        b.iter(|| black_box(pipeline.run(black_box(frames), &mut in_place)))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let trace = model::trace_frames();
    group(c, "trace", &trace);
    let synthetic = model::synthetic_frames(1 << 16, 4096, 1);
    group(c, "synthetic", &synthetic);
}

criterion_group!(benches, bench);
criterion_main!(benches);
