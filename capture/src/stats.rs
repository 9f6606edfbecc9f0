//! Counters of packets, bytes, cuts and losses, shared by every pipeline and written to the
//! sidecar and the end-of-run summary.

use serde::Serialize;

/// Why the rewriter cut a frame shorter than its headers would allow, or dropped it.
///
/// A cut frame is still written (so packet counts and timing stay true), with only what is
/// known to be safe: at most its L2 header and tags. The list is closed: every cut has a reason.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CutReason {
    /// An EtherType the rewriter does not understand.
    UnknownEtherType,
    /// A header whose length field is impossible (IHL < 5, total length below the header...).
    BadHeaderLength,
    /// The capture ended inside a header (the input trace was snap-length truncated).
    TruncatedHeader,
    /// More VLAN tags, MPLS labels, extension headers or tunnel levels than the documented depth.
    TooDeep,
    /// What follows an MPLS label stack did not pass the strict IP checks.
    MplsNotIp,
    /// An IPv4 header whose checksum does not verify.
    BadIpv4Checksum,
    /// A link type whose payload is not IP (e.g. a Linux cooked frame of another protocol).
    UnsupportedLinkPayload,
}

impl CutReason {
    /// Every reason, in a fixed order (the index of a reason in this list is its counter slot).
    pub const ALL: [CutReason; 7] = [
        CutReason::UnknownEtherType,
        CutReason::BadHeaderLength,
        CutReason::TruncatedHeader,
        CutReason::TooDeep,
        CutReason::MplsNotIp,
        CutReason::BadIpv4Checksum,
        CutReason::UnsupportedLinkPayload,
    ];

    /// The number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// The reason's name in sidecars and summaries (kebab-case, stable).
    pub const fn name(self) -> &'static str {
        match self {
            CutReason::UnknownEtherType => "unknown-ethertype",
            CutReason::BadHeaderLength => "bad-header-length",
            CutReason::TruncatedHeader => "truncated-header",
            CutReason::TooDeep => "too-deep",
            CutReason::MplsNotIp => "mpls-not-ip",
            CutReason::BadIpv4Checksum => "bad-ipv4-checksum",
            CutReason::UnsupportedLinkPayload => "unsupported-link-payload",
        }
    }

    /// The counter slot of this reason.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Counts per reason, indexed by [`CutReason::index`]; no allocation on the hot path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CutCounts(pub [u64; CutReason::COUNT]);

impl CutCounts {
    /// Counts one frame cut for `reason`.
    pub fn count(&mut self, reason: CutReason) {
        self.0[reason.index()] += 1;
    }

    /// The count for `reason`.
    pub fn get(&self, reason: CutReason) -> u64 {
        self.0[reason.index()]
    }

    /// The total over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds another set of counts to this one.
    pub fn add(&mut self, other: &CutCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// The non-zero counts with their names, in [`CutReason::ALL`] order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        CutReason::ALL
            .iter()
            .map(|r| (r.name(), self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }
}

impl Serialize for CutCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for reason in CutReason::ALL {
            map.serialize_entry(reason.name(), &self.get(reason))?;
        }
        map.end()
    }
}
