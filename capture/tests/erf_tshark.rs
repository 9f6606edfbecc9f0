//! The records of docs/erf-format §13, encoded by `capture::erf`, decoded by tshark: the
//! lengths, time and loss counter it reports are the ones the reference gives.

use std::process::Command;

use capture::erf::encode_packet;
use capture::packet::{FrameKind, Timestamp};

const FRAME: [u8; 60] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00, 0x45, 0x00,
    0x05, 0xdc, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x36, 0xb1, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33,
    0x64, 0x02, 0x30, 0x39, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x50, 0x10,
    0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

fn tshark(path: &std::path::Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(path).args(["-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark must be installed (.ci/install-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn reference_records_decode_as_documented() {
    let ts = Timestamp::from_secs_nanos(1_700_000_000, 500_000_000);
    let mut file = Vec::new();
    let mut buf = [0u8; 128];
    // Variant A: 60 of 1514 bytes, interface 0, no loss.
    let n = encode_packet(&mut buf, ts, 0, FrameKind::Ethernet, 0, 1514, &FRAME).unwrap();
    file.extend_from_slice(&buf[..n]);
    // Variant D: lctr 5.
    let n = encode_packet(&mut buf, ts, 0, FrameKind::Ethernet, 5, 1514, &FRAME).unwrap();
    file.extend_from_slice(&buf[..n]);
    // The IPv4 record: 48 of 1500 bytes.
    let mut ip = FRAME[14..].to_vec();
    ip.extend_from_slice(&[0, 0]);
    let n = encode_packet(&mut buf, ts, 0, FrameKind::Ipv4, 0, 1500, &ip).unwrap();
    file.extend_from_slice(&buf[..n]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ref.erf");
    std::fs::write(&path, &file).unwrap();

    let rows = tshark(
        &path,
        &[
            "frame.len",
            "frame.cap_len",
            "frame.time_epoch",
            "erf.lctr",
            "erf.rlen",
            "frame.protocols",
            "erf.flags.trunc",
        ],
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][..2], ["1514", "60"]);
    assert_eq!(rows[0][2], "1700000000.500000000");
    assert_eq!(rows[0][3], "0");
    assert_eq!(rows[0][4], "78");
    assert_eq!(rows[0][6], "0");
    assert_eq!(rows[1][3], "5");
    assert_eq!(rows[2][..2], ["1500", "48"]);
    assert_eq!(rows[2][4], "64");
    assert_eq!(rows[2][5], "erf:ip:tcp");
    // Variant D raises the loss warning; nothing raises an error.
    let out = Command::new("tshark")
        .args(["-n", "-V", "-r"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("Packet loss occurred").count(), 2, "{text}");
    assert!(!text.contains("Expert Info (Error"), "{text}");
}
