//! Property tests: no reader panics on arbitrary or mutated bytes, every packet's bytes lie
//! inside the input, an error ends the stream, and a truncated trace yields a prefix of the
//! packets of the whole one.

use capture::input::{detect, Merge, Packets, Trace};
use proptest::prelude::*;
use std::path::Path;

const SEEDS: [&str; 4] = [
    "dpkt-dns_icmp.pcap",
    "libtrace-complex.pcapng",
    "libtrace-100_packets.erf",
    "suricata-detect-ipopts.pcap",
];

fn seed(i: usize) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces")
        .join(SEEDS[i % SEEDS.len()]);
    std::fs::read(p).unwrap()
}

/// Reads everything; checks the invariants; returns the packets' (wlen, data offset, len).
fn check(bytes: &[u8]) -> Vec<(u32, usize, usize)> {
    let _ = detect(bytes);
    let Ok(pk) = Packets::from_bytes(Path::new("prop"), bytes) else {
        return Vec::new();
    };
    let base = bytes.as_ptr() as usize;
    let mut out = Vec::new();
    let mut pk = pk;
    let mut errored = false;
    for r in pk.by_ref() {
        assert!(!errored, "an item after an error");
        match r {
            Ok(p) => {
                let at = p.data.as_ptr() as usize;
                assert!(
                    p.data.is_empty() || (at >= base && at + p.data.len() <= base + bytes.len())
                );
                assert!(p.data.len() as u64 <= u64::from(p.wlen));
                out.push((p.wlen, at.wrapping_sub(base), p.data.len()));
            }
            Err(e) => {
                assert!(e.to_string().contains("prop"));
                errored = true;
            }
        }
    }
    assert!(pk.next().is_none());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_magic(magic in 0usize..4, rest in proptest::collection::vec(any::<u8>(), 0..1024)) {
        // Start with a real file header, so the record parsers (not only detection) are hit.
        let s = seed(magic);
        let head = match magic { 0 | 3 => 24, 1 => 96, _ => 0 };
        let mut b = s[..head].to_vec();
        if magic == 2 { b.extend_from_slice(&s[..16]); }
        b.extend(rest);
        check(&b);
    }

    #[test]
    fn mutated_traces(which in 0usize..4, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut b = seed(which);
        for (at, v) in flips {
            let n = b.len();
            b[at % n] = v;
        }
        check(&b);
    }

    #[test]
    fn truncation_gives_a_prefix(which in 0usize..4, cut in any::<usize>()) {
        let b = seed(which);
        let whole = check(&b);
        let cut = cut % b.len();
        let part = check(&b[..cut]);
        prop_assert!(part.len() <= whole.len());
        prop_assert_eq!(&whole[..part.len()], &part[..]);
    }
}

#[test]
fn merge_is_stable_and_ordered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces");
    let a = Trace::open(&dir.join("zeek-icmp_dot1q.pcap")).unwrap();
    let b = Trace::open(&dir.join("zeek-icmp6-nd-options.pcap")).unwrap();
    // The same trace twice: equal timestamps must alternate source 0 then 1.
    let m = Merge::new(vec![a.packets(), a.packets(), b.packets()]);
    let items: Vec<_> = m.map(|r| r.unwrap()).collect();
    assert_eq!(items.len(), 15 + 15 + 20);
    for w in items.windows(2) {
        assert!(w[0].1.ts <= w[1].1.ts);
        if w[0].1.ts == w[1].1.ts {
            assert!(w[0].0 <= w[1].0, "equal timestamps keep source order");
        }
    }
    // Each source's packets come out in their own order.
    for src in 0..3 {
        let mine: Vec<_> = items
            .iter()
            .filter(|x| x.0 == src)
            .map(|x| x.1.data.as_ptr())
            .collect();
        let t = if src == 2 { &b } else { &a };
        let own: Vec<_> = t.packets().map(|p| p.unwrap().data.as_ptr()).collect();
        assert_eq!(mine, own);
    }
}

#[test]
fn merge_reports_a_source_error_and_goes_on() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces");
    let bytes = std::fs::read(dir.join("dpkt-dns_icmp.pcap")).unwrap();
    let cut = &bytes[..bytes.len() - 5];
    let good = Trace::open(&dir.join("zeek-mdns.pcap")).unwrap();
    let m = Merge::new(vec![
        Packets::from_bytes(Path::new("cut"), cut).unwrap(),
        good.packets(),
    ]);
    let (mut ok, mut err) = (0, 0);
    for r in m {
        match r {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(e.to_string().starts_with("cut: record 32"), "{e}");
                err += 1
            }
        }
    }
    assert_eq!((ok, err), (31 + 24, 1));
}
