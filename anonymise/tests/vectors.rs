//! Every Crypto-PAn and ipcrypt vector file, through the reference path, the batch path and
//! the policy-level anonymiser.

use std::net::IpAddr;

use anonymise::cryptopan::{CryptoPan, Scratch};
use anonymise::ipcrypt::{Deterministic, Pfx};
use anonymise::{AddressMapper, Anonymiser, Key, Options, Policy, Prepared};

const REFERENCE_KEY: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";
const LIBANON_KEY: &str = "d1c056a983786a38ca76a05cda240c7b86d7713693544000a0e6c4dd5b3dabdd";

fn read(rel: &str) -> Vec<Vec<String>> {
    let path = format!("{}/../testdata/{rel}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(|f| f.trim().to_string()).collect())
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Checks (original, expected) pairs under one key with every path.
fn check_pairs(key: &Key, pairs: &[(IpAddr, IpAddr)]) -> usize {
    let plain = CryptoPan::with_kernel(key, false, false);
    let tabled = CryptoPan::new(key, true);
    let untabled_kernel = CryptoPan::new(key, false);
    let mut scratch = Scratch::default();
    let policy = Policy::cryptopan();
    let mut cached = Anonymiser::new(key, &policy, 1 << 10);
    let mut uncached = Anonymiser::from_prepared(
        Prepared::with_options(
            key,
            &policy,
            Options {
                table: false,
                kernel: false,
            },
        ),
        0,
    );
    let mut n = 0;
    for &(orig, want) in pairs {
        match (orig, want) {
            (IpAddr::V4(o), IpAddr::V4(w)) => {
                let o = u32::from(o);
                let w = u32::from(w);
                assert_eq!(plain.reference_ipv4(o), w, "reference {orig}");
                for cp in [&plain, &tabled, &untabled_kernel] {
                    let mut v = [o];
                    cp.ipv4_batch(&mut v, &mut scratch);
                    assert_eq!(v[0], w, "batch {orig} table={}", cp.has_table());
                }
                for a in [&mut cached, &mut uncached] {
                    assert_eq!(a.map_ipv4(o.to_be_bytes()), w.to_be_bytes(), "{orig}");
                    assert_eq!(a.map_ipv4(o.to_be_bytes()), w.to_be_bytes(), "{orig} again");
                }
            }
            (IpAddr::V6(o), IpAddr::V6(w)) => {
                let o = u128::from(o);
                let w = u128::from(w);
                assert_eq!(plain.reference_ipv6(o), w, "reference {orig}");
                for cp in [&plain, &tabled, &untabled_kernel] {
                    let mut v = [o];
                    cp.ipv6_batch(&mut v, &mut scratch);
                    assert_eq!(v[0], w, "batch {orig} table={}", cp.has_table());
                }
                for a in [&mut cached, &mut uncached] {
                    assert_eq!(a.map_ipv6(o.to_be_bytes()), w.to_be_bytes(), "{orig}");
                    assert_eq!(a.map_ipv6(o.to_be_bytes()), w.to_be_bytes(), "{orig} again");
                }
            }
            _ => panic!("family changed in vector {orig} -> {want}"),
        }
        n += 1;
    }
    // The whole file in one batch too (mixed lengths, several chunks).
    let mut v4: Vec<[u8; 4]> = Vec::new();
    let mut w4 = Vec::new();
    let mut v6: Vec<[u8; 16]> = Vec::new();
    let mut w6 = Vec::new();
    for &(o, w) in pairs {
        match (o, w) {
            (IpAddr::V4(o), IpAddr::V4(w)) => {
                v4.push(o.octets());
                w4.push(w.octets());
            }
            (IpAddr::V6(o), IpAddr::V6(w)) => {
                v6.push(o.octets());
                w6.push(w.octets());
            }
            _ => unreachable!(),
        }
    }
    let mut fresh = Anonymiser::new(key, &policy, 0);
    fresh.map_ipv4_batch(&mut v4);
    fresh.map_ipv6_batch(&mut v6);
    assert_eq!(v4, w4);
    assert_eq!(v6, w6);
    n
}

fn single_key_file(rel: &str, key_hex: &str, expect_lines: usize) {
    let key = Key::from_hex(key_hex).unwrap();
    let pairs: Vec<_> = read(rel).iter().map(|f| (ip(&f[0]), ip(&f[1]))).collect();
    assert_eq!(check_pairs(&key, &pairs), expect_lines, "{rel}");
}

#[test]
fn ipv4_reference() {
    single_key_file("cryptopan/ipv4-reference.tsv", REFERENCE_KEY, 70);
}

#[test]
fn ipv4_crosschecked() {
    single_key_file("cryptopan/ipv4-crosschecked.tsv", REFERENCE_KEY, 1049);
}

#[test]
fn ipv6_reference() {
    single_key_file("cryptopan/ipv6-reference.tsv", REFERENCE_KEY, 5);
}

#[test]
fn ipv6_crosschecked() {
    single_key_file("cryptopan/ipv6-crosschecked.tsv", REFERENCE_KEY, 280);
}

#[test]
fn ipv6_libanon() {
    single_key_file("cryptopan/ipv6-libanon.tsv", LIBANON_KEY, 22);
}

#[test]
fn multikey() {
    let rows = read("cryptopan/multikey.tsv");
    assert_eq!(rows.len(), 144);
    let mut keys: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 8);
    let mut total = 0;
    for k in &keys {
        let key = Key::from_hex(k).unwrap();
        let pairs: Vec<_> = rows
            .iter()
            .filter(|r| &r[0] == k)
            .map(|r| (ip(&r[1]), ip(&r[2])))
            .collect();
        total += check_pairs(&key, &pairs);
    }
    assert_eq!(total, 144);
}

fn to16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

#[test]
fn ipcrypt_deterministic_primitive() {
    let rows = read("ipcrypt/ipcrypt-deterministic.tsv");
    assert_eq!(rows.len(), 5);
    for r in &rows {
        let mut k = [0u8; 16];
        hex::decode_to_slice(&r[0], &mut k).unwrap();
        let d = Deterministic::new(&k);
        let got = d.encrypt(to16(ip(&r[1])));
        assert_eq!(got, to16(ip(&r[2])), "{}", r[1]);
        let mut scratch = Scratch::default();
        let mut v = [u128::from_be_bytes(to16(ip(&r[1])))];
        d.encrypt_batch(&mut v, &mut scratch);
        assert_eq!(v[0].to_be_bytes(), got);
    }
}

#[test]
fn ipcrypt_pfx() {
    let rows = read("ipcrypt/ipcrypt-pfx.tsv");
    assert_eq!(rows.len(), 16);
    let mut scratch = Scratch::default();
    for r in &rows {
        let mut k = [0u8; 32];
        hex::decode_to_slice(&r[0], &mut k).unwrap();
        assert!(!Pfx::key_is_weak(&k));
        let p = Pfx::new(&k);
        let orig = ip(&r[1]);
        let want = ip(&r[2]);
        assert_eq!(orig.is_ipv4(), want.is_ipv4(), "family kept: {}", r[1]);
        let o = u128::from_be_bytes(to16(orig));
        let w = u128::from_be_bytes(to16(want));
        assert_eq!(p.encrypt_reference(o), w, "reference {orig}");
        let mut v = [o];
        p.encrypt_batch(&mut v, &mut scratch);
        assert_eq!(v[0], w, "batch {orig}");
        if let (IpAddr::V4(o4), IpAddr::V4(w4)) = (orig, want) {
            let mut v = [u32::from(o4)];
            p.encrypt_ipv4_batch(&mut v, &mut scratch);
            assert_eq!(v[0], u32::from(w4));
        }
    }
}
