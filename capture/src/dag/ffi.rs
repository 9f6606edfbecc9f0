//! The only place where anoncap calls into the DAG API (libdag) and reads the card's memory.
//!
//! Everything here is a thin, checked shim over the C functions a receive capture needs:
//! `dag_open`/`dag_close`, `dag_configure`, `dag_attach_stream64`/`dag_detach_stream`,
//! `dag_set_stream_poll64`, `dag_start_stream`/`dag_stop_stream` and `dag_advance_stream`.
//! Their signatures follow Endace's `dagapi.h` (DAG software 5.x and later); `dag_size_t` is
//! `uint64_t` there. The same symbols are exported by the test stand-in in
//! `capture/dag-standin/`, which is what the test suite links against.
//!
//! # The memory-window contract
//!
//! After `dag_attach_stream64`, the stream's circular buffer (size `S`) is mapped into this
//! process, followed by a second mapping of its first `E` bytes (`E = S` when the extra window
//! size is 0), so that a record that wraps past the end of the buffer is still contiguous in
//! virtual memory. `dag_advance_stream(fd, stream, &bottom)` takes the address up to which the
//! application has finished (NULL on the first call), hands that space back to the card, may
//! move `bottom` down by `S` to renormalise it into the first mapping, and returns `top`:
//! `[bottom, top)` then holds complete ERF records, `top` on a record boundary. The card never
//! writes into `[bottom, top)` until a later call moves `bottom` past it, and the mapping lives
//! until `dag_detach_stream`.
//!
//! [`StreamWindow`] encodes that contract in types: its `pending` slice borrows the window, and
//! both calls that could invalidate it (`advance`, `consume` past it, `detach`) need `&mut self`
//! or ownership, so no slice can outlive the memory it points to.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CStr};
use std::io;
use std::ptr;
use std::time::Duration;

mod sys {
    use std::ffi::{c_char, c_int};

    // Declarations of the subset of dagapi.h that a receive capture uses. The link directives
    // (`-ldag`, `-ldagconf`, or the stand-in `-ldag-standin`) come from capture/build.rs.
    extern "C" {
        pub fn dag_open(dagname: *mut c_char) -> c_int;
        pub fn dag_close(dagfd: c_int) -> c_int;
        pub fn dag_configure(dagfd: c_int, params: *mut c_char) -> c_int;
        pub fn dag_attach_stream64(
            dagfd: c_int,
            stream_num: c_int,
            flags: u32,
            extra_window_size: u64,
        ) -> c_int;
        pub fn dag_detach_stream(dagfd: c_int, stream_num: c_int) -> c_int;
        pub fn dag_start_stream(dagfd: c_int, stream_num: c_int) -> c_int;
        pub fn dag_stop_stream(dagfd: c_int, stream_num: c_int) -> c_int;
        pub fn dag_set_stream_poll64(
            dagfd: c_int,
            stream_num: c_int,
            mindata: u64,
            maxwait: *mut libc::timeval,
            poll: *mut libc::timeval,
        ) -> c_int;
        pub fn dag_advance_stream(dagfd: c_int, stream_num: c_int, bottom: *mut *mut u8)
            -> *mut u8;
    }
}

/// Turns a C status (0 on success, -1 with errno) into a Result.
fn check(status: c_int) -> io::Result<()> {
    if status < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn timeval(d: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    }
}

/// An open DAG device descriptor (from `dag_open`), closed on drop.
#[derive(Debug)]
pub(crate) struct DeviceFd(c_int);

impl DeviceFd {
    /// `dag_open(name)`.
    pub(crate) fn open(name: &CStr) -> io::Result<Self> {
        // SAFETY: `name` is a valid NUL-terminated string that lives for the whole call. The
        // prototype takes `char *` but libdag only reads the name (it copies it into its own
        // table); the stand-in does the same. The pointer is not kept after the call returns.
        let fd = unsafe { sys::dag_open(name.as_ptr() as *mut c_char) };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(DeviceFd(fd))
        }
    }

    /// `dag_configure(fd, params)`.
    pub(crate) fn configure(&self, params: &CStr) -> io::Result<()> {
        // SAFETY: `self.0` is a descriptor returned by dag_open and not yet closed (it is closed
        // only in Drop). `params` is a valid NUL-terminated string for the duration of the call;
        // libdag tokenises a private copy and does not write through or keep the pointer.
        check(unsafe { sys::dag_configure(self.0, params.as_ptr() as *mut c_char) })
    }

    /// The raw descriptor, for error messages and for [`StreamWindow::attach`].
    pub(crate) fn raw(&self) -> c_int {
        self.0
    }
}

impl Drop for DeviceFd {
    fn drop(&mut self) {
        // SAFETY: the descriptor came from dag_open and is closed exactly once, here. Every
        // StreamWindow borrows the DeviceFd, so all streams are detached before this runs.
        unsafe {
            sys::dag_close(self.0);
        }
    }
}

/// The polling parameters of `dag_set_stream_poll64`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Poll {
    pub mindata: u64,
    pub maxwait: Duration,
    pub interval: Duration,
}

/// An attached receive stream and its current memory window `[bottom, top)`.
///
/// Invariants (established by `attach` and kept by every method):
/// - `bottom` and `top` are either both null (no window yet) or were returned by the last
///   successful `dag_advance_stream` for this stream, with `bottom <= top`;
/// - `consumed <= top - bottom`;
/// - the stream stays attached (its buffer mapped) until `Drop`, which needs ownership.
#[derive(Debug)]
pub(crate) struct StreamWindow<'d> {
    dev: &'d DeviceFd,
    stream: c_int,
    started: bool,
    bottom: *mut u8,
    top: *mut u8,
    /// Bytes at the start of the window the caller has finished with.
    consumed: usize,
}

