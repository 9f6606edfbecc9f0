//! pcap input, on top of `pcap_file::pcap::PcapParser`.
//!
//! The crate parses the file header (all four magics: micro/nanosecond, both byte orders) and
//! frames each record (`next_raw_packet`). Its validating `next_packet` is not used, because
//! pcap-file 2.0.0 `PcapPacket::try_from_raw_packet` rejects `orig_len > snap_len` ("PacketHeader
//! orig_len > snap_len"): that refuses every snap-length-truncated capture, which is the normal
//! case (e.g. testdata `libtrace-ip-in-mpls.pcap`: snaplen 256, wire lengths up to 1514), and
//! with snaplen 0 (testdata `pcpp-*.pcap`) it refuses every packet. The checks done here
//! instead: captured length <= snaplen (0 = no limit), captured length <= 256 KiB (libpcap's
//! MAXIMUM_SNAPLEN; larger means a corrupt header), record inside the file.

use super::{Cursor, InterfaceDesc, RecordError, SkipCounts};
use crate::packet::{LinkType, Packet, Timestamp};
use pcap_file::pcap::PcapParser;
use pcap_file::{PcapError, TsResolution};

/// libpcap's largest snap length; a larger captured length is a corrupt record header.
const MAX_CAPLEN: u32 = 262_144;

const MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
];

pub(crate) fn is_pcap(bytes: &[u8]) -> bool {
    bytes
        .get(..4)
        .is_some_and(|m| MAGICS.iter().any(|x| x == m))
}

pub(crate) fn check_header(bytes: &[u8]) -> Result<(), String> {
    match PcapParser::new(bytes) {
        Ok(_) => Ok(()),
        Err(PcapError::IncompleteBuffer) => Err(format!(
            "the file has {} bytes, shorter than the 24-byte pcap header",
            bytes.len()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The link-type field: LINKTYPE in the low 16 bits, FCS length (in 16-bit words) in bits
/// 28-31 when bit 26 is set (draft-ietf-opsawg-pcap, "LinkType and additional information").
fn split_linktype(raw: u32) -> (u32, Option<u32>) {
    let fcs = if raw & 0x0400_0000 != 0 {
        Some(((raw >> 28) & 0xf) * 2)
    } else {
        None
    };
    (raw & 0xffff, fcs)
}

pub(crate) fn interfaces(bytes: &[u8]) -> Vec<InterfaceDesc> {
    match PcapParser::new(bytes) {
        Ok((_, p)) => {
            let h = p.header();
            let (lt, fcs) = split_linktype(h.datalink.into());
            vec![InterfaceDesc {
                link: LinkType::from_linktype(lt),
                linktype: lt,
                fcs_len: fcs,
                snaplen: h.snaplen,
                name: None,
            }]
        }
        Err(_) => Vec::new(),
    }
}

pub(crate) struct PcapReader<'a> {
    parser: PcapParser,
    link: Option<LinkType>,
    linktype: u32,
    nanos: bool,
    snaplen: u32,
    bytes: &'a [u8],
}

impl<'a> PcapReader<'a> {
    pub(crate) fn new(cur: &mut Cursor<'a>) -> Option<Self> {
        let (rest, parser) = PcapParser::new(cur.bytes).ok()?;
        cur.offset = cur.bytes.len() - rest.len();
        let h = parser.header();
        let (lt, _) = split_linktype(h.datalink.into());
        Some(PcapReader {
            link: LinkType::from_linktype(lt),
            linktype: lt,
            nanos: h.ts_resolution == TsResolution::NanoSecond,
            snaplen: h.snaplen,
            parser,
            bytes: cur.bytes,
        })
    }

    pub(crate) fn interfaces(&self) -> Vec<InterfaceDesc> {
        interfaces(self.bytes)
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
            let raw = match self.parser.next_raw_packet(rest) {
                Ok((_, raw)) => raw,
                Err(PcapError::IncompleteBuffer) => {
                    let need = if rest.len() < 16 {
                        16
                    } else {
                        16 + u64::from(self.incl_len(rest))
                    };
                    return Err(RecordError::Truncated {
                        need,
                        have: rest.len() as u64,
                    });
                }
                Err(e) => return Err(RecordError::Corrupt(e.to_string())),
            };
            if self.snaplen != 0 && raw.incl_len > self.snaplen {
                return Err(RecordError::ExceedsSnaplen {
                    caplen: raw.incl_len,
                    snaplen: self.snaplen,
                });
            }
            if raw.incl_len > MAX_CAPLEN {
                return Err(RecordError::Corrupt(format!(
                    "captured length {} is larger than any pcap snap length ({MAX_CAPLEN})",
                    raw.incl_len
                )));
            }
            // Bounds come from the crate's framing; recompute the borrowed slice from the map so
            // its lifetime is the map's.
            let start = cur.offset + 16;
            let data = match cur.bytes.get(start..start + raw.incl_len as usize) {
                Some(d) => d,
                None => {
                    return Err(RecordError::Truncated {
                        need: 16 + u64::from(raw.incl_len),
                        have: rest.len() as u64,
                    })
                }
            };
            cur.offset = start + data.len();
            cur.records += 1;
            let Some(link) = self.link else {
                skipped.count_link(self.linktype);
                continue;
            };
            let ts = if self.nanos {
                Timestamp::from_secs_nanos(u64::from(raw.ts_sec), raw.ts_frac)
            } else {
                Timestamp::from_secs_micros(u64::from(raw.ts_sec), raw.ts_frac)
            };
            return Ok(Some(Packet {
                ts,
                link,
                iface: 0,
                // A record claiming fewer wire bytes than it holds: the bytes are real, so the
                // wire length is at least their count (documented in docs/formats.md).
                wlen: raw.orig_len.max(raw.incl_len),
                lost_before: 0,
                data,
            }));
        }
    }

    fn incl_len(&self, rest: &[u8]) -> u32 {
        let big = matches!(self.parser.header().endianness, pcap_file::Endianness::Big);
        super::rd_u32(rest, 8, big)
    }
}
