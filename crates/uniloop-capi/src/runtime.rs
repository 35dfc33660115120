//! (issue 10, helper A)
//! `async_runtime_*`: the reference's event loop on [`rt::Runtime`], plus
//! the `uniloop_timer_*` and `uniloop_runtime_*` extras.
//!
//! An `async_runtime_t` holds two parts. The loop part (the Rust runtime,
//! the fd table, posted operations, timers) is used only by the thread
//! that calls `async_runtime_wait`, as in the reference. The other part is
//! a [`rt::Poster`], which is `Send + Sync`: `async_runtime_wakeup` and
//! `async_runtime_post_completion` use only it, so any thread may call them.
//!
//! After `async_runtime_deinit`, those two return -1 with
//! `UNILOOP_ERR_CLOSED` instead of touching freed memory: live runtimes are
//! kept in a set ([`Live`]), and deinit takes its runtime out of the set
//! (waiting for posts in progress) before freeing it. Every other function
//! checks the set too, so a second deinit is harmless.

// The exported items are `pub` for cbindgen and reached through the C
// symbol table, not through Rust paths; their names are the reference's.
#![allow(unreachable_pub, non_camel_case_types)]

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::error::{guard, Error, Result};
use crate::live::Live;
use crate::types::*;
use crate::uniloop_error_t::*;

/// What `post_read(rt, fd, NULL, 0)` reads into: a buffer of this many
/// bytes that the runtime owns (4 KiB).
#[allow(dead_code)] // only in the header
pub const UNILOOP_DEFAULT_READ_SIZE: usize = 4096;

/// The most events one `async_runtime_wait` returns, whatever
/// `max_events` says (the rest come with the next call).
const MAX_BATCH: usize = 65_536;

/// `struct timeval` of the C library.
#[cfg(unix)]
pub type timeval = libc::timeval;

/// `struct timeval` of winsock.
#[cfg(windows)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct timeval {
    /// Seconds.
    pub tv_sec: std::ffi::c_long,
    /// Microseconds.
    pub tv_usec: std::ffi::c_long,
}

/// The runtime handle (`async_runtime_t`). Opaque.
pub struct async_runtime_s {
    poster: rt::Poster,
    posted: AtomicU64,
    /// Used only on the thread that waits (see the module docs).
    inner: UnsafeCell<Loop>,
}

/// The reference's name for the runtime handle.
#[allow(non_camel_case_types)]
pub type async_runtime_t = async_runtime_s;

/// Runtime statistics, from `uniloop_runtime_get_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(non_camel_case_types)]
pub struct uniloop_runtime_stats_t {
    /// Registered fds.
    pub registered: usize,
    /// Pending timers.
    pub timers: usize,
    /// Posted reads and writes not yet returned by a wait.
    pub pending_ops: usize,
    /// Calls to `async_runtime_wait`.
    pub waits: u64,
    /// Events returned, of every kind.
    pub events: u64,
    /// Readiness events returned.
    pub io_events: u64,
    /// Finished posted reads and writes returned.
    pub io_done: u64,
    /// Completions returned.
    pub completions: u64,
    /// Timer expiries returned.
    pub timer_events: u64,
    /// Completions posted with `async_runtime_post_completion` (any thread).
    pub posted: u64,
}

static RUNTIMES: Live = Live::new();

struct Fd {
    context: *mut c_void,
    mask: u32,
    /// The runtime-owned buffer of the last `post_read(fd, NULL, ..)`.
    read_buf: Option<Vec<u8>>,
    /// A buffer kept for the next read into a caller's buffer.
    spare: Option<Vec<u8>>,
    ops: Vec<rt::OpId>,
}

struct Op {
    fd: socket_fd_t,
    /// The caller's buffer (NULL: the runtime's).
    user: *mut c_void,
}

struct Loop {
    rt: rt::Runtime,
    events: rt::Events,
    fds: HashMap<socket_fd_t, Fd>,
    ops: HashMap<rt::OpId, Op>,
    /// C timer id → (Rust id, periodic).
    timers: HashMap<u64, (rt::TimerId, bool)>,
    console_type: console_type_t,
    stats: uniloop_runtime_stats_t,
}

