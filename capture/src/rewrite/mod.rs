//! The frame rewriter: keeps L2-L4 headers, drops payload, anonymises every address.
//!
//! [`Rewriter::rewrite`] walks one captured frame header by header (Ethernet, 802.1Q/802.1ad
//! tags, MPLS, ARP, IPv4 with options, IPv6 with extension headers, TCP with options, UDP, ICMP,
//! ICMPv6 with neighbour discovery and MLD, IGMP, and the tunnels GRE, IP-in-IP, 6in4, 4in6,
//! VXLAN and Teredo), hands every address it finds to an [`AddressMapper`], writes the result
//! back in place, adjusts every checksum that covers a changed byte (RFC 1624), and reports
//! where the last header it understood ends. The bytes after that end are never written out.
//! `docs/rewriting.md` states the rules protocol by protocol.
//!
//! # The no-panic contract
//!
//! Every header is read through a typed view whose `new_checked` verifies that the buffer holds
//! the whole fixed header; once it has, no accessor of that view panics. Variable parts (options,
//! extension headers, ND options, group records) are read with checked slicing (`get`). So
//! [`Rewriter::rewrite`] never panics, whatever bytes it is given, and always returns
//! `start <= end <= frame.len()`.
//!
//! # Bounded work
//!
//! The walk allocates nothing. Its length is bounded by the frame and by the depth limits of
//! [`RewriteOptions`] (VLAN tags, MPLS labels, IPv6 extension headers, tunnel levels); quoted
//! headers inside ICMP errors are walked at most one level deep.
//!
//! # What is written
//!
//! `frame[start..end]`: every address in it has been replaced by the mapper's output, every
//! checksum in it has been adjusted for those replacements, and it holds no byte of transport
//! payload. A frame that cannot be made safe is cut to the last header that could (at most its
//! L2 header and tags), and `cut` says why.

use anonymise::AddressMapper;

use crate::packet::{FrameKind, LinkType};
use crate::stats::CutReason;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod igmp;
pub mod ipv4;
pub mod ipv6;
pub mod link;
pub mod tcp;
pub mod tunnel;
pub mod udp;

/// What the rewriter does and how deep it walks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteOptions {
    /// Also anonymise MAC addresses (Ethernet, inner Ethernet, ARP hardware addresses, ND
    /// link-layer address options). Off by default: backbone segments carry no end users.
    pub anonymise_mac: bool,
    /// The most 802.1Q/802.1ad tags walked in one Ethernet header (default 4).
    pub max_vlan_tags: usize,
    /// The most MPLS labels walked in one label stack (default 8).
    pub max_mpls_labels: usize,
    /// The most IPv6 extension headers walked after one IPv6 header (default 8).
    pub max_ipv6_ext_headers: usize,
    /// The most tunnel levels entered (GRE, IP-in-IP, VXLAN, Teredo, MPLS pseudowires;
    /// default 3).
    pub max_tunnel_depth: usize,
    /// Walk into tunnels at all; when false, a tunnelled frame is cut at its outer transport
    /// header (default true).
    pub walk_tunnels: bool,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        RewriteOptions {
            anonymise_mac: false,
            max_vlan_tags: 4,
            max_mpls_labels: 8,
            max_ipv6_ext_headers: 8,
            max_tunnel_depth: 3,
            walk_tunnels: true,
        }
    }
}

/// The frame rewriter. Holds only its options: no per-frame state, no allocation.
#[derive(Clone, Debug, Default)]
pub struct Rewriter {
    options: RewriteOptions,
}

/// What [`Rewriter::rewrite`] made of a frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rewritten {
    /// The first byte to write (non-zero when a link header is stripped, e.g. SLL/NULL -> IP).
    pub start: usize,
    /// One past the last byte to write: the end of the last header understood.
    pub end: usize,
    /// The ERF record type to write it as; `None` means drop the frame (and count `cut`).
    pub kind: Option<FrameKind>,
    /// Set when the frame was cut short of its headers for safety (or dropped).
    pub cut: Option<CutReason>,
}

/// The outcome of walking one header and whatever it carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Done {
    /// The end of what is safe to keep, counted from the start of the frame.
    pub end: usize,
    /// Why the walk stopped short, if it did.
    pub cut: Option<CutReason>,
}

impl Done {
    /// Everything up to `end` is safe and nothing was cut.
    pub(crate) const fn ok(end: usize) -> Self {
        Done { end, cut: None }
    }

    /// The walk stopped at `end` for `reason`.
    pub(crate) const fn cut(end: usize, reason: CutReason) -> Self {
        Done {
            end,
            cut: Some(reason),
        }
    }
}

/// How a header is being walked.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A header of the frame itself: lengths are checked against the enclosing datagram, and
    /// everything it carries is walked.
    Normal,
    /// A header quoted inside an ICMP/ICMPv6 error or an ND redirected-header option: lengths
    /// refer to the original datagram (which was truncated when quoted), and only the IP header
    /// and the first 8 bytes of its transport header are kept.
    Quoted,
}

/// The state of one walk over one frame.
pub(crate) struct Walk<'a, M> {
    /// The whole frame (a mutable copy of the captured bytes).
    pub buf: &'a mut [u8],
    /// Where addresses are sent.
    pub mapper: &'a mut M,
    /// The rewriter's options.
    pub opts: &'a RewriteOptions,
    /// How many tunnel levels the walk is inside.
    pub tunnels: usize,
}

