//! The ERF writer on a single-file target: tshark reads what it writes, lctr saturates and
//! carries, META records and sidecars are there, and nothing is ever overwritten.

mod output_support;

use capture::erf::meta::{tag, TlvIter};
use capture::erf::{RecordIter, RecordType};
use capture::output::{ErfWriter, OutputConfig, OutputError, OutputTarget};
use capture::packet::{FrameKind, Timestamp};
use capture::stats::{CutReason, LossCause};
use output_support::*;

const START_NS: u64 = 1_700_000_000_123_456_789;

#[test]
fn tshark_reads_every_packet_with_our_times_and_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.erf");
    let mut w = ErfWriter::create(OutputConfig::new(
        OutputTarget::File(path.clone()),
        run_info(2),
    ))
    .unwrap();
    // The temporary name exists while writing, the final one does not.
    assert!(dir.path().join(".out.erf.part").exists());
    assert!(!path.exists());
    let s = samples(400, START_NS, 1_234_567);
    for p in &s {
        w.write_packet(p.ts, p.iface, p.kind, p.wlen, &p.data)
            .unwrap();
    }
    let sum = w.finish().unwrap();
    assert_eq!(sum.files, vec![path.clone()]);
    assert!(!dir.path().join(".out.erf.part").exists());
    assert_eq!(sum.totals.written.packets, 400);

    let ts = tshark_rows(&path);
    let own = own_rows(&path);
    assert_eq!(ts.len(), 400, "tshark counts packet records only");
    assert_eq!(ts, own);
    for (row, p) in ts.iter().zip(&s) {
        assert_eq!(row.time_ns, p.ts.to_unix_nanos());
        assert_eq!(row.len, p.wlen);
        assert_eq!(row.cap_len as usize, p.data.len().min(p.wlen as usize));
        assert_eq!(row.lctr, 0);
    }
    // One META record at the start and one (stats) at the end.
    assert_eq!(meta_records(&path), 2);
    let data = std::fs::read(&path).unwrap();
    let recs: Vec<_> = RecordIter::new(&data).map(|r| r.unwrap()).collect();
    assert_eq!(recs[0].record_type(), RecordType::Meta);
    assert_eq!(recs[recs.len() - 1].record_type(), RecordType::Meta);
    // The first META record comes no later than the first packet (Wireshark's order check).
    assert!(recs[0].ts_le() <= s[0].ts);
    let tags: Vec<_> = TlvIter::new(recs[0].payload()).collect();
    let app = tags.iter().find(|t| t.tag == tag::APP_NAME).unwrap();
    assert_eq!(app.as_str(), Some("anoncap"));
    let fcs: Vec<u32> = tags
        .iter()
        .filter(|t| t.tag == tag::FCS_LEN)
        .map(|t| t.as_u32().unwrap())
        .collect();
    assert_eq!(fcs, vec![0, 32]);
    let stats: Vec<_> = TlvIter::new(recs[recs.len() - 1].payload()).collect();
    let cap: Vec<u64> = stats
        .iter()
        .filter(|t| t.tag == tag::STAT_CAP)
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert_eq!(cap, vec![200, 200]);

    // Sidecar.
    let sc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out.erf.json")).unwrap()).unwrap();
    assert_eq!(sc["packets"], 400);
    assert_eq!(sc["partial"], false);
    assert_eq!(
        sc["time_window"]["first_unix_ns"].as_u64(),
        Some(s[0].ts.to_unix_nanos())
    );
    assert_eq!(sc["run"]["key_fingerprint"], "sha256:0011223344556677");
    assert_eq!(sc["interfaces"][1]["wlen_includes_fcs"], true);
    assert_eq!(sc["trace_description"]["trace_format"], "ERF");
    let wire: u64 = s.iter().map(|p| p.wlen as u64).sum();
    assert_eq!(sc["bytes_wire"].as_u64(), Some(wire));
}