#[cfg(unix)]
fn source<'a>(fd: socket_fd_t) -> std::os::fd::BorrowedFd<'a> {
    // SAFETY: the caller of async_runtime_add promised the fd stays open
    // while registered (as with the reference); the borrow lives only for
    // the call it is made in.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

#[cfg(windows)]
fn source<'a>(fd: socket_fd_t) -> std::os::windows::io::BorrowedSocket<'a> {
    // SAFETY: as on Unix: the socket stays open while registered, and the
    // borrow lives only for the call it is made in.
    unsafe { std::os::windows::io::BorrowedSocket::borrow_raw(fd as _) }
}

fn check_fd(fd: socket_fd_t) -> Result<()> {
    if fd == INVALID_FD || (cfg!(unix) && (fd as i64) < 0) {
        Err(Error::invalid(
            "fd is invalid (negative / INVALID_SOCKET_FD)",
        ))
    } else {
        Ok(())
    }
}

fn interest(events: u32) -> Result<rt::Interest> {
    match (events & EVENT_READ != 0, events & EVENT_WRITE != 0) {
        (true, true) => Ok(rt::Interest::READABLE | rt::Interest::WRITABLE),
        (true, false) => Ok(rt::Interest::READABLE),
        (false, true) => Ok(rt::Interest::WRITABLE),
        (false, false) => Err(Error::invalid(
            "events must contain EVENT_READ or EVENT_WRITE",
        )),
    }
}

/// Readiness as `EVENT_*` flags, as the reference's epoll backend reported
/// it: a peer's FIN is readable (the read returns 0), a hang-up of both
/// directions is `EVENT_CLOSE`; only asked-for READ/WRITE are reported.
fn event_type(ready: rt::Readiness, mask: u32) -> u32 {
    let mut t = 0;
    if ready.is_readable() || ready.is_read_closed() {
        t |= EVENT_READ;
    }
    if ready.is_writable() {
        t |= EVENT_WRITE;
    }
    t &= mask;
    if ready.is_error() {
        t |= EVENT_ERROR;
    }
    if ready.is_read_closed() && ready.is_write_closed() {
        t |= EVENT_CLOSE;
    }
    t
}

#[cfg(unix)]
fn check_nonblocking(fd: socket_fd_t) -> Result<()> {
    // SAFETY: F_GETFL reads flags; a bad fd gives -1/EBADF.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if fl & libc::O_NONBLOCK == 0 {
        return Err(Error::invalid(
            "posted I/O needs a non-blocking fd (set O_NONBLOCK); readiness works on any",
        ));
    }
    Ok(())
}

#[cfg(windows)]
fn check_nonblocking(_fd: socket_fd_t) -> Result<()> {
    Ok(())
}

impl Loop {
    fn add(&mut self, fd: socket_fd_t, events: u32, context: *mut c_void) -> Result<()> {
        check_fd(fd)?;
        let interest = interest(events)?;
        self.rt
            .register(&source(fd), rt::Token(fd as u64), interest)?;
        // A number closed without remove and reused: the core replaced its
        // registration (and dropped its operations); so do we.
        if let Some(old) = self.fds.remove(&fd) {
            for op in old.ops {
                self.ops.remove(&op);
            }
        }
        self.fds.insert(
            fd,
            Fd {
                context,
                mask: events,
                read_buf: None,
                spare: None,
                ops: Vec::new(),
            },
        );
        Ok(())
    }

