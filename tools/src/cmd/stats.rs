//! `anoncap stats FILE...`: what a trace holds, like capinfos, plus a protocol breakdown.
//!
//! The protocol classification is deliberately small (it does not use the rewriter): the
//! outermost network protocol (IPv4, IPv6, ARP, other) after Ethernet, VLAN tags and MPLS
//! labels, LLC/SNAP, Linux cooked or loopback headers; and for IP packets the transport protocol (after
//! IPv6 extension headers): TCP, UDP, ICMP, ICMPv6, other. Tunnels are not followed.
//!
//! # No-panic contract
//! Every read below is bounds-checked (`get`), so no input bytes make it panic.

use anyhow::Context;
use capture::input::{linktype_name, Format, SkipCounts, Trace};
use capture::packet::{LinkType, Packet, Timestamp};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `anoncap stats`.
#[derive(clap::Args)]
pub struct Args {
    /// Traces to describe (pcap, pcapng or ERF; the format is detected from the content).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print one JSON object (per-file entries and a total) instead of text.
    #[arg(long)]
    json: bool,
}

/// Network-layer classes, in output order.
const L3: [&str; 4] = ["ipv4", "ipv6", "arp", "other"];
/// Transport classes of IP packets, in output order.
const L4: [&str; 5] = ["tcp", "udp", "icmp", "icmpv6", "other"];

#[derive(Default, Clone)]
struct Stats {
    formats: Vec<Format>,
    links: Vec<(LinkType, u64)>,
    packets: u64,
    cap_bytes: u64,
    wire_bytes: u64,
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    losses: u64,
    l3: [u64; 4],
    l4: [u64; 5],
    skipped: SkipCounts,
}

impl Stats {
    fn count(&mut self, p: &Packet<'_>) {
        self.packets += 1;
        self.cap_bytes += p.data.len() as u64;
        self.wire_bytes += u64::from(p.wlen);
        self.losses += u64::from(p.lost_before);
        self.first = Some(self.first.map_or(p.ts, |f| f.min(p.ts)));
        self.last = Some(self.last.map_or(p.ts, |l| l.max(p.ts)));
        match self.links.iter_mut().find(|(l, _)| *l == p.link) {
            Some((_, n)) => *n += 1,
            None => self.links.push((p.link, 1)),
        }
        let (l3, l4) = classify(p.link, p.data);
        self.l3[l3] += 1;
        if let Some(l4) = l4 {
            self.l4[l4] += 1;
        }
    }

    fn add(&mut self, o: &Stats) {
        for f in &o.formats {
            if !self.formats.contains(f) {
                self.formats.push(*f);
            }
        }
        for &(l, n) in &o.links {
            match self.links.iter_mut().find(|(x, _)| *x == l) {
                Some((_, c)) => *c += n,
                None => self.links.push((l, n)),
            }
        }
        self.packets += o.packets;
        self.cap_bytes += o.cap_bytes;
        self.wire_bytes += o.wire_bytes;
        self.losses += o.losses;
        self.first = [self.first, o.first].into_iter().flatten().min();
        self.last = [self.last, o.last].into_iter().flatten().max();
        for i in 0..4 {
            self.l3[i] += o.l3[i];
        }
        for i in 0..5 {
            self.l4[i] += o.l4[i];
        }
        self.skipped.add(&o.skipped);
    }

    /// Seconds between the first and last packet.
    fn duration(&self) -> f64 {
        match (self.first, self.last) {
            (Some(f), Some(l)) => (l.0 - f.0) as f64 / 4_294_967_296.0,
            _ => 0.0,
        }
    }

    fn json(&self, name: &str) -> serde_json::Value {
        let d = self.duration();
        let rate = |x: u64| if d > 0.0 { x as f64 / d } else { 0.0 };
        json!({
            "file": name,
            "format": self.formats.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "link_types": self.links.iter().map(|(l, n)| json!({
                "linktype": l.linktype(), "name": linktype_name(l.linktype()), "packets": n
            })).collect::<Vec<_>>(),
            "packets": self.packets,
            "bytes_captured": self.cap_bytes,
            "bytes_on_wire": self.wire_bytes,
            "first": self.first.map(|t| t.to_string()),
            "last": self.last.map(|t| t.to_string()),
            "duration_s": d,
            "packets_per_s": rate(self.packets),
            "bits_per_s": rate(self.wire_bytes * 8),
            "losses_recorded": self.losses,
            "network": L3.iter().zip(self.l3).map(|(k, v)| (k.to_string(), json!(v)))
                .collect::<serde_json::Map<_, _>>(),
            "transport": L4.iter().zip(self.l4).map(|(k, v)| (k.to_string(), json!(v)))
                .collect::<serde_json::Map<_, _>>(),
            "skipped": self.skipped.described().into_iter()
                .map(|(k, v)| json!({"what": k, "count": v})).collect::<Vec<_>>(),
        })
    }

