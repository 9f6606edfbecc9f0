//! ERF records: typed views over bytes, and their encoding.
//!
//! The layout follows `docs/erf-format` (Endace ERF as Wireshark and libtrace read it): a 16-byte
//! generic header whose timestamp is **little-endian** while every other field is
//! **big-endian**, an optional chain of 8-byte extension headers, a type-specific subheader (2
//! bytes for the Ethernet family, none for IPv4/IPv6/META), then the captured bytes and padding
//! up to `rlen`. Every accessor names the byte order it reads.
//!
//! # No-panic contract
//!
//! [`Record::new_unchecked`] wraps any buffer; its accessors may panic if the buffer is not a
//! valid record. Once [`Record::check_len`] (or [`Record::new_checked`]) has succeeded, no
//! accessor panics and none reads past `rlen`. [`RecordRepr::emit`] never panics when the buffer
//! holds at least [`RecordRepr::buffer_len`] bytes, and [`encode_packet`] never panics at all
//! (a buffer that is too small is an error). [`RecordIter`] never panics on any input.
//!
//! # Writer rule
//!
//! Records are padded with zeros to a multiple of 8 bytes only when the padding cannot be read
//! as captured data, that is when the captured length equals the wire length (readers compute
//! `caplen = min(wlen, rlen - framing)`). A snapped record (caplen < wlen) is written unpadded
//! with `rlen = framing + caplen`. The `trunc` flag is never set for snap-length truncation.

pub mod meta;

use core::fmt;
use core::ops::Range;

use crate::packet::{FrameKind, Timestamp};

/// Byte ranges and offsets of the fields of the generic ERF header.
pub mod field {
    use core::ops::Range;

    /// The timestamp, 8 bytes, little-endian 32.32 fixed point.
    pub const TS: Range<usize> = 0..8;
    /// The type byte: bit 7 = an extension header follows, bits 0-6 = record type.
    pub const TYPE: usize = 8;
    /// The flags byte (interface, vlen, trunc, rxerror, dserror).
    pub const FLAGS: usize = 9;
    /// The record length, big-endian.
    pub const RLEN: Range<usize> = 10..12;
    /// The loss counter (or colour in colour types), big-endian.
    pub const LCTR: Range<usize> = 12..14;
    /// The wire length, big-endian.
    pub const WLEN: Range<usize> = 14..16;
    /// Where the first extension header (if any) starts.
    pub const EXT: usize = 16;
}

/// The length of the generic header.
pub const HEADER_LEN: usize = 16;
/// The length of one extension header.
pub const EXT_HEADER_LEN: usize = 8;
/// The length of the Ethernet-family subheader (offset, pad).
pub const ETH_SUBHEADER_LEN: usize = 2;
/// The largest rlen this crate writes: the largest multiple of 8 that fits in 16 bits.
pub const MAX_RLEN: usize = 65528;

/// Type byte bit: an extension header follows the generic header.
pub const TYPE_EXT_BIT: u8 = 0x80;

/// Flags: capture interface bits (0-3).
pub const FLAG_IFACE_MASK: u8 = 0x03;
/// Flags: varying record length (set on every record this crate writes).
pub const FLAG_VLEN: u8 = 0x04;
/// Flags: the record was cut short because a host buffer ran out (not snap-length truncation).
pub const FLAG_TRUNC: u8 = 0x08;
/// Flags: a link-layer receive error was seen.
pub const FLAG_RXERROR: u8 = 0x10;
/// Flags: an internal data-stream error in the card; do not trust the record.
pub const FLAG_DSERROR: u8 = 0x20;

/// Extension header type of a Host ID header (source id and 48-bit host id).
pub const EXT_TYPE_HOST_ID: u8 = 17;

/// An ERF record type (bits 0-6 of the type byte).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// Ethernet (2), with a 2-byte subheader.
    Eth,
    /// Colour Ethernet (11): Ethernet whose lctr field holds a colour.
    ColorEth,
    /// Data-stream-manager colour Ethernet (16): lctr holds a colour.
    DsmColorEth,
    /// Colour/hash Ethernet (20): lctr holds a colour and hash bits.
    ColorHashEth,
    /// IPv4 (22): the payload starts at the IPv4 header, no subheader.
    Ipv4,
    /// IPv6 (23): the payload starts at the IPv6 header, no subheader.
    Ipv6,
    /// META (27): provenance TLVs.
    Meta,
    /// PAD (48): a filler record readers skip.
    Pad,
    /// Any other type code (0-127), carried opaquely.
    Other(u8),
}

