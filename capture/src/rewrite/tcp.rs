//! TCP with options.
//!
//! [`Segment::new_checked`] verifies that the buffer holds the fixed 20-byte header; once it
//! has, no accessor panics. Options are read with checked slicing.
//!
//! Rules: the header and all options are kept (timestamps included); the address of an MPTCP
//! ADD_ADDR option (RFC 6824 and RFC 8684) is mapped, and its truncated HMAC zeroed; an option that cannot be parsed, and an
//! ADD_ADDR of unknown layout, is replaced by NOPs. The checksum is adjusted for the
//! pseudo-header and for every changed header byte. Quoted inside an ICMP error, only the first
//! 8 bytes (ports and sequence number) are kept; the checksum is still adjusted when captured,
//! because the outer ICMP checksum covers it.

use anonymise::AddressMapper;

use super::ipv4::Pseudo;
use super::{checksum, Done, Mode, Walk};
use crate::stats::CutReason;

/// The length of a TCP header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const DATA_OFF: usize = 12;
    pub const CHECKSUM: Range<usize> = 16..18;
}

/// TCP option kinds the rewriter looks into.
pub mod option {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation.
    pub const NOP: u8 = 1;
    /// Multipath TCP.
    pub const MPTCP: u8 = 30;
    /// The MPTCP ADD_ADDR subtype.
    pub const MPTCP_ADD_ADDR: u8 = 3;
}

/// A view of a TCP header.
#[derive(Debug)]
pub struct Segment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Segment<T> {
    /// Wraps `buffer` if it holds the fixed 20-byte header.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= HEADER_LEN).then_some(Segment { buffer })
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

    /// The header length in bytes (data offset x 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }
}

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks a TCP header at `off` in a datagram ending at `limit`.
    #[inline(always)]
    pub(crate) fn tcp(&mut self, off: usize, limit: usize, pseudo: Pseudo, mode: Mode) -> Done {
        if mode == Mode::Quoted {
            let done = self.keep(off, 8, limit);
            if done.cut.is_none() && off + field::CHECKSUM.end <= limit {
                self.adjust16(off + field::CHECKSUM.start, pseudo.delta);
            }
            return done;
        }
        let Some(seg) = self.buf.get(off..).and_then(Segment::new_checked) else {
            return self.keep(off, HEADER_LEN, limit);
        };
        let len = seg.header_len();
        if len < HEADER_LEN {
            return Done::cut(off, CutReason::BadHeaderLength);
        }
        let done = self.keep(off, len, limit);
        if done.cut.is_some() {
            return done;
        }
        let end = off + len;
        // The header's sum before any option is changed, taken just before the first change
        // (nothing in the header has changed until then); no change, no sums: the delta of an
        // unchanged region is 0xFFFF, one's complement -0, whatever its sum.
        let d = match self.tcp_options(off, off + HEADER_LEN, end) {
            Some(before) => checksum::delta(before, self.sum(off, end)),
            None => 0xffff,
        };
        self.adjust16(off + field::CHECKSUM.start, checksum::add(pseudo.delta, d));
        done
    }

    /// Rewrites the options in `buf[from..to]` of the header that starts at `hdr`. Returns the
    /// sum of `buf[hdr..to]` as it was before the first change, or `None` if nothing changed.
    #[inline]
    fn tcp_options(&mut self, hdr: usize, from: usize, to: usize) -> Option<u16> {
        if !self.buf.get(from..to).is_some_and(tcp_options_change) {
            return None;
        }
        self.tcp_options_walk(hdr, from, to)
    }

    /// The walk of [`Self::tcp_options`], without the read-only scan in front of it.
    #[cold]
    #[inline(never)]
    fn tcp_options_walk(&mut self, hdr: usize, from: usize, to: usize) -> Option<u16> {
        let mut before = None;
        let mut i = from;
        while i < to {
            let Some(kind) = self.byte(i) else { break };
            match kind {
                option::EOL => break,
                option::NOP => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let len = self.byte(i + 1).map_or(0, usize::from);
            if len < 2 || i + len > to {
                before.get_or_insert_with(|| self.sum(hdr, to));
                self.fill(i, to, option::NOP);
                break;
            }
            if kind == option::MPTCP
                && len >= 3
                && self.byte(i + 2).map(|b| b >> 4) == Some(option::MPTCP_ADD_ADDR)
            {
                before.get_or_insert_with(|| self.sum(hdr, to));
                // kind, length, subtype|flags (or IP version), address id, address, then an
                // optional port and (RFC 8684) an optional truncated HMAC.
                match len {
                    8 | 10 | 16 | 18 => {
                        self.map_v4(i + 4);
                    }
                    20 | 22 | 28 | 30 => {
                        self.map_v6(i + 4);
                    }
                    _ => self.fill(i, i + len, option::NOP),
                }
                // RFC 8684's truncated HMAC covers the original address, and the keys it is
                // made with travel in clear in MP_CAPABLE: it would confirm a guessed address.
                if matches!(len, 16 | 18 | 28 | 30) {
                    self.fill(i + len - 8, i + len, 0);
                }
            }
            i += len;
        }
        before
    }
}

