//! The live pipeline: one receive thread per socket, anonymiser threads, and one writer.
//!
//! ```text
//!  socket 0 ─ rx thread ─┐ bounded ring   ┌─ anonymiser 0 ─┐
//!  socket 1 ─ rx thread ─┼───────────────►┤                ├─► writer (reorder window, ERF)
//!  ...                   ┘ (per core)     └─ anonymiser k ─┘       │
//!       ▲                                                          │
//!       └───────────── batches recycled to their socket's pool ◄───┘
//! ```
//!
//! With [`PipelineConfig::anon_threads`] at zero, each receive thread anonymises its own batches
//! as it fills them (while their bytes are still in its cache) and hands them straight to the
//! writer: the layout for a receive thread and an anonymiser that would share a core.
//!
//! Batches come from a fixed pool per socket, so memory is bounded and nothing is allocated per
//! packet. A receive thread that finds its pool empty (everything downstream is busy) still
//! returns the frames to the fill ring at once and counts them as ring losses: the kernel never
//! waits for user space. Every frame that reaches a receive thread is in exactly one of: written,
//! filtered out, or counted as a ring loss; every frame the kernel dropped on its way to a socket
//! is in the socket's XDP_STATISTICS, and every frame the NIC dropped before XDP is in the
//! interface's counters. Each is passed to the sink once, as a delta, under its own cause.

use super::batch::Batch;
use super::program::XdpPrograms;
use super::reorder::Merger;
use super::sys;
use super::xsk::{XskQueue, XskStats};
use crate::packet::{FrameKind, Timestamp};
use crate::stats::{CutReason, LossCause};
use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the processor made of one frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    /// Write `buf[..len]` as a record of `kind`; `cut` says why it was cut short, if it was.
    Write {
        /// Bytes to write, from the start of the slot.
        len: usize,
        /// The record kind.
        kind: FrameKind,
        /// Why the frame was cut short of its headers.
        cut: Option<CutReason>,
    },
    /// Nothing of the frame is safe: count it, write nothing.
    Drop(CutReason),
}

/// Makes a frame safe to write: the live path's view of the rewriter plus the anonymiser.
pub trait SlotProcessor {
    /// Rewrites the frame held in `buf[..caplen]` (the slot may be longer) whose wire length is
    /// `wlen`, leaving what to write at the start of `buf`.
    fn process(&mut self, buf: &mut [u8], caplen: usize, wlen: u32) -> Processed;
    /// A hint, for every frame of a batch before any of them is processed, that `frame` is
    /// next: a processor may start loading what it will look up for it, so that the loads of
    /// a whole batch overlap. Changes nothing; by default a no-op.
    fn prefetch(&self, frame: &[u8]) {
        let _ = frame;
    }
}

/// An error a sink reports; it stops the capture.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where records go: the live path's view of the ERF writer.
pub trait RecordSink {
    /// Writes one record. An error stops the capture (a full disk is not an error: the writer
    /// counts what it could not write as writer losses and carries on).
    fn write(
        &mut self,
        ts: Timestamp,
        iface: u8,
        kind: FrameKind,
        wlen: u32,
        data: &[u8],
    ) -> Result<(), SinkError>;
    /// Records `n` frames of interface `iface` lost for `cause` since the last record.
    fn add_loss(&mut self, iface: u8, cause: LossCause, n: u64);
    /// Counts a frame written cut short of its headers.
    fn count_cut(&mut self, reason: CutReason);
    /// Counts a frame the rewriter dropped whole.
    fn count_dropped(&mut self, reason: CutReason);
    /// Closes the current file and starts the next one.
    fn rotate(&mut self) -> Result<(), SinkError>;
    /// Pushes buffered records to the file (called a few times a second, so that a killed
    /// run loses at most that much).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// What the XDP program's metadata says about one frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Nanoseconds: CLOCK_TAI at the XDP hook, or the device's own time if `device_time`.
    pub ns: u64,
    /// The frame's length on the wire (before the program cut it).
    pub wire_len: u32,
    /// The time is the device's RX timestamp (taken as UTC), not CLOCK_TAI.
    pub device_time: bool,
}

/// The metadata the XDP program writes in front of each frame.
#[derive(Copy, Clone, Debug)]
pub struct MetaFormat {
    /// Its size in bytes (0: the program writes none).
    pub len: usize,
    /// Reads the metadata; `None` if the bytes are not valid metadata.
    pub parse: fn(&[u8]) -> Option<FrameMeta>,
}

