//! pcapng input, on top of `pcap_file::pcapng::PcapNgParser`.
//!
//! The crate frames every block (`next_raw_block`: lengths, trailer, byte order of each
//! section) and parses section headers and interface description blocks. What is done here, on
//! top of it, with the evidence from pcap-file 2.0.0's sources:
//!
//! - Packet timestamps. `EnhancedPacketBlock::from_slice` returns
//!   `Duration::from_nanos(raw)` whatever the interface's `if_tsresol` (default 10^-6 s), so a
//!   microsecond file would come out 1000 times too early. The enhanced (and obsolete) packet
//!   block's fixed 20-byte header is therefore read here, the raw 64-bit count scaled by the
//!   interface's `if_tsresol` (powers of 10 or of 2) and `if_tsoffset` (signed seconds; the
//!   crate reads it as u64) added. Reading the fixed header directly also avoids the crate's
//!   per-packet option `Vec` (an allocation per packet that has options) and its rejection of a
//!   whole packet for an option it dislikes (e.g. a non-UTF-8 comment).
//! - Simple packet blocks. `SimplePacketBlock::from_slice` returns the whole rest of the body
//!   as data, including the padding to 32 bits. The captured length is
//!   `min(original length, snaplen)` (snaplen 0: no limit), as the pcapng specification says.
//!   They have no timestamp: they get the previous packet's timestamp (0 at the start), so the
//!   output stays in time order.
//! - Interface description blocks the crate rejects. Its option walk fails when a list of
//!   options does not end with `opt_endofopt` ("Invalid option"), and `if_tzone` is checked for
//!   length 1 and then read as u32, so any IDB carrying a 4-byte `if_tzone` fails
//!   ("IfTzone length != 1"). Such a block is read here: link type, snap length and the options
//!   anoncap uses (`if_name`, `if_tsresol`, `if_fcslen`, `if_tsoffset`).
//! - Unknown, custom, name-resolution, statistics and journal blocks are framed by the crate
//!   and skipped without being parsed (they are metadata, never copied to the output).
//!
//! Record numbers count packet blocks (enhanced, simple, obsolete packet blocks), from 1.

use super::{rd_u16, rd_u32, rd_u64, Cursor, InterfaceDesc, RecordError, SkipCounts};
use crate::packet::{LinkType, Packet, Timestamp};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption as IdbOpt;
use pcap_file::pcapng::PcapNgParser;
use pcap_file::{Endianness, PcapError};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

pub(crate) fn is_pcapng(bytes: &[u8]) -> bool {
    bytes.get(..4) == Some(&[0x0a, 0x0d, 0x0d, 0x0a][..])
        && matches!(
            bytes.get(8..12),
            Some([0x1a, 0x2b, 0x3c, 0x4d]) | Some([0x4d, 0x3c, 0x2b, 0x1a])
        )
}

