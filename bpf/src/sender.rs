//! A traffic sender for the live-capture benchmark: frames out of a veth through the XDP
//! transmit path, which (unlike the skb path of tcpreplay or AF_PACKET) does not push back on
//! the sender when the receiver is slow.
//!
//! [`LiveFrameSender`] loads a small XDP program (src/bpf/sender.bpf.c) that is never attached
//! to an interface: it is run with `BPF_PROG_RUN` in live-frames mode
//! (`BPF_F_TEST_XDP_LIVE_FRAMES`, `repeat` = frames of the call, `batch_size` = frames per
//! kernel batch), as the kernel's xdp-trafficgen does. Each run copies the next frame of a
//! frame table (a BPF array map filled once, before sending) into the live frame and returns
//! `XDP_TX`; with the context's `ingress_ifindex` set to the sending veth, the kernel redirects
//! the frame out of that veth to its peer. Frames are sent in table order, looping.
//!
//! # The receiver must run XDP (or GRO)
//! veth only takes redirected frames when its peer has NAPI running: an XDP program on the
//! receiving veth (anoncap's capture attaches one; [`Sink`] is one for tests) or GRO enabled
//! on it (`ethtool -K PEER gro on`, which turns frames into skbs for tcpdump and may merge TCP
//! segments). Otherwise the redirect fails and the frames vanish without any counter; the
//! report then shows [`SendReport::offered`] = 0 while [`SendReport::transmitted`] > 0.
//!
//! # What is counted
//! Live-frames mode reports no transmit result to user space, so the report combines:
//! - `handed` / `transmitted` / `aborted`: the program's own counters (runs; runs that
//!   returned `XDP_TX`; runs that could not build the frame). Exact even when a call is
//!   interrupted by a signal.
//! - `offered` and `delivered`: the sending veth's own ethtool counters (ETHTOOL_GSTATS,
//!   `ethtool -S IF`), summed over queues. veth's `ndo_xdp_xmit` counts, on the receiving
//!   side's queue, every frame it was handed as `tx_queue_N_xdp_xmit` (put into the peer's
//!   XDP ring: the peer's XDP program or GRO sees every one of them) or
//!   `tx_queue_N_xdp_xmit_errors` (the peer's ring was full, or the frame exceeded the peer's
//!   MTU + 18). **offered** = Δ(`xdp_xmit` + `xdp_xmit_errors`): frames that reached the link,
//!   the load offered to the receiving interface (its ring-full drops are the receiver's loss,
//!   and the receiving veth reports them in its own `rx_dropped`). **delivered** =
//!   Δ`xdp_xmit`: frames the receiving veth took in. Frames refused before the veth (peer
//!   without XDP/GRO, link down, frame longer than MTU + 18) are in neither, and are
//!   `transmitted - offered`.
//!
//! veth runs the receiver's NAPI on the sender's CPU after each kernel batch (unless the
//! receiver's NAPI is threaded), so with batches of at most 256 frames its 256-entry ring does
//! not overflow and a slow receiver lowers the send rate instead; with threaded NAPI the ring
//! overflows and `xdp_xmit_errors` (and the receiver's `rx_dropped`) grow by the same count.
//!
//! The counters are read in the calling thread's network namespace, through ioctls, never
//! /sys (which shows the namespace /sys was mounted in).
//!
//! # The dispatcher guard
//! `BPF_PROG_RUN` with `repeat` > 1 puts the XDP program into the kernel's XDP dispatcher
//! before the run and takes it out after, each time waiting for an RCU grace period
//! (milliseconds; seen stalling calls for tens of ms on a busy 2-core machine). A program that
//! is attached somewhere stays in the dispatcher, so the sender attaches its own program in
//! generic mode to the namespace's loopback interface for its lifetime; there the program sees
//! an `ingress_ifindex` that is not the sending interface and passes every frame untouched
//! ([`ProgramCounters::passed`]). If lo already has an XDP program the sender works without
//! the guard, slowly ([`LiveFrameSender::has_dispatcher_guard`]).
//!
//! The send loop makes no allocation: each iteration is one `BPF_PROG_RUN` system call.
#![allow(unsafe_code)]

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use libbpf_rs::{libbpf_sys, MapCore, MapFlags, Object, ObjectBuilder};

use crate::{lib, sys, BpfError};

/// The sender's program object, as compiled by build.rs.
pub const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sender.bpf.o"));

/// The longest frame the frame table holds (SEND_SLOT_BYTES in sender.bpf.c), FCS excluded.
pub const MAX_FRAME_LEN: usize = 2048;
/// The shortest frame the sender takes: an Ethernet header.
pub const MIN_FRAME_LEN: usize = 14;
/// The most frames one frame table holds (2 KiB of kernel memory each).
pub const MAX_FRAMES: usize = 1 << 18;
/// The kernel's largest live-frames batch (TEST_XDP_MAX_BATCH).
pub const MAX_BATCH: u32 = 256;
/// The batch size used when none is given (the kernel's own default, NAPI_POLL_WEIGHT).
pub const DEFAULT_BATCH: u32 = 64;
/// Frames per `BPF_PROG_RUN` call without a rate limit (about 15-30 ms of sending).
pub const TOP_SPEED_CALL_FRAMES: u32 = 1 << 16;
/// Distinct frames (and source and destination hosts) of [`synthetic_frames`]' default table.
pub const SYNTHETIC_HOSTS: usize = 4096;