impl MetaFormat {
    /// No metadata: frames are timestamped when user space reads them, and their wire length is
    /// their length in the UMEM.
    pub const NONE: MetaFormat = MetaFormat {
        len: 0,
        parse: |_| None,
    };
}

/// A socket and where its records go.
#[derive(Debug)]
pub struct Source {
    /// The bound socket.
    pub xsk: XskQueue,
    /// The interface's port number (0-3) in the ERF interface bits.
    pub port: u8,
}

/// How the pipeline is laid out.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Frames per batch.
    pub batch: usize,
    /// Bytes kept of each frame (the slot size; the XDP program has already cut frames to
    /// their headers, so this is a bound, not a snap length).
    pub slot: usize,
    /// Batches in each socket's pool (bounds the memory and the ring depth).
    pub pool_batches: usize,
    /// Anonymiser threads; zero anonymises in the receive threads themselves.
    pub anon_threads: usize,
    /// The reorder window.
    pub reorder_window: Duration,
    /// A partial batch is handed on once its first frame is this old.
    pub flush_after: Duration,
    /// When a read emptied the RX ring while traffic flows (it found fewer frames than a
    /// batch, or none after frames), the receive thread sleeps this long before the next read,
    /// so that frames gather in the ring (as a NIC's interrupt coalescing, ethtool's rx-usecs):
    /// fewer wake-ups and system calls per frame, whether frames come one by one or in bursts.
    /// The RX ring must hold what arrives meanwhile (16384 entries: 1.1 ms at 14.88 Mpps).
    /// Zero reads again at once.
    pub rx_coalesce: Duration,
    /// Cores for the receive threads, in socket order (empty: round-robin over all cores).
    pub rx_cores: Vec<usize>,
    /// Cores for the anonymiser threads (empty: round-robin after the receive threads).
    pub anon_cores: Vec<usize>,
    /// The core of the writer, which is the thread that calls [`run`]: when set (and
    /// [`PipelineConfig::pin`]), `run` pins the calling thread there. None leaves it alone.
    pub writer_core: Option<usize>,
    /// Pin threads at all.
    pub pin: bool,
    /// Print per-queue rates and histograms this often (on standard error).
    pub stats_interval: Option<Duration>,
    /// A tcpdump filter run on the original headers; frames it rejects are neither written nor
    /// counted as lost.
    pub filter: Option<String>,
    /// The XDP metadata layout.
    pub meta: MetaFormat,
    /// Interface names by port, for their drop counters.
    pub ifaces: Vec<String>,
    /// The XDP programs on the interfaces, whose own drops are kernel losses.
    pub programs: Option<Arc<XdpPrograms>>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            batch: 64,
            slot: 256,
            pool_batches: 1024,
            anon_threads: 1,
            reorder_window: Duration::from_millis(20),
            flush_after: Duration::from_millis(1),
            rx_coalesce: Duration::from_micros(500),
            rx_cores: vec![],
            anon_cores: vec![],
            writer_core: None,
            pin: true,
            stats_interval: None,
            filter: None,
            meta: MetaFormat::NONE,
            ifaces: vec![],
            programs: None,
        }
    }
}

/// Flags that steer a running pipeline (set them from signal handlers).
#[derive(Clone, Debug, Default)]
pub struct Control {
    /// Set to stop: the writer runs `before_drain` (which detaches the XDP program), the
    /// receive threads drain their rings, and everything is written.
    pub stop: Arc<AtomicBool>,
    /// Set to rotate the output file; the writer clears it.
    pub rotate: Arc<AtomicBool>,
}

impl Control {
    /// Flags wired to SIGINT and SIGTERM (stop) and SIGHUP (rotate).
    pub fn with_signals() -> std::io::Result<Control> {
        let c = Control::default();
        signal_hook::flag::register(signal_hook::consts::SIGINT, c.stop.clone())?;
        signal_hook::flag::register(signal_hook::consts::SIGTERM, c.stop.clone())?;
        signal_hook::flag::register(signal_hook::consts::SIGHUP, c.rotate.clone())?;
        Ok(c)
    }
}

/// Errors that stop the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The filter does not compile.
    #[error("filter {expr:?}: {reason}")]
    Filter {
        /// The expression.
        expr: String,
        /// What libpcap said.
        reason: String,
    },
    /// The sink failed.
    #[error("writing: {0}")]
    Sink(SinkError),
    /// A thread panicked.
    #[error("the {0} thread failed")]
    Thread(&'static str),
    /// A configuration value is out of range.
    #[error("bad pipeline setting: {0}")]
    Config(String),
}

