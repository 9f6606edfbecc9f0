//! `anoncap demo`: a live capture between two network namespaces on a bundled real trace.
//!
//! Creates two namespaces joined by a veth pair with two queues (IPv6 off, no addresses, so
//! nothing in them can route a frame anywhere), starts `anoncap capture` on one end with a key
//! generated for this run, replays the bundled trace (tcpreplay's own test trace) from the other
//! end with tcpreplay, stops the capture, prints its summary and where the ERF file is, and
//! removes the namespaces, even when interrupted. It installs nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use capture::live::netns::{self, VethPair};
use capture::live::{sys, Control};

/// tcpreplay's own test trace (179 frames of mixed real traffic; see testdata/traces/README.md).
const TRACE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/traces/tcpreplay-test.pcap"
));

/// Flags of `anoncap demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Where to put the ERF output (a new directory; default: a fresh one under the temporary
    /// directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replay this pcap instead of the bundled trace.
    #[arg(long, value_name = "PCAP")]
    trace: Option<PathBuf>,
}

/// Removes the run's scratch directory (with the key) when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_key(path: &Path) -> anyhow::Result<()> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("reading /dev/urandom")?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{hex}")?;
    Ok(())
}

/// Runs `anoncap demo`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let missing = sys::missing_privileges(sys::effective_caps(), sys::memlock_limit(), 0);
    if !missing.is_empty() || sys::effective_caps() & (1 << 21) == 0 {
        bail!("the demo creates network namespaces: run it as root");
    }
    // Interrupts stop the demo's steps, never skip its clean-up.
    let control = Control::with_signals().context("cannot install signal handlers")?;
    let stale = netns::remove_stale("acd");
    if stale > 0 {
        eprintln!("demo: removed {stale} namespaces left by an earlier, killed demo");
    }
    let scratch =
        Scratch(std::env::temp_dir().join(format!("anoncap-demo-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)?;
    let key = scratch.0.join("demo.key");
    write_key(&key)?;
    let trace = match &args.trace {
        Some(t) => t.clone(),
        None => {
            let t = scratch.0.join("tcpreplay-test.pcap");
            std::fs::write(&t, TRACE)?;
            t
        }
    };
    let out = match &args.out {
        Some(o) => o.clone(),
        None => std::env::temp_dir().join(format!(
            "anoncap-demo-out-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        )),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let pair = VethPair::create("acd", 2).context("creating the demo's namespaces")?;
    eprintln!(
        "demo: namespaces {} and {}, veth {} <-> {} (2 queues, IPv6 off, no addresses)",
        pair.capture_ns, pair.sender_ns, pair.capture_if, pair.sender_if
    );
    let result = run_in(&pair, &key, &trace, &out, &control);
    drop(pair);
    eprintln!("demo: namespaces removed");
    result?;
    Ok(ExitCode::SUCCESS)
}

fn run_in(
    pair: &VethPair,
    key: &Path,
    trace: &Path,
    out: &Path,
    control: &Control,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the anoncap binary")?;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &pair.capture_ns])
        .arg(&exe)
        .args(["capture", "--iface", &pair.capture_if, "--key"])
        .arg(key)
        .arg("--out")
        .arg(out)
        .args([
            "--rx-ring",
            "4096",
            "--fill-ring",
            "4096",
            "--frames",
            "8192",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting anoncap capture")?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("  | {line}");
            let _ = tx.send(line);
        }
    });
    let stop_child = |child: &mut std::process::Child| {
        // SIGINT, as Ctrl-C would send: the capture drains, writes and detaches.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
    };
    // Wait until the capture is running.
    let started = Instant::now();
    let mut ready = false;
    while started.elapsed() < Duration::from_secs(15) && !control.stop.load(Ordering::Acquire) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) if l.contains("capturing on") => {
                ready = true;
                break;
            }
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    if !ready {
        stop_child(&mut child);
        let _ = child.wait();
        let _ = reader.join();
        bail!("the capture did not start");
    }
    let mut sent_line = None;
    if !control.stop.load(Ordering::Acquire) {
        eprintln!("demo: replaying {} with tcpreplay", trace.display());
        let replay = netns::exec_in(
            &pair.sender_ns,
            "tcpreplay",
            &["-i", &pair.sender_if, &trace.to_string_lossy()],
        )
        .context("running tcpreplay")?;
        let text = String::from_utf8_lossy(&replay.stdout).into_owned();
        sent_line = text
            .lines()
            .find(|l| l.trim().starts_with("Successful packets:"))
            .map(|l| l.trim().to_string());
        if !replay.status.success() {
            eprintln!(
                "demo: tcpreplay failed: {}",
                String::from_utf8_lossy(&replay.stderr).trim()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop_child(&mut child);
    let status = child.wait()?;
    let _ = reader.join();
    if let Some(l) = sent_line {
        eprintln!("demo: tcpreplay: {l}");
    }
    if !status.success() {
        bail!("the capture failed ({status})");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "erf"))
        .collect();
    files.sort();
    for f in &files {
        println!("{}", f.display());
    }
    eprintln!(
        "demo: the ERF output is in {} (read it with `anoncap stats` or tshark -r)",
        out.display()
    );
    Ok(())
}