impl<M: AddressMapper> Walk<'_, M> {
    /// The end of the captured bytes of a datagram that ends at `limit` on the wire.
    pub(crate) fn cap(&self, limit: usize) -> usize {
        limit.min(self.buf.len())
    }

    /// The folded one's complement sum of `buf[from..to]` (clamped to the buffer).
    #[inline]
    pub(crate) fn sum(&self, from: usize, to: usize) -> u16 {
        let to = to.min(self.buf.len());
        match self.buf.get(from..to) {
            Some(s) => checksum::sum(s),
            None => 0,
        }
    }

    /// A big-endian u16 at `at`, if captured.
    pub(crate) fn be16(&self, at: usize) -> Option<u16> {
        let b = self.buf.get(at..at.checked_add(2)?)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A byte at `at`, if captured.
    pub(crate) fn byte(&self, at: usize) -> Option<u8> {
        self.buf.get(at).copied()
    }

    /// Writes a big-endian u16 at `at` (nothing if not captured).
    pub(crate) fn set_be16(&mut self, at: usize, value: u16) {
        if let Some(b) = at.checked_add(2).and_then(|e| self.buf.get_mut(at..e)) {
            b.copy_from_slice(&value.to_be_bytes());
        }
    }

    /// Applies a checksum delta to the 16-bit checksum field at `at`.
    pub(crate) fn adjust16(&mut self, at: usize, delta: u16) {
        if let Some(old) = self.be16(at) {
            self.set_be16(at, checksum::adjust(old, delta));
        }
    }

    /// Maps the IPv4 address at `at` in place; returns the checksum delta of the change
    /// (0 if the address is not wholly captured, in which case nothing is written).
    pub(crate) fn map_v4(&mut self, at: usize) -> u16 {
        let Some(slot) = at
            .checked_add(4)
            .and_then(|e| self.buf.get_mut(at..e))
            .and_then(|s| <&mut [u8; 4]>::try_from(s).ok())
        else {
            return 0;
        };
        let old = *slot;
        let new = self.mapper.map_ipv4(old);
        *slot = new;
        checksum::delta4(old, new)
    }

    /// Maps the IPv6 address at `at` in place; returns the checksum delta of the change.
    pub(crate) fn map_v6(&mut self, at: usize) -> u16 {
        let Some(slot) = at.checked_add(16).and_then(|e| self.buf.get_mut(at..e)) else {
            return 0;
        };
        let mut old = [0u8; 16];
        old.copy_from_slice(slot);
        let new = self.mapper.map_ipv6(old);
        slot.copy_from_slice(&new);
        checksum::delta_bytes(&old, &new)
    }

    /// Maps the MAC address at `at` in place when the options ask for it.
    pub(crate) fn map_mac(&mut self, at: usize) {
        if !self.opts.anonymise_mac {
            return;
        }
        if let Some(slot) = at.checked_add(6).and_then(|e| self.buf.get_mut(at..e)) {
            let old = [slot[0], slot[1], slot[2], slot[3], slot[4], slot[5]];
            slot.copy_from_slice(&self.mapper.map_mac(old));
        }
    }

    /// Enters a tunnel level, or says the walk is too deep (or tunnels are not walked).
    pub(crate) fn enter_tunnel(&mut self) -> Result<(), CutReason> {
        if !self.opts.walk_tunnels {
            return Err(CutReason::UnsupportedHeader);
        }
        if self.tunnels >= self.opts.max_tunnel_depth {
            return Err(CutReason::TooDeep);
        }
        self.tunnels += 1;
        Ok(())
    }

    /// Leaves a tunnel level entered with `Walk::enter_tunnel`.
    pub(crate) fn leave_tunnel(&mut self) {
        self.tunnels = self.tunnels.saturating_sub(1);
    }
}

impl Rewriter {
    /// A rewriter with these options.
    pub fn new(options: RewriteOptions) -> Self {
        Rewriter { options }
    }

    /// The options this rewriter was built with.
    pub fn options(&self) -> &RewriteOptions {
        &self.options
    }

    /// Rewrites `frame` (the captured bytes of one frame, a mutable copy) in place.
    ///
    /// `wlen` is the frame's length on the wire; it bounds the lengths headers may claim.
    /// Write `frame[start..end]` as a record of type `kind` (with the original `wlen`), or,
    /// when `kind` is `None`, drop the frame and count `cut`.
    pub fn rewrite<M: AddressMapper>(
        &self,
        mapper: &mut M,
        link: LinkType,
        frame: &mut [u8],
        wlen: u32,
    ) -> Rewritten {
        let wire = (wlen as usize).max(frame.len());
        let mut walk = Walk {
            buf: frame,
            mapper,
            opts: &self.options,
            tunnels: 0,
        };
        let out = walk.link(link, wire);
        // Belt and braces: the contract holds by construction, but a writer must never be
        // handed a range outside the buffer.
        let len = walk.buf.len();
        let end = out.end.min(len);
        let start = out.start.min(end);
        Rewritten { start, end, ..out }
    }
}

#[cfg(test)]
mod tests;
