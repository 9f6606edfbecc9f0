//! The live-frames sender on veth pairs between two namespaces the tests create (root, as in
//! CI): what the receiver's XDP program counts equals what the report calls delivered, frames
//! arrive byte for byte and in order, a receiver without XDP is reported as receiving nothing,
//! and the rate limiter holds a loose band.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bpf::sender::{
    enter_netns, synthetic_frames, Interface, LiveFrameSender, SendPlan, SendReport, Sink,
    SinkAction, SinkCounters, SYNTHETIC_HOSTS,
};

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn run(cmd: &mut Command) {
    let st = cmd.status().expect("spawn");
    assert!(st.success(), "{cmd:?} failed");
}

/// Two namespaces joined by a veth pair: `sa` in the sender's, `rb` in the receiver's, up,
/// IPv6 off. Both namespaces (and so the pair) are removed on drop, even on panic.
struct Pair {
    snd: String,
    rcv: String,
}

impl Pair {
    fn new() -> Pair {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = format!("ansend-{}-{n}", std::process::id());
        let pair = Pair {
            snd: format!("{base}-s"),
            rcv: format!("{base}-r"),
        };
        for ns in [&pair.snd, &pair.rcv] {
            run(Command::new("ip").args(["netns", "add", ns]));
        }
        run(Command::new("ip").args([
            "-n", &pair.snd, "link", "add", "sa", "type", "veth", "peer", "name", "rb", "netns",
            &pair.rcv,
        ]));
        for (ns, link) in [(&pair.snd, "sa"), (&pair.rcv, "rb")] {
            run(Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-q", "-w"])
                .arg(format!("net.ipv6.conf.{link}.disable_ipv6=1")));
            run(Command::new("ip").args(["-n", ns, "link", "set", link, "up"]));
        }
        pair
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.snd, &self.rcv] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs `f` on a fresh thread (which may change namespaces freely).
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("test thread")
}

/// Waits until the sink has seen `want` frames (it counts in NAPI, after the send returns),
/// then a little longer to be sure no more come.
fn settle(sink: &Sink, want: u64) -> SinkCounters {
    let t0 = Instant::now();
    while sink.counters().expect("sink").frames < want && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    sink.counters().expect("sink")
}

/// Attaches a sink on `rb` in the receiver's namespace, then enters the sender's namespace
/// and builds a sender over `frames` on `sa`.
fn setup(
    pair: &Pair,
    action: Option<SinkAction>,
    frames: &[Vec<u8>],
) -> (Option<Sink>, LiveFrameSender) {
    enter_netns(&pair.rcv).expect("enter receiver namespace");
    let rb = Interface::lookup("rb").expect("rb");
    let sink = action.map(|a| Sink::attach(rb.ifindex, a).expect("attach sink"));
    enter_netns(&pair.snd).expect("enter sender namespace");
    let sa = Interface::lookup("sa").expect("sa");
    assert!(sa.is_veth(), "{sa:?}");
    assert_eq!(sa.mtu, 1500);
    let sender = LiveFrameSender::new(&sa, frames).expect("sender");
    (sink, sender)
}

fn assert_exact(r: &SendReport, n: u64) {
    assert_eq!(r.requested, Some(n), "{r:?}");
    assert_eq!(r.handed, n, "{r:?}");
    assert_eq!(r.transmitted, n, "{r:?}");
    assert_eq!(r.aborted, 0, "{r:?}");
    assert_eq!(r.offered, n, "{r:?}");
    assert_eq!(r.delivered, n, "{r:?}");
    assert_eq!(r.peer_refused, 0, "{r:?}");
    assert!(!r.interrupted);
}

#[test]
fn synthetic_frames_delivered_exactly_at_low_rate() {
    let pair = Pair::new();
    let (sink_frames, sink_bytes, report, second) = on_thread(move || {
        let frames = synthetic_frames(64, SYNTHETIC_HOSTS).expect("frames");
        let (sink, mut sender) = setup(&pair, Some(SinkAction::Drop), &frames);
        let sink = sink.expect("sink");
        let n = 10_000;
        let plan = SendPlan {
            count: Some(n),
            pps: Some(100_000),
            batch: 32,
            ..SendPlan::default()
        };
        let report = sender.run(&plan).expect("run");
        let c = settle(&sink, report.delivered);
        // A second run continues: the counters are deltas.
        let second = sender.run(&plan).expect("second run");
        let c2 = settle(&sink, c.frames + second.delivered);
        assert_eq!(c2.frames - c.frames, second.delivered, "{second:?}");
        drop(pair);
        (c.frames, c.bytes, report, second)
    });
    assert_exact(&report, 10_000);
    assert_exact(&second, 10_000);
    assert_eq!(sink_frames, report.delivered);
    assert_eq!(sink_bytes, 60 * report.delivered);
}

