//! Fuzzes the frame rewriter: arbitrary bytes on every link type must never panic or read out
//! of bounds, and the range it returns must lie inside the frame.
#![no_main]

use anonymise::AddressMapper;
use capture::packet::LinkType;
use capture::rewrite::{RewriteOptions, Rewriter};
use libfuzzer_sys::fuzz_target;

struct Marker;

impl AddressMapper for Marker {
    fn map_ipv4(&mut self, _: [u8; 4]) -> [u8; 4] {
        [198, 51, 100, 99]
    }
    fn map_ipv6(&mut self, _: [u8; 16]) -> [u8; 16] {
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x63]
    }
    fn map_mac(&mut self, mac: [u8; 6]) -> [u8; 6] {
        [mac[0] | 2, 0, 0, 0, 0, 1]
    }
}

const LINKS: [LinkType; 7] = [
    LinkType::Ethernet,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Null,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let options = RewriteOptions {
        anonymise_mac: selector & 0x80 != 0,
        ..RewriteOptions::default()
    };
    let rewriter = Rewriter::new(options);
    let mut buf = frame.to_vec();
    let link = LINKS[usize::from(selector & 0x7f) % LINKS.len()];
    let out = rewriter.rewrite(&mut Marker, link, &mut buf, frame.len() as u32);
    assert!(out.start <= out.end && out.end <= buf.len());
});
