//! The XDP program on the capture interfaces: one per interface, loaded from the `bpf` crate,
//! each socket of the interface registered in its XSKMAP, attached through a bpf_link (so the
//! kernel removes it if the process dies), and detached before the pipeline drains.
//!
//! The program cuts each frame to its L2-L4 headers in the kernel and writes a
//! [`bpf::XdpMeta`] block in front of it (CLOCK_TAI at the hook, wire length, flags);
//! [`ANONCAP_META`] tells the receive loop how to read it.

#![allow(unsafe_code)]

use std::sync::Mutex;

use bpf::{AttachMode, Attachment, BpfError, ProgramCounters, ProgramOptions, XdpMeta, XdpProgram};

use super::pipeline::{FrameMeta, MetaFormat};
use super::sys;
use super::xsk::XskQueue;

/// The metadata layout of the `bpf` crate's program.
pub const ANONCAP_META: MetaFormat = MetaFormat {
    len: bpf::META_LEN,
    parse: parse_meta,
};

fn parse_meta(b: &[u8]) -> Option<FrameMeta> {
    let m = XdpMeta::from_bytes(b)?;
    // A block the program did not write (a frame redirected by another program) would not
    // carry a plausible length; such frames are stamped in user space instead.
    if m.wire_len == 0 || m.hdr_len > m.wire_len {
        return None;
    }
    Some(FrameMeta {
        ns: m.tai_ns,
        wire_len: m.wire_len,
        device_time: m.flags & bpf::flags::HW_TIMESTAMP != 0,
    })
}

/// Errors of setting up the program on an interface.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    /// The interface does not exist.
    #[error("no such interface: {0}")]
    NoInterface(String),
    /// Loading, registering or attaching failed (the cause is the source).
    #[error("{iface}")]
    Bpf {
        /// The interface.
        iface: String,
        /// What the loader said.
        #[source]
        source: BpfError,
    },
}

fn if_index(iface: &str) -> Option<u32> {
    let name = std::ffi::CString::new(iface).ok()?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call; if_nametoindex only
    // reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// What the program of one interface is doing.
#[derive(Debug)]
struct Entry {
    iface: String,
    port: u8,
    program: XdpProgram,
    mode: AttachMode,
    attachment: Mutex<Option<Attachment>>,
}

/// The programs attached to every capture interface.
#[derive(Debug, Default)]
pub struct XdpPrograms {
    entries: Vec<Entry>,
}

/// How the programs are loaded and attached.
#[derive(Clone, Debug)]
pub struct ProgramSetup {
    /// Options of the program (prefilter, snap length of frames it cannot walk).
    pub options: ProgramOptions,
    /// Native, generic, or native with a generic fallback.
    pub mode: AttachMode,
    /// Replace a program already on the interface.
    pub force: bool,
    /// Load the device-bound variant (device RX timestamps where the driver gives them).
    pub device_timestamps: bool,
}

impl XdpPrograms {
    /// Loads one program per interface (`ifaces[port]`), registers each socket of that
    /// interface in its XSKMAP, then attaches it. Sockets must be bound without libxdp's own
    /// program (`XskConfig::libxdp_program: false`).
    pub fn attach(
        ifaces: &[String],
        sockets: &[(u8, &XskQueue)],
        setup: &ProgramSetup,
    ) -> Result<XdpPrograms, ProgramError> {
        let mut entries = vec![];
        for (port, iface) in ifaces.iter().enumerate() {
            let port = port as u8;
            // By name through the kernel (not sysfs, which shows the namespace it was mounted
            // in, not the calling thread's).
            let ifindex =
                if_index(iface).ok_or_else(|| ProgramError::NoInterface(iface.clone()))?;
            let bpf_err = |source| ProgramError::Bpf {
                iface: iface.clone(),
                source,
            };
            let highest = sockets
                .iter()
                .filter(|(p, _)| *p == port)
                .map(|(_, x)| x.queue() + 1)
                .max()
                .unwrap_or(1);
            let queues = sys::rx_queue_count(iface).unwrap_or(1);
            let mut options = setup.options.clone();
            options.max_queues = options.max_queues.max(queues).max(highest);
            options.device_bound_ifindex = setup.device_timestamps.then_some(ifindex);
            let program = XdpProgram::load(&options).map_err(bpf_err)?;
            // Sockets first: from the moment the program is attached, frames of a queue with
            // a socket go to it.
            for (p, xsk) in sockets {
                if *p == port {
                    program
                        .register_socket(xsk.queue(), xsk.fd())
                        .map_err(bpf_err)?;
                }
            }
            let attachment = program
                .attach(ifindex, setup.mode, setup.force)
                .map_err(bpf_err)?;
            entries.push(Entry {
                iface: iface.clone(),
                port,
                program,
                mode: attachment.mode,
                attachment: Mutex::new(Some(attachment)),
            });
        }
        Ok(XdpPrograms { entries })
    }

    /// The attach mode used on each interface (native, or generic where native failed).
    pub fn modes(&self) -> Vec<(String, AttachMode)> {
        self.entries
            .iter()
            .map(|e| (e.iface.clone(), e.mode))
            .collect()
    }

    /// The clock of the timestamps, for the file metadata.
    pub fn clock_source(&self) -> Option<bpf::ClockSource> {
        self.entries.first().map(|e| e.program.clock_source())
    }

    /// Frames of interface `port` that the program took and could not hand to a socket
    /// (the metadata could not be reserved, or the socket vanished): kernel losses.
    pub fn losses(&self, port: u8) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.port == port)
            .filter_map(|e| e.program.counters().ok())
            .map(|c| c.meta_failed + c.redirect_missed)
            .sum()
    }

    /// The counters of each interface's program.
    pub fn counters(&self) -> Vec<(String, ProgramCounters)> {
        self.entries
            .iter()
            .filter_map(|e| Some((e.iface.clone(), e.program.counters().ok()?)))
            .collect()
    }

    /// Detaches every program (closes its link); the counters stay readable.
    pub fn detach(&self) {
        for e in &self.entries {
            if let Ok(mut a) = e.attachment.lock() {
                a.take();
            }
        }
    }
}