    fn modify(&mut self, fd: socket_fd_t, events: u32, context: *mut c_void) -> Result<()> {
        check_fd(fd)?;
        let interest = interest(events)?;
        let Some(entry) = self.fds.get_mut(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        self.rt
            .reregister(&source(fd), rt::Token(fd as u64), interest)?;
        entry.context = context;
        entry.mask = events;
        Ok(())
    }

    fn remove(&mut self, fd: socket_fd_t) -> Result<()> {
        check_fd(fd)?;
        let Some(entry) = self.fds.remove(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        for op in entry.ops {
            self.ops.remove(&op);
        }
        // Forgotten even if the OS complains (an fd closed before remove).
        self.rt.deregister(&source(fd))?;
        Ok(())
    }

    fn post_read(&mut self, fd: socket_fd_t, buf: *mut c_void, len: usize) -> Result<()> {
        check_fd(fd)?;
        if !buf.is_null() && len == 0 {
            return Err(Error::invalid(
                "a read into a caller's buffer needs len > 0",
            ));
        }
        let Some(entry) = self.fds.get_mut(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        check_nonblocking(fd)?;
        let size = match (buf.is_null(), len) {
            (true, 0) => UNILOOP_DEFAULT_READ_SIZE,
            (_, n) => n,
        };
        let reuse = if buf.is_null() {
            entry.read_buf.take()
        } else {
            entry.spare.take()
        };
        let vec = match reuse {
            Some(mut v) if v.capacity() == size => {
                v.clear();
                v
            }
            _ => Vec::with_capacity(size),
        };
        match self.rt.post_read(&source(fd), vec) {
            Ok(op) => {
                entry.ops.push(op);
                self.ops.insert(op, Op { fd, user: buf });
                Ok(())
            }
            Err(e) => {
                let (e, v) = e.into_parts();
                if buf.is_null() {
                    entry.read_buf = Some(v);
                }
                Err(e.into())
            }
        }
    }

    fn post_write(&mut self, fd: socket_fd_t, buf: *mut c_void, len: usize) -> Result<()> {
        check_fd(fd)?;
        if buf.is_null() && len != 0 {
            return Err(Error::invalid("buffer is NULL and len is not 0"));
        }
        let Some(entry) = self.fds.get_mut(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        check_nonblocking(fd)?;
        let data = if len == 0 {
            Vec::new()
        } else {
            // SAFETY: the caller passes `len` readable bytes at `buf`
            // (checked non-NULL above); they are copied before returning.
            unsafe { std::slice::from_raw_parts(buf as *const u8, len) }.to_vec()
        };
        let op = self
            .rt
            .post_write(&source(fd), data)
            .map_err(|e| Error::from(e.into_parts().0))?;
        entry.ops.push(op);
        self.ops.insert(op, Op { fd, user: buf });
        Ok(())
    }

    /// One wait, its events written to `out` (room for `max` events).
    fn wait(
        &mut self,
        out: *mut io_event_t,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        let cap = max.min(MAX_BATCH);
        if self.events.capacity() != cap {
            self.events = rt::Events::with_capacity(cap);
        }
        self.stats.waits += 1;
        self.rt.wait(&mut self.events, timeout)?;
        let mut n = 0;
        let events = std::mem::replace(&mut self.events, rt::Events::with_capacity(0));
        for ev in events.iter() {
            if let Some(e) = self.translate(ev) {
                // SAFETY: `out` has room for `max` events (the caller's
                // promise) and `n < events.len() <= cap <= max`.
                unsafe { out.add(n).write(e) };
                n += 1;
            }
        }
        self.events = events;
        self.stats.events += n as u64;
        Ok(n)
    }

    fn translate(&mut self, ev: &rt::Event) -> Option<io_event_t> {
        let mut e = io_event_t::zeroed();
        match *ev {
            rt::Event::Io { token, ready } => {
                let fd = token.0 as socket_fd_t;
                let entry = self.fds.get(&fd)?;
                e.event_type = event_type(ready, entry.mask);
                if e.event_type == 0 {
                    return None;
                }
                e.fd = fd;
                e.context = entry.context;
                self.stats.io_events += 1;
            }
            rt::Event::IoDone { op, .. } => {
                let Op { fd, user } = self.ops.remove(&op)?;
                let fin = self.rt.take_io(op)?;
                let entry = self.fds.get_mut(&fd)?;
                entry.ops.retain(|o| *o != op);
                e.fd = fd;
                e.context = entry.context;
                e.bytes_transferred = fin.bytes;
                e.event_type = match (fin.kind, fin.error.is_some(), fin.bytes) {
                    (_, true, _) => EVENT_ERROR,
                    (rt::OpKind::Read, false, 0) => EVENT_CLOSE,
                    (rt::OpKind::Read, false, _) => EVENT_READ,
                    (rt::OpKind::Write, false, _) => EVENT_WRITE,
                };
                e.buffer = match fin.kind {
                    rt::OpKind::Write => user,
                    rt::OpKind::Read if user.is_null() => {
                        let buf = entry.read_buf.insert(fin.buf);
                        buf.as_mut_ptr().cast()
                    }
                    rt::OpKind::Read => {
                        // SAFETY: the caller's buffer of the posted length
                        // stays valid until this event (the IOCP contract);
                        // `fin.bytes` is at most that length (the Vec had
                        // exactly that capacity).
                        unsafe {
                            ptr::copy_nonoverlapping(fin.buf.as_ptr(), user.cast(), fin.bytes)
                        };
                        entry.spare = Some(fin.buf);
                        user
                    }
                };
                self.stats.io_done += 1;
            }
            rt::Event::Completion { key, data } => {
                e.completion_key = key as usize;
                e.bytes_transferred = data as usize;
                e.event_type = EVENT_READ;
                self.stats.completions += 1;
            }
            rt::Event::Timer { key, id } => {
                let cid = id.as_u64().wrapping_add(1);
                if let Some(&(_, false)) = self.timers.get(&cid) {
                    self.timers.remove(&cid);
                }
                e.completion_key = key as usize;
                e.bytes_transferred = cid as usize;
                e.event_type = EVENT_READ | UNILOOP_EVENT_TIMER;
                self.stats.timer_events += 1;
            }
            // A wakeup ends the wait and is not an event (the reference's
            // epoll backend reported a fake completion with key 0).
            rt::Event::Wake => return None,
            _ => return None,
        }
        Some(e)
    }
}

fn make(backend: Option<rt::Backend>) -> Result<*mut async_runtime_t> {
    let mut b = rt::Runtime::builder()
        .blocking_sources(true)
        .return_on_signal(true);
    if let Some(backend) = backend {
        b = b.backend(backend);
    }
    let rt = b.build()?;
    let this = Box::new(async_runtime_s {
        poster: rt.poster(),
        posted: AtomicU64::new(0),
        inner: UnsafeCell::new(Loop {
            rt,
            events: rt::Events::with_capacity(64),
            fds: HashMap::new(),
            ops: HashMap::new(),
            timers: HashMap::new(),
            console_type: console_type_t::CONSOLE_TYPE_NONE,
            stats: uniloop_runtime_stats_t::default(),
        }),
    });
    let p = Box::into_raw(this);
    RUNTIMES.insert(p);
    Ok(p)
}

fn not_live() -> Error {
    Error::new(
        UNILOOP_ERR_CLOSED,
        "not a live runtime (deinitialised, or never returned by async_runtime_init)",
    )
}

/// The loop part of a live runtime.
fn with_loop<R>(rt: *mut async_runtime_t, f: impl FnOnce(&mut Loop) -> Result<R>) -> Result<R> {
    if rt.is_null() {
        return Err(Error::invalid("runtime is NULL"));
    }
    if !RUNTIMES.contains(rt) {
        return Err(not_live());
    }
    // SAFETY: `rt` is live, and only deinit (on this same, waiting thread)
    // frees it. The loop part is used only by the waiting thread, one call
    // at a time, so this is the only reference to it.
    let inner = unsafe { &mut *(*rt).inner.get() };
    f(inner)
}

/// The thread-safe part of a live runtime, kept alive while `f` runs.
fn with_poster<R>(
    rt: *mut async_runtime_t,
    f: impl FnOnce(&async_runtime_s) -> Result<R>,
) -> Result<R> {
    if rt.is_null() {
        return Err(Error::invalid("runtime is NULL"));
    }
    RUNTIMES
        // SAFETY: `with` runs this only while `rt` is live, and deinit
        // waits for it to return before freeing; only `Sync` fields are
        // touched.
        .with(rt, || f(unsafe { &*rt }))
        .unwrap_or_else(|| Err(not_live()))
}

/// A thread-safe poster for other modules (the console worker).
pub(crate) fn poster_of(rt: *mut async_runtime_t) -> Result<rt::Poster> {
    with_poster(rt, |r| Ok(r.poster.clone()))
}

/// A closure posting `(key, 0)` to the runtime behind `rt`, for the
/// queue's `SIGNAL_ON_DATA` (capi-b's queue.rs). It returns false once the
/// runtime is gone (deinit), never touching freed memory.
#[allow(dead_code)] // used by capi-b's queue.rs after the merge
pub(crate) fn poster_for(
    rt: *mut async_runtime_t,
    key: usize,
) -> Result<Box<dyn Fn() -> bool + Send + Sync>> {
    let poster = poster_of(rt)?;
    Ok(Box::new(move || poster.post(key as u64, 0).is_ok()))
}

/// A closure posting `(key, data)` to the runtime behind `rt`, for the
/// worker pool (capi-b's pool.rs); false once the runtime is gone.
#[allow(dead_code)] // used by capi-b's pool.rs after the merge
pub(crate) fn completion_sink(
    rt: *mut async_runtime_t,
) -> Result<std::sync::Arc<dyn Fn(usize, usize) -> bool + Send + Sync>> {
    let poster = poster_of(rt)?;
    Ok(std::sync::Arc::new(move |key, data| {
        poster.post(key as u64, data as u64).is_ok()
    }))
}

/// Creates a runtime on the platform's best backend (epoll, kqueue, IOCP).
/// NULL on failure.
#[no_mangle]
pub extern "C" fn async_runtime_init() -> *mut async_runtime_t {
    guard(ptr::null_mut(), || make(None))
}

/// uniloop: creates a runtime on a named backend: "epoll", "poll",
/// "kqueue", "iocp", or NULL for the default. NULL on failure
/// (`UNILOOP_ERR_INVALID` for an unknown name, `UNILOOP_ERR_UNSUPPORTED`
/// for one this platform lacks).
///
/// # Safety
///
/// `backend` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn uniloop_runtime_init_backend(
    backend: *const c_char,
) -> *mut async_runtime_t {
    guard(ptr::null_mut(), || {
        if backend.is_null() {
            return make(None);
        }
        // SAFETY: the caller passes a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(backend) }.to_string_lossy();
        let b = match &*name {
            "epoll" => rt::Backend::Epoll,
            "poll" => rt::Backend::Poll,
            "kqueue" => rt::Backend::Kqueue,
            "iocp" => rt::Backend::Iocp,
            other => return Err(Error::invalid(format!("unknown backend {other:?}"))),
        };
        make(Some(b))
    })
}

/// uniloop: the name of the runtime's backend ("epoll", "poll", "kqueue",
/// "iocp"); NULL for a bad handle.
#[no_mangle]
pub extern "C" fn uniloop_runtime_backend(rt: *mut async_runtime_t) -> *const c_char {
    guard(ptr::null(), || {
        with_loop(rt, |l| {
            let s: &'static [u8] = match l.rt.backend() {
                rt::Backend::Epoll => b"epoll\0",
                rt::Backend::Poll => b"poll\0",
                rt::Backend::Kqueue => b"kqueue\0",
                rt::Backend::Iocp => b"iocp\0",
            };
            Ok(s.as_ptr().cast())
        })
    })
}

/// Destroys a runtime: registered fds are forgotten (not closed), posted
/// operations and timers dropped. Afterwards wakeup/post_completion from
/// other threads return -1 with `UNILOOP_ERR_CLOSED`; a second deinit does
/// nothing (and records `UNILOOP_ERR_CLOSED`). Call it on the thread that
/// waits, not while a wait is running.
#[no_mangle]
pub extern "C" fn async_runtime_deinit(rt: *mut async_runtime_t) {
    guard((), || {
        if rt.is_null() {
            return Err(Error::invalid("runtime is NULL"));
        }
        if !RUNTIMES.remove(rt) {
            return Err(not_live());
        }
        // SAFETY: made by Box::into_raw in `make`; just taken out of the
        // live set, so no other call can reach it any more, and posts that
        // were in progress finished before `remove` got the write lock.
        drop(unsafe { Box::from_raw(rt) });
        Ok(())
    })
}

/// Registers `fd` for readiness (`EVENT_READ` and/or `EVENT_WRITE`,
/// level-triggered) with `context` returned in its events. The fd is
/// borrowed: keep it open until `async_runtime_remove`. 0, or -1
/// (`UNILOOP_ERR_EXISTS` if registered, the OS error for a bad fd,
/// `UNILOOP_ERR_INVALID` if `events` has neither flag).
#[no_mangle]
pub extern "C" fn async_runtime_add(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    events: u32,
    context: *mut c_void,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| l.add(fd, events, context)).map(|()| 0)
    })
}

