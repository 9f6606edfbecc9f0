//! The XDP program that cuts frames to their headers in the kernel, and its loader.
//!
//! The C program (src/bpf/anoncap.h) runs on every frame of an interface: frames of a queue
//! without an AF_XDP socket in its XSKMAP pass to the kernel untouched; the others are walked
//! to the end of their L2-L4 headers (within fixed depth limits), prefiltered, cut with
//! `bpf_xdp_adjust_tail`, given a [`XdpMeta`] block with `bpf_xdp_adjust_meta` and redirected
//! to the socket. Where the walk stops early the frame keeps `snap_len` bytes and
//! [`flags::REPARSE`]; user space always re-applies the full rewriter. See docs/xdp.md.
#![deny(unsafe_code)]

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder};

pub mod sender;
mod sys;

/// The generic program object (kernel CLOCK_TAI timestamps), as compiled by build.rs.
pub const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/anoncap.bpf.o"));
/// The device-bound program object (device RX timestamp when the driver gives one).
pub const DEVBOUND_OBJECT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/anoncap_devbound.bpf.o"));
/// Path of the compiled generic object in the build directory (for tools such as bpftool).
pub const OBJECT_PATH: &str = concat!(env!("OUT_DIR"), "/anoncap.bpf.o");

/// The skeletons libbpf-cargo generated for both objects (typed views of their maps, programs
/// and .rodata types).
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks
)]
#[allow(unsafe_code, non_camel_case_types, non_snake_case, dead_code, unused)]
pub mod skel {
    include!(concat!(env!("OUT_DIR"), "/anoncap.skel.rs"));
    /// The device-bound object's skeleton.
    pub mod devbound {
        include!(concat!(env!("OUT_DIR"), "/anoncap_devbound.skel.rs"));
    }
}

/// Errors of loading, attaching and driving the XDP program.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// libbpf failed (open, load, map access); `what` says which step.
    #[error("{what}: {source}")]
    Libbpf {
        /// The step that failed.
        what: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// A kernel call failed with an errno.
    #[error("{what}: {}", std::io::Error::from_raw_os_error(*errno))]
    Os {
        /// The step that failed.
        what: &'static str,
        /// The errno.
        errno: i32,
    },
    /// The interface already has an XDP program and `force` was not given.
    #[error("interface {ifindex} already has XDP program id {prog_id} (use force to replace it)")]
    AlreadyAttached {
        /// The interface.
        ifindex: u32,
        /// The attached program's id.
        prog_id: u32,
    },
    /// The options are invalid.
    #[error("invalid XDP program options: {0}")]
    Options(String),
    /// The object does not have the layout the loader expects (build mismatch).
    #[error("XDP object layout mismatch: {0}")]
    Layout(String),
    /// A test-mode program (XDP_TX instead of redirect) must never be attached.
    #[error("a test-mode XDP program cannot be attached to an interface")]
    TestMode,
}

fn lib(what: &'static str) -> impl FnOnce(libbpf_rs::Error) -> BpfError {
    move |source| BpfError::Libbpf { what, source }
}

/// Length of the metadata block in front of each redirected frame.
pub const META_LEN: usize = 24;

/// Per-frame flag bits of [`XdpMeta::flags`] (mirror of ANONCAP_F_* in meta.h).
pub mod flags {
    /// The in-kernel walk stopped early; the frame keeps the snap length: parse fully.
    pub const REPARSE: u32 = 1 << 0;
    /// The program shortened the frame.
    pub const TRUNCATED: u32 = 1 << 1;
    /// The frame arrived in several buffers (jumbo, xdp.frags).
    pub const MULTI_BUFFER: u32 = 1 << 2;
    /// The timestamp is the device RX timestamp, not the kernel CLOCK_TAI.
    pub const HW_TIMESTAMP: u32 = 1 << 3;
    /// At least one VLAN tag was seen.
    pub const VLAN: u32 = 1 << 4;
    /// An MPLS label stack was seen.
    pub const MPLS: u32 = 1 << 5;
    /// IPv4 network header.
    pub const IPV4: u32 = 1 << 6;
    /// IPv6 network header.
    pub const IPV6: u32 = 1 << 7;
    /// TCP header, ending at `hdr_len`.
    pub const TCP: u32 = 1 << 8;
    /// UDP header, ending at `hdr_len`.
    pub const UDP: u32 = 1 << 9;
    /// Non-first IP fragment (cut after the IP headers).
    pub const FRAGMENT: u32 = 1 << 10;
    /// The prefilter could not decide; user space must apply its filter.
    pub const FILTER_UNDECIDED: u32 = 1 << 11;
}

