//! Ethernet II, 802.1Q/802.1ad tags, MPLS label stacks (with Ethernet pseudowires) and PPPoE
//! sessions.
//!
//! The views are checked: once `new_checked` has succeeded, no accessor panics. The walk keeps
//! the whole L2 header and its tags; only the MAC addresses may change (when
//! [`RewriteOptions::anonymise_mac`](super::RewriteOptions::anonymise_mac) is set).

use anonymise::AddressMapper;

use super::{checksum, Done, Mode, Walk};
use crate::stats::CutReason;

/// EtherTypes the rewriter knows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// Reverse ARP (same body as ARP).
    pub const RARP: u16 = 0x8035;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag.
    pub const QINQ: u16 = 0x88a8;
    /// The pre-standard QinQ tag some switches still send.
    pub const QINQ_OLD: u16 = 0x9100;
    /// Another pre-standard QinQ tag value.
    pub const QINQ_OLD2: u16 = 0x9200;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MC: u16 = 0x8848;
    /// PPPoE discovery.
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    /// PPPoE session.
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// Transparent Ethernet bridging (Ethernet inside GRE).
    pub const TEB: u16 = 0x6558;

    /// EtherTypes known to carry no IP header anoncap could keep (their payload may still be
    /// anything, so only L2 is kept): IPX, AppleTalk, AARP, LLDP, slow protocols (LACP), EAPOL,
    /// MACsec, PTP, FCoE and FIP, loopback, PPPoE discovery, DECnet, LAT, Wake-on-LAN, PROFINET,
    /// EtherCAT, AVTP, HomePlug, TRILL, CFM and others.
    pub const NON_IP: [u16; 25] = [
        0x8137, 0x8138, 0x809b, 0x80f3, 0x88cc, 0x8809, 0x888e, 0x88e5, 0x88f7, 0x8906, 0x8914,
        0x9000, 0x8863, 0x6003, 0x6004, 0x0842, 0x8892, 0x88a4, 0x22f0, 0x88e1, 0x22f3, 0x88c7,
        0x8902, 0x893a, 0x88b5,
    ];
}

/// The length of an Ethernet II header.
pub const ETHERNET_LEN: usize = 14;
/// The length of one VLAN tag.
pub const TAG_LEN: usize = 4;
/// The length of one MPLS label stack entry.
pub const LABEL_LEN: usize = 4;

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const TAG_TYPE: Range<usize> = 2..4;
}

/// A view of an Ethernet II header.
#[derive(Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` if it holds a whole Ethernet header.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= ETHERNET_LEN).then_some(Frame { buffer })
    }

    /// The destination MAC address.
    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        m
    }

    /// The source MAC address.
    pub fn src(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        m
    }

    /// The EtherType (or 802.3 length) field.
    pub fn ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }
}

/// A view of one 802.1Q/802.1ad tag (TCI and the EtherType that follows it).
#[derive(Debug)]
pub struct Tag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tag<T> {
    /// Wraps `buffer` if it holds a whole tag.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= TAG_LEN).then_some(Tag { buffer })
    }

    /// The VLAN identifier.
    pub fn vid(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]]) & 0x0fff
    }

    /// The EtherType of what follows the tag.
    pub fn ethertype(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::TAG_TYPE];
        u16::from_be_bytes([b[0], b[1]])
    }
}

/// A view of one MPLS label stack entry.
#[derive(Debug)]
pub struct Label<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Label<T> {
    /// Wraps `buffer` if it holds a whole label stack entry.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= LABEL_LEN).then_some(Label { buffer })
    }

    fn word(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The 20-bit label.
    pub fn label(&self) -> u32 {
        self.word() >> 12
    }

    /// The bottom-of-stack bit.
    pub fn bottom(&self) -> bool {
        self.word() & 0x100 != 0
    }
}

