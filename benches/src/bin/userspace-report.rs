//! Prints the user-space cost per packet of the live capture path (rings, rewrite, anonymise,
//! ERF encode; no kernel) against the plain-copy baseline measured in the same run, on one core:
//! `cargo run --release -p benches --bin userspace-report`.
//!
//! Each figure is the best of several passes over the input, the two steps alternating so that
//! both see the same machine state. `--profile <trace|synthetic> <copy|anonymise|in-place> <passes>` runs
//! one step only, for `valgrind --tool=callgrind` (instruction counts per function).

#[path = "../../benches/userspace/model.rs"]
mod model;

use std::hint::black_box;
use std::time::Instant;

use anonymise::{Anonymiser, Key, Policy};
use capture::offline::FrameProcessor;
use capture::rewrite::{RewriteOptions, Rewriter};
use model::{Anonymise, AnonymiseInPlace, Baseline, Frame, Pipeline, Step, Totals};

/// The budget: one core at 10 GbE line rate of minimum-size frames (14.88 Mpps), about 200
/// cycles at 3 GHz.
const BUDGET_NS: f64 = 67.0;

fn processor() -> Anonymise<Anonymiser> {
    let key = Key::from_bytes([7u8; 32]);
    Anonymise(FrameProcessor::new(
        Rewriter::new(RewriteOptions::default()),
        Anonymiser::new(&key, &Policy::default(), 1 << 16),
    ))
}

fn pass<S: Step>(p: &mut Pipeline, frames: &[Frame], step: &mut S) -> (f64, Totals) {
    let t = Instant::now();
    let totals = black_box(p.run(black_box(frames), step));
    (
        t.elapsed().as_secs_f64() * 1e9 / frames.len() as f64,
        totals,
    )
}

fn report(name: &str, frames: &[Frame], passes: usize) {
    let mut p = Pipeline::new();
    let mut step = processor();
    let mut in_place = AnonymiseInPlace(processor().0);
    let (_, warm) = pass(&mut p, frames, &mut step);
    assert_eq!(warm.records, frames.len(), "every frame is written");
    assert_eq!(
        pass(&mut p, frames, &mut in_place).1,
        warm,
        "same output in place"
    );
    pass(&mut p, frames, &mut Baseline);
    let (mut copy, mut full, mut inpl) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..passes {
        copy = copy.min(pass(&mut p, frames, &mut Baseline).0);
        full = full.min(pass(&mut p, frames, &mut step).0);
        inpl = inpl.min(pass(&mut p, frames, &mut in_place).0);
    }
    let verdict = |ns: f64| if ns <= BUDGET_NS { "met" } else { "NOT met" };
    println!("{name}: {} frames", frames.len());
    println!("  copy (baseline)     {copy:6.1} ns/packet");
    println!(
        "  anonymise           {full:6.1} ns/packet  ratio {:5.2}  budget {BUDGET_NS} ns: {}",
        full / copy,
        verdict(full)
    );
    println!(
        "  anonymise in place  {inpl:6.1} ns/packet  ratio {:5.2}  budget {BUDGET_NS} ns: {}",
        inpl / copy,
        verdict(inpl)
    );
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

fn frames(name: &str) -> Vec<Frame> {
    match name {
        "trace" => model::trace_frames(),
        "synthetic" => model::synthetic_frames(1 << 16, 4096, 1),
        other => panic!("unknown input {other:?} (trace or synthetic)"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--profile") {
        let input = args.get(1).map_or("synthetic", String::as_str);
        let which = args.get(2).map_or("anonymise", String::as_str);
        let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
        let frames = frames(input);
        let mut p = Pipeline::new();
        let mut total = Totals::default();
        let mut step = processor();
        let mut in_place = AnonymiseInPlace(processor().0);
        for _ in 0..n {
            let t = match which {
                "copy" => p.run(&frames, &mut Baseline),
                "in-place" => p.run(&frames, &mut in_place),
                _ => p.run(&frames, &mut step),
            };
            total.records += t.records;
            total.bytes += t.bytes;
            total.digest ^= t.digest;
        }
        println!("{input} {which}: {n} passes, {total:?}");
        return;
    }
    let passes = if args.iter().any(|a| a == "--quick") {
        3
    } else {
        15
    };
    println!("userspace report: one core, CPU {}", cpu_model());
    report("trace", &frames("trace"), passes);
    report("synthetic", &frames("synthetic"), passes);
}
