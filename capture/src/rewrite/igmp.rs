//! IGMP (RFC 1112, RFC 2236, RFC 3376).
//!
//! Headers are read with checked slicing after `Walk::keep` has confirmed that they are
//! captured: nothing here panics.
//!
//! Rules: the group address of queries, reports and leaves is mapped, and so are every group
//! and source of IGMPv3 queries and reports; auxiliary data of group records is zeroed. The
//! checksum is adjusted for every change. A group record that is not wholly captured is cut
//! before it. Unknown types (DVMRP, mtrace, ...) keep type and code only.

use anonymise::AddressMapper;

use super::{checksum, Done, Mode, Walk};
use crate::stats::CutReason;

/// The length of the IGMP header (and of v1/v2 messages).
pub const HEADER_LEN: usize = 8;

/// IGMP message types.
pub mod kind {
    /// Membership query (all versions).
    pub const QUERY: u8 = 0x11;
    /// IGMPv1 membership report.
    pub const V1_REPORT: u8 = 0x12;
    /// IGMPv2 membership report.
    pub const V2_REPORT: u8 = 0x16;
    /// IGMPv2 leave group.
    pub const LEAVE: u8 = 0x17;
    /// IGMPv3 membership report.
    pub const V3_REPORT: u8 = 0x22;
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks an IGMP message at `off` in a datagram ending at `limit`.
    pub(crate) fn igmp(&mut self, off: usize, limit: usize, mode: Mode) -> Done {
        let header = self.keep(off, HEADER_LEN, limit);
        let Some(ty) = self.byte(off) else {
            return header;
        };
        let with_group = matches!(
            ty,
            kind::QUERY | kind::V1_REPORT | kind::V2_REPORT | kind::LEAVE
        );
        if header.cut.is_some() {
            return header;
        }
        let cap_end = if mode == Mode::Quoted {
            off + HEADER_LEN
        } else {
            self.cap(limit)
        };
        let before = self.sum(off, cap_end);
        let done = if mode == Mode::Quoted {
            if with_group {
                self.map_v4(off + 4);
            }
            header
        } else {
            match ty {
                kind::QUERY if limit - off >= 12 => {
                    let n = self.be16(off + 10).map_or(0, usize::from);
                    let all = self.keep(off, 12 + 4 * n, limit);
                    if all.cut.is_none() {
                        self.map_v4(off + 4);
                        for k in 0..n {
                            self.map_v4(off + 12 + 4 * k);
                        }
                        all
                    } else {
                        Done {
                            end: off + 2,
                            ..all
                        }
                    }
                }
                _ if with_group => {
                    self.map_v4(off + 4);
                    header
                }
                kind::V3_REPORT => self.igmp_records(off, limit),
                _ => Done::cut(off + 2, CutReason::UnknownMessageType),
            }
        };
        let d = checksum::delta(before, self.sum(off, cap_end));
        self.adjust16(off + 2, d);
        done
    }

    /// The group records of an IGMPv3 report at `off`.
    fn igmp_records(&mut self, off: usize, limit: usize) -> Done {
        let n = self.be16(off + 6).map_or(0, usize::from);
        let mut at = off + HEADER_LEN;
        for _ in 0..n {
            let fixed = self.keep(at, 8, limit);
            if fixed.cut.is_some() {
                return fixed;
            }
            let aux = self.byte(at + 1).map_or(0, usize::from) * 4;
            let ns = self.be16(at + 2).map_or(0, usize::from);
            let len = 8 + 4 * ns + aux;
            let rec = self.keep(at, len, limit);
            if rec.cut.is_some() {
                return rec;
            }
            self.map_v4(at + 4);
            for k in 0..ns {
                self.map_v4(at + 8 + 4 * k);
            }
            self.fill(at + 8 + 4 * ns, at + len, 0);
            at += len;
        }
        Done::ok(at)
    }
}
