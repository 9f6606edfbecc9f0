//! IPv6 and its extension headers.
//!
//! [`Packet::new_checked`] verifies that the buffer holds the fixed 40-byte header; once it
//! has, no accessor panics. Extension headers are read with checked slicing, and at most
//! [`RewriteOptions::max_ipv6_ext_headers`](super::RewriteOptions::max_ipv6_ext_headers) of
//! them are walked.
//!
//! Rules: the source and destination are mapped; hop-by-hop and destination options are kept
//! when known to carry no address (Pad1, PadN with its padding zeroed, router alert, jumbo
//! payload, tunnel encapsulation limit, quick-start, RPL, MPL, CALIPSO, PDM), the home address
//! option is mapped, any other option becomes PadN of the same length; routing headers of type
//! 0 and 2 have every address mapped, segment routing headers (type 4) every segment (their TLVs
//! are zeroed, i.e. become Pad1s); other routing types cut the frame before them. Fragment
//! headers are kept, and a non-first fragment keeps nothing after its fragment header. AH is
//! kept; ESP keeps its SPI and sequence number only. The mobility header is walked in
//! `Walk::mobility`. The transport checksum is adjusted for the source (or the home address)
//! and the final destination (the routing header's last segment while segments are left).

use anonymise::AddressMapper;

use super::ipv4::Pseudo;
use super::{checksum, Done, Mode, Walk};
use crate::stats::CutReason;

/// The length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

mod field {
    use core::ops::Range;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// IPv6 next-header values of extension headers.
pub mod next {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating security payload.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// No next header.
    pub const NONE: u8 = 59;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
    /// Mobility header.
    pub const MOBILITY: u8 = 135;
    /// Host identity protocol.
    pub const HIP: u8 = 139;
    /// Shim6.
    pub const SHIM6: u8 = 140;
    /// Experimental 1 (RFC 3692).
    pub const EXP1: u8 = 253;
    /// Experimental 2 (RFC 3692).
    pub const EXP2: u8 = 254;
}

/// A view of the fixed IPv6 header.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` if it holds the fixed 40-byte header.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= HEADER_LEN).then_some(Packet { buffer })
    }

    /// The version field.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// The payload length field.
    pub fn payload_len(&self) -> usize {
        let b = &self.buffer.as_ref()[field::PAYLOAD_LEN];
        usize::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The next-header field.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The source address.
    pub fn src(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        a
    }

    /// The destination address.
    pub fn dst(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        a
    }
}