#[test]
fn tshark_decodes_meta_interface_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("names.erf");
    let mut w = ErfWriter::create(OutputConfig::new(
        OutputTarget::File(path.clone()),
        run_info(2),
    ))
    .unwrap();
    for p in samples(4, START_NS, 1000) {
        w.write_packet(p.ts, p.iface, p.kind, p.wlen, &p.data)
            .unwrap();
    }
    w.finish().unwrap();
    let out = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args([
            "-Y",
            "erf.types.type != 27",
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
        ])
        .output()
        .expect("tshark must be installed");
    let names = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = names.lines().collect();
    // Wireshark names ERF interfaces from the META interface sections (tshark 4.0 output).
    assert_eq!(
        names,
        vec![
            "xdp0 (ERF Interface 0)",
            "xdp1 (ERF Interface 1)",
            "xdp0 (ERF Interface 0)",
            "xdp1 (ERF Interface 1)"
        ]
    );
}

#[test]
fn lctr_saturates_and_carries_to_following_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.erf");
    let mut w = ErfWriter::create(OutputConfig::new(
        OutputTarget::File(path.clone()),
        run_info(2),
    ))
    .unwrap();
    let t = |i: u64| Timestamp::from_unix_nanos(START_NS + i * 1000);
    let f = &ETH_FRAME[..];
    w.add_loss(0, LossCause::Kernel, 70_000);
    w.add_loss(1, LossCause::Ring, 5);
    w.add_loss(0, LossCause::Recorded, 3);
    w.write_packet(t(0), 0, FrameKind::Ethernet, 1514, f)
        .unwrap(); // 65535
    w.write_packet(t(1), 1, FrameKind::Ethernet, 1514, f)
        .unwrap(); // 5
    w.write_packet(t(2), 0, FrameKind::Ethernet, 1514, f)
        .unwrap(); // 70003 - 65535 = 4468
    w.write_packet(t(3), 0, FrameKind::Ethernet, 1514, f)
        .unwrap(); // 0
    w.add_loss(1, LossCause::Interface, 2);
    w.write_packet(t(4), 1, FrameKind::Ethernet, 1514, f)
        .unwrap(); // 2
    w.count_cut(CutReason::UnknownEtherType);
    w.count_dropped(CutReason::TruncatedHeader);
    let sum = w.finish().unwrap();
    let lctrs: Vec<u32> = tshark_rows(&path).iter().map(|r| r.lctr).collect();
    assert_eq!(lctrs, vec![65535, 5, 4468, 0, 2]);
    assert_eq!(
        own_rows(&path).iter().map(|r| r.lctr).collect::<Vec<_>>(),
        lctrs
    );
    assert_eq!(sum.totals.losses.total(), 70_010);
    assert_eq!(sum.totals.losses.get(LossCause::Kernel), 70_000);

    let sc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("loss.erf.json")).unwrap()).unwrap();
    assert_eq!(sc["losses_total"], 70_010);
    assert_eq!(sc["losses"]["dropped-by-kernel"], 70_000);
    assert_eq!(sc["losses"]["recorded-in-input"], 3);
    assert_eq!(sc["cuts"]["unknown-ethertype"], 1);
    assert_eq!(sc["dropped"]["truncated-header"], 1);
    assert_eq!(sc["interfaces"][0]["lctr_total"], 70_003);
    assert_eq!(sc["interfaces"][1]["losses"]["dropped-by-interface"], 2);

    // The stats META record carries the exact totals.
    let data = std::fs::read(&path).unwrap();
    let last = RecordIter::new(&data).map(|r| r.unwrap()).last().unwrap();
    assert_eq!(last.record_type(), RecordType::Meta);
    let drops: Vec<u64> = TlvIter::new(last.payload())
        .filter(|t| t.tag == tag::STAT_DROP)
        .map(|t| t.as_u64().unwrap())
        .collect();
    assert_eq!(drops, vec![70_003, 7]);
}

