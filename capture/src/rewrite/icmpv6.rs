//! ICMPv6 (RFC 4443).
use anonymise::AddressMapper;

use super::ipv4::Pseudo;
use super::{Done, Mode, Walk};
use crate::stats::CutReason;

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks an ICMPv6 message at `off`.
    pub(crate) fn icmpv6(&mut self, off: usize, _limit: usize, _p: Pseudo, _mode: Mode) -> Done {
        Done::cut(off, CutReason::UnknownMessageType)
    }
}
