//! Prefix preservation (property tests) and the fast paths against the reference path.

use anonymise::cryptopan::{CryptoPan, Scratch};
use anonymise::ipcrypt::{Feistel32, Pfx};
use anonymise::{Anonymiser, Key, Options, Policy, Prepared};
use proptest::prelude::*;

fn key(seed: u8) -> Key {
    Key::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(91) ^ seed))
}

fn common4(a: u32, b: u32) -> u32 {
    (a ^ b).leading_zeros()
}

fn common6(a: u128, b: u128) -> u32 {
    (a ^ b).leading_zeros()
}

/// A small deterministic generator (splitmix64) for large samples.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cryptopan_ipv4_keeps_the_common_prefix(a: u32, b: u32, bits in 0u32..=32, seed: u8) {
        // Make the pair share at least `bits` bits half of the time.
        let low = u32::MAX.checked_shr(bits).unwrap_or(0);
        let b = (a & !low) | (b & low);
        let cp = CryptoPan::new(&key(seed), false);
        let (x, y) = (cp.reference_ipv4(a), cp.reference_ipv4(b));
        prop_assert_eq!(common4(x, y), common4(a, b));
    }

    #[test]
    fn cryptopan_ipv6_keeps_the_common_prefix(a: u128, b: u128, bits in 0u32..=128, seed: u8) {
        let low = u128::MAX.checked_shr(bits).unwrap_or(0);
        let b = (a & !low) | (b & low);
        let cp = CryptoPan::new(&key(seed), true);
        let mut v = [a, b];
        cp.ipv6_batch(&mut v, &mut Scratch::default());
        prop_assert_eq!(common6(v[0], v[1]), common6(a, b));
    }

    #[test]
    fn ipcrypt_pfx_keeps_the_common_prefix(a: u128, b: u128, bits in 0u32..=128) {
        let low = u128::MAX.checked_shr(bits).unwrap_or(0);
        let b = (a & !low) | (b & low);
        let k: [u8; 32] = std::array::from_fn(|i| i as u8);
        let p = Pfx::new(&k);
        prop_assert_eq!(common6(p.encrypt_reference(a), p.encrypt_reference(b)), common6(a, b));
    }

    #[test]
    fn feistel_inverts(a: u32, seed: u8) {
        let f = Feistel32::new(&std::array::from_fn(|i| i as u8 ^ seed));
        prop_assert_eq!(f.decrypt(f.encrypt(a)), a);
        prop_assert_eq!(f.encrypt(f.decrypt(a)), a);
    }

    #[test]
    fn policy_text_round_trips(s in "(cryptopan|default|scramble|ipcrypt-pfx|truncate:[0-9]{1,2},[0-9]{1,3})(\\+(all|v4|v6|private|loopback|unicast|v6-link-local|v4-multicast)=(keep|zero|scramble|cryptopan|ipcrypt-pfx|truncate:[0-9]{1,2}|truncate:[0-9]{1,2},[0-9]{1,3})){0,4}") {
        if let Ok(p) = s.parse::<Policy>() {
            let text = p.to_string();
            prop_assert_eq!(text.parse::<Policy>().unwrap(), p);
        }
    }
}

/// Batch path (table on and off), anonymiser (cache on and off, table on and off) against the
/// reference path over a large random sample, with repeats so the cache hits.
#[test]
fn fast_paths_equal_the_reference_ipv4() {
    let k = key(7);
    let reference = CryptoPan::new(&k, false);
    let mut rng = Rng(1);
    let n = 40_000;
    let mut addrs: Vec<u32> = (0..n).map(|_| rng.next() as u32).collect();
    // Repeats and clustered prefixes.
    for i in 0..n / 4 {
        let j = (rng.next() % n as u64) as usize;
        addrs[i] = addrs[j];
        addrs[i + n / 4] = (addrs[j] & 0xffff_ff00) | (rng.next() as u32 & 0xff);
    }
    let want: Vec<u32> = addrs.iter().map(|&a| reference.reference_ipv4(a)).collect();
    let mut scratch = Scratch::default();
    for (table, kernel) in [(false, false), (false, true), (true, false), (true, true)] {
        let cp = CryptoPan::with_kernel(&k, table, kernel);
        let mut v = addrs.clone();
        cp.ipv4_batch(&mut v, &mut scratch);
        assert!(v == want, "batch path, table={table} kernel={kernel}");
        for cache in [0, 1 << 12] {
            let prep = Prepared::with_options(&k, &Policy::cryptopan(), Options { table, kernel });
            let mut a = Anonymiser::from_prepared(prep, cache);
            let mut bytes: Vec<[u8; 4]> = addrs.iter().map(|a| a.to_be_bytes()).collect();
            // Uneven batch sizes.
            let mut rest = &mut bytes[..];
            let mut size = 1;
            while !rest.is_empty() {
                let take = size.min(rest.len());
                let (head, tail) = rest.split_at_mut(take);
                a.map_ipv4_batch(head);
                rest = tail;
                size = size * 3 % 1000 + 1;
            }
            let got: Vec<u32> = bytes.iter().map(|b| u32::from_be_bytes(*b)).collect();
            assert!(
                got == want,
                "anonymiser table={table} kernel={kernel} cache={cache}"
            );
        }
    }
}

