//! `anoncap stats` against tshark on every test trace: packet counts, wire bytes, losses,
//! and the protocol breakdown on traces without tunnels.

use std::path::{Path, PathBuf};
use std::process::Command;

fn traces_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces")
}

fn stats_json(files: &[PathBuf]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_anoncap"))
        .arg("stats")
        .arg("--json")
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// tshark's packet count and wire bytes; ERF META/PAD and pcapng non-packet records excluded.
fn tshark_count(path: &Path, filter: Option<&str>) -> (u64, u64) {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(path);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    let out = cmd
        .args([
            "-T",
            "fields",
            "-e",
            "frame.encap_type",
            "-e",
            "frame.len",
            "-e",
            "erf.types.type",
        ])
        .output()
        .expect("tshark must be installed (.ci/install-deps)");
    assert!(out.status.success());
    let mut n = 0;
    let mut bytes = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f[0].is_empty() {
            continue;
        }
        if let Some(t) = f.get(2).filter(|t| !t.is_empty()) {
            if matches!(t.split(',').next().unwrap(), "27" | "48") {
                continue;
            }
        }
        n += 1;
        bytes += f[1].parse::<u64>().unwrap();
    }
    (n, bytes)
}

#[test]
fn counts_and_wire_bytes_match_tshark_on_every_trace() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(traces_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "erf")
            )
        })
        .collect();
    files.sort();
    let v = stats_json(&files);
    let entries = v["files"].as_array().unwrap();
    assert_eq!(entries.len(), files.len());
    let (mut tp, mut tb) = (0, 0);
    for (f, e) in files.iter().zip(entries) {
        let (n, b) = tshark_count(f, None);
        assert_eq!(e["packets"].as_u64().unwrap(), n, "{}", f.display());
        assert_eq!(e["bytes_on_wire"].as_u64().unwrap(), b, "{}", f.display());
        tp += n;
        tb += b;
    }
    assert_eq!(v["total"]["packets"].as_u64().unwrap(), tp);
    assert_eq!(v["total"]["bytes_on_wire"].as_u64().unwrap(), tb);
}

#[test]
fn protocol_breakdown_matches_tshark() {
    for name in [
        "dpkt-dns_icmp.pcap",
        "zeek-communityid-arp.pcap",
        "zeek-communityid-ipv6.pcap",
        "zeek-icmp6-nd-options.pcap",
        "libtrace-vlan.pcap",
    ] {
        let f = traces_dir().join(name);
        let v = stats_json(std::slice::from_ref(&f));
        let e = &v["files"][0];
        for (key, section, filter) in [
            ("ipv4", "network", "ip && !ipv6"),
            ("ipv6", "network", "ipv6 && !ip"),
            ("arp", "network", "arp"),
            // By the IP protocol field, as anoncap counts (so non-first fragments count too);
            // ICMP errors quote an inner header, hence the exclusions.
            (
                "tcp",
                "transport",
                "(ip.proto == 6 && !icmp && !ipv6) || (ipv6 && !ip && tcp && !icmpv6)",
            ),
            (
                "udp",
                "transport",
                "(ip.proto == 17 && !icmp && !ipv6) || (ipv6 && !ip && udp && !icmpv6)",
            ),
            ("icmp", "transport", "ip.proto == 1 && !ipv6"),
            ("icmpv6", "transport", "icmpv6 && !ip"),
        ] {
            let (n, _) = tshark_count(&f, Some(filter));
            assert_eq!(e[section][key].as_u64().unwrap(), n, "{name}: {key}");
        }
    }
}

#[test]
fn recorded_losses_are_the_lctr_sum() {
    let orig = std::fs::read(traces_dir().join("libtrace-100_packets.erf")).unwrap();
    let mut b = orig.clone();
    // Records 2 and 4 get lctr 5 and 7 (big-endian at bytes 12-13 of each record).
    let mut at = 0;
    let mut rec = 0;
    while at + 16 <= b.len() {
        rec += 1;
        let rlen = u16::from_be_bytes([b[at + 10], b[at + 11]]) as usize;
        if rec == 2 {
            b[at + 12..at + 14].copy_from_slice(&5u16.to_be_bytes());
        }
        if rec == 4 {
            b[at + 12..at + 14].copy_from_slice(&7u16.to_be_bytes());
        }
        at += rlen;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("loss.erf");
    std::fs::write(&p, &b).unwrap();
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&p)
        .args(["-T", "fields", "-e", "erf.lctr"])
        .output()
        .unwrap();
    let tshark_sum: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum();
    assert_eq!(tshark_sum, 12);
    let v = stats_json(&[p]);
    assert_eq!(v["files"][0]["losses_recorded"].as_u64().unwrap(), 12);
}

#[test]
fn text_output_and_errors() {
    let f = traces_dir().join("libtrace-provenance.erf");
    let out = Command::new(env!("CARGO_BIN_EXE_anoncap"))
        .arg("stats")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Number of packets:    0"), "{text}");
    assert!(text.contains("100 ERF META"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("cut.pcap");
    let b = std::fs::read(traces_dir().join("dpkt-dns_icmp.pcap")).unwrap();
    std::fs::write(&bad, &b[..b.len() - 4]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_anoncap"))
        .arg("stats")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Number of packets:    31"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.pcap: record 32"), "{err}");
}