impl<'d> StreamWindow<'d> {
    /// `dag_attach_stream64(fd, stream, 0, extra_window)` then `dag_set_stream_poll64`.
    pub(crate) fn attach(
        dev: &'d DeviceFd,
        stream: u32,
        extra_window: u64,
        poll: Poll,
    ) -> Result<Self, (&'static str, io::Error)> {
        let stream = c_int::try_from(stream)
            .map_err(|_| ("attach", io::Error::from_raw_os_error(libc::EINVAL)))?;
        // SAFETY: `dev.0` is an open DAG descriptor (DeviceFd's invariant); flags 0 and any
        // window size are valid inputs, and libdag reports bad ones through errno.
        check(unsafe { sys::dag_attach_stream64(dev.0, stream, 0, extra_window) })
            .map_err(|e| ("dag_attach_stream64", e))?;
        let window = StreamWindow {
            dev,
            stream,
            started: false,
            bottom: ptr::null_mut(),
            top: ptr::null_mut(),
            consumed: 0,
        };
        // From here on, Drop detaches the stream if a later step fails.
        let mut maxwait = timeval(poll.maxwait);
        let mut interval = timeval(poll.interval);
        // SAFETY: the stream is attached on an open descriptor; both timeval pointers point to
        // live locals for the duration of the call, and libdag copies the values (it does not
        // keep the pointers).
        check(unsafe {
            sys::dag_set_stream_poll64(dev.0, stream, poll.mindata, &mut maxwait, &mut interval)
        })
        .map_err(|e| ("dag_set_stream_poll64", e))?;
        Ok(window)
    }

    /// `dag_start_stream`.
    pub(crate) fn start(&mut self) -> io::Result<()> {
        // SAFETY: the stream is attached on an open descriptor (type invariant).
        check(unsafe { sys::dag_start_stream(self.dev.0, self.stream) })?;
        self.started = true;
        Ok(())
    }

    /// `dag_stop_stream`. The window stays readable (the mapping lives until detach), but no
    /// new records arrive.
    pub(crate) fn stop(&mut self) -> io::Result<()> {
        if !self.started {
            return Ok(());
        }
        self.started = false;
        // SAFETY: the stream is attached and was started on an open descriptor.
        check(unsafe { sys::dag_stop_stream(self.dev.0, self.stream) })
    }

    /// The bytes of the current window that have not been consumed yet: whole ERF records
    /// written by the card, which it will not touch until they are handed back.
    pub(crate) fn pending(&self) -> &[u8] {
        if self.bottom.is_null() {
            return &[];
        }
        let len = self.top as usize - self.bottom as usize;
        // SAFETY: [bottom, top) was returned by dag_advance_stream for this attached stream
        // (invariant), so it lies inside the stream's mapping (the buffer plus its extra window)
        // and holds records the card has finished writing; the card does not write there again
        // until bottom is advanced past it, which takes `&mut self` (`advance`) or ownership
        // (Drop, which detaches), so not while this shared borrow lives. `consumed <= len`, so
        // the slice stays inside the window. u8 has no alignment or validity requirement.
        unsafe { std::slice::from_raw_parts(self.bottom.add(self.consumed), len - self.consumed) }
    }

    /// Marks the first `n` pending bytes as finished with. They are handed back to the card at
    /// the next [`StreamWindow::advance`]. `n` is capped at the pending length.
    pub(crate) fn consume(&mut self, n: usize) {
        let len = self.top as usize - self.bottom as usize;
        self.consumed = (self.consumed + n).min(len);
    }

    /// Hands the consumed bytes back to the card and asks for a new window
    /// (`dag_advance_stream`), which may block according to the polling parameters. Pending
    /// bytes that were not consumed are delivered again at the start of the new window.
    pub(crate) fn advance(&mut self) -> io::Result<()> {
        let mut bottom = if self.bottom.is_null() {
            ptr::null_mut()
        } else {
            // `consumed <= top - bottom` (invariant), so this stays within the window.
            self.bottom.wrapping_add(self.consumed)
        };
        // SAFETY: the stream is attached on an open descriptor; `bottom` is null (first call)
        // or a position inside the last window libdag returned, which is what the contract
        // asks for. No slice from `pending` is alive: this method takes `&mut self`.
        let top = unsafe { sys::dag_advance_stream(self.dev.0, self.stream, &mut bottom) };
        if top.is_null() {
            let err = io::Error::last_os_error();
            // The old window is no longer trusted; what was consumed has been handed back or
            // will be again on the next call (bottom is unchanged on failure).
            self.top = self.bottom.wrapping_add(self.consumed);
            self.bottom = self.top;
            self.consumed = 0;
            if self.bottom.is_null() {
                self.top = ptr::null_mut();
            }
            return Err(err);
        }
        if bottom.is_null() || (top as usize) < (bottom as usize) {
            // A libdag that broke its own contract: refuse to build a window from it.
            self.bottom = ptr::null_mut();
            self.top = ptr::null_mut();
            self.consumed = 0;
            return Err(io::Error::other(
                "dag_advance_stream returned a top pointer below its bottom pointer",
            ));
        }
        self.bottom = bottom;
        self.top = top;
        self.consumed = 0;
        Ok(())
    }
}

impl Drop for StreamWindow<'_> {
    fn drop(&mut self) {
        if self.started {
            // SAFETY: the stream is attached and started on an open descriptor.
            unsafe {
                sys::dag_stop_stream(self.dev.0, self.stream);
            }
        }
        // SAFETY: the stream was attached by `attach` on this open descriptor and is detached
        // exactly once, here; no slice into its mapping can be alive because Drop has `&mut`.
        unsafe {
            sys::dag_detach_stream(self.dev.0, self.stream);
        }
    }
}