impl RecordType {
    /// The record type for the low 7 bits of a type byte.
    pub const fn from_u8(code: u8) -> Self {
        match code & 0x7F {
            2 => RecordType::Eth,
            11 => RecordType::ColorEth,
            16 => RecordType::DsmColorEth,
            20 => RecordType::ColorHashEth,
            22 => RecordType::Ipv4,
            23 => RecordType::Ipv6,
            27 => RecordType::Meta,
            48 => RecordType::Pad,
            other => RecordType::Other(other),
        }
    }

    /// The 7-bit type code.
    pub const fn code(self) -> u8 {
        match self {
            RecordType::Eth => 2,
            RecordType::ColorEth => 11,
            RecordType::DsmColorEth => 16,
            RecordType::ColorHashEth => 20,
            RecordType::Ipv4 => 22,
            RecordType::Ipv6 => 23,
            RecordType::Meta => 27,
            RecordType::Pad => 48,
            RecordType::Other(c) => c & 0x7F,
        }
    }

    /// True for the Ethernet family (2, 11, 16, 20), whose records carry a 2-byte subheader.
    pub const fn is_eth_family(self) -> bool {
        matches!(
            self,
            RecordType::Eth
                | RecordType::ColorEth
                | RecordType::DsmColorEth
                | RecordType::ColorHashEth
        )
    }

    /// True for colour types, whose lctr field holds a colour instead of a loss count.
    pub const fn is_colour(self) -> bool {
        matches!(self.code(), 10 | 11 | 15 | 16 | 17 | 19 | 20)
    }

    /// The length of the type-specific subheader: 2 for the Ethernet family, 4 for the
    /// multichannel and AAL2 types, 0 otherwise.
    pub const fn subheader_len(self) -> usize {
        match self.code() {
            2 | 11 | 16 | 20 => ETH_SUBHEADER_LEN,
            5 | 6 | 7 | 8 | 9 | 12 | 17 | 18 => 4,
            _ => 0,
        }
    }

    /// The record type a rewritten frame is written as.
    pub const fn for_frame(kind: FrameKind) -> Self {
        match kind {
            FrameKind::Ethernet => RecordType::Eth,
            FrameKind::Ipv4 => RecordType::Ipv4,
            FrameKind::Ipv6 => RecordType::Ipv6,
        }
    }
}

/// Why a byte buffer is not a valid ERF record.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer than 16 bytes remain, so not even the generic header fits.
    #[error("truncated header: {available} bytes left, a record header needs 16")]
    TruncatedHeader {
        /// Bytes available.
        available: usize,
    },
    /// rlen is smaller than the generic header.
    #[error("rlen {rlen} is below the 16-byte header")]
    RlenTooSmall {
        /// The rlen field.
        rlen: u16,
    },
    /// rlen runs past the end of the data (a truncated last record).
    #[error("rlen {rlen} runs past the end of the data ({available} bytes left)")]
    RlenPastEnd {
        /// The rlen field.
        rlen: u16,
        /// Bytes available from the start of the record.
        available: usize,
    },
    /// The extension-header chain does not end inside rlen.
    #[error("the extension header chain runs past rlen {rlen}")]
    ExtensionOutsideRecord {
        /// The rlen field.
        rlen: u16,
    },
    /// The framing (header, extension headers and subheader) is longer than rlen.
    #[error("the framing ({framing} bytes) is longer than rlen {rlen}")]
    FramingPastRlen {
        /// Header + extension headers + subheader.
        framing: usize,
        /// The rlen field.
        rlen: u16,
    },
    /// Type 0 (legacy) is never valid in a file.
    #[error("record type 0 is never valid in a file")]
    TypeZero,
}