/// The metadata block (struct anoncap_meta in src/bpf/meta.h).
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct XdpMeta {
    /// Kernel CLOCK_TAI at the hook, in ns (or the device timestamp with HW_TIMESTAMP).
    pub tai_ns: u64,
    /// Length on the wire, all buffers included.
    pub wire_len: u32,
    /// [`flags`] bits.
    pub flags: u32,
    /// Length of the frame after the cut (the bytes following the block).
    pub hdr_len: u32,
    /// RX queue of the frame.
    pub rx_queue: u32,
}

const _META_SIZE: () = assert!(std::mem::size_of::<XdpMeta>() == META_LEN);
const _META_ALIGN4: () = assert!(META_LEN % 4 == 0 && META_LEN <= 32);

impl XdpMeta {
    /// Reads the block from the first [`META_LEN`] bytes of `b` (native byte order).
    pub fn from_bytes(b: &[u8]) -> Option<XdpMeta> {
        let b = b.get(..META_LEN)?;
        let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        Some(XdpMeta {
            tai_ns: u64::from_ne_bytes(b[0..8].try_into().ok()?),
            wire_len: u32_at(8),
            flags: u32_at(12),
            hdr_len: u32_at(16),
            rx_queue: u32_at(20),
        })
    }

    /// The timestamp in UTC ns since the epoch, given [`tai_offset_ns`]'s value (device
    /// timestamps are returned as the driver gave them).
    pub fn utc_ns(&self, tai_offset_ns: i64) -> i64 {
        if self.flags & flags::HW_TIMESTAMP != 0 {
            self.tai_ns as i64
        } else {
            self.tai_ns as i64 + tai_offset_ns
        }
    }
}

/// The in-kernel prefilter. Each empty set accepts all; a frame must match every non-empty
/// one. Rejected frames pass to the kernel untouched (counted as `pass_filtered`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prefilter {
    /// IP protocol numbers (after IPv6 extension headers).
    pub protocols: BTreeSet<u8>,
    /// TCP/UDP ports, source or destination.
    pub ports: BTreeSet<u16>,
    /// VLAN ids of the outermost tag.
    pub vlans: BTreeSet<u16>,
}

/// Where the program's timestamps come from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClockSource {
    /// Kernel CLOCK_TAI at the XDP hook (convert with [`tai_offset_ns`]).
    KernelTai,
    /// The device RX timestamp where the driver gives a non-zero one, per frame
    /// ([`flags::HW_TIMESTAMP`]), kernel CLOCK_TAI otherwise.
    DeviceRxOrKernelTai,
}

/// UDP ports whose payload user space decodes as a tunnel (never cut exactly in the kernel).
pub const DEFAULT_REPARSE_UDP_PORTS: [u16; 12] = [
    1701, // L2TP
    2123, // GTP-C
    2152, // GTP-U
    3544, // Teredo
    4500, // IPsec NAT-T (ESP in UDP)
    4754, // GRE in UDP
    4789, // VXLAN
    4790, // VXLAN-GPE
    5246, // CAPWAP control
    6081, // Geneve
    6635, // MPLS in UDP
    8472, // Linux VXLAN (legacy port)
];

/// Options of [`XdpProgram::load`].
#[derive(Clone, Debug)]
pub struct ProgramOptions {
    /// The prefilter.
    pub prefilter: Prefilter,
    /// Load the device-bound object for this interface (device RX timestamps).
    pub device_bound_ifindex: Option<u32>,
    /// Bytes kept when the walk stops early (64..=2048; default 256).
    pub snap_len: u32,
    /// Size of the XSKMAP (highest queue index + 1; default 64).
    pub max_queues: u32,
    /// UDP ports treated as tunnels (REPARSE): must include every port user space decodes.
    pub reparse_udp_ports: BTreeSet<u16>,
    /// For BPF_PROG_RUN tests only: skip the socket check and return XDP_TX instead of
    /// redirecting. Such a program refuses to attach.
    pub test_mode: bool,
}

