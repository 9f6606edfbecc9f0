//! Policies: the text form, and every address class under every policy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anonymise::policy::{Base, GROUPS};
use anonymise::{Action, AddressMapper, Anonymiser, Class, Key, Policy};

fn key() -> Key {
    Key::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5a))
}

/// Two sample addresses of every class.
fn samples(class: Class) -> [IpAddr; 2] {
    let v4 = |s: &str| IpAddr::V4(s.parse::<Ipv4Addr>().unwrap());
    let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
    match class {
        Class::V4Unspecified => [v4("0.0.0.0"), v4("0.0.0.0")],
        Class::V4Broadcast => [v4("255.255.255.255"), v4("255.255.255.255")],
        Class::V4Multicast => [v4("224.0.0.251"), v4("239.255.255.250")],
        Class::V4Loopback => [v4("127.0.0.1"), v4("127.8.9.10")],
        Class::V4Private => [v4("10.1.2.3"), v4("192.168.1.20")],
        Class::V4LinkLocal => [v4("169.254.3.4"), v4("169.254.200.1")],
        Class::V4Unicast => [v4("8.8.8.8"), v4("172.32.1.1")],
        Class::V6Unspecified => [v6("::"), v6("::")],
        Class::V6Loopback => [v6("::1"), v6("::1")],
        Class::V6SolicitedNode => [v6("ff02::1:ff00:1"), v6("ff02::1:ffaa:bbcc")],
        Class::V6Multicast => [v6("ff02::1"), v6("ff05::1:3")],
        Class::V6LinkLocal => [v6("fe80::1"), v6("febf::21e:c9ff:feaa:bbbb")],
        Class::V6UniqueLocal => [v6("fc00::1"), v6("fd12:3456:789a::1")],
        Class::V6Unicast => [v6("2001:db8::1"), v6("::ffff:192.0.2.1")],
    }
}

#[test]
fn classification_of_samples_and_edges() {
    for c in Class::ALL {
        for a in samples(c) {
            let got = match a {
                IpAddr::V4(v) => Class::of_ipv4(v.into()),
                IpAddr::V6(v) => Class::of_ipv6(v.into()),
            };
            assert_eq!(got, c, "{a}");
        }
    }
    let c4 = |s: &str| Class::of_ipv4(s.parse::<Ipv4Addr>().unwrap().into());
    let c6 = |s: &str| Class::of_ipv6(s.parse::<Ipv6Addr>().unwrap().into());
    assert_eq!(c4("172.15.255.255"), Class::V4Unicast);
    assert_eq!(c4("172.16.0.0"), Class::V4Private);
    assert_eq!(c4("172.31.255.255"), Class::V4Private);
    assert_eq!(c4("223.255.255.255"), Class::V4Unicast);
    assert_eq!(c4("240.0.0.1"), Class::V4Unicast);
    assert_eq!(c4("0.0.0.1"), Class::V4Unicast);
    assert_eq!(c6("ff02::1:fe00:1"), Class::V6Multicast);
    assert_eq!(c6("ff02::2:ff00:1"), Class::V6Multicast);
    assert_eq!(c6("fec0::1"), Class::V6Unicast);
    assert_eq!(c6("fe7f::1"), Class::V6Unicast);
    assert_eq!(c6("fbff::1"), Class::V6Unicast);
    assert_eq!(c6("fe00::1"), Class::V6Unicast);
    assert_eq!(c6("::2"), Class::V6Unicast);
}

