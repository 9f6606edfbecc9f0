//! `anoncap convert IN OUT`: between ERF, pcap and pcapng, e.g. so that tcpreplay (which reads
//! pcap) can replay an ERF trace.
//!
//! - The output format comes from `--format` or from OUT's extension (`.erf`, `.pcap`,
//!   `.pcapng`).
//! - pcap is written with the nanosecond magic (a1b23c4d) and pcapng with `if_tsresol` = 9, so
//!   ERF timestamps keep nanosecond precision. Writing uses pcap-file's writers.
//! - ERF IPv4/IPv6 records become LINKTYPE_RAW (101); ERF Ethernet becomes LINKTYPE_ETHERNET.
//!   An ERF Ethernet interface counts the 4-byte FCS in its wire lengths (DAG convention), so
//!   the pcap link-type field carries "FCS present, 4 bytes" and pcapng `if_fcslen` = 32: wire
//!   lengths and bytes stay exactly as recorded, and readers know the last 4 bytes of a complete
//!   frame are the FCS. Writing ERF uses `capture::erf::encode_packet`; wire lengths are copied
//!   as they are (ERF written by anoncap counts no FCS: see docs/formats.md).
//! - `--pad` pads each frame with zeros back to its wire length, so that tcpreplay reproduces
//!   the original byte rate of a header-only trace.
//! - Packets that the output format cannot hold (e.g. a Linux cooked frame into ERF) are left
//!   out and counted on stderr.

use anyhow::{bail, Context};
use capture::erf::encode_packet;
use capture::input::pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use capture::input::pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use capture::input::pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use capture::input::pcap_file::pcapng::PcapNgWriter;
use capture::input::pcap_file::{DataLink, Endianness, TsResolution};
use capture::input::{Format, InterfaceDesc, Trace};
use capture::packet::{FrameKind, LinkType, Packet};
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Output formats of `anoncap convert`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// ERF records (Ethernet, IPv4, IPv6).
    Erf,
    /// pcap with nanosecond timestamps.
    Pcap,
    /// pcapng with nanosecond timestamps.
    Pcapng,
}

impl OutFormat {
    fn name(self) -> &'static str {
        match self {
            OutFormat::Erf => "ERF",
            OutFormat::Pcap => "pcap",
            OutFormat::Pcapng => "pcapng",
        }
    }
}

/// Flags of `anoncap convert`.
#[derive(clap::Args)]
pub struct Args {
    /// The trace to read (pcap, pcapng or ERF; detected from its content).
    input: PathBuf,
    /// The file to write.
    output: PathBuf,
    /// Output format (default: from OUT's extension).
    #[arg(long, value_enum)]
    format: Option<OutFormat>,
    /// Pad each frame with zeros to its wire length (for replay at the original byte rate).
    #[arg(long)]
    pad: bool,
}

/// The largest snap length libpcap accepts; used when the input sets none or with `--pad`.
const MAX_SNAPLEN: u32 = 262_144;