#[test]
fn wlen_above_16_bits_is_clamped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jumbo.erf");
    let mut w = ErfWriter::create(OutputConfig::new(
        OutputTarget::File(path.clone()),
        run_info(1),
    ))
    .unwrap();
    let ts = Timestamp::from_unix_nanos(START_NS);
    w.write_packet(ts, 0, FrameKind::Ethernet, 70_000, &ETH_FRAME)
        .unwrap();
    w.write_packet(ts, 0, FrameKind::Ethernet, 9000, &ETH_FRAME)
        .unwrap();
    let sum = w.finish().unwrap();
    assert_eq!(sum.totals.wlen_clamped, 1);
    let rows = tshark_rows(&path);
    assert_eq!(rows[0].len, 65535);
    assert_eq!(rows[1].len, 9000);
}

#[test]
fn no_meta_writes_packet_records_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nometa.erf");
    let mut cfg = OutputConfig::new(OutputTarget::File(path.clone()), run_info(1));
    cfg.meta = false;
    let mut w = ErfWriter::create(cfg).unwrap();
    for p in samples(10, START_NS, 1000) {
        w.write_packet(p.ts, 0, p.kind, p.wlen, &p.data).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(meta_records(&path), 0);
    assert_eq!(tshark_rows(&path).len(), 10);
    // Every record is a packet record: the file size is the sum of their rlens.
    let data = std::fs::read(&path).unwrap();
    assert_eq!(RecordIter::new(&data).count(), 10);
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exists.erf");
    std::fs::write(&path, b"keep me").unwrap();
    let r = ErfWriter::create(OutputConfig::new(
        OutputTarget::File(path.clone()),
        run_info(1),
    ));
    assert!(matches!(r, Err(OutputError::Exists(_))));
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[test]
fn interface_out_of_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ErfWriter::create(OutputConfig::new(
        OutputTarget::File(dir.path().join("i.erf")),
        run_info(1),
    ))
    .unwrap();
    let ts = Timestamp::from_unix_nanos(START_NS);
    assert!(matches!(
        w.write_packet(ts, 4, FrameKind::Ethernet, 60, &ETH_FRAME),
        Err(OutputError::BadInterface(4))
    ));
}

#[test]
fn an_empty_run_still_gives_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.erf");
    let w = ErfWriter::create(OutputConfig::new(
        OutputTarget::File(path.clone()),
        run_info(1),
    ))
    .unwrap();
    let sum = w.finish().unwrap();
    assert_eq!(sum.files, vec![path.clone()]);
    assert_eq!(tshark_rows(&path).len(), 0);
    assert_eq!(meta_records(&path), 2);
}

#[test]
fn tshark_finds_no_malformed_record_or_expert_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verbose.erf");
    let mut w = ErfWriter::create(OutputConfig::new(
        OutputTarget::File(path.clone()),
        run_info(2),
    ))
    .unwrap();
    w.add_loss(0, LossCause::Kernel, 1);
    for p in samples(8, START_NS, 1000) {
        w.write_packet(p.ts, p.iface, p.kind, p.wlen, &p.data)
            .unwrap();
    }
    w.finish().unwrap();
    let out = std::process::Command::new("tshark")
        .args(["-n", "-V", "-r"])
        .arg(&path)
        .output()
        .expect("tshark must be installed");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    if std::env::var_os("ERF_TEST_DUMP").is_some() {
        eprintln!("{text}");
    }
    assert!(!text.contains("Malformed"), "{text}");
    assert!(!text.contains("Expert Info (Error"), "{text}");
    assert!(!text.contains("Truncation"), "{text}");
    // The META records decode: application name, version, and per-interface stats.
    assert!(text.contains("anoncap"), "{text}");
    assert!(text.contains("0.1.0-test"), "{text}");
    assert!(text.contains("Packets Captured: 4"), "{text}");
}
