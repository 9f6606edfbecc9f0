//! Crypto-PAn (Fan, Xu, Ammar, Moon, "Prefix-preserving IP address anonymization", Computer
//! Networks 46(2), 2004), exactly as its reference implementation defines it.
//!
//! Key: 32 bytes; `K = key[0..16]` is the AES-128 key and the pad is `AES_K(key[16..32])` (the
//! second half is encrypted once). For an n-bit address `a` (n = 32 or 128) and each i in 0..n,
//! the block is the first i bits of `a` followed by the pad's bits from position i on; bit i of
//! the one-time pad is the most significant bit of byte 0 of `AES_K(block)`; the output is
//! `a XOR otp`. IPv6 uses all 128 bits (128 encryptions); an IPv4-mapped IPv6 address is a
//! 128-bit address like any other.
//!
//! Two paths compute the same function:
//! - the reference path ([`CryptoPan::reference_ipv4`], [`CryptoPan::reference_ipv6`]) does one
//!   AES call per bit, one after the other, as the paper describes it;
//! - the batch path ([`CryptoPan::ipv4_batch`], [`CryptoPan::ipv6_batch`]) builds the blocks of
//!   several addresses at once (they are independent: block i needs only the input's first i
//!   bits) and encrypts them with one call of the `aes` crate's parallel `encrypt_blocks`, which
//!   selects VAES-512, VAES-256 or AES-NI at run time. Block 0 is the same for every address
//!   and is encrypted once per key, and an optional per-key table (128 KiB) holds the first 16
//!   output bits of every /16 prefix, so a cold IPv4 address costs 16 AES blocks instead of 32
//!   (and an IPv6 address 112 instead of 128). The table is built level by level: the 2^i
//!   blocks of level i are encrypted in bulk, 65,535 blocks in all.

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use aes::Aes128Enc;

use crate::key::Key;

/// Blocks per `encrypt_blocks` call at most (8 KiB of scratch, in L1): a chunk of the batch
/// path holds as many addresses as fit (32 IPv4 or 4 IPv6 addresses with the table).
const SCRATCH_BLOCKS: usize = 512;
/// Bits covered by the per-key table.
const TABLE_BITS: u32 = 16;

/// Whether the `aes` crate found AES instructions on this CPU (AES-NI, VAES); if not, every
/// path runs its constant-time software AES, correct but much slower.
pub fn aes_hardware_accelerated() -> bool {
    aes::hardware_accelerated()
}

/// Reusable block buffer for the batch paths (one per thread; no allocation per call).
#[derive(Clone)]
pub struct Scratch {
    blocks: Vec<[u8; 16]>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            blocks: vec![[0u8; 16]; SCRATCH_BLOCKS],
        }
    }
}

impl Scratch {
    pub(crate) fn blocks_mut(&mut self) -> &mut [[u8; 16]] {
        &mut self.blocks
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch").finish_non_exhaustive()
    }
}

/// Mask of the first `i` bits of a 128-bit block (bit 0 = most significant).
#[inline(always)]
const fn prefix_mask(i: u32) -> u128 {
    if i == 0 {
        0
    } else {
        !0u128 << (128 - i)
    }
}

/// Crypto-PAn state for one key: the cipher, the pad, and optionally the /16 table.
pub struct CryptoPan {
    cipher: Aes128Enc,
    pad: u128,
    /// `pad & !prefix_mask(i)` for i in 0..=128.
    pad_tail: Box<[u128; 129]>,
    /// One-time-pad bit 0 (the same for every address).
    bit0: u8,
    /// Output bits 0..16 (as a u16) for each input /16, if built.
    table: Option<Box<[u16]>>,
}

impl std::fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoPan")
            .field("table", &self.table.is_some())
            .finish_non_exhaustive()
    }
}

impl CryptoPan {
    /// Prepares Crypto-PAn for `key`, building the /16 table if `table` is true.
    pub fn new(key: &Key, table: bool) -> CryptoPan {
        let bytes = key.as_bytes();
        let k: [u8; 16] = bytes[..16].try_into().expect("16 of 32 bytes");
        let cipher = Aes128Enc::new(&Array::from(k));
        let mut pad_block = Array::from(<[u8; 16]>::try_from(&bytes[16..]).expect("16 bytes"));
        cipher.encrypt_block(&mut pad_block);
        let pad = u128::from_be_bytes(pad_block.into());
        let mut pad_tail = Box::new([0u128; 129]);
        for (i, t) in pad_tail.iter_mut().enumerate() {
            *t = pad & !prefix_mask(i as u32);
        }
        let mut cp = CryptoPan {
            cipher,
            pad,
            pad_tail,
            bit0: 0,
            table: None,
        };
        cp.bit0 = cp.encrypt_msb(pad);
        if table {
            cp.table = Some(cp.build_table());
        }
        cp
    }

    /// Whether the /16 table is in use.
    pub fn has_table(&self) -> bool {
        self.table.is_some()
    }

    #[inline]
    fn encrypt_msb(&self, block: u128) -> u8 {
        let mut b = Array::from(block.to_be_bytes());
        self.cipher.encrypt_block(&mut b);
        b[0] >> 7
    }

