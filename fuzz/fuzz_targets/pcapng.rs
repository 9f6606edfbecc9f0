//! Fuzzes the pcapng trace reader: any bytes, read as `anoncap` reads a file, must never panic
//! and never hand out bytes outside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// A little-endian pcapng section header block (28 bytes, no options): the fuzzer spends its
/// time in the block parsers.
const PREFIX: &[u8] = &[
    0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0,
];

fuzz_target!(|data: &[u8]| {
    let input: Vec<u8> = PREFIX.iter().copied().chain(data.iter().copied()).collect();
    let _ = capture::input::detect(&input);
    let Ok(packets) = capture::input::Packets::from_bytes(Path::new("fuzz"), &input) else {
        return;
    };
    let range = input.as_ptr_range();
    for p in packets {
        match p {
            Ok(p) => {
                let r = p.data.as_ptr_range();
                assert!(p.data.is_empty() || (r.start >= range.start && r.end <= range.end));
                assert!(p.data.len() as u64 <= u64::from(p.wlen));
            }
            Err(_) => break,
        }
    }
});
