//! The DAG stream layer against the stand-in library: every record of a file comes out once and
//! in order whatever the buffer size, however the "card" splits its arrivals and wherever the
//! circular buffer wraps; the card's loss counters and error flags are read as documented.
#![cfg(feature = "dag")]

mod dag_support;

use std::path::Path;
use std::time::Duration;

use capture::dag::{DagDevice, DagError, DagRecord, DagStream, PollParams, Skip, StreamOptions};
use dag_support::{record, tcp_frame, trace, walk, RefRecord, Standin};
use proptest::prelude::*;

/// What a test keeps of each record the stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Packet {
        ts: u64,
        iface: u8,
        wlen: u32,
        lost_before: u16,
        data: Vec<u8>,
        truncated: bool,
    },
    Skipped {
        reason: Skip,
        iface: u8,
        lost_before: u16,
    },
}

fn fast_poll() -> StreamOptions {
    StreamOptions {
        poll: PollParams {
            mindata: 16,
            maxwait: Duration::from_millis(20),
            interval: Duration::from_micros(100),
        },
        ..StreamOptions::default()
    }
}

/// Opens the stand-in with `cfg`, reads the stream to its end, and returns what it yielded and
/// the stream's counters.
fn read_all(cfg: &Standin, opts: &StreamOptions) -> (Vec<Seen>, capture::dag::DagCounters) {
    let guard = cfg.apply();
    let dev = DagDevice::open(Path::new("/dev/dag0")).expect("open the stand-in");
    let mut stream = DagStream::attach(&dev, 0, opts).expect("attach stream 0");
    drop(guard);
    stream.start().expect("start");
    let mut seen = Vec::new();
    let mut empty_in_a_row = 0;
    while let Some(mut batch) = stream.next_batch().expect("advance") {
        if batch.is_empty() {
            empty_in_a_row += 1;
            assert!(empty_in_a_row < 1000, "the stand-in stopped delivering");
        } else {
            empty_in_a_row = 0;
        }
        while let Some(rec) = batch.next_record() {
            seen.push(match rec.expect("well-formed record") {
                DagRecord::Packet { packet, truncated } => Seen::Packet {
                    ts: packet.ts.0,
                    iface: packet.iface,
                    wlen: packet.wlen,
                    lost_before: packet.lost_before,
                    data: packet.data.to_vec(),
                    truncated,
                },
                DagRecord::Skipped {
                    reason,
                    iface,
                    lost_before,
                } => Seen::Skipped {
                    reason,
                    iface,
                    lost_before,
                },
            });
        }
    }
    assert!(stream.ended());
    stream.stop().expect("stop");
    let counters = stream.counters().clone();
    (seen, counters)
}

fn expected_packets(refs: &[RefRecord]) -> Vec<Seen> {
    refs.iter()
        .map(|r| Seen::Packet {
            ts: r.ts,
            iface: r.flags & 3,
            wlen: u32::from(r.wlen),
            lost_before: r.lctr,
            data: r.data.clone(),
            truncated: false,
        })
        .collect()
}

/// Records of the file that cross the end of a `size`-byte circular buffer when written one
/// after another from offset 0 (what happens when nothing is dropped).
fn straddling(refs: &[RefRecord], size: usize) -> usize {
    refs.iter()
        .filter(|r| r.offset / size != (r.offset + r.rlen - 1) / size)
        .count()
}

#[test]
fn every_record_once_in_order_across_many_wraps() {
    let path = trace("libtrace-100_packets.erf");
    let refs = walk(&std::fs::read(&path).unwrap());
    let mut cfg = Standin::new(&path);
    // 1001 bytes: not a multiple of 8, and the records (52-92 bytes) wrap at varied places.
    cfg.bufsize = Some(1001);
    cfg.chunk = Some(300);
    assert!(
        straddling(&refs, 1001) >= 5,
        "the test must make records wrap"
    );
    let (seen, counters) = read_all(&cfg, &fast_poll());
    assert_eq!(seen, expected_packets(&refs));
    assert_eq!(counters.packets, 100);
    assert_eq!(counters.card_loss, 0);
    assert!(
        counters.windows >= 7784 / 300,
        "the chunk splits the file into many windows"
    );
}

#[test]
fn a_small_extra_window_still_gives_whole_records() {
    let path = trace("libtrace-100_packets.erf");
    let refs = walk(&std::fs::read(&path).unwrap());
    let mut cfg = Standin::new(&path);
    cfg.bufsize = Some(2000);
    let opts = StreamOptions {
        extra_window: 100,
        ..fast_poll()
    };
    let (seen, _) = read_all(&cfg, &opts);
    assert_eq!(seen, expected_packets(&refs));
}