/// A record that failed to parse, with its place in the input.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ERF record {index} at byte offset {offset}: {kind}")]
pub struct ErfError {
    /// The record number, counting from 0.
    pub index: u64,
    /// The byte offset of the record's start in the input.
    pub offset: u64,
    /// What is wrong.
    pub kind: RecordError,
}

/// Why a record could not be encoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The output buffer is shorter than the record.
    #[error("buffer of {available} bytes is too small for a {needed}-byte record")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The interface number does not fit the 2 interface bits.
    #[error("interface {0} does not fit ERF's interface bits (0-3)")]
    BadInterface(u8),
}

/// A Host ID extension header: an 8-bit source id and a 48-bit host id.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct HostId {
    /// The source id (8 bits).
    pub source_id: u8,
    /// The host id (48 bits; higher bits are ignored).
    pub host_id: u64,
}

impl HostId {
    /// The extension header as a big-endian u64, without the "more follow" bit.
    pub const fn to_ext(self) -> u64 {
        ((EXT_TYPE_HOST_ID as u64) << 56)
            | ((self.source_id as u64) << 48)
            | (self.host_id & 0xFFFF_FFFF_FFFF)
    }

    /// Decodes a Host ID extension header (the "more" bit is ignored); `None` for other types.
    pub const fn from_ext(ext: u64) -> Option<Self> {
        if ((ext >> 56) as u8) & 0x7F != EXT_TYPE_HOST_ID {
            return None;
        }
        Some(HostId {
            source_id: (ext >> 48) as u8,
            host_id: ext & 0xFFFF_FFFF_FFFF,
        })
    }
}

/// A read/write view over one ERF record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn be16(b: &[u8], r: Range<usize>) -> u16 {
    let s = &b[r];
    u16::from_be_bytes([s[0], s[1]])
}

impl<T: AsRef<[u8]>> Record<T> {
    /// Wraps a buffer without checking it (accessors may panic on a bad buffer).
    pub const fn new_unchecked(buffer: T) -> Self {
        Record { buffer }
    }