const SEND_PROG: &str = "anoncap_send";
const SLOT_LEN: usize = 4 + MAX_FRAME_LEN;
const XDP_MD_LEN: usize = 24;
/// struct send_state: seq, n_frames, sent, aborted, passed (u64), ifindex, pad (u32).
const STATE_LEN: usize = 48;

/// Errors of the sender.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Loading or driving the BPF object failed.
    #[error(transparent)]
    Bpf(#[from] BpfError),
    /// The process is not root.
    #[error(
        "must run as root: BPF_PROG_RUN in live-frames mode needs CAP_SYS_ADMIN (or CAP_BPF \
         and CAP_NET_ADMIN)"
    )]
    NotRoot,
    /// An interface query failed (ENODEV: no such interface in this network namespace).
    #[error("interface {name}: {what}: {}", io::Error::from_raw_os_error(*errno))]
    Interface {
        /// The interface name.
        name: String,
        /// The step that failed.
        what: &'static str,
        /// The errno.
        errno: i32,
    },
    /// The interface is not a veth, whose counters the report relies on.
    #[error(
        "interface {name} is driven by {driver:?}, not veth: the sender's delivered counts \
         come from veth's xdp_xmit counters"
    )]
    NotVeth {
        /// The interface name.
        name: String,
        /// Its driver, as ETHTOOL_GDRVINFO reports it.
        driver: String,
    },
    /// The interface has no counter of that name (a veth of another kernel version?).
    #[error("interface {name} has no ethtool counter {counter}")]
    MissingCounter {
        /// The interface name.
        name: String,
        /// The counter looked for.
        counter: &'static str,
    },
    /// A frame is too short or too long for the frame table.
    #[error("frame {index} is {len} bytes; the sender takes {MIN_FRAME_LEN}..={max} bytes")]
    FrameLength {
        /// Its position among the frames given.
        index: usize,
        /// Its length.
        len: usize,
        /// The longest accepted.
        max: usize,
    },
    /// No frames were given.
    #[error("no frames to send")]
    NoFrames,
    /// More frames than a frame table holds.
    #[error("{n} frames; a frame table holds at most {MAX_FRAMES}")]
    TooManyFrames {
        /// Frames given.
        n: usize,
    },
    /// Invalid options.
    #[error("invalid send options: {0}")]
    Options(String),
    /// Entering a network namespace failed.
    #[error("network namespace {}: {source}", path.display())]
    Netns {
        /// The namespace file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn os(what: &'static str, errno: i32) -> SendError {
    SendError::Bpf(BpfError::Os { what, errno })
}

/// Whether the process runs with effective uid 0.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() == 0 }
}

/// Refuses unless the process is root.
pub fn require_root() -> Result<(), SendError> {
    if running_as_root() {
        Ok(())
    } else {
        Err(SendError::NotRoot)
    }
}

/// Moves the calling thread into network namespace `ns`: a name under /run/netns (as
/// `ip netns add` creates them) or a path (e.g. /proc/PID/ns/net). Call it before creating
/// anything that belongs to a namespace (sockets, interface lookups); BPF objects are not
/// tied to one. Other threads stay where they are.
pub fn enter_netns(ns: &str) -> Result<(), SendError> {
    let path = if ns.contains('/') {
        PathBuf::from(ns)
    } else {
        PathBuf::from("/run/netns").join(ns)
    };
    let file = std::fs::File::open(&path).map_err(|source| SendError::Netns {
        path: path.clone(),
        source,
    })?;
    // SAFETY: setns with a namespace fd that stays open for the call only changes the calling
    // thread's network namespace; no memory is shared with the kernel.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(SendError::Netns {
            path,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// The veth counters of one interface, summed over its queues (see the module doc).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct XmitCounters {
    /// `tx_queue_N_xdp_xmit`: frames redirected into this veth that its peer's ring took.
    pub xdp_xmit: u64,
    /// `tx_queue_N_xdp_xmit_errors`: frames redirected into this veth that its peer refused
    /// (ring full, too long).
    pub xdp_xmit_errors: u64,
}

/// An interface of the calling thread's network namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its index.
    pub ifindex: u32,
    /// Its MTU.
    pub mtu: u32,
    /// Its driver (ETHTOOL_GDRVINFO; empty where the interface has no ethtool support).
    pub driver: String,
}

// Kernel ABI of the ethtool ioctls (include/uapi/linux/ethtool.h).
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
const ETHTOOL_GSTRINGS: u32 = 0x0000_001b;
const ETHTOOL_GSTATS: u32 = 0x0000_001d;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;

/// struct ethtool_drvinfo.
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

const _DRVINFO_SIZE: () = assert!(std::mem::size_of::<EthtoolDrvinfo>() == 196);

/// A socket for interface ioctls, in the namespace of the thread that opened it.
struct IoctlSocket {
    fd: OwnedFd,
}

