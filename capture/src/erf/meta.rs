//! META (type 27) provenance records: a builder for their TLV payload, and a reader.
//!
//! A TLV is a big-endian u16 tag, a big-endian u16 value length, then the value zero-padded to
//! a multiple of 4. Numbers are big-endian, except time values (`gen_time`, `start_time`,
//! `end_time`), which are 8-byte little-endian ERF timestamps. A section starts with a header tag
//! `0xFF00 + n` whose 4-byte value is a u16 section id and a u16 section length counted from the
//! section header to the end of the section's tags.
//!
//! No-panic contract: [`MetaBuilder`] never panics (values longer than 65535 bytes are cut);
//! [`TlvIter`] never panics on any input and stops at the first TLV that runs past the data.

use crate::packet::Timestamp;

/// META tag numbers (as Wireshark's `packet-erf.c` names them).
pub mod tag {
    /// Free-form comment.
    pub const COMMENT: u16 = 1;
    /// Generation time of the record (LE ERF timestamp).
    pub const GEN_TIME: u16 = 2;
    /// Host id (u64 holding the 48-bit ERF host id).
    pub const HOST_ID: u16 = 6;
    /// FCS length in bits (u32).
    pub const FCS_LEN: u16 = 8;
    /// Name (string).
    pub const NAME: u16 = 12;
    /// Description (string).
    pub const DESCR: u16 = 13;
    /// Application name (string).
    pub const APP_NAME: u16 = 16;
    /// Operating system (string).
    pub const OS: u16 = 17;
    /// Host name (string).
    pub const HOSTNAME: u16 = 18;
    /// Snap length (u32).
    pub const SNAPLEN: u16 = 29;
    /// Stream number (u32).
    pub const STREAM_NUM: u16 = 33;
    /// Capture filter (string).
    pub const FILTER: u16 = 36;
    /// Application version (string).
    pub const APP_VERSION: u16 = 47;
    /// Interface number (u32).
    pub const IF_NUM: u16 = 64;
    /// Interface line rate in bit/s (u64).
    pub const IF_SPEED: u16 = 66;
    /// Start of the period a stats section covers (LE ERF timestamp).
    pub const START_TIME: u16 = 193;
    /// End of the period a stats section covers (LE ERF timestamp).
    pub const END_TIME: u16 = 194;
    /// Frames dropped by the interface (u64).
    pub const STAT_IF_DROP: u16 = 195;
    /// Frames received (u64).
    pub const STAT_FRAMES: u16 = 196;
    /// Bytes received, on the wire (u64).
    pub const STAT_BYTES: u16 = 197;
    /// Frames captured (u64).
    pub const STAT_CAP: u16 = 198;
    /// Bytes captured (u64).
    pub const STAT_CAP_BYTES: u16 = 199;
    /// Frames dropped by the operating system (u64).
    pub const STAT_OS_DROP: u16 = 200;
    /// Frames lost as recorded in lctr (u64).
    pub const STAT_DS_LCTR: u16 = 201;
    /// Frames dropped, all causes (u64).
    pub const STAT_DROP: u16 = 214;
    /// Frames dropped for want of buffer space (u64).
    pub const STAT_BUF_DROP: u16 = 215;
}

/// Section header tags.
pub mod section {
    /// Capture (the software that wrote the file).
    pub const CAPTURE: u16 = 0xFF00;
    /// Host.
    pub const HOST: u16 = 0xFF01;
    /// Module.
    pub const MODULE: u16 = 0xFF02;
    /// Interface (id = interface number + 1).
    pub const INTERFACE: u16 = 0xFF03;
    /// Flow.
    pub const FLOW: u16 = 0xFF04;
    /// Statistics.
    pub const STATS: u16 = 0xFF05;
    /// Info.
    pub const INFO: u16 = 0xFF06;
    /// Context.
    pub const CONTEXT: u16 = 0xFF07;
    /// Stream.
    pub const STREAM: u16 = 0xFF08;
}

/// Builds the TLV payload of a META record.
#[derive(Debug, Default, Clone)]
pub struct MetaBuilder {
    buf: Vec<u8>,
    section_start: Option<usize>,
}

