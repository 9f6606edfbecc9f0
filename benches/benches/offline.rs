//! Offline pipeline throughput on the largest shared trace, looped in memory.
//!
//! Two loops over the same records in the same run:
//! - `copy`: the baseline, a plain read-and-write copy: every record read from the mapped
//!   trace is encoded whole as an ERF record into an in-memory buffer;
//! - `anonymise`: what `anoncap offline` does per packet: copy into the scratch buffer, rewrite
//!   (cut to headers, Crypto-PAn on every address, checksums), encode the header-only record.
//!
//! The difference between the two, per packet, is the rewriting cost. `cargo bench -p benches
//! --bench offline` prints both; `benches/report-offline.sh` turns them into a ratio.

use std::hint::black_box;
use std::path::Path;

use anonymise::{Anonymiser, Key, Policy};
use capture::erf::encode_packet;
use capture::input::Trace;
use capture::offline::{FrameProcessor, Processed};
use capture::packet::{FrameKind, LinkType, Packet};
use capture::rewrite::{RewriteOptions, Rewriter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const TRACE: &str = "zeek-echo-connections.pcap";

fn load() -> Trace {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces")
        .join(TRACE);
    Trace::open(&path).expect("the bundled trace")
}

fn kind_of(link: LinkType) -> FrameKind {
    match link {
        LinkType::Ipv6 => FrameKind::Ipv6,
        LinkType::Ipv4 | LinkType::RawIp => FrameKind::Ipv4,
        _ => FrameKind::Ethernet,
    }
}

fn bench(c: &mut Criterion) {
    let trace = load();
    let packets: Vec<Packet<'_>> = trace.packets().map(|p| p.unwrap()).collect();
    let key = Key::from_bytes([7u8; 32]);
    let policy = Policy::default();
    let mut out = vec![0u8; 1 << 20];

    let mut group = c.benchmark_group("offline");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.sample_size(20);

    group.bench_function("copy", |b| {
        b.iter(|| {
            let mut pos = 0;
            for p in &packets {
                if out.len() - pos < 70_000 {
                    pos = 0;
                }
                let wlen = p.wlen.min(u32::from(u16::MAX)) as u16;
                pos += encode_packet(
                    &mut out[pos..],
                    p.ts,
                    p.iface,
                    kind_of(p.link),
                    0,
                    wlen,
                    p.data,
                )
                .unwrap();
            }
            black_box(pos)
        })
    });

    let mut processor = FrameProcessor::new(
        Rewriter::new(RewriteOptions::default()),
        Anonymiser::new(&key, &policy, 1 << 16),
    );
    group.bench_function("anonymise", |b| {
        b.iter(|| {
            let mut pos = 0;
            for p in &packets {
                if out.len() - pos < 70_000 {
                    pos = 0;
                }
                let wlen = p.wlen.min(u32::from(u16::MAX)) as u16;
                if let Processed::Write { kind, data, .. } = processor.process(p) {
                    pos +=
                        encode_packet(&mut out[pos..], p.ts, p.iface, kind, 0, wlen, data).unwrap();
                }
            }
            black_box(pos)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
