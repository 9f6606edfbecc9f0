//! The crate's only unsafe code: XDP link creation with mode flags (libbpf-rs has no safe
//! call for it), and the clock reads behind [`crate::tai_offset_ns`].
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd};

use libbpf_rs::libbpf_sys;

/// Creates a BPF link attaching `prog_fd` to `ifindex` as XDP with `flags`
/// (XDP_FLAGS_SKB_MODE / XDP_FLAGS_DRV_MODE). Closing the returned fd detaches the program.
pub(crate) fn xdp_link_create(prog_fd: i32, ifindex: u32, flags: u32) -> Result<OwnedFd, i32> {
    // SAFETY: bpf_link_create_opts is a plain C struct for which all-zero bytes is the
    // documented "no options" value; sz is set as libbpf's OPTS convention requires.
    let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
    opts.flags = flags;
    // SAFETY: prog_fd is a valid program fd borrowed for the call, opts points to a live,
    // initialised struct; libbpf does not keep either pointer after returning.
    let fd =
        unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(-fd);
    }
    // SAFETY: a non-negative return is a new link fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Detaches the link with kernel id `link_id` (whoever created it). Used by forced attaches.
pub(crate) fn link_detach_by_id(link_id: u32) -> Result<(), i32> {
    // SAFETY: plain syscall wrapper taking an integer id.
    let fd = unsafe { libbpf_sys::bpf_link_get_fd_by_id(link_id) };
    if fd < 0 {
        return Err(-fd);
    }
    // SAFETY: fd was just returned by the kernel and is owned here only.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain syscall wrapper on a valid link fd that stays open for the call.
    let rc = unsafe { libbpf_sys::bpf_link_detach(std::os::fd::AsRawFd::as_raw_fd(&owned)) };
    if rc < 0 {
        return Err(-rc);
    }
    Ok(())
}

/// Reads `clock` in nanoseconds.
pub(crate) fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; the clocks used here always exist on Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}
