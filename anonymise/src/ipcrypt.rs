//! The other keyed mappings: ipcrypt-pfx, full scrambling and the MAC mapping.
//!
//! - [`Deterministic`]: AES-128 of the 16-byte address, the primitive of ipcrypt-deterministic
//!   (draft-denis-ipcrypt). Used by the `scramble` policy for IPv6 (IPv6 stays IPv6).
//! - [`Pfx`]: ipcrypt-pfx (draft-denis-ipcrypt), prefix-preserving with two AES-128 keys whose
//!   outputs are XORed; the PRF input for a prefix of L bits is `zeros || 1 || prefix`, the
//!   cipher bit is the least significant bit of byte 15, and IPv4 is processed as
//!   `::ffff:a.b.c.d` from bit 96 on (so IPv4 stays IPv4).
//! - [`Feistel32`]: the keyed 32-bit permutation of the `scramble` policy for IPv4. A balanced
//!   Feistel network of [`FEISTEL_ROUNDS`] rounds on two 16-bit halves, whose round function is
//!   AES-128: `F(r, x) = the first bytes of AES_K(domain || r || x || 0...)`, truncated to the
//!   half's width. It is a permutation whatever F is, and [`Feistel32::decrypt`] inverts it.
//! - [`MacMapper`]: a keyed permutation of MAC addresses. Group addresses (the I/G bit set:
//!   broadcast, multicast) identify no station and are kept; for an individual address the U/L
//!   bit is kept and the other 46 bits go through the same Feistel construction on two 23-bit
//!   halves, so two stations never share a mapped address.

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use aes::Aes128Enc;

use crate::cryptopan::Scratch;

/// Rounds of the Feistel permutations (IPv4 scrambling and MAC mapping).
pub const FEISTEL_ROUNDS: u8 = 10;

fn cipher(key: &[u8; 16]) -> Aes128Enc {
    Aes128Enc::new(&Array::from(*key))
}

/// AES-128 of the 16-byte address: the ipcrypt-deterministic primitive.
pub struct Deterministic {
    cipher: Aes128Enc,
}

impl Deterministic {
    /// With a 16-byte key.
    pub fn new(key: &[u8; 16]) -> Deterministic {
        Deterministic {
            cipher: cipher(key),
        }
    }

    /// Encrypts one 16-byte address.
    pub fn encrypt(&self, addr: [u8; 16]) -> [u8; 16] {
        let mut b = Array::from(addr);
        self.cipher.encrypt_block(&mut b);
        b.into()
    }

    /// Encrypts addresses (host-order `u128` of the wire bytes) in place, in bulk.
    pub fn encrypt_batch(&self, addrs: &mut [u128], scratch: &mut Scratch) {
        let buf = scratch.blocks_mut();
        for chunk in addrs.chunks_mut(buf.len()) {
            let blocks = &mut buf[..chunk.len()];
            for (b, a) in blocks.iter_mut().zip(chunk.iter()) {
                *b = a.to_be_bytes();
            }
            self.cipher
                .encrypt_blocks(Array::cast_slice_from_core_mut(blocks));
            for (b, a) in blocks.iter().zip(chunk.iter_mut()) {
                *a = u128::from_be_bytes(*b);
            }
        }
    }
}

/// ipcrypt-pfx, prefix-preserving (draft-denis-ipcrypt).
pub struct Pfx {
    k1: Aes128Enc,
    k2: Aes128Enc,
}

/// `::ffff:0:0`, the IPv4-mapped prefix.
const MAPPED: u128 = 0xffff_0000_0000;

impl Pfx {
    /// With a 32-byte key (the two AES-128 keys, which the draft requires to differ).
    pub fn new(key: &[u8; 32]) -> Pfx {
        let (a, b) = key.split_at(16);
        Pfx {
            k1: cipher(a.try_into().expect("16 bytes")),
            k2: cipher(b.try_into().expect("16 bytes")),
        }
    }

    /// Whether the two halves of `key` are equal (the draft refuses such a key).
    pub fn key_is_weak(key: &[u8; 32]) -> bool {
        key[..16] == key[16..]
    }

