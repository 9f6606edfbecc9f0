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

use crate::kernel::Vaes512;
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
    /// `prefix_mask(i)` in wire byte order, as native integers (for the batch path).
    masks_ne: Box<[u128; 129]>,
    /// `pad_tail[i]` in wire byte order, as native integers (for the batch path).
    pad_tail_ne: Box<[u128; 129]>,
    /// Output bits 0..16 (as a u16) for each input /16, if built.
    table: Option<Box<[u16]>>,
    /// The VAES-512 bulk kernel, if this CPU has it and it was asked for.
    kernel: Option<Vaes512>,
}

impl std::fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoPan")
            .field("table", &self.table.is_some())
            .field("vaes512_kernel", &self.kernel.is_some())
            .finish_non_exhaustive()
    }
}

impl CryptoPan {
    /// Prepares Crypto-PAn for `key`, building the /16 table if `table` is true, with the
    /// VAES-512 kernel where the CPU has it.
    pub fn new(key: &Key, table: bool) -> CryptoPan {
        CryptoPan::with_kernel(key, table, true)
    }

    /// As [`Self::new`]; `kernel: false` makes every bulk call go through the `aes` crate's
    /// `encrypt_blocks` instead of the VAES-512 kernel (tests compare the two).
    pub fn with_kernel(key: &Key, table: bool, kernel: bool) -> CryptoPan {
        let bytes = key.as_bytes();
        let k: [u8; 16] = bytes[..16].try_into().expect("16 of 32 bytes");
        let cipher = Aes128Enc::new(&Array::from(k));
        let mut pad_block = Array::from(<[u8; 16]>::try_from(&bytes[16..]).expect("16 bytes"));
        cipher.encrypt_block(&mut pad_block);
        let pad = u128::from_be_bytes(pad_block.into());
        let mut pad_tail = Box::new([0u128; 129]);
        let mut masks_ne = Box::new([0u128; 129]);
        let mut pad_tail_ne = Box::new([0u128; 129]);
        for i in 0..129 {
            pad_tail[i] = pad & !prefix_mask(i as u32);
            masks_ne[i] = u128::from_ne_bytes(prefix_mask(i as u32).to_be_bytes());
            pad_tail_ne[i] = u128::from_ne_bytes(pad_tail[i].to_be_bytes());
        }
        let mut cp = CryptoPan {
            cipher,
            pad,
            pad_tail,
            masks_ne,
            pad_tail_ne,
            table: None,
            kernel: if kernel { Vaes512::new(&k) } else { None },
        };
        if table {
            cp.table = Some(cp.build_table());
        }
        cp
    }

    /// Whether the VAES-512 kernel is in use.
    pub fn has_kernel(&self) -> bool {
        self.kernel.is_some()
    }

    /// Encrypts blocks in bulk with the kernel or the `aes` crate.
    #[inline]
    fn encrypt_many(&self, blocks: &mut [[u8; 16]]) {
        match &self.kernel {
            Some(k) => k.encrypt_blocks(blocks),
            None => self
                .cipher
                .encrypt_blocks(Array::cast_slice_from_core_mut(blocks)),
        }
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
                self.encrypt_many(&mut blocks[..n]);
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
        let start = if self.table.is_some() { TABLE_BITS } else { 0 } as usize;
        let per = 32 - start;
        if let Some(k) = &self.kernel {
            let mut wide = [0u128; 32];
            let mut otps = [0u128; 32];
            for chunk in addrs.chunks_mut(32) {
                let n = chunk.len();
                for (w, a) in wide.iter_mut().zip(chunk.iter()) {
                    *w = u128::from_ne_bytes((u128::from(*a) << 96).to_be_bytes());
                }
                k.cryptopan_otps(
                    &wide[..n],
                    &self.masks_ne[start..],
                    &self.pad_tail_ne[start..],
                    per,
                    &mut otps[..n],
                );
                for (a, &otp) in chunk.iter_mut().zip(otps.iter()) {
                    let otp = otp as u32;
                    *a = match &self.table {
                        Some(t) => {
                            (u32::from(t[(*a >> 16) as usize]) << 16) | ((*a & 0xffff) ^ otp)
                        }
                        None => *a ^ otp,
                    };
                }
            }
            return;
        }
        let mut bits = [0u8; 4];
        for chunk in addrs.chunks_mut(SCRATCH_BLOCKS / per) {
            let blocks = &mut scratch.blocks[..chunk.len() * per];
            for (a, out) in chunk.iter().zip(blocks.chunks_exact_mut(per)) {
                let x = u128::from_ne_bytes((u128::from(*a) << 96).to_be_bytes());
                self.build_blocks(x, start, out);
            }
            self.encrypt_many(blocks);
            for (a, out) in chunk.iter_mut().zip(blocks.chunks_exact(per)) {
                collect_msbs(out, &mut bits[4 - per / 8..]);
                let otp = u32::from_be_bytes(bits);
                *a = match &self.table {
                    Some(t) => (u32::from(t[(*a >> 16) as usize]) << 16) | ((*a & 0xffff) ^ otp),
                    None => *a ^ otp,
                };
            }
        }
    }

