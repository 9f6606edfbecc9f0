//! Property tests of the frame rewriter over arbitrary bytes and over mutations of real frames
//! from testdata/traces, for every link type: it never panics, the range it returns lies inside
//! the frame, and no address it was asked to map survives in what would be written.

use std::collections::HashSet;
use std::path::Path;

use anonymise::AddressMapper;
use capture::input::Trace;
use capture::packet::LinkType;
use capture::rewrite::{RewriteOptions, Rewriter};
use proptest::prelude::*;

/// Maps every address to a fixed marker and remembers what it was given.
#[derive(Default)]
struct RecordingMapper {
    v4: HashSet<[u8; 4]>,
    v6: HashSet<[u8; 16]>,
}

impl AddressMapper for RecordingMapper {
    fn map_ipv4(&mut self, addr: [u8; 4]) -> [u8; 4] {
        self.v4.insert(addr);
        [0xc6, 0x33, 0x64, 0x63]
    }
    fn map_ipv6(&mut self, addr: [u8; 16]) -> [u8; 16] {
        self.v6.insert(addr);
        [
            0x20, 0x01, 0x0d, 0xb8, 0xee, 0xee, 0xee, 0xee, 0, 0, 0, 0, 0, 0, 0x63, 0x63,
        ]
    }
    fn map_mac(&mut self, mac: [u8; 6]) -> [u8; 6] {
        mac
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

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Rewrites `frame` and checks the contract (panics on a violation); returns how many distinct
/// addresses the rewriter mapped.
fn check(link: LinkType, frame: &[u8]) -> usize {
    let rewriter = Rewriter::new(RewriteOptions::default());
    let mut mapper = RecordingMapper::default();
    let mut buf = frame.to_vec();
    let out = rewriter.rewrite(&mut mapper, link, &mut buf, frame.len() as u32);
    assert!(
        out.start <= out.end && out.end <= buf.len(),
        "{out:?} for {} bytes",
        buf.len()
    );
    let kept = &buf[out.start..out.end];
    for a in &mapper.v4 {
        // An original that equals the marker, or that occurs in the input more often than the
        // rewriter saw it as an address, is not a leak this test can tell apart.
        let marker = [0xc6, 0x33, 0x64, 0x63];
        if *a == marker || frame.windows(4).filter(|w| w == a).count() > 1 {
            continue;
        }
        assert!(
            !contains(kept, a),
            "{link:?}: IPv4 {a:?} kept in {kept:02x?}"
        );
    }
    for a in &mapper.v6 {
        if frame.windows(16).filter(|w| w == a).count() > 1 {
            continue;
        }
        assert!(!contains(kept, a), "{link:?}: IPv6 {a:?} kept");
    }
    mapper.v4.len() + mapper.v6.len()
}

fn real_frames() -> Vec<(LinkType, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces");
    let mut frames = Vec::new();
    for name in [
        "tcpreplay-test.pcap",
        "pcpp-IcmpPackets.pcap",
        "pcpp-ipv6_options.pcap",
        "zeek-icmp6-nd-options.pcap",
        "zeek-gre-sample.pcap",
        "libtrace-vxlan.pcap",
        "zeek-Teredo.pcap",
        "suricata-detect-ipopts.pcap",
        "zeek-igmp.pcap",
        "libtrace-complex.pcapng",
        "libtrace-mpls.pcap",
    ] {
        let trace = Trace::open(&dir.join(name)).expect("bundled trace");
        for p in trace.packets().take(40) {
            let p = p.expect("bundled trace reads");
            frames.push((p.link, p.data.to_vec()));
        }
    }
    frames
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_on_every_link(link in 0usize..LINKS.len(), frame in proptest::collection::vec(any::<u8>(), 0..300)) {
        check(LINKS[link], &frame);
    }

    /// Arbitrary bytes behind a plausible start (Ethernet + IPv4/IPv6 EtherType, version
    /// nibble), so that the walk gets past the first header.
    #[test]
    fn plausible_headers_with_arbitrary_rest(v6 in any::<bool>(), rest in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(if v6 { &[0x86, 0xdd, 0x60] } else { &[0x08, 0x00, 0x45] });
        frame.extend_from_slice(&rest);
        check(LinkType::Ethernet, &frame);
    }
}

#[test]
fn mutations_of_real_frames() {
    let frames = real_frames();
    assert!(frames.len() > 200, "{} frames", frames.len());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(3000));
    let strategy = (
        0..frames.len(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        any::<prop::sample::Index>(),
    );
    runner
        .run(&strategy, |(i, edits, cut)| {
            let (link, frame) = &frames[i];
            let mut f = frame.clone();
            if !f.is_empty() {
                for (at, value) in edits {
                    let at = at.index(f.len());
                    f[at] = value;
                }
                let keep = cut.index(f.len() + 1);
                f.truncate(keep.max(1));
            }
            check(*link, &f);
            Ok(())
        })
        .unwrap();
}

#[test]
fn real_frames_unchanged_keep_no_address() {
    let mapped: usize = real_frames().iter().map(|(l, f)| check(*l, f)).sum();
    // The frames hold at least a source and a destination each, most of them more.
    assert!(mapped > 400, "only {mapped} addresses mapped");
}