/// Changes a registered fd's events and context. 0, or -1
/// (`UNILOOP_ERR_NOT_FOUND` if not registered).
#[no_mangle]
pub extern "C" fn async_runtime_modify(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    events: u32,
    context: *mut c_void,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| l.modify(fd, events, context)).map(|()| 0)
    })
}

/// Unregisters `fd` and cancels its posted reads and writes: no event for
/// it comes from a wait after this returns, and the runtime's read buffer
/// for it is freed. 0, or -1 (`UNILOOP_ERR_NOT_FOUND`; or the OS error for
/// an fd closed before its removal — it is forgotten all the same).
#[no_mangle]
pub extern "C" fn async_runtime_remove(rt: *mut async_runtime_t, fd: socket_fd_t) -> c_int {
    guard(-1, || with_loop(rt, |l| l.remove(fd)).map(|()| 0))
}

/// Makes a blocked (or the next) `async_runtime_wait` return. Produces no
/// event. Any thread. 0, or -1 (`UNILOOP_ERR_CLOSED` after deinit). Not
/// async-signal-safe.
#[no_mangle]
pub extern "C" fn async_runtime_wakeup(rt: *mut async_runtime_t) -> c_int {
    guard(-1, || {
        with_poster(rt, |r| {
            r.poster
                .wake()
                .map_err(|_| Error::new(UNILOOP_ERR_CLOSED, "the runtime is closed"))
        })
        .map(|()| 0)
    })
}