    /// Wraps a buffer and checks it with [`Record::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, RecordError> {
        let r = Self::new_unchecked(buffer);
        r.check_len()?;
        Ok(r)
    }

    /// Checks that the buffer holds a whole record: at least 16 bytes, 16 <= rlen <= buffer
    /// length, the extension chain and the subheader inside rlen, and a type other than 0.
    /// After success no accessor panics.
    pub fn check_len(&self) -> Result<(), RecordError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(RecordError::TruncatedHeader { available: b.len() });
        }
        let rlen = be16(b, field::RLEN);
        if (rlen as usize) < HEADER_LEN {
            return Err(RecordError::RlenTooSmall { rlen });
        }
        if rlen as usize > b.len() {
            return Err(RecordError::RlenPastEnd {
                rlen,
                available: b.len(),
            });
        }
        let ty = b[field::TYPE];
        if ty & 0x7F == 0 {
            return Err(RecordError::TypeZero);
        }
        let mut off = HEADER_LEN;
        let mut more = ty & TYPE_EXT_BIT != 0;
        while more {
            if off + EXT_HEADER_LEN > rlen as usize {
                return Err(RecordError::ExtensionOutsideRecord { rlen });
            }
            more = b[off] & 0x80 != 0;
            off += EXT_HEADER_LEN;
        }
        let framing = off + RecordType::from_u8(ty).subheader_len();
        if framing > rlen as usize {
            return Err(RecordError::FramingPastRlen { framing, rlen });
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The timestamp (read little-endian).
    #[inline]
    pub fn ts_le(&self) -> Timestamp {
        let b = &self.buffer.as_ref()[field::TS];
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Timestamp(u64::from_le_bytes(a))
    }

    /// The raw type byte (extension bit included).
    #[inline]
    pub fn type_byte(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The record type (bits 0-6 of the type byte).
    #[inline]
    pub fn record_type(&self) -> RecordType {
        RecordType::from_u8(self.type_byte())
    }

    /// True if an extension header follows the generic header.
    #[inline]
    pub fn has_ext(&self) -> bool {
        self.type_byte() & TYPE_EXT_BIT != 0
    }

    /// The raw flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The capture interface (flags bits 0-1).
    #[inline]
    pub fn iface(&self) -> u8 {
        self.flags() & FLAG_IFACE_MASK
    }

    /// The vlen flag (variable-length records).
    #[inline]
    pub fn vlen(&self) -> bool {
        self.flags() & FLAG_VLEN != 0
    }

    /// The trunc flag: cut short by a host buffer overrun (not snap-length truncation).
    #[inline]
    pub fn trunc(&self) -> bool {
        self.flags() & FLAG_TRUNC != 0
    }

    /// The rxerror flag: a link-layer receive error.
    #[inline]
    pub fn rxerror(&self) -> bool {
        self.flags() & FLAG_RXERROR != 0
    }

    /// The dserror flag: an internal data-stream error in the card.
    #[inline]
    pub fn dserror(&self) -> bool {
        self.flags() & FLAG_DSERROR != 0
    }

    /// The record length (read big-endian).
    #[inline]
    pub fn rlen_be(&self) -> u16 {
        be16(self.buffer.as_ref(), field::RLEN)
    }

    /// The loss counter (read big-endian); a colour in colour types.
    #[inline]
    pub fn lctr_be(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LCTR)
    }

    /// The loss counter, or `None` for colour types where the field holds a colour.
    #[inline]
    pub fn loss(&self) -> Option<u16> {
        if self.record_type().is_colour() {
            None
        } else {
            Some(self.lctr_be())
        }
    }

    /// The wire length (read big-endian).
    #[inline]
    pub fn wlen_be(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WLEN)
    }

    /// The extension headers, each as a big-endian u64 (the "more" bit included).
    pub fn ext_headers(&self) -> ExtHeaders<'_> {
        ExtHeaders {
            buf: &self.buffer.as_ref()[..self.rlen_be() as usize],
            off: HEADER_LEN,
            more: self.has_ext(),
        }
    }

    /// The first Host ID extension header, if any.
    pub fn host_id(&self) -> Option<HostId> {
        self.ext_headers().find_map(HostId::from_ext)
    }

    /// The number of extension headers.
    pub fn ext_count(&self) -> usize {
        self.ext_headers().count()
    }

    /// Header + extension headers + subheader: where the captured bytes start.
    pub fn framing_len(&self) -> usize {
        HEADER_LEN + EXT_HEADER_LEN * self.ext_count() + self.record_type().subheader_len()
    }

    /// The captured length as readers compute it: `min(wlen, rlen - framing)`.
    pub fn caplen(&self) -> usize {
        let avail = (self.rlen_be() as usize).saturating_sub(self.framing_len());
        avail.min(self.wlen_be() as usize)
    }

    /// The captured bytes (`caplen` bytes after the framing; padding excluded).
    pub fn payload(&self) -> &[u8] {
        let start = self.framing_len();
        let end = start + self.caplen();
        &self.buffer.as_ref()[start..end]
    }

    /// The whole record, `rlen` bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.rlen_be() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Record<T> {
    /// Sets the timestamp (written little-endian).
    #[inline]
    pub fn set_ts_le(&mut self, ts: Timestamp) {
        self.buffer.as_mut()[field::TS].copy_from_slice(&ts.0.to_le_bytes());
    }

    /// Sets the raw type byte.
    #[inline]
    pub fn set_type_byte(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the record type and whether an extension header follows.
    #[inline]
    pub fn set_record_type(&mut self, ty: RecordType, has_ext: bool) {
        let ext = if has_ext { TYPE_EXT_BIT } else { 0 };
        self.set_type_byte(ty.code() | ext);
    }

    /// Sets the raw flags byte.
    #[inline]
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Sets the record length (written big-endian).
    #[inline]
    pub fn set_rlen_be(&mut self, value: u16) {
        self.buffer.as_mut()[field::RLEN].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the loss counter (written big-endian).
    #[inline]
    pub fn set_lctr_be(&mut self, value: u16) {
        self.buffer.as_mut()[field::LCTR].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the wire length (written big-endian).
    #[inline]
    pub fn set_wlen_be(&mut self, value: u16) {
        self.buffer.as_mut()[field::WLEN].copy_from_slice(&value.to_be_bytes());
    }

    /// The captured bytes, writable (same range as [`Record::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.framing_len();
        let end = start + self.caplen();
        &mut self.buffer.as_mut()[start..end]
    }
}

/// Iterator over a record's extension headers (big-endian u64 each).
#[derive(Debug, Clone)]
pub struct ExtHeaders<'a> {
    buf: &'a [u8],
    off: usize,
    more: bool,
}