pub(crate) fn check_header(bytes: &[u8]) -> Result<(), String> {
    match PcapNgParser::new(bytes) {
        Ok(_) => Ok(()),
        Err(PcapError::IncompleteBuffer) => {
            Err("the file ends inside the first section header block".to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

pub(crate) fn interfaces(bytes: &[u8]) -> Vec<InterfaceDesc> {
    let mut cur = Cursor {
        bytes,
        offset: 0,
        records: 0,
    };
    let Some(mut r) = NgReader::new(&mut cur) else {
        return Vec::new();
    };
    let mut skipped = SkipCounts::default();
    while let Ok(Some(_)) = r.next(&mut cur, &mut skipped) {}
    r.interfaces()
}

/// Timestamp units of an interface (`if_tsresol`).
#[derive(Copy, Clone, Debug)]
enum Resol {
    /// 10^-n s.
    Pow10(u32),
    /// 2^-n s.
    Pow2(u32),
}

impl Resol {
    fn from_option(v: u8) -> Result<Resol, RecordError> {
        let n = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            Ok(Resol::Pow2(n))
        } else if n <= 19 {
            Ok(Resol::Pow10(n))
        } else {
            Err(RecordError::Corrupt(format!(
                "if_tsresol 10^-{n} s does not fit a 64-bit timestamp"
            )))
        }
    }
}

/// Converts a pcapng timestamp count to ERF form; `None` if out of the 32-bit seconds range.
fn ng_timestamp(raw: u64, resol: Resol, offset_secs: i64) -> Option<Timestamp> {
    let (secs, frac) = match resol {
        Resol::Pow10(n) => {
            let d = 10u64.pow(n);
            let frac = ((u128::from(raw % d)) << 32) / u128::from(d);
            (raw / d, frac as u32)
        }
        Resol::Pow2(n) => {
            let secs = if n >= 64 { 0 } else { raw >> n };
            let sub = if n >= 64 {
                u128::from(raw)
            } else {
                u128::from(raw & ((1u64 << n) - 1))
            };
            let frac = if n >= 32 {
                sub >> (n - 32)
            } else {
                sub << (32 - n)
            };
            (secs, frac as u32)
        }
    };
    let secs = i128::from(secs) + i128::from(offset_secs);
    let secs = u32::try_from(secs).ok()?;
    Some(Timestamp::from_parts(secs, frac))
}

struct NgIface {
    desc: InterfaceDesc,
    resol: Resol,
    offset: i64,
}

pub(crate) struct NgReader<'a> {
    parser: PcapNgParser,
    /// Every interface met so far, across sections.
    ifaces: Vec<NgIface>,
    /// Index in `ifaces` of the current section's interface 0.
    section_base: usize,
    last_ts: Timestamp,
    _bytes: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> NgReader<'a> {
    pub(crate) fn new(cur: &mut Cursor<'a>) -> Option<Self> {
        let (rest, parser) = PcapNgParser::new(cur.bytes).ok()?;
        cur.offset = cur.bytes.len() - rest.len();
        Some(NgReader {
            parser,
            ifaces: Vec::new(),
            section_base: 0,
            last_ts: Timestamp::default(),
            _bytes: std::marker::PhantomData,
        })
    }

    pub(crate) fn interfaces(&self) -> Vec<InterfaceDesc> {
        self.ifaces.iter().map(|i| i.desc.clone()).collect()
    }

    fn big(&self) -> bool {
        matches!(self.parser.section().endianness, Endianness::Big)
    }

    pub(crate) fn next(
        &mut self,
        cur: &mut Cursor<'a>,
        skipped: &mut SkipCounts,
    ) -> Result<Option<Packet<'a>>, RecordError> {
        loop {
            let rest = cur.rest();
            if rest.is_empty() {
                return Ok(None);
            }
            let big = self.big();
            let peek_type = rd_u32(rest, 0, big);
            let (body, block_len, block_type) = match self.parser.next_raw_block(rest) {
                Ok((rem, raw)) => {
                    let len = rest.len() - rem.len();
                    // The body is the block minus its 8-byte header and 4-byte trailer.
                    let body = rest.get(8..len.saturating_sub(4)).unwrap_or(&[]);
                    (body, len, raw.type_)
                }
                Err(PcapError::IncompleteBuffer) => {
                    let need = if rest.len() < 12 {
                        12
                    } else {
                        u64::from(block_total_len(rest, big, peek_type))
                    };
                    return Err(RecordError::Truncated {
                        need: need.max(rest.len() as u64 + 1),
                        have: rest.len() as u64,
                    });
                }
                Err(e) if peek_type == IDB => {
                    // The crate's IDB parser failed (see the module doc); frame and read the
                    // block here.
                    let len = own_framing(rest, big).map_err(|own| match own {
                        Some(r) => r,
                        None => RecordError::Corrupt(format!("interface description: {e}")),
                    })?;
                    let body = &rest[8..len - 4];
                    let iface = own_idb(body, big)?;
                    self.add_iface(iface)?;
                    cur.offset += len;
                    continue;
                }
                Err(e) => return Err(RecordError::Corrupt(e.to_string())),
            };
            match block_type {
                SHB => {
                    self.section_base = self.ifaces.len();
                }
                IDB => {
                    let iface = match self.parser.interfaces().last() {
                        Some(idb) => crate_idb(idb)?,
                        None => own_idb(body, big)?,
                    };
                    self.add_iface(iface)?;
                }
                EPB | PB | SPB => {
                    let pkt = self.packet(block_type, body, big, skipped)?;
                    cur.offset += block_len;
                    cur.records += 1;
                    match pkt {
                        Some(p) => return Ok(Some(p)),
                        None => continue,
                    }
                }
                _ => {}
            }
            // Non-packet blocks: metadata, skipped.
            cur.offset += block_len;
        }
    }

    fn add_iface(&mut self, iface: NgIface) -> Result<(), RecordError> {
        if self.ifaces.len() >= 256 {
            return Err(RecordError::Corrupt(
                "more than 256 interfaces in one file".to_string(),
            ));
        }
        self.ifaces.push(iface);
        Ok(())
    }

    /// Reads a packet block; `Ok(None)` when its link type is skipped (and counted).
    fn packet(
        &mut self,
        ty: u32,
        body: &'a [u8],
        big: bool,
        skipped: &mut SkipCounts,
    ) -> Result<Option<Packet<'a>>, RecordError> {
        let (local_id, raw_ts, caplen, orig_len, drops, data_at) = match ty {
            EPB | PB => {
                if body.len() < 20 {
                    return Err(RecordError::Corrupt(format!(
                        "packet block body of {} bytes, shorter than its 20-byte header",
                        body.len()
                    )));
                }
                let (id, drops) = if ty == EPB {
                    (rd_u32(body, 0, big), 0)
                } else {
                    (u32::from(rd_u16(body, 0, big)), rd_u16(body, 2, big))
                };
                let hi = u64::from(rd_u32(body, 4, big));
                let lo = u64::from(rd_u32(body, 8, big));
                let caplen = rd_u32(body, 12, big);
                let orig = rd_u32(body, 16, big);
                (id, Some((hi << 32) | lo), caplen, orig, drops, 20usize)
            }
            _ => {
                if body.len() < 4 {
                    return Err(RecordError::Corrupt(
                        "simple packet block without its length field".to_string(),
                    ));
                }
                let orig = rd_u32(body, 0, big);
                let snap = self
                    .ifaces
                    .get(self.section_base)
                    .map(|i| i.desc.snaplen)
                    .unwrap_or(0);
                let caplen = if snap == 0 { orig } else { orig.min(snap) };
                (0, None, caplen, orig, 0, 4usize)
            }
        };
        let global = self.section_base + local_id as usize;
        let Some(iface) = self.ifaces.get(global) else {
            return Err(RecordError::UnknownInterface(local_id));
        };
        let (snaplen, resol, offset) = (iface.desc.snaplen, iface.resol, iface.offset);
        let (link, linktype) = (iface.desc.link, iface.desc.linktype);
        if snaplen != 0 && caplen > snaplen {
            return Err(RecordError::ExceedsSnaplen { caplen, snaplen });
        }
        let data = body
            .get(data_at..)
            .and_then(|d| d.get(..caplen as usize))
            .ok_or_else(|| {
                RecordError::Corrupt(format!(
                    "captured length {caplen} runs past the end of its block"
                ))
            })?;
        let ts = match raw_ts {
            Some(raw) => {
                let ts = ng_timestamp(raw, resol, offset).ok_or_else(|| {
                    RecordError::Corrupt("timestamp outside 1970-2106".to_string())
                })?;
                self.last_ts = ts;
                ts
            }
            None => self.last_ts,
        };
        let Some(link) = link else {
            skipped.count_link(linktype);
            return Ok(None);
        };
        Ok(Some(Packet {
            ts,
            link,
            iface: global as u8,
            wlen: orig_len.max(caplen),
            lost_before: drops,
            data,
        }))
    }
}

