//! `anoncap-send`: load for the live-capture benchmark, sent out of one end of a veth pair
//! through the XDP transmit path (BPF_PROG_RUN in live-frames mode, see `bpf::sender`), which
//! does not push back on the sender when the receiver is slow.
//!
//! The receiving veth must run an XDP program (`anoncap capture` attaches one) or have GRO on
//! (`ethtool -K PEER gro on`); otherwise veth drops every frame, which the tool reports as an
//! error. Frames are only ever sent on the veth named, meant to be a link the caller created
//! inside network namespaces. With `--netns NS` the tool enters the namespace itself (setns on
//! its only thread, before anything else); running it under `ip netns exec NS` works as well.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bpf::sender::{
    self, Interface, LiveFrameSender, SendPlan, SendReport, DEFAULT_BATCH, MAX_BATCH, MAX_FRAMES,
    MIN_FRAME_LEN, SYNTHETIC_HOSTS,
};
use capture::input::Trace;
use capture::packet::LinkType;
use clap::{ArgGroup, Parser};

/// Send frames out of a veth through the XDP transmit path (BPF_PROG_RUN, live frames).
///
/// The peer veth must run an XDP program (anoncap capture attaches one) or have GRO on.
/// Reports frames requested, handed to the kernel, offered to the link and delivered to the
/// peer (the sending veth's xdp_xmit / xdp_xmit_errors counters). Must run as root.
#[derive(Parser, Debug)]
#[command(name = "anoncap-send", version, about)]
#[command(group(ArgGroup::new("source").required(true).args(["trace", "synthetic"])))]
struct Args {
    /// The sending veth (frames go to its peer).
    #[arg(long, value_name = "IF")]
    iface: String,
    /// Enter this network namespace first (a name under /run/netns, or a path).
    #[arg(long, value_name = "NS")]
    netns: Option<String>,
    /// Send the Ethernet frames of this pcap, pcapng or ERF trace, in order, looping.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Send synthetic Ethernet/IPv4/UDP frames of SIZE bytes on the wire (FCS included, so
    /// 64 gives 60-byte frames) between hosts of 198.18.0.0/15.
    #[arg(long, value_name = "SIZE")]
    synthetic: Option<usize>,
    /// Distinct synthetic frames (one source and one destination host each).
    #[arg(long, value_name = "N", default_value_t = SYNTHETIC_HOSTS, requires = "synthetic")]
    hosts: usize,
    /// Rate limit in frames per second (default: top speed).
    #[arg(long, value_name = "N")]
    pps: Option<u64>,
    /// Frames to send (default for a trace: each sendable frame once).
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    count: Option<u64>,
    /// Send for this long (e.g. 10s, 500ms).
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Frames per kernel batch (1-256); with --pps also the frames per call (burst).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH)]
    batch: u32,
    /// Print the report as one JSON object on standard output.
    #[arg(long)]
    json: bool,
}

/// Frames of a trace that were not sent, by reason.
#[derive(Debug, Default)]
struct Skipped {
    /// Not Ethernet (other link types).
    other_link: u64,
    /// Longer than the interface's MTU + 14 (+ 4 for a VLAN-tagged frame).
    oversize: u64,
    /// Shorter than an Ethernet header.
    short: u64,
}

fn trace_frames(path: &Path, iface: &Interface) -> Result<(Vec<Vec<u8>>, Skipped, u64)> {
    let trace = Trace::open(path).with_context(|| format!("opening {}", path.display()))?;
    let ifaces = trace.interfaces();
    let mut frames = Vec::new();
    let mut skipped = Skipped::default();
    let mut fcs_stripped = 0;
    for p in trace.packets() {
        let p = p.with_context(|| format!("reading {}", path.display()))?;
        if p.link != LinkType::Ethernet {
            skipped.other_link += 1;
            continue;
        }
        let mut data = p.data;
        let fcs = ifaces
            .get(usize::from(p.iface))
            .is_some_and(|d| d.fcs_included());
        if fcs && data.len() as u64 == u64::from(p.wlen) && data.len() >= MIN_FRAME_LEN + 4 {
            data = &data[..data.len() - 4];
            fcs_stripped += 1;
        }
        if data.len() < MIN_FRAME_LEN {
            skipped.short += 1;
        } else if !iface.fits(data) {
            skipped.oversize += 1;
        } else {
            if frames.len() == MAX_FRAMES {
                bail!(
                    "{} has more than {MAX_FRAMES} sendable frames (the frame table's limit); \
                     cut it with editcap -r",
                    path.display()
                );
            }
            frames.push(data.to_vec());
        }
    }
    Ok((frames, skipped, fcs_stripped))
}