const fn is_extension(nh: u8) -> bool {
    matches!(
        nh,
        next::HOP_BY_HOP
            | next::ROUTING
            | next::FRAGMENT
            | next::AH
            | next::DEST_OPTS
            | next::MOBILITY
            | next::HIP
            | next::SHIM6
            | next::EXP1
            | next::EXP2
    )
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks an IPv6 header at `off` in a datagram (or, quoted, a message) ending at `limit`.
    pub(crate) fn ipv6(&mut self, off: usize, limit: usize, mode: Mode) -> Done {
        let Some(ip) = self.buf.get(off..).and_then(Packet::new_checked) else {
            let reason = if mode == Mode::Normal && off + HEADER_LEN > limit {
                CutReason::BadHeaderLength
            } else {
                CutReason::TruncatedHeader
            };
            return Done::cut(off, reason);
        };
        if ip.version() != 6 {
            return Done::cut(off, CutReason::BadHeaderLength);
        }
        let plen = ip.payload_len();
        let mut nh = ip.next_header();
        let dgram_end = match mode {
            Mode::Quoted => limit,
            // A jumbogram (RFC 2675) has payload length 0 and a hop-by-hop header.
            Mode::Normal if plen == 0 && nh == next::HOP_BY_HOP => limit,
            Mode::Normal => off + HEADER_LEN + plen,
        };
        if dgram_end > limit || off + HEADER_LEN > limit {
            return Done::cut(off, CutReason::BadHeaderLength);
        }
        let mut src_delta = self.map_v6(off + field::SRC.start);
        let mut dst_delta = self.map_v6(off + field::DST.start);

        let mut at = off + HEADER_LEN;
        let mut count = 0;
        loop {
            if nh == next::ESP {
                return self.keep(at, 8, dgram_end);
            }
            if nh == next::NONE {
                return Done::ok(at);
            }
            if !is_extension(nh) {
                let pseudo = Pseudo {
                    delta: checksum::add(src_delta, dst_delta),
                    v6: true,
                };
                return self.transport(nh, at, dgram_end, pseudo, mode);
            }
            count += 1;
            if count > self.opts.max_ipv6_ext_headers {
                return Done::cut(at, CutReason::TooDeep);
            }
            let (Some(this_next), Some(l)) = (self.byte(at), self.byte(at + 1)) else {
                let reason = if mode == Mode::Normal && at + 2 > dgram_end {
                    CutReason::BadHeaderLength
                } else {
                    CutReason::TruncatedHeader
                };
                return Done::cut(at, reason);
            };
            let len = match nh {
                next::AH => (usize::from(l) + 2) * 4,
                next::FRAGMENT => 8,
                _ => (usize::from(l) + 1) * 8,
            };
            let end = at + len;
            if end > dgram_end {
                let reason = match mode {
                    Mode::Normal => CutReason::BadHeaderLength,
                    Mode::Quoted => CutReason::TruncatedHeader,
                };
                return Done::cut(at, reason);
            }
            if end > self.buf.len() {
                return Done::cut(at, CutReason::TruncatedHeader);
            }
            match nh {
                next::HOP_BY_HOP | next::DEST_OPTS => {
                    if let Some(home) = self.ipv6_options(at + 2, end) {
                        src_delta = home;
                    }
                }
                next::ROUTING => match self.routing(at, end) {
                    Ok(Some(final_delta)) => dst_delta = final_delta,
                    Ok(None) => {}
                    Err(reason) => return Done::cut(at, reason),
                },
                next::FRAGMENT => {
                    let offset = self.be16(at + 2).unwrap_or(0) >> 3;
                    if offset != 0 {
                        return Done::ok(end);
                    }
                }
                next::AH => {}
                next::MOBILITY => {
                    let pseudo = Pseudo {
                        delta: checksum::add(src_delta, dst_delta),
                        v6: true,
                    };
                    return self.mobility(at, end, pseudo);
                }
                _ => return Done::cut(at, CutReason::UnsupportedHeader),
            }
            nh = this_next;
            at = end;
        }
    }

    /// Rewrites the TLV options of a hop-by-hop or destination options header in
    /// `buf[from..to]`. Returns the checksum delta of a home address option's address.
    fn ipv6_options(&mut self, from: usize, to: usize) -> Option<u16> {
        let mut home = None;
        let mut i = from;
        while i < to {
            let Some(kind) = self.byte(i) else { break };
            if kind == 0 {
                i += 1;
                continue;
            }
            let len = self.byte(i + 1).map_or(usize::MAX / 2, usize::from);
            let end = i + 2 + len;
            if end > to {
                // An option that overruns its header: Pad1s to the end.
                self.fill(i, to, 0);
                break;
            }
            match kind {
                // PadN: its padding should be zero, and is made so.
                1 => self.fill(i + 2, end, 0),
                // Home address (RFC 6275): the transport checksum uses it as the source.
                0xc9 if len == 16 => home = Some(self.map_v6(i + 2)),
                // Router alert, jumbo payload, tunnel encapsulation limit, quick-start, RPL,
                // MPL, CALIPSO, PDM: no address inside.
                0x05 | 0xc2 | 0x04 | 0x26 | 0x63 | 0x6d | 0x07 | 0x0f => {}
                _ => {
                    // Anything else becomes PadN of the same length.
                    if let Some(b) = self.buf.get_mut(i) {
                        *b = 1;
                    }
                    self.fill(i + 2, end, 0);
                }
            }
            i = end;
        }
        home
    }

    /// Rewrites the routing header at `buf[at..end]`. Returns the checksum delta of the final
    /// destination while segments are left.
    fn routing(&mut self, at: usize, end: usize) -> Result<Option<u16>, CutReason> {
        let (Some(l), Some(ty), Some(left)) =
            (self.byte(at + 1), self.byte(at + 2), self.byte(at + 3))
        else {
            return Err(CutReason::TruncatedHeader);
        };
        let addrs = at + 8;
        match ty {
            // Type 0 (deprecated, RFC 5095) and type 2 (mobile IPv6, one home address).
            0 | 2 => {
                if l % 2 != 0 || (ty == 2 && l != 2) {
                    return Err(CutReason::UnsupportedHeader);
                }
                let n = usize::from(l) / 2;
                let mut last = 0;
                for k in 0..n {
                    last = self.map_v6(addrs + 16 * k);
                }
                Ok((left > 0 && n > 0).then_some(last))
            }
            // Segment routing (RFC 8754): segment list[0] is the final segment.
            4 => {
                let last_entry = self.byte(at + 4).map_or(0, usize::from);
                let list_end = addrs + 16 * (last_entry + 1);
                if list_end > end {
                    return Err(CutReason::BadHeaderLength);
                }
                let mut first = 0;
                for k in 0..=last_entry {
                    let d = self.map_v6(addrs + 16 * k);
                    if k == 0 {
                        first = d;
                    }
                }
                // TLVs (padding, HMAC) are zeroed: they read as Pad1s.
                self.fill(list_end, end, 0);
                Ok((left > 0).then_some(first))
            }
            _ => Err(CutReason::UnsupportedHeader),
        }
    }

    /// Walks a mobility header (RFC 6275) at `buf[at..end]`: kept, with the addresses of
    /// binding errors and alternate care-of address options mapped, other options made PadN,
    /// and its checksum adjusted.
    pub(crate) fn mobility(&mut self, at: usize, end: usize, pseudo: Pseudo) -> Done {
        let Some(ty) = self.byte(at + 2) else {
            return Done::cut(at, CutReason::TruncatedHeader);
        };
        // Where the mobility options start, per message type.
        let opts = match ty {
            0 => 8,      // binding refresh request
            1 | 2 => 16, // home / care-of test init
            3 | 4 => 24, // home / care-of test
            5 => 12,     // binding update
            6 => 12,     // binding acknowledgement
            7 => 40,     // binding error (home address at 8)
            _ => return Done::cut(at, CutReason::UnsupportedHeader),
        };
        if at + opts > end {
            return Done::cut(at, CutReason::BadHeaderLength);
        }
        let before = self.sum(at, end);
        if ty == 7 {
            self.map_v6(at + 8);
        }
        let mut i = at + opts;
        while i < end {
            let Some(kind) = self.byte(i) else { break };
            if kind == 0 {
                i += 1;
                continue;
            }
            let len = self.byte(i + 1).map_or(usize::MAX / 2, usize::from);
            let oend = i + 2 + len;
            if oend > end {
                self.fill(i, end, 0);
                break;
            }
            match kind {
                1 => self.fill(i + 2, oend, 0),
                // Alternate care-of address.
                3 if len == 16 => {
                    self.map_v6(i + 2);
                }
                // Binding refresh advice, nonce indices, authorisation data: no address.
                2 | 4 | 5 => {}
                _ => {
                    if let Some(b) = self.buf.get_mut(i) {
                        *b = 1;
                    }
                    self.fill(i + 2, oend, 0);
                }
            }
            i = oend;
        }
        let d = checksum::delta(before, self.sum(at, end));
        self.adjust16(at + 4, checksum::add(pseudo.delta, d));
        Done::ok(end)
    }
}
