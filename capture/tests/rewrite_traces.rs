//! The rewriter over every trace in testdata/traces: no original address of a frame survives in
//! the output, no payload byte is kept, and the contract (start <= end <= len) holds.
//!
//! The addresses of each frame come from two sources: the rewriter's own requests to the mapper,
//! and tshark's dissection of the same trace (an independent parser), so an address place the
//! rewriter does not know of is still caught. Payload bytes come from tshark too.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anonymise::AddressMapper;
use capture::packet::LinkType;
use capture::rewrite::{RewriteOptions, Rewriter};

/// Maps every address into a marker range (240.0.0.0/8, 3fff:ffff::/32) that no trace uses,
/// and records what it was asked.
#[derive(Default)]
struct Marker {
    asked4: Vec<[u8; 4]>,
    asked6: Vec<[u8; 16]>,
}

fn mix(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl AddressMapper for Marker {
    fn map_ipv4(&mut self, addr: [u8; 4]) -> [u8; 4] {
        self.asked4.push(addr);
        let h = mix(&addr).to_be_bytes();
        [240, h[0], h[1], h[2]]
    }
    fn map_ipv6(&mut self, addr: [u8; 16]) -> [u8; 16] {
        self.asked6.push(addr);
        let h = mix(&addr).to_be_bytes();
        let mut out = [0x3f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        out[4..12].copy_from_slice(&h);
        out[12..16].copy_from_slice(&h[..4]);
        out
    }
    fn map_mac(&mut self, mac: [u8; 6]) -> [u8; 6] {
        mac
    }
}

struct Frame {
    link: Option<LinkType>,
    wlen: u32,
    data: Vec<u8>,
}

fn traces_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces")
}

/// Every record of a trace, numbered as tshark numbers frames (1-based, in file order).
fn read_trace(path: &Path) -> Vec<Frame> {
    let bytes = std::fs::read(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    if name.ends_with(".erf") {
        return read_erf(&bytes);
    }
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut r = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).unwrap();
        let mut links = Vec::new();
        let mut out = Vec::new();
        while let Some(block) = r.next_block() {
            match block.unwrap() {
                pcap_file::pcapng::Block::InterfaceDescription(idb) => {
                    links.push(LinkType::from_linktype(u32::from(idb.linktype)));
                }
                pcap_file::pcapng::Block::EnhancedPacket(epb) => out.push(Frame {
                    link: links.get(epb.interface_id as usize).copied().flatten(),
                    wlen: epb.original_len,
                    data: epb.data.to_vec(),
                }),
                pcap_file::pcapng::Block::SimplePacket(spb) => out.push(Frame {
                    link: links.first().copied().flatten(),
                    wlen: spb.original_len,
                    data: spb.data.to_vec(),
                }),
                _ => {}
            }
        }
        return out;
    }
    read_pcap(&bytes)
}

/// A minimal pcap loop (either byte order, micro- or nanosecond magic). Records longer than the
/// snap length (as some snap-length-truncated traces have) are read as they are, as tshark does.
fn read_pcap(bytes: &[u8]) -> Vec<Frame> {
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let le = matches!(magic, 0xa1b2_c3d4 | 0xa1b2_3c4d);
    let be = matches!(magic.swap_bytes(), 0xa1b2_c3d4 | 0xa1b2_3c4d);
    assert!(le || be, "not a pcap file");
    let rd = |b: &[u8]| {
        let a: [u8; 4] = b.try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = LinkType::from_linktype(rd(&bytes[20..24]) & 0x0fff_ffff);
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = rd(&bytes[at + 8..at + 12]) as usize;
        let orig = rd(&bytes[at + 12..at + 16]);
        if at + 16 + incl > bytes.len() {
            break;
        }
        out.push(Frame {
            link,
            wlen: orig,
            data: bytes[at + 16..at + 16 + incl].to_vec(),
        });
        at += 16 + incl;
    }
    out
}

