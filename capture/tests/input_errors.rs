//! Bad input and less common encodings: each case built from a real trace by a documented
//! transformation, with the expected result worked out from the file format, not from the code.

use capture::input::{Format, InputError, RecordError, Trace};
use capture::packet::LinkType;
use std::path::{Path, PathBuf};
use std::process::Command;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces")
        .join(name)
}

fn write_tmp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// (timestamp string, wire length, captured bytes) of every packet, or the error.
type Pkts = Vec<(String, u32, Vec<u8>)>;
fn read_all(path: &Path) -> (Pkts, Option<InputError>) {
    let t = Trace::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut v = Vec::new();
    for p in t.packets() {
        match p {
            Ok(p) => v.push((p.ts.to_string(), p.wlen, p.data.to_vec())),
            Err(e) => return (v, Some(e)),
        }
    }
    (v, None)
}

/// Byte offsets of each pcap record header, walked from the format (24-byte file header,
/// 16-byte record headers, little-endian incl_len at +8).
fn pcap_offsets(b: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        v.push(at);
        let incl = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + incl;
    }
    v
}

#[test]
fn empty_and_non_trace_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write_tmp(&dir, "empty.pcap", b"");
    assert!(matches!(Trace::open(&empty), Err(InputError::Empty { .. })));
    let text = write_tmp(&dir, "notes.pcap", b"This is not a packet trace at all.\n");
    let err = Trace::open(&text).unwrap_err();
    assert!(matches!(err, InputError::NotATrace { .. }), "{err}");
    assert!(err.to_string().contains("notes.pcap"), "{err}");
    let missing = dir.path().join("missing.pcap");
    assert!(matches!(
        Trace::open(&missing),
        Err(InputError::Open { .. })
    ));
}

