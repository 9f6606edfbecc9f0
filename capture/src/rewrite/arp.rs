//! ARP and RARP (RFC 826).
//!
//! [`Packet::new_checked`] verifies that the buffer holds the 8-byte fixed part; once it has,
//! no accessor panics; the variable part is checked against the lengths the fixed part gives.
//!
//! Rules: for IPv4 over any hardware, the sender and target protocol addresses are mapped, and
//! 6-byte hardware addresses are mapped as MACs when asked. An ARP body of another protocol,
//! or with hardware addresses that cannot be anonymised when asked, keeps its fixed part only.

use anonymise::AddressMapper;

use super::{Done, Walk};
use crate::stats::CutReason;

/// The length of the fixed part of an ARP packet.
pub const FIXED_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
}

/// A view of an ARP packet.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` if it holds the fixed part.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= FIXED_LEN).then_some(Packet { buffer })
    }

    /// The protocol type (an EtherType).
    pub fn protocol_type(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::PTYPE];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The hardware address length.
    pub fn hardware_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::HLEN])
    }

    /// The protocol address length.
    pub fn protocol_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::PLEN])
    }

    /// The whole length: fixed part and four addresses.
    pub fn total_len(&self) -> usize {
        FIXED_LEN + 2 * self.hardware_len() + 2 * self.protocol_len()
    }
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks an ARP packet at `off` in a frame ending at `limit`.
    pub(crate) fn arp(&mut self, off: usize, limit: usize) -> Done {
        let Some(arp) = self.buf.get(off..).and_then(Packet::new_checked) else {
            return self.keep(off, FIXED_LEN, limit);
        };
        let (ptype, hlen, plen, total) = (
            arp.protocol_type(),
            arp.hardware_len(),
            arp.protocol_len(),
            arp.total_len(),
        );
        let known = match (ptype, plen) {
            (0x0800, 4) | (0x86dd, 16) => hlen == 6 || !self.opts.anonymise_mac,
            _ => false,
        };
        if !known {
            return Done::cut(off + FIXED_LEN, CutReason::UnsupportedHeader);
        }
        let done = self.keep(off, total, limit);
        if done.cut.is_some() {
            // Never keep part of an address list.
            return Done {
                end: off + FIXED_LEN,
                ..done
            };
        }
        let sha = off + FIXED_LEN;
        let spa = sha + hlen;
        let tha = spa + plen;
        let tpa = tha + hlen;
        for (hw, proto) in [(sha, spa), (tha, tpa)] {
            if hlen == 6 {
                self.map_mac(hw);
            }
            if plen == 4 {
                self.map_v4(proto);
            } else {
                self.map_v6(proto);
            }
        }
        done
    }
}