    fn render(&self, name: &str) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let d = self.duration();
        let _ = writeln!(o, "File name:            {name}");
        let formats: Vec<_> = self.formats.iter().map(|f| f.name()).collect();
        let _ = writeln!(o, "File format:          {}", formats.join(", "));
        let links: Vec<String> = self
            .links
            .iter()
            .map(|(l, n)| format!("{} ({n})", linktype_name(l.linktype())))
            .collect();
        let _ = writeln!(o, "Link types:           {}", links.join(", "));
        let _ = writeln!(o, "Number of packets:    {}", self.packets);
        let _ = writeln!(o, "Bytes captured:       {}", self.cap_bytes);
        let _ = writeln!(o, "Bytes on wire:        {}", self.wire_bytes);
        match (self.first, self.last) {
            (Some(f), Some(l)) => {
                let _ = writeln!(o, "First packet time:    {} ({f})", utc(f));
                let _ = writeln!(o, "Last packet time:     {} ({l})", utc(l));
            }
            _ => {
                let _ = writeln!(o, "First packet time:    n/a");
                let _ = writeln!(o, "Last packet time:     n/a");
            }
        }
        let _ = writeln!(o, "Capture duration:     {d:.9} seconds");
        if d > 0.0 {
            let _ = writeln!(
                o,
                "Average rate:         {:.2} packets/s, {:.2} bits/s",
                self.packets as f64 / d,
                (self.wire_bytes * 8) as f64 / d
            );
        } else {
            let _ = writeln!(o, "Average rate:         n/a");
        }
        let _ = writeln!(o, "Losses recorded:      {}", self.losses);
        let l3: Vec<String> = L3
            .iter()
            .zip(self.l3)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(o, "Network protocols:    {}", l3.join(", "));
        let l4: Vec<String> = L4
            .iter()
            .zip(self.l4)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(o, "Transport (IP only):  {}", l4.join(", "));
        for m in self.skipped.messages() {
            let _ = writeln!(o, "Note:                 {m}");
        }
        o
    }
}

