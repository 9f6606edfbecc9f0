//! Fuzzes the pcap trace reader: any bytes, read as `anoncap` reads a file, must never panic
//! and never hand out bytes outside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// A little-endian microsecond pcap header (snaplen 65535, Ethernet): the fuzzer spends its
/// time in the record parser.
const PREFIX: &[u8] = &[
    0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
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