    #[inline(always)]
    fn block(addr: u128, len: u32) -> u128 {
        let prefix = if len == 0 { 0 } else { addr >> (128 - len) };
        (1u128 << len) | prefix
    }

    fn start(addr: u128) -> u32 {
        if addr >> 32 == MAPPED >> 32 {
            96
        } else {
            0
        }
    }

    /// One address in its 16-byte form (an IPv4 address as `::ffff:a.b.c.d`), two AES calls per
    /// bit one after the other, as the draft's pseudocode does.
    pub fn encrypt_reference(&self, addr: u128) -> u128 {
        let mut out = addr;
        for len in Self::start(addr)..128 {
            let mut e1 = Array::from(Self::block(addr, len).to_be_bytes());
            let mut e2 = e1;
            self.k1.encrypt_block(&mut e1);
            self.k2.encrypt_block(&mut e2);
            let bit = (e1[15] ^ e2[15]) & 1;
            out ^= u128::from(bit) << (127 - len);
        }
        out
    }

    /// Addresses in 16-byte form, in place, in bulk (same output as the reference).
    pub fn encrypt_batch(&self, addrs: &mut [u128], scratch: &mut Scratch) {
        let buf = scratch.blocks_mut();
        let half = buf.len() / 2;
        for a in addrs.iter_mut() {
            let start = Self::start(*a);
            let n = (128 - start) as usize;
            // At most 128 blocks per key: fits in half of the scratch.
            debug_assert!(n <= half);
            let (b1, rest) = buf.split_at_mut(half);
            let b1 = &mut b1[..n];
            let b2 = &mut rest[..n];
            for (k, (x, y)) in b1.iter_mut().zip(b2.iter_mut()).enumerate() {
                *x = Self::block(*a, start + k as u32).to_be_bytes();
                *y = *x;
            }
            self.k1.encrypt_blocks(Array::cast_slice_from_core_mut(b1));
            self.k2.encrypt_blocks(Array::cast_slice_from_core_mut(b2));
            let mut otp = 0u128;
            for (x, y) in b1.iter().zip(b2.iter()) {
                otp = (otp << 1) | u128::from((x[15] ^ y[15]) & 1);
            }
            *a ^= otp;
        }
    }

    /// IPv4 addresses (host-order `u32`) in place.
    pub fn encrypt_ipv4_batch(&self, addrs: &mut [u32], scratch: &mut Scratch) {
        let mut wide = [0u128; 16];
        for chunk in addrs.chunks_mut(16) {
            let w = &mut wide[..chunk.len()];
            for (x, a) in w.iter_mut().zip(chunk.iter()) {
                *x = MAPPED | u128::from(*a);
            }
            self.encrypt_batch(w, scratch);
            for (x, a) in w.iter().zip(chunk.iter_mut()) {
                *a = *x as u32;
            }
        }
    }
}

/// A balanced Feistel permutation on `2 * half_bits` bits with AES-128 as its round function.
struct Feistel {
    cipher: Aes128Enc,
    domain: u8,
    half_bits: u32,
}

