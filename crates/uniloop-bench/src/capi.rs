//! The C library's calls, counted by `--callgrind`: the calls a C program's
//! loop makes every turn (a wait with a ready fd, an interest change, a
//! look at an empty queue), made through their `extern "C"` symbols as a
//! C program makes them, against the same work through the Rust API.

use std::ffi::{c_int, c_void};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::measure::measured;

// Links the C library's exported functions into this binary.
use uniloop_capi as _;

/// `EVENT_READ` / `EVENT_WRITE` of `uniloop.h`.
const EVENT_READ: u32 = 0x01;
const EVENT_WRITE: u32 = 0x02;

/// Room for one `io_event_t` (56 bytes on 64-bit Unix): the probes only
/// count events, never read them.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct EventSlot([u8; 64]);

#[repr(C)]
struct Runtime {
    _opaque: [u8; 0],
}

#[repr(C)]
struct Queue {
    _opaque: [u8; 0],
}

extern "C" {
    fn async_runtime_init() -> *mut Runtime;
    fn async_runtime_deinit(rt: *mut Runtime);
    fn async_runtime_add(rt: *mut Runtime, fd: c_int, events: u32, ctx: *mut c_void) -> c_int;
    fn async_runtime_modify(rt: *mut Runtime, fd: c_int, events: u32, ctx: *mut c_void) -> c_int;
    fn async_runtime_wait(
        rt: *mut Runtime,
        events: *mut EventSlot,
        max_events: c_int,
        timeout: *mut libc::timeval,
    ) -> c_int;
    fn async_queue_create(
        capacity: usize,
        max_msg_size: usize,
        flags: std::ffi::c_uint,
    ) -> *mut Queue;
    fn async_queue_destroy(queue: *mut Queue);
    fn async_queue_dequeue(
        queue: *mut Queue,
        buffer: *mut c_void,
        buffer_size: usize,
        out_size: *mut usize,
    ) -> bool;
}

/// A socket pair whose first end is readable (one unread byte) for as
/// long as it lives.
fn ready_pair() -> io::Result<(UnixStream, UnixStream)> {
    let (a, mut b) = UnixStream::pair()?;
    a.set_nonblocking(true)?;
    b.write_all(b"x")?;
    Ok((a, b))
}

/// A live C runtime, deinitialised on drop.
struct CRuntime(*mut Runtime);

impl CRuntime {
    fn new() -> io::Result<CRuntime> {
        // SAFETY: no arguments; NULL on failure.
        let rt = unsafe { async_runtime_init() };
        if rt.is_null() {
            return Err(io::Error::other("async_runtime_init failed"));
        }
        Ok(CRuntime(rt))
    }

    fn add(&self, fd: c_int, events: u32) -> io::Result<()> {
        // SAFETY: a live runtime and an open fd.
        match unsafe { async_runtime_add(self.0, fd, events, std::ptr::null_mut()) } {
            0 => Ok(()),
            _ => Err(io::Error::other("async_runtime_add failed")),
        }
    }
}

impl Drop for CRuntime {
    fn drop(&mut self) {
        // SAFETY: made by async_runtime_init, deinitialised once.
        unsafe { async_runtime_deinit(self.0) };
    }
}

/// `async_runtime_wait` with a zero timeout and one ready fd.
pub(crate) fn c_wait(ops: u64) -> io::Result<()> {
    let (a, _b) = ready_pair()?;
    let rt = CRuntime::new()?;
    rt.add(a.as_raw_fd(), EVENT_READ)?;
    let mut events = [EventSlot([0; 64]); 16];
    measured(|| {
        for _ in 0..ops {
            let mut tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            };
            // SAFETY: a live runtime; room for 16 events (each slot is at
            // least an io_event_t); a valid timeval.
            let n = unsafe { async_runtime_wait(rt.0, events.as_mut_ptr(), 16, &mut tv) };
            if n != 1 {
                return Err(io::Error::other(format!("wait probe: {n} events, not 1")));
            }
        }
        Ok(())
    })
}

