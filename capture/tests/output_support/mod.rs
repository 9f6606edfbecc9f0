//! Helpers shared by the ERF writer tests: sample frames, a run description, tshark.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use capture::erf::{RecordIter, RecordType};
use capture::output::{InterfaceInfo, RunInfo};
use capture::packet::{FrameKind, Timestamp};

/// The 60-byte Ethernet/IPv4/TCP frame prefix of docs/erf-format §13.
pub const ETH_FRAME: [u8; 60] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00, 0x45, 0x00,
    0x05, 0xdc, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x36, 0xb1, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33,
    0x64, 0x02, 0x30, 0x39, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x50, 0x10,
    0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// An IPv6/UDP header pair (2001:db8::1 -> 2001:db8::2, ports 1000 -> 53, payload length 100).
pub fn ipv6_frame() -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0, 0, 108, 17, 64];
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v.extend_from_slice(&[0x03, 0xe8, 0x00, 0x35, 0x00, 108, 0x12, 0x34]);
    v
}

/// [`ETH_FRAME`] as a whole 60-byte frame: IPv4 total length 46 (checksum not updated).
pub fn full_frame() -> Vec<u8> {
    let mut f = ETH_FRAME.to_vec();
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f
}

/// One packet to write.
#[derive(Clone, Debug)]
pub struct Sample {
    pub ts: Timestamp,
    pub iface: u8,
    pub kind: FrameKind,
    pub wlen: u32,
    pub data: Vec<u8>,
}

/// `n` packets starting at `start_ns`, `step_ns` apart, mixing kinds, interfaces, snapped and
/// full records.
pub fn samples(n: usize, start_ns: u64, step_ns: u64) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let ts = Timestamp::from_unix_nanos(start_ns + i as u64 * step_ns);
            let iface = (i % 2) as u8;
            match i % 4 {
                0 => Sample {
                    ts,
                    iface,
                    kind: FrameKind::Ethernet,
                    wlen: 1514,
                    data: ETH_FRAME.to_vec(),
                },
                1 => Sample {
                    ts,
                    iface,
                    kind: FrameKind::Ethernet,
                    wlen: 60,
                    data: full_frame(),
                },
                2 => Sample {
                    ts,
                    iface,
                    kind: FrameKind::Ipv4,
                    wlen: 1500,
                    data: ETH_FRAME[14..].to_vec(),
                },
                _ => Sample {
                    ts,
                    iface,
                    kind: FrameKind::Ipv6,
                    wlen: 148,
                    data: ipv6_frame(),
                },
            }
        })
        .collect()
}

/// A run description with `n` interfaces.
pub fn run_info(n: usize) -> RunInfo {
    RunInfo {
        software_version: "0.1.0-test".into(),
        sources: vec!["test-source.pcap".into()],
        policy: "default".into(),
        key_fingerprint: "sha256:0011223344556677".into(),
        interfaces: (0..n)
            .map(|i| InterfaceInfo {
                name: format!("xdp{i}"),
                fcs_included: i == 1,
                snaplen: 256,
                speed_bps: Some(10_000_000_000),
            })
            .collect(),
        filter: Some("tcp or udp".into()),
        clock_source: "input trace".into(),
        hostname: "probe-test".into(),
        description: Some("writer test".into()),
        host_id: 0,
        trace: Default::default(),
    }
}

/// One packet record as tshark decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsharkRow {
    pub time_ns: u64,
    pub len: u32,
    pub cap_len: u32,
    pub lctr: u32,
}

fn epoch_to_ns(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let mut frac = frac.to_string();
    frac.truncate(9);
    while frac.len() < 9 {
        frac.push('0');
    }
    secs.parse::<u64>().unwrap() * 1_000_000_000 + frac.parse::<u64>().unwrap()
}

/// Runs tshark over `path` and returns its packet rows (META records left out). Panics if
/// tshark is missing, fails, or prints anything on stderr (CI installs tshark).
pub fn tshark_rows(path: &Path) -> Vec<TsharkRow> {
    let out = Command::new("tshark")
        .env("HOME", std::env::temp_dir())
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-Y",
            "erf.types.type != 27",
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
            "-e",
            "erf.lctr",
        ])
        .output()
        .expect("tshark must be installed (.ci/install-deps installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("Running as user \"root\""))
        .collect();
    assert!(
        out.status.success() && stderr.is_empty(),
        "tshark failed on {}: {stderr:?}",
        path.display()
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            TsharkRow {
                time_ns: epoch_to_ns(f[0]),
                len: f[1].parse().unwrap(),
                cap_len: f[2].parse().unwrap(),
                lctr: f.get(3).and_then(|s| s.parse().ok()).unwrap_or(0),
            }
        })
        .collect()
}

/// The same rows, read with capture::erf.
pub fn own_rows(path: &Path) -> Vec<TsharkRow> {
    let data = std::fs::read(path).unwrap();
    RecordIter::new(&data)
        .map(|r| r.expect("every record is whole and valid"))
        .filter(|r| r.record_type() != RecordType::Meta)
        .map(|r| TsharkRow {
            time_ns: r.ts_le().to_unix_nanos(),
            len: r.wlen_be() as u32,
            cap_len: r.caplen() as u32,
            lctr: r.lctr_be() as u32,
        })
        .collect()
}

/// Counts META records in a file.
pub fn meta_records(path: &Path) -> usize {
    let data = std::fs::read(path).unwrap();
    RecordIter::new(&data)
        .map(|r| r.unwrap())
        .filter(|r| r.record_type() == RecordType::Meta)
        .count()
}
