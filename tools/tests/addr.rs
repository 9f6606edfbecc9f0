//! `anoncap addr`, `anoncap keygen` and `anoncap policy`, run as the built binary.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_anoncap");
const REFERENCE_KEY: &str = "1522178d33a4cf80130a5b1649907d10d8988f837979652762574c2d2a842202";

fn key_file(dir: &Path, hex: &str) -> std::path::PathBuf {
    let p = dir.join("test.key");
    std::fs::write(&p, format!("{hex}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn run_with_input(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        // A refusal exits before reading standard input: a broken pipe is fine then.
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Reads (original, anonymised) pairs of a vector file.
fn vectors(rel: &str) -> Vec<(String, String)> {
    let path = format!("{}/../testdata/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect()
}

#[test]
fn addr_maps_mixed_input_as_the_vectors_say_and_reports_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), REFERENCE_KEY);
    let v4 = vectors("cryptopan/ipv4-reference.tsv");
    let v6 = vectors("cryptopan/ipv6-crosschecked.tsv");
    let mut input = String::new();
    let mut want: Vec<std::net::IpAddr> = Vec::new();
    let mut bad_lines = Vec::new();
    let mut line = 0;
    for (i, (a, b)) in v4.iter().zip(v6.iter().cycle()).enumerate() {
        for (orig, anon) in [a, b] {
            line += 1;
            input.push_str(&format!("{orig}\n"));
            want.push(anon.parse().unwrap());
        }
        if i % 17 == 3 {
            for bad in ["10.0.0.1/24", "not an address", "", "300.1.2.3", " ::gg "] {
                line += 1;
                input.push_str(bad);
                input.push('\n');
                bad_lines.push(line);
            }
        }
    }
    // A very long line is one bad line, read without being stored.
    line += 1;
    input.push_str(&"1".repeat(100_000));
    input.push('\n');
    bad_lines.push(line);
    // Whitespace and CRLF around a good address are fine; the last line has no newline.
    input.push_str("  24.5.0.80\r\n24.5.0.80");
    want.push("100.9.15.210".parse().unwrap());
    want.push("100.9.15.210".parse().unwrap());
    let out = run_with_input(
        &[
            "addr",
            "--key",
            key.to_str().unwrap(),
            "--policy",
            "cryptopan",
        ],
        &input,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad lines give a non-zero status"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let got: Vec<std::net::IpAddr> = stdout.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(got, want);
    // Canonical text form.
    for l in stdout.lines() {
        assert_eq!(l.parse::<std::net::IpAddr>().unwrap().to_string(), l);
    }
    let stderr = String::from_utf8(out.stderr).unwrap();
    for n in &bad_lines {
        assert!(
            stderr.contains(&format!("line {n}:")),
            "line {n} in {stderr}"
        );
    }
    assert!(
        !stderr.contains("10.0.0.1"),
        "bad lines are not echoed: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{} of", bad_lines.len())),
        "{stderr}"
    );
}

#[test]
fn addr_default_policy_keeps_multicast_and_streams_large_input() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), REFERENCE_KEY);
    let mut input = String::from("224.0.0.251\nff02::1\n24.5.0.80\n");
    for i in 0..20_000u32 {
        let b = i.to_be_bytes();
        input.push_str(&format!("10.{}.{}.{}\n", b[1], b[2], b[3]));
    }
    let out = run_with_input(&["addr", "-k", key.to_str().unwrap()], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 20_003);
    assert_eq!(&lines[..3], ["224.0.0.251", "ff02::1", "100.9.15.210"]);
    assert!(lines[3..].iter().all(|l| !l.starts_with("10.")));
}

#[test]
fn addr_refuses_bad_keys_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let out = run_with_input(&["addr", "--key", missing.to_str().unwrap()], "1.2.3.4\n");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("anoncap keygen"));

    let open = key_file(dir.path(), REFERENCE_KEY);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_with_input(&["addr", "--key", open.to_str().unwrap()], "1.2.3.4\n");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(&REFERENCE_KEY[..12]), "{err}");

    let short = dir.path().join("short.key");
    std::fs::write(&short, "abcd\n").unwrap();
    std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run_with_input(&["addr", "--key", short.to_str().unwrap()], "1.2.3.4\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hexadecimal"));
}

#[test]
fn keygen_writes_a_private_key_that_addr_uses_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("new.key");
    let out = Command::new(BIN)
        .args(["keygen", "-o", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(text.len(), 65);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(text.trim()));
    let again = Command::new(BIN)
        .args(["keygen", "-o", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
    let out = run_with_input(&["addr", "-k", key.to_str().unwrap()], "192.0.2.1\n");
    assert!(out.status.success());

    // A dataset key written by keygen equals the one --dataset derives.
    let ds = dir.path().join("ds.key");
    let out = Command::new(BIN)
        .args(["keygen", "-o", ds.to_str().unwrap()])
        .args(["--master", key.to_str().unwrap(), "--dataset", "campus"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let input = "192.0.2.1\n2001:db8::1\n";
    let a = run_with_input(&["addr", "-k", ds.to_str().unwrap()], input);
    let b = run_with_input(
        &["addr", "-k", key.to_str().unwrap(), "--dataset", "campus"],
        input,
    );
    let c = run_with_input(&["addr", "-k", key.to_str().unwrap()], input);
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
}

#[test]
fn policy_prints_the_canonical_form_and_explains() {
    let out = Command::new(BIN)
        .args(["policy", "--policy", "default + private = keep"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "default+v4-private=keep+v6-unique-local=keep\n"
    );
    let out = Command::new(BIN)
        .args(["policy", "--policy", "truncate:21,48", "--explain"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("v4-multicast"), "{text}");
    assert!(
        text.contains("first 21 bits kept, last 11 zeroed"),
        "{text}"
    );
    assert!(
        text.contains("first 48 bits kept, last 80 zeroed"),
        "{text}"
    );
    let out = Command::new(BIN)
        .args(["policy", "--policy", "truncate:40,48"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("32"));
}