/// What one socket saw.
#[derive(Clone, Debug, Default)]
pub struct SourceSummary {
    /// Interface name.
    pub iface: String,
    /// Port number (0-3).
    pub port: u8,
    /// Queue id.
    pub queue: u32,
    /// Whether the socket was bound in zero-copy mode.
    pub zero_copy: bool,
    /// Frames read from the RX ring.
    pub received: u64,
    /// Frames the filter rejected.
    pub filtered: u64,
    /// Frames lost because no batch was free (the pipeline was behind).
    pub ring_lost: u64,
    /// The kernel's counters at the end.
    pub kernel: XskStats,
}

/// What a capture did.
#[derive(Clone, Debug, Default)]
pub struct LiveSummary {
    /// Per socket.
    pub sources: Vec<SourceSummary>,
    /// Frames dropped by each interface before XDP during the capture, by port.
    pub interface_drops: Vec<u64>,
    /// Records handed to the sink.
    pub written: u64,
    /// Records written behind a later one (past the reorder window).
    pub out_of_order: u64,
}

impl LiveSummary {
    /// Frames the kernel dropped between XDP and the sockets.
    pub fn kernel_lost(&self) -> u64 {
        self.sources.iter().map(|s| s.kernel.kernel_losses()).sum()
    }
    /// Frames lost in anoncap's rings.
    pub fn ring_lost(&self) -> u64 {
        self.sources.iter().map(|s| s.ring_lost).sum()
    }
    /// Frames the interfaces dropped.
    pub fn interface_lost(&self) -> u64 {
        self.interface_drops.iter().sum()
    }
    /// Frames the filter rejected.
    pub fn filtered(&self) -> u64 {
        self.sources.iter().map(|s| s.filtered).sum()
    }
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    filtered: AtomicU64,
    ring_lost: AtomicU64,
    rx_dropped: AtomicU64,
    rx_ring_full: AtomicU64,
    rx_invalid: AtomicU64,
    fill_empty: AtomicU64,
}

impl Counters {
    fn publish(&self, s: &XskStats) {
        self.rx_dropped.store(s.rx_dropped, Ordering::Relaxed);
        self.rx_ring_full.store(s.rx_ring_full, Ordering::Relaxed);
        self.rx_invalid.store(s.rx_invalid_descs, Ordering::Relaxed);
        self.fill_empty
            .store(s.rx_fill_ring_empty_descs, Ordering::Relaxed);
    }
    fn kernel(&self) -> XskStats {
        XskStats {
            rx_dropped: self.rx_dropped.load(Ordering::Relaxed),
            rx_ring_full: self.rx_ring_full.load(Ordering::Relaxed),
            rx_invalid_descs: self.rx_invalid.load(Ordering::Relaxed),
            rx_fill_ring_empty_descs: self.fill_empty.load(Ordering::Relaxed),
        }
    }
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("anoncap: warning: could not pin a thread to core {id}");
        }
    }
}

fn compile_filter(expr: &str) -> Result<pcap::BpfProgram, PipelineError> {
    let err = |e: pcap::Error| PipelineError::Filter {
        expr: expr.to_string(),
        reason: e.to_string(),
    };
    pcap::Capture::dead(pcap::Linktype::ETHERNET)
        .map_err(err)?
        .compile(expr, true)
        .map_err(err)
}

/// An anonymiser stage run by a receive thread itself (anonymiser threads: zero).
struct InlineAnon<P> {
    proc: P,
    filter: Option<pcap::BpfProgram>,
}

/// Batches of a receive thread's pool, reused most recently returned first: the batches the
/// writer has just released are the ones still in cache, whereas the pool's ring returns the
/// one released longest ago (the pool is deep so that it absorbs a slow disk, and cycling
/// through all of it would stream megabytes through the cache at any rate).
struct BatchStack {
    pool: Receiver<Batch>,
    stack: Vec<Batch>,
}

impl BatchStack {
    fn new(pool: Receiver<Batch>, depth: usize) -> Self {
        BatchStack {
            pool,
            stack: Vec::with_capacity(depth),
        }
    }

    /// The most recently returned free batch, if there is one.
    fn take(&mut self) -> Option<Batch> {
        // The ring holds the batches returned since the last call in the order they came
        // back: moved onto the stack, the newest ends on top. At most the pool's depth in all.
        while let Ok(b) = self.pool.try_recv() {
            self.stack.push(b);
        }
        self.stack.pop()
    }
}

