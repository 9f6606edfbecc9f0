//! `anoncap-send` end to end on veth pairs between two namespaces each test creates (and
//! removes, also on failure). Needs root (CI runs as root).
//!
//! What is checked: the counting XDP sink on the receiving veth sees exactly the frames the
//! tool reports as delivered, and at a low rate delivered = offered = requested; trace frames
//! arrive byte for byte and in trace order (looping), as the project's reader reads them; the
//! synthetic frames pass tshark's IPv4 and UDP checksum checks and use 198.18.0.0/15; a
//! receiver without XDP is an error, as are a non-veth interface and a non-root user; the rate
//! limiter holds a loose band.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bpf::sender::{enter_netns, Interface, Sink, SinkAction, SinkCounters};
use capture::input::Trace;
use capture::packet::LinkType;

const SEND: &str = env!("CARGO_BIN_EXE_anoncap-send");

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn trace(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces")
        .join(name)
}

fn run(cmd: &mut Command) {
    let st = cmd.status().expect("spawn");
    assert!(st.success(), "{cmd:?} failed");
}

/// Two namespaces joined by a veth pair (`sa` sends, `rb` receives), up, IPv6 off; removed on
/// drop.
struct Pair {
    snd: String,
    rcv: String,
}

impl Pair {
    fn new() -> Pair {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = format!("ansend-{}-t{n}", std::process::id());
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

    /// Runs anoncap-send in the sender's namespace (through --netns) with `args`.
    fn send(&self, args: &[&str]) -> Output {
        Command::new(SEND)
            .args(["--netns", &self.snd, "--iface", "sa"])
            .args(args)
            .output()
            .expect("run anoncap-send")
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

/// A counting sink on `rb`, owned by a thread inside the receiver's namespace.
struct SinkThread {
    ask: Option<mpsc::Sender<()>>,
    answer: mpsc::Receiver<SinkCounters>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SinkThread {
    fn start(pair: &Pair, action: SinkAction) -> SinkThread {
        let ns = pair.rcv.clone();
        let (ask, asked) = mpsc::channel::<()>();
        let (tell, answer) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            enter_netns(&ns).expect("enter receiver namespace");
            let rb = Interface::lookup("rb").expect("rb");
            let sink = Sink::attach(rb.ifindex, action).expect("attach sink");
            tell.send(SinkCounters::default()).expect("ready");
            while asked.recv().is_ok() {
                tell.send(sink.counters().expect("sink counters"))
                    .expect("answer");
            }
        });
        let s = SinkThread {
            ask: Some(ask),
            answer,
            thread: Some(thread),
        };
        s.answer.recv().expect("sink attached");
        s
    }

    fn counters(&self) -> SinkCounters {
        self.ask.as_ref().expect("running").send(()).expect("ask");
        self.answer.recv().expect("answer")
    }

    /// Waits until the sink saw `want` frames (it counts in NAPI, after the sender returned),
    /// then a little longer so that any extra frame would show.
    fn settle(&self, want: u64) -> SinkCounters {
        let t0 = Instant::now();
        while self.counters().frames < want && t0.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.counters()
    }
}

impl Drop for SinkThread {
    fn drop(&mut self) {
        self.ask.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// tcpdump on `rb` in the receiver's namespace, writing `pcap`; stopped by `stop`.
struct Tcpdump {
    child: Child,
    err: std::process::ChildStderr,
}

impl Tcpdump {
    fn start(pair: &Pair, pcap: &Path) -> Tcpdump {
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", &pair.rcv, "tcpdump", "-i", "rb", "-B", "65536", "-s", "0", "-U",
                "-n",
            ])
            .arg("--immediate-mode")
            .arg("-w")
            .arg(pcap)
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        let mut err = child.stderr.take().expect("stderr");
        let mut seen = Vec::new();
        let t0 = Instant::now();
        while !String::from_utf8_lossy(&seen).contains("listening on") {
            let mut b = [0u8; 256];
            let k = err.read(&mut b).expect("tcpdump stderr");
            assert!(
                k > 0 && t0.elapsed() < Duration::from_secs(10),
                "tcpdump did not start"
            );
            seen.extend_from_slice(&b[..k]);
        }
        Tcpdump { child, err }
    }

    /// Stops tcpdump; returns what it said on exit (its capture and drop counts).
    fn stop(mut self) -> String {
        std::thread::sleep(Duration::from_millis(300));
        run(Command::new("kill").args(["-INT", &self.child.id().to_string()]));
        let _ = self.child.wait();
        let mut said = String::new();
        let _ = self.err.read_to_string(&mut said);
        said
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "anoncap-send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn u(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not a count in {v}"))
}

fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let t = Trace::open(path).expect("tcpdump's pcap");
    t.packets()
        .map(|p| p.expect("packet").data.to_vec())
        .collect()
}

fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ansend-{tag}-"))
        .tempdir()
        .expect("tempdir")
}

#[test]
fn synthetic_delivered_equals_sink_and_frames_are_valid() {
    let pair = Pair::new();
    let dir = tmpdir("synth");
    let pcap = dir.path().join("rb.pcap");
    let sink = SinkThread::start(&pair, SinkAction::Pass);
    let dump = Tcpdump::start(&pair, &pcap);
    let n = 5000u64;
    let out = pair.send(&[
        "--synthetic",
        "64",
        "--count",
        &n.to_string(),
        "--pps",
        "20000",
        "--json",
    ]);
    let r = json(&out);
    let c = sink.settle(u(&r, "delivered"));
    let said = dump.stop();
    for k in ["requested", "handed", "transmitted", "offered", "delivered"] {
        assert_eq!(u(&r, k), n, "{k}: {r}");
    }
    assert_eq!(u(&r, "peer_refused"), 0, "{r}");
    assert_eq!(u(&r, "aborted"), 0, "{r}");
    assert_eq!(r["dispatcher_guard"], true);
    assert_eq!(
        c.frames, n,
        "the receiver saw what the report calls delivered"
    );
    assert_eq!(c.bytes, 60 * n);

    // tshark checks the checksums independently.
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&pcap)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
        ])
        .args(["-T", "fields", "-E", "separator=,"])
        .args(["-e", "frame.len", "-e", "ip.src", "-e", "ip.dst"])
        .args(["-e", "ip.checksum.status", "-e", "udp.checksum.status"])
        .output()
        .expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, n, "frames tcpdump saw: {said}");
    let mut srcs = BTreeSet::new();
    let in_range = |a: &str| {
        let o: Vec<u8> = a.split('.').map(|x| x.parse().expect("octet")).collect();
        o.len() == 4 && o[0] == 198 && (o[1] == 18 || o[1] == 19)
    };
    for l in &lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 5, "{l}");
        assert_eq!(f[0], "60", "{l}");
        assert!(in_range(f[1]) && in_range(f[2]), "{l}");
        assert_eq!(f[3], "1", "IPv4 checksum good: {l}");
        assert_eq!(f[4], "1", "UDP checksum good: {l}");
        srcs.insert(f[1].to_string());
    }
    assert!(srcs.len() >= 4000, "{} sources", srcs.len());
}

#[test]
fn trace_frames_arrive_in_order_and_loop() {
    let path = trace("tcpreplay-test.pcap");
    // The frames the tool should send, read with the project's reader.
    let t = Trace::open(&path).expect("trace");
    let want: Vec<Vec<u8>> = t
        .packets()
        .map(|p| p.expect("packet"))
        .filter(|p| p.link == LinkType::Ethernet && p.data.len() <= 1514)
        .map(|p| p.data.to_vec())
        .collect();
    assert!(want.len() > 100);
    let n = want.len() as u64 * 2 + 17;
    let pair = Pair::new();
    let dir = tmpdir("trace");
    let pcap = dir.path().join("rb.pcap");
    let sink = SinkThread::start(&pair, SinkAction::Pass);
    let dump = Tcpdump::start(&pair, &pcap);
    let out = pair.send(&[
        "--trace",
        path.to_str().expect("utf-8 path"),
        "--count",
        &n.to_string(),
        "--pps",
        "5000",
        "--batch",
        "8",
        "--json",
    ]);
    let r = json(&out);
    let c = sink.settle(u(&r, "delivered"));
    let said = dump.stop();
    assert_eq!(u(&r, "frames_in_table"), want.len() as u64, "{r}");
    for k in ["requested", "handed", "offered", "delivered"] {
        assert_eq!(u(&r, k), n, "{k}: {r}");
    }
    assert_eq!(c.frames, n);
    let bytes: u64 = (0..n as usize)
        .map(|i| want[i % want.len()].len() as u64)
        .sum();
    assert_eq!(c.bytes, bytes);
    let got = pcap_frames(&pcap);
    assert_eq!(got.len() as u64, n, "frames tcpdump saw: {said}");
    // The kernel hands a frame without a protocol handler (MPLS, loopback test frames) to
    // packet sockets later than the IPv4 frame after it (batched receive), so tcpdump's order
    // is exact only among frames of the same outer EtherType: compare per EtherType. The
    // bpf crate's sender test checks the whole order with frames of one EtherType.
    let sent: Vec<&Vec<u8>> = (0..n as usize).map(|i| &want[i % want.len()]).collect();
    let kinds: BTreeSet<[u8; 2]> = sent.iter().map(|f| [f[12], f[13]]).collect();
    assert!(kinds.len() > 1);
    for k in kinds {
        let a: Vec<&Vec<u8>> = sent.iter().copied().filter(|f| f[12..14] == k).collect();
        let b: Vec<&Vec<u8>> = got.iter().filter(|f| f[12..14] == k).collect();
        assert_eq!(a.len(), b.len(), "frames of EtherType {k:02x?}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "frame {i} of EtherType {k:02x?}");
        }
    }
}

