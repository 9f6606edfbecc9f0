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
    /// A hint that `addr` (an IPv4 address, network byte order) is about to be mapped: a
    /// mapper with a cache may start loading its entry. Changes nothing; by default a no-op.
    fn prefetch_ipv4(&self, addr: [u8; 4]) {
        let _ = addr;
    }
    /// As [`AddressMapper::prefetch_ipv4`], for an IPv6 address.
    fn prefetch_ipv6(&self, addr: [u8; 16]) {
        let _ = addr;
    }
}

pub mod cache;
pub mod cryptopan;
pub mod ipcrypt;
pub mod kernel;
pub mod key;
pub mod policy;

use std::net::IpAddr;
use std::sync::Arc;

use cache::Cache;
use cryptopan::{CryptoPan, Scratch};
use ipcrypt::{Deterministic, Feistel32, MacMapper, Pfx};
pub use key::{Key, KeyError};
pub use policy::{Action, Class, Policy, PolicyError};

/// Addresses handled per inner chunk of the batch entry points.
const CHUNK: usize = 256;

/// Options of the prepared state (for tests and benchmarks; the defaults are the fast ones).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Build the per-key table of the first 16 Crypto-PAn output bits of every /16 (128 KiB).
    pub table: bool,
    /// Use the VAES-512 bulk kernel where the CPU has it (otherwise the `aes` crate's
    /// `encrypt_blocks`, which selects VAES or AES-NI itself).
    pub kernel: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            table: true,
            kernel: true,
        }
    }
}

/// What is constant per key and policy: ciphers, subkeys, the Crypto-PAn table. Built once and
/// shared (`Arc`) by the per-thread [`Anonymiser`]s.
pub struct Prepared {
    policy: Policy,
    fingerprint: String,
    cryptopan: CryptoPan,
    scramble4: Feistel32,
    scramble6: Deterministic,
    pfx: Pfx,
    mac: MacMapper,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("policy", &self.policy.to_string())
            .field("key_fingerprint", &self.fingerprint)
            .field("cryptopan", &self.cryptopan)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Prepares `key` and `policy` with the default options.
    pub fn new(key: &Key, policy: &Policy) -> Arc<Prepared> {
        Prepared::with_options(key, policy, Options::default())
    }

    /// Prepares `key` and `policy`. The Crypto-PAn table is built only if the policy uses
    /// Crypto-PAn and `options.table` is set.
    pub fn with_options(key: &Key, policy: &Policy, options: Options) -> Arc<Prepared> {
        let s4 = key.derive_subkey::<16>(key::info::SCRAMBLE_V4);
        let s6 = key.derive_subkey::<16>(key::info::SCRAMBLE_V6);
        let pfx = key.derive_subkey::<32>(key::info::IPCRYPT_PFX);
        let mac = key.derive_subkey::<16>(key::info::MAC);
        Arc::new(Prepared {
            policy: policy.clone(),
            fingerprint: key.fingerprint(),
            cryptopan: CryptoPan::with_kernel(
                key,
                options.table && policy.uses_cryptopan(),
                options.kernel,
            ),
            scramble4: Feistel32::new(&s4),
            scramble6: Deterministic::new(&s6),
            pfx: Pfx::new(&pfx),
            mac: MacMapper::new(&mac),
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The key's fingerprint (see [`Key::fingerprint`]).
    pub fn key_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The Crypto-PAn engine of the key (its reference and batch paths).
    pub fn cryptopan(&self) -> &CryptoPan {
        &self.cryptopan
    }
}

#[inline]
fn truncate4(v: u32, bits: u8) -> u32 {
    if bits == 0 {
        0
    } else {
        v & !(u32::MAX >> bits)
    }
}

#[inline]
fn truncate6(v: u128, bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        v & !(u128::MAX >> bits)
    }
}

/// Pending addresses of one expensive action within a chunk.
#[derive(Default)]
struct Pending<T> {
    idx: Vec<u16>,
    vals: Vec<T>,
}

impl<T> Pending<T> {
    fn clear(&mut self) {
        self.idx.clear();
        self.vals.clear();
    }
    fn push(&mut self, i: usize, v: T) {
        self.idx.push(i as u16);
        self.vals.push(v);
    }
}

/// A per-thread anonymiser: the shared [`Prepared`] state, an exact-address cache and scratch
/// buffers. It implements [`AddressMapper`] for the frame rewriter and has batch entry points.
pub struct Anonymiser {
    prep: Arc<Prepared>,
    cache4: Cache<u32>,
    cache6: Cache<u128>,
    scratch: Scratch,
    /// Crypto-PAn, scramble, ipcrypt-pfx.
    pend4: [Pending<u32>; 3],
    pend6: [Pending<u128>; 3],
}

impl std::fmt::Debug for Anonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anonymiser")
            .field("prepared", &self.prep)
            .field("cache_entries", &self.cache_entries())
            .finish_non_exhaustive()
    }
}

