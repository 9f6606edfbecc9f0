//! IPv4 with options, and the dispatch to what an IP header carries.
//!
//! [`Packet::new_checked`] verifies that the buffer holds the fixed 20-byte header; once it
//! has, no accessor panics. Options are read with checked slicing.
//!
//! Rules: the source and destination addresses, and every address in a record route, loose or
//! strict source route, timestamp (with addresses) or traceroute option, are mapped. Options
//! known to carry no address (security, CIPSO, stream ID, router alert, quick-start) are kept
//! as they are; any other option, and any option that cannot be parsed, is replaced by NOPs;
//! the bytes after an end-of-options are zeroed. The header checksum is always recomputed
//! over the rewritten header, so every IPv4 header checksum of the output verifies. The
//! transport checksum is adjusted for the source and the final destination (the last address
//! of an unfinished source route, RFC 1122 3.2.1.8).

use anonymise::AddressMapper;

use super::{checksum, Done, Mode, Walk};
use crate::stats::CutReason;

/// The length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// IPv4 option types.
pub mod option {
    /// End of options.
    pub const EOL: u8 = 0;
    /// No operation.
    pub const NOP: u8 = 1;
    /// Record route.
    pub const RR: u8 = 7;
    /// Quick-start (RFC 4782).
    pub const QUICK_START: u8 = 25;
    /// Timestamp.
    pub const TS: u8 = 68;
    /// Traceroute (RFC 1393), carrying the originator's address.
    pub const TRACEROUTE: u8 = 82;
    /// Basic security (RFC 1108).
    pub const SECURITY: u8 = 130;
    /// Loose source and record route.
    pub const LSRR: u8 = 131;
    /// Extended security (RFC 1108).
    pub const EXT_SECURITY: u8 = 133;
    /// Commercial security (CIPSO).
    pub const CIPSO: u8 = 134;
    /// Stream identifier.
    pub const STREAM_ID: u8 = 136;
    /// Strict source and record route.
    pub const SSRR: u8 = 137;
    /// Router alert (RFC 2113).
    pub const ROUTER_ALERT: u8 = 148;
}

/// A view of an IPv4 header.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` if it holds the fixed 20-byte header.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= HEADER_LEN).then_some(Packet { buffer })
    }

    fn be16(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL x 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The total length field.
    pub fn total_len(&self) -> usize {
        usize::from(self.be16(field::TOTAL_LEN))
    }

    /// The fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        self.be16(field::FLAGS_FRAG) & 0x1fff
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// The source address.
    pub fn src(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::SRC];
        [b[0], b[1], b[2], b[3]]
    }

    /// The destination address.
    pub fn dst(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::DST];
        [b[0], b[1], b[2], b[3]]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }
}