    fn build_table(&self) -> Box<[u16]> {
        // bits[(1 << i) - 1 + p] = one-time-pad bit i for the i-bit prefix p.
        let total = (1usize << TABLE_BITS) - 1;
        let mut bits = vec![0u8; total];
        let mut blocks = vec![[0u8; 16]; 4096];
        for i in 0..TABLE_BITS {
            let count = 1usize << i;
            let base = count - 1;
            let mut p = 0usize;
            while p < count {
                let n = (count - p).min(blocks.len());
                for (k, b) in blocks[..n].iter_mut().enumerate() {
                    let prefix = ((p + k) as u128)
                        .checked_shl(128 - i)
                        .filter(|_| i > 0)
                        .unwrap_or(0);
                    *b = (prefix | self.pad_tail[i as usize]).to_be_bytes();
                }
                self.cipher
                    .encrypt_blocks(Array::cast_slice_from_core_mut(&mut blocks[..n]));
                for (k, b) in blocks[..n].iter().enumerate() {
                    bits[base + p + k] = b[0] >> 7;
                }
                p += n;
            }
        }
        let mut table = vec![0u16; 1 << TABLE_BITS].into_boxed_slice();
        for (prefix, t) in table.iter_mut().enumerate() {
            let mut otp = 0u16;
            for i in 0..TABLE_BITS {
                let p = prefix >> (TABLE_BITS - i);
                otp |= u16::from(bits[(1usize << i) - 1 + p]) << (TABLE_BITS - 1 - i);
            }
            *t = prefix as u16 ^ otp;
        }
        table
    }

    /// Reference path for IPv4: 32 AES calls one after the other, as the paper describes.
    pub fn reference_ipv4(&self, addr: u32) -> u32 {
        let x = u128::from(addr) << 96;
        let mut otp = 0u32;
        for i in 0..32u32 {
            let block = (x & prefix_mask(i)) | (self.pad & !prefix_mask(i));
            otp |= u32::from(self.encrypt_msb(block)) << (31 - i);
        }
        addr ^ otp
    }

    /// Reference path for IPv6: 128 AES calls one after the other.
    pub fn reference_ipv6(&self, addr: u128) -> u128 {
        let mut otp = 0u128;
        for i in 0..128u32 {
            let block = (addr & prefix_mask(i)) | (self.pad & !prefix_mask(i));
            otp |= u128::from(self.encrypt_msb(block)) << (127 - i);
        }
        addr ^ otp
    }

    /// Batch path for IPv4: anonymises every address of `addrs` in place (host-order `u32`,
    /// i.e. `u32::from_be_bytes` of the wire bytes). Same output as [`Self::reference_ipv4`].
    pub fn ipv4_batch(&self, addrs: &mut [u32], scratch: &mut Scratch) {
        let start: u32 = if self.table.is_some() { TABLE_BITS } else { 1 };
        let per = (32 - start) as usize;
        for chunk in addrs.chunks_mut(SCRATCH_BLOCKS / per) {
            let blocks = &mut scratch.blocks[..chunk.len() * per];
            for (a, out) in chunk.iter().zip(blocks.chunks_exact_mut(per)) {
                let x = u128::from(*a) << 96;
                for (j, b) in out.iter_mut().enumerate() {
                    let i = start as usize + j;
                    *b = ((x & prefix_mask(i as u32)) | self.pad_tail[i]).to_be_bytes();
                }
            }
            self.cipher
                .encrypt_blocks(Array::cast_slice_from_core_mut(blocks));
            for (a, out) in chunk.iter_mut().zip(blocks.chunks_exact(per)) {
                let mut otp = 0u32;
                for b in out {
                    otp = (otp << 1) | u32::from(b[0] >> 7);
                }
                let high = match &self.table {
                    Some(t) => u32::from(t[(*a >> 16) as usize]) << 16,
                    None => ((*a >> 31) ^ u32::from(self.bit0)) << 31,
                };
                let low_mask = (1u32 << per) - 1;
                *a = high | ((*a & low_mask) ^ otp);
            }
        }
    }

    /// Batch path for IPv6: anonymises every address (`u128::from_be_bytes` of the wire bytes)
    /// in place. Same output as [`Self::reference_ipv6`].
    pub fn ipv6_batch(&self, addrs: &mut [u128], scratch: &mut Scratch) {
        let start: u32 = if self.table.is_some() { TABLE_BITS } else { 1 };
        let per = (128 - start) as usize;
        for chunk in addrs.chunks_mut(SCRATCH_BLOCKS / per) {
            let blocks = &mut scratch.blocks[..chunk.len() * per];
            for (a, out) in chunk.iter().zip(blocks.chunks_exact_mut(per)) {
                for (j, b) in out.iter_mut().enumerate() {
                    let i = start as usize + j;
                    *b = ((*a & prefix_mask(i as u32)) | self.pad_tail[i]).to_be_bytes();
                }
            }
            self.cipher
                .encrypt_blocks(Array::cast_slice_from_core_mut(blocks));
            for (a, out) in chunk.iter_mut().zip(blocks.chunks_exact(per)) {
                let mut otp = 0u128;
                for b in out {
                    otp = (otp << 1) | u128::from(b[0] >> 7);
                }
                let high = match &self.table {
                    Some(t) => u128::from(t[(*a >> 112) as usize]) << 112,
                    None => ((*a >> 127) ^ u128::from(self.bit0)) << 127,
                };
                let low_mask = (1u128 << per) - 1;
                *a = high | ((*a & low_mask) ^ otp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_equals_reference_prefixes() {
        let key = Key::from_bytes(std::array::from_fn(|i| i as u8 * 7 + 1));
        let cp = CryptoPan::new(&key, true);
        let t = cp.table.as_ref().unwrap();
        for p in (0..65536u32).step_by(257) {
            let a = (p << 16) | 0x1234;
            assert_eq!(u32::from(t[p as usize]), cp.reference_ipv4(a) >> 16);
        }
    }
}
