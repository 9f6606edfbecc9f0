//! Bulk AES-128 encryption with VAES-512 intrinsics (`std::arch`), for the Crypto-PAn batch
//! path.
//!
//! The `aes` crate selects VAES-512 at run time too, but unless the whole program is built for
//! the CPU (`-C target-cpu=native`) its block-copying glue around the VAES core is not
//! vectorised, and bulk encryption runs at about half the speed the instructions allow. This
//! kernel keeps the blocks in `zmm` registers from load to store: 32 blocks (8 registers) per
//! iteration so that the AES unit stays busy despite its latency.
//!
//! It is not an AES implementation: the round keys come from the AES-NI key-generation
//! instruction and every round is the CPU's `vaesenc`. Tests compare it with the `aes` crate on
//! random keys and blocks. [`Vaes512::new`] returns `None` unless the CPU has AVX-512F, VAES,
//! AES-NI and BMI2, so every method may rely on them.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use zeroize::Zeroize;

/// AES-128 round keys for the VAES-512 kernel; exists only on a CPU that has the instructions.
pub struct Vaes512 {
    round_keys: [[u8; 16]; 11],
}

impl Drop for Vaes512 {
    fn drop(&mut self) {
        self.round_keys.zeroize();
    }
}

impl Vaes512 {
    /// The kernel for `key`, or `None` if this CPU lacks AVX-512F, VAES, AES-NI or BMI2.
    pub fn new(key: &[u8; 16]) -> Option<Vaes512> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("vaes")
                && std::arch::is_x86_feature_detected!("aes")
                && std::arch::is_x86_feature_detected!("bmi2")
            {
                // SAFETY: AES-NI (and SSE2, part of x86_64) was detected just above.
                let round_keys = unsafe { expand_key(key) };
                return Some(Vaes512 { round_keys });
            }
        }
        let _ = key;
        None
    }

    /// Encrypts every block in place (ECB, AES-128).
    pub fn encrypt_blocks(&self, blocks: &mut [[u8; 16]]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `Vaes512` exists only if `new` detected AVX-512F, VAES, AES-NI and BMI2.
        unsafe {
            encrypt_vaes512(&self.round_keys, blocks)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = blocks;
            unreachable!("Vaes512::new returns None off x86_64")
        }
    }
}

impl Vaes512 {
    /// The Crypto-PAn one-time pads of several addresses, fused: for address `a` (its 16 wire
    /// bytes read as a native `u128`, see `CryptoPan::build_blocks`) and j in 0..per, block j is
    /// `(a & masks[j]) | pads[j]`; bit `per - 1 - j` of `otps[a]` is the most significant bit of
    /// byte 0 of its encryption. Blocks are built, encrypted and reduced to bits in registers.
    ///
    /// `per` is a multiple of 16 and at most 128; `masks` and `pads` hold at least `per`
    /// entries; `otps` is as long as `addrs`; `addrs.len() * per` is at most [`MAX_OTP_BITS`].
    /// Otherwise this panics.
    pub fn cryptopan_otps(
        &self,
        addrs: &[u128],
        masks: &[u128],
        pads: &[u128],
        per: usize,
        otps: &mut [u128],
    ) {
        assert!(per.is_multiple_of(16) && per > 0 && per <= 128);
        assert!(masks.len() >= per && pads.len() >= per && otps.len() == addrs.len());
        assert!(addrs.len() * per <= MAX_OTP_BITS);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `Vaes512` exists only if `new` detected AVX-512F, VAES, AES-NI and BMI2; the
        // lengths the kernel relies on were asserted above.
        unsafe {
            otps_vaes512(&self.round_keys, addrs, masks, pads, per, otps)
        }
    }
}