#[test]
fn fast_paths_equal_the_reference_ipv6() {
    let k = key(9);
    let reference = CryptoPan::new(&k, false);
    let mut rng = Rng(2);
    let n = 3_000;
    let mut addrs: Vec<u128> = (0..n)
        .map(|_| (u128::from(rng.next()) << 64) | u128::from(rng.next()))
        .collect();
    for i in 0..n / 3 {
        let j = (rng.next() % n as u64) as usize;
        addrs[i] = addrs[j];
    }
    let want: Vec<u128> = addrs.iter().map(|&a| reference.reference_ipv6(a)).collect();
    let mut scratch = Scratch::default();
    for (table, kernel) in [(false, false), (false, true), (true, false), (true, true)] {
        let cp = CryptoPan::with_kernel(&k, table, kernel);
        let mut v = addrs.clone();
        cp.ipv6_batch(&mut v, &mut scratch);
        assert!(v == want, "batch path, table={table} kernel={kernel}");
        for cache in [0, 1 << 10] {
            let prep = Prepared::with_options(&k, &Policy::cryptopan(), Options { table, kernel });
            let mut a = Anonymiser::from_prepared(prep, cache);
            let mut bytes: Vec<[u8; 16]> = addrs.iter().map(|a| a.to_be_bytes()).collect();
            for chunk in bytes.chunks_mut(333) {
                a.map_ipv6_batch(chunk);
            }
            let got: Vec<u128> = bytes.iter().map(|b| u128::from_be_bytes(*b)).collect();
            assert!(
                got == want,
                "anonymiser table={table} kernel={kernel} cache={cache}"
            );
        }
    }
}

#[test]
fn scramble_and_pfx_batches_equal_one_at_a_time() {
    let k = key(3);
    let mut rng = Rng(3);
    let f = Feistel32::new(&k.derive_subkey::<16>(anonymise::key::info::SCRAMBLE_V4));
    let addrs: Vec<u32> = (0..5000).map(|_| rng.next() as u32).collect();
    let mut v = addrs.clone();
    f.encrypt_batch(&mut v, &mut Scratch::default());
    for (a, b) in addrs.iter().zip(&v) {
        assert_eq!(f.encrypt(*a), *b);
        assert_eq!(f.decrypt(*b), *a);
    }
    let mut sorted = v.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let mut orig = addrs.clone();
    orig.sort_unstable();
    orig.dedup();
    assert_eq!(sorted.len(), orig.len(), "a permutation has no collisions");

    let pk: [u8; 32] = *k.derive_subkey::<32>(anonymise::key::info::IPCRYPT_PFX);
    let p = Pfx::new(&pk);
    let wide: Vec<u128> = (0..300)
        .map(|i| {
            let x = (u128::from(rng.next()) << 64) | u128::from(rng.next());
            if i % 2 == 0 {
                0xffff_0000_0000 | (x & 0xffff_ffff)
            } else {
                x
            }
        })
        .collect();
    let mut v = wide.clone();
    p.encrypt_batch(&mut v, &mut Scratch::default());
    for (a, b) in wide.iter().zip(&v) {
        assert_eq!(p.encrypt_reference(*a), *b);
        if a >> 32 == 0xffff {
            assert_eq!(b >> 32, 0xffff, "IPv4 stays IPv4");
        }
    }
}

/// A capture shares one prepared state between threads and moves one anonymiser into each.
#[test]
fn prepared_state_is_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Prepared>();
    send::<Anonymiser>();
    let k = key(11);
    let prep = Prepared::new(&k, &Policy::default());
    let reference = CryptoPan::new(&k, false);
    let handles: Vec<_> = (0..2u32)
        .map(|t| {
            let prep = prep.clone();
            std::thread::spawn(move || {
                let mut a = Anonymiser::from_prepared(prep, 1 << 10);
                let mut v: Vec<[u8; 4]> = (0..1000u32)
                    .map(|i| (0x0b00_0000 | (t << 16) | i).to_be_bytes())
                    .collect();
                a.map_ipv4_batch(&mut v);
                v
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let v = h.join().unwrap();
        for (i, out) in v.iter().enumerate() {
            let orig = 0x0b00_0000 | ((t as u32) << 16) | i as u32;
            assert_eq!(u32::from_be_bytes(*out), reference.reference_ipv4(orig));
        }
    }
}