/// A minimal ERF loop: Ethernet records (type 2, 2 bytes of padding) are returned; others
/// (META, ...) are returned with no link type so that numbering matches tshark.
fn read_erf(bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= bytes.len() {
        let ty = bytes[at + 8];
        let rlen = usize::from(u16::from_be_bytes([bytes[at + 10], bytes[at + 11]]));
        let wlen = u32::from(u16::from_be_bytes([bytes[at + 14], bytes[at + 15]]));
        if rlen < 16 || at + rlen > bytes.len() {
            break;
        }
        let mut body = at + 16;
        let mut t = ty;
        while t & 0x80 != 0 && body + 8 <= at + rlen {
            t = bytes[body];
            body += 8;
        }
        let rec = &bytes[body.min(at + rlen)..at + rlen];
        if ty & 0x7f == 2 && rec.len() >= 2 {
            let data = rec[2..].to_vec();
            let wlen = wlen.saturating_sub(4).max(data.len() as u32);
            out.push(Frame {
                link: Some(LinkType::Ethernet),
                wlen,
                data,
            });
        } else {
            out.push(Frame {
                link: None,
                wlen,
                data: Vec::new(),
            });
        }
        at += rlen;
    }
    out
}

const ADDRESS_FIELDS: &[&str] = &[
    "ip.src",
    "ip.dst",
    "ip.opt.originator",
    "ip.opt.addr",
    "ip.rec_rt",
    "ip.src_rt",
    "ip.opt.time_stamp_addr",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.opt.mipv6.home_address",
    "ipv6.routing.src.addr",
    "ipv6.routing.mipv6.home_address",
    "ipv6.routing.srh.addr",
    "ipv6.ts_ipv4",
    "ipv6.tc_ipv4",
    "arp.src.proto_ipv4",
    "arp.dst.proto_ipv4",
    "icmp.router_address",
    "icmp.redir_gw",
    "icmpv6.nd.ns.target_address",
    "icmpv6.nd.na.target_address",
    "icmpv6.nd.rd.target_address",
    "icmpv6.rd.na.destination_address",
    "icmpv6.opt.prefix",
    "icmpv6.opt.rdnss",
    "icmpv6.mld.multicast_address",
    "icmpv6.mld.source_address",
    "icmpv6.mldr.mar.multicast_address",
    "icmpv6.mldr.mar.source_address",
    "igmp.saddr",
    "igmp.maddr",
    "tcp.options.mptcp.ipv4",
    "tcp.options.mptcp.ipv6",
    "teredo.orig.addr",
];

const PAYLOAD_FIELDS: &[&str] = &["tcp.payload", "data.data"];

/// Fields that mark a fragment, whose `data.data` is the (kept) start of a transport header.
const FRAGMENT_FIELDS: &[&str] = &["ipv6.fraghdr", "ip.flags.mf"];

struct Dissection {
    addrs: HashMap<usize, Vec<Vec<u8>>>,
    payloads: HashMap<usize, Vec<Vec<u8>>>,
    fragments: HashSet<usize>,
    frames: usize,
}

fn hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// tshark's view of a trace: per frame number, the addresses and payloads it found.
fn tshark(path: &Path) -> Dissection {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-e", "frame.number"]);
    for f in ADDRESS_FIELDS
        .iter()
        .chain(PAYLOAD_FIELDS)
        .chain(FRAGMENT_FIELDS)
    {
        cmd.args(["-e", f]);
    }
    cmd.args([
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
    ]);
    let out = cmd
        .output()
        .expect("tshark is installed (.ci/install-deps)");
    assert!(out.status.success(), "tshark failed on {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut d = Dissection {
        addrs: HashMap::new(),
        payloads: HashMap::new(),
        fragments: HashSet::new(),
        frames: 0,
    };
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let Ok(n) = cols[0].parse::<usize>() else {
            continue;
        };
        d.frames = d.frames.max(n);
        let fa = 1 + ADDRESS_FIELDS.len() + PAYLOAD_FIELDS.len();
        let frag = cols.get(fa).is_some_and(|v| !v.is_empty())
            || cols.get(fa + 1).is_some_and(|v| {
                v.split('|')
                    .any(|f| f == "1" || f.eq_ignore_ascii_case("true"))
            });
        if frag {
            d.fragments.insert(n);
        }
        for (i, col) in cols.iter().enumerate().skip(1).take(fa - 1) {
            for v in col.split('|').filter(|v| !v.is_empty()) {
                if i <= ADDRESS_FIELDS.len() {
                    if let Ok(ip) = v.parse::<IpAddr>() {
                        let b = match ip {
                            IpAddr::V4(a) => a.octets().to_vec(),
                            IpAddr::V6(a) => a.octets().to_vec(),
                        };
                        d.addrs.entry(n).or_default().push(b);
                    }
                } else if i == ADDRESS_FIELDS.len() + 2 && frag {
                    // data.data of a fragment: it may start with a (kept) transport header.
                } else if let Some(b) = hex(v) {
                    d.payloads.entry(n).or_default().push(b);
                }
            }
        }
    }
    d
}