impl Iterator for ExtHeaders<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if !self.more {
            return None;
        }
        let b = self.buf.get(self.off..self.off + EXT_HEADER_LEN)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        let v = u64::from_be_bytes(a);
        self.more = v >> 63 != 0;
        self.off += EXT_HEADER_LEN;
        Some(v)
    }
}

/// The high-level form of a record this crate writes: at most one extension header (Host ID).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RecordRepr {
    /// The timestamp.
    pub ts: Timestamp,
    /// The record type.
    pub record_type: RecordType,
    /// The flags byte.
    pub flags: u8,
    /// The loss counter.
    pub lctr: u16,
    /// The wire length (for META, the TLV payload length).
    pub wlen: u16,
    /// A Host ID extension header.
    pub host_id: Option<HostId>,
    /// The number of data bytes after the framing (excluding padding).
    pub caplen: usize,
}

impl RecordRepr {
    /// Parses a checked record. Extension headers other than the first Host ID are not kept;
    /// `caplen` is the reader's captured length.
    pub fn parse<T: AsRef<[u8]>>(record: &Record<T>) -> Result<Self, RecordError> {
        record.check_len()?;
        Ok(RecordRepr {
            ts: record.ts_le(),
            record_type: record.record_type(),
            flags: record.flags(),
            lctr: record.lctr_be(),
            wlen: record.wlen_be(),
            host_id: record.host_id(),
            caplen: record.caplen(),
        })
    }

    /// Header + extension header + subheader.
    pub const fn framing_len(&self) -> usize {
        HEADER_LEN
            + if self.host_id.is_some() {
                EXT_HEADER_LEN
            } else {
                0
            }
            + self.record_type.subheader_len()
    }

    /// Zero padding after the data: to a multiple of 8 when `caplen >= wlen` (padding is then
    /// hidden from readers), none for a snapped record.
    pub const fn padding_len(&self) -> usize {
        if self.caplen >= self.wlen as usize {
            let len = self.framing_len() + self.caplen;
            (8 - len % 8) % 8
        } else {
            0
        }
    }

    /// The record's total length, the value of rlen.
    pub const fn buffer_len(&self) -> usize {
        self.framing_len() + self.caplen + self.padding_len()
    }

    /// Writes the header, extension header, subheader and zero padding; the caller then copies
    /// `caplen` data bytes into the range starting at [`RecordRepr::framing_len`].
    /// The buffer must hold at least [`RecordRepr::buffer_len`] bytes, which must be <= 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, record: &mut Record<T>) {
        let rlen = self.buffer_len();
        let framing = self.framing_len();
        record.set_ts_le(self.ts);
        record.set_record_type(self.record_type, self.host_id.is_some());
        record.set_flags(self.flags);
        record.set_rlen_be(rlen as u16);
        record.set_lctr_be(self.lctr);
        record.set_wlen_be(self.wlen);
        let b = record.buffer.as_mut();
        let mut off = HEADER_LEN;
        if let Some(h) = self.host_id {
            b[off..off + EXT_HEADER_LEN].copy_from_slice(&h.to_ext().to_be_bytes());
            off += EXT_HEADER_LEN;
        }
        b[off..framing].fill(0);
        b[framing + self.caplen..rlen].fill(0);
    }
}

/// The rlen [`encode_packet`] produces for `data_len` captured bytes of a `wlen`-byte frame.
pub const fn packet_record_len(kind: FrameKind, wlen: u16, data_len: usize) -> usize {
    PacketLayout::new(kind, wlen, data_len).rlen
}