#[test]
fn a_batch_limit_hands_the_rest_of_the_window_on_to_the_next_batch() {
    let path = trace("libtrace-100_packets.erf");
    let refs = walk(&std::fs::read(&path).unwrap());
    let mut cfg = Standin::new(&path);
    cfg.bufsize = Some(4096);
    let opts = StreamOptions {
        max_batch_bytes: 200,
        ..fast_poll()
    };
    let (seen, counters) = read_all(&cfg, &opts);
    assert_eq!(seen, expected_packets(&refs));
    // At most 200 bytes (plus one record) per batch: at least 7784 / 292 windows.
    assert!(counters.windows >= 7784 / 292);
}

#[test]
fn records_not_read_from_a_batch_come_again() {
    let path = trace("libtrace-100_packets.erf");
    let refs = walk(&std::fs::read(&path).unwrap());
    let cfg = Standin::new(&path);
    let guard = cfg.apply();
    let dev = DagDevice::open(Path::new("dag0")).unwrap();
    let mut stream = DagStream::attach(&dev, 0, &fast_poll()).unwrap();
    drop(guard);
    stream.start().unwrap();
    let mut got = Vec::new();
    // Read only three records of each window, then drop the batch.
    while let Some(mut batch) = stream.next_batch().unwrap() {
        for _ in 0..3 {
            match batch.next_record() {
                Some(Ok(DagRecord::Packet { packet, .. })) => got.push(packet.ts.0),
                Some(other) => panic!("unexpected {other:?}"),
                None => break,
            }
        }
    }
    let want: Vec<u64> = refs.iter().map(|r| r.ts).collect();
    assert_eq!(got, want);
}

#[test]
fn the_card_loss_counters_are_carried_on_their_records() {
    let path = trace("libtrace-100_packets.erf");
    let refs = walk(&std::fs::read(&path).unwrap());
    let mut cfg = Standin::new(&path);
    cfg.bufsize = Some(700);
    cfg.lctr = vec![(0, 3), (17, 65535), (42, 1), (99, 250)];
    let (seen, counters) = read_all(&cfg, &fast_poll());
    let mut want = expected_packets(&refs);
    for (i, v) in &cfg.lctr {
        if let Seen::Packet { lost_before, .. } = &mut want[*i as usize] {
            *lost_before = *v;
        }
    }
    assert_eq!(seen, want);
    assert_eq!(counters.card_loss, 3 + 65535 + 1 + 250);
}

#[test]
fn a_full_buffer_loses_records_and_counts_every_one() {
    let path = trace("libtrace-100_packets.erf");
    let refs = walk(&std::fs::read(&path).unwrap());
    let mut cfg = Standin::new(&path);
    cfg.bufsize = Some(500);
    cfg.chunk = Some(1500);
    cfg.drop_when_full = true;
    let (seen, counters) = read_all(&cfg, &fast_poll());
    assert!(
        counters.card_loss > 0,
        "the buffer must overflow in this test"
    );
    // Every record is either delivered or counted in a later record's lctr (the last ones
    // dropped have no later record to say so).
    let tail_lost = 100 - counters.packets - counters.card_loss;
    assert!(tail_lost < 100);
    // What is delivered is the file's records, in order, none twice.
    let mut at = 0;
    for s in &seen {
        let Seen::Packet { ts, data, .. } = s else {
            panic!("only packets in this file")
        };
        let i = refs[at..]
            .iter()
            .position(|r| r.ts == *ts && r.data == *data)
            .expect("delivered records follow the file's order");
        at += i + 1;
    }
    // The loss reported before each delivered record equals the records skipped over.
    let mut prev = None::<usize>;
    for s in &seen {
        let Seen::Packet {
            ts, lost_before, ..
        } = s
        else {
            unreachable!()
        };
        let idx = refs.iter().position(|r| r.ts == *ts).unwrap();
        let skipped = idx - prev.map_or(0, |p| p + 1);
        assert_eq!(usize::from(*lost_before), skipped, "record {idx}");
        prev = Some(idx);
    }
}

