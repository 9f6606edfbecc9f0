//! The XDP program that cuts frames to their headers in the kernel, and its loader.
#![deny(unsafe_code)]

/// The generic program object, as compiled by build.rs.
pub const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/anoncap.bpf.o"));
