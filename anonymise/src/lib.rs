//! Address anonymisation for anoncap.
//!
//! The rest of anoncap sees this crate through one trait, [`AddressMapper`]: the frame rewriter
//! hands it every address it finds in a header and writes back what it returns. Which algorithm
//! runs (Crypto-PAn, truncation, full scrambling, ipcrypt-pfx) and which address classes are kept
//! is decided by the policy the mapper was built from.
#![deny(unsafe_code)]

/// Maps addresses found in packet headers to their anonymised form.
///
/// Implementations are per thread (`&mut self`): caches live inside them and need no locks.
/// A mapper must be deterministic for its key and policy: the same input always gives the same
/// output, so that an address in an ICMP quoted header maps like the flow it quotes.
pub trait AddressMapper {
    /// Maps an IPv4 address, in network byte order.
    fn map_ipv4(&mut self, addr: [u8; 4]) -> [u8; 4];
    /// Maps an IPv6 address, in network byte order.
    fn map_ipv6(&mut self, addr: [u8; 16]) -> [u8; 16];
    /// Maps a MAC address (used only when the rewriter is asked to anonymise MAC addresses).
    fn map_mac(&mut self, mac: [u8; 6]) -> [u8; 6];
}
