//! Prints the anonymiser's speed as ratios against the reference path, measured in the same run
//! on one core: `cargo run --release -p benches --bin anonymise-report`.
//!
//! The reference path is the plain one of the anonymise crate: one AES call at a time, no table,
//! no cache. Each figure is the best of several runs.

#[path = "../../benches/anonymise/inputs.rs"]
mod inputs;

use std::time::Instant;

use anonymise::cryptopan::{CryptoPan, Scratch};
use anonymise::{AddressMapper, Anonymiser, Key, Policy};

/// Best rate (items per second) of `runs` runs; `f` returns the items and the seconds it timed.
fn best<F: FnMut() -> (usize, f64)>(runs: usize, mut f: F) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..runs {
        let (n, secs) = f();
        best = best.min(secs / n as f64);
    }
    1.0 / best
}

fn verdict(what: &str, ok: bool) {
    println!("  target {what}: {}", if ok { "met" } else { "NOT met" });
}

/// Times `f` alone.
fn timed<F: FnOnce()>(f: F) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let key = Key::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ 0xa5));
    let policy = Policy::cryptopan();
    let reference = CryptoPan::new(&key, false);
    let mut scratch = Scratch::default();
    println!("anonymise report: one core, CPU {}", cpu_model());
    println!(
        "AES hardware acceleration detected: {}",
        anonymise::cryptopan::aes_hardware_accelerated()
    );

    // Cold IPv4, 1 M uniformly random addresses.
    let cold4 = inputs::uniform_v4(1_000_000 / scale, 1);
    let ref_n = cold4.len() / 5;
    let ref4 = best(3, || {
        let mut x = 0u32;
        let secs = timed(|| {
            for a in &cold4[..ref_n] {
                x ^= reference.reference_ipv4(u32::from_be_bytes(*a));
            }
        });
        std::hint::black_box(x);
        (ref_n, secs)
    });
    let t = Instant::now();
    let prepared = anonymise::Prepared::new(&key, &policy);
    println!(
        "per-key preparation (AES key schedule, /16 table of 65,535 blocks): {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "VAES-512 kernel in use: {}",
        prepared.cryptopan().has_kernel()
    );
    let tabled = CryptoPan::new(&key, true);
    let batch4 = best(5, || {
        let mut v: Vec<u32> = cold4.iter().map(|a| u32::from_be_bytes(*a)).collect();
        let secs = timed(|| tabled.ipv4_batch(&mut v, &mut scratch));
        std::hint::black_box(&v);
        (v.len(), secs)
    });
    let anon4 = best(5, || {
        let mut v = cold4.clone();
        let secs = timed(|| {
            let mut a = Anonymiser::new(&key, &policy, 1 << 16);
            a.map_ipv4_batch(&mut v);
        });
        std::hint::black_box(&v);
        (v.len(), secs)
    });
    println!(
        "cold IPv4 ({} uniform): reference {:.2} M/s; batch path {:.1} M/s ({:.1}x); \
         anonymiser with cache, setup included {:.1} M/s ({:.1}x)",
        cold4.len(),
        ref4 / 1e6,
        batch4 / 1e6,
        batch4 / ref4,
        anon4 / 1e6,
        anon4 / ref4
    );

    // Trace-like IPv4: 10 M from 50 k distinct, Zipf(1.1), clustered prefixes.
    let trace = inputs::trace_like_v4(10_000_000 / scale, 50_000, 1.1, 2);
    let mut a = Anonymiser::new(&key, &policy, 1 << 17);
    let trace4 = best(3, || {
        let mut v = trace.clone();
        let secs = timed(|| a.map_ipv4_batch(&mut v));
        std::hint::black_box(&v);
        (v.len(), secs)
    });
    let mut one = Anonymiser::new(&key, &policy, 1 << 17);
    let single4 = best(3, || {
        let mut x = [0u8; 4];
        let secs = timed(|| {
            for a in &trace {
                let m = one.map_ipv4(*a);
                x[0] ^= m[0];
            }
        });
        std::hint::black_box(x);
        (trace.len(), secs)
    });
    let trace_ref_n = trace.len() / 50;
    let trace_ref = best(2, || {
        let mut x = 0u32;
        let secs = timed(|| {
            for a in &trace[..trace_ref_n] {
                x ^= reference.reference_ipv4(u32::from_be_bytes(*a));
            }
        });
        std::hint::black_box(x);
        (trace_ref_n, secs)
    });
    println!(
        "trace-like IPv4 ({} from 50000 distinct, Zipf 1.1): anonymiser {:.1} M/s ({:.1}x the \
         reference path's {:.2} M/s)",
        trace.len(),
        trace4 / 1e6,
        trace4 / trace_ref,
        trace_ref / 1e6
    );

    println!(
        "trace-like IPv4, one address per call (AddressMapper::map_ipv4, as the frame \
         rewriter calls it): {:.1} M/s ({:.1}x)",
        single4 / 1e6,
        single4 / trace_ref
    );
    verdict("cold IPv4 batch path >= 25 M/s", batch4 >= 25e6);
    verdict(
        "cold IPv4 batch path >= 12x the reference",
        batch4 >= 12.0 * ref4,
    );
    verdict("trace-like IPv4 >= 100 M/s", trace4 >= 100e6);

    // Cold IPv6.
    let cold6 = inputs::uniform_v6(200_000 / scale, 3);
    let ref6_n = cold6.len() / 10;
    let ref6 = best(3, || {
        let mut x = 0u128;
        let secs = timed(|| {
            for a in &cold6[..ref6_n] {
                x ^= reference.reference_ipv6(u128::from_be_bytes(*a));
            }
        });
        std::hint::black_box(x);
        (ref6_n, secs)
    });
    let batch6 = best(5, || {
        let mut v: Vec<u128> = cold6.iter().map(|a| u128::from_be_bytes(*a)).collect();
        let secs = timed(|| tabled.ipv6_batch(&mut v, &mut scratch));
        std::hint::black_box(&v);
        (v.len(), secs)
    });
    let anon6 = best(5, || {
        let mut v = cold6.clone();
        let secs = timed(|| {
            let mut a = Anonymiser::new(&key, &policy, 1 << 16);
            a.map_ipv6_batch(&mut v);
        });
        std::hint::black_box(&v);
        (v.len(), secs)
    });
    println!(
        "cold IPv6 ({} uniform): reference {:.2} M/s; batch path {:.2} M/s ({:.1}x); \
         anonymiser with cache, setup included {:.2} M/s ({:.1}x)",
        cold6.len(),
        ref6 / 1e6,
        batch6 / 1e6,
        batch6 / ref6,
        anon6 / 1e6,
        anon6 / ref6
    );
    verdict("cold IPv6 (anonymiser) >= 6 M/s", anon6 >= 6e6);
}