impl Default for ProgramOptions {
    fn default() -> Self {
        ProgramOptions {
            prefilter: Prefilter::default(),
            device_bound_ifindex: None,
            snap_len: 256,
            max_queues: 64,
            reparse_udp_ports: DEFAULT_REPARSE_UDP_PORTS.into_iter().collect(),
            test_mode: false,
        }
    }
}

/// How the program is attached.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (XDP_FLAGS_DRV_MODE).
    Native,
    /// In the generic skb path (XDP_FLAGS_SKB_MODE).
    Generic,
    /// Native, falling back to generic; the [`Attachment`] reports which one was used.
    Auto,
}

/// The per-CPU counters, summed over CPUs (slots of enum anoncap_counter in meta.h).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramCounters {
    /// Frames on a queue with a socket.
    pub seen: u64,
    /// Passed untouched: no socket on their queue.
    pub pass_no_socket: u64,
    /// Passed untouched: rejected by the prefilter.
    pub pass_filtered: u64,
    /// Handed to the redirect.
    pub redirected: u64,
    /// Dropped: the socket vanished between lookup and redirect.
    pub redirect_missed: u64,
    /// Shortened by the cut.
    pub truncated: u64,
    /// The walk stopped early (REPARSE).
    pub unparsed: u64,
    /// bpf_xdp_adjust_meta failed (passed untouched).
    pub meta_failed: u64,
    /// bpf_xdp_adjust_tail failed (kept whole).
    pub tail_failed: u64,
    /// Multi-buffer frames.
    pub multi_buffer: u64,
    /// Frames with a device RX timestamp.
    pub hw_timestamp: u64,
    /// Captured because the prefilter could not decide.
    pub filter_undecided: u64,
}

const COUNTER_SLOTS: usize = 12;

impl ProgramCounters {
    /// Frames passed to the kernel (no socket, or filtered).
    pub fn passed(&self) -> u64 {
        self.pass_no_socket + self.pass_filtered
    }

    fn from_slots(s: &[u64; COUNTER_SLOTS]) -> Self {
        ProgramCounters {
            seen: s[0],
            pass_no_socket: s[1],
            pass_filtered: s[2],
            redirected: s[3],
            redirect_missed: s[4],
            truncated: s[5],
            unparsed: s[6],
            meta_failed: s[7],
            tail_failed: s[8],
            multi_buffer: s[9],
            hw_timestamp: s[10],
            filter_undecided: s[11],
        }
    }
}

/// Byte layout of struct anoncap_config (meta.h).
mod cfg {
    pub const SNAP_LEN: usize = 0;
    pub const TEST_MODE: usize = 4;
    pub const FILTER_PROTOCOLS: usize = 8;
    pub const FILTER_PORTS: usize = 12;
    pub const FILTER_VLANS: usize = 16;
    pub const PROTOCOLS: usize = 24;
    pub const VLANS: usize = PROTOCOLS + 8 * 4;
    pub const PORTS: usize = VLANS + 128 * 4;
    pub const REPARSE_UDP_PORTS: usize = PORTS + 2048 * 4;
    pub const SIZE: usize = REPARSE_UDP_PORTS + 2048 * 4;
}

const _CFG_SIZE: () = assert!(cfg::SIZE == 16952);

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

fn set_bit(buf: &mut [u8], base: usize, v: u32) {
    let off = base + (v as usize >> 5) * 4;
    let w = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) | 1 << (v & 31);
    put_u32(buf, off, w);
}

fn config_bytes(o: &ProgramOptions) -> Vec<u8> {
    let mut b = vec![0u8; cfg::SIZE];
    put_u32(&mut b, cfg::SNAP_LEN, o.snap_len);
    put_u32(&mut b, cfg::TEST_MODE, o.test_mode as u32);
    let p = &o.prefilter;
    put_u32(
        &mut b,
        cfg::FILTER_PROTOCOLS,
        !p.protocols.is_empty() as u32,
    );
    put_u32(&mut b, cfg::FILTER_PORTS, !p.ports.is_empty() as u32);
    put_u32(&mut b, cfg::FILTER_VLANS, !p.vlans.is_empty() as u32);
    for &v in &p.protocols {
        set_bit(&mut b, cfg::PROTOCOLS, v.into());
    }
    for &v in &p.vlans {
        set_bit(&mut b, cfg::VLANS, u32::from(v) & 0xfff);
    }
    for &v in &p.ports {
        set_bit(&mut b, cfg::PORTS, v.into());
    }
    for &v in &o.reparse_udp_ports {
        set_bit(&mut b, cfg::REPARSE_UDP_PORTS, v.into());
    }
    b
}