    /// Batch path for IPv6: anonymises every address (`u128::from_be_bytes` of the wire bytes)
    /// in place. Same output as [`Self::reference_ipv6`].
    pub fn ipv6_batch(&self, addrs: &mut [u128], scratch: &mut Scratch) {
        let start = if self.table.is_some() { TABLE_BITS } else { 0 } as usize;
        let per = 128 - start;
        if let Some(k) = &self.kernel {
            let mut wide = [0u128; 8];
            let mut otps = [0u128; 8];
            for chunk in addrs.chunks_mut(8) {
                let n = chunk.len();
                for (w, a) in wide.iter_mut().zip(chunk.iter()) {
                    *w = u128::from_ne_bytes(a.to_be_bytes());
                }
                k.cryptopan_otps(
                    &wide[..n],
                    &self.masks_ne[start..],
                    &self.pad_tail_ne[start..],
                    per,
                    &mut otps[..n],
                );
                for (a, &otp) in chunk.iter_mut().zip(otps.iter()) {
                    *a = match &self.table {
                        Some(t) => {
                            (u128::from(t[(*a >> 112) as usize]) << 112)
                                | ((*a & (u128::MAX >> 16)) ^ otp)
                        }
                        None => *a ^ otp,
                    };
                }
            }
            return;
        }
        let mut bits = [0u8; 16];
        for chunk in addrs.chunks_mut(SCRATCH_BLOCKS / per) {
            let blocks = &mut scratch.blocks[..chunk.len() * per];
            for (a, out) in chunk.iter().zip(blocks.chunks_exact_mut(per)) {
                self.build_blocks(u128::from_ne_bytes(a.to_be_bytes()), start, out);
            }
            self.encrypt_many(blocks);
            for (a, out) in chunk.iter_mut().zip(blocks.chunks_exact(per)) {
                collect_msbs(out, &mut bits[16 - per / 8..]);
                let otp = u128::from_be_bytes(bits);
                *a = match &self.table {
                    Some(t) => {
                        (u128::from(t[(*a >> 112) as usize]) << 112)
                            | ((*a & (u128::MAX >> 16)) ^ otp)
                    }
                    None => *a ^ otp,
                };
            }
        }
    }

    /// Blocks `start..start + out.len()` of one address given in wire order as a native
    /// integer (`u128::from_ne_bytes` of the 16 block bytes): no byte swapping per block.
    #[inline(always)]
    fn build_blocks(&self, x: u128, start: usize, out: &mut [[u8; 16]]) {
        let masks = &self.masks_ne[start..start + out.len()];
        let pads = &self.pad_tail_ne[start..start + out.len()];
        for ((b, m), p) in out.iter_mut().zip(masks).zip(pads) {
            *b = ((x & m) | p).to_ne_bytes();
        }
    }
}

/// Packs the most significant bit of byte 0 of each block, 8 blocks per output byte (first
/// block in the byte's top bit). The bytes are independent, so no long dependency chain.
#[inline(always)]
fn collect_msbs(blocks: &[[u8; 16]], out: &mut [u8]) {
    for (o, group) in out.iter_mut().zip(blocks.chunks_exact(8)) {
        let mut v = 0u8;
        for (k, b) in group.iter().enumerate() {
            v |= (b[0] & 0x80) >> k;
        }
        *o = v;
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
