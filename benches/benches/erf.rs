//! The cost of writing one ERF packet record, without the rewrite.
//!
//! One input: 65,536 records whose sizes follow the live path's mix. Most are Ethernet frames
//! cut to their 42 bytes of headers (snapped, written unpadded); some are whole small frames
//! (padded to a multiple of 8), and some are IPv4 or IPv6 records. Three steps go over it in
//! the same run:
//! - `copy`: the baseline, only the captured bytes copied one after the other into a 1 MiB
//!   buffer (what any encoder has to do at least);
//! - `encode_packet`: `capture::erf::encode_packet` into the same buffer, as the live writer
//!   stage and the offline converter call it;
//! - `write_packet`: `capture::output::ErfWriter::write_packet`, the whole writer path (lctr,
//!   counts, its 1 MiB buffer, and the write when it fills) into a directory under /dev/shm
//!   (falling back to the temporary directory), rotated at 32 MiB with only the newest file
//!   kept, without META records and sidecars.
//!
//! `cargo bench -p benches --bench erf`

use std::hint::black_box;
use std::path::PathBuf;

use capture::erf::encode_packet;
use capture::output::{ErfWriter, OutputConfig, OutputTarget, Retention, RunInfo};
use capture::packet::{FrameKind, Timestamp};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const RECORDS: usize = 1 << 16;
const OUT: usize = 1 << 20;

/// One record to write: its kind, wire length and captured length.
#[derive(Copy, Clone)]
struct Rec {
    kind: FrameKind,
    wlen: u16,
    len: usize,
}

/// The record mix, from a fixed-seed generator so that every run writes the same records.
fn records() -> Vec<Rec> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..RECORDS)
        .map(|_| {
            let r = next();
            match r % 100 {
                // Ethernet/IPv4/UDP or TCP cut to its headers.
                0..=69 => Rec {
                    kind: FrameKind::Ethernet,
                    wlen: 64 + (r >> 8) as u16 % 1451,
                    len: if r & 0x100 == 0 { 42 } else { 54 },
                },
                // A whole small frame: padded to a multiple of 8.
                70..=84 => {
                    let n = 42 + (r >> 8) as usize % 87;
                    Rec {
                        kind: FrameKind::Ethernet,
                        wlen: n as u16,
                        len: n,
                    }
                }
                85..=94 => Rec {
                    kind: FrameKind::Ipv4,
                    wlen: 40 + (r >> 8) as u16 % 1461,
                    len: 40,
                },
                _ => {
                    let n = 48 + (r >> 8) as usize % 81;
                    Rec {
                        kind: FrameKind::Ipv6,
                        wlen: n as u16,
                        len: n,
                    }
                }
            }
        })
        .collect()
}

fn out_dir() -> PathBuf {
    let base = PathBuf::from("/dev/shm");
    let base = if base.is_dir() {
        base
    } else {
        std::env::temp_dir()
    };
    base.join(format!("anoncap-erf-bench-{}", std::process::id()))
}

fn bench(c: &mut Criterion) {
    let recs = records();
    let mut slab = [0u8; 256];
    for (i, b) in slab.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ 0x5A;
    }
    let mut out = vec![0u8; OUT];

    let mut g = c.benchmark_group("erf");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(20);
    g.bench_function("copy", |b| {
        b.iter(|| {
            let mut pos = 0;
            for (i, r) in black_box(&recs).iter().enumerate() {
                if OUT - pos < 512 {
                    pos = 0;
                }
                let data = &slab[..r.len];
                out[pos..pos + data.len()].copy_from_slice(data);
                pos += data.len() + (i & 1);
            }
            black_box(&out);
            pos
        })
    });
    g.bench_function("encode_packet", |b| {
        b.iter(|| {
            let mut pos = 0;
            for (i, r) in black_box(&recs).iter().enumerate() {
                if OUT - pos < 512 {
                    pos = 0;
                }
                let ts = Timestamp(0x6553_F100_0000_0000 + i as u64);
                let data = &slab[..r.len];
                pos += encode_packet(&mut out[pos..], ts, 0, r.kind, 0, r.wlen, data)
                    .expect("room in the output buffer");
            }
            black_box(&out);
            pos
        })
    });

    let dir = out_dir();
    std::fs::create_dir_all(&dir).expect("bench output directory");
    let target = OutputTarget::Directory {
        dir: dir.clone(),
        rotate_bytes: 32 << 20,
        rotate_interval: None,
    };
    let mut cfg = OutputConfig::new(target, RunInfo::default());
    cfg.meta = false;
    cfg.sidecar = false;
    cfg.retention = Some(Retention {
        max_files: Some(1),
        max_bytes: None,
        min_free_bytes: None,
    });
    let mut w = ErfWriter::create(cfg).expect("ERF writer");
    let mut n: u64 = 0;
    g.bench_function("write_packet", |b| {
        b.iter(|| {
            for r in black_box(&recs) {
                n += 1;
                let ts = Timestamp(0x6553_F100_0000_0000 + n);
                w.write_packet(ts, 0, r.kind, u32::from(r.wlen), &slab[..r.len])
                    .expect("record written");
            }
        })
    });
    g.finish();
    let summary = w.finish().expect("writer finished");
    // Every record handed to the writer reached a file (none counted as lost).
    assert_eq!(summary.totals.written.packets, n);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