/// Most one-time-pad bits one call of the fused kernel produces (`addrs.len() * per`).
pub const MAX_OTP_BITS: usize = 1024;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,vaes,aes,bmi2,sse2")]
unsafe fn otps_vaes512(
    rk: &[[u8; 16]; 11],
    addrs: &[u128],
    masks: &[u128],
    pads: &[u128],
    per: usize,
    otps: &mut [u128],
) {
    const LANES: usize = 8;
    let mut k512 = [_mm512_setzero_si512(); 11];
    for i in 0..11 {
        // SAFETY: `rk[i]` is 16 readable bytes; unaligned loads are allowed.
        k512[i] = _mm512_broadcast_i32x4(unsafe { _mm_loadu_si128(rk[i].as_ptr().cast()) });
    }
    // 0x80 in dword 0 of each 128-bit lane: selects bit 7 of byte 0 of each block.
    let sel = _mm512_set_epi32(0, 0, 0, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0x80);
    let quads = per / 4;
    let total = addrs.len() * quads;
    // The bits of all blocks in stream order, least significant first: 32 blocks per word.
    let mut stream = [0u32; MAX_OTP_BITS / 32];
    let (mut ai, mut q) = (0usize, 0usize);
    for (g, word) in stream.iter_mut().enumerate().take(total.div_ceil(LANES)) {
        let n = (total - g * LANES).min(LANES);
        let mut x = [_mm512_setzero_si512(); LANES];
        for r in x.iter_mut().take(n) {
            // SAFETY: ai < addrs.len() because this quad's index is below `total`; a u128 is
            // 16 readable bytes.
            let a = unsafe { _mm_loadu_si128((&addrs[ai] as *const u128).cast()) };
            // SAFETY: 4q + 4 <= per <= masks.len(), pads.len() (asserted by the caller): the
            // 64 bytes from entry 4q are inside each slice.
            let (m, p) = unsafe {
                (
                    _mm512_loadu_si512(masks.as_ptr().add(4 * q).cast()),
                    _mm512_loadu_si512(pads.as_ptr().add(4 * q).cast()),
                )
            };
            let blocks = _mm512_ternarylogic_epi64::<0xea>(_mm512_broadcast_i32x4(a), m, p);
            *r = _mm512_xor_si512(blocks, k512[0]);
            q += 1;
            if q == quads {
                q = 0;
                ai += 1;
            }
        }
        for key in &k512[1..10] {
            for r in x.iter_mut() {
                *r = _mm512_aesenc_epi128(*r, *key);
            }
        }
        let mut w = 0u32;
        for (l, r) in x.iter().enumerate().take(n) {
            let out = _mm512_aesenclast_epi128(*r, k512[10]);
            let m = u32::from(_mm512_test_epi32_mask(out, sel));
            w |= _pext_u32(m, 0x1111) << (4 * l);
        }
        *word = w;
    }
    // Address i's bits start at bit i * per of the stream, a multiple of 16.
    let halves = per / 16;
    for (i, o) in otps.iter_mut().enumerate() {
        let mut acc = 0u128;
        for t in 0..halves {
            let h = i * halves + t;
            let half = (stream[h / 2] >> (16 * (h % 2))) & 0xffff;
            acc |= u128::from(half) << (16 * t);
        }
        *o = acc.reverse_bits() >> (128 - per);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "aes,sse2")]
