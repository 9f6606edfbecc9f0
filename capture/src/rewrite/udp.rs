//! UDP and UDP-Lite, and the UDP tunnels (VXLAN on port 4789, Teredo on port 3544).
//!
//! [`Datagram::new_checked`] verifies that the buffer holds the 8-byte header; once it has, no
//! accessor panics.
//!
//! Rules: the header is kept. The checksum is adjusted for the pseudo-header and for every
//! change made inside a tunnel it carries; over IPv4 a checksum of 0 (none) stays 0, and a
//! computed 0 is sent as 0xFFFF (RFC 768). Over IPv6 a zero checksum (RFC 6935 tunnels) also
//! stays 0. Quoted inside an ICMP error, the 8-byte header is kept and its checksum adjusted.

use anonymise::AddressMapper;

use super::ipv4::Pseudo;
use super::{checksum, Done, Mode, Walk};
use crate::stats::CutReason;

/// The length of a UDP header.
pub const HEADER_LEN: usize = 8;
/// The VXLAN port (RFC 7348).
pub const VXLAN_PORT: u16 = 4789;
/// The Teredo port (RFC 4380).
pub const TEREDO_PORT: u16 = 3544;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP header.
#[derive(Debug)]
pub struct Datagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// Wraps `buffer` if it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= HEADER_LEN).then_some(Datagram { buffer })
    }

    fn be16(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.be16(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.be16(field::DST_PORT)
    }

    /// The length field (UDP-Lite: the checksum coverage).
    pub fn len(&self) -> usize {
        usize::from(self.be16(field::LENGTH))
    }

    /// True when the length field is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Datagram<T> {
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks a UDP (or, with `lite`, UDP-Lite) header at `off` in a datagram ending at `limit`.
    #[inline(always)]
    pub(crate) fn udp(
        &mut self,
        off: usize,
        limit: usize,
        pseudo: Pseudo,
        mode: Mode,
        lite: bool,
    ) -> Done {
        let done = self.keep(off, HEADER_LEN, limit);
        if done.cut.is_some() {
            return done;
        }
        let Some(udp) = self.buf.get(off..).and_then(Datagram::new_checked) else {
            return Done::cut(off, CutReason::TruncatedHeader);
        };
        let (src, dst, len, ck) = (udp.src_port(), udp.dst_port(), udp.len(), udp.checksum());
        let dgram_end = if mode == Mode::Quoted || lite || (len == 0 && pseudo.v6) {
            limit
        } else if len < HEADER_LEN || off + len > limit {
            return Done::cut(off, CutReason::BadHeaderLength);
        } else {
            off + len
        };
        let hdr_end = off + HEADER_LEN;
        let mut out = done;
        let mut region = 0;
        let tunnel = dst == VXLAN_PORT || src == TEREDO_PORT || dst == TEREDO_PORT;
        if mode == Mode::Normal && !lite && tunnel {
            // Only a tunnel changes bytes after the header: sum what it covers only then.
            let before = self.sum(hdr_end, self.cap(dgram_end));
            let inner = if dst == VXLAN_PORT {
                self.vxlan(hdr_end, dgram_end)
            } else {
                self.teredo(hdr_end, dgram_end)
            };
            region = checksum::delta(before, self.sum(hdr_end, self.cap(dgram_end)));
            out = if inner.end < hdr_end {
                Done {
                    end: hdr_end,
                    ..inner
                }
            } else {
                inner
            };
        }
        if ck != 0 {
            let mut new = checksum::adjust(ck, checksum::add(pseudo.delta, region));
            if new == 0 {
                new = 0xffff;
            }
            self.set_be16(off + field::CHECKSUM.start, new);
        }
        out
    }
}
