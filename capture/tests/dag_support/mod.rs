//! Helpers shared by the `dag_*` tests: configuring the DAG stand-in library through its
//! environment variables (one test at a time), an independent ERF walk to compare against, and
//! builders of synthetic ERF records.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The stand-in reads its environment in `dag_open` and `dag_attach_stream64`; tests that set
/// it hold this lock while they do.
static ENV_LOCK: Mutex<()> = Mutex::new(());

/// Settings of the stand-in library (see capture/dag-standin/dagapi-standin.h).
#[derive(Clone, Debug, Default)]
pub struct Standin {
    /// ANONCAP_DAG_STANDIN_ERF.
    pub erf: PathBuf,
    /// ANONCAP_DAG_STANDIN_BUFSIZE.
    pub bufsize: Option<u64>,
    /// ANONCAP_DAG_STANDIN_CHUNK.
    pub chunk: Option<u64>,
    /// ANONCAP_DAG_STANDIN_LCTR as (record index, value).
    pub lctr: Vec<(u64, u16)>,
    /// ANONCAP_DAG_STANDIN_WHEN_FULL=drop.
    pub drop_when_full: bool,
    /// ANONCAP_DAG_STANDIN_AT_END=idle.
    pub idle_at_end: bool,
}

/// Holds the environment lock with the stand-in's variables set.
pub struct EnvGuard {
    _lock: MutexGuard<'static, ()>,
}

impl Standin {
    /// A stand-in serving `erf` with its defaults.
    pub fn new(erf: &Path) -> Self {
        Standin {
            erf: erf.to_path_buf(),
            ..Default::default()
        }
    }

    /// Sets the variables and keeps other tests from changing them until the guard drops.
    pub fn apply(&self) -> EnvGuard {
        let lock = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let set = |k: &str, v: Option<String>| match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        };
        set(
            "ANONCAP_DAG_STANDIN_ERF",
            Some(self.erf.display().to_string()),
        );
        set(
            "ANONCAP_DAG_STANDIN_BUFSIZE",
            self.bufsize.map(|n| n.to_string()),
        );
        set(
            "ANONCAP_DAG_STANDIN_CHUNK",
            self.chunk.map(|n| n.to_string()),
        );
        let lctr = self
            .lctr
            .iter()
            .map(|(i, v)| format!("{i}:{v}"))
            .collect::<Vec<_>>()
            .join(",");
        set(
            "ANONCAP_DAG_STANDIN_LCTR",
            (!lctr.is_empty()).then_some(lctr),
        );
        set(
            "ANONCAP_DAG_STANDIN_WHEN_FULL",
            Some(if self.drop_when_full { "drop" } else { "wait" }.to_string()),
        );
        set(
            "ANONCAP_DAG_STANDIN_AT_END",
            Some(if self.idle_at_end { "idle" } else { "end" }.to_string()),
        );
        EnvGuard { _lock: lock }
    }
}

/// A test trace from testdata/traces.
pub fn trace(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/traces")
        .join(name)
}

/// One record as an independent walk of the file sees it (docs/erf-format.md §1, §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefRecord {
    /// Offset in the file.
    pub offset: usize,
    /// The whole record length.
    pub rlen: usize,
    /// Timestamp, 32.32.
    pub ts: u64,
    /// Type byte, bit 7 cleared.
    pub ty: u8,
    /// Flags byte.
    pub flags: u8,
    /// lctr.
    pub lctr: u16,
    /// wlen.
    pub wlen: u16,
    /// Captured bytes: min(wlen, rlen - framing).
    pub data: Vec<u8>,
}

/// Walks an ERF byte string record by record.
pub fn walk(bytes: &[u8]) -> Vec<RefRecord> {
    let mut out = Vec::new();
    let mut p = 0;
    while p + 16 <= bytes.len() {
        let b = &bytes[p..];
        let rlen = u16::from_be_bytes([b[10], b[11]]) as usize;
        assert!(
            rlen >= 16 && p + rlen <= bytes.len(),
            "bad test input at {p}"
        );
        let ty = b[8] & 0x7f;
        let mut framing = 16;
        let mut more = b[8] & 0x80 != 0;
        while more {
            more = b[framing] & 0x80 != 0;
            framing += 8;
        }
        framing += match ty {
            2 | 11 | 16 | 20 => 2,
            5..=9 | 12 | 17 | 18 => 4,
            _ => 0,
        };
        let wlen = u16::from_be_bytes([b[14], b[15]]);
        let caplen = (rlen - framing).min(wlen as usize);
        out.push(RefRecord {
            offset: p,
            rlen,
            ts: u64::from_le_bytes(b[..8].try_into().unwrap()),
            ty,
            flags: b[9],
            lctr: u16::from_be_bytes([b[12], b[13]]),
            wlen,
            data: b[framing..framing + caplen].to_vec(),
        });
        p += rlen;
    }
    assert_eq!(p, bytes.len(), "trailing bytes in test input");
    out
}

/// Builds one ERF record: `ty` (with its subheader for the Ethernet family), unpadded.
pub fn record(ts: u64, ty: u8, flags: u8, lctr: u16, wlen: u16, data: &[u8]) -> Vec<u8> {
    let sub = if matches!(ty & 0x7f, 2 | 11 | 16 | 20) {
        2
    } else {
        0
    };
    let rlen = 16 + sub + data.len();
    let mut r = Vec::with_capacity(rlen);
    r.extend_from_slice(&ts.to_le_bytes());
    r.push(ty);
    r.push(flags);
    r.extend_from_slice(&(rlen as u16).to_be_bytes());
    r.extend_from_slice(&lctr.to_be_bytes());
    r.extend_from_slice(&wlen.to_be_bytes());
    r.extend(std::iter::repeat_n(0u8, sub));
    r.extend_from_slice(data);
    r
}

/// A 54-byte Ethernet/IPv4/TCP header (checksums valid) from `src` to `dst`, as a frame of
/// `frame_len` bytes on the wire would start.
pub fn tcp_frame(src: [u8; 4], dst: [u8; 4], frame_len: u16) -> Vec<u8> {
    let mut f = vec![
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00,
    ];
    let ip_len = frame_len - 14;
    let mut ip = vec![
        0x45,
        0x00,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0x12,
        0x34,
        0x40,
        0x00,
        64,
        6,
        0,
        0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let mut sum: u32 = 0;
    for c in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let ck = !(sum as u16);
    ip[10] = (ck >> 8) as u8;
    ip[11] = ck as u8;
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[
        0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    f
}