#[test]
fn corrupt_headers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A pcap magic followed by 6 bytes: shorter than the 24-byte header.
    let short = write_tmp(
        &dir,
        "short.pcap",
        &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0],
    );
    let err = Trace::open(&short).unwrap_err();
    assert!(
        matches!(
            err,
            InputError::BadHeader {
                format: Format::Pcap,
                ..
            }
        ),
        "{err}"
    );
    // A pcapng section header whose total length (13) is not a multiple of 4.
    let mut ng = std::fs::read(testdata("libtrace-complex.pcapng")).unwrap();
    ng[4..8].copy_from_slice(&13u32.to_be_bytes());
    let bad = write_tmp(&dir, "bad.pcapng", &ng);
    let err = Trace::open(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            InputError::BadHeader {
                format: Format::PcapNg,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn truncated_last_record_delivers_everything_before() {
    let dir = tempfile::tempdir().unwrap();
    let orig = std::fs::read(testdata("dpkt-dns_icmp.pcap")).unwrap();
    let offs = pcap_offsets(&orig);
    assert_eq!(offs.len(), 32);
    let cut = write_tmp(&dir, "cut.pcap", &orig[..orig.len() - 10]);
    let (full, none) = read_all(&testdata("dpkt-dns_icmp.pcap"));
    assert!(none.is_none());
    let (got, err) = read_all(&cut);
    assert_eq!(got, full[..31].to_vec());
    match err {
        Some(InputError::Record {
            record,
            offset,
            kind: RecordError::Truncated { .. },
            ref path,
        }) => {
            assert_eq!(record, 32);
            assert_eq!(offset, offs[31] as u64);
            assert!(path.ends_with("cut.pcap"));
        }
        other => panic!("expected a truncation error, got {other:?}"),
    }
    // Cut inside a record header.
    let cut2 = write_tmp(&dir, "cut2.pcap", &orig[..offs[5] + 7]);
    let (got, err) = read_all(&cut2);
    assert_eq!(got.len(), 5);
    assert!(matches!(err, Some(InputError::Record { record: 6, .. })));
}

#[test]
fn record_longer_than_file_or_snaplen() {
    let dir = tempfile::tempdir().unwrap();
    // zeek-communityid-arp.pcap: snaplen 96 (capinfos), little-endian.
    let orig = std::fs::read(testdata("zeek-communityid-arp.pcap")).unwrap();
    assert_eq!(u32::from_le_bytes(orig[16..20].try_into().unwrap()), 96);
    let offs = pcap_offsets(&orig);
    let mut b = orig.clone();
    b[offs[2] + 8..offs[2] + 12].copy_from_slice(&97u32.to_le_bytes());
    let (got, err) = read_all(&write_tmp(&dir, "snap.pcap", &b));
    assert_eq!(got.len(), 2);
    assert!(
        matches!(
            err,
            Some(InputError::Record {
                record: 3,
                kind: RecordError::ExceedsSnaplen {
                    caplen: 97,
                    snaplen: 96
                },
                ..
            })
        ),
        "{err:?}"
    );
    // dpkt-dns_icmp.pcap: snaplen 262144; record 3 claims 200000 bytes, more than the file.
    let orig = std::fs::read(testdata("dpkt-dns_icmp.pcap")).unwrap();
    let offs = pcap_offsets(&orig);
    let mut b = orig.clone();
    b[offs[2] + 8..offs[2] + 12].copy_from_slice(&200_000u32.to_le_bytes());
    let (got, err) = read_all(&write_tmp(&dir, "long.pcap", &b));
    assert_eq!(got.len(), 2);
    assert!(
        matches!(
            err,
            Some(InputError::Record {
                record: 3,
                kind: RecordError::Truncated { .. },
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_erf_and_corrupt_erf_records() {
    let dir = tempfile::tempdir().unwrap();
    let orig = std::fs::read(testdata("libtrace-100_packets.erf")).unwrap();
    let (full, _) = read_all(&testdata("libtrace-100_packets.erf"));
    let (got, err) = read_all(&write_tmp(&dir, "cut.erf", &orig[..orig.len() - 3]));
    assert_eq!(got, full[..99].to_vec());
    assert!(
        matches!(
            err,
            Some(InputError::Record {
                record: 100,
                kind: RecordError::Truncated { .. },
                ..
            })
        ),
        "{err:?}"
    );
    // Record 2 (at offset = rlen of record 1, big-endian at bytes 10-11) gets rlen 8.
    let rlen1 = u16::from_be_bytes([orig[10], orig[11]]) as usize;
    let mut b = orig.clone();
    b[rlen1 + 10..rlen1 + 12].copy_from_slice(&8u16.to_be_bytes());
    let (got, err) = read_all(&write_tmp(&dir, "bad.erf", &b));
    assert_eq!(got.len(), 1);
    match err {
        Some(InputError::Record {
            record: 2,
            offset,
            kind: RecordError::Corrupt(_),
            ..
        }) => {
            assert_eq!(offset, rlen1 as u64)
        }
        other => panic!("{other:?}"),
    }
}

/// Byte-swaps a little-endian microsecond pcap into big-endian, optionally nanosecond.
fn to_big_endian(le: &[u8], nanos: bool) -> Vec<u8> {
    let mut b = le.to_vec();
    let swap32 = |b: &mut [u8], at: usize| b[at..at + 4].reverse();
    b[0..4].copy_from_slice(if nanos {
        &[0xa1, 0xb2, 0x3c, 0x4d]
    } else {
        &[0xa1, 0xb2, 0xc3, 0xd4]
    });
    b[4..6].reverse();
    b[6..8].reverse();
    for at in [8, 12, 16, 20] {
        swap32(&mut b, at);
    }
    for at in pcap_offsets(le) {
        if nanos {
            let us = u32::from_le_bytes(le[at + 4..at + 8].try_into().unwrap());
            b[at + 4..at + 8].copy_from_slice(&(us * 1000).to_le_bytes());
        }
        for f in 0..4 {
            swap32(&mut b, at + 4 * f);
        }
    }
    b
}

#[test]
fn big_endian_and_nanosecond_pcap_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let name = "tcpreplay-test.pcap";
    let orig = std::fs::read(testdata(name)).unwrap();
    let (want, _) = read_all(&testdata(name));
    for nanos in [false, true] {
        let p = write_tmp(
            &dir,
            &format!("be-{nanos}.pcap"),
            &to_big_endian(&orig, nanos),
        );
        // tshark agrees that the transformed file is valid and the same length.
        let out = Command::new("capinfos")
            .args(["-c", "-M"])
            .arg(&p)
            .output()
            .expect("capinfos");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("179"),
            "capinfos on {}",
            p.display()
        );
        let (got, err) = read_all(&p);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, want);
    }
}

/// Builds a little-endian pcapng block.
fn block(ty: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&body);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn opt(code: u16, val: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&code.to_le_bytes());
    v.extend_from_slice(&(val.len() as u16).to_le_bytes());
    v.extend_from_slice(val);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn idb(linktype: u16, snaplen: u32, opts: &[Vec<u8>], end: bool) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&linktype.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&snaplen.to_le_bytes());
    for o in opts {
        b.extend_from_slice(o);
    }
    if end {
        b.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(1, &b)
}

fn epb(iface: u32, ts: u64, orig: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&iface.to_le_bytes());
    b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(ts as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&orig.to_le_bytes());
    b.extend_from_slice(data);
    block(6, &b)
}

fn shb() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x1A2B3C4Du32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(-1i64).to_le_bytes());
    block(0x0A0D0D0A, &b)
}