/// Runs `anoncap stats`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut total = Stats::default();
    let mut entries = Vec::new();
    let mut failed = None;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.files {
        let trace = Trace::open(path).context("cannot describe the trace")?;
        let mut s = Stats {
            formats: vec![trace.format()],
            ..Stats::default()
        };
        let mut packets = trace.packets();
        for p in packets.by_ref() {
            match p {
                Ok(p) => s.count(&p),
                Err(e) => {
                    failed = Some(anyhow::Error::new(e));
                    break;
                }
            }
        }
        s.skipped = packets.skipped().clone();
        total.add(&s);
        let name = path.display().to_string();
        if args.json {
            entries.push(s.json(&name));
        } else {
            out.write_all(s.render(&name).as_bytes())?;
            out.write_all(b"\n")?;
        }
        if failed.is_some() {
            break;
        }
    }
    if args.json {
        let text = serde_json::to_string_pretty(
            &json!({ "files": entries, "total": total.json("total") }),
        )?;
        writeln!(out, "{text}")?;
    } else if args.files.len() > 1 {
        out.write_all(total.render("(total)").as_bytes())?;
    }
    out.flush()?;
    match failed {
        // Everything before the bad record was counted and printed above.
        Some(e) => Err(e.context("the statistics above stop at this record")),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `YYYY-MM-DD hh:mm:ss.nnnnnnnnn UTC` for a timestamp (proleptic Gregorian calendar).
fn utc(ts: Timestamp) -> String {
    let (secs, ns) = ts.to_secs_nanos();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ns:09} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// (network class index into [`L3`], transport class index into [`L4`] for IP packets).
fn classify(link: LinkType, d: &[u8]) -> (usize, Option<usize>) {
    let be16 = |at: usize| d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (ethertype, at) = match link {
        LinkType::Ethernet => {
            let mut at = 12;
            let mut et = be16(at);
            let mut tags = 0;
            while matches!(et, Some(0x8100 | 0x88a8 | 0x9100)) && tags < 8 {
                at += 4;
                et = be16(at);
                tags += 1;
            }
            // 802.3 length field with an LLC/SNAP header (AA AA 03, OUI, EtherType).
            if et.is_some_and(|len| len < 0x0600)
                && d.get(at + 2..at + 5) == Some(&[0xaa, 0xaa, 0x03][..])
            {
                (be16(at + 8), at + 10)
            } else {
                (et, at + 2)
            }
        }
        LinkType::LinuxSll => (be16(14), 16),
        LinkType::LinuxSll2 => (be16(0), 20),
        LinkType::Null => {
            let af = d.get(..4).map(|b| {
                let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let be = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                le.min(be)
            });
            match af {
                Some(2) => (Some(0x0800), 4),
                Some(24 | 28 | 30) => (Some(0x86dd), 4),
                _ => (None, 4),
            }
        }
        LinkType::RawIp => (ip_version(d.first()), 0),
        LinkType::Ipv4 => (Some(0x0800), 0),
        LinkType::Ipv6 => (Some(0x86dd), 0),
    };
    let (ethertype, at) = match ethertype {
        Some(0x8847 | 0x8848) => {
            // MPLS: skip labels to the bottom of the stack, then guess IP from the nibble.
            let mut at = at;
            let mut n = 0;
            loop {
                let Some(b) = d.get(at + 2) else {
                    return (3, None);
                };
                at += 4;
                n += 1;
                if b & 1 == 1 || n >= 8 {
                    break;
                }
            }
            (ip_version(d.get(at)), at)
        }
        other => (other, at),
    };
    let ip = d.get(at..).unwrap_or(&[]);
    match ethertype {
        Some(0x0800) => (0, Some(transport(ip.get(9).copied(), false))),
        Some(0x86dd) => (1, Some(transport(ipv6_next(ip), true))),
        Some(0x0806) => (2, None),
        _ => (3, None),
    }
}

fn ip_version(b: Option<&u8>) -> Option<u16> {
    match b.map(|b| b >> 4) {
        Some(4) => Some(0x0800),
        Some(6) => Some(0x86dd),
        _ => None,
    }
}

/// The upper-layer protocol of an IPv6 packet, after its extension headers.
fn ipv6_next(ip: &[u8]) -> Option<u8> {
    let mut nh = *ip.get(6)?;
    let mut at = 40usize;
    for _ in 0..8 {
        match nh {
            0 | 43 | 60 => {
                let len = usize::from(*ip.get(at + 1)?) * 8 + 8;
                nh = *ip.get(at)?;
                at += len;
            }
            44 => {
                nh = *ip.get(at)?;
                at += 8;
            }
            51 => {
                let len = usize::from(*ip.get(at + 1)?) * 4 + 8;
                nh = *ip.get(at)?;
                at += len;
            }
            _ => return Some(nh),
        }
    }
    Some(nh)
}

fn transport(proto: Option<u8>, v6: bool) -> usize {
    match proto {
        Some(6) => 0,
        Some(17) => 1,
        Some(1) if !v6 => 2,
        Some(58) if v6 => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        // date -u -d @1369953917 -> 2013-05-30 22:45:17 UTC; @951782400 -> 2000-02-29 00:00:00.
        assert_eq!(
            utc(Timestamp::from_secs_nanos(1_369_953_917, 270_862_000)),
            "2013-05-30 22:45:17.270862000 UTC"
        );
        assert_eq!(
            utc(Timestamp::from_secs_nanos(951_782_400, 0)),
            "2000-02-29 00:00:00.000000000 UTC"
        );
    }

    #[test]
    fn classification() {
        let mut eth = vec![0u8; 60];
        eth[12..14].copy_from_slice(&[0x81, 0x00]);
        eth[16..18].copy_from_slice(&[0x08, 0x00]);
        eth[18] = 0x45;
        eth[27] = 17;
        assert_eq!(classify(LinkType::Ethernet, &eth), (0, Some(1)));
        eth[16..18].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(classify(LinkType::Ethernet, &eth), (2, None));
        let mut v6 = vec![0u8; 60];
        v6[0] = 0x60;
        v6[6] = 0; // hop-by-hop, then ICMPv6
        v6[40] = 58;
        assert_eq!(classify(LinkType::Ipv6, &v6), (1, Some(3)));
        assert_eq!(classify(LinkType::RawIp, &[]), (3, None));
        assert_eq!(classify(LinkType::Null, &[2, 0, 0, 0]), (0, Some(4)));
    }
}