impl IoctlSocket {
    fn open(name: &str) -> Result<IoctlSocket, SendError> {
        // SAFETY: plain socket(2) call with constant arguments.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(SendError::Interface {
                name: name.to_string(),
                what: "opening an ioctl socket",
                errno: io::Error::last_os_error().raw_os_error().unwrap_or(0),
            });
        }
        // SAFETY: fd was just returned by socket(2) and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(IoctlSocket { fd })
    }

    /// An ifreq naming `name`, or None when the name does not fit IFNAMSIZ.
    fn ifreq(name: &str) -> Option<libc::ifreq> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return None;
        }
        // SAFETY: ifreq is a plain C struct (a name array and a union of integers, arrays and
        // a pointer) for which all-zero bytes are valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, &s) in ifr.ifr_name.iter_mut().zip(bytes) {
            *d = s as libc::c_char;
        }
        Some(ifr)
    }

    /// Runs ioctl `req` with `ifr`; returns the errno on failure.
    fn ioctl(&self, req: libc::c_ulong, ifr: &mut libc::ifreq) -> Result<(), i32> {
        // SAFETY: ifr is a valid, writable ifreq for the call; the requests used here
        // (SIOCGIFINDEX, SIOCGIFMTU, SIOCETHTOOL) read and write only the ifreq and, for
        // SIOCETHTOOL, the buffer its ifru_data points to, which the callers keep alive and
        // size as the ethtool command requires.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), req as _, ifr as *mut libc::ifreq) };
        if rc < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(())
        }
    }

    /// SIOCETHTOOL with `buf` as the command buffer (its first u32 is the command).
    fn ethtool(&self, name: &str, buf: &mut [u8], what: &'static str) -> Result<(), SendError> {
        let err = |errno| SendError::Interface {
            name: name.to_string(),
            what,
            errno,
        };
        let mut ifr = Self::ifreq(name).ok_or_else(|| err(libc::EINVAL))?;
        ifr.ifr_ifru.ifru_data = buf.as_mut_ptr().cast();
        self.ioctl(libc::SIOCETHTOOL, &mut ifr).map_err(err)
    }

    fn stat_names(&self, name: &str, n_stats: u32) -> Result<Vec<String>, SendError> {
        let n = n_stats as usize;
        let mut buf = vec![0u8; 12 + n * ETH_GSTRING_LEN];
        buf[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
        buf[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
        buf[8..12].copy_from_slice(&n_stats.to_ne_bytes());
        self.ethtool(name, &mut buf, "reading the ethtool counter names")?;
        let got = (u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize).min(n);
        Ok(buf[12..12 + got * ETH_GSTRING_LEN]
            .chunks_exact(ETH_GSTRING_LEN)
            .map(|c| {
                let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                String::from_utf8_lossy(&c[..end]).into_owned()
            })
            .collect())
    }

    fn stat_values(&self, name: &str, n_stats: u32) -> Result<Vec<u64>, SendError> {
        let n = n_stats as usize;
        let mut buf = vec![0u8; 8 + n * 8];
        buf[0..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
        buf[4..8].copy_from_slice(&n_stats.to_ne_bytes());
        self.ethtool(name, &mut buf, "reading the ethtool counters")?;
        let got = (u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize).min(n);
        Ok(buf[8..8 + got * 8]
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    fn drvinfo(&self, name: &str) -> Result<(String, u32), SendError> {
        let mut buf = vec![0u8; std::mem::size_of::<EthtoolDrvinfo>()];
        buf[0..4].copy_from_slice(&ETHTOOL_GDRVINFO.to_ne_bytes());
        self.ethtool(name, &mut buf, "reading the driver information")?;
        let drv = &buf[std::mem::offset_of!(EthtoolDrvinfo, driver)..][..32];
        let end = drv.iter().position(|&b| b == 0).unwrap_or(32);
        let driver = String::from_utf8_lossy(&drv[..end]).into_owned();
        let o = std::mem::offset_of!(EthtoolDrvinfo, n_stats);
        let n_stats = u32::from_ne_bytes(buf[o..o + 4].try_into().expect("4 bytes"));
        Ok((driver, n_stats))
    }
}

impl Interface {
    /// Looks `name` up in the calling thread's network namespace (index, MTU, driver).
    pub fn lookup(name: &str) -> Result<Interface, SendError> {
        let sock = IoctlSocket::open(name)?;
        let err = |what, errno| SendError::Interface {
            name: name.to_string(),
            what,
            errno,
        };
        let mut ifr = IoctlSocket::ifreq(name).ok_or_else(|| err("bad name", libc::EINVAL))?;
        sock.ioctl(libc::SIOCGIFINDEX, &mut ifr)
            .map_err(|e| err("looking up the interface", e))?;
        // SAFETY: SIOCGIFINDEX succeeded, so the union holds the index it wrote.
        let ifindex = unsafe { ifr.ifr_ifru.ifru_ifindex } as u32;
        let mut ifr = IoctlSocket::ifreq(name).ok_or_else(|| err("bad name", libc::EINVAL))?;
        sock.ioctl(libc::SIOCGIFMTU, &mut ifr)
            .map_err(|e| err("reading the MTU", e))?;
        // SAFETY: SIOCGIFMTU succeeded, so the union holds the MTU it wrote.
        let mtu = unsafe { ifr.ifr_ifru.ifru_mtu } as u32;
        // Interfaces without ethtool support (lo) have no driver name.
        let driver = match sock.drvinfo(name) {
            Ok((driver, _)) => driver,
            Err(SendError::Interface { errno, .. }) if errno == libc::EOPNOTSUPP => String::new(),
            Err(e) => return Err(e),
        };
        Ok(Interface {
            name: name.to_string(),
            ifindex,
            mtu,
            driver,
        })
    }

    /// Whether the interface is a veth.
    pub fn is_veth(&self) -> bool {
        self.driver == "veth"
    }

    /// The longest frame (FCS excluded) this interface sends: MTU + 14, plus 4 for a frame
    /// whose outer EtherType is an 802.1Q/802.1ad tag (veth itself accepts MTU + 18 for all
    /// frames), and never more than [`MAX_FRAME_LEN`].
    pub fn max_frame_len(&self, frame: &[u8]) -> usize {
        let tagged = matches!(frame.get(12..14), Some([0x81, 0x00] | [0x88, 0xa8]));
        (self.mtu as usize + 14 + if tagged { 4 } else { 0 }).min(MAX_FRAME_LEN)
    }

    /// Whether `frame` is sendable here ([`MIN_FRAME_LEN`]..=[`Interface::max_frame_len`]).
    pub fn fits(&self, frame: &[u8]) -> bool {
        (MIN_FRAME_LEN..=self.max_frame_len(frame)).contains(&frame.len())
    }

    /// All ethtool counters (`ethtool -S`), by name, in the driver's order.
    pub fn ethtool_stats(&self) -> Result<Vec<(String, u64)>, SendError> {
        let sock = IoctlSocket::open(&self.name)?;
        let (_, n) = sock.drvinfo(&self.name)?;
        let names = sock.stat_names(&self.name, n)?;
        let values = sock.stat_values(&self.name, n)?;
        Ok(names.into_iter().zip(values).collect())
    }

    /// The veth transmit counters summed over queues (see the module doc). Fails on an
    /// interface that has none.
    pub fn xmit_counters(&self) -> Result<XmitCounters, SendError> {
        let mut c = XmitCounters::default();
        let (mut seen_xmit, mut seen_err) = (false, false);
        for (name, v) in self.ethtool_stats()? {
            let Some(rest) = name.strip_prefix("tx_queue_") else {
                continue;
            };
            let Some((queue, counter)) = rest.split_once('_') else {
                continue;
            };
            if queue.parse::<u32>().is_err() {
                continue;
            }
            match counter {
                "xdp_xmit" => {
                    c.xdp_xmit += v;
                    seen_xmit = true;
                }
                "xdp_xmit_errors" => {
                    c.xdp_xmit_errors += v;
                    seen_err = true;
                }
                _ => {}
            }
        }
        let missing = |counter| SendError::MissingCounter {
            name: self.name.clone(),
            counter,
        };
        if !seen_xmit {
            return Err(missing("tx_queue_N_xdp_xmit"));
        }
        if !seen_err {
            return Err(missing("tx_queue_N_xdp_xmit_errors"));
        }
        Ok(c)
    }
}

/// The sender program's own counters (struct send_state in sender.bpf.c).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramCounters {
    /// Runs so far (the next frame is `seq % frames`).
    pub seq: u64,
    /// Runs that returned XDP_TX.
    pub sent: u64,
    /// Runs that returned XDP_ABORTED (the frame could not be built).
    pub aborted: u64,
    /// Frames the loopback interface received while the dispatcher guard was on it (passed
    /// untouched).
    pub passed: u64,
}

/// What [`LiveFrameSender::run`] sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendPlan {
    /// Frames to send (None: until `duration`).
    pub count: Option<u64>,
    /// Stop after this long (None: after `count` frames).
    pub duration: Option<Duration>,
    /// Rate limit in frames per second (None: top speed).
    pub pps: Option<u64>,
    /// Frames per kernel batch (1..=[`MAX_BATCH`]); with a rate limit also the frames of each
    /// `BPF_PROG_RUN` call, i.e. the burst size.
    pub batch: u32,
}

impl Default for SendPlan {
    fn default() -> Self {
        SendPlan {
            count: None,
            duration: None,
            pps: None,
            batch: DEFAULT_BATCH,
        }
    }
}

/// The result of [`LiveFrameSender::run`] (see the module doc for the definitions).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SendReport {
    /// Frames asked for (`count` of the plan).
    pub requested: Option<u64>,
    /// Frames the kernel ran the program on (handed to the kernel).
    pub handed: u64,
    /// Of those, frames the program returned XDP_TX for.
    pub transmitted: u64,
    /// Of those, frames the program could not build (XDP_ABORTED; should be 0).
    pub aborted: u64,
    /// Frames the sending veth was handed for its peer: Δ(xdp_xmit + xdp_xmit_errors).
    pub offered: u64,
    /// Frames the receiving veth took in: Δ xdp_xmit.
    pub delivered: u64,
    /// Frames the receiving veth refused (ring full, too long): Δ xdp_xmit_errors.
    pub peer_refused: u64,
    /// Wall time from the first call to the end of the last one.
    pub elapsed: Duration,
    /// `BPF_PROG_RUN` calls made.
    pub calls: u64,
    /// A call was interrupted by a signal (EINTR) and the run stopped early.
    pub interrupted: bool,
}

impl SendReport {
    /// Frames handed to the kernel per second.
    pub fn pps(&self) -> f64 {
        per_second(self.handed, self.elapsed)
    }

    /// Frames delivered per second.
    pub fn delivered_pps(&self) -> f64 {
        per_second(self.delivered, self.elapsed)
    }

    /// Frames the program transmitted that never reached the veth (refused by the redirect:
    /// peer without XDP or GRO, link down, frame too long).
    pub fn lost_before_link(&self) -> u64 {
        self.transmitted.saturating_sub(self.offered)
    }
}

fn per_second(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

impl fmt::Display for SendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.requested {
            Some(r) => writeln!(f, "requested:   {r}")?,
            None => writeln!(f, "requested:   (for a duration)")?,
        }
        writeln!(f, "handed:      {} (to the kernel)", self.handed)?;
        writeln!(
            f,
            "transmitted: {} (XDP_TX; {} aborted)",
            self.transmitted, self.aborted
        )?;
        writeln!(
            f,
            "offered:     {} (reached the link; {} lost before it)",
            self.offered,
            self.lost_before_link()
        )?;
        writeln!(
            f,
            "delivered:   {} (taken in by the peer; {} refused by it)",
            self.delivered, self.peer_refused
        )?;
        writeln!(f, "elapsed:     {:.6} s", self.elapsed.as_secs_f64())?;
        write!(
            f,
            "rate:        {:.0} pps handed, {:.0} pps delivered ({} calls)",
            self.pps(),
            self.delivered_pps(),
            self.calls
        )
    }
}