#[test]
fn mixed_lengths_arrive_byte_for_byte_in_order() {
    // Lengths that make the program shrink and regrow the live frame, down to a bare
    // Ethernet header; an experimental EtherType so no stack acts on them.
    let lens = [60usize, 1514, 14, 61, 1000, 60, 200, 1513, 15, 64];
    let frames: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let mut f: Vec<u8> = (0..len).map(|j| (i * 37 + j * 7) as u8).collect();
            f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
            f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
            f[12..14].copy_from_slice(&[0x88, 0xb5]);
            f
        })
        .collect();
    let n = 95u64; // 9.5 turns of the table
    let pair = Pair::new();
    let dir = std::env::temp_dir().join(format!("ansend-{}-mixed", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pcap = dir.join("rb.pcap");
    let mut tcpdump = Command::new("ip")
        .args([
            "netns", "exec", &pair.rcv, "tcpdump", "-i", "rb", "-B", "65536", "-s", "0", "-U", "-n",
        ])
        .arg("--immediate-mode")
        .arg("-w")
        .arg(&pcap)
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    // tcpdump says "listening on" once its socket is bound.
    let mut err = tcpdump.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    let t0 = Instant::now();
    while !String::from_utf8_lossy(&seen).contains("listening on") {
        let mut b = [0u8; 256];
        let k = std::io::Read::read(&mut err, &mut b).expect("tcpdump stderr");
        assert!(
            k > 0 && t0.elapsed() < Duration::from_secs(10),
            "tcpdump did not start"
        );
        seen.extend_from_slice(&b[..k]);
    }
    let table = frames.clone();
    let (report, sink) = on_thread(move || {
        let (sink, mut sender) = setup(&pair, Some(SinkAction::Pass), &table);
        let sink = sink.expect("sink");
        let report = sender
            .run(&SendPlan {
                count: Some(n),
                pps: Some(2_000),
                batch: 4,
                ..SendPlan::default()
            })
            .expect("run");
        let c = settle(&sink, report.delivered);
        std::thread::sleep(Duration::from_millis(300));
        (report, c)
    });
    run(Command::new("kill").args(["-INT", &tcpdump.id().to_string()]));
    let _ = tcpdump.wait();
    let bytes = std::fs::read(&pcap).expect("pcap");
    let _ = std::fs::remove_dir_all(&dir);
    assert_exact(&report, n);
    assert_eq!(sink.frames, n);
    let want_bytes: usize = (0..n as usize).map(|i| lens[i % lens.len()]).sum();
    assert_eq!(sink.bytes, want_bytes as u64);
    // The pcap tcpdump wrote: a 24-byte header, then 16-byte record headers.
    assert!(bytes.len() >= 24 && bytes[0..4] == [0xd4, 0xc3, 0xb2, 0xa1]);
    let mut got = Vec::new();
    let mut off = 24;
    while off + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        got.push(bytes[off + 16..off + 16 + caplen].to_vec());
        off += 16 + caplen;
    }
    assert_eq!(got.len(), n as usize, "frames tcpdump saw");
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g, &frames[i % frames.len()], "frame {i}");
    }
}

#[test]
fn receiver_without_xdp_gets_nothing_and_says_so() {
    let pair = Pair::new();
    let report = on_thread(move || {
        let frames = synthetic_frames(64, 16).expect("frames");
        let (_, mut sender) = setup(&pair, None, &frames);
        sender
            .run(&SendPlan {
                count: Some(1000),
                ..SendPlan::default()
            })
            .expect("run")
    });
    assert_eq!(report.handed, 1000);
    assert_eq!(report.transmitted, 1000);
    assert_eq!(report.offered, 0, "{report:?}");
    assert_eq!(report.delivered, 0);
    assert_eq!(report.lost_before_link(), 1000);
}