/// Is `ty` a VLAN tag EtherType?
pub const fn is_tag(ty: u16) -> bool {
    matches!(
        ty,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD | ethertype::QINQ_OLD2
    )
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks an Ethernet header at `off` (with its tags) and what it carries.
    pub(crate) fn ethernet(&mut self, off: usize, limit: usize) -> Done {
        let Some(eth) = self.buf.get(off..).and_then(Frame::new_checked) else {
            return Done::cut(off, CutReason::TruncatedHeader);
        };
        let mut ty = eth.ethertype();
        self.map_mac(off + field::DST.start);
        self.map_mac(off + field::SRC.start);
        let mut at = off + ETHERNET_LEN;
        let mut tags = 0;
        while is_tag(ty) {
            if tags >= self.opts.max_vlan_tags {
                return Done::cut(at, CutReason::TooDeep);
            }
            let Some(tag) = self.buf.get(at..).and_then(Tag::new_checked) else {
                return Done::cut(at, CutReason::TruncatedHeader);
            };
            ty = tag.ethertype();
            at += TAG_LEN;
            tags += 1;
        }
        self.ethertype_payload(ty, at, limit)
    }

    /// Walks what an EtherType (or a GRE protocol type) names at `off`. On failure the walk is
    /// cut at `off`: what came before (L2 header, tags, label stack, GRE header) is kept.
    #[inline(always)]
    pub(crate) fn ethertype_payload(&mut self, ty: u16, off: usize, limit: usize) -> Done {
        match ty {
            ethertype::IPV4 => self.ipv4(off, limit, Mode::Normal),
            ethertype::IPV6 => self.ipv6(off, limit, Mode::Normal),
            ethertype::ARP | ethertype::RARP => self.arp(off, limit),
            ethertype::MPLS | ethertype::MPLS_MC => self.mpls(off, limit),
            ethertype::PPPOE_SESSION => self.pppoe(off, limit),
            t if t < 0x0600 => Done::cut(off, CutReason::NonIpPayload),
            t if ethertype::NON_IP.contains(&t) => Done::cut(off, CutReason::NonIpPayload),
            _ => Done::cut(off, CutReason::UnknownEtherType),
        }
    }

    /// Walks an MPLS label stack at `off`. What follows the stack is taken as IP only if it
    /// passes strict checks, as an Ethernet pseudowire if it starts with a control word (first
    /// nibble 0) and an Ethernet header carrying a known EtherType; otherwise the frame is cut
    /// after the stack.
    fn mpls(&mut self, off: usize, limit: usize) -> Done {
        let mut at = off;
        let mut labels = 0;
        loop {
            if labels >= self.opts.max_mpls_labels {
                return Done::cut(at, CutReason::TooDeep);
            }
            let Some(label) = self.buf.get(at..).and_then(Label::new_checked) else {
                return Done::cut(at, CutReason::TruncatedHeader);
            };
            at += LABEL_LEN;
            labels += 1;
            if label.bottom() {
                break;
            }
        }
        let Some(first) = self.byte(at) else {
            return if at >= limit {
                Done::ok(at)
            } else {
                Done::cut(at, CutReason::TruncatedHeader)
            };
        };
        match first >> 4 {
            4 if self.strict_ipv4(at, limit) => self.ipv4(at, limit, Mode::Normal),
            6 if self.strict_ipv6(at, limit) => self.ipv6(at, limit, Mode::Normal),
            0 => self.pseudowire(at, limit),
            _ => Done::cut(at, CutReason::MplsNotIp),
        }
    }

    /// An Ethernet pseudowire (RFC 4448) with its control word at `off`.
    fn pseudowire(&mut self, off: usize, limit: usize) -> Done {
        let eth = off + 4;
        let known = self
            .buf
            .get(eth..)
            .and_then(Frame::new_checked)
            .map(|f| f.ethertype())
            .is_some_and(|t| {
                is_tag(t)
                    || matches!(
                        t,
                        ethertype::IPV4
                            | ethertype::IPV6
                            | ethertype::ARP
                            | ethertype::MPLS
                            | ethertype::MPLS_MC
                    )
            });
        if !known {
            return Done::cut(off, CutReason::MplsNotIp);
        }
        if let Err(reason) = self.enter_tunnel() {
            return Done::cut(off, reason);
        }
        let done = self.ethernet(eth, limit);
        self.leave_tunnel();
        // The control word (flags, length, sequence number) holds no address.
        if done.end < eth {
            Done { end: eth, ..done }
        } else {
            done
        }
    }

    /// A PPPoE session header (RFC 2516) and the PPP protocol field, carrying IPv4 or IPv6.
    fn pppoe(&mut self, off: usize, limit: usize) -> Done {
        let (Some(vt), Some(code), Some(len), Some(proto)) = (
            self.byte(off),
            self.byte(off + 1),
            self.be16(off + 4),
            self.be16(off + 6),
        ) else {
            return Done::cut(off, CutReason::TruncatedHeader);
        };
        if vt != 0x11 || code != 0 {
            return Done::cut(off, CutReason::NonIpPayload);
        }
        let end = off + 6 + usize::from(len);
        if end > limit || len < 2 {
            return Done::cut(off, CutReason::BadHeaderLength);
        }
        let ip = off + 8;
        match proto {
            0x0021 => self.ipv4(ip, end, Mode::Normal),
            0x0057 => self.ipv6(ip, end, Mode::Normal),
            _ => Done::cut(ip, CutReason::NonIpPayload),
        }
    }

    /// The strict checks for an IPv4 header whose presence is a guess (after an MPLS stack):
    /// version, header length, total length consistent with the frame, header checksum.
    pub(crate) fn strict_ipv4(&self, off: usize, limit: usize) -> bool {
        let Some(first) = self.byte(off) else {
            return false;
        };
        let ihl = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || ihl < 20 {
            return false;
        }
        let Some(hdr) = self.buf.get(off..off + ihl) else {
            return false;
        };
        let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
        total >= ihl && consistent(off + total, limit) && checksum::verifies(hdr, 0)
    }

    /// The strict checks for an IPv6 header whose presence is a guess: version, and a payload
    /// length consistent with the frame.
    pub(crate) fn strict_ipv6(&self, off: usize, limit: usize) -> bool {
        let Some(hdr) = self.buf.get(off..off + 40) else {
            return false;
        };
        let plen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
        hdr[0] >> 4 == 6 && consistent(off + 40 + plen, limit)
    }
}

/// Does a datagram ending at `end` fit a frame ending at `limit` on the wire? It may be
/// followed by Ethernet padding (up to the 60-byte minimum) and a 4-byte FCS, nothing more.
fn consistent(end: usize, limit: usize) -> bool {
    end <= limit && (limit - end <= 4 || limit <= 64)
}