/// A minimal Ethernet/IPv4/UDP frame of `len` bytes.
fn frame(len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, tag]);
    f[12] = 0x08;
    f[14] = 0x45;
    f
}

#[test]
fn pcapng_tsresol_tsoffset_tzone_spb_and_sections_match_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = shb();
    // Interface 0: nanosecond resolution, if_tsoffset 1000 s, an if_tzone option (which
    // pcap-file 2.0.0 cannot parse), no end-of-options.
    f.extend(idb(
        1,
        0,
        &[
            opt(2, b"ns0"),
            opt(9, &[9]),
            opt(14, &1000u64.to_le_bytes()),
            opt(10, &0u32.to_le_bytes()),
        ],
        false,
    ));
    // Interface 1: 2^-10 s resolution, snaplen 64.
    f.extend(idb(1, 64, &[opt(9, &[0x80 | 10])], true));
    f.extend(epb(0, 1_700_000_000_123_456_789, 100, &frame(100, 1)));
    f.extend(epb(1, (1_700_001_000u64 << 10) | 512, 1514, &frame(64, 2)));
    // A simple packet block on interface 0 (snaplen 0: captured = original length 70).
    let mut spb = 70u32.to_le_bytes().to_vec();
    spb.extend(frame(70, 3));
    f.extend(block(3, &spb));
    // A custom block (0x00000BAD) and a second section with its own interface 0 (µs).
    f.extend(block(0x0BAD, &[0, 0, 0x7e, 0xd9, 1, 2, 3, 4]));
    f.extend(shb());
    f.extend(idb(101, 0, &[], false));
    let mut ip = frame(40, 4)[14..].to_vec();
    ip[0] = 0x45;
    f.extend(epb(0, 1_700_002_000_000_001, 40, &ip[..26]));
    let p = write_tmp(&dir, "made.pcapng", &f);

    let t = Trace::open(&p).unwrap();
    let ifs = t.interfaces();
    assert_eq!(ifs.len(), 3);
    assert_eq!(ifs[0].name.as_deref(), Some("ns0"));
    assert_eq!(ifs[1].snaplen, 64);
    assert_eq!(ifs[2].link, Some(LinkType::RawIp));
    let pk: Vec<_> = t.packets().map(|r| r.unwrap()).collect();
    let got: Vec<(String, u32, usize, u8)> = pk
        .iter()
        .map(|p| (p.ts.to_string(), p.wlen, p.data.len(), p.iface))
        .collect();
    assert_eq!(
        got,
        vec![
            ("1700001000.123456789".to_string(), 100, 100, 0),
            ("1700001000.500000000".to_string(), 1514, 64, 1),
            // No timestamp in a simple packet block: the previous packet's.
            ("1700001000.500000000".to_string(), 70, 70, 0),
            ("1700002000.000001000".to_string(), 40, 26, 2),
        ]
    );
    // tshark reads the same times and lengths.
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&p)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.encap_type",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
        ])
        .output()
        .expect("tshark must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|r| !r[0].is_empty())
        .collect();
    assert_eq!(rows.len(), 4, "{text}");
    for (r, g) in rows.iter().zip(&got) {
        if !r[1].is_empty() {
            assert_eq!(r[1], g.0);
        }
        assert_eq!(r[2].parse::<u32>().unwrap(), g.1);
        assert_eq!(r[3].parse::<usize>().unwrap(), g.2);
    }
}

