//! `anoncap capture`: capture live from network interfaces (AF_XDP) into anonymised ERF.
//!
//! Checks what it needs before touching anything (privileges, interfaces, key), completes the
//! files a killed run left behind, binds one AF_XDP socket per queue, and runs the live pipeline
//! until SIGINT or SIGTERM (SIGHUP rotates the output). At exit it prints a tcpdump-like
//! summary of what was captured and lost, by cause.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{bail, Context};
use capture::live::adapt::LiveProcessor;
use capture::live::{
    self, bpf, sys, BindMode, Control, PipelineConfig, ProgramSetup, Source, XdpPrograms,
    XskConfig, XskQueue, ANONCAP_META,
};
use capture::offline::FrameProcessor;
use capture::output::{
    recover_partials, ErfWriter, FullDiskPolicy, InterfaceInfo, OutputSummary, OutputTarget,
    RunInfo,
};
use capture::rewrite::{RewriteOptions, Rewriter};
use capture::stats::LossCause;

use super::common::{self, KeyArgs, OutputArgs};

/// An interface to capture on, with an optional range of queues (`IF@0-3`, `IF@2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceSpec {
    /// The interface name.
    pub name: String,
    /// First and last queue, or all queues.
    pub queues: Option<(u32, u32)>,
}

impl std::str::FromStr for IfaceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, q) = match s.split_once('@') {
            Some((n, q)) => (n, Some(q)),
            None => (s, None),
        };
        if name.is_empty() || name.len() > 15 || name.contains('/') {
            return Err(format!("{name:?} is not an interface name"));
        }
        let queues = match q {
            None => None,
            Some(q) => {
                let bad = || format!("{q:?}: queues are N or N-M");
                let (a, b) = match q.split_once('-') {
                    Some((a, b)) => (a, b),
                    None => (q, q),
                };
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                Some((a, b))
            }
        };
        Ok(IfaceSpec {
            name: name.to_string(),
            queues,
        })
    }
}

