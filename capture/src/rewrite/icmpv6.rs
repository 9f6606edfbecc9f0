//! ICMPv6 (RFC 4443), neighbour discovery (RFC 4861) and MLD (RFC 2710, RFC 3810).
//!
//! Headers are read with checked slicing after `Walk::keep` has confirmed that they are
//! captured: nothing here panics.
//!
//! Rules: errors keep the quoted IPv6 header (with its extension headers) and the first 8 bytes
//! of its transport header, walked with the same rules; echo keeps its 8-byte header. MLD
//! multicast addresses and MLDv2 sources are mapped (auxiliary data zeroed). ND targets and
//! redirect destinations are mapped; options: link-layer address options carry MACs (mapped
//! when MAC anonymisation is asked; other lengths are then cut), prefix information and route
//! information prefixes are mapped as addresses and their bits beyond the prefix length
//! zeroed, RDNSS addresses are mapped, the redirected-header option follows the quoted-header
//! rules, MTU, advertisement interval and home agent options are kept; any other option cuts
//! the message before it. The checksum is adjusted for the pseudo-header and every changed
//! byte. When a quoted header cannot be made whole, only type and code are kept.

use anonymise::AddressMapper;

use super::ipv4::Pseudo;
use super::{checksum, Done, Mode, Walk};
use crate::stats::CutReason;

mod field {
    use core::ops::Range;
    pub const CHECKSUM: Range<usize> = 2..4;
}

/// ICMPv6 message types the rewriter understands.
pub mod kind {
    /// Echo request.
    pub const ECHO: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// MLD query.
    pub const MLD_QUERY: u8 = 130;
    /// MLDv1 report.
    pub const MLD_REPORT: u8 = 131;
    /// MLDv1 done.
    pub const MLD_DONE: u8 = 132;
    /// Router solicitation.
    pub const RS: u8 = 133;
    /// Router advertisement.
    pub const RA: u8 = 134;
    /// Neighbour solicitation.
    pub const NS: u8 = 135;
    /// Neighbour advertisement.
    pub const NA: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;
    /// MLDv2 report.
    pub const MLD2_REPORT: u8 = 143;
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks an ICMPv6 message at `off` in a datagram ending at `limit`.
    pub(crate) fn icmpv6(&mut self, off: usize, limit: usize, pseudo: Pseudo, mode: Mode) -> Done {
        let header = self.keep(off, 8, limit);
        if mode == Mode::Quoted {
            if header.cut.is_none() {
                self.adjust16(off + field::CHECKSUM.start, pseudo.delta);
            }
            return header;
        }
        let Some(ty) = self.byte(off) else {
            return header;
        };
        let cap_end = self.cap(limit);
        let before = self.sum(off, cap_end);
        let done = match ty {
            1..=4 if header.cut.is_none() => self.quoted(off, off + 8, limit, 6),
            kind::ECHO | kind::ECHO_REPLY | 151..=153 => header,
            kind::MLD_QUERY if limit - off >= 28 => {
                let n = self.be16(off + 26).map_or(0, usize::from);
                let all = self.keep(off, 28 + 16 * n, limit);
                if all.cut.is_none() {
                    self.map_v6(off + 8);
                    for k in 0..n {
                        self.map_v6(off + 28 + 16 * k);
                    }
                    all
                } else {
                    Done {
                        end: off + 2,
                        ..all
                    }
                }
            }
            kind::MLD_QUERY | kind::MLD_REPORT | kind::MLD_DONE => {
                let d = self.keep(off, 24, limit);
                if d.cut.is_none() {
                    self.map_v6(off + 8);
                }
                d
            }
            kind::MLD2_REPORT if header.cut.is_none() => self.mld2_records(off, limit),
            kind::RS => self.nd_body(off, 8, 0, limit),
            kind::RA => self.nd_body(off, 16, 0, limit),
            kind::NS | kind::NA => self.nd_body(off, 24, 1, limit),
            kind::REDIRECT => self.nd_body(off, 40, 2, limit),
            _ if header.cut.is_some() => header,
            _ => Done::cut(off + 2, CutReason::UnknownMessageType),
        };
        if off + 4 <= self.buf.len() {
            let d = checksum::delta(before, self.sum(off, cap_end));
            self.adjust16(off + field::CHECKSUM.start, checksum::add(pseudo.delta, d));
        }
        done
    }