/// Waits for events and writes up to `max_events` of them to `events`.
/// `timeout` NULL blocks, `{0, 0}` polls (negative fields count as 0).
/// Returns the count (0 on timeout, after a wakeup, or when a signal
/// interrupted the wait), or -1. Whatever did not fit comes with the next
/// call. Call it from one thread only.
///
/// # Safety
///
/// `events` has room for `max_events` entries; `timeout` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn async_runtime_wait(
    rt: *mut async_runtime_t,
    events: *mut io_event_t,
    max_events: c_int,
    timeout: *mut timeval,
) -> c_int {
    guard(-1, || {
        if events.is_null() {
            return Err(Error::invalid("events is NULL"));
        }
        if max_events <= 0 {
            return Err(Error::invalid("max_events must be > 0"));
        }
        let timeout = if timeout.is_null() {
            None
        } else {
            // SAFETY: the caller passes NULL or a valid timeval.
            let tv = unsafe { *timeout };
            // time_t/suseconds_t (or winsock's longs) are wider on some
            // platforms than others: the conversion is only useless on some.
            #[allow(clippy::useless_conversion)]
            let (secs, micros) = (
                i64::from(tv.tv_sec).max(0) as u64,
                i64::from(tv.tv_usec).max(0) as u64,
            );
            Some(Duration::from_secs(secs) + Duration::from_micros(micros))
        };
        with_loop(rt, |l| l.wait(events, max_events as usize, timeout)).map(|n| n as c_int)
    })
}