/// The receive loop of one socket.
#[allow(clippy::too_many_arguments)]
fn rx_loop<P: SlotProcessor>(
    mut src: Source,
    index: usize,
    pool: Receiver<Batch>,
    out: Sender<Batch>,
    mut inline: Option<InlineAnon<P>>,
    counters: &Counters,
    drain: &AtomicBool,
    tai_offset: &AtomicI64,
    cfg: &PipelineConfig,
) {
    let meta = cfg.meta;
    let mut cur: Option<Batch> = None;
    let mut free = BatchStack::new(pool, cfg.pool_batches);
    let mut first_at = Instant::now();
    let mut last_stats = Instant::now();
    let mut empty_rounds = 0u32;
    // When the last read found frames.
    let mut active_at = Instant::now()
        .checked_sub(ACTIVE_FOR)
        .unwrap_or_else(Instant::now);
    let mut hand_on = |mut b: Batch| {
        if let Some(a) = inline.as_mut() {
            let filtered = anonymise_batch(&mut a.proc, a.filter.as_ref(), &mut b);
            if filtered > 0 {
                counters.filtered.fetch_add(filtered, Ordering::Relaxed);
            }
            b.t_anon = Instant::now();
        }
        hand_on_batch(b, &out, counters)
    };
    loop {
        let draining = drain.load(Ordering::Acquire);
        let offset = tai_offset.load(Ordering::Relaxed);
        let now = if meta.len == 0 {
            sys::now_utc()
        } else {
            Timestamp(0)
        };
        let mut lost = 0u64;
        let n = src.xsk.recv(meta.len, |m, frame| {
            if cur.is_none() {
                if let Some(mut b) = free.take() {
                    b.clear();
                    b.source = index;
                    b.iface = src.port;
                    cur = Some(b);
                    first_at = Instant::now();
                }
            }
            let Some(b) = cur.as_mut() else {
                lost += 1;
                return;
            };
            let (ts, wlen) = match m.and_then(meta.parse) {
                Some(FrameMeta {
                    ns,
                    wire_len,
                    device_time: false,
                }) => (sys::tai_to_utc(ns, offset), wire_len),
                Some(FrameMeta {
                    ns,
                    wire_len,
                    device_time: true,
                }) => (Timestamp::from_unix_nanos(ns), wire_len),
                None if meta.len == 0 => (now, frame.len() as u32),
                // Metadata was expected and is not there: stamp it now rather than lose it.
                None => (sys::now_utc(), frame.len() as u32),
            };
            b.push(ts, wlen, frame);
            if b.is_full() {
                if let Some(mut full) = cur.take() {
                    full.t_rx = Instant::now();
                    hand_on(full);
                }
            }
        });
        if n > 0 {
            counters.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        if lost > 0 {
            counters.ring_lost.fetch_add(lost, Ordering::Relaxed);
        }
        let old = first_at.elapsed() >= cfg.flush_after;
        if cur.as_ref().is_some_and(|b| !b.is_empty()) && (old || draining) {
            if let Some(mut b) = cur.take() {
                b.t_rx = Instant::now();
                hand_on(b);
            }
        }
        if last_stats.elapsed() >= Duration::from_millis(50) {
            if let Ok(s) = src.xsk.stats() {
                counters.publish(&s);
            }
            last_stats = Instant::now();
        }
        // Waiting: while traffic flows, a read that emptied the ring (fewer frames than a
        // batch, or none right after a full one) is followed by a sleep, so that frames gather;
        // polling instead would wake the thread at every burst the link delivers. Only an idle
        // ring is waited on with poll.
        let coalesce = !draining && !cfg.rx_coalesce.is_zero();
        if n == 0 {
            if draining {
                empty_rounds += 1;
                if empty_rounds >= 3 {
                    break;
                }
                let _ = src.xsk.poll(2);
            } else if coalesce && active_at.elapsed() < ACTIVE_FOR {
                std::thread::sleep(cfg.rx_coalesce);
            } else {
                let timeout = if cur.is_some() { 1 } else { 20 };
                let _ = src.xsk.poll(timeout);
            }
        } else {
            empty_rounds = 0;
            active_at = Instant::now();
            if n < cfg.batch && coalesce {
                std::thread::sleep(cfg.rx_coalesce);
            }
        }
    }
    if let Some(b) = cur.take().filter(|b| !b.is_empty()) {
        hand_on(b);
    }
    if let Ok(s) = src.xsk.stats() {
        counters.publish(&s);
    }
}

/// Sends a filled batch on to the next stage.
fn hand_on_batch(b: Batch, out: &Sender<Batch>, counters: &Counters) {
    match out.try_send(b) {
        Ok(()) => {}
        Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
            // The ring holds as many batches as the pool, so it is never full; a disconnected
            // ring means the stages downstream are gone: the frames are lost, and counted.
            counters
                .ring_lost
                .fetch_add(b.len() as u64, Ordering::Relaxed);
            drop(b);
        }
    }
}