const PROG_NAME: &str = "anoncap_xdp_prog";

/// The loaded XDP program and its maps.
pub struct XdpProgram {
    obj: Object,
    clock: ClockSource,
    test_mode: bool,
    device_bound_ifindex: Option<u32>,
}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram")
            .field("clock", &self.clock)
            .field("test_mode", &self.test_mode)
            .finish_non_exhaustive()
    }
}

/// The result of one [`XdpProgram::test_run`].
#[derive(Clone, Debug)]
pub struct TestRunOutput {
    /// The XDP action the program returned.
    pub action: u32,
    /// The metadata block, when the program wrote one.
    pub meta: Option<XdpMeta>,
    /// The frame after the program (metadata removed).
    pub frame: Vec<u8>,
}

/// XDP actions.
pub mod action {
    /// XDP_DROP.
    pub const DROP: u32 = 1;
    /// XDP_PASS.
    pub const PASS: u32 = 2;
    /// XDP_TX (returned by a test-mode program where it would redirect).
    pub const TX: u32 = 3;
    /// XDP_REDIRECT.
    pub const REDIRECT: u32 = 4;
}

impl XdpProgram {
    /// Opens the object, writes the configuration into its .rodata and loads it through the
    /// verifier.
    pub fn load(options: &ProgramOptions) -> Result<XdpProgram, BpfError> {
        if !(64..=2048).contains(&options.snap_len) {
            return Err(BpfError::Options(format!(
                "snap_len {} outside 64..=2048",
                options.snap_len
            )));
        }
        if options.max_queues == 0 {
            return Err(BpfError::Options("max_queues must be at least 1".into()));
        }
        let bytes = if options.device_bound_ifindex.is_some() {
            DEVBOUND_OBJECT
        } else {
            OBJECT
        };
        let mut open = ObjectBuilder::default()
            .open_memory(bytes)
            .map_err(lib("opening the XDP object"))?;
        let config = config_bytes(options);
        let mut found_rodata = false;
        for mut m in open.maps_mut() {
            let name = m.name().to_string_lossy().into_owned();
            if name.ends_with(".rodata") {
                let Some(init) = m.initial_value_mut() else {
                    return Err(BpfError::Layout(".rodata has no initial value".into()));
                };
                if init.len() != config.len() {
                    return Err(BpfError::Layout(format!(
                        ".rodata is {} bytes, the loader writes {}",
                        init.len(),
                        config.len()
                    )));
                }
                init.copy_from_slice(&config);
                found_rodata = true;
            } else if name == "xsks_map" {
                m.set_max_entries(options.max_queues)
                    .map_err(lib("sizing the XSKMAP"))?;
            }
        }
        if !found_rodata {
            return Err(BpfError::Layout("no .rodata map".into()));
        }
        if let Some(ifindex) = options.device_bound_ifindex {
            for mut p in open.progs_mut() {
                p.set_ifindex(ifindex);
                p.set_flags(
                    libbpf_rs::libbpf_sys::BPF_F_XDP_HAS_FRAGS
                        | libbpf_rs::libbpf_sys::BPF_F_XDP_DEV_BOUND_ONLY,
                );
            }
        }
        let obj = open.load().map_err(lib("loading the XDP program"))?;
        let prog = XdpProgram {
            obj,
            clock: if options.device_bound_ifindex.is_some() {
                ClockSource::DeviceRxOrKernelTai
            } else {
                ClockSource::KernelTai
            },
            test_mode: options.test_mode,
            device_bound_ifindex: options.device_bound_ifindex,
        };
        prog.prog_fd()?;
        Ok(prog)
    }

    /// Where this program's timestamps come from.
    pub fn clock_source(&self) -> ClockSource {
        self.clock
    }

    fn prog_fd(&self) -> Result<i32, BpfError> {
        self.obj
            .progs()
            .find(|p| p.name() == PROG_NAME)
            .map(|p| p.as_fd().as_raw_fd())
            .ok_or_else(|| BpfError::Layout(format!("no program {PROG_NAME}")))
    }