/// Posts a completion: one event with `completion_key` = `key`,
/// `bytes_transferred` = `data` (both full width), `event_type`
/// `EVENT_READ`. Never merged, never dropped, FIFO per posting thread;
/// never blocks. Any thread. 0, or -1 (`UNILOOP_ERR_CLOSED` after deinit).
#[no_mangle]
pub extern "C" fn async_runtime_post_completion(
    rt: *mut async_runtime_t,
    completion_key: UintPtr,
    data: UintPtr,
) -> c_int {
    guard(-1, || {
        with_poster(rt, |r| {
            r.poster
                .post(completion_key as u64, data as u64)
                .map_err(|_| Error::new(UNILOOP_ERR_CLOSED, "the runtime is closed"))?;
            r.posted.fetch_add(1, Relaxed);
            Ok(0)
        })
    })
}

/// Posts a read on a registered, non-blocking fd. One event follows:
/// `EVENT_READ` with `bytes_transferred` > 0 and `buffer` the data,
/// `EVENT_CLOSE` with 0 bytes at end of stream, or `EVENT_ERROR`. While it
/// is posted no readiness `EVENT_READ` is reported for the fd. `buffer`
/// NULL: the runtime reads into its own buffer of `len` bytes
/// (`UNILOOP_DEFAULT_READ_SIZE` if `len` is 0), valid until the next
/// post_read on the fd or its removal. Otherwise `buffer` (`len` > 0
/// bytes) must stay valid until the event. One read at a time per fd
/// (`UNILOOP_ERR_EXISTS`). 0, or -1.
#[no_mangle]
pub extern "C" fn async_runtime_post_read(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    buffer: *mut c_void,
    len: usize,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| l.post_read(fd, buffer, len)).map(|()| 0)
    })
}

