//! `anoncap convert` round trips and outputs, checked by reading them back and with tshark.

use capture::input::Trace;
use std::path::{Path, PathBuf};
use std::process::Command;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces")
        .join(name)
}

fn convert(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_anoncap"))
        .arg("convert")
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&std::ffi::OsStr]) {
    let out = convert(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (timestamp, wire length, captured bytes) of every packet, read with capture::input.
fn packets(p: &Path) -> Vec<(String, u32, Vec<u8>)> {
    Trace::open(p)
        .unwrap()
        .packets()
        .map(|r| {
            let p = r.unwrap();
            (p.ts.to_string(), p.wlen, p.data.to_vec())
        })
        .collect()
}

/// tshark's (epoch time, frame.len, frame.cap_len) rows.
fn tshark(p: &Path) -> Vec<(String, u64, u64)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(p)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
        ])
        .output()
        .expect("tshark must be installed (.ci/install-deps)");
    assert!(out.status.success(), "tshark on {}", p.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn pcap_to_erf_to_pcap_keeps_times_lengths_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "tcpreplay-test.pcap",
        "zeek-communityid-ipv6.pcap",
        "suricata-detect-ipopts.pcap",
    ] {
        let src = testdata(name);
        let erf = dir.path().join("a.erf");
        let back = dir.path().join("b.pcap");
        ok(&[src.as_os_str(), erf.as_os_str()]);
        ok(&[erf.as_os_str(), back.as_os_str()]);
        assert_eq!(packets(&src), packets(&erf), "{name}: pcap -> erf");
        assert_eq!(packets(&src), packets(&back), "{name}: erf -> pcap");
        // tshark agrees on every time and length of the ERF and the final pcap.
        assert_eq!(tshark(&src), tshark(&erf), "{name}: tshark on the ERF");
        assert_eq!(tshark(&src), tshark(&back), "{name}: tshark on the pcap");
    }
}

#[test]
fn erf_to_pcap_and_pcapng_for_replay() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("libtrace-100_packets.erf");
    let want = tshark(&src);
    for ext in ["pcap", "pcapng"] {
        let out = dir.path().join(format!("o.{ext}"));
        ok(&[src.as_os_str(), out.as_os_str()]);
        assert_eq!(tshark(&out), want, "{ext}");
        assert_eq!(packets(&out), packets(&src), "{ext}");
    }
    // The pcap is nanosecond (magic a1b23c4d, little-endian) and says the FCS is included.
    let b = std::fs::read(dir.path().join("o.pcap")).unwrap();
    assert_eq!(&b[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    let lt = u32::from_le_bytes(b[20..24].try_into().unwrap());
    assert_eq!(lt & 0xffff, 1);
    assert_eq!(lt & 0x0400_0000, 0x0400_0000);
    assert_eq!(lt >> 28, 2, "4 bytes of FCS = 2 16-bit words");
    // libpcap (which tcpreplay reads with) reads the pcap: tcpdump prints all 100 packets.
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(dir.path().join("o.pcap"))
        .output()
        .expect("tcpdump must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 100);
}

#[test]
fn pad_restores_wire_length() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("libtrace-ip-in-mpls.pcap");
    for ext in ["pcap", "erf", "pcapng"] {
        let out = dir.path().join(format!("p.{ext}"));
        ok(&[src.as_os_str(), out.as_os_str(), "--pad".as_ref()]);
        let rows = tshark(&out);
        assert_eq!(rows.len(), 10_507);
        assert!(rows.iter().all(|r| r.1 == r.2), "{ext}: caplen == wlen");
        // The captured prefix is unchanged; the rest is zeros.
        for ((_, w, d), (_, w2, d2)) in packets(&src).iter().zip(packets(&out)).take(200) {
            assert_eq!(*w, w2);
            assert_eq!(&d2[..d.len()], &d[..]);
            assert!(d2[d.len()..].iter().all(|&b| b == 0));
        }
    }
}

#[test]
fn format_flag_errors_and_mixed_link_types() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("libtrace-complex.pcapng");
    // No extension: --format decides.
    let out = dir.path().join("noext");
    ok(&[
        src.as_os_str(),
        out.as_os_str(),
        "--format".as_ref(),
        "pcapng".as_ref(),
    ]);
    assert_eq!(tshark(&out).len(), 5);
    let unknown = dir.path().join("x.bin");
    let r = convert(&[src.as_os_str(), unknown.as_os_str()]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("--format"));
    // pcap holds one link type: Ethernet + loopback is refused, and no file is left.
    let pcap = dir.path().join("x.pcap");
    let r = convert(&[src.as_os_str(), pcap.as_os_str()]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("pcapng"));
    assert!(!pcap.exists());
    // ERF has no loopback record type: that packet is left out, and said so.
    let erf = dir.path().join("x.erf");
    let r = convert(&[src.as_os_str(), erf.as_os_str()]);
    assert!(r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("left out 1 packet"));
    assert_eq!(packets(&erf).len(), 4);
    // A truncated input: the error names the file and record; the output keeps the rest.
    let b = std::fs::read(testdata("dpkt-dns_icmp.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &b[..b.len() - 4]).unwrap();
    let o = dir.path().join("cut.erf");
    let r = convert(&[cut.as_os_str(), o.as_os_str()]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("cut.pcap: record 32"), "{err}");
    assert_eq!(packets(&o).len(), 31);
}
