//! `anoncap capture` on the real kernel path: a veth pair between two namespaces each test
//! creates (and removes, also on failure, through a Drop guard), real traces replayed with
//! tcpreplay from the sender namespace. Needs root (CI runs as root).
//!
//! What is checked: every frame tcpreplay sent is in the output or counted as lost, exactly;
//! the output equals what `anoncap offline` makes of the same trace, record by record apart
//! from timestamps; tshark reads it; overload shows in the loss totals and lctr; error cases
//! (missing privileges, no such interface, busy interface, missing key, full disk, kill -9).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capture::live::netns::{self, VethPair};

const ANONCAP: &str = env!("CARGO_BIN_EXE_anoncap");

fn trace(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces")
        .join(name)
}

fn key_file(dir: &Path) -> PathBuf {
    let p = dir.join("test.key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&p)
        .unwrap();
    use std::io::Write;
    writeln!(f, "{}", "5a".repeat(32)).unwrap();
    p
}

fn pair(queues: u32) -> VethPair {
    netns::remove_stale("alc");
    VethPair::create("alc", queues).expect("creating namespaces (needs root)")
}

/// A running `anoncap capture` inside the capture namespace.
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(p: &VethPair, key: &Path, out: &Path, extra: &[&str]) -> Running {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &p.capture_ns, ANONCAP, "capture"])
            .args(["--iface", &p.capture_if, "--key"])
            .arg(key)
            .arg("--out")
            .arg(out)
            .args(if extra.contains(&"--rx-ring") {
                &[][..]
            } else {
                &[
                    "--rx-ring",
                    "4096",
                    "--fill-ring",
                    "4096",
                    "--frames",
                    "8192",
                    "--pool",
                    "256",
                ][..]
            })
            .arg("--no-pin")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let l2 = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        let mut r = Running {
            child,
            lines,
            reader: Some(reader),
        };
        let t0 = Instant::now();
        loop {
            if r.text().contains("capturing on") {
                break;
            }
            if let Ok(Some(st)) = r.child.try_wait() {
                r.join();
                panic!("anoncap capture exited ({st}): {}", r.text());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no start: {}",
                r.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn join(&mut self) {
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// SIGINT, then the exit status and everything it printed.
    fn stop(mut self) -> (bool, String) {
        std::thread::sleep(Duration::from_millis(300));
        self.signal("-INT");
        let st = self.child.wait().unwrap();
        self.join();
        (st.success(), self.text())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Replays `file` from the sender namespace; returns the frames tcpreplay sent.
fn replay(p: &VethPair, file: &Path, extra: &[&str]) -> u64 {
    let mut args: Vec<&str> = vec!["-i", &p.sender_if];
    args.extend_from_slice(extra);
    let f = file.to_string_lossy().into_owned();
    args.push(&f);
    let out = netns::exec_in(&p.sender_ns, "tcpreplay", &args).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tcpreplay: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    count_after(&text, "Successful packets:")
}

fn count_after(text: &str, label: &str) -> u64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in: {text}"))
}

/// The summary's counts: captured, interface, kernel, anoncap.
fn summary(text: &str) -> [u64; 4] {
    let get = |suffix: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                l.strip_suffix(suffix)
                    .or_else(|| l.split_once(suffix).map(|x| x.0))
            })
            .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {suffix:?} in: {text}"))
    };
    [
        get(" packets captured"),
        get(" packets dropped by interface"),
        get(" packets dropped by kernel"),
        get(" packets dropped by anoncap"),
    ]
}

/// ERF packet records of a file: (lctr, the record without its timestamp). META records are
/// left out.
fn erf_records(path: &Path) -> Vec<(u16, Vec<u8>)> {
    let data = std::fs::read(path).unwrap();
    let mut out = vec![];
    let mut off = 0;
    while off + 16 <= data.len() {
        let rlen = u16::from_be_bytes([data[off + 10], data[off + 11]]) as usize;
        assert!(
            rlen >= 16 && off + rlen <= data.len(),
            "bad record at {off}"
        );
        let ty = data[off + 8] & 0x7f;
        if ty != 27 {
            let lctr = u16::from_be_bytes([data[off + 12], data[off + 13]]);
            out.push((lctr, data[off + 8..off + rlen].to_vec()));
        }
        off += rlen;
    }
    assert_eq!(off, data.len(), "trailing bytes in {}", path.display());
    out
}

/// A test on a directory listing (name, size).
type Check = dyn Fn(&[(String, u64)]) -> bool;

fn erf_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "erf"))
        .collect();
    v.sort();
    v
}

