//! One AF_XDP socket bound to one (interface, queue), with its own UMEM (xsk-rs 0.11 maps it).
//!
//! Frames are read in batches: [`XskQueue::recv`] takes up to a batch of descriptors from the
//! RX ring, hands each frame (and the metadata area just before it) to a closure that copies it
//! out, then returns all of them to the fill ring at once. A frame's bytes are borrowed only for
//! the duration of the closure call, so no reference into the UMEM outlives its descriptor.
#![allow(unsafe_code)]

use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// How to bind: zero-copy where the driver allows, copy mode otherwise.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// Try zero-copy, fall back to copy mode if the driver refuses it.
    Auto,
    /// Zero-copy only (fail otherwise).
    ZeroCopy,
    /// Copy mode only.
    Copy,
}

/// Sizes and modes of one socket.
#[derive(Copy, Clone, Debug)]
pub struct XskConfig {
    /// Entries in the RX ring (power of two).
    pub rx_ring: u32,
    /// Entries in the fill ring (power of two).
    pub fill_ring: u32,
    /// Frames in the UMEM.
    pub frames: u32,
    /// Size of one UMEM frame (power of two, 2048 or 4096).
    pub frame_size: u32,
    /// Zero-copy or copy mode.
    pub mode: BindMode,
    /// Use the need-wakeup protocol (the kernel tells when it must be kicked).
    pub need_wakeup: bool,
    /// Let libxdp load its own redirect program (only when no program of ours is attached;
    /// the normal path inhibits it and registers the socket in our program's XSKMAP).
    pub libxdp_program: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            rx_ring: 16384,
            fill_ring: 16384,
            frames: 32768,
            frame_size: 2048,
            mode: BindMode::Auto,
            need_wakeup: true,
            libxdp_program: false,
        }
    }
}

/// Errors creating a socket.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// A ring, frame size or frame count was refused.
    #[error("bad AF_XDP setting: {0}")]
    Config(String),
    /// The UMEM could not be created (often: the memlock limit is too small).
    #[error("creating the UMEM for {iface} queue {queue} ({bytes} bytes): {reason}")]
    Umem {
        /// Interface name.
        iface: String,
        /// Queue id.
        queue: u32,
        /// UMEM size in bytes.
        bytes: u64,
        /// What xsk-rs said.
        reason: String,
    },
    /// The socket could not be created or bound.
    #[error("binding an AF_XDP socket to {iface} queue {queue}: {reason}")]
    Bind {
        /// Interface name.
        iface: String,
        /// Queue id.
        queue: u32,
        /// What xsk-rs said.
        reason: String,
    },
}

/// The kernel's per-socket counters (XDP_STATISTICS).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames dropped for want of a fill-ring entry, or too large for a frame.
    pub rx_dropped: u64,
    /// Invalid descriptors on the RX side.
    pub rx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty (already included in `rx_dropped`).
    pub rx_fill_ring_empty_descs: u64,
}

impl XskStats {
    /// Frames the kernel dropped between the XDP program and this socket, each counted once:
    /// `rx_dropped` already includes the fill-ring-empty drops, and `rx_ring_full` is separate.
    pub fn kernel_losses(&self) -> u64 {
        self.rx_dropped + self.rx_ring_full
    }
}

/// One bound AF_XDP socket and its UMEM.
pub struct XskQueue {
    umem: Umem,
    rx: RxQueue,
    fill: FillQueue,
    _tx: TxQueue,
    _comp: CompQueue,
    scratch: Vec<FrameDesc>,
    spare: Vec<FrameDesc>,
    frame_size: usize,
    zero_copy: bool,
    need_wakeup: bool,
    iface: String,
    queue: u32,
}

impl std::fmt::Debug for XskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskQueue")
            .field("iface", &self.iface)
            .field("queue", &self.queue)
            .field("zero_copy", &self.zero_copy)
            .finish()
    }
}