impl Anonymiser {
    /// An anonymiser for `key` and `policy` with an exact-address cache of at least
    /// `cache_entries` entries per address family (0 disables the cache; the size is rounded
    /// up to a power of two: 8 bytes per IPv4 entry, 32 per IPv6 entry).
    pub fn new(key: &Key, policy: &Policy, cache_entries: usize) -> Anonymiser {
        Anonymiser::from_prepared(Prepared::new(key, policy), cache_entries)
    }

    /// An anonymiser over a shared prepared state (cheap: no AES key schedule or table build).
    pub fn from_prepared(prep: Arc<Prepared>, cache_entries: usize) -> Anonymiser {
        let mut a = Anonymiser {
            prep,
            cache4: Cache::new(0, 0, 0),
            cache6: Cache::new(0, 0, 0),
            scratch: Scratch::default(),
            pend4: Default::default(),
            pend6: Default::default(),
        };
        for p in &mut a.pend4 {
            p.idx.reserve(CHUNK);
            p.vals.reserve(CHUNK);
        }
        for p in &mut a.pend6 {
            p.idx.reserve(CHUNK);
            p.vals.reserve(CHUNK);
        }
        if cache_entries > 0 {
            let mut z4 = [[0u8; 4]];
            a.map_ipv4_batch(&mut z4);
            let mut z6 = [[0u8; 16]];
            a.map_ipv6_batch(&mut z6);
            a.cache4 = Cache::new(cache_entries, 0, u32::from_be_bytes(z4[0]));
            a.cache6 = Cache::new(cache_entries, 0, u128::from_be_bytes(z6[0]));
        }
        a
    }

    /// The shared prepared state.
    pub fn prepared(&self) -> &Arc<Prepared> {
        &self.prep
    }

    /// Slots in each of the two caches (0 when disabled).
    pub fn cache_entries(&self) -> usize {
        self.cache4.capacity()
    }

    /// Anonymises IPv4 addresses (network byte order) in place, in bulk.
    pub fn map_ipv4_batch(&mut self, addrs: &mut [[u8; 4]]) {
        let prep = &*self.prep;
        for chunk in addrs.chunks_mut(CHUNK) {
            for p in &mut self.pend4 {
                p.clear();
            }
            for (i, a) in chunk.iter_mut().enumerate() {
                let v = u32::from_be_bytes(*a);
                if let Some(out) = self.cache4.get(v) {
                    *a = out.to_be_bytes();
                    continue;
                }
                match prep.policy.action(Class::of_ipv4(v)) {
                    Action::Keep => {}
                    Action::Truncate(n) => *a = truncate4(v, n).to_be_bytes(),
                    Action::CryptoPan => self.pend4[0].push(i, v),
                    Action::Scramble => self.pend4[1].push(i, v),
                    Action::IpcryptPfx => self.pend4[2].push(i, v),
                }
            }
            for (kind, p) in self.pend4.iter_mut().enumerate() {
                if p.vals.is_empty() {
                    continue;
                }
                match kind {
                    0 => prep.cryptopan.ipv4_batch(&mut p.vals, &mut self.scratch),
                    1 => prep.scramble4.encrypt_batch(&mut p.vals, &mut self.scratch),
                    _ => prep.pfx.encrypt_ipv4_batch(&mut p.vals, &mut self.scratch),
                }
                for (&i, &out) in p.idx.iter().zip(p.vals.iter()) {
                    let a = &mut chunk[i as usize];
                    self.cache4.insert(u32::from_be_bytes(*a), out);
                    *a = out.to_be_bytes();
                }
            }
        }
    }

    /// Anonymises IPv6 addresses (network byte order) in place, in bulk.
    pub fn map_ipv6_batch(&mut self, addrs: &mut [[u8; 16]]) {
        let prep = &*self.prep;
        for chunk in addrs.chunks_mut(CHUNK) {
            for p in &mut self.pend6 {
                p.clear();
            }
            for (i, a) in chunk.iter_mut().enumerate() {
                let v = u128::from_be_bytes(*a);
                if let Some(out) = self.cache6.get(v) {
                    *a = out.to_be_bytes();
                    continue;
                }
                match prep.policy.action(Class::of_ipv6(v)) {
                    Action::Keep => {}
                    Action::Truncate(n) => *a = truncate6(v, n).to_be_bytes(),
                    Action::CryptoPan => self.pend6[0].push(i, v),
                    Action::Scramble => self.pend6[1].push(i, v),
                    Action::IpcryptPfx => self.pend6[2].push(i, v),
                }
            }
            for (kind, p) in self.pend6.iter_mut().enumerate() {
                if p.vals.is_empty() {
                    continue;
                }
                match kind {
                    0 => prep.cryptopan.ipv6_batch(&mut p.vals, &mut self.scratch),
                    1 => prep.scramble6.encrypt_batch(&mut p.vals, &mut self.scratch),
                    _ => prep.pfx.encrypt_batch(&mut p.vals, &mut self.scratch),
                }
                for (&i, &out) in p.idx.iter().zip(p.vals.iter()) {
                    let a = &mut chunk[i as usize];
                    self.cache6.insert(u128::from_be_bytes(*a), out);
                    *a = out.to_be_bytes();
                }
            }
        }
    }

