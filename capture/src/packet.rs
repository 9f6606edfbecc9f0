//! Types shared by every stage of the pipeline: timestamps, link types and borrowed packets.

use std::fmt;

/// A capture timestamp in ERF's 64-bit fixed-point form: seconds since the Unix epoch (UTC) in
/// the high 32 bits, a binary fraction of a second in the low 32 bits.
///
/// Every reader converts to this form once, every writer converts from it once, and records are
/// ordered by it. Conversions follow `docs/erf-format` rules: floor when writing from
/// nanoseconds, round with carry when reading back to nanoseconds, so a nanosecond timestamp
/// survives a round trip exactly.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Builds a timestamp from whole seconds and a binary fraction (units of 2^-32 s).
    pub const fn from_parts(secs: u32, frac: u32) -> Self {
        Timestamp(((secs as u64) << 32) | frac as u64)
    }

    /// Builds a timestamp from seconds and nanoseconds (floor of the fraction).
    /// `nanos` must be below 1e9; larger values are carried into the seconds.
    pub const fn from_secs_nanos(secs: u64, nanos: u32) -> Self {
        let secs = secs + (nanos / 1_000_000_000) as u64;
        let nanos = (nanos % 1_000_000_000) as u64;
        let frac = (nanos << 32) / 1_000_000_000;
        Timestamp((secs << 32) | frac)
    }

    /// Builds a timestamp from nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(ns: u64) -> Self {
        Self::from_secs_nanos(ns / 1_000_000_000, (ns % 1_000_000_000) as u32)
    }

    /// Builds a timestamp from seconds and microseconds (floor of the fraction).
    pub const fn from_secs_micros(secs: u64, micros: u32) -> Self {
        let secs = secs + (micros / 1_000_000) as u64;
        let micros = (micros % 1_000_000) as u64;
        let frac = (micros << 32) / 1_000_000;
        Timestamp((secs << 32) | frac)
    }

    /// Whole seconds since the Unix epoch.
    pub const fn secs(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The binary fraction of a second, in units of 2^-32 s.
    pub const fn frac(self) -> u32 {
        self.0 as u32
    }

    /// Seconds and nanoseconds, rounding half up with carry into the seconds (as Wireshark reads).
    pub const fn to_secs_nanos(self) -> (u64, u32) {
        let mut secs = self.secs() as u64;
        let mut ns = ((self.frac() as u64 * 1_000_000_000) + (1 << 31)) >> 32;
        if ns >= 1_000_000_000 {
            ns -= 1_000_000_000;
            secs += 1;
        }
        (secs, ns as u32)
    }

    /// Nanoseconds since the Unix epoch (rounded as [`Timestamp::to_secs_nanos`]).
    pub const fn to_unix_nanos(self) -> u64 {
        let (s, ns) = self.to_secs_nanos();
        s * 1_000_000_000 + ns as u64
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, ns) = self.to_secs_nanos();
        write!(f, "{s}.{ns:09}")
    }
}

/// How a captured frame begins: the link types anoncap reads.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// Ethernet II / 802.3, possibly with 802.1Q/802.1ad tags (LINKTYPE_ETHERNET, 1).
    Ethernet,
    /// Raw IP, version taken from the first nibble (LINKTYPE_RAW, 101).
    RawIp,
    /// Raw IPv4 (LINKTYPE_IPV4, 228).
    Ipv4,
    /// Raw IPv6 (LINKTYPE_IPV6, 229).
    Ipv6,
    /// Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113).
    LinuxSll,
    /// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276).
    LinuxSll2,
    /// BSD loopback: a 4-byte address family in host byte order (LINKTYPE_NULL, 0).
    Null,
}

impl LinkType {
    /// The link type for a pcap/pcapng LINKTYPE number, or `None` for types anoncap skips.
    pub const fn from_linktype(value: u32) -> Option<Self> {
        match value {
            0 => Some(LinkType::Null),
            1 => Some(LinkType::Ethernet),
            101 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            228 => Some(LinkType::Ipv4),
            229 => Some(LinkType::Ipv6),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }

    /// The LINKTYPE number of this link type.
    pub const fn linktype(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
        }
    }
}

/// What a rewritten frame holds, which decides the ERF record type it is written as.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Starts with an Ethernet header (ERF type ETH, 2).
    Ethernet,
    /// Starts with an IPv4 header (ERF type IPV4, 22).
    Ipv4,
    /// Starts with an IPv6 header (ERF type IPV6, 23).
    Ipv6,
}

/// One captured packet as a reader hands it on: borrowed bytes plus what the capture recorded.
#[derive(Copy, Clone, Debug)]
pub struct Packet<'a> {
    /// When the packet was captured.
    pub ts: Timestamp,
    /// How the captured bytes begin.
    pub link: LinkType,
    /// The capture interface or port (0-3), as ERF's interface bits carry it.
    pub iface: u8,
    /// The length of the frame on the wire, as the source reported it.
    pub wlen: u32,
    /// Losses the source recorded just before this packet (an input ERF record's lctr).
    pub lost_before: u16,
    /// The captured bytes (at most `wlen`, possibly fewer).
    pub data: &'a [u8],
}
