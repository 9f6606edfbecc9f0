//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are folded 16-bit one's complement sums of big-endian words; a region of odd length is
//! padded with a zero byte. A *delta* is the one's complement difference between the sum of a
//! region after a change and before it; [`adjust`] applies a delta to a checksum field with
//! RFC 1624 equation 3, `HC' = ~(~HC + ~m + m')`, so that a checksum that was right stays right
//! (and a checksum that was wrong stays wrong by the same amount).
//!
//! Nothing here panics: every function works on whatever slice it is given.

/// The one's complement sum of `data` as big-endian 16-bit words (odd tail padded with zero),
/// folded to 16 bits.
///
/// Read 32 bits at a time: a big-endian 32-bit word `hi << 16 | lo` is `hi + lo` modulo 0xFFFF
/// (since 2^16 = 1), and end-around folding keeps that residue, so the result is the same
/// number as summing 16-bit words: 0 only for all-zero data, otherwise the representative in
/// 1..=0xFFFF.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        acc += u64::from(u32::from_be_bytes([*a, *b, *c, *d]));
        rest = tail;
    }
    if let [a, b, tail @ ..] = rest {
        acc += u64::from(u16::from_be_bytes([*a, *b]));
        rest = tail;
    }
    if let [last] = rest {
        acc += u64::from(*last) << 8;
    }
    fold64(acc)
}

/// Folds a sum to 16 bits with end-around carries (0 stays 0, nothing else becomes 0).
#[inline]
fn fold64(acc: u64) -> u16 {
    // Each step keeps the value modulo 0xFFFF and never turns a non-zero value into 0.
    let a = (acc & 0xffff_ffff) + (acc >> 32); // < 2^33
    let a = (a & 0xffff_ffff) + (a >> 32); // < 2^32
    let a = (a & 0xffff) + (a >> 16); // < 2^17
    let a = (a & 0xffff) + (a >> 16); // <= 0xffff
    a as u16
}

/// One's complement addition of two folded sums or deltas.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    // At most 0x1FFFE: one end-around carry brings it to 16 bits.
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The delta that turns a region summing to `before` into one summing to `after`.
#[inline]
pub fn delta(before: u16, after: u16) -> u16 {
    add(after, !before)
}

/// The delta of replacing the bytes `old` by `new` (same length, same alignment).
#[inline]
pub fn delta_bytes(old: &[u8], new: &[u8]) -> u16 {
    delta(sum(old), sum(new))
}

/// [`sum`] of a fixed-length region (an IPv4 header without options), unrolled.
#[inline]
pub fn sum_array<const N: usize>(data: &[u8; N]) -> u16 {
    let mut acc: u64 = 0;
    let mut i = 0;
    while i + 4 <= N {
        acc += u64::from(u32::from_be_bytes([
            data[i],
            data[i + 1],
            data[i + 2],
            data[i + 3],
        ]));
        i += 4;
    }
    acc += u64::from(sum(&data[i..]));
    fold64(acc)
}

/// [`delta_bytes`] of two 4-byte regions (an IPv4 address), without slices.
#[inline]
pub fn delta4(old: [u8; 4], new: [u8; 4]) -> u16 {
    delta(sum4(old), sum4(new))
}

/// [`sum`] of 4 bytes.
#[inline]
fn sum4(b: [u8; 4]) -> u16 {
    let w = u32::from_be_bytes(b);
    let a = (w >> 16) + (w & 0xffff); // <= 0x1FFFE
    ((a & 0xffff) + (a >> 16)) as u16
}

/// Applies `delta` to the checksum field value `cksum` (RFC 1624 equation 3).
#[inline]
pub fn adjust(cksum: u16, delta: u16) -> u16 {
    !add(!cksum, delta)
}

/// The checksum of `data` (whose checksum field the caller has zeroed), plus an extra partial
/// sum such as a pseudo-header.
#[inline]
pub fn compute(data: &[u8], extra: u16) -> u16 {
    !add(sum(data), extra)
}

/// True when `data`, including its checksum field, plus `extra`, verifies (sums to 0xFFFF).
#[inline]
pub fn verifies(data: &[u8], extra: u16) -> bool {
    add(sum(data), extra) == 0xffff
}

/// Two checksum values are the same number in one's complement (0x0000 and 0xFFFF are both
/// zero).
pub fn same(a: u16, b: u16) -> bool {
    a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

/// The partial sum of an IPv4 pseudo-header (RFC 768/793).
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u32) -> u16 {
    let mut s = add(sum(&src), sum(&dst));
    s = add(s, u16::from(proto));
    add(s, sum(&len.to_be_bytes()))
}

/// The partial sum of an IPv6 pseudo-header (RFC 8200 section 8.1).
pub fn pseudo_v6(src: [u8; 16], dst: [u8; 16], next: u8, len: u32) -> u16 {
    let mut s = add(sum(&src), sum(&dst));
    s = add(s, sum(&len.to_be_bytes()));
    add(s, u16::from(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    /// RFC 1071's definition, word by word with a wide accumulator, as an independent check.
    fn sum_by_words(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        for c in data.chunks(2) {
            acc += u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0));
        }
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn sum_matches_word_by_word(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            proptest::prop_assert_eq!(sum(&data), sum_by_words(&data));
        }

        #[test]
        fn sum_array_matches_sum(a: [u8; 20], b: [u8; 7]) {
            proptest::prop_assert_eq!(sum_array(&a), sum(&a));
            proptest::prop_assert_eq!(sum_array(&b), sum(&b));
        }

        #[test]
        fn delta4_matches_delta_bytes(old: [u8; 4], new: [u8; 4]) {
            proptest::prop_assert_eq!(delta4(old, new), delta_bytes(&old, &new));
            proptest::prop_assert_eq!(sum4(old), sum_by_words(&old));
        }

        #[test]
        fn add_matches_wide_fold(a: u16, b: u16) {
            let mut s = u32::from(a) + u32::from(b);
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            proptest::prop_assert_eq!(add(a, b), s as u16);
        }
    }

    #[test]
    fn sums_of_all_ones_and_zeros() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0; 37]), 0);
        // 0xFFFF words sum to 0xFFFF (one's complement -0), never to 0.
        for n in 1..40 {
            assert_eq!(sum(&vec![0xff; 2 * n]), 0xffff, "{n} words");
        }
        assert_eq!(add(0xffff, 0xffff), 0xffff);
        assert_eq!(add(0, 0), 0);
        assert_eq!(add(0xffff, 1), 1);
    }

    #[test]
    fn incremental_equals_full() {
        let mut data = [
            0x45u8, 0, 0, 28, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let ck = compute(&data, 0);
        data[10..12].copy_from_slice(&ck.to_be_bytes());
        assert!(verifies(&data, 0));
        let before = sum(&data[12..20]);
        data[12..16].copy_from_slice(&[192, 0, 2, 77]);
        data[16..20].copy_from_slice(&[198, 51, 100, 3]);
        let d = delta(before, sum(&data[12..20]));
        let new = adjust(ck, d);
        data[10..12].copy_from_slice(&new.to_be_bytes());
        assert!(verifies(&data, 0));
        data[10..12].copy_from_slice(&[0, 0]);
        assert!(same(new, compute(&data, 0)));
    }
}
