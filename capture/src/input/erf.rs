//! ERF input: a walk over ERF records (no file header; each record says its own length).
//!
//! Each record is checked and read through [`crate::erf::Record`] (`check_len`, then
//! `framing_len`, `caplen = min(wlen, rlen - framing)`, `loss`), the project's ERF record view.
//!
//! Packets: Ethernet family -> [`LinkType::Ethernet`], IPv4 (22) -> [`LinkType::Ipv4`],
//! IPv6 (23) -> [`LinkType::Ipv6`]. META (27) and PAD (48) are skipped (not packets), other
//! types skipped and counted. The interface is flags bits 0-1. `lctr` becomes
//! [`Packet::lost_before`] except in the colour types (11, 16, 20), where it is a colour.
//! Wire lengths are as recorded: DAG Ethernet includes the 4-byte FCS (see
//! [`InterfaceDesc::fcs_len`] and `docs/formats.md`).

use super::{rd_u16, rd_u64, Cursor, InterfaceDesc, RecordError, SkipCounts};
use crate::packet::{LinkType, Packet, Timestamp};

const HDR: usize = 16;
const TYPE_META: u8 = 27;
const TYPE_PAD: u8 = 48;
const MAX_TYPE: u8 = 48;
/// 1995-01-01, the earliest plausible ERF timestamp (libtrace's probe uses the same bound).
const MIN_SECS: u32 = 0x2F05_39B0;

fn link_of(ty: u8) -> Option<LinkType> {
    match ty {
        2 | 11 | 16 | 20 => Some(LinkType::Ethernet),
        22 => Some(LinkType::Ipv4),
        23 => Some(LinkType::Ipv6),
        _ => None,
    }
}

/// One parsed record header with the bounds of its data.
struct Rec<'a> {
    ts: Timestamp,
    ty: u8,
    flags: u8,
    rlen: usize,
    lctr: u16,
    wlen: u16,
    data: &'a [u8],
}

/// Parses the record at the start of `rest` with the record view of [`crate::erf`].
fn parse(rest: &[u8]) -> Result<Rec<'_>, RecordError> {
    use crate::erf::{Record, RecordError as E};
    let r = Record::new_checked(rest).map_err(|e| match e {
        E::TruncatedHeader { available } => RecordError::Truncated {
            need: HDR as u64,
            have: available as u64,
        },
        E::RlenPastEnd { rlen, available } => RecordError::Truncated {
            need: u64::from(rlen),
            have: available as u64,
        },
        other => RecordError::Corrupt(format!("ERF {other}")),
    })?;
    // After check_len no accessor panics, and framing + caplen <= rlen <= rest.len().
    let start = r.framing_len();
    let data = &rest[start..start + r.caplen()];
    Ok(Rec {
        ts: r.ts_le(),
        ty: r.type_byte() & 0x7f,
        flags: r.flags(),
        rlen: usize::from(r.rlen_be()),
        lctr: r.loss().unwrap_or(0),
        wlen: r.wlen_be(),
        data,
    })
}

/// Whether `bytes` starts like an ERF file: its first record has a plausible header (type
/// 1-48, flags bit 7 clear, rlen >= 16, a timestamp after 1995 unless it is PAD) and consistent
/// framing, as libtrace's probe requires. A first record cut by the end of the file still
/// counts, so that a truncated trace is reported as such; later records are checked when read,
/// so that a corrupt record 2 is reported as a corrupt record, not as "not a trace".
pub(crate) fn is_erf(bytes: &[u8]) -> bool {
    if bytes.len() < HDR {
        return false;
    }
    let ty = bytes[8] & 0x7f;
    let flags = bytes[9];
    let rlen = usize::from(rd_u16(bytes, 10, true));
    let secs = (rd_u64(bytes, 0, false) >> 32) as u32;
    if ty == 0 || ty > MAX_TYPE || rlen < HDR || flags & 0x80 != 0 {
        return false;
    }
    if ty != TYPE_PAD && secs < MIN_SECS {
        return false;
    }
    match parse(bytes) {
        Ok(_) | Err(RecordError::Truncated { .. }) => true,
        Err(_) => false,
    }
}

pub(crate) fn interfaces(bytes: &[u8]) -> Vec<InterfaceDesc> {
    let mut cur = Cursor {
        bytes,
        offset: 0,
        records: 0,
    };
    let mut r = ErfReader::new();
    let mut skipped = SkipCounts::default();
    while let Ok(Some(_)) = r.next(&mut cur, &mut skipped) {}
    r.interfaces()
}