/// Posts a write of `len` bytes (copied before this returns) on a
/// registered, non-blocking fd. One event follows when all of it is out:
/// `EVENT_WRITE` with `bytes_transferred` = `len` and `buffer` the pointer
/// given, or `EVENT_ERROR` with how much went out. Writes on an fd go out
/// in order. 0, or -1 (`UNILOOP_ERR_FULL` past the fd's 1 MiB of queued
/// output).
#[no_mangle]
pub extern "C" fn async_runtime_post_write(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    buffer: *mut c_void,
    len: usize,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| l.post_write(fd, buffer, len)).map(|()| 0)
    })
}

/// Detects what stdin is (`console_detect_type`) and remembers it for
/// `async_runtime_get_console_type`; `context` is unused. Nothing is
/// registered: console input comes through `console_worker_init`. 0, or -1.
#[no_mangle]
pub extern "C" fn async_runtime_add_console(
    rt: *mut async_runtime_t,
    context: *mut c_void,
) -> c_int {
    let _ = context;
    guard(-1, || {
        with_loop(rt, |l| {
            l.console_type = crate::console::detect();
            Ok(0)
        })
    })
}

/// The console type `async_runtime_add_console` detected
/// (`CONSOLE_TYPE_NONE` before it, and for a bad handle).
#[no_mangle]
pub extern "C" fn async_runtime_get_console_type(rt: *mut async_runtime_t) -> console_type_t {
    guard(console_type_t::CONSOLE_TYPE_NONE, || {
        with_loop(rt, |l| Ok(l.console_type))
    })
}

/// The reference returned its eventfd, which workers could write to. Not
/// available: returns -1 (`UNILOOP_ERR_UNSUPPORTED`); post completions
/// with `async_runtime_post_completion`.
#[cfg(not(windows))]
#[no_mangle]
pub extern "C" fn async_runtime_get_event_loop_handle(rt: *mut async_runtime_t) -> c_int {
    guard(-1, || {
        with_loop(rt, |_| {
            Err(Error::new(
                UNILOOP_ERR_UNSUPPORTED,
                "the loop's notification handle is internal: use async_runtime_post_completion",
            ))
        })
    })
}

/// The reference returned its IOCP handle. Not available: returns NULL
/// (`UNILOOP_ERR_UNSUPPORTED`); use `async_runtime_post_completion`.
#[cfg(windows)]
#[no_mangle]
pub extern "C" fn async_runtime_get_iocp(rt: *mut async_runtime_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        with_loop(rt, |_| {
            Err(Error::new(
                UNILOOP_ERR_UNSUPPORTED,
                "the IOCP handle is internal: use async_runtime_post_completion",
            ))
        })
    })
}

