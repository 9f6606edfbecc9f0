//! Tunnels: IP-in-IP (IPv4 and IPv6 in either), GRE (with ERSPAN types II and III), VXLAN and
//! Teredo.
//!
//! Every tunnel level is entered through `Walk::enter_tunnel`, so at most
//! [`RewriteOptions::max_tunnel_depth`](super::RewriteOptions::max_tunnel_depth) levels are
//! walked. The inner headers follow the same rules as outer ones; when they cannot be made safe,
//! the frame is cut at the outer transport (tunnel) header. Headers are read with checked
//! slicing: nothing here panics.

use anonymise::AddressMapper;

use super::ethernet::ethertype;
use super::{checksum, Done, Mode, Walk};
use crate::stats::CutReason;

/// GRE header flag bits (RFC 2784, RFC 2890, RFC 2637).
pub mod gre_flag {
    /// Checksum present.
    pub const CHECKSUM: u16 = 0x8000;
    /// Routing present (RFC 1701, deprecated).
    pub const ROUTING: u16 = 0x4000;
    /// Key present.
    pub const KEY: u16 = 0x2000;
    /// Sequence number present.
    pub const SEQ: u16 = 0x1000;
    /// Acknowledgement number present (enhanced GRE, version 1).
    pub const ACK: u16 = 0x0080;
}

/// ERSPAN type II (GRE protocol 0x88BE).
pub const ERSPAN2: u16 = 0x88be;
/// ERSPAN type III (GRE protocol 0x22EB).
pub const ERSPAN3: u16 = 0x22eb;

impl<M: AddressMapper> Walk<'_, M> {
    /// IPv4 (protocol 4) or IPv6 (protocol 41) carried by an IP header, at `off`.
    pub(crate) fn ip_in_ip(&mut self, proto: u8, off: usize, limit: usize) -> Done {
        if let Err(reason) = self.enter_tunnel() {
            return Done::cut(off, reason);
        }
        let done = match (proto, self.byte(off).map(|b| b >> 4)) {
            (_, None) => Done::cut(off, CutReason::TruncatedHeader),
            (4, Some(4)) => self.ipv4(off, limit, Mode::Normal),
            (41, Some(6)) => self.ipv6(off, limit, Mode::Normal),
            _ => Done::cut(off, CutReason::BadHeaderLength),
        };
        self.leave_tunnel();
        done
    }

    /// A GRE header at `off` and what it carries, in a datagram ending at `limit`. The GRE
    /// checksum, when present, is adjusted for every change made inside the tunnel.
    pub(crate) fn gre(&mut self, off: usize, limit: usize) -> Done {
        let (Some(flags), Some(proto)) = (self.be16(off), self.be16(off + 2)) else {
            return self.keep(off, 4, limit);
        };
        if flags & gre_flag::ROUTING != 0 {
            return Done::cut(off, CutReason::UnsupportedHeader);
        }
        let has = |bit: u16| if flags & bit != 0 { 4 } else { 0 };
        let len = match flags & 7 {
            0 => 4 + has(gre_flag::CHECKSUM) + has(gre_flag::KEY) + has(gre_flag::SEQ),
            1 if flags & gre_flag::KEY != 0 && flags & gre_flag::CHECKSUM == 0 => {
                8 + has(gre_flag::SEQ) + has(gre_flag::ACK)
            }
            _ => return Done::cut(off, CutReason::BadHeaderLength),
        };
        let done = self.keep(off, len, limit);
        if done.cut.is_some() {
            return done;
        }
        let hdr_end = off + len;
        let before = self.sum(off, self.cap(limit));
        if let Err(reason) = self.enter_tunnel() {
            return Done::cut(hdr_end, reason);
        }
        let inner = match proto {
            ethertype::TEB => self.ethernet(hdr_end, limit),
            ERSPAN2 | ERSPAN3 => self.erspan(proto, hdr_end, limit),
            _ => self.ethertype_payload(proto, hdr_end, limit),
        };
        self.leave_tunnel();
        if flags & gre_flag::CHECKSUM != 0 {
            let d = checksum::delta(before, self.sum(off, self.cap(limit)));
            self.adjust16(off + 4, d);
        }
        at_least(inner, hdr_end)
    }

    /// An ERSPAN type II or III header at `off`, carrying Ethernet.
    fn erspan(&mut self, proto: u16, off: usize, limit: usize) -> Done {
        let Some(ver) = self.byte(off).map(|b| b >> 4) else {
            return Done::cut(off, CutReason::TruncatedHeader);
        };
        let len = match (proto, ver) {
            (ERSPAN2, 1) => 8,
            // Type III: 12 bytes, plus an 8-byte platform-specific subheader when O is set.
            (ERSPAN3, 2) => {
                let o = self.byte(off + 11).map_or(0, |b| b & 1);
                12 + 8 * usize::from(o)
            }
            _ => return Done::cut(off, CutReason::UnsupportedHeader),
        };
        let done = self.keep(off, len, limit);
        if done.cut.is_some() {
            return done;
        }
        at_least(self.ethernet(off + len, limit), off + len)
    }

    /// A VXLAN header (RFC 7348) at `off`, carrying Ethernet. A datagram to port 4789 without
    /// the I flag is not VXLAN: nothing of it is kept.
    pub(crate) fn vxlan(&mut self, off: usize, limit: usize) -> Done {
        if self.keep(off, 8, limit).cut.is_some() {
            return Done::ok(off);
        }
        if self.byte(off).is_none_or(|f| f & 0x08 == 0) {
            return Done::ok(off);
        }
        if let Err(reason) = self.enter_tunnel() {
            return Done::cut(off, reason);
        }
        let inner = self.ethernet(off + 8, limit);
        self.leave_tunnel();
        at_least(inner, off + 8)
    }

    /// Teredo (RFC 4380) at `off`: an optional origin indication (whose XOR-obfuscated IPv4
    /// address is mapped) and an IPv6 packet that must pass the strict checks. A datagram with
    /// an authentication header is cut after UDP (its client identifier names a user);
    /// anything else on the Teredo port is payload.
    pub(crate) fn teredo(&mut self, off: usize, limit: usize) -> Done {
        let mut at = off;
        match self.be16(at) {
            Some(0x0001) => return Done::cut(off, CutReason::UnsupportedHeader),
            Some(0x0000) => {
                if self.keep(at, 8, limit).cut.is_some() {
                    return Done::ok(off);
                }
                at += 8;
            }
            _ => {}
        }
        if !self.strict_ipv6(at, limit) {
            return Done::ok(off);
        }
        if at > off {
            self.map_obfuscated_v4(off + 4);
        }
        if let Err(reason) = self.enter_tunnel() {
            return Done::cut(off, reason);
        }
        let inner = self.ipv6(at, limit, Mode::Normal);
        self.leave_tunnel();
        if inner.end <= at {
            return Done { end: off, ..inner };
        }
        inner
    }

    /// Maps an IPv4 address stored XORed with 0xFFFFFFFF (Teredo origin indication).
    fn map_obfuscated_v4(&mut self, at: usize) {
        let Some(slot) = self.buf.get_mut(at..at + 4) else {
            return;
        };
        let old = [!slot[0], !slot[1], !slot[2], !slot[3]];
        let new = self.mapper.map_ipv4(old);
        slot.copy_from_slice(&[!new[0], !new[1], !new[2], !new[3]]);
    }
}

/// `done`, but keeping at least up to `end` (a tunnel header already known to be safe).
fn at_least(done: Done, end: usize) -> Done {
    if done.end < end {
        Done { end, ..done }
    } else {
        done
    }
}