fn find_prog_fd(obj: &Object, name: &str) -> Result<i32, BpfError> {
    obj.progs()
        .find(|p| p.name() == name)
        .map(|p| p.as_fd().as_raw_fd())
        .ok_or_else(|| BpfError::Layout(format!("no program {name}")))
}

fn find_map<'o>(obj: &'o Object, name: &str) -> Result<libbpf_rs::Map<'o>, BpfError> {
    obj.maps()
        .find(|m| m.name() == name)
        .ok_or_else(|| BpfError::Layout(format!("no map {name}")))
}

/// Opens the sender object with a frame table of `slots` entries and loads it.
fn load_object(slots: u32) -> Result<Object, BpfError> {
    let mut open = ObjectBuilder::default()
        .open_memory(OBJECT)
        .map_err(lib("opening the sender object"))?;
    let mut sized = false;
    for mut m in open.maps_mut() {
        if m.name() == "send_frames" {
            m.set_max_entries(slots)
                .map_err(lib("sizing the frame table"))?;
            sized = true;
        }
    }
    if !sized {
        return Err(BpfError::Layout("no map send_frames".into()));
    }
    open.load().map_err(lib("loading the sender program"))
}

/// Sends frames out of one interface through the XDP transmit path (see the module doc).
pub struct LiveFrameSender {
    obj: Object,
    prog_fd: i32,
    guard: Option<OwnedFd>,
    iface: Interface,
    frames: u32,
    data_in: Vec<u8>,
    ctx_in: [u8; XDP_MD_LEN],
}