    /// Anonymises one address of either family (IPv4 stays IPv4, IPv6 stays IPv6).
    pub fn map_ip(&mut self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(a) => IpAddr::V4(self.map_ipv4(a.octets()).into()),
            IpAddr::V6(a) => IpAddr::V6(self.map_ipv6(a.octets()).into()),
        }
    }
}

impl Anonymiser {
    /// The single-address path after a cache miss: the batch path on one address (which maps
    /// it by the policy and fills the cache).
    #[cold]
    #[inline(never)]
    fn map_ipv4_miss(&mut self, addr: [u8; 4]) -> [u8; 4] {
        let mut one = [addr];
        self.map_ipv4_batch(&mut one);
        one[0]
    }

    /// As [`Self::map_ipv4_miss`], for IPv6.
    #[cold]
    #[inline(never)]
    fn map_ipv6_miss(&mut self, addr: [u8; 16]) -> [u8; 16] {
        let mut one = [addr];
        self.map_ipv6_batch(&mut one);
        one[0]
    }
}

// The single-address calls are what the frame rewriter makes, twice or more per frame: a cache
// hit (the common case on real traffic) is answered inline, and only a miss takes the batch
// path. Both give the same output: the cache holds only what the batch path computed.
impl AddressMapper for Anonymiser {
    #[inline]
    fn map_ipv4(&mut self, addr: [u8; 4]) -> [u8; 4] {
        match self.cache4.get(u32::from_be_bytes(addr)) {
            Some(out) => out.to_be_bytes(),
            None => self.map_ipv4_miss(addr),
        }
    }

    #[inline]
    fn map_ipv6(&mut self, addr: [u8; 16]) -> [u8; 16] {
        match self.cache6.get(u128::from_be_bytes(addr)) {
            Some(out) => out.to_be_bytes(),
            None => self.map_ipv6_miss(addr),
        }
    }

    /// Group MAC addresses are kept; individual ones keep their U/L bit and have the other 46
    /// bits permuted under a key derived from the anonymisation key (see [`ipcrypt::MacMapper`]).
    fn map_mac(&mut self, mac: [u8; 6]) -> [u8; 6] {
        self.prep.mac.map(mac)
    }

    #[inline]
    fn prefetch_ipv4(&self, addr: [u8; 4]) {
        self.cache4.prefetch(u32::from_be_bytes(addr));
    }

    #[inline]
    fn prefetch_ipv6(&self, addr: [u8; 16]) {
        self.cache6.prefetch(u128::from_be_bytes(addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The single-address calls (answered from the cache on a hit, by the batch path on a
    /// miss) agree with the Crypto-PAn reference path, whether the cache is large, tiny (every
    /// bucket evicting) or disabled, on first sight and on repeats.
    #[test]
    fn single_calls_match_reference_through_hits_misses_and_evictions() {
        let key = Key::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(11) ^ 0x3c));
        let policy = Policy::cryptopan();
        let prep = Prepared::new(&key, &policy);
        let cp = prep.cryptopan();
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let v4: Vec<u32> = (0..200).map(|_| next() as u32).collect();
        let v6: Vec<u128> = (0..40)
            .map(|_| (u128::from(next()) << 64) | u128::from(next()))
            .collect();
        for entries in [1 << 12, 2, 0] {
            let mut a = Anonymiser::from_prepared(prep.clone(), entries);
            for round in 0..3 {
                for &x in &v4 {
                    let want = cp.reference_ipv4(x).to_be_bytes();
                    assert_eq!(
                        a.map_ipv4(x.to_be_bytes()),
                        want,
                        "{x:#x} {entries} {round}"
                    );
                }
                for &x in &v6 {
                    let want = cp.reference_ipv6(x).to_be_bytes();
                    assert_eq!(
                        a.map_ipv6(x.to_be_bytes()),
                        want,
                        "{x:#x} {entries} {round}"
                    );
                }
            }
        }
    }
}