/// Flags of `anoncap capture`.
#[derive(clap::Args)]
pub struct Args {
    /// Interface to capture on, optionally with queues (`eth0@0-3`); up to four times (ERF
    /// records carry the interface's position, 0-3, in their interface bits).
    #[arg(long = "iface", short = 'i', value_name = "IF[@Q-Q]")]
    ifaces: Vec<IfaceSpec>,
    /// Capture from an Endace DAG card instead of AF_XDP interfaces.
    #[cfg(feature = "dag")]
    #[command(flatten)]
    dag: super::dag::DagArgs,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// A capture filter in tcpdump's syntax, run on the original headers before anonymisation;
    /// frames it rejects are not written and are not losses.
    #[arg(long, short = 'f', value_name = "EXPR")]
    filter: Option<String>,
    /// Print per-queue rates and histograms of batch sizes and stage latencies every second.
    #[arg(long)]
    stats: bool,
    /// Stop after this long (e.g. 30s, 1h); otherwise run until SIGINT or SIGTERM.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    duration: Option<Duration>,
    /// Reorder window: how long records of one queue wait for older records of the others.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    reorder_window: Duration,
    /// Entries in each socket's RX ring.
    #[arg(long, default_value_t = 16384, value_name = "N")]
    rx_ring: u32,
    /// Entries in each socket's fill ring.
    #[arg(long, default_value_t = 16384, value_name = "N")]
    fill_ring: u32,
    /// UMEM frames per socket (2 KiB each).
    #[arg(long, default_value_t = 32768, value_name = "N")]
    frames: u32,
    /// After a read that emptied the RX ring while traffic flows, wait this long before the
    /// next one so that frames gather in the ring (fewer wake-ups per frame; 0 to read again
    /// at once, or to wait in poll for every frame). Capped
    /// at 90 % of the time the RX ring takes to fill at 10 GbE line rate (14.88 Mpps).
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    rx_coalesce: Duration,
    /// Frames per batch.
    #[arg(long, default_value_t = 64, value_name = "N")]
    batch: usize,
    /// Batches in each queue's pool (the depth of the rings between threads).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pool: usize,
    /// Anonymiser threads. 0: each receive thread anonymises its own frames (one thread per
    /// queue; the layout where receive and anonymiser would share a core).
    #[arg(long, default_value_t = 1, value_name = "N")]
    anon_threads: usize,
    /// Cores for the receive threads, in queue order (e.g. 0,1); the anonymisers follow.
    #[arg(long, value_delimiter = ',', value_name = "CORES")]
    cores: Vec<usize>,
    /// Core for the writer thread (merges the queues and writes the files); by default it
    /// is left to the scheduler.
    #[arg(long, value_name = "CORE")]
    writer_core: Option<usize>,
    /// Do not pin threads to cores.
    #[arg(long)]
    no_pin: bool,
    /// Bind in copy mode even where the driver offers zero-copy.
    #[arg(long, conflicts_with = "zero_copy")]
    copy: bool,
    /// Insist on zero-copy (fail where the driver does not offer it).
    #[arg(long)]
    zero_copy: bool,
    /// Take over an interface that already has an XDP program.
    #[arg(long)]
    force: bool,
    /// Where the XDP program runs: `auto` (in the driver, else in the generic skb path),
    /// `native` or `generic`.
    #[arg(long, default_value = "auto", value_parser = parse_xdp_mode, value_name = "MODE")]
    xdp_mode: bpf::AttachMode,
    /// Stamp frames with the device's RX timestamp where the driver gives one (a device-bound
    /// program; frames without one keep the kernel's CLOCK_TAI time).
    #[arg(long)]
    device_timestamps: bool,
    /// In-kernel prefilter: only these IP protocols (names or numbers, e.g. tcp,udp,47); other
    /// frames pass to the kernel untouched and are not counted as captured or lost.
    #[arg(long, value_delimiter = ',', value_parser = parse_protocol, value_name = "PROTO")]
    prefilter_proto: Vec<u8>,
    /// In-kernel prefilter: only TCP/UDP frames with one of these ports (source or destination).
    #[arg(long, value_delimiter = ',', value_name = "PORT")]
    prefilter_port: Vec<u16>,
    /// In-kernel prefilter: only frames whose outer VLAN id is one of these.
    #[arg(long, value_delimiter = ',', value_name = "VID")]
    prefilter_vlan: Vec<u16>,
    /// Bytes the XDP program keeps of a frame whose headers it cannot walk to the end (the
    /// rewriter then cuts it exactly): 64-2048.
    #[arg(long, default_value_t = 256, value_name = "BYTES")]
    xdp_snaplen: u32,
    /// After set-up, switch to this user (as tcpdump -Z).
    #[arg(long, short = 'Z', value_name = "USER")]
    user: Option<String>,
}

