//! Every trace in testdata/traces read by `capture::input`, compared with tshark's reading of
//! the same file: packet count, sums of wire and captured lengths, first and last timestamps.
//! tshark is installed by `.ci/install-deps`; these tests fail if it is missing.

use capture::input::{Format, Trace};
use std::path::{Path, PathBuf};
use std::process::Command;

fn traces() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata/traces")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "erf")
            )
        })
        .collect();
    v.sort();
    assert!(v.len() >= 30, "expected the test traces, found {}", v.len());
    v
}

/// What tshark sees: (wire length, captured length, epoch time string if any) per packet.
/// Rows without an encapsulation (pcapng custom blocks that tshark shows as records) and ERF
/// META / PAD records are not packets.
fn tshark_packets(path: &Path) -> Vec<(u64, u64, Option<String>)> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(path)
        .args([
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-e",
            "frame.encap_type",
            "-e",
            "frame.len",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.time_epoch",
            "-e",
            "erf.types.type",
        ])
        .output()
        .expect("tshark must be installed (.ci/install-deps installs it)");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 4 || f[0].is_empty() {
            continue;
        }
        if let Some(ty) = f.get(4).filter(|t| !t.is_empty()) {
            // ERF types anoncap reads: the Ethernet family, IPv4, IPv6.
            let ty: u32 = ty.split(',').next().unwrap().parse().unwrap();
            if ![2, 11, 16, 20, 22, 23].contains(&ty) {
                continue;
            }
        }
        let time = (!f[3].is_empty()).then(|| f[3].to_string());
        v.push((f[1].parse().unwrap(), f[2].parse().unwrap(), time));
    }
    v
}

#[test]
fn every_trace_matches_tshark() {
    let mut checked = 0;
    for path in traces() {
        let trace = Trace::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let expect = tshark_packets(&path);
        let mut got = Vec::new();
        let mut pk = trace.packets();
        for p in pk.by_ref() {
            let p = p.unwrap_or_else(|e| panic!("{e}"));
            got.push((u64::from(p.wlen), p.data.len() as u64, p.ts.to_string()));
        }
        let name = path.display();
        assert_eq!(got.len(), expect.len(), "{name}: packet count");
        let sum = |v: &[(u64, u64)]| v.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let g: Vec<(u64, u64)> = got.iter().map(|x| (x.0, x.1)).collect();
        let e: Vec<(u64, u64)> = expect.iter().map(|x| (x.0, x.1)).collect();
        assert_eq!(sum(&g), sum(&e), "{name}: wire and captured bytes");
        assert_eq!(g, e, "{name}: per-packet lengths");
        // Every packet tshark gives a time has the same time here, to the nanosecond.
        for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
            if let Some(t) = &e.2 {
                assert_eq!(&g.2, t, "{name}: time of packet {}", i + 1);
            }
        }
        if path.extension().unwrap() == "erf" {
            assert_eq!(trace.format(), Format::Erf);
        }
        checked += 1;
    }
    assert!(checked >= 30);
}

#[test]
fn provenance_erf_has_only_meta_records() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces/libtrace-provenance.erf");
    let trace = Trace::open(&path).unwrap();
    let mut pk = trace.packets();
    assert!(pk.by_ref().next().is_none());
    assert_eq!(pk.skipped().erf_meta, 100);
    assert_eq!(pk.records(), 100);
}

#[test]
fn complex_pcapng_interfaces_and_links() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/traces/libtrace-complex.pcapng");
    let trace = Trace::open(&path).unwrap();
    assert_eq!(trace.format(), Format::PcapNg);
    let ifs = trace.interfaces();
    // capinfos: eth0 (Ethernet, snaplen 96), null1 (NULL), "silly!\nethernet interface 2".
    assert_eq!(ifs.len(), 3);
    assert_eq!(ifs[0].name.as_deref(), Some("eth0"));
    assert_eq!(ifs[0].snaplen, 96);
    assert_eq!(ifs[1].linktype, 0);
    assert_eq!(ifs[1].name.as_deref(), Some("null1"));
    let links: Vec<_> = trace.packets().map(|p| p.unwrap().iface).collect();
    assert_eq!(links, vec![0, 2, 0, 0, 1]);
}