fn queue_size(n: u32) -> Result<QueueSize, XskError> {
    QueueSize::new(n).map_err(|e| XskError::Config(format!("ring size {n}: {e}")))
}

impl XskQueue {
    /// Creates a UMEM and binds a socket to `iface` queue `queue`, then fills the fill ring.
    pub fn open(iface: &str, queue: u32, cfg: &XskConfig, batch: usize) -> Result<Self, XskError> {
        let umem_cfg = UmemConfig::builder()
            .frame_size(
                FrameSize::new(cfg.frame_size)
                    .map_err(|e| XskError::Config(format!("frame size: {e}")))?,
            )
            .fill_queue_size(queue_size(cfg.fill_ring)?)
            .comp_queue_size(queue_size(64)?)
            .build()
            .map_err(|e| XskError::Config(format!("UMEM: {e}")))?;
        let frames = NonZeroU32::new(cfg.frames.max(cfg.fill_ring))
            .ok_or_else(|| XskError::Config("zero frames".into()))?;
        let (umem, mut descs) = Umem::new(umem_cfg, frames, false).map_err(|e| XskError::Umem {
            iface: iface.to_string(),
            queue,
            bytes: frames.get() as u64 * cfg.frame_size as u64,
            reason: e.to_string(),
        })?;
        let name: Interface = iface.parse().map_err(|_| XskError::Bind {
            iface: iface.to_string(),
            queue,
            reason: "bad interface name".into(),
        })?;
        let try_bind = |zero_copy: bool| {
            let mut bind = if zero_copy {
                BindFlags::XDP_ZEROCOPY
            } else {
                BindFlags::XDP_COPY
            };
            if cfg.need_wakeup {
                bind |= BindFlags::XDP_USE_NEED_WAKEUP;
            }
            let mut b = SocketConfig::builder();
            b.rx_queue_size(queue_size(cfg.rx_ring)?)
                .tx_queue_size(queue_size(64)?)
                .bind_flags(bind);
            if !cfg.libxdp_program {
                b.libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD);
            }
            // SAFETY: the UMEM is not shared with another socket on this (interface, queue):
            // each socket gets its own UMEM, created just above.
            unsafe { Socket::new(b.build(), &umem, &name, queue) }.map_err(|e| XskError::Bind {
                iface: iface.to_string(),
                queue,
                reason: format!(
                    "{e}: {}",
                    e.source().map(|s| s.to_string()).unwrap_or_default()
                ),
            })
        };
        let (zero_copy, (tx, rx, fq_cq)) = match cfg.mode {
            BindMode::ZeroCopy => (true, try_bind(true)?),
            BindMode::Copy => (false, try_bind(false)?),
            BindMode::Auto => match try_bind(true) {
                Ok(s) => (true, s),
                Err(_) => (false, try_bind(false)?),
            },
        };
        let (mut fill, comp) = fq_cq.ok_or_else(|| XskError::Bind {
            iface: iface.to_string(),
            queue,
            reason: "no fill ring was returned (is the UMEM shared?)".into(),
        })?;
        let spare = descs.split_off((cfg.fill_ring as usize).min(descs.len()));
        // SAFETY: the descriptors were made by `Umem::new` for this UMEM and none is in use.
        let given = unsafe { fill.produce(&descs) };
        if given != descs.len() {
            return Err(XskError::Config(format!(
                "the fill ring took {given} of {} frames",
                descs.len()
            )));
        }
        Ok(XskQueue {
            umem,
            rx,
            fill,
            _tx: tx,
            _comp: comp,
            scratch: vec![FrameDesc::default(); batch.max(1)],
            spare,
            frame_size: cfg.frame_size as usize,
            zero_copy,
            need_wakeup: cfg.need_wakeup,
            iface: iface.to_string(),
            queue,
        })
    }

    /// The socket's file descriptor (for the XSKMAP).
    pub fn fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// Whether the socket is bound in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The queue id.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The kernel's counters for this socket.
    pub fn stats(&self) -> io::Result<XskStats> {
        let s = self.rx.fd().xdp_statistics()?;
        Ok(XskStats {
            rx_dropped: s.rx_dropped(),
            rx_invalid_descs: s.rx_invalid_descs(),
            rx_ring_full: s.rx_ring_full(),
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs(),
        })
    }

    /// Waits up to `timeout_ms` for frames; returns whether some are ready.
    pub fn poll(&mut self, timeout_ms: i32) -> io::Result<bool> {
        self.rx.poll(timeout_ms)
    }

    /// Takes up to a batch of frames from the RX ring. For each, `f` gets the `meta_len` bytes
    /// just before the frame (or `None` if the frame starts too close to its chunk for that)
    /// and the frame's bytes. All frames go back to the fill ring before this returns.
    /// Returns the number of frames taken.
    pub fn recv(&mut self, meta_len: usize, mut f: impl FnMut(Option<&[u8]>, &[u8])) -> usize {
        // SAFETY: the scratch descriptors are filled from this socket's RX ring, which only
        // holds frames of this socket's UMEM.
        let n = unsafe { self.rx.consume(&mut self.scratch) };
        // The kernel wrote these frames, on whichever core ran the driver: start loading the
        // metadata and the first bytes of all of them before the first is read, so that the
        // misses overlap instead of coming one frame after the other.
        for desc in &self.scratch[..n] {
            // SAFETY: as below; only the address is used, for a prefetch hint.
            let frame = unsafe { self.umem.data(desc) }.contents().as_ptr();
            prefetch_read(frame.wrapping_sub(meta_len));
            prefetch_read(frame);
        }
        for desc in &self.scratch[..n] {
            // SAFETY: `desc` came from this UMEM's RX ring, so it names a frame of this UMEM,
            // and the kernel does not write to a frame between handing it over on the RX ring
            // and getting it back on the fill ring, which happens only below, after `f`.
            let data = unsafe { self.umem.data(desc) };
            let frame = data.contents();
            // In aligned mode a chunk starts at a multiple of the frame size; the XDP metadata
            // (written with bpf_xdp_adjust_meta) sits between the chunk's headroom and the frame.
            let room = desc.addr() % self.frame_size;
            let meta = if meta_len > 0 && room >= meta_len {
                // SAFETY: the `meta_len` bytes before the frame lie inside the same chunk
                // (`room` bytes separate the frame from the chunk start), hence inside the UMEM
                // mapping; the chunk belongs to user space until it is returned below.
                Some(unsafe { std::slice::from_raw_parts(frame.as_ptr().sub(meta_len), meta_len) })
            } else {
                None
            };
            f(meta, frame);
        }
        if n > 0 {
            // SAFETY: these descriptors were consumed from this UMEM's RX ring just above and
            // no reference into their frames is left.
            let back = unsafe { self.fill.produce(&self.scratch[..n]) };
            if back == 0 {
                // All-or-nothing: keep them and retry with the next batch.
                self.spare.extend_from_slice(&self.scratch[..n]);
            }
        }
        if !self.spare.is_empty() {
            let free = self.fill.nb_free(self.spare.len() as u32) as usize;
            let k = free.min(self.spare.len());
            if k > 0 {
                let from = self.spare.len() - k;
                // SAFETY: spare descriptors belong to this UMEM and are not in the kernel's hands.
                let back = unsafe { self.fill.produce(&self.spare[from..]) };
                if back == k {
                    self.spare.truncate(from);
                }
            }
        }
        if self.need_wakeup && self.fill.needs_wakeup() {
            let _ = self.fill.wakeup(self.rx.fd_mut(), 0);
        }
        n
    }
}

/// A read prefetch of the cache line at `p`, a hint that never faults; nothing on targets
/// without one.
#[inline(always)]
fn prefetch_read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the intrinsic is unsafe only because it needs SSE, which is part of x86_64; a
    // prefetch reads nothing into the program and does not fault, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

use std::error::Error as _;