/// Runs `anoncap capture`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    #[cfg(feature = "dag")]
    if args.dag.dag.is_some() {
        if !args.ifaces.is_empty() {
            bail!("--dag and --iface cannot be used together");
        }
        let control = Control::with_signals().context("cannot install signal handlers")?;
        let limits = capture::dag::pipeline::Limits {
            packets: None,
            duration: args.duration,
        };
        return super::dag::run(&args.dag, &args.key, &args.output, &control.stop, limits);
    }
    if args.ifaces.is_empty() {
        bail!("no interface given: --iface IF (up to four times)");
    }
    if args.ifaces.len() > 4 {
        bail!(
            "{} interfaces given; ERF records can name at most 4",
            args.ifaces.len()
        );
    }
    // 1. Privileges, before anything is opened.
    let mut queues: Vec<(u8, String, u32)> = vec![];
    for (port, spec) in args.ifaces.iter().enumerate() {
        let Some(n) = sys::rx_queue_count(&spec.name) else {
            bail!("no such interface: {}", spec.name);
        };
        let (a, b) = spec.queues.unwrap_or((0, n.saturating_sub(1)));
        if b >= n {
            bail!(
                "{} has {n} RX queues (0-{}); asked for {a}-{b}",
                spec.name,
                n - 1
            );
        }
        for q in a..=b {
            queues.push((port as u8, spec.name.clone(), q));
        }
    }
    let umem_bytes = queues.len() as u64 * u64::from(args.frames.max(args.fill_ring)) * 2048;
    let missing = sys::missing_privileges(sys::effective_caps(), sys::memlock_limit(), umem_bytes);
    if !missing.is_empty() {
        bail!(
            "capturing needs root, or these privileges, which are missing: {}",
            missing.join(", ")
        );
    }
    for spec in &args.ifaces {
        if sys::has_xdp_program(&spec.name) && !args.force {
            bail!(
                "{} is busy: it already has an XDP program (use --force to replace it)",
                spec.name
            );
        }
    }
    // 2. The key: a missing or unreadable key is a refusal, never a fallback.
    let (key, policy) = args.key.load()?;
    let prepared = anonymise::Prepared::new(&key, &policy);

    // 3. The output, after completing what a killed run left behind.
    let interfaces: Vec<InterfaceInfo> = args
        .ifaces
        .iter()
        .map(|s| InterfaceInfo {
            name: s.name.clone(),
            fcs_included: false,
            snaplen: capture::offline::MAX_HEADER_BYTES as u32,
            speed_bps: link_speed(&s.name),
        })
        .collect();
    let run = RunInfo {
        sources: queues.iter().map(|(_, i, q)| format!("{i}@{q}")).collect(),
        policy: policy.to_string(),
        key_fingerprint: key.fingerprint(),
        interfaces,
        filter: args.filter.clone(),
        clock_source: clock_source(args.device_timestamps),
        ..common::run_info()
    };
    let mut config = args.output.config(run)?;
    config.on_full_disk = FullDiskPolicy::DropAndResume;
    // A rotation must not stall the writer for the sync of the closed file.
    config.background_close = true;
    if let OutputTarget::Directory { dir, .. } = &config.target {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
        for p in recover_partials(dir)
            .with_context(|| format!("recovering files of an earlier run in {}", dir.display()))?
        {
            eprintln!("anoncap: recovered {} (a run was killed)", p.display());
        }
    }

    // 4. Sockets, one per queue.
    let xcfg = XskConfig {
        rx_ring: args.rx_ring,
        fill_ring: args.fill_ring,
        frames: args.frames,
        mode: if args.copy {
            BindMode::Copy
        } else if args.zero_copy {
            BindMode::ZeroCopy
        } else {
            BindMode::Auto
        },
        // Our own program steers frames to the sockets: libxdp must not load its own.
        libxdp_program: false,
        ..XskConfig::default()
    };
    let mut sources = vec![];
    for (port, iface, q) in &queues {
        let xsk = XskQueue::open(iface, *q, &xcfg, args.batch)
            .with_context(|| format!("cannot open an AF_XDP socket on {iface} queue {q}"))?;
        sources.push(Source { xsk, port: *port });
    }
    // 5. The XDP program on each interface, with the sockets in its XSKMAP.
    let iface_names: Vec<String> = args.ifaces.iter().map(|s| s.name.clone()).collect();
    let setup = ProgramSetup {
        options: bpf::ProgramOptions {
            prefilter: bpf::Prefilter {
                protocols: args.prefilter_proto.iter().copied().collect(),
                ports: args.prefilter_port.iter().copied().collect(),
                vlans: args.prefilter_vlan.iter().copied().collect(),
            },
            snap_len: args.xdp_snaplen,
            ..bpf::ProgramOptions::default()
        },
        mode: args.xdp_mode,
        force: args.force,
        device_timestamps: args.device_timestamps,
    };
    let sockets: Vec<(u8, &XskQueue)> = sources.iter().map(|s| (s.port, &s.xsk)).collect();
    let programs = XdpPrograms::attach(&iface_names, &sockets, &setup)
        .context("cannot set up the XDP program")?;
    drop(sockets);
    let programs = std::sync::Arc::new(programs);
    for (iface, mode) in programs.modes() {
        if mode == bpf::AttachMode::Generic && args.xdp_mode == bpf::AttachMode::Auto {
            eprintln!(
                "anoncap: {iface}: the driver cannot run XDP natively; using generic (skb) XDP, \
                 which costs more CPU per frame"
            );
        }
    }
    let writer = ErfWriter::create(config)
        .with_context(|| format!("cannot create output {}", args.output.out.display()))?;

    // 6. Privileges are no longer needed.
    if let Some(user) = &args.user {
        sys::drop_privileges(user).with_context(|| format!("cannot switch to user {user}"))?;
    }

    let control = Control::with_signals().context("cannot install signal handlers")?;
    if let Some(d) = args.duration {
        let stop = control.stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(d);
            stop.store(true, Ordering::Release);
        });
    }
    let cfg = PipelineConfig {
        batch: args.batch,
        pool_batches: args.pool,
        anon_threads: args.anon_threads,
        reorder_window: args.reorder_window,
        rx_cores: args.cores.clone(),
        anon_cores: args.cores.iter().skip(sources.len()).copied().collect(),
        writer_core: args.writer_core,
        pin: !args.no_pin,
        stats_interval: args.stats.then_some(Duration::from_secs(1)),
        filter: args.filter.clone(),
        ifaces: iface_names.clone(),
        meta: ANONCAP_META,
        rx_coalesce: args.rx_coalesce.min(ring_fill_time(args.rx_ring)),
        programs: Some(programs.clone()),
        ..PipelineConfig::default()
    };
    let copy_mode = sources.iter().any(|s| !s.xsk.zero_copy());
    eprintln!(
        "anoncap: capturing on {} ({} queue{}, {} mode, XDP {}); writing to {}",
        args.ifaces
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        sources.len(),
        if sources.len() == 1 { "" } else { "s" },
        if copy_mode { "copy" } else { "zero-copy" },
        programs
            .modes()
            .iter()
            .map(|(_, m)| mode_name(*m))
            .collect::<Vec<_>>()
            .join("/"),
        args.output.out.display()
    );
    let anonymise_mac = args.key.anonymise_mac;
    let cache = args.key.cache;
    let mut writer = writer;
    let result = live::run(
        sources,
        &cfg,
        |_| {
            let rewriter = Rewriter::new(RewriteOptions {
                anonymise_mac,
                ..RewriteOptions::default()
            });
            let mapper = anonymise::Anonymiser::from_prepared(prepared.clone(), cache);
            LiveProcessor(FrameProcessor::new(rewriter, mapper))
        },
        &mut writer,
        &control,
        || programs.detach(),
    );
    // Also on an error: the links close here at the latest.
    programs.detach();
    let finished = writer.finish();
    let summary = result.context("the capture stopped")?;
    let out = finished.context("closing the output")?;
    print_summary(&summary, &out, &programs);
    Ok(ExitCode::SUCCESS)
}

