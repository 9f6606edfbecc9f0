//! Link-layer dispatch: Ethernet is kept whole; Linux cooked (SLL, SLL2) and BSD loopback (NULL)
//! headers are stripped so that their IP payload is written as a raw IPv4/IPv6 record; raw IP
//! links are walked directly.
//!
//! The views here are checked: `new_checked` fails unless the whole fixed header is present,
//! after which no accessor panics.

use anonymise::AddressMapper;

use super::ethernet::ethertype;
use super::{Done, Mode, Rewritten, Walk};
use crate::packet::{FrameKind, LinkType};
use crate::stats::CutReason;

/// The length of a Linux cooked capture v1 header.
pub const SLL_LEN: usize = 16;
/// The length of a Linux cooked capture v2 header.
pub const SLL2_LEN: usize = 20;
/// The length of a BSD loopback (NULL) header.
pub const NULL_LEN: usize = 4;

mod sll_field {
    use core::ops::Range;
    pub const PROTOCOL: Range<usize> = 14..16;
}

mod sll2_field {
    use core::ops::Range;
    pub const PROTOCOL: Range<usize> = 0..2;
}

/// A Linux cooked capture v1 header (LINKTYPE_LINUX_SLL).
#[derive(Debug)]
pub struct Sll<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Sll<T> {
    /// Wraps `buffer` if it holds a whole SLL header.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= SLL_LEN).then_some(Sll { buffer })
    }

    /// The protocol field (an EtherType for the IP payloads anoncap keeps).
    pub fn protocol(&self) -> u16 {
        let b = &self.buffer.as_ref()[sll_field::PROTOCOL];
        u16::from_be_bytes([b[0], b[1]])
    }
}

/// A Linux cooked capture v2 header (LINKTYPE_LINUX_SLL2).
#[derive(Debug)]
pub struct Sll2<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Sll2<T> {
    /// Wraps `buffer` if it holds a whole SLL2 header.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= SLL2_LEN).then_some(Sll2 { buffer })
    }

    /// The protocol field (an EtherType).
    pub fn protocol(&self) -> u16 {
        let b = &self.buffer.as_ref()[sll2_field::PROTOCOL];
        u16::from_be_bytes([b[0], b[1]])
    }
}

/// The IP version a BSD loopback address family names (in either byte order, since it is the
/// capturing host's), or `None`. AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD,
/// OpenBSD), 28 (FreeBSD, DragonFly) or 30 (macOS).
pub fn null_family_version(header: &[u8]) -> Option<u8> {
    let b: [u8; 4] = header.get(..NULL_LEN)?.try_into().ok()?;
    let le = u32::from_le_bytes(b);
    let be = u32::from_be_bytes(b);
    [le, be].into_iter().find_map(|v| match v {
        2 => Some(4),
        10 | 24 | 28 | 30 => Some(6),
        _ => None,
    })
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks a whole frame of link type `link` whose wire length is `wire`.
    pub(crate) fn link(&mut self, link: LinkType, wire: usize) -> Rewritten {
        match link {
            LinkType::Ethernet => {
                let done = self.ethernet(0, wire);
                Rewritten {
                    start: 0,
                    end: done.end,
                    kind: Some(FrameKind::Ethernet),
                    cut: done.cut,
                }
            }
            LinkType::RawIp => self.raw_ip(0, wire, None),
            LinkType::Ipv4 => self.raw_ip(0, wire, Some(4)),
            LinkType::Ipv6 => self.raw_ip(0, wire, Some(6)),
            LinkType::LinuxSll => {
                let proto = Sll::new_checked(&*self.buf).map(|h| h.protocol());
                self.cooked(proto, SLL_LEN, wire)
            }
            LinkType::LinuxSll2 => {
                let proto = Sll2::new_checked(&*self.buf).map(|h| h.protocol());
                self.cooked(proto, SLL2_LEN, wire)
            }
            LinkType::Null => match null_family_version(self.buf) {
                Some(v) => self.raw_ip(NULL_LEN, wire, Some(v)),
                None if self.buf.len() < NULL_LEN => dropped(0, CutReason::TruncatedHeader),
                None => dropped(0, CutReason::UnsupportedLinkPayload),
            },
        }
    }

    fn cooked(&mut self, proto: Option<u16>, len: usize, wire: usize) -> Rewritten {
        match proto {
            Some(ethertype::IPV4) => self.raw_ip(len, wire, Some(4)),
            Some(ethertype::IPV6) => self.raw_ip(len, wire, Some(6)),
            Some(_) => dropped(0, CutReason::UnsupportedLinkPayload),
            None => dropped(0, CutReason::TruncatedHeader),
        }
    }

    /// Walks an IP packet at `start` with no L2 header to keep: if the IP header itself cannot
    /// be made safe, the frame is dropped.
    fn raw_ip(&mut self, start: usize, wire: usize, version: Option<u8>) -> Rewritten {
        let nibble = self.byte(start).map(|b| b >> 4);
        let done = match (nibble, version) {
            (None, _) => Done::cut(start, CutReason::TruncatedHeader),
            (Some(4), None | Some(4)) => self.ipv4(start, wire, Mode::Normal),
            (Some(6), None | Some(6)) => self.ipv6(start, wire, Mode::Normal),
            _ => Done::cut(start, CutReason::BadHeaderLength),
        };
        if done.end <= start {
            return dropped(start, done.cut.unwrap_or(CutReason::BadHeaderLength));
        }
        let kind = if nibble == Some(4) {
            FrameKind::Ipv4
        } else {
            FrameKind::Ipv6
        };
        Rewritten {
            start,
            end: done.end,
            kind: Some(kind),
            cut: done.cut,
        }
    }
}

fn dropped(start: usize, reason: CutReason) -> Rewritten {
    Rewritten {
        start,
        end: start,
        kind: None,
        cut: Some(reason),
    }
}