fn synthetic_file(dir: &Path) -> (std::path::PathBuf, Vec<Seen>) {
    let f = tcp_frame([192, 0, 2, 1], [198, 51, 100, 2], 1514);
    let ip = &f[14..];
    let t = |s: u64| s << 32;
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    let mut push = |r: Vec<u8>, w: Seen| {
        bytes.extend_from_slice(&r);
        want.push(w);
    };
    let pkt = |ts, iface, wlen, lost_before, data: &[u8], truncated| Seen::Packet {
        ts,
        iface,
        wlen,
        lost_before,
        data: data.to_vec(),
        truncated,
    };
    push(
        record(t(1), 2, 0x04, 0, 1518, &f),
        pkt(t(1), 0, 1518, 0, &f, false),
    );
    push(
        record(t(2), 2, 0x04 | 0x10 | 1, 2, 1518, &f),
        Seen::Skipped {
            reason: Skip::RxError,
            iface: 1,
            lost_before: 2,
        },
    );
    push(
        record(t(3), 2, 0x04 | 0x20 | 2, 7, 1518, &f),
        Seen::Skipped {
            reason: Skip::DsError,
            iface: 2,
            lost_before: 0,
        },
    );
    push(
        record(t(4), 2, 0x04 | 0x08 | 3, 4, 1518, &f),
        pkt(t(4), 3, 1518, 4, &f, true),
    );
    push(
        record(t(5), 48, 0x04, 1, 0, &[0; 16]),
        Seen::Skipped {
            reason: Skip::Pad,
            iface: 0,
            lost_before: 1,
        },
    );
    push(
        record(t(6), 22, 0x04, 5, 1500, ip),
        Seen::Packet {
            ts: t(6),
            iface: 0,
            wlen: 1500,
            lost_before: 5,
            data: ip.to_vec(),
            truncated: false,
        },
    );
    // A colour type: its lctr field is a colour, not a loss.
    push(
        record(t(7), 11, 0x04 | 1, 0x1234, 1518, &f),
        pkt(t(7), 1, 1518, 0, &f, false),
    );
    push(
        record(t(8), 1, 0x04, 6, 100, &[0x0f, 0, 0x08, 0]),
        Seen::Skipped {
            reason: Skip::Unsupported(1),
            iface: 0,
            lost_before: 6,
        },
    );
    // wlen below the captured bytes: only wlen bytes are data (the rest is padding).
    push(
        record(t(9), 2, 0x04, 0, 40, &f),
        pkt(t(9), 0, 40, 0, &f[..40], false),
    );
    let path = dir.join("synthetic.erf");
    std::fs::write(&path, &bytes).unwrap();
    (path, want)
}

#[test]
fn error_flags_pad_colour_and_other_types_are_handled_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let (path, want) = synthetic_file(dir.path());
    let (seen, c) = read_all(&Standin::new(&path), &fast_poll());
    assert_eq!(seen, want);
    assert_eq!(
        (c.records, c.packets, c.truncated, c.colour, c.pad),
        (9, 5, 1, 1, 1)
    );
    assert_eq!((c.rx_error, c.ds_error, c.unsupported), (1, 1, 1));
    // 2 (rxerror) + 4 (trunc) + 1 (pad) + 5 (ipv4) + 6 (unsupported); not 7 (dserror) nor the
    // colour.
    assert_eq!(c.card_loss, 2 + 4 + 1 + 5 + 6);
}

#[test]
fn an_odd_stream_is_refused_before_calling_the_library() {
    let cfg = Standin::new(&trace("libtrace-100_packets.erf"));
    let _guard = cfg.apply();
    let dev = DagDevice::open(Path::new("/dev/dag0")).unwrap();
    let err = DagStream::attach(&dev, 1, &fast_poll()).unwrap_err();
    assert!(matches!(err, DagError::NotReceiveStream(1)), "{err}");
    assert!(err.to_string().contains("even-numbered"));
}

#[test]
fn a_missing_device_file_is_an_open_error_naming_the_device() {
    let cfg = Standin::new(Path::new("/nonexistent/anoncap-dag-test.erf"));
    let _guard = cfg.apply();
    let err = DagDevice::open(Path::new("/dev/dag7")).unwrap_err();
    assert!(matches!(err, DagError::Open { .. }), "{err}");
    assert!(err.to_string().contains("/dev/dag7"), "{err}");
}

#[test]
fn a_quiet_link_gives_empty_windows_after_the_wait() {
    let path = trace("libtrace-100_packets.erf");
    let mut cfg = Standin::new(&path);
    cfg.idle_at_end = true;
    let guard = cfg.apply();
    let dev = DagDevice::open(Path::new("/dev/dag0")).unwrap();
    let mut stream = DagStream::attach(&dev, 2, &fast_poll()).unwrap();
    drop(guard);
    stream.start().unwrap();
    let mut packets = 0;
    let mut empties = 0;
    let started = std::time::Instant::now();
    while empties < 3 {
        let mut batch = stream.next_batch().unwrap().expect("idle mode never ends");
        if batch.is_empty() {
            empties += 1;
        }
        while let Some(r) = batch.next_record() {
            r.unwrap();
            packets += 1;
        }
    }
    assert_eq!(packets, 100);
    // Each empty window waited for maxwait (20 ms).
    assert!(started.elapsed() >= Duration::from_millis(60));
    assert!(!stream.ended());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn no_buffer_size_chunk_or_batch_limit_loses_or_duplicates_a_record(
        bufsize in 92u64..3000,
        chunk in 0u64..1200,
        max_batch in 16usize..2000,
        extra in prop_oneof![Just(0u64), 92u64..400],
    ) {
        let path = trace("libtrace-100_packets.erf");
        let refs = walk(&std::fs::read(&path).unwrap());
        let mut cfg = Standin::new(&path);
        cfg.bufsize = Some(bufsize);
        cfg.chunk = Some(chunk);
        let opts = StreamOptions {
            extra_window: extra,
            max_batch_bytes: max_batch,
            ..fast_poll()
        };
        let (seen, counters) = read_all(&cfg, &opts);
        prop_assert_eq!(seen, expected_packets(&refs));
        prop_assert_eq!(counters.card_loss, 0);
    }
}