    fn map(&self, name: &str) -> Result<libbpf_rs::Map<'_>, BpfError> {
        self.obj
            .maps()
            .find(|m| m.name() == name)
            .ok_or_else(|| BpfError::Layout(format!("no map {name}")))
    }

    /// Attaches the program to `ifindex` through a bpf_link (removed if the process dies).
    /// Refuses when the interface already has an XDP program, unless `force`, which detaches
    /// it first.
    pub fn attach(
        &self,
        ifindex: u32,
        mode: AttachMode,
        force: bool,
    ) -> Result<Attachment, BpfError> {
        if self.test_mode {
            return Err(BpfError::TestMode);
        }
        if let Some(bound) = self.device_bound_ifindex {
            if bound != ifindex {
                return Err(BpfError::Options(format!(
                    "program is bound to interface {bound}, not {ifindex}"
                )));
            }
        }
        let existing = attached_prog_id(ifindex)?;
        if existing != 0 {
            if !force {
                return Err(BpfError::AlreadyAttached {
                    ifindex,
                    prog_id: existing,
                });
            }
            detach_existing(ifindex)?;
        }
        let fd = self.prog_fd()?;
        let try_mode = |m: AttachMode| {
            let flags = match m {
                AttachMode::Generic => libbpf_rs::libbpf_sys::XDP_FLAGS_SKB_MODE,
                _ => libbpf_rs::libbpf_sys::XDP_FLAGS_DRV_MODE,
            };
            sys::xdp_link_create(fd, ifindex, flags)
        };
        let (link, used) = match mode {
            AttachMode::Auto => match try_mode(AttachMode::Native) {
                Ok(l) => (l, AttachMode::Native),
                Err(_) => (
                    try_mode(AttachMode::Generic).map_err(|errno| BpfError::Os {
                        what: "attaching the XDP program (generic fallback)",
                        errno,
                    })?,
                    AttachMode::Generic,
                ),
            },
            m => (
                try_mode(m).map_err(|errno| BpfError::Os {
                    what: "attaching the XDP program",
                    errno,
                })?,
                m,
            ),
        };
        Ok(Attachment {
            mode: used,
            ifindex,
            _link: link,
        })
    }

    /// Puts an AF_XDP socket fd into the XSKMAP slot of `queue`.
    pub fn register_socket(&self, queue: u32, xsk_fd: i32) -> Result<(), BpfError> {
        self.map("xsks_map")?
            .update(&queue.to_ne_bytes(), &xsk_fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(lib("registering the AF_XDP socket"))
    }

    /// Removes the socket of `queue` from the XSKMAP.
    pub fn unregister_socket(&self, queue: u32) -> Result<(), BpfError> {
        self.map("xsks_map")?
            .delete(&queue.to_ne_bytes())
            .map_err(lib("unregistering the AF_XDP socket"))
    }

    /// The per-CPU counters summed over CPUs.
    pub fn counters(&self) -> Result<ProgramCounters, BpfError> {
        let per_cpu = self
            .map("counters")?
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(lib("reading the counters"))?
            .unwrap_or_default();
        let mut slots = [0u64; COUNTER_SLOTS];
        for cpu in per_cpu {
            for (i, slot) in slots.iter_mut().enumerate() {
                if let Some(b) = cpu.get(i * 8..i * 8 + 8) {
                    *slot += u64::from_ne_bytes(b.try_into().expect("8 bytes"));
                }
            }
        }
        Ok(ProgramCounters::from_slots(&slots))
    }

    /// Runs the program once over `frame` with BPF_PROG_RUN (queue 0, no interface).
    pub fn test_run(&self, frame: &[u8]) -> Result<TestRunOutput, BpfError> {
        let prog = self
            .obj
            .progs_mut()
            .find(|p| p.name() == PROG_NAME)
            .ok_or_else(|| BpfError::Layout(format!("no program {PROG_NAME}")))?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex.
        let mut ctx_in = [0u8; 24];
        ctx_in[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        let mut ctx_out = [0u8; 24];
        let mut data_out = vec![0u8; frame.len() + META_LEN + 64];
        let input = libbpf_rs::ProgramInput {
            data_in: Some(frame),
            context_in: Some(&mut ctx_in),
            context_out: Some(&mut ctx_out),
            data_out: Some(&mut data_out),
            ..Default::default()
        };
        let out = prog.test_run(input).map_err(lib("BPF_PROG_RUN"))?;
        let action = out.return_value;
        let out_len = out.data.as_ref().map_or(0, |d| d.len());
        let meta_len = u32::from_ne_bytes(ctx_out[0..4].try_into().expect("4 bytes")) as usize;
        let out_len = out_len.min(data_out.len());
        let meta = if meta_len >= META_LEN {
            XdpMeta::from_bytes(&data_out[..meta_len])
        } else {
            None
        };
        let frame = data_out[meta_len.min(out_len)..out_len].to_vec();
        Ok(TestRunOutput {
            action,
            meta,
            frame,
        })
    }
}

fn attached_prog_id(ifindex: u32) -> Result<u32, BpfError> {
    let (any, drv, skb) = attached_prog_ids(ifindex)?;
    Ok(any.max(drv).max(skb))
}

/// The programs attached to `ifindex` in this namespace: (any, driver, generic).
fn attached_prog_ids(ifindex: u32) -> Result<(u32, u32, u32), BpfError> {
    let dummy = std::fs::File::open("/dev/null").map_err(|e| BpfError::Os {
        what: "opening /dev/null",
        errno: e.raw_os_error().unwrap_or(0),
    })?;
    let xdp = libbpf_rs::Xdp::new(dummy.as_fd());
    let opts = xdp
        .query(ifindex as i32, libbpf_rs::XdpFlags::NONE)
        .map_err(lib("querying the interface's XDP program"))?;
    Ok((opts.prog_id, opts.drv_prog_id, opts.skb_prog_id))
}

fn detach_existing(ifindex: u32) -> Result<(), BpfError> {
    // A link-attached program: detach its link. Links are listed for every network namespace
    // and carry only the ifindex, which other namespaces reuse: a link is ours only if it also
    // holds the program that netlink, which answers for this namespace, says is attached here.
    let (any, drv, skb) = attached_prog_ids(ifindex)?;
    let here = [any, drv, skb];
    for info in libbpf_rs::query::LinkInfoIter::default() {
        if let libbpf_rs::query::LinkTypeInfo::Xdp(x) = &info.info {
            if x.ifindex == ifindex && info.prog_id != 0 && here.contains(&info.prog_id) {
                sys::link_detach_by_id(info.id).map_err(|errno| BpfError::Os {
                    what: "detaching the existing XDP link",
                    errno,
                })?;
            }
        }
    }
    if attached_prog_id(ifindex)? == 0 {
        return Ok(());
    }
    // A netlink-attached program.
    let dummy = std::fs::File::open("/dev/null").map_err(|e| BpfError::Os {
        what: "opening /dev/null",
        errno: e.raw_os_error().unwrap_or(0),
    })?;
    let xdp = libbpf_rs::Xdp::new(dummy.as_fd());
    for f in [
        libbpf_rs::XdpFlags::NONE,
        libbpf_rs::XdpFlags::SKB_MODE,
        libbpf_rs::XdpFlags::DRV_MODE,
    ] {
        let _ = xdp.detach(ifindex as i32, f);
    }
    match attached_prog_id(ifindex)? {
        0 => Ok(()),
        prog_id => Err(BpfError::AlreadyAttached { ifindex, prog_id }),
    }
}

/// An attached program; dropping it detaches the program (closes its link).
#[derive(Debug)]
pub struct Attachment {
    /// The mode actually used.
    pub mode: AttachMode,
    /// The interface.
    pub ifindex: u32,
    _link: OwnedFd,
}

/// CLOCK_REALTIME - CLOCK_TAI in ns, measured now (add it to a TAI timestamp to get UTC).
/// Takes the tightest of several realtime/TAI/realtime samples.
pub fn tai_offset_ns() -> i64 {
    let mut best: Option<(i128, i128)> = None;
    for _ in 0..8 {
        let r1 = sys::clock_ns(libc::CLOCK_REALTIME);
        let t = sys::clock_ns(libc::CLOCK_TAI);
        let r2 = sys::clock_ns(libc::CLOCK_REALTIME);
        let width = r2 - r1;
        let off = (r1 + r2) / 2 - t;
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, off));
        }
    }
    best.map_or(0, |(_, off)| off as i64)
}