fn offline(key: &Path, input: &Path, out: &Path) {
    let st = Command::new(ANONCAP)
        .args(["offline", "--key"])
        .arg(key)
        .arg("--out")
        .arg(out)
        .arg(input)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "offline: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

#[test]
fn live_equals_offline_and_every_frame_is_accounted_for() {
    live_equals_offline(&[]);
}

/// The layout without anonymiser threads (each receive thread anonymises its own frames)
/// writes the same records.
#[test]
fn anonymising_in_the_receive_thread_equals_offline() {
    live_equals_offline(&["--anon-threads", "0"]);
}

/// Replays a trace on one queue, with `extra` capture flags: every frame is accounted for, the
/// records equal offline's record by record, and tshark reads the file.
fn live_equals_offline(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    // One queue: records come out in the order sent, so they can be compared one by one.
    let p = pair(1);
    let file = trace("tcpreplay-test.pcap");
    let out = dir.path().join("live");
    std::fs::create_dir(&out).unwrap();
    let run = Running::start(&p, &key, &out, extra);
    let sent = replay(&p, &file, &[]);
    let (ok, text) = run.stop();
    assert!(ok, "{text}");
    let [captured, iface, kernel, anoncap] = summary(&text);
    assert_eq!(sent, captured + iface + kernel + anoncap, "{text}");
    let files = erf_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    let live = erf_records(&files[0]);
    assert_eq!(live.len() as u64, captured);
    let off = dir.path().join("offline.erf");
    offline(&key, &file, &off);
    let offline = erf_records(&off);
    if anoncap + kernel + iface == 0 {
        assert_eq!(live.len(), offline.len());
        for (i, (a, b)) in live.iter().zip(&offline).enumerate() {
            assert_eq!(a.1, b.1, "record {i} differs");
        }
    }
    let tshark = Command::new("tshark")
        .arg("-r")
        .arg(&files[0])
        .output()
        .unwrap();
    assert!(
        tshark.status.success(),
        "{}",
        String::from_utf8_lossy(&tshark.stderr)
    );
    let shown = String::from_utf8_lossy(&tshark.stdout).lines().count() as u64;
    assert!(shown >= captured, "tshark shows {shown} of {captured}");
}

#[test]
fn several_traces_on_two_queues_sum_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let p = pair(2);
    let out = dir.path().join("live");
    std::fs::create_dir(&out).unwrap();
    let run = Running::start(&p, &key, &out, &[]);
    let mut sent = 0;
    let names = [
        "tcpreplay-test.pcap",
        "libtrace-vlan.pcap",
        "dpkt-dns_icmp.pcap",
        "zeek-gre-sample.pcap",
    ];
    for name in names {
        sent += replay(&p, &trace(name), &[]);
    }
    let (ok, text) = run.stop();
    assert!(ok, "{text}");
    let [captured, iface, kernel, anoncap] = summary(&text);
    assert_eq!(sent, captured + iface + kernel + anoncap, "{text}");
    let n: usize = erf_files(&out).iter().map(|f| erf_records(f).len()).sum();
    assert_eq!(n as u64, captured);
    // The same multiset of records as offline (the two queues interleave in time).
    let mut live: Vec<Vec<u8>> = erf_files(&out)
        .iter()
        .flat_map(|f| erf_records(f))
        .map(|r| r.1[8..].to_vec())
        .collect();
    if captured == sent {
        let mut off: Vec<Vec<u8>> = vec![];
        for (i, name) in names.iter().enumerate() {
            let o = dir.path().join(format!("off{i}.erf"));
            offline(&key, &trace(name), &o);
            off.extend(erf_records(&o).into_iter().map(|r| r.1[8..].to_vec()));
        }
        live.sort();
        off.sort();
        assert_eq!(live, off);
    }
}

#[test]
fn overload_shows_in_lctr_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let p = pair(1);
    let out = dir.path().join("live");
    std::fs::create_dir(&out).unwrap();
    // Tiny rings and pools, a large trace at top speed.
    let run = Running::start(
        &p,
        &key,
        &out,
        &[
            "--rx-ring",
            "64",
            "--fill-ring",
            "64",
            "--frames",
            "128",
            "--pool",
            "2",
            "--batch",
            "8",
        ],
    );
    let sent = replay(&p, &trace("zeek-echo-connections.pcap"), &["--topspeed"]);
    let (ok, text) = run.stop();
    assert!(ok, "{text}");
    let [captured, iface, kernel, anoncap] = summary(&text);
    let lost = iface + kernel + anoncap;
    assert_eq!(sent, captured + lost, "{text}");
    assert!(lost > 0, "no loss under overload: {text}");
    let recs: Vec<(u16, Vec<u8>)> = erf_files(&out)
        .iter()
        .flat_map(|f| erf_records(f))
        .collect();
    assert_eq!(recs.len() as u64, captured);
    let lctr: u64 = recs.iter().map(|r| r.0 as u64).sum();
    // lctr carries the losses seen before each record; losses after the last record are only
    // in the totals.
    assert!(lctr > 0 && lctr <= lost, "lctr {lctr}, lost {lost}");
}

