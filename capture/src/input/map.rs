//! The one place where input files are memory-mapped.
#![allow(unsafe_code)]

use memmap2::Mmap;
use std::fs::File;
use std::io;

/// Maps `file` read-only for its whole length.
///
/// The file must not be empty (memmap2 refuses a zero-length map; callers check first).
pub(crate) fn map(file: &File) -> io::Result<Mmap> {
    // SAFETY: the map is read-only and private to this process. memmap2's contract is that the
    // file is not truncated or modified while mapped: anoncap reads finished traces, and, like
    // ripgrep and every mmap-based trace reader, it takes that risk for offline input (a trace
    // shrunk under a running reader can raise SIGBUS; it cannot produce out-of-bounds slices,
    // since every slice is bounded by the length fixed at map time).
    unsafe { Mmap::map(file) }
}