/// 90 % of the time `rx_ring` entries take to fill with minimum-size frames at 10 GbE line
/// rate (14.88 Mpps, 67.2 ns apart): the longest a receive thread may sleep.
fn ring_fill_time(rx_ring: u32) -> Duration {
    Duration::from_nanos(u64::from(rx_ring) * 672 * 9 / 100)
}

fn link_speed(iface: &str) -> Option<u64> {
    let mbps: i64 = std::fs::read_to_string(format!("/sys/class/net/{iface}/speed"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (mbps > 0).then(|| mbps as u64 * 1_000_000)
}

fn clock_source(device: bool) -> String {
    let cs =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
    let kernel = format!(
        "kernel CLOCK_TAI at the XDP hook, converted to UTC with the CLOCK_REALTIME - CLOCK_TAI \
         offset measured every second (kernel clocksource {cs})"
    );
    if device {
        format!("device RX timestamp where the driver gives one, otherwise {kernel}")
    } else {
        kernel
    }
}

fn parse_xdp_mode(s: &str) -> Result<bpf::AttachMode, String> {
    match s {
        "auto" => Ok(bpf::AttachMode::Auto),
        "native" | "drv" => Ok(bpf::AttachMode::Native),
        "generic" | "skb" => Ok(bpf::AttachMode::Generic),
        _ => Err(format!("{s:?}: XDP modes are auto, native and generic")),
    }
}

fn mode_name(m: bpf::AttachMode) -> &'static str {
    match m {
        bpf::AttachMode::Native => "native",
        bpf::AttachMode::Generic => "generic",
        bpf::AttachMode::Auto => "auto",
    }
}

/// An IP protocol by number or by the name tcpdump uses.
fn parse_protocol(s: &str) -> Result<u8, String> {
    if let Ok(n) = s.parse::<u8>() {
        return Ok(n);
    }
    Ok(match s.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "ipip" => 4,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmp6" | "icmpv6" => 58,
        "sctp" => 132,
        _ => return Err(format!("{s:?} is not an IP protocol name or number")),
    })
}

