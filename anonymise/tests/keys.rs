//! Key files: the accepted forms, every refused case, derivation, redaction.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anonymise::{Key, KeyError};

const HEX: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";

fn write(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn reference() -> Key {
    Key::from_hex(HEX).unwrap()
}

#[test]
fn accepts_hex_with_or_without_newline_and_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    for text in [
        HEX.to_string(),
        format!("{HEX}\n"),
        format!("{HEX}\r\n"),
        HEX.to_uppercase(),
    ] {
        let _ = std::fs::remove_file(&p);
        write(&p, text.as_bytes(), 0o600);
        assert_eq!(Key::load(&p).unwrap(), reference(), "{text:?}");
    }
    let raw = hex::decode(HEX).unwrap();
    std::fs::remove_file(&p).unwrap();
    write(&p, &raw, 0o400);
    assert_eq!(Key::load(&p).unwrap(), reference());
}

#[test]
fn refuses_missing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope");
    let e = Key::load(&p).unwrap_err();
    assert!(matches!(e, KeyError::Missing { .. }), "{e:?}");
    assert!(e.to_string().contains("anoncap keygen"), "{e}");
}

#[test]
fn refuses_group_or_world_readable() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    for mode in [0o644, 0o640, 0o604, 0o660, 0o700 | 0o001] {
        let _ = std::fs::remove_file(&p);
        write(&p, HEX.as_bytes(), mode);
        let e = Key::load(&p).unwrap_err();
        assert!(matches!(e, KeyError::Permissions { .. }), "{mode:o}: {e:?}");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(!e.to_string().contains(HEX), "{e}");
    }
}

#[test]
fn refuses_short_long_and_empty() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    for text in [
        &HEX[..62],
        &HEX[..10],
        "",
        &format!("{HEX}00")[..],
        &format!("{HEX}\nextra")[..],
    ] {
        let _ = std::fs::remove_file(&p);
        write(&p, text.as_bytes(), 0o600);
        let e = Key::load(&p).unwrap_err();
        assert!(matches!(e, KeyError::Length { .. }), "{text:?}: {e:?}");
        assert!(e.to_string().contains("64 hexadecimal"), "{e}");
        assert!(!e.to_string().contains(&HEX[..16]), "{e}");
    }
    // 31 and 33 raw bytes.
    for n in [31usize, 33] {
        let _ = std::fs::remove_file(&p);
        write(&p, &vec![0xabu8; n], 0o600);
        assert!(matches!(
            Key::load(&p).unwrap_err(),
            KeyError::Length { .. }
        ));
    }
    // A big file is refused without reading it whole.
    let _ = std::fs::remove_file(&p);
    write(&p, &vec![b'a'; 1 << 20], 0o600);
    match Key::load(&p).unwrap_err() {
        KeyError::Length { len, .. } => assert_eq!(len, 1 << 20),
        e => panic!("{e:?}"),
    }
}

#[test]
fn refuses_malformed_hex() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    let mut bad = HEX.to_string();
    bad.replace_range(10..11, "g");
    write(&p, bad.as_bytes(), 0o600);
    match Key::load(&p).unwrap_err() {
        KeyError::Malformed { position, .. } => assert_eq!(position, 11),
        e => panic!("{e:?}"),
    }
}

#[test]
fn refuses_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be read as a key.
    let e = Key::load(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            KeyError::Unreadable { .. } | KeyError::Permissions { .. }
        ),
        "{e:?}"
    );
}

#[test]
fn write_new_is_0600_loads_back_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("new.key");
    let k = Key::generate().unwrap();
    k.write_new(&p).unwrap();
    let meta = std::fs::metadata(&p).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 65);
    assert_eq!(Key::load(&p).unwrap(), k);
    let other = Key::generate().unwrap();
    assert_ne!(other, k);
    assert!(matches!(
        other.write_new(&p).unwrap_err(),
        KeyError::Exists { .. }
    ));
    assert_eq!(Key::load(&p).unwrap(), k);
}

#[test]
fn debug_and_fingerprint_hide_the_key() {
    let k = reference();
    let dbg = format!("{k:?}");
    assert!(!dbg.to_lowercase().contains(&HEX[..8]), "{dbg}");
    assert!(!dbg.contains("21, 34"), "{dbg}");
    let fp = k.fingerprint();
    assert_eq!(fp.len(), 16);
    assert!(dbg.contains(&fp));
    assert!(!HEX.contains(&fp));
    assert_ne!(fp, Key::from_bytes([0; 32]).fingerprint());
    assert_eq!(fp, reference().fingerprint());
}

#[test]
fn dataset_keys_are_consistent_and_distinct() {
    let m = reference();
    let a1 = m.derive_dataset("campus-2026");
    let a2 = m.derive_dataset("campus-2026");
    let b = m.derive_dataset("campus-2027");
    assert_eq!(a1, a2);
    assert_ne!(a1, b);
    assert_ne!(a1, m);
    assert_ne!(Key::from_bytes([1; 32]).derive_dataset("campus-2026"), a1);
    // Subkeys of different algorithms differ.
    let s1 = m.derive_subkey::<16>(anonymise::key::info::SCRAMBLE_V4);
    let s2 = m.derive_subkey::<16>(anonymise::key::info::SCRAMBLE_V6);
    assert_ne!(*s1, *s2);
}

/// The dataset key is HKDF-SHA256 (RFC 5869: no salt, so the salt is 32 zero bytes; one output
/// block), checked against HMAC-SHA256 computed here by hand from SHA-256.
#[test]
fn dataset_derivation_is_hkdf_sha256() {
    use sha2::{Digest, Sha256};
    fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(k.map(|b| b ^ 0x36));
        inner.update(msg);
        let ih = inner.finalize();
        let mut outer = Sha256::new();
        outer.update(k.map(|b| b ^ 0x5c));
        outer.update(ih);
        outer.finalize().into()
    }
    let m = reference();
    let prk = hmac(&[0u8; 32], m.as_bytes());
    let mut info = b"anoncap/v1 dataset x".to_vec();
    info.push(1);
    let okm = hmac(&prk, &info);
    assert_eq!(m.derive_dataset("x").as_bytes(), &okm);
}