unsafe fn expand_key(key: &[u8; 16]) -> [[u8; 16]; 11] {
    let mut out = [[0u8; 16]; 11];
    // SAFETY: `key` is 16 readable bytes; unaligned loads are allowed.
    let mut k = unsafe { _mm_loadu_si128(key.as_ptr().cast()) };
    // SAFETY: `out[0]` is 16 writable bytes; unaligned stores are allowed.
    unsafe { _mm_storeu_si128(out[0].as_mut_ptr().cast(), k) };
    macro_rules! round {
        ($i:expr, $rcon:expr) => {
            let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(k));
            k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
            k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
            k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
            k = _mm_xor_si128(k, t);
            // SAFETY: `out[$i]` is 16 writable bytes; unaligned stores are allowed.
            unsafe { _mm_storeu_si128(out[$i].as_mut_ptr().cast(), k) };
        };
    }
    round!(1, 0x01);
    round!(2, 0x02);
    round!(3, 0x04);
    round!(4, 0x08);
    round!(5, 0x10);
    round!(6, 0x20);
    round!(7, 0x40);
    round!(8, 0x80);
    round!(9, 0x1b);
    round!(10, 0x36);
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,vaes,aes,sse2")]
unsafe fn encrypt_vaes512(rk: &[[u8; 16]; 11], blocks: &mut [[u8; 16]]) {
    let mut k128 = [_mm_setzero_si128(); 11];
    let mut k512 = [_mm512_setzero_si512(); 11];
    for i in 0..11 {
        // SAFETY: `rk[i]` is 16 readable bytes; unaligned loads are allowed.
        k128[i] = unsafe { _mm_loadu_si128(rk[i].as_ptr().cast()) };
        k512[i] = _mm512_broadcast_i32x4(k128[i]);
    }
    const LANES: usize = 8;
    let mut wide = blocks.chunks_exact_mut(4 * LANES);
    for chunk in &mut wide {
        let p: *mut __m512i = chunk.as_mut_ptr().cast();
        let mut x = [_mm512_setzero_si512(); LANES];
        for (j, v) in x.iter_mut().enumerate() {
            // SAFETY: the chunk is 32 blocks = 8 x 64 bytes; `p.add(j)` for j < 8 is in it.
            *v = _mm512_xor_si512(unsafe { _mm512_loadu_si512(p.add(j)) }, k512[0]);
        }
        for key in &k512[1..10] {
            for v in x.iter_mut() {
                *v = _mm512_aesenc_epi128(*v, *key);
            }
        }
        for (j, v) in x.iter().enumerate() {
            let out = _mm512_aesenclast_epi128(*v, k512[10]);
            // SAFETY: as for the load: 64 bytes at `p.add(j)` are inside the chunk.
            unsafe { _mm512_storeu_si512(p.add(j), out) };
        }
    }
    let mut quads = wide.into_remainder().chunks_exact_mut(4);
    for chunk in &mut quads {
        let p: *mut __m512i = chunk.as_mut_ptr().cast();
        // SAFETY: the chunk is 4 blocks = 64 bytes.
        let mut v = _mm512_xor_si512(unsafe { _mm512_loadu_si512(p) }, k512[0]);
        for key in &k512[1..10] {
            v = _mm512_aesenc_epi128(v, *key);
        }
        v = _mm512_aesenclast_epi128(v, k512[10]);
        // SAFETY: the chunk is 4 blocks = 64 bytes.
        unsafe { _mm512_storeu_si512(p, v) };
    }
    for b in quads.into_remainder() {
        let p: *mut __m128i = b.as_mut_ptr().cast();
        // SAFETY: a block is 16 bytes.
        let mut v = _mm_xor_si128(unsafe { _mm_loadu_si128(p) }, k128[0]);
        for key in &k128[1..10] {
            v = _mm_aesenc_si128(v, *key);
        }
        v = _mm_aesenclast_si128(v, k128[10]);
        // SAFETY: a block is 16 bytes.
        unsafe { _mm_storeu_si128(p, v) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};

    #[test]
    fn equals_the_aes_crate() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 24) as u8
        };
        for round in 0..20 {
            let key: [u8; 16] = std::array::from_fn(|_| next());
            let Some(k) = Vaes512::new(&key) else {
                // Not this CPU: the crate path is used, nothing to compare.
                eprintln!("this CPU lacks AVX-512F/VAES/BMI2: the VAES-512 kernel is not tested");
                return;
            };
            let reference = aes::Aes128Enc::new(&Array::from(key));
            // Every remainder shape: multiples of 32, of 4, and single blocks.
            let n = [0usize, 1, 3, 4, 5, 31, 32, 33, 36, 64, 100, 513][round % 12];
            let mut a: Vec<[u8; 16]> = (0..n).map(|_| std::array::from_fn(|_| next())).collect();
            let mut b = a.clone();
            k.encrypt_blocks(&mut a);
            reference.encrypt_blocks(Array::cast_slice_from_core_mut(&mut b));
            assert_eq!(a, b, "n={n}");
        }
    }

    #[test]
    fn fips197_appendix_c1() {
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let Some(k) = Vaes512::new(&key) else {
            eprintln!("this CPU lacks AVX-512F/VAES/BMI2: the VAES-512 kernel is not tested");
            return;
        };
        let mut b = [std::array::from_fn(|i| (i as u8) * 0x11)];
        k.encrypt_blocks(&mut b);
        assert_eq!(
            b[0],
            [
                0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
                0xc5, 0x5a
            ]
        );
    }
}