#[test]
fn rate_limit_holds_a_loose_band() {
    let pair = Pair::new();
    let (report, sink) = on_thread(move || {
        let frames = synthetic_frames(64, 256).expect("frames");
        let (sink, mut sender) = setup(&pair, Some(SinkAction::Drop), &frames);
        let sink = sink.expect("sink");
        let report = sender
            .run(&SendPlan {
                duration: Some(Duration::from_millis(800)),
                pps: Some(20_000),
                batch: 16,
                ..SendPlan::default()
            })
            .expect("run");
        let c = settle(&sink, report.delivered);
        (report, c)
    });
    // Deliberately loose: a loaded CI machine can stall the sender, never speed it up.
    let pps = report.pps();
    assert!(
        (14_000.0..=26_000.0).contains(&pps),
        "{pps} pps: {report:?}"
    );
    assert!(report.elapsed >= Duration::from_millis(600), "{report:?}");
    assert!(report.elapsed < Duration::from_secs(3), "{report:?}");
    assert_eq!(report.requested, None);
    assert_eq!(report.delivered, report.handed, "{report:?}");
    assert_eq!(sink.frames, report.delivered);
}

#[test]
fn counters_are_read_in_the_callers_namespace() {
    let pair = Pair::new();
    let (missing, other_ns, lo) = on_thread(move || {
        enter_netns(&pair.snd).expect("enter");
        let missing = Interface::lookup("rb").is_err();
        let sa = Interface::lookup("sa").expect("sa");
        let lo = Interface::lookup("lo").expect("lo");
        let lo_counters = lo.xmit_counters();
        assert!(lo_counters.is_err(), "{lo_counters:?}");
        enter_netns(&pair.rcv).expect("enter");
        let rb = Interface::lookup("rb").expect("rb");
        (missing, sa.ifindex != 0 && rb.is_veth(), lo)
    });
    assert!(
        missing,
        "the receiver's link is not visible from the sender's namespace"
    );
    assert!(other_ns);
    assert!(!lo.is_veth());
}

/// The receiving veth's rx_dropped, read with `ip -s -j` in its namespace.
fn rx_dropped(ns: &str, link: &str) -> u64 {
    let out = Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", "dev", link])
        .output()
        .expect("ip -s -j link");
    let text = String::from_utf8_lossy(&out.stdout);
    // [{"ifindex":..,"stats64":{"rx":{"bytes":..,"packets":..,"errors":..,"dropped":N,...
    let rx = text.find("\"rx\":").expect("rx stats");
    let d = text[rx..].find("\"dropped\":").expect("rx dropped") + rx + 10;
    text[d..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a count")
}

#[test]
fn offered_splits_exactly_into_delivered_and_refused() {
    // With threaded NAPI the receiver drains its 256-entry ring on another thread, so at top
    // speed the ring may overflow. Whether it does depends on timing; the identities do not.
    let pair = Pair::new();
    let dropped0 = rx_dropped(&pair.rcv, "rb");
    let (report, sink) = on_thread(move || {
        let frames = synthetic_frames(64, SYNTHETIC_HOSTS).expect("frames");
        let (sink, mut sender) = setup(&pair, Some(SinkAction::Drop), &frames);
        let sink = sink.expect("sink");
        // veth has a NAPI instance once an XDP program is attached.
        run(Command::new("ip")
            .args(["netns", "exec", &pair.rcv, "sh", "-c"])
            .arg("echo 1 > /sys/class/net/rb/threaded"));
        let report = sender
            .run(&SendPlan {
                duration: Some(Duration::from_millis(500)),
                batch: 256,
                ..SendPlan::default()
            })
            .expect("run");
        let c = settle(&sink, report.delivered);
        let dropped = rx_dropped(&pair.rcv, "rb");
        drop(pair);
        (report, (c, dropped))
    });
    let (c, dropped1) = sink;
    eprintln!("{report}");
    assert!(report.handed > 0);
    assert_eq!(report.offered, report.handed, "{report:?}");
    assert_eq!(report.offered, report.delivered + report.peer_refused);
    assert_eq!(c.frames, report.delivered, "{report:?}");
    assert_eq!(dropped1 - dropped0, report.peer_refused, "{report:?}");
}