    /// MLDv2 report records.
    fn mld2_records(&mut self, off: usize, limit: usize) -> Done {
        let n = self.be16(off + 6).map_or(0, usize::from);
        let mut at = off + 8;
        for _ in 0..n {
            let fixed = self.keep(at, 20, limit);
            if fixed.cut.is_some() {
                return fixed;
            }
            let aux = self.byte(at + 1).map_or(0, usize::from) * 4;
            let ns = self.be16(at + 2).map_or(0, usize::from);
            let len = 20 + 16 * ns + aux;
            let rec = self.keep(at, len, limit);
            if rec.cut.is_some() {
                return rec;
            }
            self.map_v6(at + 4);
            for k in 0..ns {
                self.map_v6(at + 20 + 16 * k);
            }
            self.fill(at + 20 + 16 * ns, at + len, 0);
            at += len;
        }
        Done::ok(at)
    }

    /// An ND message at `off` with a fixed part of `fixed` bytes holding `addrs` addresses
    /// from byte 8, then options.
    fn nd_body(&mut self, off: usize, fixed: usize, addrs: usize, limit: usize) -> Done {
        let d = self.keep(off, fixed, limit);
        if d.cut.is_some() {
            return d;
        }
        for k in 0..addrs {
            self.map_v6(off + 8 + 16 * k);
        }
        let mut at = off + fixed;
        while at < limit {
            let (Some(ty), Some(l)) = (self.byte(at), self.byte(at + 1)) else {
                return Done::cut(at, CutReason::TruncatedHeader);
            };
            let len = usize::from(l) * 8;
            if len == 0 {
                return Done::cut(at, CutReason::BadHeaderLength);
            }
            let opt = self.keep(at, len, limit);
            if opt.cut.is_some() {
                return opt;
            }
            match ty {
                1 | 2 if len == 8 => self.map_mac(at + 2),
                1 | 2 if !self.opts.anonymise_mac => {}
                3 if len == 32 => {
                    let plen = self.byte(at + 2).unwrap_or(128);
                    self.map_prefix(at + 16, 16, plen);
                }
                4 if len >= 8 => {
                    let q = self.quoted(off, at + 8, at + len, 6);
                    if q.cut.is_some() {
                        return q;
                    }
                }
                5 | 7 | 8 => {}
                24 if len <= 24 => {
                    let plen = self.byte(at + 2).unwrap_or(128);
                    self.map_prefix(at + 8, len - 8, plen);
                }
                25 if len >= 24 && (len - 8) % 16 == 0 => {
                    let mut a = at + 8;
                    while a + 16 <= at + len {
                        self.map_v6(a);
                        a += 16;
                    }
                }
                _ => return Done::cut(at, CutReason::UnsupportedHeader),
            }
            at += len;
        }
        Done::ok(at)
    }

    /// Maps a prefix of `n` <= 16 bytes at `at` as an IPv6 address (padded with zeros), and
    /// zeroes the bits beyond `plen` of the result.
    fn map_prefix(&mut self, at: usize, n: usize, plen: u8) {
        let n = n.min(16);
        let Some(slot) = self.buf.get_mut(at..at + n) else {
            return;
        };
        let mut addr = [0u8; 16];
        addr[..n].copy_from_slice(slot);
        let mut new = self.mapper.map_ipv6(addr);
        let plen = usize::from(plen.min(128));
        for (i, b) in new.iter_mut().enumerate() {
            let bits = plen.saturating_sub(i * 8).min(8);
            *b &= if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
        }
        slot.copy_from_slice(&new[..n]);
    }
}