impl MetaBuilder {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a TLV with a raw value (cut to 65535 bytes), padded to 4.
    pub fn bytes(&mut self, tag: u16, value: &[u8]) -> &mut Self {
        let value = &value[..value.len().min(u16::MAX as usize)];
        self.buf.extend_from_slice(&tag.to_be_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        let pad = (4 - value.len() % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
        self
    }

    /// Appends a string TLV (no terminating NUL).
    pub fn string(&mut self, tag: u16, value: &str) -> &mut Self {
        self.bytes(tag, value.as_bytes())
    }

    /// Appends a big-endian u32 TLV.
    pub fn u32(&mut self, tag: u16, value: u32) -> &mut Self {
        self.bytes(tag, &value.to_be_bytes())
    }

    /// Appends a big-endian u64 TLV.
    pub fn u64(&mut self, tag: u16, value: u64) -> &mut Self {
        self.bytes(tag, &value.to_be_bytes())
    }

    /// Appends a time TLV: an 8-byte little-endian ERF timestamp.
    pub fn time(&mut self, tag: u16, ts: Timestamp) -> &mut Self {
        self.bytes(tag, &ts.0.to_le_bytes())
    }

    /// Starts a section (closing the open one, if any): `kind` is one of [`section`], `id` the
    /// section id (interface number + 1 for interface sections).
    pub fn begin_section(&mut self, kind: u16, id: u16) -> &mut Self {
        self.end_section();
        self.section_start = Some(self.buf.len());
        self.buf.extend_from_slice(&kind.to_be_bytes());
        self.buf.extend_from_slice(&4u16.to_be_bytes());
        self.buf.extend_from_slice(&id.to_be_bytes());
        self.buf.extend_from_slice(&0u16.to_be_bytes());
        self
    }

    /// Closes the open section, writing its length.
    pub fn end_section(&mut self) -> &mut Self {
        if let Some(start) = self.section_start.take() {
            let len = (self.buf.len() - start).min(u16::MAX as usize) as u16;
            self.buf[start + 6..start + 8].copy_from_slice(&len.to_be_bytes());
        }
        self
    }

    /// The finished payload (the open section is closed).
    pub fn finish(mut self) -> Vec<u8> {
        self.end_section();
        self.buf
    }
}

/// One TLV of a META payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag number.
    pub tag: u16,
    /// The value, without padding.
    pub value: &'a [u8],
}

impl Tlv<'_> {
    /// The value as a big-endian u32, if it is 4 bytes long.
    pub fn as_u32(&self) -> Option<u32> {
        self.value.try_into().ok().map(u32::from_be_bytes)
    }

    /// The value as a big-endian u64, if it is 8 bytes long.
    pub fn as_u64(&self) -> Option<u64> {
        self.value.try_into().ok().map(u64::from_be_bytes)
    }

    /// The value as a little-endian ERF timestamp, if it is 8 bytes long.
    pub fn as_time(&self) -> Option<Timestamp> {
        self.value
            .try_into()
            .ok()
            .map(|a| Timestamp(u64::from_le_bytes(a)))
    }

    /// The value as UTF-8 text (trailing NULs removed), if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        let end = self
            .value
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |p| p + 1);
        core::str::from_utf8(&self.value[..end]).ok()
    }

    /// For a section header: (section id, section length).
    pub fn section(&self) -> Option<(u16, u16)> {
        if self.tag < 0xFF00 || self.value.len() != 4 {
            return None;
        }
        Some((
            u16::from_be_bytes([self.value[0], self.value[1]]),
            u16::from_be_bytes([self.value[2], self.value[3]]),
        ))
    }
}

/// Iterates over the TLVs of a META payload.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    data: &'a [u8],
}

impl<'a> TlvIter<'a> {
    /// Iterates over `payload` (a META record's captured bytes).
    pub const fn new(payload: &'a [u8]) -> Self {
        TlvIter { data: payload }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        if self.data.len() < 4 {
            return None;
        }
        let tag = u16::from_be_bytes([self.data[0], self.data[1]]);
        let len = u16::from_be_bytes([self.data[2], self.data[3]]) as usize;
        let value = self.data.get(4..4 + len)?;
        let padded = 4 + len.div_ceil(4) * 4;
        self.data = self.data.get(padded..).unwrap_or(&[]);
        Some(Tlv { tag, value })
    }
}