/// How long after its last batch a thread keeps waiting by short sleeps (see
/// [`PipelineConfig::rx_coalesce`]) rather than blocking on its ring: while traffic flows, a
/// sleep costs one timer wake-up, where a blocking receive spins, yields and parks per batch.
const ACTIVE_FOR: Duration = Duration::from_millis(10);

/// The next batch from `rx`; `None` once every sender is gone.
fn recv_coalesced(rx: &Receiver<Batch>, active: &mut Instant, coalesce: Duration) -> Option<Batch> {
    loop {
        match rx.try_recv() {
            Ok(b) => {
                *active = Instant::now();
                return Some(b);
            }
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if !coalesce.is_zero() && active.elapsed() < ACTIVE_FOR => {
                std::thread::sleep(coalesce);
            }
            Err(TryRecvError::Empty) => {
                let b = rx.recv().ok()?;
                *active = Instant::now();
                return Some(b);
            }
        }
    }
}

/// Makes every frame of `b` safe, or marks it filtered out; returns how many were filtered.
fn anonymise_batch<P: SlotProcessor>(
    proc: &mut P,
    filter: Option<&pcap::BpfProgram>,
    b: &mut Batch,
) -> u64 {
    for i in 0..b.len() {
        let Some((info, slot)) = b.slot_mut(i) else {
            break;
        };
        proc.prefetch(&slot[..(info.caplen as usize).min(slot.len())]);
    }
    let mut filtered = 0u64;
    for i in 0..b.len() {
        let Some((info, slot)) = b.slot_mut(i) else {
            break;
        };
        let cap = (info.caplen as usize).min(slot.len());
        if let Some(f) = filter {
            if !f.filter(&slot[..cap]) {
                info.kind = None;
                filtered += 1;
                continue;
            }
        }
        match proc.process(slot, cap, info.wlen) {
            Processed::Write { len, kind, cut } => {
                info.start = 0;
                info.end = len.min(slot.len()).min(u16::MAX as usize) as u16;
                info.kind = Some(kind);
                info.cut = cut;
            }
            Processed::Drop(reason) => {
                info.kind = None;
                info.cut = Some(reason);
            }
        }
    }
    filtered
}

/// The anonymiser loop: makes every frame of every batch safe, or marks it filtered.
fn anon_loop<P: SlotProcessor>(
    mut proc: P,
    filter: Option<pcap::BpfProgram>,
    input: Receiver<Batch>,
    out: Sender<Batch>,
    counters: &[Counters],
    coalesce: Duration,
) {
    let mut active = Instant::now();
    while let Some(mut b) = recv_coalesced(&input, &mut active, coalesce) {
        let filtered = anonymise_batch(&mut proc, filter.as_ref(), &mut b);
        if filtered > 0 {
            if let Some(c) = counters.get(b.source) {
                c.filtered.fetch_add(filtered, Ordering::Relaxed);
            }
        }
        b.t_anon = Instant::now();
        if let Err(e) = out.send(b) {
            // The writer is gone (it failed): nothing more can be written.
            drop(e);
            return;
        }
    }
}

struct LossTracker {
    reported: Vec<[u64; 2]>,
    iface_base: Vec<u64>,
    iface_reported: Vec<u64>,
    programs: Option<Arc<XdpPrograms>>,
    program_reported: Vec<u64>,
}

impl LossTracker {
    fn new(sources: usize, ifaces: &[String], programs: Option<Arc<XdpPrograms>>) -> Self {
        LossTracker {
            reported: vec![[0; 2]; sources],
            iface_base: ifaces.iter().map(|i| sys::interface_drops(i)).collect(),
            iface_reported: vec![0; ifaces.len()],
            programs,
            program_reported: vec![0; ifaces.len()],
        }
    }

    fn report(
        &mut self,
        sink: &mut impl RecordSink,
        counters: &[Counters],
        ports: &[u8],
        ifaces: &[String],
    ) {
        for (s, c) in counters.iter().enumerate() {
            let now = [
                c.kernel().kernel_losses(),
                c.ring_lost.load(Ordering::Relaxed),
            ];
            for (k, cause) in [LossCause::Kernel, LossCause::Ring].into_iter().enumerate() {
                let d = now[k].saturating_sub(self.reported[s][k]);
                if d > 0 {
                    sink.add_loss(ports[s], cause, d);
                    self.reported[s][k] = now[k];
                }
            }
        }
        for (p, name) in ifaces.iter().enumerate() {
            let total = sys::interface_drops(name).saturating_sub(self.iface_base[p]);
            let d = total.saturating_sub(self.iface_reported[p]);
            if d > 0 {
                sink.add_loss(p as u8, LossCause::Interface, d);
                self.iface_reported[p] = total;
            }
            if let Some(progs) = &self.programs {
                let total = progs.losses(p as u8);
                let d = total.saturating_sub(self.program_reported[p]);
                if d > 0 {
                    sink.add_loss(p as u8, LossCause::Kernel, d);
                    self.program_reported[p] = total;
                }
            }
        }
    }
}

