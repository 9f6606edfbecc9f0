//! The live path's stages made of the offline pipeline's parts, so that live and offline output
//! agree record for record: [`LiveProcessor`] is the offline [`FrameProcessor`] (rewriter plus
//! anonymiser) working on a batch slot, and the [`ErfWriter`] is the live [`RecordSink`].

use super::pipeline::{Processed, RecordSink, SinkError, SlotProcessor};
use crate::offline::{self, FrameProcessor};
use crate::output::ErfWriter;
use crate::packet::{FrameKind, LinkType, Timestamp};
use crate::stats::{CutReason, LossCause};
use anonymise::AddressMapper;

/// The offline per-frame step, applied to frames in batch slots.
pub struct LiveProcessor<M>(pub FrameProcessor<M>);

impl<M: AddressMapper> SlotProcessor for LiveProcessor<M> {
    fn process(&mut self, buf: &mut [u8], caplen: usize, wlen: u32) -> Processed {
        let caplen = caplen.min(buf.len());
        // Rewritten in the slot itself (same rules and bytes as the offline copy path); only
        // the returned range is ever written, so what lies outside it never leaves the slot.
        match self
            .0
            .process_in_place(LinkType::Ethernet, &mut buf[..caplen], wlen)
        {
            offline::ProcessedRange::Write { kind, range, cut } => {
                let range = range.start.min(caplen)..range.end.min(caplen);
                if range.start != 0 {
                    buf.copy_within(range.clone(), 0);
                }
                Processed::Write {
                    len: range.len(),
                    kind,
                    cut,
                }
            }
            offline::ProcessedRange::Drop(reason) => Processed::Drop(reason),
        }
    }

    /// Starts loading the mapper's cache entries for the frame's IP addresses.
    fn prefetch(&self, frame: &[u8]) {
        match ip_addresses(frame) {
            Some(IpAddresses::V4(src, dst)) => {
                self.0.mapper().prefetch_ipv4(src);
                self.0.mapper().prefetch_ipv4(dst);
            }
            Some(IpAddresses::V6(src, dst)) => {
                self.0.mapper().prefetch_ipv6(src);
                self.0.mapper().prefetch_ipv6(dst);
            }
            None => {}
        }
    }
}

/// The source and destination addresses of an IP packet.
enum IpAddresses {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

/// Where the addresses of an Ethernet frame's IP header would be, for a prefetch hint only:
/// Ethernet with at most two VLAN tags, IPv4 or IPv6, read through the rewriter's header
/// views. Anything else (and any frame too short) gives `None`; the rewriter's own walk
/// decides what the frame is.
fn ip_addresses(frame: &[u8]) -> Option<IpAddresses> {
    use crate::rewrite::ethernet::{self, ethertype, ETHERNET_LEN, TAG_LEN};
    use crate::rewrite::{ipv4, ipv6};
    let mut at = ETHERNET_LEN;
    let mut ty = ethernet::Frame::new_checked(frame)?.ethertype();
    for _ in 0..2 {
        if !matches!(ty, ethertype::VLAN | ethertype::QINQ) {
            break;
        }
        ty = ethernet::Tag::new_checked(frame.get(at..)?)?.ethertype();
        at += TAG_LEN;
    }
    let l3 = frame.get(at..)?;
    match ty {
        ethertype::IPV4 => ipv4::Packet::new_checked(l3).map(|p| IpAddresses::V4(p.src(), p.dst())),
        ethertype::IPV6 => ipv6::Packet::new_checked(l3).map(|p| IpAddresses::V6(p.src(), p.dst())),
        _ => None,
    }
}

impl RecordSink for ErfWriter {
    fn write(
        &mut self,
        ts: Timestamp,
        iface: u8,
        kind: FrameKind,
        wlen: u32,
        data: &[u8],
    ) -> Result<(), SinkError> {
        self.write_packet(ts, iface, kind, wlen, data)
            .map_err(|e| Box::new(e) as SinkError)
    }
    fn add_loss(&mut self, iface: u8, cause: LossCause, n: u64) {
        ErfWriter::add_loss(self, iface, cause, n)
    }
    fn count_cut(&mut self, reason: CutReason) {
        ErfWriter::count_cut(self, reason)
    }
    fn count_dropped(&mut self, reason: CutReason) {
        ErfWriter::count_dropped(self, reason)
    }
    fn rotate(&mut self) -> Result<(), SinkError> {
        ErfWriter::rotate(self).map_err(|e| Box::new(e) as SinkError)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        ErfWriter::flush(self).map_err(|e| Box::new(e) as SinkError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(tags: &[u16], ty: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for &t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 100]);
        }
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    fn ipv4_header() -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0];
        h.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 7]);
        h
    }

    #[test]
    fn finds_ipv4_addresses_behind_up_to_two_tags() {
        for tags in [&[][..], &[0x8100], &[0x88a8, 0x8100]] {
            match ip_addresses(&frame(tags, 0x0800, &ipv4_header())) {
                Some(IpAddresses::V4(s, d)) => {
                    assert_eq!(
                        (s, d),
                        ([192, 0, 2, 1], [198, 51, 100, 7]),
                        "tags {tags:x?}"
                    )
                }
                _ => panic!("no IPv4 addresses behind tags {tags:x?}"),
            }
        }
    }

    #[test]
    fn finds_ipv6_addresses() {
        let mut h = vec![0x60, 0, 0, 0, 0, 0, 17, 64];
        h.extend((0..32u8).map(|i| i + 1));
        match ip_addresses(&frame(&[], 0x86dd, &h)) {
            Some(IpAddresses::V6(s, d)) => {
                assert_eq!(s[0], 1);
                assert_eq!(d[15], 32);
            }
            _ => panic!("no IPv6 addresses"),
        }
    }

    #[test]
    fn short_or_other_frames_give_nothing() {
        let v4 = frame(&[], 0x0800, &ipv4_header());
        assert!(ip_addresses(&v4[..v4.len() - 1]).is_none());
        assert!(ip_addresses(&frame(&[], 0x0806, &ipv4_header())).is_none());
        assert!(ip_addresses(&frame(&[0x8100, 0x8100, 0x8100], 0x0800, &ipv4_header())).is_none());
        assert!(ip_addresses(&[]).is_none());
    }

    proptest! {
        /// Any bytes at all: no panic, and what it finds lies inside the frame.
        #[test]
        fn never_reads_outside_the_frame(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Some(IpAddresses::V4(s, _)) = ip_addresses(&bytes) {
                prop_assert!(bytes.windows(4).any(|w| w == s));
            }
        }
    }
}