/// `Runtime::wait` with a zero timeout and one ready fd.
pub(crate) fn rust_wait(ops: u64) -> io::Result<()> {
    use uniloop::{Events, Interest, Runtime, Token};
    let (a, _b) = ready_pair()?;
    let mut rt = Runtime::new()?;
    rt.register(&a, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(16);
    measured(|| {
        for _ in 0..ops {
            let n = rt.wait(&mut events, Some(Duration::ZERO))?;
            if n != 1 {
                return Err(io::Error::other(format!("wait probe: {n} events, not 1")));
            }
        }
        Ok(())
    })
}

/// `async_runtime_modify`, alternating the interest between read and
/// read + write when `change`, else to the interest already set.
fn c_modify(ops: u64, change: bool) -> io::Result<()> {
    let (a, _b) = ready_pair()?;
    let rt = CRuntime::new()?;
    let fd = a.as_raw_fd();
    rt.add(fd, EVENT_READ)?;
    measured(|| {
        for i in 0..ops {
            let events = if change && i % 2 == 0 {
                EVENT_READ | EVENT_WRITE
            } else {
                EVENT_READ
            };
            // SAFETY: a live runtime and a registered fd.
            if unsafe { async_runtime_modify(rt.0, fd, events, std::ptr::null_mut()) } != 0 {
                return Err(io::Error::other(
                    "modify probe: async_runtime_modify failed",
                ));
            }
        }
        Ok(())
    })
}

/// `Runtime::reregister`, as [`c_modify`].
fn rust_modify(ops: u64, change: bool) -> io::Result<()> {
    use uniloop::{Interest, Runtime, Token};
    let (a, _b) = ready_pair()?;
    let mut rt = Runtime::new()?;
    rt.register(&a, Token(0), Interest::READABLE)?;
    measured(|| {
        for i in 0..ops {
            let interest = if change && i % 2 == 0 {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            rt.reregister(&a, Token(0), interest)?;
        }
        Ok(())
    })
}

pub(crate) fn c_modify_change(ops: u64) -> io::Result<()> {
    c_modify(ops, true)
}

pub(crate) fn rust_modify_change(ops: u64) -> io::Result<()> {
    rust_modify(ops, true)
}

pub(crate) fn c_modify_same(ops: u64) -> io::Result<()> {
    c_modify(ops, false)
}

pub(crate) fn rust_modify_same(ops: u64) -> io::Result<()> {
    rust_modify(ops, false)
}

/// `async_queue_dequeue` on an empty queue.
pub(crate) fn c_dequeue_empty(ops: u64) -> io::Result<()> {
    // SAFETY: valid sizes, no flags.
    let q = unsafe { async_queue_create(64, 256, 0) };
    if q.is_null() {
        return Err(io::Error::other("async_queue_create failed"));
    }
    let mut buf = [0u8; 256];
    let r = measured(|| {
        for _ in 0..ops {
            let mut size = 0usize;
            // SAFETY: a live queue, a buffer of its size, a writable size.
            if unsafe { async_queue_dequeue(q, buf.as_mut_ptr().cast(), buf.len(), &mut size) } {
                return Err(io::Error::other("dequeue probe: the queue was not empty"));
            }
        }
        Ok(())
    });
    // SAFETY: made above, destroyed once.
    unsafe { async_queue_destroy(q) };
    r
}

/// `Queue::try_pop` on an empty queue.
pub(crate) fn rust_dequeue_empty(ops: u64) -> io::Result<()> {
    let q = uniloop::Queue::<Vec<u8>>::bounded(64, uniloop::Overflow::Block);
    measured(|| {
        for _ in 0..ops {
            if std::hint::black_box(q.try_pop()).is_some() {
                return Err(io::Error::other("dequeue probe: the queue was not empty"));
            }
        }
        Ok(())
    })
}