fn trivial(a: &[u8]) -> bool {
    a.iter().all(|b| *b == 0) || a.iter().all(|b| *b == 0xff)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

fn check_trace(path: &Path, rewriter: &Rewriter) -> (usize, usize) {
    let frames = read_trace(path);
    let d = tshark(path);
    eprintln!(
        "{}: {} records read, tshark saw {}",
        path.display(),
        frames.len(),
        d.frames
    );
    let mut written = 0;
    let mut cut = 0;
    let mut low_entropy_hits = 0usize;
    for (i, f) in frames.iter().enumerate() {
        let n = i + 1;
        let Some(link) = f.link else { continue };
        let mut buf = f.data.clone();
        let mut m = Marker::default();
        let out = rewriter.rewrite(&mut m, link, &mut buf, f.wlen);
        assert!(
            out.start <= out.end && out.end <= buf.len(),
            "{} #{n}",
            path.display()
        );
        if out.cut.is_some() {
            cut += 1;
        }
        if out.kind.is_none() {
            continue;
        }
        written += 1;
        let kept = &buf[out.start..out.end];
        let mut originals: HashSet<Vec<u8>> = HashSet::new();
        originals.extend(m.asked4.iter().map(|a| a.to_vec()));
        originals.extend(m.asked6.iter().map(|a| a.to_vec()));
        if d.frames == frames.len() {
            originals.extend(d.addrs.get(&n).cloned().unwrap_or_default());
        } else {
            // tshark numbers other pcapng blocks too: check against every address it saw.
            originals.extend(d.addrs.values().flatten().cloned());
        }
        let input = &f.data[out.start..out.end];
        for a in originals.iter().filter(|a| !trivial(a)) {
            // A leak is an original address left in place: the same bytes at the same position
            // before and after (a match made of rewritten bytes, e.g. an adjusted checksum next
            // to zeros, is a coincidence, not a leak).
            let leaked = kept
                .windows(a.len())
                .zip(input.windows(a.len()))
                .any(|(o, i)| o == &a[..] && i == &a[..]);
            if leaked && a.len() == 4 && a.iter().filter(|b| **b == 0).count() >= 2 {
                // A low-entropy address (127.0.0.1) also matches, by chance, a checksum byte
                // followed by a zero urgent pointer and a NOP: about one frame in 256. A real
                // leak shows in every frame of a flow; the rate is checked below.
                low_entropy_hits += 1;
                continue;
            }
            assert!(
                !leaked,
                "{} frame {n}: original address {a:02x?} in output {kept:02x?} ({out:?})",
                path.display()
            );
        }
        let payloads = if d.frames == frames.len() {
            d.payloads.get(&n)
        } else {
            None
        };
        for p in payloads.into_iter().flatten() {
            if p.len() >= 8 {
                let probe = &p[..p.len().min(16)];
                assert!(
                    !contains(kept, probe),
                    "{} frame {n}: payload bytes {probe:02x?} in output ({out:?})",
                    path.display()
                );
            }
        }
    }
    assert!(
        low_entropy_hits * 50 <= written.max(50),
        "{}: {low_entropy_hits} of {written} frames hold a low-entropy original address",
        path.display()
    );
    (written, cut)
}

#[test]
fn every_trace_is_rewritten_without_a_leak() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(traces_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".erf")
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 33, "every trace of testdata/traces/README.md");
    for opts in [
        RewriteOptions::default(),
        RewriteOptions {
            anonymise_mac: true,
            ..RewriteOptions::default()
        },
    ] {
        let rewriter = Rewriter::new(opts);
        let mut total = 0;
        for p in &names {
            let (written, _) = check_trace(p, &rewriter);
            total += written;
        }
        // The provenance ERF holds no packets; every other trace does.
        assert!(total > 90_000, "{total} frames written");
    }
}