/// What the transport checksum needs to know of the IP header in front of it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pseudo {
    /// The checksum delta of the pseudo-header's address changes (source and final
    /// destination).
    pub delta: u16,
    /// The header is IPv6.
    pub v6: bool,
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks an IPv4 header at `off` in a datagram (or, quoted, a message) ending at `limit`.
    pub(crate) fn ipv4(&mut self, off: usize, limit: usize, mode: Mode) -> Done {
        let Some(ip) = self.buf.get(off..).and_then(Packet::new_checked) else {
            let reason = if mode == Mode::Normal && off + HEADER_LEN > limit {
                CutReason::BadHeaderLength
            } else {
                CutReason::TruncatedHeader
            };
            return Done::cut(off, reason);
        };
        let ihl = ip.header_len();
        let total = ip.total_len();
        if ip.version() != 4 || ihl < HEADER_LEN || total < ihl {
            return Done::cut(off, CutReason::BadHeaderLength);
        }
        let hdr_end = off + ihl;
        let dgram_end = match mode {
            Mode::Normal if off + total > limit => {
                return Done::cut(off, CutReason::BadHeaderLength);
            }
            Mode::Normal => off + total,
            Mode::Quoted => limit,
        };
        if hdr_end > self.buf.len() || hdr_end > limit {
            return Done::cut(off, CutReason::TruncatedHeader);
        }
        let frag = ip.frag_offset();
        let proto = ip.protocol();
        let final_delta = if ihl > HEADER_LEN {
            self.ipv4_options(off + HEADER_LEN, hdr_end)
        } else {
            None
        };
        // The whole header is captured (checked above): map both addresses and recompute the
        // checksum in one borrow of it, with no further bounds checks.
        let Some(hdr) = self.buf.get_mut(off..hdr_end) else {
            return Done::cut(off, CutReason::TruncatedHeader);
        };
        let Some(fixed) = hdr
            .get_mut(..HEADER_LEN)
            .and_then(|f| <&mut [u8; HEADER_LEN]>::try_from(f).ok())
        else {
            return Done::cut(off, CutReason::TruncatedHeader);
        };
        let src = [fixed[12], fixed[13], fixed[14], fixed[15]];
        let dst = [fixed[16], fixed[17], fixed[18], fixed[19]];
        let (new_src, new_dst) = (self.mapper.map_ipv4(src), self.mapper.map_ipv4(dst));
        fixed[field::SRC].copy_from_slice(&new_src);
        fixed[field::DST].copy_from_slice(&new_dst);
        let pseudo = Pseudo {
            delta: checksum::add(
                checksum::delta4(src, new_src),
                final_delta.unwrap_or_else(|| checksum::delta4(dst, new_dst)),
            ),
            v6: false,
        };

        // Recomputed over the rewritten header: a checksum the input got wrong is made right,
        // so every header checksum of the output verifies (and none depends on the original
        // addresses).
        fixed[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let new_ck = if ihl == HEADER_LEN {
            !checksum::sum_array(fixed)
        } else {
            checksum::compute(hdr, 0)
        };
        hdr[field::CHECKSUM].copy_from_slice(&new_ck.to_be_bytes());

        if frag != 0 {
            // A non-first fragment: only the IP header is kept.
            return Done::ok(hdr_end);
        }
        self.transport(proto, hdr_end, dgram_end, pseudo, mode)
    }

    /// Rewrites the IPv4 options in `buf[from..to]`. Returns the checksum delta of the final
    /// destination when an unfinished source route names it.
    fn ipv4_options(&mut self, from: usize, to: usize) -> Option<u16> {
        let mut final_delta = None;
        let mut i = from;
        while i < to {
            let Some(kind) = self.byte(i) else { break };
            match kind {
                option::EOL => {
                    self.fill(i + 1, to, 0);
                    break;
                }
                option::NOP => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let len = self.byte(i + 1).map_or(0, usize::from);
            if len < 2 || i + len > to {
                self.fill(i, to, option::NOP);
                break;
            }
            let ok = match kind {
                option::RR | option::LSRR | option::SSRR => {
                    let ptr = self.byte(i + 2).map_or(0, usize::from);
                    if len < 3 || (len - 3) % 4 != 0 || ptr < 4 {
                        false
                    } else {
                        let mut last = 0;
                        let mut a = i + 3;
                        while a + 4 <= i + len {
                            last = self.map_v4(a);
                            a += 4;
                        }
                        if kind != option::RR && ptr <= len && len > 3 && final_delta.is_none() {
                            final_delta = Some(last);
                        }
                        true
                    }
                }
                option::TS => {
                    let flag = self.byte(i + 3).map_or(0xff, |b| b & 0x0f);
                    match flag {
                        0 => len >= 4 && (len - 4) % 4 == 0,
                        1 | 3 if len >= 4 && (len - 4) % 8 == 0 => {
                            let mut a = i + 4;
                            while a + 8 <= i + len {
                                self.map_v4(a);
                                a += 8;
                            }
                            true
                        }
                        _ => false,
                    }
                }
                option::TRACEROUTE if len == 12 => {
                    self.map_v4(i + 8);
                    true
                }
                option::SECURITY
                | option::EXT_SECURITY
                | option::CIPSO
                | option::STREAM_ID
                | option::ROUTER_ALERT
                | option::QUICK_START => true,
                _ => false,
            };
            if !ok {
                self.fill(i, i + len, option::NOP);
            }
            i += len;
        }
        final_delta
    }

    /// Fills `buf[from..to]` (clamped) with `value`.
    pub(crate) fn fill(&mut self, from: usize, to: usize, value: u8) {
        let to = to.min(self.buf.len());
        if let Some(s) = self.buf.get_mut(from..to) {
            s.fill(value);
        }
    }

    /// Keeps the first `n` bytes of a header at `off` when they are captured and within
    /// `limit`, and nothing otherwise.
    #[inline]
    pub(crate) fn keep(&self, off: usize, n: usize, limit: usize) -> Done {
        if off + n > limit {
            Done::cut(off, CutReason::BadHeaderLength)
        } else if off + n > self.buf.len() {
            Done::cut(off, CutReason::TruncatedHeader)
        } else {
            Done::ok(off + n)
        }
    }

    /// Walks the header of protocol `proto` at `off`, carried by an IP header, in a datagram
    /// ending at `limit`.
    #[inline(always)]
    pub(crate) fn transport(
        &mut self,
        proto: u8,
        off: usize,
        limit: usize,
        pseudo: Pseudo,
        mode: Mode,
    ) -> Done {
        match proto {
            6 => self.tcp(off, limit, pseudo, mode),
            17 => self.udp(off, limit, pseudo, mode, false),
            136 => self.udp(off, limit, pseudo, mode, true),
            1 => self.icmp(off, limit, mode),
            58 => self.icmpv6(off, limit, pseudo, mode),
            2 => self.igmp(off, limit, mode),
            // ESP: the SPI and sequence number, never the encrypted body.
            50 => self.keep(off, 8, limit),
            // SCTP common header: ports, verification tag, CRC32c (which covers no address).
            132 if mode == Mode::Normal => self.keep(off, 12, limit),
            33 if mode == Mode::Normal => self.dccp(off, limit, pseudo),
            4 | 41 if mode == Mode::Normal => self.ip_in_ip(proto, off, limit),
            47 if mode == Mode::Normal => self.gre(off, limit),
            51 if !pseudo.v6 && mode == Mode::Normal => self.ipv4_ah(off, limit, pseudo),
            // Quoted: the first 8 bytes of these hold no address (an inner IP header's first
            // 8 bytes, GRE flags and key, AH's lengths and SPI, SCTP and DCCP ports).
            4 | 41 | 47 | 51 | 132 | 33 => self.keep(off, 8, limit),
            59 => Done::ok(off),
            _ => Done::cut(off, CutReason::UnknownIpProtocol),
        }
    }

    /// An authentication header after an IPv4 header (RFC 4302): kept, and what it protects
    /// walked (one AH only).
    fn ipv4_ah(&mut self, off: usize, limit: usize, pseudo: Pseudo) -> Done {
        let (Some(next), Some(l)) = (self.byte(off), self.byte(off + 1)) else {
            return Done::cut(off, CutReason::TruncatedHeader);
        };
        let len = (usize::from(l) + 2) * 4;
        let done = self.keep(off, len.max(12), limit);
        if done.cut.is_some() {
            return done;
        }
        if next == 51 {
            return Done::cut(done.end, CutReason::TooDeep);
        }
        self.transport(next, off + len.max(12), limit, pseudo, Mode::Normal)
    }

    /// A DCCP generic header (RFC 4340): ports, offsets, checksum (adjusted for the
    /// pseudo-header) and sequence number.
    fn dccp(&mut self, off: usize, limit: usize, pseudo: Pseudo) -> Done {
        let x = self.byte(off + 8).map(|b| b & 1);
        let len = if x == Some(1) { 16 } else { 12 };
        let done = self.keep(off, len, limit);
        if done.cut.is_none() {
            self.adjust16(off + 6, pseudo.delta);
        }
        done
    }
}