struct StageStats {
    batch: Histogram<u64>,
    rx_to_anon_us: Histogram<u64>,
    anon_to_write_us: Histogram<u64>,
    last: Instant,
    last_received: Vec<u64>,
}

impl StageStats {
    fn new(sources: usize) -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid histogram bounds");
        StageStats {
            batch: h(),
            rx_to_anon_us: h(),
            anon_to_write_us: h(),
            last: Instant::now(),
            last_received: vec![0; sources],
        }
    }

    fn print(&mut self, counters: &[Counters], names: &[(String, u32)]) {
        let secs = self.last.elapsed().as_secs_f64().max(1e-6);
        let mut line = String::new();
        for (s, c) in counters.iter().enumerate() {
            let r = c.received.load(Ordering::Relaxed);
            let rate = (r - self.last_received[s]) as f64 / secs;
            self.last_received[s] = r;
            let k = c.kernel();
            line.push_str(&format!(
                "{}@{}: {:.0} pps, ring lost {}, kernel lost {}; ",
                names[s].0,
                names[s].1,
                rate,
                c.ring_lost.load(Ordering::Relaxed),
                k.kernel_losses()
            ));
        }
        let q = |h: &Histogram<u64>| {
            format!(
                "p50 {} p99 {} max {}",
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max()
            )
        };
        eprintln!(
            "{line}batch size {}; rx->anon us {}; anon->write us {}",
            q(&self.batch),
            q(&self.rx_to_anon_us),
            q(&self.anon_to_write_us)
        );
        self.batch.reset();
        self.rx_to_anon_us.reset();
        self.anon_to_write_us.reset();
        self.last = Instant::now();
    }
}