/// Would the walk of [`Walk::tcp_options`] change anything in these options (the bytes from
/// the end of the fixed header to the end of the TCP header)? A read-only scan with the same
/// rules: true for an option that cannot be parsed and for an MPTCP ADD_ADDR; false when every
/// option is kept as it is (the common case), so the walk and its checksum sums are skipped.
#[inline]
fn tcp_options_change(opts: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            option::EOL => return false,
            option::NOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let len = opts.get(i + 1).map_or(0, |&l| usize::from(l));
        if len < 2 || i + len > opts.len() {
            return true;
        }
        if kind == option::MPTCP
            && len >= 3
            && opts.get(i + 2).map(|b| b >> 4) == Some(option::MPTCP_ADD_ADDR)
        {
            return true;
        }
        i += len;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::RewriteOptions;
    use proptest::prelude::*;

    /// Changes every address it is given.
    struct Flip;

    impl AddressMapper for Flip {
        fn map_ipv4(&mut self, a: [u8; 4]) -> [u8; 4] {
            a.map(|b| !b)
        }
        fn map_ipv6(&mut self, a: [u8; 16]) -> [u8; 16] {
            a.map(|b| !b)
        }
        fn map_mac(&mut self, m: [u8; 6]) -> [u8; 6] {
            m
        }
    }

    /// Option bytes made mostly of real option kinds and plausible lengths, with MPTCP
    /// ADD_ADDR subtypes, so that every branch of the walk is reached.
    fn options() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(vec![option::NOP]),
            Just(vec![option::EOL]),
            Just(vec![2, 4, 5, 0xb4]),
            Just(vec![8, 10, 1, 2, 3, 4, 5, 6, 7, 8]),
            (0u8..40, proptest::collection::vec(any::<u8>(), 0..30)).prop_map(|(len, body)| {
                let mut v = vec![option::MPTCP, len, option::MPTCP_ADD_ADDR << 4];
                v.extend(body);
                v
            }),
            proptest::collection::vec(any::<u8>(), 1..6),
        ];
        proptest::collection::vec(piece, 0..6).prop_map(|p| {
            let mut v: Vec<u8> = p.concat();
            v.truncate(40);
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The scan says "no change" only when the walk would indeed change nothing, so
        /// skipping the walk never leaves an address (or an unparsed option) in place; and
        /// when it says "change", the walk does change something.
        #[test]
        fn scan_agrees_with_walk(opts in options(), trailing in any::<u8>()) {
            let mut buf = vec![0u8; HEADER_LEN];
            buf.extend_from_slice(&opts);
            // A byte past the options, which the walk may read as a length.
            buf.push(trailing);
            let to = HEADER_LEN + opts.len();
            let original = buf.clone();
            let mut mapper = Flip;
            let o = RewriteOptions::default();
            let mut walk = Walk { buf: &mut buf, mapper: &mut mapper, opts: &o, tunnels: 0 };
            let before = walk.tcp_options_walk(0, HEADER_LEN, to);
            let changed = buf != original;
            prop_assert_eq!(tcp_options_change(&original[HEADER_LEN..to]), changed);
            prop_assert_eq!(before.is_some(), changed);
            if let Some(b) = before {
                prop_assert_eq!(b, checksum::sum(&original[..to]));
            }
        }
    }
}
