//! IGMP.
use anonymise::AddressMapper;

use super::{Done, Mode, Walk};
use crate::stats::CutReason;

impl<M: AddressMapper> Walk<'_, M> {
    /// Walks an IGMP message at `off`.
    pub(crate) fn igmp(&mut self, off: usize, _limit: usize, _mode: Mode) -> Done {
        Done::cut(off, CutReason::UnknownMessageType)
    }
}
