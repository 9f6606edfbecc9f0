//! The socket and thread layers on the real kernel path: a veth pair between two namespaces
//! this test creates (and always removes), traffic replayed by tcpreplay from a bundled trace.
//! These need root (CI runs as root) and fail loudly without it.

use super::netns::{self, VethPair};
use super::*;
use crate::packet::{FrameKind, Timestamp};
use crate::stats::{CutReason, LossCause, LossCounts};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Copies the frame as it is and counts the frames it saw (tests only: this writes to memory,
/// never to disk).
struct PassThrough(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl SlotProcessor for PassThrough {
    fn process(&mut self, _buf: &mut [u8], caplen: usize, _wlen: u32) -> Processed {
        self.0.fetch_add(1, Ordering::Relaxed);
        Processed::Write {
            len: caplen,
            kind: FrameKind::Ethernet,
            cut: None,
        }
    }
}

#[derive(Default)]
struct MemSink {
    records: Vec<(Timestamp, u8, u32, Vec<u8>)>,
    losses: LossCounts,
}

impl RecordSink for MemSink {
    fn write(
        &mut self,
        ts: Timestamp,
        iface: u8,
        _kind: FrameKind,
        wlen: u32,
        data: &[u8],
    ) -> Result<(), SinkError> {
        self.records.push((ts, iface, wlen, data.to_vec()));
        Ok(())
    }
    fn add_loss(&mut self, _iface: u8, cause: LossCause, n: u64) {
        self.losses.add(cause, n);
    }
    fn count_cut(&mut self, _reason: CutReason) {}
    fn count_dropped(&mut self, _reason: CutReason) {}
    fn rotate(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

fn trace(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces")
        .join(name)
}

fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(&data[..]).unwrap();
    let mut out = vec![];
    while let Some(p) = r.next_packet() {
        out.push(p.unwrap().data.into_owned());
    }
    out
}

/// The count after `label` in tcpreplay's summary (e.g. "Successful packets:").
fn tcpreplay_count(out: &str, label: &str) -> u64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in tcpreplay's output: {out}"))
}

#[test]
fn veth_two_queues_every_frame_is_captured_or_counted() {
    two_queues_every_frame("alt", 1);
}

/// The same with no anonymiser threads: the receive threads run the processor themselves.
#[test]
fn veth_two_queues_anonymised_in_the_receive_threads() {
    two_queues_every_frame("ali", 0);
}

/// Replays a trace into a two-queue veth pair (namespaces named after `prefix`) through the
/// pipeline with `anon_threads` anonymiser threads, and checks that every frame sent is
/// written (through the processor) or counted as lost, with the kernel's cut and wire length.
/// The highest core this process may run on.
fn last_core() -> usize {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .map(|c| c.id)
        .max()
        .unwrap_or(0)
}

/// The calling thread's allowed cores, as the kernel lists them.
fn allowed_cores() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn two_queues_every_frame(prefix: &str, anon_threads: usize) {
    netns::remove_stale(prefix);
    let pair = VethPair::create(prefix, 2).expect("creating namespaces (needs root)");
    let control = Control::default();
    let slot = 256;
    let processed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let capture = {
        let (cap_if, cap_ns) = (pair.capture_if.clone(), pair.capture_ns.clone());
        let control = control.clone();
        let processed = processed.clone();
        std::thread::spawn(move || {
            netns::enter(&cap_ns).unwrap();
            let xcfg = XskConfig {
                rx_ring: 2048,
                fill_ring: 2048,
                frames: 4096,
                ..XskConfig::default()
            };
            let sources: Vec<Source> = (0..2)
                .map(|q| Source {
                    xsk: XskQueue::open(&cap_if, q, &xcfg, 64).unwrap(),
                    port: 0,
                })
                .collect();
            let sockets: Vec<(u8, &XskQueue)> = sources.iter().map(|s| (0, &s.xsk)).collect();
            let setup = ProgramSetup {
                options: bpf::ProgramOptions::default(),
                mode: bpf::AttachMode::Auto,
                force: false,
                device_timestamps: false,
            };
            let programs = std::sync::Arc::new(
                XdpPrograms::attach(std::slice::from_ref(&cap_if), &sockets, &setup).unwrap(),
            );
            drop(sockets);
            // The inline layout also pins its threads, the writer (this thread) to the last
            // core, which is checked below.
            let writer_core = (anon_threads == 0).then(last_core);
            let cfg = PipelineConfig {
                slot,
                pool_batches: 64,
                anon_threads,
                pin: writer_core.is_some(),
                writer_core,
                meta: ANONCAP_META,
                ifaces: vec![cap_if.clone()],
                programs: Some(programs.clone()),
                ..PipelineConfig::default()
            };
            let mut sink = MemSink::default();
            let summary = run(
                sources,
                &cfg,
                |_| PassThrough(processed.clone()),
                &mut sink,
                &control,
                || programs.detach(),
            )
            .unwrap();
            if let Some(core) = writer_core {
                assert_eq!(allowed_cores(), core.to_string(), "the writer is pinned");
            }
            let counters = programs.counters();
            (summary, sink, counters)
        })
    };
    // Give the sockets time to bind before sending.
    std::thread::sleep(Duration::from_millis(500));
    let file = trace("tcpreplay-test.pcap");
    let out = netns::exec_in(
        &pair.sender_ns,
        "tcpreplay",
        &["-i", &pair.sender_if, file.to_str().unwrap()],
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "tcpreplay failed: {text}");
    let sent = tcpreplay_count(&text, "Successful packets:");
    std::thread::sleep(Duration::from_millis(300));
    control.stop.store(true, Ordering::Release);
    let (summary, sink, counters) = capture.join().unwrap();

    let lost = sink.losses.total();
    assert_eq!(summary.written as usize, sink.records.len());
    assert_eq!(processed.load(Ordering::Relaxed), summary.written);
    assert_eq!(
        sent,
        summary.written + lost,
        "sent {sent}, written {}, lost {lost}: {summary:?}",
        summary.written
    );
    let program_lost: u64 = counters
        .iter()
        .map(|(_, c)| c.meta_failed + c.redirect_missed)
        .sum();
    assert_eq!(
        lost,
        summary.kernel_lost() + summary.ring_lost() + program_lost
    );
    // What was written is the sent frames, cut by the XDP program (a prefix of each frame,
    // at most `slot` bytes), with the wire length the program read from the full frame.
    let mut expected: Vec<Vec<u8>> = pcap_frames(&file)
        .into_iter()
        .filter(|f| f.len() <= 1514)
        .collect();
    let mut cut_in_kernel = 0;
    for (_, _, w, d) in &sink.records {
        let at = expected
            .iter()
            .position(|f| f.len() as u32 == *w && f.starts_with(d))
            .unwrap_or_else(|| panic!("record of {w} bytes is no prefix of a sent frame"));
        let f = expected.swap_remove(at);
        assert!(d.len() <= slot.min(f.len()));
        if d.len() < f.len().min(slot) {
            cut_in_kernel += 1;
        }
    }
    if lost == 0 {
        assert!(
            expected.is_empty(),
            "{} frames not captured",
            expected.len()
        );
    }
    assert!(cut_in_kernel > 0, "no frame was cut to its headers");
    let (_, c) = &counters[0];
    // Every frame the program redirected reached user space or is a counted kernel loss.
    assert_eq!(
        c.redirected,
        summary.written + summary.ring_lost() + summary.kernel_lost() + c.redirect_missed
    );
    assert_eq!(c.pass_no_socket, 0);
    // Records come out in time order, stamped near now.
    let now = sys::now_utc();
    for w in sink.records.windows(2) {
        assert!(w[0].0 <= w[1].0);
    }
    assert!(sink
        .records
        .iter()
        .all(|r| r.0 <= now && now.secs() - r.0.secs() < 60));
    drop(pair);
}