/// The lengths of one packet record as [`encode_packet`] writes it, computed once.
///
/// [`PacketLayout::new`] applies the writer rule of this module: the captured bytes are cut to
/// the wire length and to what fits in [`MAX_RLEN`], and the record is padded with zeros to a
/// multiple of 8 only when nothing was cut below the wire length.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PacketLayout {
    /// The record type code (2 ETH, 22 IPV4, 23 IPV6); no extension header.
    pub type_code: u8,
    /// Header + subheader: where the captured bytes start (18 for ETH, 16 otherwise).
    pub framing: usize,
    /// The number of captured bytes written.
    pub caplen: usize,
    /// The record length (framing + caplen + padding), the value of rlen.
    pub rlen: usize,
}

impl PacketLayout {
    /// The layout of a record for `data_len` captured bytes of a `wlen`-byte frame of `kind`.
    #[inline]
    pub const fn new(kind: FrameKind, wlen: u16, data_len: usize) -> Self {
        let (type_code, framing) = match kind {
            FrameKind::Ethernet => (RecordType::Eth.code(), HEADER_LEN + ETH_SUBHEADER_LEN),
            FrameKind::Ipv4 => (RecordType::Ipv4.code(), HEADER_LEN),
            FrameKind::Ipv6 => (RecordType::Ipv6.code(), HEADER_LEN),
        };
        let wlen = wlen as usize;
        let mut caplen = if data_len < wlen { data_len } else { wlen };
        if caplen > MAX_RLEN - framing {
            caplen = MAX_RLEN - framing;
        }
        let len = framing + caplen;
        // Zeros up to the next multiple of 8 (at most 7), only when caplen == wlen: for a
        // snapped record readers would show the padding as captured bytes.
        let padding = if caplen >= wlen {
            len.wrapping_neg() & 7
        } else {
            0
        };
        PacketLayout {
            type_code,
            framing,
            caplen,
            rlen: len + padding,
        }
    }
}

/// Encodes one packet record into `buf` and returns its length (rlen).
///
/// Type ETH (with a `00 00` subheader), IPV4 or IPV6 by `kind`; flags = vlen | `iface`; no
/// extension header. The captured bytes are `data`, cut to `wlen` (bytes past the wire length
/// would be hidden from readers, so they are never written) and to what fits in 65528 bytes.
/// Padding follows the writer rule of this module. Only the first rlen bytes of `buf` are
/// written, and nothing is written when an error is returned.
#[inline]
pub fn encode_packet(
    buf: &mut [u8],
    ts: Timestamp,
    iface: u8,
    kind: FrameKind,
    lctr: u16,
    wlen: u16,
    data: &[u8],
) -> Result<usize, EncodeError> {
    if iface > FLAG_IFACE_MASK {
        return Err(EncodeError::BadInterface(iface));
    }
    let layout = PacketLayout::new(kind, wlen, data.len());
    encode_packet_with(buf, &layout, ts, iface, lctr, wlen, data)
}

/// [`encode_packet`] with the layout already computed (by [`PacketLayout::new`] for the same
/// `kind`, `wlen` and `data.len()`) and `iface` already checked to be at most 3.
#[inline(always)]
pub(crate) fn encode_packet_with(
    buf: &mut [u8],
    layout: &PacketLayout,
    ts: Timestamp,
    iface: u8,
    lctr: u16,
    wlen: u16,
    data: &[u8],
) -> Result<usize, EncodeError> {
    let PacketLayout {
        type_code,
        framing,
        caplen,
        rlen,
    } = *layout;
    // The one length check: everything below is inside `rec`, and `rlen >= framing >= 16`.
    let Some(rec) = buf.get_mut(..rlen) else {
        return Err(EncodeError::BufferTooSmall {
            needed: rlen,
            available: buf.len(),
        });
    };
    // The padding (at most 7 bytes) lies in the last 8 bytes of the record: zero those with
    // one store first. The header, subheader and data written next overwrite whatever part of
    // them is not padding.
    rec[rlen - 8..].copy_from_slice(&[0; 8]);
    // The generic header: the timestamp little-endian, then type, flags, rlen, lctr and wlen,
    // which read as one big-endian u64.
    let flags = FLAG_VLEN | (iface & FLAG_IFACE_MASK);
    let fields = (type_code as u64) << 56
        | (flags as u64) << 48
        | (rlen as u64) << 32
        | (lctr as u64) << 16
        | wlen as u64;
    rec[..8].copy_from_slice(&ts.0.to_le_bytes());
    rec[8..HEADER_LEN].copy_from_slice(&fields.to_be_bytes());
    if framing != HEADER_LEN {
        // The Ethernet subheader: offset 0, pad 0.
        rec[HEADER_LEN..HEADER_LEN + ETH_SUBHEADER_LEN].copy_from_slice(&[0; 2]);
    }
    rec[framing..framing + caplen].copy_from_slice(&data[..caplen]);
    Ok(rlen)
}