impl Feistel {
    #[inline]
    fn round_block(&self, round: u8, x: u32) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = self.domain;
        b[1] = round;
        b[2..6].copy_from_slice(&x.to_be_bytes());
        b
    }

    #[inline]
    fn take(&self, b: &[u8; 16]) -> u32 {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & ((1u32 << self.half_bits) - 1)
    }

    fn f(&self, round: u8, x: u32) -> u32 {
        let mut b = Array::from(self.round_block(round, x));
        self.cipher.encrypt_block(&mut b);
        self.take(&b.into())
    }

    fn split(&self, v: u64) -> (u32, u32) {
        let m = (1u64 << self.half_bits) - 1;
        ((v >> self.half_bits) as u32, (v & m) as u32)
    }

    fn join(&self, l: u32, r: u32) -> u64 {
        (u64::from(l) << self.half_bits) | u64::from(r)
    }

    fn encrypt(&self, v: u64) -> u64 {
        let (mut l, mut r) = self.split(v);
        for round in 0..FEISTEL_ROUNDS {
            (l, r) = (r, l ^ self.f(round, r));
        }
        self.join(l, r)
    }

    fn decrypt(&self, v: u64) -> u64 {
        let (mut l, mut r) = self.split(v);
        for round in (0..FEISTEL_ROUNDS).rev() {
            (l, r) = (r ^ self.f(round, l), l);
        }
        self.join(l, r)
    }

    /// Many values at once: each round is one bulk AES call over all of them.
    fn encrypt_batch(&self, vals: &mut [u32], scratch: &mut Scratch) {
        let buf = scratch.blocks_mut();
        for chunk in vals.chunks_mut(buf.len()) {
            let blocks = &mut buf[..chunk.len()];
            for round in 0..FEISTEL_ROUNDS {
                for (b, v) in blocks.iter_mut().zip(chunk.iter()) {
                    let (_, r) = self.split(u64::from(*v));
                    *b = self.round_block(round, r);
                }
                self.cipher
                    .encrypt_blocks(Array::cast_slice_from_core_mut(blocks));
                for (b, v) in blocks.iter().zip(chunk.iter_mut()) {
                    let (l, r) = self.split(u64::from(*v));
                    *v = self.join(r, l ^ self.take(b)) as u32;
                }
            }
        }
    }
}

/// The keyed 32-bit permutation that scrambles IPv4 addresses (see the module documentation).
pub struct Feistel32 {
    inner: Feistel,
}

impl Feistel32 {
    /// With a 16-byte key.
    pub fn new(key: &[u8; 16]) -> Feistel32 {
        Feistel32 {
            inner: Feistel {
                cipher: cipher(key),
                domain: 4,
                half_bits: 16,
            },
        }
    }

    /// Maps one address.
    pub fn encrypt(&self, a: u32) -> u32 {
        self.inner.encrypt(u64::from(a)) as u32
    }

    /// The inverse of [`Self::encrypt`].
    pub fn decrypt(&self, a: u32) -> u32 {
        self.inner.decrypt(u64::from(a)) as u32
    }

    /// Maps addresses in place, in bulk (same output as [`Self::encrypt`]).
    pub fn encrypt_batch(&self, addrs: &mut [u32], scratch: &mut Scratch) {
        self.inner.encrypt_batch(addrs, scratch)
    }
}

/// The keyed MAC address mapping (see the module documentation).
pub struct MacMapper {
    inner: Feistel,
}

impl MacMapper {
    /// With a 16-byte key.
    pub fn new(key: &[u8; 16]) -> MacMapper {
        MacMapper {
            inner: Feistel {
                cipher: cipher(key),
                domain: 6,
                half_bits: 23,
            },
        }
    }

    fn pack(mac: [u8; 6]) -> (u64, u8) {
        let mut v = 0u64;
        for b in mac {
            v = (v << 8) | u64::from(b);
        }
        let flags = mac[0] & 0x03;
        // The 46 bits other than I/G (bit 40) and U/L (bit 41).
        let rest = ((v >> 42) << 40) | (v & 0xff_ffff_ffff);
        (rest, flags)
    }

    fn unpack(rest: u64, flags: u8) -> [u8; 6] {
        let v = ((rest >> 40) << 42) | (u64::from(flags) << 40) | (rest & 0xff_ffff_ffff);
        let b = v.to_be_bytes();
        [b[2], b[3], b[4], b[5], b[6], b[7]]
    }

    /// Maps one MAC address: group addresses are kept, the U/L bit is kept.
    pub fn map(&self, mac: [u8; 6]) -> [u8; 6] {
        if mac[0] & 1 == 1 {
            return mac;
        }
        let (rest, flags) = Self::pack(mac);
        Self::unpack(self.inner.encrypt(rest), flags)
    }

    /// The inverse of [`Self::map`].
    pub fn unmap(&self, mac: [u8; 6]) -> [u8; 6] {
        if mac[0] & 1 == 1 {
            return mac;
        }
        let (rest, flags) = Self::pack(mac);
        Self::unpack(self.inner.decrypt(rest), flags)
    }
}
