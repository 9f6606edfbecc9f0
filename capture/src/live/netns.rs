//! Two network namespaces joined by a veth pair: the place where `anoncap demo` and the live
//! tests capture, so that no frame ever reaches a real network.
//!
//! Names are unique per process and per pair (`<prefix><pid>x<n>`), IPv6 is disabled in both
//! namespaces before the links exist (so the kernel sends none of its own frames), and the
//! namespaces (with the veth pair inside them) are deleted when the [`VethPair`] is dropped.
//! [`remove_stale`] deletes the namespaces that killed runs left behind.
#![allow(unsafe_code)]

use std::io;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running ip: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Runs `cmd args` inside namespace `ns` (through `ip netns exec`, which also mounts the
/// namespace's own /sys) and returns its output.
pub fn exec_in(ns: &str, cmd: &str, args: &[&str]) -> io::Result<std::process::Output> {
    Command::new("ip")
        .args(["netns", "exec", ns, cmd])
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// A veth pair between a capture namespace and a sender namespace.
#[derive(Debug)]
pub struct VethPair {
    /// The namespace where the capture runs.
    pub capture_ns: String,
    /// The namespace the traffic is sent from.
    pub sender_ns: String,
    /// The capture end of the pair (in `capture_ns`).
    pub capture_if: String,
    /// The sending end of the pair (in `sender_ns`).
    pub sender_if: String,
}

impl VethPair {
    /// Creates both namespaces and a veth pair with `queues` RX and TX queues on each end, IPv6
    /// off, both ends up and without addresses. `prefix` is at most 4 characters.
    pub fn create(prefix: &str, queues: u32) -> io::Result<VethPair> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{prefix}{}x{n}", std::process::id());
        let pair = VethPair {
            capture_ns: format!("{id}-cap"),
            sender_ns: format!("{id}-snd"),
            capture_if: format!("{id}c"),
            sender_if: format!("{id}s"),
        };
        if pair.capture_if.len() > 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "namespace prefix too long for an interface name",
            ));
        }
        // From here on, Drop removes whatever was made.
        ip(&["netns", "add", &pair.capture_ns])?;
        ip(&["netns", "add", &pair.sender_ns])?;
        for ns in [&pair.capture_ns, &pair.sender_ns] {
            let out = exec_in(
                ns,
                "sysctl",
                &[
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )?;
            if !out.status.success() {
                return Err(io::Error::other(format!(
                    "disabling IPv6 in {ns}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        let q = queues.max(1).to_string();
        ip(&[
            "-n",
            &pair.capture_ns,
            "link",
            "add",
            &pair.capture_if,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            &pair.sender_if,
            "numrxqueues",
            &q,
            "numtxqueues",
            &q,
            "netns",
            &pair.sender_ns,
        ])?;
        ip(&[
            "-n",
            &pair.capture_ns,
            "link",
            "set",
            &pair.capture_if,
            "up",
        ])?;
        ip(&["-n", &pair.sender_ns, "link", "set", &pair.sender_if, "up"])?;
        Ok(pair)
    }

    /// Moves the calling thread into the capture namespace (threads it spawns afterwards are
    /// in it too). Note that /sys still shows the namespace the process started in.
    pub fn enter_capture_ns(&self) -> io::Result<()> {
        enter(&self.capture_ns)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the peer.
        let _ = ip(&["netns", "delete", &self.capture_ns]);
        let _ = ip(&["netns", "delete", &self.sender_ns]);
    }
}

/// Moves the calling thread into the named namespace.
pub fn enter(ns: &str) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/run/netns/{ns}"))?;
    // SAFETY: `f` is an open namespace file for the duration of the call; setns changes only
    // the calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Deletes namespaces named `<prefix><pid>x<n>-cap|-snd` whose process is gone (left by a
/// killed run). Returns how many were deleted.
pub fn remove_stale(prefix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('x') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !(name.ends_with("-cap") || name.ends_with("-snd")) {
            continue;
        }
        let gone =
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists();
        if gone && ip(&["netns", "delete", &name]).is_ok() {
            removed += 1;
        }
    }
    removed
}