/// Prints the end-of-run summary, as tcpdump does, then the detail by cause.
fn print_summary(s: &live::LiveSummary, out: &OutputSummary, programs: &XdpPrograms) {
    let t = &out.totals;
    let captured = t.written.packets;
    let anoncap = t.losses.get(LossCause::Ring) + t.losses.get(LossCause::Writer);
    eprintln!("{captured} packets captured");
    eprintln!(
        "{} packets dropped by interface",
        t.losses.get(LossCause::Interface)
    );
    eprintln!(
        "{} packets dropped by kernel",
        t.losses.get(LossCause::Kernel)
    );
    eprintln!(
        "{anoncap} packets dropped by anoncap ({} ring, {} writer)",
        t.losses.get(LossCause::Ring),
        t.losses.get(LossCause::Writer)
    );
    if s.filtered() > 0 {
        eprintln!("{} packets rejected by the filter", s.filtered());
    }
    if s.out_of_order > 0 {
        eprintln!(
            "{} packets written out of order (later than the reorder window)",
            s.out_of_order
        );
    }
    for (name, n) in t.cuts.named() {
        eprintln!("  cut short of their headers: {n} ({name})");
    }
    for (name, n) in t.dropped.named() {
        eprintln!("  dropped by the rewriter: {n} ({name})");
    }
    for src in &s.sources {
        eprintln!(
            "  {}@{}: {} received, {} ring, {} kernel (rx_dropped {}, rx_ring_full {})",
            src.iface,
            src.queue,
            src.received,
            src.ring_lost,
            src.kernel.kernel_losses(),
            src.kernel.rx_dropped,
            src.kernel.rx_ring_full
        );
    }
    for ((iface, c), (_, mode)) in programs.counters().iter().zip(programs.modes()) {
        eprintln!(
            "  XDP program on {iface} ({}): {} seen, {} redirected, {} cut to headers, {} walked \
             partly, {} passed (no socket {}, prefilter {}), {} lost (metadata {}, redirect {})",
            mode_name(mode),
            c.seen,
            c.redirected,
            c.truncated,
            c.unparsed,
            c.passed(),
            c.pass_no_socket,
            c.pass_filtered,
            c.meta_failed + c.redirect_missed,
            c.meta_failed,
            c.redirect_missed
        );
    }
    for f in &out.files {
        eprintln!("wrote {}", f.display());
    }
}

#[cfg(test)]
mod tests {
    use super::IfaceSpec;

    #[test]
    fn iface_specs() {
        let s: IfaceSpec = "eth0@0-3".parse().unwrap();
        assert_eq!((s.name.as_str(), s.queues), ("eth0", Some((0, 3))));
        let s: IfaceSpec = "eth1@2".parse().unwrap();
        assert_eq!(s.queues, Some((2, 2)));
        assert_eq!("eth2".parse::<IfaceSpec>().unwrap().queues, None);
        assert!("eth0@3-1".parse::<IfaceSpec>().is_err());
        assert!("eth0@x".parse::<IfaceSpec>().is_err());
        assert!("@1".parse::<IfaceSpec>().is_err());
    }
}
