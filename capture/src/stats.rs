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
    /// A known EtherType that carries no IP (802.3/LLC, STP, IPX, AppleTalk, LLDP...): its
    /// payload may hold anything, so only the L2 header and tags are kept.
    NonIpPayload,
    /// An IP protocol the rewriter does not parse (OSPF, PIM, VRRP...): the IP header is kept.
    UnknownIpProtocol,
    /// A header the rewriter recognises but cannot anonymise (an RPL or unknown routing header,
    /// an unknown IPv6 extension header or ND option, a Teredo authentication header...).
    UnsupportedHeader,
    /// An ICMP, ICMPv6 or IGMP message type whose body is not understood: type and code kept.
    UnknownMessageType,
}

impl CutReason {
    /// Every reason, in a fixed order (the index of a reason in this list is its counter slot).
    pub const ALL: [CutReason; 11] = [
        CutReason::UnknownEtherType,
        CutReason::BadHeaderLength,
        CutReason::TruncatedHeader,
        CutReason::TooDeep,
        CutReason::MplsNotIp,
        CutReason::BadIpv4Checksum,
        CutReason::UnsupportedLinkPayload,
        CutReason::NonIpPayload,
        CutReason::UnknownIpProtocol,
        CutReason::UnsupportedHeader,
        CutReason::UnknownMessageType,
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
            CutReason::NonIpPayload => "non-ip-payload",
            CutReason::UnknownIpProtocol => "unknown-ip-protocol",
            CutReason::UnsupportedHeader => "unsupported-header",
            CutReason::UnknownMessageType => "unknown-message-type",
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

/// Where a frame was lost before it could be written. Each lost frame is counted under exactly
/// one cause, so causes add up to the total loss.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LossCause {
    /// Losses an input trace recorded (an input ERF record's lctr).
    Recorded,
    /// Dropped by the interface before the XDP hook (what tcpdump calls "dropped by interface").
    Interface,
    /// Dropped by the kernel between XDP and the AF_XDP socket (XDP_STATISTICS).
    Kernel,
    /// Dropped inside anoncap: a ring between threads was full.
    Ring,
    /// Could not be written (e.g. a full disk).
    Writer,
    /// Lost by a DAG card between the card and host memory (the card's lctr).
    Card,
}

impl LossCause {
    /// Every cause, in a fixed order (the index of a cause in this list is its counter slot).
    pub const ALL: [LossCause; 6] = [
        LossCause::Recorded,
        LossCause::Interface,
        LossCause::Kernel,
        LossCause::Ring,
        LossCause::Writer,
        LossCause::Card,
    ];

    /// The number of causes.
    pub const COUNT: usize = Self::ALL.len();

    /// The cause's name in sidecars and summaries (kebab-case, stable).
    pub const fn name(self) -> &'static str {
        match self {
            LossCause::Recorded => "recorded-in-input",
            LossCause::Interface => "dropped-by-interface",
            LossCause::Kernel => "dropped-by-kernel",
            LossCause::Ring => "dropped-by-anoncap-ring",
            LossCause::Writer => "dropped-by-writer",
            LossCause::Card => "dropped-by-card",
        }
    }

    /// The counter slot of this cause.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Loss counts per cause, indexed by [`LossCause::index`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LossCounts(pub [u64; LossCause::COUNT]);

impl LossCounts {
    /// Adds `n` losses for `cause`.
    pub fn add(&mut self, cause: LossCause, n: u64) {
        self.0[cause.index()] += n;
    }

    /// The count for `cause`.
    pub fn get(&self, cause: LossCause) -> u64 {
        self.0[cause.index()]
    }

    /// The total over all causes.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds another set of counts to this one.
    pub fn merge(&mut self, other: &LossCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }
}

impl Serialize for LossCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for cause in LossCause::ALL {
            map.serialize_entry(cause.name(), &self.get(cause))?;
        }
        map.end()
    }
}