/// Runs `anoncap convert`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        Some(f) => f,
        None => from_extension(&args.output)?,
    };
    let trace = Trace::open(&args.input).context("cannot convert")?;
    let ifaces = trace.interfaces();
    let from_erf = trace.format() == Format::Erf;
    let file = File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let out = BufWriter::with_capacity(1 << 20, file);
    let sink: anyhow::Result<Box<dyn Sink>> = match format {
        OutFormat::Pcap => {
            PcapSink::new(out, &ifaces, from_erf, args.pad).map(|s| Box::new(s) as Box<dyn Sink>)
        }
        OutFormat::Pcapng => {
            NgSink::new(out, &ifaces, from_erf, args.pad).map(|s| Box::new(s) as _)
        }
        OutFormat::Erf => Ok(Box::new(ErfSink::new(out))),
    };
    let mut sink = match sink {
        Ok(s) => s,
        Err(e) => {
            // Nothing useful was written: leave no empty output behind.
            let _ = std::fs::remove_file(&args.output);
            return Err(e.context(format!("cannot convert {}", args.input.display())));
        }
    };
    let mut padded = Vec::new();
    let mut written = 0u64;
    let mut left_out: Vec<(LinkType, u64)> = Vec::new();
    let mut packets = trace.packets();
    let mut input_error = None;
    for (n, item) in packets.by_ref().enumerate() {
        let mut p = match item {
            Ok(p) => p,
            Err(e) => {
                input_error = Some(e);
                break;
            }
        };
        if args.pad && p.data.len() < p.wlen as usize {
            padded.clear();
            padded.extend_from_slice(p.data);
            padded.resize(p.wlen as usize, 0);
            p.data = &padded;
        }
        let wrote = sink.write(&p).with_context(|| {
            format!(
                "{}: cannot write packet {} (read from {})",
                args.output.display(),
                n + 1,
                args.input.display()
            )
        })?;
        if wrote {
            written += 1;
        } else {
            match left_out.iter_mut().find(|(l, _)| *l == p.link) {
                Some((_, c)) => *c += 1,
                None => left_out.push((p.link, 1)),
            }
        }
    }
    sink.finish()
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    for m in packets.skipped().messages() {
        eprintln!("anoncap convert: {m}");
    }
    for (l, n) in left_out {
        eprintln!(
            "anoncap convert: left out {n} packet(s) of link type {} ({}): {} output \
             cannot hold them",
            l.linktype(),
            capture::input::linktype_name(l.linktype()),
            format.name()
        );
    }
    if let Some(e) = input_error {
        return Err(anyhow::Error::new(e).context(format!(
            "{} holds the {written} packets read before this error",
            args.output.display()
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn from_extension(out: &Path) -> anyhow::Result<OutFormat> {
    match out
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("erf") => Ok(OutFormat::Erf),
        Some("pcap" | "cap") => Ok(OutFormat::Pcap),
        Some("pcapng" | "ntar") => Ok(OutFormat::Pcapng),
        _ => bail!(
            "cannot tell the output format from {}: give --format erf|pcap|pcapng",
            out.display()
        ),
    }
}

/// A writer of one output format. `write` returns false when the format cannot hold the
/// packet (it is left out and counted).
trait Sink {
    fn write(&mut self, p: &Packet<'_>) -> anyhow::Result<bool>;
    fn finish(self: Box<Self>) -> anyhow::Result<()>;
}

/// The link type a packet is written with in pcap/pcapng: ERF IPv4/IPv6 become raw IP (101).
fn out_link(l: LinkType, from_erf: bool) -> LinkType {
    match l {
        LinkType::Ipv4 | LinkType::Ipv6 if from_erf => LinkType::RawIp,
        other => other,
    }
}

fn duration(p: &Packet<'_>) -> Duration {
    let (s, ns) = p.ts.to_secs_nanos();
    Duration::new(s, ns)
}

struct PcapSink {
    w: PcapWriter<BufWriter<File>>,
    link: LinkType,
    from_erf: bool,
}

impl PcapSink {
    fn new(
        out: BufWriter<File>,
        ifaces: &[InterfaceDesc],
        from_erf: bool,
        pad: bool,
    ) -> anyhow::Result<Self> {
        let mut links: Vec<LinkType> = Vec::new();
        for l in ifaces.iter().filter_map(|i| i.link) {
            let l = out_link(l, from_erf);
            if !links.contains(&l) {
                links.push(l);
            }
        }
        let ip_only = links
            .iter()
            .all(|l| matches!(l, LinkType::RawIp | LinkType::Ipv4 | LinkType::Ipv6));
        let link = match links.as_slice() {
            [] => LinkType::Ethernet,
            [one] => *one,
            _ if ip_only => LinkType::RawIp,
            _ => bail!(
                "pcap holds one link type, and this trace has several ({}): convert to pcapng",
                links
                    .iter()
                    .map(|l| capture::input::linktype_name(l.linktype()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let used: Vec<&InterfaceDesc> = ifaces
            .iter()
            .filter(|i| i.link.map(|l| out_link(l, from_erf)) == Some(link))
            .collect();
        let snaplen = if pad || used.iter().any(|i| i.snaplen == 0) || used.is_empty() {
            MAX_SNAPLEN
        } else {
            used.iter().map(|i| i.snaplen).max().unwrap_or(MAX_SNAPLEN)
        };
        let mut linktype = link.linktype();
        // The FCS bits of the pcap link-type field: bit 26 = present, bits 28-31 = length in
        // 16-bit words (draft-ietf-opsawg-pcap). Set when every interface used counts the FCS.
        let fcs: Vec<u32> = used.iter().map(|i| i.fcs_len.unwrap_or(0)).collect();
        if let Some(&f) = fcs.first() {
            if f > 0 && f % 2 == 0 && f <= 30 && fcs.iter().all(|&x| x == f) {
                linktype |= 0x0400_0000 | ((f / 2) << 28);
            }
        }
        let header = PcapHeader {
            snaplen,
            datalink: DataLink::from(linktype),
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        Ok(PcapSink {
            w: PcapWriter::with_header(out, header)?,
            link,
            from_erf,
        })
    }
}

impl Sink for PcapSink {
    fn write(&mut self, p: &Packet<'_>) -> anyhow::Result<bool> {
        if out_link(p.link, self.from_erf) != self.link
            && !(self.link == LinkType::RawIp
                && matches!(p.link, LinkType::Ipv4 | LinkType::Ipv6 | LinkType::RawIp))
        {
            return Ok(false);
        }
        let pkt = PcapPacket::new(duration(p), p.wlen, p.data);
        self.w.write_packet(&pkt)?;
        Ok(true)
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        self.w.into_writer().flush()?;
        Ok(())
    }
}

struct NgSink {
    w: PcapNgWriter<BufWriter<File>>,
    ifaces: usize,
}

impl NgSink {
    fn new(
        out: BufWriter<File>,
        ifaces: &[InterfaceDesc],
        from_erf: bool,
        pad: bool,
    ) -> anyhow::Result<Self> {
        let mut w = PcapNgWriter::with_endianness(out, Endianness::Little)?;
        for i in ifaces {
            let lt = match i.link {
                Some(l) => out_link(l, from_erf).linktype(),
                None => i.linktype,
            };
            let mut options = vec![InterfaceDescriptionOption::IfTsResol(9)];
            if let Some(n) = &i.name {
                options.push(InterfaceDescriptionOption::IfName(Cow::Owned(n.clone())));
            }
            if let Some(f) = i.fcs_len {
                // if_fcslen counts bits.
                if let Ok(bits) = u8::try_from(f * 8) {
                    options.push(InterfaceDescriptionOption::IfFcsLen(bits));
                }
            }
            w.write_pcapng_block(InterfaceDescriptionBlock {
                linktype: DataLink::from(lt),
                // Padded frames are as long as on the wire: no snap length.
                snaplen: if pad { 0 } else { i.snaplen },
                options,
            })?;
        }
        Ok(NgSink {
            w,
            ifaces: ifaces.len(),
        })
    }
}

impl Sink for NgSink {
    fn write(&mut self, p: &Packet<'_>) -> anyhow::Result<bool> {
        if usize::from(p.iface) >= self.ifaces {
            bail!(
                "packet of interface {}, which the input did not describe",
                p.iface
            );
        }
        let epb = EnhancedPacketBlock {
            interface_id: u32::from(p.iface),
            timestamp: duration(p),
            original_len: p.wlen,
            data: Cow::Borrowed(p.data),
            options: Vec::new(),
        };
        self.w.write_pcapng_block(epb)?;
        Ok(true)
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        self.w.into_inner().flush()?;
        Ok(())
    }
}

struct ErfSink {
    w: BufWriter<File>,
    buf: Vec<u8>,
}

impl ErfSink {
    fn new(w: BufWriter<File>) -> Self {
        ErfSink {
            w,
            buf: vec![0u8; 65_536 + 64],
        }
    }
}

impl Sink for ErfSink {
    fn write(&mut self, p: &Packet<'_>) -> anyhow::Result<bool> {
        let kind = match p.link {
            LinkType::Ethernet => FrameKind::Ethernet,
            LinkType::Ipv4 => FrameKind::Ipv4,
            LinkType::Ipv6 => FrameKind::Ipv6,
            LinkType::RawIp => match p.data.first().map(|b| b >> 4) {
                Some(4) => FrameKind::Ipv4,
                Some(6) => FrameKind::Ipv6,
                _ => return Ok(false),
            },
            LinkType::LinuxSll | LinkType::LinuxSll2 | LinkType::Null => return Ok(false),
        };
        let Ok(wlen) = u16::try_from(p.wlen) else {
            bail!("wire length {} does not fit ERF's 16-bit wlen", p.wlen);
        };
        let n = encode_packet(
            &mut self.buf,
            p.ts,
            p.iface,
            kind,
            p.lost_before,
            wlen,
            p.data,
        )?;
        self.w.write_all(&self.buf[..n])?;
        Ok(true)
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.w.flush()?;
        Ok(())
    }
}