impl fmt::Debug for LiveFrameSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveFrameSender")
            .field("iface", &self.iface)
            .field("frames", &self.frames)
            .field("frame_len_in", &self.data_in.len())
            .field("dispatcher_guard", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

impl LiveFrameSender {
    /// Loads the program with `frames` as its frame table (sent in this order, looping).
    /// Every frame must be [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`] bytes (callers filter with
    /// [`Interface::fits`]). `iface` must be an interface of the calling thread's namespace.
    pub fn new<F: AsRef<[u8]>>(iface: &Interface, frames: &[F]) -> Result<Self, SendError> {
        require_root()?;
        if frames.is_empty() {
            return Err(SendError::NoFrames);
        }
        if frames.len() > MAX_FRAMES {
            return Err(SendError::TooManyFrames { n: frames.len() });
        }
        let mut max_len = 0;
        for (index, f) in frames.iter().enumerate() {
            let len = f.as_ref().len();
            if !(MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&len) {
                return Err(SendError::FrameLength {
                    index,
                    len,
                    max: MAX_FRAME_LEN,
                });
            }
            max_len = max_len.max(len);
        }
        let obj = load_object(frames.len() as u32)?;
        let prog_fd = find_prog_fd(&obj, SEND_PROG)?;
        {
            let table = find_map(&obj, "send_frames")?;
            let mut slot = vec![0u8; SLOT_LEN];
            for (i, f) in frames.iter().enumerate() {
                let f = f.as_ref();
                slot[0..4].copy_from_slice(&(f.len() as u32).to_ne_bytes());
                slot[4..4 + f.len()].copy_from_slice(f);
                slot[4 + f.len()..].fill(0);
                table
                    .update(&(i as u32).to_ne_bytes(), &slot, MapFlags::ANY)
                    .map_err(lib("filling the frame table"))?;
            }
        }
        // The live frame starts at the longest frame's length: the program only shrinks it.
        let data_in = vec![0u8; max_len];
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex.
        let mut ctx_in = [0u8; XDP_MD_LEN];
        ctx_in[4..8].copy_from_slice(&(max_len as u32).to_ne_bytes());
        ctx_in[12..16].copy_from_slice(&iface.ifindex.to_ne_bytes());
        // Keep the program in the XDP dispatcher for the sender's life (see sender.bpf.c): a
        // generic-mode link on the loopback interface, whose frames the program passes.
        let guard = Interface::lookup("lo").ok().and_then(|lo| {
            sys::xdp_link_create(prog_fd, lo.ifindex, libbpf_sys::XDP_FLAGS_SKB_MODE).ok()
        });
        let sender = LiveFrameSender {
            obj,
            prog_fd,
            guard,
            iface: iface.clone(),
            frames: frames.len() as u32,
            data_in,
            ctx_in,
        };
        sender.reset()?;
        Ok(sender)
    }

    /// The interface frames leave through.
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// Whether the dispatcher guard is on the loopback interface. Without it (lo already has
    /// an XDP program), every call with more than one frame costs two RCU grace periods
    /// (milliseconds), which limits the rate-limited mode to a few hundred calls a second.
    pub fn has_dispatcher_guard(&self) -> bool {
        self.guard.is_some()
    }

    /// Frames in the frame table.
    pub fn frame_count(&self) -> u32 {
        self.frames
    }

    /// Restarts from the first frame and zeroes the program's counters.
    pub fn reset(&self) -> Result<(), SendError> {
        let mut v = [0u8; STATE_LEN];
        v[8..16].copy_from_slice(&u64::from(self.frames).to_ne_bytes());
        v[40..44].copy_from_slice(&self.iface.ifindex.to_ne_bytes());
        find_map(&self.obj, "send_state")?
            .update(&0u32.to_ne_bytes(), &v, MapFlags::ANY)
            .map_err(lib("resetting the sender state"))?;
        Ok(())
    }

    /// The program's counters.
    pub fn program_counters(&self) -> Result<ProgramCounters, SendError> {
        let v = find_map(&self.obj, "send_state")?
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(lib("reading the sender state"))?
            .ok_or_else(|| BpfError::Layout("send_state has no entry 0".into()))?;
        let u = |o: usize| {
            v.get(o..o + 8)
                .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
        };
        Ok(ProgramCounters {
            seq: u(0),
            sent: u(16),
            aborted: u(24),
            passed: u(32),
        })
    }

    /// One `BPF_PROG_RUN` call in live-frames mode: runs the program `frames` times (the next
    /// `frames` frames of the table), `batch` frames per kernel batch. Returns Ok(false) when a
    /// signal interrupted the call (the program's counters say how many frames went).
    pub fn send(&mut self, frames: u32, batch: u32) -> Result<bool, SendError> {
        if frames == 0 || frames > i32::MAX as u32 {
            return Err(SendError::Options(format!(
                "{frames} frames in one call (1..={})",
                i32::MAX
            )));
        }
        if !(1..=MAX_BATCH).contains(&batch) {
            return Err(SendError::Options(format!(
                "batch {batch} outside 1..={MAX_BATCH}"
            )));
        }
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            data_in: self.data_in.as_ptr().cast(),
            data_size_in: self.data_in.len() as u32,
            ctx_in: self.ctx_in.as_ptr().cast(),
            ctx_size_in: XDP_MD_LEN as u32,
            repeat: frames as i32,
            flags: libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size: batch,
            ..Default::default()
        };
        // SAFETY: prog_fd belongs to self.obj, which lives as long as self; opts is a fully
        // initialised bpf_test_run_opts with sz set, whose data_in/ctx_in point to buffers of
        // the given sizes owned by self and not touched during the call; data_out and ctx_out
        // are null (live-frames mode forbids them), so the kernel writes only opts itself.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog_fd, &mut opts) };
        if rc < 0 {
            if -rc == libc::EINTR {
                return Ok(false);
            }
            return Err(os("BPF_PROG_RUN in live-frames mode", -rc));
        }
        Ok(true)
    }

    /// Sends as `plan` says and reports what happened (see the module doc). Starts from
    /// where the previous run stopped in the frame table.
    pub fn run(&mut self, plan: &SendPlan) -> Result<SendReport, SendError> {
        if plan.count.is_none() && plan.duration.is_none() {
            return Err(SendError::Options(
                "give a frame count or a duration".into(),
            ));
        }
        if plan.pps == Some(0) {
            return Err(SendError::Options("a rate of 0 pps".into()));
        }
        if !(1..=MAX_BATCH).contains(&plan.batch) {
            return Err(SendError::Options(format!(
                "batch {} outside 1..={MAX_BATCH}",
                plan.batch
            )));
        }
        let link0 = self.iface.xmit_counters()?;
        let prog0 = self.program_counters()?;
        let per_call = match plan.pps {
            Some(_) => plan.batch,
            None => TOP_SPEED_CALL_FRAMES,
        };
        let mut pacer = plan.pps.map(|pps| Pacer::new(pps, plan.batch));
        let mut asked = 0u64;
        let mut calls = 0u64;
        let mut interrupted = false;
        let start = Instant::now();
        let deadline = plan.duration.map(|d| start + d);
        loop {
            let mut n = u64::from(per_call);
            if let Some(c) = plan.count {
                n = n.min(c - asked);
            }
            if n == 0 {
                break;
            }
            if let Some(p) = pacer.as_mut() {
                let due = p.due(asked);
                if deadline.is_some_and(|d| due >= d || Instant::now() >= d) {
                    break;
                }
                wait_until(due);
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            calls += 1;
            let done = self.send(n as u32, plan.batch)?;
            asked += n;
            if !done {
                interrupted = true;
                break;
            }
        }
        let elapsed = start.elapsed();
        let prog1 = self.program_counters()?;
        let link1 = self.iface.xmit_counters()?;
        let transmitted = prog1.sent.wrapping_sub(prog0.sent);
        let aborted = prog1.aborted.wrapping_sub(prog0.aborted);
        let delivered = link1.xdp_xmit.wrapping_sub(link0.xdp_xmit);
        let peer_refused = link1.xdp_xmit_errors.wrapping_sub(link0.xdp_xmit_errors);
        Ok(SendReport {
            requested: plan.count,
            handed: transmitted + aborted,
            transmitted,
            aborted,
            offered: delivered + peer_refused,
            delivered,
            peer_refused,
            elapsed,
            calls,
            interrupted,
        })
    }
}

/// Token bucket over batches: frame k is due at origin + k / pps; credit left unused for more
/// than the bucket (two batches, at least 1 ms) is dropped by moving the origin later, so a
/// stall is not followed by a burst longer than the bucket.
struct Pacer {
    pps: u64,
    origin: Instant,
    bucket: Duration,
}

impl Pacer {
    fn new(pps: u64, batch: u32) -> Pacer {
        let two_batches = Duration::from_nanos(2 * u64::from(batch) * 1_000_000_000 / pps);
        Pacer {
            pps,
            origin: Instant::now(),
            bucket: two_batches.max(Duration::from_millis(1)),
        }
    }

    fn at(&self, frame: u64) -> Instant {
        let ns = u128::from(frame) * 1_000_000_000 / u128::from(self.pps);
        self.origin + Duration::from_nanos(ns.min(u64::MAX as u128) as u64)
    }

    /// When the batch starting at frame `frame` may go.
    fn due(&mut self, frame: u64) -> Instant {
        let now = Instant::now();
        let due = self.at(frame);
        if now > due + self.bucket {
            // Behind by more than the bucket: forfeit the excess credit.
            self.origin += now - self.bucket - due;
            return self.at(frame);
        }
        due
    }
}

/// Sleeps, then spins, until `t`.
fn wait_until(t: Instant) {
    const SPIN: Duration = Duration::from_micros(200);
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// RFC 2544 benchmarking addresses (198.18.0.0/15): sources in 198.18.0.0/16, destinations
/// in 198.19.0.0/16.
const SYNTH_SRC_NET: u32 = 0xc612_0000;
const SYNTH_DST_NET: u32 = 0xc613_0000;
/// Locally administered, unicast MACs.
const SYNTH_SRC_MAC: [u8; 6] = [0x02, 0x00, 0xc6, 0x12, 0x00, 0x01];
const SYNTH_DST_MAC: [u8; 6] = [0x02, 0x00, 0xc6, 0x13, 0x00, 0x02];
/// Fills the UDP payload, so a payload byte that reaches a capture file is recognisable.
const SYNTH_PAYLOAD: &[u8] = b"anoncap-send payload ";

fn csum_add(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `hosts` distinct Ethernet/IPv4/UDP frames of `frame_size` bytes on the wire (FCS included:
/// 64 gives 60-byte frames, as RFC 2544 counts sizes). Frame i goes from 198.18.x.y to
/// 198.19.u.v, both hosts a different permutation of i over the /16 (so there are
/// min(hosts, 65536) sources and as many destinations), UDP source port 49152 + i % 16384,
/// destination port 9 (discard), IPv4 identification i, DF, TTL 64, valid IPv4 and UDP
/// checksums, MACs 02:00:c6:12:00:01 -> 02:00:c6:13:00:02 (locally administered). Such
/// frames are for links inside namespaces the caller created, never for a real network.
pub fn synthetic_frames(frame_size: usize, hosts: usize) -> Result<Vec<Vec<u8>>, SendError> {
    let len = frame_size.wrapping_sub(4);
    if !(64..=MAX_FRAME_LEN + 4).contains(&frame_size) {
        return Err(SendError::Options(format!(
            "synthetic frame size {frame_size} outside 64..={} (FCS included)",
            MAX_FRAME_LEN + 4
        )));
    }
    if hosts == 0 || hosts > MAX_FRAMES {
        return Err(SendError::Options(format!(
            "{hosts} synthetic hosts (1..={MAX_FRAMES})"
        )));
    }
    let ip_len = len - 14;
    let udp_len = ip_len - 20;
    let mut out = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let k = i as u32;
        let src = SYNTH_SRC_NET | (k.wrapping_mul(40503) & 0xffff);
        let dst = SYNTH_DST_NET | (k.wrapping_mul(30011).wrapping_add(0x1234) & 0xffff);
        let sport = 49152 + (k % 16384) as u16;
        let dport = 9u16;
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&SYNTH_DST_MAC);
        f[6..12].copy_from_slice(&SYNTH_SRC_MAC);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(k as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src.to_be_bytes());
        ip[16..20].copy_from_slice(&dst.to_be_bytes());
        let c = csum_fold(csum_add(0, ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        for (j, b) in f[42..].iter_mut().enumerate() {
            *b = SYNTH_PAYLOAD[j % SYNTH_PAYLOAD.len()];
        }
        let udp = &mut f[34..42];
        udp[0..2].copy_from_slice(&sport.to_be_bytes());
        udp[2..4].copy_from_slice(&dport.to_be_bytes());
        udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        let mut sum = csum_add(0, &src.to_be_bytes());
        sum = csum_add(sum, &dst.to_be_bytes());
        sum += 17 + udp_len as u32;
        sum = csum_add(sum, &f[34..14 + ip_len]);
        let c = match csum_fold(sum) {
            0 => 0xffff,
            c => c,
        };
        f[40..42].copy_from_slice(&c.to_be_bytes());
        out.push(f);
    }
    Ok(out)
}

/// What a [`Sink`] does with the frames it counts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SinkAction {
    /// XDP_DROP.
    Drop,
    /// XDP_PASS (to the kernel's stack, e.g. for tcpdump).
    Pass,
}

/// Frames and bytes a [`Sink`] saw.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Frames.
    pub frames: u64,
    /// Bytes (whole frames).
    pub bytes: u64,
}

/// A counting XDP receiver (sink_drop / sink_pass of sender.bpf.c) attached natively to an
/// interface through a BPF link; dropping it detaches the program.
pub struct Sink {
    obj: Object,
    _link: OwnedFd,
    ifindex: u32,
    action: SinkAction,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("ifindex", &self.ifindex)
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Loads the sink and attaches it in native mode to `ifindex` (an interface of the
    /// calling thread's namespace that has no XDP program).
    pub fn attach(ifindex: u32, action: SinkAction) -> Result<Sink, SendError> {
        require_root()?;
        let obj = load_object(1)?;
        let name = match action {
            SinkAction::Drop => "sink_drop",
            SinkAction::Pass => "sink_pass",
        };
        let fd = find_prog_fd(&obj, name)?;
        let link = sys::xdp_link_create(fd, ifindex, libbpf_sys::XDP_FLAGS_DRV_MODE)
            .map_err(|errno| os("attaching the sink", errno))?;
        Ok(Sink {
            obj,
            _link: link,
            ifindex,
            action,
        })
    }

    /// Frames and bytes seen so far, summed over CPUs.
    pub fn counters(&self) -> Result<SinkCounters, SendError> {
        let map = find_map(&self.obj, "sink_counters")?;
        let mut out = [0u64; 2];
        for (key, slot) in out.iter_mut().enumerate() {
            let per_cpu = map
                .lookup_percpu(&(key as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(lib("reading the sink counters"))?
                .unwrap_or_default();
            *slot = per_cpu
                .iter()
                .filter_map(|b| b.get(..8))
                .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
                .sum();
        }
        Ok(SinkCounters {
            frames: out[0],
            bytes: out[1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Internet checksum over `b`, written independently of csum_add/csum_fold: the sum of a
    /// valid header including its checksum folds to 0xffff.
    fn sums_to_ffff(b: &[u8]) -> bool {
        let mut s: u64 = 0;
        for i in (0..b.len()).step_by(2) {
            let hi = b[i] as u64;
            let lo = b.get(i + 1).copied().unwrap_or(0) as u64;
            s += hi << 8 | lo;
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s == 0xffff
    }

    #[test]
    fn synthetic_frames_are_valid_and_varied() {
        for size in [64usize, 128, 1518] {
            let frames = synthetic_frames(size, SYNTHETIC_HOSTS).expect("frames");
            assert_eq!(frames.len(), SYNTHETIC_HOSTS);
            let mut srcs = std::collections::BTreeSet::new();
            let mut dsts = std::collections::BTreeSet::new();
            for f in &frames {
                assert_eq!(f.len(), size - 4);
                assert_eq!(
                    f[0] & 0x03,
                    0x02,
                    "destination MAC locally administered unicast"
                );
                assert_eq!(f[6] & 0x03, 0x02, "source MAC locally administered unicast");
                assert_eq!(&f[12..14], &[0x08, 0x00]);
                assert!(sums_to_ffff(&f[14..34]), "IPv4 header checksum");
                assert_eq!(u16::from_be_bytes([f[16], f[17]]) as usize, size - 4 - 14);
                let src = u32::from_be_bytes(f[26..30].try_into().unwrap());
                let dst = u32::from_be_bytes(f[30..34].try_into().unwrap());
                assert_eq!(src >> 17, 0xc612 >> 1, "source in 198.18.0.0/15");
                assert_eq!(dst >> 17, 0xc612 >> 1, "destination in 198.18.0.0/15");
                srcs.insert(src);
                dsts.insert(dst);
                let mut pseudo = f[26..34].to_vec();
                pseudo.extend_from_slice(&[0, 17]);
                pseudo.extend_from_slice(&f[38..40]);
                pseudo.extend_from_slice(&f[34..]);
                assert!(sums_to_ffff(&pseudo), "UDP checksum");
            }
            assert_eq!(srcs.len(), SYNTHETIC_HOSTS);
            assert_eq!(dsts.len(), SYNTHETIC_HOSTS);
        }
    }

    #[test]
    fn synthetic_sizes_are_checked() {
        assert!(synthetic_frames(63, 1).is_err());
        assert!(synthetic_frames(MAX_FRAME_LEN + 5, 1).is_err());
        assert!(synthetic_frames(64, 0).is_err());
    }

    #[test]
    fn max_frame_len_allows_a_tag() {
        let i = Interface {
            name: "x".into(),
            ifindex: 1,
            mtu: 1500,
            driver: "veth".into(),
        };
        let mut f = vec![0u8; 1518];
        f[12] = 0x08;
        assert!(!i.fits(&f));
        assert!(i.fits(&f[..1514]));
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        assert!(i.fits(&f));
        assert!(!i.fits(&f[..13]));
    }

    #[test]
    fn pacer_schedule_and_forfeit() {
        let mut p = Pacer::new(1000, 10);
        let t0 = p.origin;
        assert_eq!(p.due(0), t0);
        assert_eq!(p.at(500), t0 + Duration::from_millis(500));
        // Pretend the schedule started 1 s ago: frame 10 was due 990 ms ago, far beyond the
        // 20 ms bucket, so that credit is forfeited: it is due one bucket ago, and the
        // following frames keep the rate from there.
        p.origin -= Duration::from_secs(1);
        let before = Instant::now();
        let due = p.due(10);
        let after = Instant::now();
        assert!(
            due + p.bucket >= before && due + p.bucket <= after,
            "{due:?}"
        );
        assert_eq!(p.due(20), due + Duration::from_millis(10));
    }
}
