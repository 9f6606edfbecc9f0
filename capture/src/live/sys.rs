//! What the live path asks of the system: clocks, interface counters and queues, privileges.
#![allow(unsafe_code)]

use crate::packet::Timestamp;
use std::fs;
use std::io;
use std::path::Path;

fn clock_ns(clock: libc::clockid_t) -> io::Result<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes to it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128)
}

/// CLOCK_TAI minus CLOCK_REALTIME, in nanoseconds (37 s on a host whose TAI offset is set, 0 on
/// one where it is not). Both clocks are read twice around the realtime read and the mean taken.
pub fn tai_offset_ns() -> io::Result<i64> {
    let t1 = clock_ns(libc::CLOCK_TAI)?;
    let r = clock_ns(libc::CLOCK_REALTIME)?;
    let t2 = clock_ns(libc::CLOCK_TAI)?;
    Ok(((t1 + t2) / 2 - r) as i64)
}

/// The current UTC time as an ERF timestamp.
pub fn now_utc() -> Timestamp {
    let ns = clock_ns(libc::CLOCK_REALTIME).unwrap_or(0).max(0) as u64;
    Timestamp::from_unix_nanos(ns)
}

/// Converts a CLOCK_TAI reading (as bpf_ktime_get_tai_ns gives it) to UTC.
pub fn tai_to_utc(tai_ns: u64, offset_ns: i64) -> Timestamp {
    Timestamp::from_unix_nanos((tai_ns as i128 - offset_ns as i128).max(0) as u64)
}

fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Drops an interface counted before the XDP hook, as libpcap reports "dropped by interface"
/// on Linux: `rx_missed_errors + rx_fifo_errors` (the NIC ran out of descriptors or FIFO).
/// `rx_dropped` is not used: drivers (veth among them) count XDP-stage drops there, which the
/// sockets' XDP_STATISTICS already count.
pub fn interface_drops(iface: &str) -> u64 {
    let dir = Path::new("/sys/class/net").join(iface).join("statistics");
    read_u64(&dir.join("rx_missed_errors")).unwrap_or(0)
        + read_u64(&dir.join("rx_fifo_errors")).unwrap_or(0)
}

/// The number of RX queues of `iface` (entries `rx-N` under /sys/class/net/IF/queues), or
/// `None` if there is no such interface.
pub fn rx_queue_count(iface: &str) -> Option<u32> {
    let dir = Path::new("/sys/class/net").join(iface).join("queues");
    let n = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Some(n as u32)
}

/// The index of `iface`, or `None` if there is no such interface.
pub fn if_index(iface: &str) -> Option<u32> {
    read_u64(&Path::new("/sys/class/net").join(iface).join("ifindex")).map(|v| v as u32)
}

/// Whether an XDP program is already attached to `iface` (from `ip -d link`'s view in sysfs is
/// not available, so netlink is asked through `ip`).
pub fn has_xdp_program(iface: &str) -> bool {
    std::process::Command::new("ip")
        .args(["-d", "link", "show", "dev", iface])
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout);
            s.contains(" prog/xdp") || s.contains("xdpgeneric") || s.contains("xdpdrv")
        })
        .unwrap_or(false)
}

/// A Linux capability the live path may need.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// CAP_NET_ADMIN (12): attach XDP programs, bind AF_XDP sockets.
    NetAdmin = 12,
    /// CAP_NET_RAW (13): create AF_XDP sockets.
    NetRaw = 13,
    /// CAP_IPC_LOCK (14): lock the UMEM in memory beyond the memlock limit.
    IpcLock = 14,
    /// CAP_SYS_ADMIN (21): what kernels before 5.8 ask instead of CAP_BPF.
    SysAdmin = 21,
    /// CAP_BPF (39): load BPF programs and maps.
    Bpf = 39,
}

impl Capability {
    /// The capability's name as capabilities(7) spells it.
    pub fn name(self) -> &'static str {
        match self {
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::NetRaw => "CAP_NET_RAW",
            Capability::IpcLock => "CAP_IPC_LOCK",
            Capability::SysAdmin => "CAP_SYS_ADMIN",
            Capability::Bpf => "CAP_BPF",
        }
    }
}

/// The effective capability set of this process (CapEff in /proc/self/status).
pub fn effective_caps() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// The soft RLIMIT_MEMLOCK in bytes (`u64::MAX` for unlimited).
pub fn memlock_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit; getrlimit only writes to it.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return 0;
    }
    if r.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        r.rlim_cur
    }
}

/// What is missing to capture with `umem_bytes` of UMEM in total, as names a user can act on
/// (empty when nothing is missing). `caps` is an effective capability set.
pub fn missing_privileges(caps: u64, memlock: u64, umem_bytes: u64) -> Vec<String> {
    let has = |c: Capability| caps & (1u64 << c as u32) != 0;
    let mut missing = vec![];
    if !has(Capability::Bpf) && !has(Capability::SysAdmin) {
        missing.push(Capability::Bpf.name().to_string());
    }
    for c in [Capability::NetAdmin, Capability::NetRaw] {
        if !has(c) {
            missing.push(c.name().to_string());
        }
    }
    if !has(Capability::IpcLock) && memlock < umem_bytes {
        missing.push(format!(
            "{} or a memlock limit of at least {} bytes (ulimit -l is {})",
            Capability::IpcLock.name(),
            umem_bytes,
            if memlock == u64::MAX {
                "unlimited".to_string()
            } else {
                memlock.to_string()
            }
        ));
    }
    missing
}

/// Switches to `user`'s uid and gid (and its supplementary groups), as tcpdump -Z does.
/// Open sockets, maps and files stay usable.
pub fn drop_privileges(user: &str) -> io::Result<()> {
    let name = std::ffi::CString::new(user)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad user name"))?;
    // SAFETY: `name` is a valid C string; getpwnam returns a pointer to static storage or null,
    // which is read at once, before any other call that could overwrite it.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no user {user}"),
        ));
    }
    // SAFETY: `pw` is non-null and points to a passwd record valid until the next getpw* call.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    // SAFETY: plain syscalls with integer and C-string arguments; failures are checked.
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tai_conversion_subtracts_the_offset() {
        let ts = tai_to_utc(1_700_000_037_000_000_123, 37_000_000_000);
        assert_eq!(ts.to_unix_nanos(), 1_700_000_000_000_000_123);
        // The offset is small (0 or a few tens of seconds, never more than a minute).
        assert!(tai_offset_ns().unwrap().abs() < 60_000_000_000);
    }

    #[test]
    fn missing_privileges_are_named() {
        let all = (1u64 << 39) | (1 << 12) | (1 << 13) | (1 << 14);
        assert!(missing_privileges(all, 0, 1 << 30).is_empty());
        let m = missing_privileges(1 << 12, 1 << 20, 1 << 30);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0], "CAP_BPF");
        assert_eq!(m[1], "CAP_NET_RAW");
        assert!(m[2].starts_with("CAP_IPC_LOCK or a memlock limit of at least 1073741824"));
        // A large enough memlock limit stands in for CAP_IPC_LOCK; CAP_SYS_ADMIN for CAP_BPF.
        let m = missing_privileges((1 << 21) | (1 << 12) | (1 << 13), u64::MAX, 1 << 30);
        assert!(m.is_empty());
    }

    #[test]
    fn loopback_has_queues_and_an_index() {
        assert!(rx_queue_count("lo").unwrap() >= 1);
        assert!(if_index("lo").is_some());
        assert!(rx_queue_count("no-such-if0").is_none());
    }
}
