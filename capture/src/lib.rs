//! The capture engine of anoncap: everything between a frame arriving and an anonymised,
//! header-only ERF record on disk.
//!
//! - [`packet`]: the types every stage shares (timestamps, link types, borrowed packets);
//! - [`rewrite`]: the frame rewriter (keep L2-L4 headers, drop payload, anonymise addresses,
//!   fix checksums), shared by the offline, live and DAG paths;
//! - [`input`]: memory-mapped readers of pcap, pcapng and ERF traces;
//! - [`erf`]: typed views over ERF records, and their encoding;
//! - [`output`]: the ERF file writer with rotation, META provenance and JSON sidecars;
//! - [`stats`]: counters of packets, bytes, cuts and losses;
//! - [`offline`]: the offline pipeline (traces in, anonymised ERF out).
#![deny(unsafe_code)]

#[cfg(feature = "dag")]
pub mod dag;
pub mod erf;
pub mod input;
#[cfg(feature = "live")]
pub mod live;
pub mod offline;
pub mod output;
pub mod packet;
pub mod rewrite;
pub mod stats;
