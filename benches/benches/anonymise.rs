//! Criterion benchmarks of the anonymiser against the plain reference path (one AES call at a
//! time, no table, no cache), measured in the same run: `cargo bench -p benches --bench
//! anonymise`. `anonymise-report` prints the same comparisons as ratios.

#[path = "anonymise/inputs.rs"]
mod inputs;

use anonymise::cryptopan::{CryptoPan, Scratch};
use anonymise::{Anonymiser, Key, Policy};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn key() -> Key {
    Key::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ 0xa5))
}

fn cold_ipv4(c: &mut Criterion) {
    let key = key();
    let reference = CryptoPan::with_kernel(&key, false, false);
    let fast = CryptoPan::new(&key, true);
    let crate_only = CryptoPan::with_kernel(&key, true, false);
    let addrs: Vec<u32> = inputs::uniform_v4(1 << 16, 1)
        .iter()
        .map(|a| u32::from_be_bytes(*a))
        .collect();
    let mut g = c.benchmark_group("cryptopan_ipv4_cold");
    g.throughput(Throughput::Elements(4096));
    g.bench_function("reference", |b| {
        b.iter(|| {
            let mut x = 0;
            for a in &addrs[..4096] {
                x ^= reference.reference_ipv4(*a);
            }
            x
        })
    });
    g.throughput(Throughput::Elements(addrs.len() as u64));
    let mut scratch = Scratch::default();
    g.bench_function("batch_vaes512_kernel_table", |b| {
        b.iter_batched_ref(
            || addrs.clone(),
            |v| fast.ipv4_batch(v, &mut scratch),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("batch_aes_crate_table", |b| {
        b.iter_batched_ref(
            || addrs.clone(),
            |v| crate_only.ipv4_batch(v, &mut scratch),
            BatchSize::LargeInput,
        )
    });
    let bytes: Vec<[u8; 4]> = addrs.iter().map(|a| a.to_be_bytes()).collect();
    let prep = anonymise::Prepared::new(&key, &Policy::cryptopan());
    g.bench_function("anonymiser_fresh_cache", |b| {
        b.iter_batched_ref(
            || {
                (
                    bytes.clone(),
                    Anonymiser::from_prepared(prep.clone(), 1 << 16),
                )
            },
            |(v, a)| a.map_ipv4_batch(v),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn trace_ipv4(c: &mut Criterion) {
    let key = key();
    let reference = CryptoPan::with_kernel(&key, false, false);
    let trace = inputs::trace_like_v4(1_000_000, 50_000, 1.1, 2);
    let mut anon = Anonymiser::new(&key, &Policy::cryptopan(), 1 << 17);
    let mut g = c.benchmark_group("cryptopan_ipv4_trace_like");
    g.throughput(Throughput::Elements(4096));
    g.bench_function("reference", |b| {
        b.iter(|| {
            let mut x = 0;
            for a in &trace[..4096] {
                x ^= reference.reference_ipv4(u32::from_be_bytes(*a));
            }
            x
        })
    });
    g.throughput(Throughput::Elements(trace.len() as u64));
    g.bench_function("anonymiser_cache", |b| {
        b.iter_batched_ref(
            || trace.clone(),
            |v| anon.map_ipv4_batch(v),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn cold_ipv6(c: &mut Criterion) {
    let key = key();
    let reference = CryptoPan::with_kernel(&key, false, false);
    let fast = CryptoPan::new(&key, true);
    let addrs: Vec<u128> = inputs::uniform_v6(1 << 13, 3)
        .iter()
        .map(|a| u128::from_be_bytes(*a))
        .collect();
    let mut g = c.benchmark_group("cryptopan_ipv6_cold");
    g.throughput(Throughput::Elements(256));
    g.bench_function("reference", |b| {
        b.iter(|| {
            let mut x = 0;
            for a in &addrs[..256] {
                x ^= reference.reference_ipv6(*a);
            }
            x
        })
    });
    g.throughput(Throughput::Elements(addrs.len() as u64));
    let mut scratch = Scratch::default();
    g.bench_function("batch_vaes512_kernel_table", |b| {
        b.iter_batched_ref(
            || addrs.clone(),
            |v| fast.ipv6_batch(v, &mut scratch),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn table_build(c: &mut Criterion) {
    let key = key();
    c.bench_function("prepare_key_with_table", |b| {
        b.iter(|| CryptoPan::new(&key, true))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = cold_ipv4, trace_ipv4, cold_ipv6, table_build
}
criterion_main!(benches);
