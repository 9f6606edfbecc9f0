//! Property: whatever packets and losses the writer is given, reading its files back gives the
//! same packets in order, lengths as documented, and lctr values that carry every loss
//! reported, 0xFFFF at most per record.

use capture::erf::{RecordIter, RecordType};
use capture::output::{ErfWriter, InterfaceInfo, OutputConfig, OutputTarget, RunInfo};
use capture::packet::{FrameKind, Timestamp};
use capture::stats::LossCause;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Packet {
        iface: u8,
        kind: FrameKind,
        wlen: u32,
        len: usize,
        gap_ns: u64,
    },
    Loss {
        iface: u8,
        n: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, prop_oneof![Just(FrameKind::Ethernet), Just(FrameKind::Ipv4), Just(FrameKind::Ipv6)],
              0u32..70_000, 0usize..300, 0u64..2_000_000_000)
            .prop_map(|(iface, kind, wlen, len, gap_ns)| Op::Packet { iface, kind, wlen, len, gap_ns }),
        1 => (0u8..4, 0u64..100_000).prop_map(|(iface, n)| Op::Loss { iface, n }),
    ]
}

fn run() -> RunInfo {
    RunInfo {
        software_version: "test".into(),
        interfaces: (0..4)
            .map(|i| InterfaceInfo {
                name: format!("q{i}"),
                snaplen: 300,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn files_read_back_as_written(ops in proptest::collection::vec(op(), 1..200), rotate in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let target = if rotate {
            OutputTarget::Directory { dir: dir.path().into(), rotate_bytes: 4096, rotate_interval: None }
        } else {
            OutputTarget::File(dir.path().join("p.erf"))
        };
        let mut cfg = OutputConfig::new(target, run());
        cfg.buffer_bytes = 4096;
        let mut w = ErfWriter::create(cfg).unwrap();
        let mut t = 1_600_000_000_000_000_000u64;
        let mut want = Vec::new();
        // Losses owed per interface (docs/erf-format §6: the next record carries at most 0xFFFF,
        // the rest is carried to the following records).
        let mut owed = [0u64; 4];
        let mut total_loss = 0u64;
        for o in &ops {
            match *o {
                Op::Packet { iface, kind, wlen, len, gap_ns } => {
                    t += gap_ns;
                    let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                    w.write_packet(Timestamp::from_unix_nanos(t), iface, kind, wlen, &data).unwrap();
                    let wl = wlen.min(65535);
                    let cap = len.min(wl as usize);
                    let l = owed[iface as usize].min(0xFFFF);
                    owed[iface as usize] -= l;
                    want.push((t, iface, wl as u16, l as u16, data[..cap].to_vec()));
                }
                Op::Loss { iface, n } => {
                    w.add_loss(iface, LossCause::Kernel, n);
                    owed[iface as usize] += n;
                    total_loss += n;
                }
            }
        }
        let sum = w.finish().unwrap();
        prop_assert_eq!(sum.totals.written.packets, want.len() as u64);
        prop_assert_eq!(sum.totals.losses.total(), total_loss);
        let mut got = Vec::new();
        for f in &sum.files {
            let data = std::fs::read(f).unwrap();
            for r in RecordIter::new(&data) {
                let r = r.unwrap();
                if r.record_type() == RecordType::Meta { continue; }
                got.push((r.ts_le().to_unix_nanos(), r.iface(), r.wlen_be(), r.lctr_be(), r.payload().to_vec()));
            }
        }
        prop_assert_eq!(got, want);
    }
}