fn json_report(
    args: &Args,
    r: &SendReport,
    table: usize,
    skipped: &Skipped,
    guard: bool,
) -> serde_json::Value {
    serde_json::json!({
        "iface": args.iface,
        "netns": args.netns,
        "source": match (&args.trace, args.synthetic) {
            (Some(t), _) => format!("trace:{}", t.display()),
            (None, Some(s)) => format!("synthetic:{s}"),
            _ => String::new(),
        },
        "frames_in_table": table,
        "skipped_other_link": skipped.other_link,
        "skipped_oversize": skipped.oversize,
        "skipped_short": skipped.short,
        "requested": r.requested,
        "handed": r.handed,
        "transmitted": r.transmitted,
        "aborted": r.aborted,
        "offered": r.offered,
        "delivered": r.delivered,
        "peer_refused": r.peer_refused,
        "lost_before_link": r.lost_before_link(),
        "elapsed_s": r.elapsed.as_secs_f64(),
        "pps": r.pps(),
        "delivered_pps": r.delivered_pps(),
        "pps_limit": args.pps,
        "batch": args.batch,
        "calls": r.calls,
        "interrupted": r.interrupted,
        "dispatcher_guard": guard,
    })
}

fn run(args: &Args) -> Result<()> {
    sender::require_root()?;
    if let Some(ns) = &args.netns {
        sender::enter_netns(ns)?;
    }
    if !(1..=MAX_BATCH).contains(&args.batch) {
        bail!("--batch {} outside 1..={MAX_BATCH}", args.batch);
    }
    if args.pps == Some(0) {
        bail!("--pps must be at least 1");
    }
    let iface = Interface::lookup(&args.iface)?;
    if !iface.is_veth() {
        return Err(sender::SendError::NotVeth {
            name: iface.name.clone(),
            driver: iface.driver.clone(),
        }
        .into());
    }
    let mut skipped = Skipped::default();
    let frames = match (&args.trace, args.synthetic) {
        (Some(path), _) => {
            let (frames, s, fcs_stripped) = trace_frames(path, &iface)?;
            skipped = s;
            if skipped.other_link + skipped.oversize + skipped.short > 0 {
                eprintln!(
                    "anoncap-send: skipped {} non-Ethernet, {} longer than MTU {} + 14 (+4 \
                     tagged), {} shorter than 14 bytes",
                    skipped.other_link, skipped.oversize, iface.mtu, skipped.short
                );
            }
            if fcs_stripped > 0 {
                eprintln!("anoncap-send: removed the FCS of {fcs_stripped} frames");
            }
            if frames.is_empty() {
                bail!(
                    "{} has no Ethernet frame this link can send",
                    path.display()
                );
            }
            frames
        }
        (None, Some(size)) => {
            if size < 64 || size - 4 > iface.mtu as usize + 14 {
                bail!(
                    "--synthetic {size}: frames of 64..={} bytes fit MTU {}",
                    iface.mtu + 18,
                    iface.mtu
                );
            }
            sender::synthetic_frames(size, args.hosts)?
        }
        (None, None) => bail!("give --trace or --synthetic"),
    };
    let count = match (args.count, args.duration, &args.trace) {
        (Some(c), _, _) => Some(c),
        (None, Some(_), _) => None,
        (None, None, Some(_)) => Some(frames.len() as u64),
        (None, None, None) => bail!("--synthetic needs --count or --duration"),
    };
    if count == Some(0) {
        bail!("--count must be at least 1");
    }
    let mut snd = LiveFrameSender::new(&iface, &frames)?;
    let guard = snd.has_dispatcher_guard();
    if !guard {
        eprintln!(
            "anoncap-send: lo already has an XDP program: every call pays two RCU grace periods \
             (slow, above all with --pps)"
        );
    }
    let report = snd.run(&SendPlan {
        count,
        duration: args.duration,
        pps: args.pps,
        batch: args.batch,
    })?;
    if args.json {
        println!(
            "{}",
            json_report(args, &report, frames.len(), &skipped, guard)
        );
    } else {
        println!("{report}");
    }
    if report.aborted > 0 {
        eprintln!(
            "anoncap-send: the program could not build {} frames",
            report.aborted
        );
    }
    if report.transmitted > 0 && report.offered == 0 {
        bail!(
            "the kernel took {} frames but {} passed none to its peer: the receiving veth needs \
             an XDP program (anoncap capture attaches one) or GRO (ethtool -K PEER gro on), and \
             both ends must be up",
            report.transmitted,
            iface.name
        );
    }
    if report.lost_before_link() > 0 {
        eprintln!(
            "anoncap-send: {} frames never reached the link (receiver without XDP/GRO for a \
             while, link down, or frames longer than the peer's MTU)",
            report.lost_before_link()
        );
    }
    if report.interrupted {
        eprintln!("anoncap-send: interrupted by a signal");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("anoncap-send: {e:#}");
            ExitCode::FAILURE
        }
    }
}