/// What META interface sections said about one interface.
#[derive(Clone, Default)]
struct MetaIface {
    fcs_bits: Option<u32>,
    name: Option<String>,
}

pub(crate) struct ErfReader {
    /// The link type of the first packet seen on each interface (flags bits 0-1).
    seen: [Option<LinkType>; 4],
    /// Interface facts from META records (interface sections, id = interface + 1).
    meta: [MetaIface; 4],
}

/// Reads the interface sections of a META payload: `fcs_len` (bits) and `name`. (A META
/// `snaplen` is not taken: ERF records are not checked against one.)
/// An interface section's id is the interface number + 1 (bit 15 marks a per-record section);
/// an `if_num` tag, when present, names the interface directly.
fn read_meta(payload: &[u8], meta: &mut [MetaIface; 4]) {
    use crate::erf::meta::{section, tag, TlvIter};
    let mut current: Option<usize> = None;
    for tlv in TlvIter::new(payload) {
        if tlv.tag >= 0xFF00 {
            current = match tlv.section() {
                Some((id, _)) if tlv.tag == section::INTERFACE => {
                    let id = usize::from(id & 0x7fff);
                    (1..=4).contains(&id).then(|| id - 1)
                }
                _ => None,
            };
            continue;
        }
        let Some(i) = current else { continue };
        match tlv.tag {
            tag::IF_NUM => {
                current = tlv
                    .as_u32()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n < 4)
                    .or(current);
            }
            tag::FCS_LEN => meta[i].fcs_bits = tlv.as_u32(),
            tag::NAME => meta[i].name = tlv.as_str().map(str::to_string),
            _ => {}
        }
    }
}

impl ErfReader {
    pub(crate) fn new() -> Self {
        ErfReader {
            seen: [None; 4],
            meta: Default::default(),
        }
    }

    pub(crate) fn interfaces(&self) -> Vec<InterfaceDesc> {
        // Interfaces are numbered by their flags bits, so list 0..=highest seen; one never
        // seen in between is listed with no link type.
        let n = self
            .seen
            .iter()
            .rposition(|s| s.is_some())
            .map_or(0, |i| i + 1);
        let n = n.max(
            self.meta
                .iter()
                .rposition(|m| m.fcs_bits.is_some() || m.name.is_some())
                .map_or(0, |i| i + 1),
        );
        (0..n)
            .map(|i| {
                let link = self.seen[i];
                let meta = &self.meta[i];
                // DAG Ethernet counts the 4-byte FCS unless a META record says otherwise
                // (anoncap's own ERF says fcs_len 0).
                let default_fcs = link.map(|l| if l == LinkType::Ethernet { 4 } else { 0 });
                InterfaceDesc {
                    link,
                    linktype: link.map_or(0, |l| match l {
                        LinkType::Ethernet => 1,
                        _ => 101,
                    }),
                    fcs_len: meta.fcs_bits.map(|b| b / 8).or(default_fcs),
                    snaplen: 0,
                    name: meta.name.clone(),
                }
            })
            .collect()
    }

    pub(crate) fn next<'a>(
        &mut self,
        cur: &mut Cursor<'a>,
        skipped: &mut SkipCounts,
    ) -> Result<Option<Packet<'a>>, RecordError> {
        loop {
            let rest = cur.rest();
            if rest.is_empty() {
                return Ok(None);
            }
            let rec = parse(rest)?;
            cur.offset += rec.rlen;
            cur.records += 1;
            match rec.ty {
                TYPE_META => {
                    skipped.erf_meta += 1;
                    read_meta(rec.data, &mut self.meta);
                }
                TYPE_PAD => skipped.erf_pad += 1,
                ty => match link_of(ty) {
                    None => skipped.count_erf_type(ty),
                    Some(link) => {
                        let iface = rec.flags & 0x03;
                        let slot = &mut self.seen[usize::from(iface)];
                        if slot.is_none() {
                            *slot = Some(link);
                        }
                        return Ok(Some(Packet {
                            ts: rec.ts,
                            link,
                            iface,
                            wlen: u32::from(rec.wlen),
                            lost_before: rec.lctr,
                            data: rec.data,
                        }));
                    }
                },
            }
        }
    }
}
