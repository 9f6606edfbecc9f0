//! ICMP (RFC 792, RFC 1256) and the quoted headers of its error messages.
//!
//! Headers are read with checked slicing after `Walk::keep` has confirmed that they are
//! captured: nothing here panics.
//!
//! Rules: every message keeps its 8-byte header; echo, timestamp, information, address mask,
//! router solicitation and traceroute messages keep nothing more (their bodies are payload).
//! Errors (destination unreachable, source quench, redirect, time exceeded, parameter problem)
//! keep the quoted IP header and the first 8 bytes of its transport header, walked with the
//! same rules (same mapping, so an error matches its flow); RFC 4884 extensions and anything
//! else after the quote are cut. The redirect gateway and the router advertisement addresses
//! are mapped. The checksum is adjusted for every byte changed in the message, quoted headers
//! included. When the quoted header cannot be made whole (truncated, bad), the checksum would
//! cover original addresses, so only the type and code are kept. Unknown types keep type and
//! code only.

use anonymise::AddressMapper;

use super::{checksum, Done, Mode, Walk};
use crate::stats::CutReason;

/// The length of the ICMP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const GATEWAY: usize = 4;
    pub const NUM_ADDRS: usize = 4;
    pub const ENTRY_SIZE: usize = 5;
}

/// ICMP message types the rewriter understands.
pub mod kind {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const UNREACHABLE: u8 = 3;
    /// Source quench.
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO: u8 = 8;
    /// Router advertisement.
    pub const ROUTER_ADVERT: u8 = 9;
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 10;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks an ICMP message at `off` in a datagram ending at `limit`.
    pub(crate) fn icmp(&mut self, off: usize, limit: usize, mode: Mode) -> Done {
        let header = self.keep(off, HEADER_LEN, limit);
        let Some(ty) = self.byte(off + field::TYPE) else {
            return header;
        };
        if mode == Mode::Quoted {
            if header.cut.is_none() && ty == kind::REDIRECT {
                let before = self.sum(off, off + HEADER_LEN);
                self.map_v4(off + field::GATEWAY);
                let d = checksum::delta(before, self.sum(off, off + HEADER_LEN));
                self.adjust16(off + field::CHECKSUM.start, d);
            }
            return header;
        }
        if header.cut.is_some() {
            return header;
        }
        let cap_end = self.cap(limit);
        let before = self.sum(off, cap_end);
        let body = off + HEADER_LEN;
        let done = match ty {
            kind::ECHO_REPLY | kind::ECHO | kind::ROUTER_SOLICIT | 13..=18 | 30 => Done::ok(body),
            kind::REDIRECT => {
                self.map_v4(off + field::GATEWAY);
                self.quoted(off, body, limit, 4)
            }
            kind::UNREACHABLE | kind::SOURCE_QUENCH | kind::TIME_EXCEEDED | kind::PARAM_PROBLEM => {
                self.quoted(off, body, limit, 4)
            }
            kind::ROUTER_ADVERT => self.router_advert(off, limit),
            _ => Done::cut(off + 2, CutReason::UnknownMessageType),
        };
        let d = checksum::delta(before, self.sum(off, cap_end));
        self.adjust16(off + field::CHECKSUM.start, d);
        done
    }

    /// Walks the header an ICMP/ICMPv6 error (or ND redirected-header option) quotes at
    /// `inner`, for a message starting at `msg`. When the quoted header cannot be kept whole,
    /// only the message's type and code are kept.
    pub(crate) fn quoted(&mut self, msg: usize, inner: usize, limit: usize, version: u8) -> Done {
        if inner >= limit {
            // Nothing was quoted.
            return Done::ok(inner);
        }
        let done = match self.byte(inner).map(|b| b >> 4) {
            Some(4) if version == 4 => self.ipv4(inner, limit, Mode::Quoted),
            Some(6) if version == 6 => self.ipv6(inner, limit, Mode::Quoted),
            Some(_) => Done::cut(inner, CutReason::BadHeaderLength),
            None => Done::cut(inner, CutReason::TruncatedHeader),
        };
        let whole =
            done.end > inner && matches!(done.cut, None | Some(CutReason::UnknownIpProtocol));
        if whole {
            done
        } else {
            Done::cut(msg + 2, done.cut.unwrap_or(CutReason::TruncatedHeader))
        }
    }

    /// A router advertisement (RFC 1256): every router address is mapped.
    fn router_advert(&mut self, off: usize, limit: usize) -> Done {
        let n = self.byte(off + field::NUM_ADDRS).map_or(0, usize::from);
        let size = self.byte(off + field::ENTRY_SIZE).map_or(0, usize::from) * 4;
        let body = off + HEADER_LEN;
        if n > 0 && size < 8 {
            return Done::cut(body, CutReason::BadHeaderLength);
        }
        let mut at = body;
        for _ in 0..n {
            let entry = self.keep(at, size, limit);
            if entry.cut.is_some() {
                return entry;
            }
            self.map_v4(at);
            at += size;
        }
        Done::ok(at)
    }
}