#[test]
fn pcapng_errors_name_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = shb();
    f.extend(idb(1, 64, &[], true));
    f.extend(epb(0, 1, 60, &frame(60, 1)));
    let at = f.len();
    f.extend(epb(3, 2, 60, &frame(60, 1)));
    let (got, err) = read_all(&write_tmp(&dir, "iface.pcapng", &f));
    assert_eq!(got.len(), 1);
    assert!(
        matches!(err, Some(InputError::Record { record: 2, offset, kind: RecordError::UnknownInterface(3), .. }) if offset == at as u64),
        "{err:?}"
    );
    let mut f = shb();
    f.extend(idb(1, 64, &[], true));
    f.extend(epb(0, 1, 100, &frame(100, 1)));
    let (_, err) = read_all(&write_tmp(&dir, "snap.pcapng", &f));
    assert!(
        matches!(
            err,
            Some(InputError::Record {
                record: 1,
                kind: RecordError::ExceedsSnaplen {
                    caplen: 100,
                    snaplen: 64
                },
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn other_link_types_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // Link type 105 (802.11) in the header of a copy of zeek-icmp_dot1q.pcap (15 packets).
    let mut b = std::fs::read(testdata("zeek-icmp_dot1q.pcap")).unwrap();
    b[20..24].copy_from_slice(&105u32.to_le_bytes());
    let t = Trace::open(&write_tmp(&dir, "wifi.pcap", &b)).unwrap();
    let mut pk = t.packets();
    assert_eq!(pk.by_ref().count(), 0);
    assert_eq!(pk.skipped().other_link, vec![(105, 15)]);
    assert!(pk.skipped().messages()[0].contains("105"));
}

#[test]
fn erf_meta_interface_sections_set_fcs_and_name() {
    use capture::erf::meta::{section, tag, MetaBuilder};
    use capture::erf::{encode_meta, encode_packet, HostId};
    use capture::packet::{FrameKind, Timestamp};
    let dir = tempfile::tempdir().unwrap();
    let ts = Timestamp::from_secs_nanos(1_700_000_000, 0);
    let mut pkt = vec![0u8; 256];
    let n = encode_packet(&mut pkt, ts, 1, FrameKind::Ethernet, 0, 60, &frame(60, 1)).unwrap();
    pkt.truncate(n);
    // Without META: DAG convention, 4 bytes of FCS on Ethernet.
    let plain = write_tmp(&dir, "plain.erf", &pkt);
    let ifs = Trace::open(&plain).unwrap().interfaces();
    assert_eq!(ifs.len(), 2);
    assert_eq!(ifs[1].fcs_len, Some(4));
    assert_eq!(ifs[1].link, Some(LinkType::Ethernet));
    // With a META record whose interface section 2 (interface 1) says fcs_len 0, name "xdp1".
    let mut m = MetaBuilder::new();
    m.time(tag::GEN_TIME, ts)
        .begin_section(section::INTERFACE, 2)
        .string(tag::NAME, "xdp1")
        .u32(tag::FCS_LEN, 0);
    let mut file = Vec::new();
    encode_meta(&mut file, ts, HostId::default(), &m.finish());
    file.extend_from_slice(&pkt);
    let with_meta = write_tmp(&dir, "meta.erf", &file);
    let t = Trace::open(&with_meta).unwrap();
    let ifs = t.interfaces();
    assert_eq!(ifs[1].fcs_len, Some(0));
    assert_eq!(ifs[1].name.as_deref(), Some("xdp1"));
    let mut pk = t.packets();
    assert_eq!(pk.by_ref().count(), 1);
    assert_eq!(pk.skipped().erf_meta, 1);
    // tshark agrees on the interface name.
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&with_meta)
        .args(["-T", "fields", "-e", "frame.interface_name"])
        .output()
        .expect("tshark");
    assert!(String::from_utf8_lossy(&out.stdout).contains("xdp1"));
}