#[test]
fn whole_trace_once_by_default_with_drop_sink() {
    let path = trace("dpkt-dns_icmp.pcap");
    let pair = Pair::new();
    let sink = SinkThread::start(&pair, SinkAction::Drop);
    let r = json(&pair.send(&["--trace", path.to_str().unwrap(), "--json"]));
    let c = sink.settle(u(&r, "delivered"));
    assert_eq!(u(&r, "requested"), 32, "{r}");
    assert_eq!(u(&r, "delivered"), 32, "{r}");
    assert_eq!(c.frames, 32);
    assert_eq!(c.bytes, 3636 - 24 - 32 * 16, "the trace's frame bytes");
}

#[test]
fn receiver_without_xdp_is_an_error() {
    let pair = Pair::new();
    let out = pair.send(&["--synthetic", "64", "--count", "1000"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs an XDP program"), "{err}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("offered:     0"), "{report}");
}

#[test]
fn rate_limit_holds_a_loose_band() {
    let pair = Pair::new();
    let sink = SinkThread::start(&pair, SinkAction::Drop);
    let r = json(&pair.send(&[
        "--synthetic",
        "64",
        "--pps",
        "30000",
        "--duration",
        "700ms",
        "--batch",
        "32",
        "--json",
    ]));
    let c = sink.settle(u(&r, "delivered"));
    // Deliberately loose: a loaded machine can stall the sender, never speed it up.
    let pps = r["pps"].as_f64().expect("pps");
    assert!((21_000.0..=39_000.0).contains(&pps), "{r}");
    assert!(r["elapsed_s"].as_f64().unwrap() >= 0.5, "{r}");
    assert!(r["requested"].is_null());
    assert_eq!(u(&r, "delivered"), u(&r, "handed"), "{r}");
    assert_eq!(c.frames, u(&r, "delivered"));
}

#[test]
fn refusals_are_clear() {
    let pair = Pair::new();
    let lo = Command::new(SEND)
        .args(["--netns", &pair.snd, "--iface", "lo", "--synthetic", "64"])
        .args(["--count", "10"])
        .output()
        .expect("run");
    assert!(!lo.status.success());
    let err = String::from_utf8_lossy(&lo.stderr);
    assert!(err.contains("not veth"), "{err}");
    let none = pair.send(&["--synthetic", "64"]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("--count or --duration"));
    let missing = Command::new(SEND)
        .args([
            "--netns",
            &pair.snd,
            "--iface",
            "nosuch0",
            "--synthetic",
            "64",
        ])
        .args(["--count", "10"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nosuch0"));
    // The same binary as an unprivileged user refuses before doing anything.
    let user = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", SEND])
        .args(["--iface", "sa", "--synthetic", "64", "--count", "1"])
        .output()
        .expect("setpriv");
    assert!(!user.status.success());
    let err = String::from_utf8_lossy(&user.stderr);
    assert!(err.contains("must run as root"), "{err}");
}