/// The block's total length field, or 0 if unreadable.
fn block_total_len(rest: &[u8], big: bool, ty: u32) -> u32 {
    if ty == SHB {
        // A section header's length is in the byte order its magic announces.
        let big = rest.get(8..12) == Some(&[0x1a, 0x2b, 0x3c, 0x4d][..]);
        rd_u32(rest, 4, big)
    } else {
        rd_u32(rest, 4, big)
    }
}

/// Frames a block whose body the crate could not parse. `Err(Some(..))`: a framing error;
/// `Err(None)`: framing is fine but the crate's parse error stands.
fn own_framing(rest: &[u8], big: bool) -> Result<usize, Option<RecordError>> {
    let len = rd_u32(rest, 4, big) as usize;
    if len < 12 || len % 4 != 0 {
        return Err(Some(RecordError::Corrupt(format!("block length {len}"))));
    }
    if len > rest.len() {
        return Err(Some(RecordError::Truncated {
            need: len as u64,
            have: rest.len() as u64,
        }));
    }
    if rd_u32(rest, len - 4, big) as usize != len {
        return Err(None);
    }
    Ok(len)
}

fn iface_from(
    linktype: u32,
    snaplen: u32,
    name: Option<String>,
    fcs_bits: Option<u8>,
    resol: u8,
    offset: i64,
) -> Result<NgIface, RecordError> {
    Ok(NgIface {
        desc: InterfaceDesc {
            link: LinkType::from_linktype(linktype),
            linktype,
            // if_fcslen is in bits in the pcapng specification; Wireshark writes it so.
            fcs_len: fcs_bits.map(|b| u32::from(b) / 8),
            snaplen,
            name,
        },
        resol: Resol::from_option(resol)?,
        offset,
    })
}