/// Windows, reference: the event handle of a piped stdin. Not available:
/// NULL (`UNILOOP_ERR_UNSUPPORTED`); console input comes through the
/// console worker.
#[cfg(windows)]
#[no_mangle]
pub extern "C" fn async_runtime_get_console_event(rt: *mut async_runtime_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        with_loop(rt, |_| {
            Err(Error::new(
                UNILOOP_ERR_UNSUPPORTED,
                "use console_worker_init",
            ))
        })
    })
}

/// Windows, reference: the IOCP context of a piped stdin. Not available:
/// NULL (`UNILOOP_ERR_UNSUPPORTED`); use the console worker.
#[cfg(windows)]
#[no_mangle]
pub extern "C" fn async_runtime_get_console_ctx(rt: *mut async_runtime_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        with_loop(rt, |_| {
            Err(Error::new(
                UNILOOP_ERR_UNSUPPORTED,
                "use console_worker_init",
            ))
        })
    })
}

/// uniloop: starts a timer. After `delay_ms`, and then every `period_ms`
/// if it is not 0, a wait returns an event with `completion_key` = `key`,
/// `event_type` = `EVENT_READ | UNILOOP_EVENT_TIMER`, `bytes_transferred`
/// = the id returned here, `fd` `INVALID_SOCKET_FD`. Runs in the loop (no
/// thread). Returns the id (never 0), or 0 on failure.
#[no_mangle]
pub extern "C" fn uniloop_timer_add(
    rt: *mut async_runtime_t,
    key: UintPtr,
    delay_ms: u64,
    period_ms: u64,
) -> u64 {
    guard(0, || {
        with_loop(rt, |l| {
            let period = (period_ms > 0).then(|| Duration::from_millis(period_ms));
            let id =
                l.rt.add_timer(key as u64, Duration::from_millis(delay_ms), period);
            let cid = id.as_u64().wrapping_add(1);
            l.timers.insert(cid, (id, period.is_some()));
            Ok(cid)
        })
    })
}

/// uniloop: cancels a timer; no wait reports it afterwards. 0, or -1
/// (`UNILOOP_ERR_NOT_FOUND` for a fired one-shot, cancelled or unknown id).
#[no_mangle]
pub extern "C" fn uniloop_timer_cancel(rt: *mut async_runtime_t, id: u64) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| match l.timers.remove(&id) {
            Some((tid, _)) if l.rt.cancel_timer(tid) => Ok(0),
            _ => Err(Error::new(UNILOOP_ERR_NOT_FOUND, "no such timer")),
        })
    })
}

/// uniloop: restarts a pending timer to fire `delay_ms` from now, keeping
/// its id. 0, or -1 (`UNILOOP_ERR_NOT_FOUND`).
#[no_mangle]
pub extern "C" fn uniloop_timer_reset(rt: *mut async_runtime_t, id: u64, delay_ms: u64) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| match l.timers.get(&id) {
            Some(&(tid, _)) if l.rt.reset_timer(tid, Duration::from_millis(delay_ms)) => Ok(0),
            _ => Err(Error::new(UNILOOP_ERR_NOT_FOUND, "no such timer")),
        })
    })
}

/// uniloop: fills `*stats`. 0, or -1.
///
/// # Safety
///
/// `stats` is NULL or points to writable memory for one struct.
#[no_mangle]
pub unsafe extern "C" fn uniloop_runtime_get_stats(
    rt: *mut async_runtime_t,
    stats: *mut uniloop_runtime_stats_t,
) -> c_int {
    guard(-1, || {
        if stats.is_null() {
            return Err(Error::invalid("stats is NULL"));
        }
        let posted = with_poster(rt, |r| Ok(r.posted.load(Relaxed)))?;
        with_loop(rt, |l| {
            let mut s = l.stats;
            s.registered = l.fds.len();
            s.timers = l.rt.timers();
            s.pending_ops = l.ops.len();
            s.posted = posted;
            // SAFETY: checked non-NULL; the caller's memory for one struct.
            unsafe { stats.write(s) };
            Ok(0)
        })
    })
}