/// Runs the pipeline over `sources` until `control.stop` is set, then drains it. `make_proc`
/// builds each anonymiser thread's processor (inside that thread); `before_drain` runs once
/// when the stop is seen, before the receive threads drain their rings (detach the XDP program
/// there, so that nothing arrives after the last drain).
pub fn run<P, F>(
    sources: Vec<Source>,
    cfg: &PipelineConfig,
    make_proc: F,
    sink: &mut impl RecordSink,
    control: &Control,
    before_drain: impl FnOnce(),
) -> Result<LiveSummary, PipelineError>
where
    P: SlotProcessor,
    F: Fn(usize) -> P + Sync,
{
    if sources.is_empty() || cfg.batch == 0 || cfg.slot == 0 || cfg.pool_batches == 0 {
        return Err(PipelineError::Config(
            "need at least one socket, and non-zero batch, slot and pool sizes".into(),
        ));
    }
    if let Some(expr) = &cfg.filter {
        compile_filter(expr)?;
    }
    let n_src = sources.len();
    // Zero: no anonymiser threads, the receive threads anonymise (see the module docs).
    let inline = cfg.anon_threads == 0;
    let n_anon = if inline {
        0
    } else {
        cfg.anon_threads.clamp(1, n_src.max(1))
    };
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let core_for = |list: &[usize], i: usize, offset: usize| -> Option<usize> {
        if !cfg.pin {
            return None;
        }
        if let Some(&c) = list.get(i) {
            return Some(c);
        }
        (!cores.is_empty()).then(|| cores[(i + offset) % cores.len()])
    };
    let counters: Vec<Counters> = (0..n_src).map(|_| Counters::default()).collect();
    let ports: Vec<u8> = sources.iter().map(|s| s.port).collect();
    let names: Vec<(String, u32)> = sources
        .iter()
        .map(|s| (s.xsk.iface().to_string(), s.xsk.queue()))
        .collect();
    let mut summary = LiveSummary {
        sources: sources
            .iter()
            .map(|s| SourceSummary {
                iface: s.xsk.iface().to_string(),
                port: s.port,
                queue: s.xsk.queue(),
                zero_copy: s.xsk.zero_copy(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    // One pool per socket, full of empty batches; the writer sends them back.
    let mut pool_tx = vec![];
    let mut pool_rx = vec![];
    for (i, s) in sources.iter().enumerate() {
        let (tx, rx) = channel::bounded(cfg.pool_batches);
        for _ in 0..cfg.pool_batches {
            let _ = tx.send(Batch::new(i, s.port, cfg.batch, cfg.slot));
        }
        pool_tx.push(tx);
        pool_rx.push(rx);
    }
    let mut anon_in_tx = vec![];
    let mut anon_in_rx = vec![];
    for a in 0..n_anon {
        let share = (0..n_src).filter(|i| i % n_anon == a).count().max(1);
        let (tx, rx) = channel::bounded::<Batch>(share * cfg.pool_batches);
        anon_in_tx.push(tx);
        anon_in_rx.push(rx);
    }
    let (w_tx, w_rx) = channel::bounded::<Batch>(n_src * cfg.pool_batches);
    let drain = AtomicBool::new(false);
    let tai_offset = AtomicI64::new(sys::tai_offset_ns().unwrap_or(0));
    let mut losses = LossTracker::new(n_src, &cfg.ifaces, cfg.programs.clone());
    let mut filters = vec![];
    for _ in 0..if inline { n_src } else { n_anon } {
        filters.push(match &cfg.filter {
            Some(e) => Some(compile_filter(e)?),
            None => None,
        });
    }

    let result = std::thread::scope(|scope| {
        let mut rx_handles = vec![];
        for (i, (src, pool)) in sources.into_iter().zip(pool_rx).enumerate() {
            let out = if inline {
                w_tx.clone()
            } else {
                anon_in_tx[i % n_anon].clone()
            };
            let filter = if inline {
                filters.pop().flatten()
            } else {
                None
            };
            let core = core_for(&cfg.rx_cores, i, 0);
            let (c, d, t, make) = (&counters[i], &drain, &tai_offset, &make_proc);
            rx_handles.push(
                std::thread::Builder::new()
                    .name(format!("anoncap-rx{i}"))
                    .spawn_scoped(scope, move || {
                        pin(core);
                        let inline = inline.then(|| InlineAnon {
                            proc: make(i),
                            filter,
                        });
                        rx_loop(src, i, pool, out, inline, c, d, t, cfg);
                    })
                    .map_err(|_| {
                        drain.store(true, Ordering::Release);
                        PipelineError::Thread("receive")
                    })?,
            );
        }
        drop(anon_in_tx);
        let mut anon_handles = vec![];
        for (a, input) in anon_in_rx.into_iter().enumerate() {
            let out = w_tx.clone();
            let core = core_for(&cfg.anon_cores, a, n_src);
            let (make, c) = (&make_proc, &counters[..]);
            let filter = filters.pop().flatten();
            anon_handles.push(
                std::thread::Builder::new()
                    .name(format!("anoncap-anon{a}"))
                    .spawn_scoped(scope, move || {
                        pin(core);
                        let proc = make(a);
                        anon_loop(proc, filter, input, out, c, cfg.rx_coalesce);
                    })
                    .map_err(|_| {
                        drain.store(true, Ordering::Release);
                        PipelineError::Thread("anonymiser")
                    })?,
            );
        }
        drop(w_tx);

        // The writer: this thread.
        if cfg.pin {
            pin(cfg.writer_core);
        }
        let window_ns = cfg.reorder_window.as_nanos().min(u64::MAX as u128) as u64;
        let mut merger = Merger::new(n_src, window_ns, n_src * cfg.pool_batches / 2);
        let mut stats = cfg.stats_interval.map(|_| StageStats::new(n_src));
        let mut before_drain = Some(before_drain);
        let mut last_loss = Instant::now();
        let mut last_flush = Instant::now();
        let mut last_clock = Instant::now();
        let mut failure: Option<PipelineError> = None;
        let mut written = 0u64;
        let mut active = Instant::now();
        loop {
            let mut done = false;
            let got = |b: Batch, merger: &mut Merger, stats: &mut Option<StageStats>| {
                if let Some(st) = stats.as_mut() {
                    st.batch.saturating_record(b.len() as u64);
                    let us = b.t_anon.saturating_duration_since(b.t_rx).as_micros() as u64;
                    st.rx_to_anon_us.saturating_record(us.max(1));
                    st.anon_to_write_us
                        .saturating_record(b.t_anon.elapsed().as_micros().max(1) as u64);
                }
                merger.push(b, |b| {
                    let _ = pool_tx[b.source.min(n_src - 1)].try_send(b);
                });
            };
            let next = match w_rx.try_recv() {
                Ok(b) => Ok(b),
                Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty)
                    if !cfg.rx_coalesce.is_zero() && active.elapsed() < ACTIVE_FOR =>
                {
                    std::thread::sleep(cfg.rx_coalesce);
                    Err(RecvTimeoutError::Timeout)
                }
                Err(TryRecvError::Empty) => w_rx.recv_timeout(Duration::from_millis(5)),
            };
            match next {
                Ok(b) => {
                    active = Instant::now();
                    got(b, &mut merger, &mut stats);
                    for _ in 0..256 {
                        match w_rx.try_recv() {
                            Ok(b) => got(b, &mut merger, &mut stats),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => done = true,
            }
            if done {
                // Every thread upstream has finished: its last counters are published.
                losses.report(sink, &counters, &ports, &cfg.ifaces);
            }
            if failure.is_none() {
                merger.release(
                    Some(sys::now_utc()),
                    done,
                    |r| {
                        if failure.is_some() {
                            return;
                        }
                        let Some(kind) = r.kind else {
                            if let Some(reason) = r.cut {
                                sink.count_dropped(reason);
                            }
                            return;
                        };
                        if let Some(reason) = r.cut {
                            sink.count_cut(reason);
                        }
                        match sink.write(r.ts, r.iface, kind, r.wlen, r.data) {
                            Ok(()) => written += 1,
                            Err(e) => failure = Some(PipelineError::Sink(e)),
                        }
                    },
                    |b| {
                        let _ = pool_tx[b.source.min(n_src - 1)].try_send(b);
                    },
                );
            }
            if failure.is_some() {
                control.stop.store(true, Ordering::Release);
            }
            if done {
                break;
            }
            if last_loss.elapsed() >= Duration::from_millis(100) {
                losses.report(sink, &counters, &ports, &cfg.ifaces);
                last_loss = Instant::now();
            }
            if last_flush.elapsed() >= Duration::from_millis(100) && failure.is_none() {
                // Not fatal: a full disk is the writer's to handle (it counts writer losses
                // and resumes); the next write reports anything worse.
                let _ = sink.flush();
                last_flush = Instant::now();
            }
            if last_clock.elapsed() >= Duration::from_secs(1) {
                if let Ok(o) = sys::tai_offset_ns() {
                    tai_offset.store(o, Ordering::Relaxed);
                }
                last_clock = Instant::now();
            }
            if control.rotate.swap(false, Ordering::AcqRel) && failure.is_none() {
                if let Err(e) = sink.rotate() {
                    failure = Some(PipelineError::Sink(e));
                }
            }
            if let (Some(st), Some(every)) = (stats.as_mut(), cfg.stats_interval) {
                if st.last.elapsed() >= every {
                    st.print(&counters, &names);
                }
            }
            if control.stop.load(Ordering::Acquire) {
                if let Some(f) = before_drain.take() {
                    f();
                    // Frames already on their way through the kernel land in the rings now.
                    std::thread::sleep(Duration::from_millis(20));
                    drain.store(true, Ordering::Release);
                }
            }
        }
        let mut failed = false;
        for h in rx_handles.into_iter().chain(anon_handles) {
            failed |= h.join().is_err();
        }
        summary.written = written;
        summary.out_of_order = merger.out_of_order();
        match failure {
            Some(e) => Err(e),
            None if failed => Err(PipelineError::Thread("receive or anonymiser")),
            None => Ok(()),
        }
    });
    result?;
    for (s, c) in summary.sources.iter_mut().zip(&counters) {
        s.received = c.received.load(Ordering::Relaxed);
        s.filtered = c.filtered.load(Ordering::Relaxed);
        s.ring_lost = c.ring_lost.load(Ordering::Relaxed);
        s.kernel = c.kernel();
    }
    summary.interface_drops = losses.iface_reported.clone();
    Ok(summary)
}

#[cfg(test)]
mod batch_stack_tests {
    use super::*;

    #[test]
    fn the_most_recently_returned_batch_is_reused_first() {
        let (tx, rx) = channel::bounded(8);
        let mut free = BatchStack::new(rx, 8);
        // Batches tagged by `source` so that each can be told apart.
        for tag in 0..3 {
            tx.send(Batch::new(tag, 0, 1, 1)).unwrap();
        }
        assert_eq!(free.take().map(|b| b.source), Some(2));
        // Two come back (as the writer releases them): the later one is taken first, then the
        // earlier, and only then the ones that waited longest.
        tx.send(Batch::new(10, 0, 1, 1)).unwrap();
        tx.send(Batch::new(11, 0, 1, 1)).unwrap();
        let order: Vec<usize> = std::iter::from_fn(|| free.take().map(|b| b.source)).collect();
        assert_eq!(order, vec![11, 10, 1, 0]);
        assert!(free.take().is_none());
    }
}