fn all_policies() -> Vec<Policy> {
    [
        "cryptopan",
        "default",
        "truncate:21,48",
        "truncate:0,0",
        "truncate:32,128",
        "scramble",
        "ipcrypt-pfx",
        "default+private=keep",
        "default+loopback=zero+link-local=truncate:16,64",
        "scramble+non-identifying=scramble",
        "ipcrypt-pfx+v6-unique-local=cryptopan+v4-private=scramble",
        "cryptopan+all=keep+v4-unicast=cryptopan",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

fn to_u128(a: IpAddr) -> (u128, u32) {
    match a {
        IpAddr::V4(v) => (u32::from(v) as u128, 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

fn common_prefix(a: u128, b: u128, bits: u32) -> u32 {
    ((a ^ b) << (128 - bits)).leading_zeros().min(bits)
}

/// What each action must do, checked independently of how it is computed.
#[test]
fn every_class_under_every_policy() {
    let k = key();
    let cp = anonymise::cryptopan::CryptoPan::new(&k, false);
    for policy in all_policies() {
        let mut a = Anonymiser::new(&k, &policy, 256);
        for c in Class::ALL {
            let action = policy.action(c);
            for orig in samples(c) {
                let out = a.map_ip(orig);
                assert_eq!(out.is_ipv4(), orig.is_ipv4(), "{policy} {orig}");
                let (o, bits) = to_u128(orig);
                let (m, _) = to_u128(out);
                match action {
                    Action::Keep => assert_eq!(out, orig, "{policy} {c:?}"),
                    Action::Truncate(n) => {
                        let n = u32::from(n);
                        assert!(n < bits);
                        assert!(common_prefix(o, m, bits) >= n, "{policy} {orig}");
                        let low = if n == 0 { m } else { m << (128 - bits + n) };
                        assert_eq!(low, 0, "{policy} {orig} -> {out}");
                    }
                    Action::CryptoPan => {
                        let want = match orig {
                            IpAddr::V4(v) => cp.reference_ipv4(v.into()) as u128,
                            IpAddr::V6(v) => cp.reference_ipv6(v.into()),
                        };
                        assert_eq!(m, want, "{policy} {orig}");
                    }
                    Action::Scramble | Action::IpcryptPfx => {
                        assert_ne!(out, orig, "{policy} {orig}");
                    }
                }
                // Deterministic, cache or not.
                assert_eq!(a.map_ip(orig), out);
                let mut fresh = Anonymiser::new(&k, &policy, 0);
                assert_eq!(fresh.map_ip(orig), out, "{policy} {orig}");
            }
        }
    }
}

#[test]
fn the_default_policy_keeps_exactly_the_classes_that_identify_no_user() {
    let p = Policy::default();
    assert_eq!(p.to_string(), "default");
    let kept: Vec<Class> = Class::ALL
        .into_iter()
        .filter(|&c| p.action(c) == Action::Keep)
        .collect();
    assert_eq!(
        kept,
        [
            Class::V4Unspecified,
            Class::V4Broadcast,
            Class::V4Multicast,
            Class::V6Unspecified,
            Class::V6Multicast
        ]
    );
    for c in [
        Class::V6LinkLocal,
        Class::V6SolicitedNode,
        Class::V6Loopback,
        Class::V6UniqueLocal,
        Class::V4Private,
    ] {
        assert_eq!(p.action(c), Action::CryptoPan, "{c:?}");
    }
    let cp = Policy::cryptopan();
    assert!(Class::ALL
        .iter()
        .all(|&c| cp.action(c) == Action::CryptoPan));
    let mut a = Anonymiser::new(&key(), &cp, 0);
    assert_ne!(
        a.map_ipv4([0; 4]),
        [0; 4],
        "0.0.0.0 is mapped like any other address"
    );
}

#[test]
fn internet2_truncation() {
    let p: Policy = "truncate:21,48".parse().unwrap();
    assert_eq!(p.base(), Base::Truncate(21, 48));
    let mut a = Anonymiser::new(&key(), &p, 0);
    assert_eq!(a.map_ipv4([192, 0, 2, 255]), [192, 0, 0, 0]);
    assert_eq!(a.map_ipv4([198, 51, 100, 7]), [198, 51, 96, 0]);
    assert_eq!(a.map_ipv4([224, 0, 0, 251]), [224, 0, 0, 251]);
    let v6: Ipv6Addr = "2001:db8:abcd:1234::1".parse().unwrap();
    let want: Ipv6Addr = "2001:db8:abcd::".parse().unwrap();
    assert_eq!(a.map_ipv6(v6.octets()), want.octets());
    let mc: Ipv6Addr = "ff02::fb".parse().unwrap();
    assert_eq!(a.map_ipv6(mc.octets()), mc.octets());
}

#[test]
fn text_form_round_trips_and_is_canonical() {
    for p in all_policies() {
        let text = p.to_string();
        let back: Policy = text.parse().unwrap();
        assert_eq!(back, p, "{text}");
        assert_eq!(back.to_string(), text);
    }
    let p: Policy = " default + private = keep ".parse().unwrap();
    assert_eq!(
        p.to_string(),
        "default+v4-private=keep+v6-unique-local=keep"
    );
    // An override equal to the base disappears.
    let p: Policy = "default+v4-unicast=cryptopan".parse().unwrap();
    assert_eq!(p.to_string(), "default");
    // Later overrides win.
    let p: Policy = "default+private=keep+v4-private=zero".parse().unwrap();
    assert_eq!(
        p.to_string(),
        "default+v4-private=zero+v6-unique-local=keep"
    );
    let p: Policy = "cryptopan+v6=truncate:64".parse().unwrap();
    assert_eq!(p.action(Class::V6Unicast), Action::Truncate(64));
    assert_eq!(p.action(Class::V4Unicast), Action::CryptoPan);
    let p: Policy = "default+v4-unicast=truncate:32".parse().unwrap();
    assert_eq!(p.action(Class::V4Unicast), Action::Keep);
    assert_eq!(p.to_string(), "default+v4-unicast=keep");
    for (name, _) in GROUPS {
        let p: Policy = format!("default+{name}=scramble").parse().unwrap();
        assert_eq!(p.to_string().parse::<Policy>().unwrap(), p);
    }
}

#[test]
fn bad_policies_are_refused_with_a_reason() {
    for (text, needle) in [
        ("", "empty"),
        ("nonsense", "unknown base"),
        ("truncate:24", "two lengths"),
        ("truncate:33,48", "more than the 32"),
        ("truncate:24,129", "more than the 128"),
        ("truncate:a,48", "not a number"),
        ("default+private", "CLASS=ACTION"),
        ("default+v7=keep", "unknown class"),
        ("default+private=shred", "unknown action"),
        ("default+all=truncate:64", "longer than an IPv4"),
        ("default+v4-unicast=truncate:40,64", "more than the 32"),
    ] {
        let e = text.parse::<Policy>().unwrap_err().to_string();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn explain_lists_every_class() {
    for p in all_policies() {
        let e = p.explain();
        assert!(e.starts_with(&format!("policy {p}\n")));
        for c in Class::ALL {
            assert!(e.contains(c.name()), "{e}");
        }
        assert_eq!(e.lines().count(), 1 + Class::ALL.len());
    }
    let e: Policy = "truncate:21,48".parse().unwrap();
    assert!(e.explain().contains("first 21 bits kept, last 11 zeroed"));
}

#[test]
fn mac_mapping_keeps_group_addresses_and_flag_bits_and_inverts() {
    let k = key();
    let mut a = Anonymiser::new(&k, &Policy::default(), 0);
    assert_eq!(a.map_mac([0xff; 6]), [0xff; 6]);
    assert_eq!(
        a.map_mac([0x01, 0, 0x5e, 0, 0, 0xfb]),
        [0x01, 0, 0x5e, 0, 0, 0xfb]
    );
    let m = anonymise::ipcrypt::MacMapper::new(&k.derive_subkey::<16>(anonymise::key::info::MAC));
    let mut seen = std::collections::HashSet::new();
    for i in 0..2000u32 {
        let b = i.to_be_bytes();
        let mac = [
            (0x02 * (i as u8 & 1)) | (b[0] & 0xfc),
            0x1e,
            0xc9,
            b[1],
            b[2],
            b[3],
        ];
        let out = a.map_mac(mac);
        assert_eq!(out[0] & 3, mac[0] & 3);
        assert_ne!(out, mac);
        assert_eq!(m.unmap(out), mac);
        assert!(seen.insert(out));
    }
}