fn crate_idb(
    idb: &pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock<'_>,
) -> Result<NgIface, RecordError> {
    let mut name = None;
    let mut fcs = None;
    let mut resol = 6u8;
    let mut offset = 0i64;
    for opt in &idb.options {
        match opt {
            IdbOpt::IfName(n) => name = Some(n.to_string()),
            IdbOpt::IfFcsLen(b) => fcs = Some(*b),
            IdbOpt::IfTsResol(r) => resol = *r,
            // pcapng: if_tsoffset is a signed 64-bit count of seconds; the crate reads u64.
            IdbOpt::IfTsOffset(o) => offset = *o as i64,
            _ => {}
        }
    }
    iface_from(
        u32::from(idb.linktype),
        idb.snaplen,
        name,
        fcs,
        resol,
        offset,
    )
}

/// Reads an interface description body: link type, snap length and the options used here.
/// Malformed options end the walk (the fixed fields are what matters).
fn own_idb(body: &[u8], big: bool) -> Result<NgIface, RecordError> {
    if body.len() < 8 {
        return Err(RecordError::Corrupt(
            "interface description shorter than 8 bytes".to_string(),
        ));
    }
    let linktype = u32::from(rd_u16(body, 0, big));
    let snaplen = rd_u32(body, 4, big);
    let mut name = None;
    let mut fcs = None;
    let mut resol = 6u8;
    let mut offset = 0i64;
    let mut at = 8usize;
    while at + 4 <= body.len() {
        let code = rd_u16(body, at, big);
        let len = usize::from(rd_u16(body, at + 2, big));
        let Some(val) = body.get(at + 4..at + 4 + len) else {
            break;
        };
        match (code, len) {
            (0, _) => break,
            (2, _) => name = Some(String::from_utf8_lossy(val).into_owned()),
            (9, 1) => resol = val[0],
            (13, 1) => fcs = Some(val[0]),
            (14, 8) => offset = rd_u64(val, 0, big) as i64,
            _ => {}
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    iface_from(linktype, snaplen, name, fcs, resol, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_follow_tsresol() {
        // 1.5 s in microseconds, nanoseconds, and 2^-10 units.
        let us = ng_timestamp(1_500_000, Resol::Pow10(6), 0).unwrap();
        let ns = ng_timestamp(1_500_000_000, Resol::Pow10(9), 0).unwrap();
        let b2 = ng_timestamp(1536, Resol::Pow2(10), 0).unwrap();
        for t in [us, ns, b2] {
            assert_eq!(t, Timestamp::from_parts(1, 0x8000_0000));
        }
        // if_tsoffset adds seconds, and may be negative.
        assert_eq!(
            ng_timestamp(1_000_000, Resol::Pow10(6), 100)
                .unwrap()
                .secs(),
            101
        );
        assert_eq!(
            ng_timestamp(5_000_000, Resol::Pow10(6), -2).unwrap().secs(),
            3
        );
        assert!(ng_timestamp(0, Resol::Pow10(6), -1).is_none());
        // 2^-64 units: everything is a fraction.
        let t = ng_timestamp(1 << 63, Resol::Pow2(64), 0).unwrap();
        assert_eq!(t, Timestamp::from_parts(0, 0x8000_0000));
        assert!(Resol::from_option(20).is_err());
        assert!(Resol::from_option(0x80 | 100).is_ok());
    }
}