/// Encodes a META record (type 27 | ext = 0x9B, Host ID extension, flags = vlen) whose payload
/// is `tlvs` (built with [`meta::MetaBuilder`]); appends it to `out` and returns its length.
/// wlen is the TLV length; the record is padded to a multiple of 8.
/// TLV payloads longer than fit in one record are cut at 65504 bytes (TLVs are 4-aligned).
pub fn encode_meta(out: &mut Vec<u8>, ts: Timestamp, host: HostId, tlvs: &[u8]) -> usize {
    let max = MAX_RLEN - HEADER_LEN - EXT_HEADER_LEN;
    let caplen = tlvs.len().min(max & !3);
    let repr = RecordRepr {
        ts,
        record_type: RecordType::Meta,
        flags: FLAG_VLEN,
        lctr: 0,
        wlen: caplen as u16,
        host_id: Some(host),
        caplen,
    };
    let len = repr.buffer_len();
    let start = out.len();
    out.resize(start + len, 0);
    let rec = &mut out[start..];
    let framing = repr.framing_len();
    rec[framing..framing + caplen].copy_from_slice(&tlvs[..caplen]);
    repr.emit(&mut Record::new_unchecked(rec));
    len
}

/// Iterates over the records of a byte slice (for example a memory-mapped ERF file).
///
/// Yields every record in order, PAD and META included (callers skip what they do not want).
/// A clean end of data ends the iteration; a bad record yields one [`ErfError`] carrying the
/// record number and byte offset, after which the iterator stops. It never panics and never
/// reads past a record's rlen.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    data: &'a [u8],
    offset: usize,
    index: u64,
    done: bool,
}

impl<'a> RecordIter<'a> {
    /// Starts at the beginning of `data`.
    pub const fn new(data: &'a [u8]) -> Self {
        RecordIter {
            data,
            offset: 0,
            index: 0,
            done: false,
        }
    }

    /// The byte offset of the next record (the length of whole records read so far).
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// The number of records yielded so far.
    pub const fn index(&self) -> u64 {
        self.index
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<Record<&'a [u8]>, ErfError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.offset..];
        let r = Record::new_unchecked(rest);
        if let Err(kind) = r.check_len() {
            self.done = true;
            return Some(Err(ErfError {
                index: self.index,
                offset: self.offset as u64,
                kind,
            }));
        }
        let rlen = r.rlen_be() as usize;
        self.offset += rlen;
        self.index += 1;
        Some(Ok(Record::new_unchecked(&rest[..rlen])))
    }
}

/// The length of the longest prefix of `data` made of whole, valid records (what a reader can
/// trust in a file whose end may be cut mid-record).
pub fn whole_records_len(data: &[u8]) -> usize {
    let mut it = RecordIter::new(data);
    while let Some(Ok(_)) = it.next() {}
    it.offset()
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordType::Eth => f.write_str("ETH"),
            RecordType::ColorEth => f.write_str("COLOR_ETH"),
            RecordType::DsmColorEth => f.write_str("DSM_COLOR_ETH"),
            RecordType::ColorHashEth => f.write_str("COLOR_HASH_ETH"),
            RecordType::Ipv4 => f.write_str("IPV4"),
            RecordType::Ipv6 => f.write_str("IPV6"),
            RecordType::Meta => f.write_str("META"),
            RecordType::Pad => f.write_str("PAD"),
            RecordType::Other(c) => write!(f, "type {c}"),
        }
    }
}

#[cfg(test)]
mod tests;
