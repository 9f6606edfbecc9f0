//! Prints a digest of what the per-frame step (`FrameProcessor`) writes for every frame of every
//! bundled trace, and for deterministic mutations of them (bit flips, truncations, shortened
//! wire lengths), with and without MAC anonymisation: `cargo run --release -p benches --bin
//! rewrite-digest`.
//!
//! A change meant to make the step faster without changing its output must leave every line of
//! this output as it was.

use std::path::Path;

use anonymise::{Anonymiser, Key, Policy};
use capture::input::Trace;
use capture::offline::{FrameProcessor, Processed};
use capture::packet::Packet;
use capture::rewrite::{RewriteOptions, Rewriter};

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn record<M: anonymise::AddressMapper>(
    h: &mut Fnv,
    p: &mut FrameProcessor<M>,
    packet: &Packet<'_>,
) {
    match p.process(packet) {
        Processed::Write { kind, data, cut } => {
            h.bytes(format!("W{kind:?}{cut:?}{}", data.len()).as_bytes());
            h.bytes(data);
        }
        Processed::Drop(reason) => h.bytes(format!("D{reason:?}").as_bytes()),
    }
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("the bundled traces")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "erf")
            )
        })
        .collect();
    names.sort();
    let key = Key::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(13) ^ 0x5c));
    let mut rng = Rng(42);
    // (MAC anonymisation, cache entries): the cache-less run takes the miss path every time.
    for (mac, cache) in [(false, 1 << 12), (true, 1 << 12), (false, 0)] {
        let opts = RewriteOptions {
            anonymise_mac: mac,
            ..RewriteOptions::default()
        };
        let mut p = FrameProcessor::new(
            Rewriter::new(opts),
            Anonymiser::new(&key, &Policy::default(), cache),
        );
        for path in &names {
            let Ok(trace) = Trace::open(path) else {
                println!("{}: unreadable", path.display());
                continue;
            };
            let (mut plain, mut mutated) = (Fnv::new(), Fnv::new());
            let mut n = 0u64;
            for packet in trace.packets() {
                let Ok(packet) = packet else { break };
                n += 1;
                record(&mut plain, &mut p, &packet);
                // Mutations: a few bit flips in the first 128 bytes, a truncation, a shorter
                // wire length.
                let per = match n {
                    0..=200 => 64,
                    201..=2000 => 8,
                    _ => 1,
                };
                for _ in 0..per {
                    let mut data = packet.data.to_vec();
                    let r = rng.next_u64();
                    let flips = (r & 3) as usize;
                    for k in 0..flips {
                        if data.is_empty() {
                            break;
                        }
                        let at = ((r >> (8 + 16 * k)) as usize) % data.len().min(128);
                        data[at] ^= 1 << ((r >> (4 + 16 * k)) & 7);
                    }
                    if r & (1 << 60) != 0 && !data.is_empty() {
                        data.truncate(((r >> 40) as usize) % data.len());
                    }
                    let wlen = if r & (1 << 61) != 0 {
                        (data.len() as u32).saturating_sub(((r >> 50) & 31) as u32)
                    } else {
                        packet.wlen
                    };
                    let m = Packet {
                        data: &data,
                        wlen,
                        ..packet
                    };
                    record(&mut mutated, &mut p, &m);
                }
            }
            println!(
                "mac={} cache={cache:<4} {:<40} {n:>6} frames  {:016x}  mutated {:016x}",
                u8::from(mac),
                path.file_name().unwrap().to_string_lossy(),
                plain.0,
                mutated.0
            );
        }
    }
}