#[test]
fn errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let out = dir.path().join("o");
    std::fs::create_dir(&out).unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(ANONCAP).args(args).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let k = key.to_str().unwrap();
    let o = out.to_str().unwrap();
    let (ok, err) = run(&["capture", "--iface", "nosuch0", "--key", k, "--out", o]);
    assert!(!ok && err.contains("no such interface: nosuch0"), "{err}");

    let p = pair(1);
    // Missing privileges: the same command as an unprivileged user.
    let o2 = netns::exec_in(
        &p.capture_ns,
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            ANONCAP,
            "capture",
            "--iface",
            &p.capture_if,
            "--key",
            k,
            "--out",
            o,
        ],
    )
    .unwrap();
    let err = String::from_utf8_lossy(&o2.stderr);
    assert!(
        !o2.status.success() && err.contains("CAP_BPF") && err.contains("CAP_NET_ADMIN"),
        "{err}"
    );

    // A missing key is a refusal, and nothing is written.
    let o3 = netns::exec_in(
        &p.capture_ns,
        ANONCAP,
        &[
            "capture",
            "--iface",
            &p.capture_if,
            "--key",
            "/nonexistent/key",
            "--out",
            o,
        ],
    )
    .unwrap();
    assert!(
        !o3.status.success(),
        "{}",
        String::from_utf8_lossy(&o3.stderr)
    );
    assert!(erf_files(&out).is_empty());

    // A busy interface: one capture holds it, a second is refused.
    let held = Running::start(&p, &key, &out, &[]);
    let o4 = netns::exec_in(
        &p.capture_ns,
        ANONCAP,
        &["capture", "--iface", &p.capture_if, "--key", k, "--out", o],
    )
    .unwrap();
    let err = String::from_utf8_lossy(&o4.stderr);
    assert!(!o4.status.success() && err.contains("busy"), "{err}");
    let (ok, text) = held.stop();
    assert!(ok, "{text}");
}

#[test]
fn a_full_disk_counts_writer_losses_and_the_capture_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let out = dir.path().join("small");
    std::fs::create_dir(&out).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(out.clone());
    let p = pair(1);
    let run = Running::start(&p, &key, &out, &["--rotate-size", "64k"]);
    let sent = replay(&p, &trace("libtrace-ip-in-mpls.pcap"), &["--topspeed"]);
    let (ok, text) = run.stop();
    assert!(ok, "the capture must not stop on a full disk: {text}");
    let [captured, iface, kernel, anoncap] = summary(&text);
    assert_eq!(sent, captured + iface + kernel + anoncap, "{text}");
    assert!(text.contains("writer") && anoncap > 0, "{text}");
    // Every file left is whole.
    for f in erf_files(&out) {
        erf_records(&f);
    }
}

#[test]
fn kill_9_leaves_closed_files_intact_and_the_open_one_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let out = dir.path().join("live");
    std::fs::create_dir(&out).unwrap();
    {
        let p = pair(1);
        let run = Running::start(&p, &key, &out, &[]);
        // Killed while frames are flowing (the replay takes about 4 s at this rate), after a
        // SIGHUP closed one file and once the next one holds records.
        let listing = || -> Vec<(String, u64)> {
            std::fs::read_dir(&out)
                .unwrap()
                .flatten()
                .filter_map(|e| {
                    let len = e.metadata().ok()?.len();
                    Some((e.file_name().to_string_lossy().into_owned(), len))
                })
                .collect()
        };
        let wait_for = |what: &str, ok: &Check| {
            let t0 = Instant::now();
            while !ok(&listing()) {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "no {what}: {:?}",
                    listing()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let open_with_records =
            |v: &[(String, u64)]| v.iter().any(|(n, l)| n.ends_with(".erf.part") && *l > 1000);
        std::thread::scope(|s| {
            s.spawn(|| {
                replay(
                    &p,
                    &trace("zeek-echo-connections.pcap"),
                    &["--pps", "20000"],
                )
            });
            wait_for("open file with records", &open_with_records);
            run.signal("-HUP");
            wait_for("closed file", &|v: &[(String, u64)]| {
                v.iter().any(|(n, _)| n.ends_with(".erf"))
            });
            wait_for("second open file with records", &open_with_records);
            run.signal("-KILL");
        });
        std::thread::sleep(Duration::from_millis(300));
        // The program was attached through a link: the kernel removed it with the process.
        let link = netns::exec_in(
            &p.capture_ns,
            "ip",
            &["-d", "link", "show", "dev", &p.capture_if],
        )
        .unwrap();
        let link = String::from_utf8_lossy(&link.stdout);
        assert!(
            !link.contains("xdp"),
            "XDP program left after kill -9: {link}"
        );
    }
    for f in erf_files(&out) {
        erf_records(&f);
    }
    // The next start completes the temporary file left behind.
    let p = pair(1);
    let run = Running::start(&p, &key, &out, &[]);
    let (ok, text) = run.stop();
    assert!(ok, "{text}");
    assert!(text.contains("recovered"), "{text}");
    let partial: Vec<PathBuf> = erf_files(&out)
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("partial"))
        .collect();
    assert_eq!(partial.len(), 1, "{text}");
    assert!(!erf_records(&partial[0]).is_empty());
}
