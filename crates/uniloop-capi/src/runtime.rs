//! `async_runtime_*`: the reference's event loop on [`rt::Runtime`], plus
//! the `uniloop_timer_*` and `uniloop_runtime_*` extras.
//!
//! An `async_runtime_t` holds two parts. The loop part (the Rust runtime,
//! the fd table, posted operations, timers) is for the thread that calls
//! `async_runtime_wait`, as in the reference; it sits behind a lock that is
//! only ever tried (`slot.rs`), so a call from a second thread while one is in
//! progress (an `add` during another thread's `wait`) fails with
//! `UNILOOP_ERR_INVALID` instead of racing. The other part is a
//! [`rt::Poster`], which is `Send + Sync`: `async_runtime_wakeup` and
//! `async_runtime_post_completion` use only it, so any thread may call
//! them at any time.
//!
//! After `async_runtime_deinit`, those two return -1 with
//! `UNILOOP_ERR_CLOSED` instead of touching freed memory: a handle's
//! memory is never freed (deinit empties it, waiting for posts in
//! progress, and a later init reuses it), so every call can look at it and
//! find it closed; a second deinit is harmless. A pointer that init never
//! returned is told apart by a lookup in the list of handles, made once per
//! thread and handle.

// The exported items are `pub` for cbindgen and reached through the C
// symbol table, not through Rust paths; their names are the reference's.
#![allow(unreachable_pub, non_camel_case_types)]

use std::cell::Cell;
use std::collections::BTreeSet;
use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use crate::error::{guard, Error, Result};
use crate::types::*;
use crate::uniloop_error_t::*;

mod extras;
mod fdmap;
mod slot;
mod state;

pub use self::extras::*;
use self::slot::Slot;
use self::state::Loop;

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
//
// A handle is never freed: deinit empties it and keeps it for a later init
// to reuse. So a handle once returned by init stays valid memory forever,
// and checking that a call's handle is live costs a lock (uncontended: an
// atomic swap) on the handle itself. Telling a handle from an arbitrary
// pointer looks the pointer up in the list of handles ever made, once per
// thread and handle (`handle`).
pub struct async_runtime_s {
    /// The thread-safe part; `None` once deinitialised. Posts in progress
    /// hold the read lock, so deinit's write lock waits for them.
    shared: RwLock<Option<Shared>>,
    /// The loop part; `None` once deinitialised. Used by one thread at a
    /// time, the one that waits (see the module docs); `try_hold` turns a
    /// second thread's call into an error.
    inner: Slot<Option<Loop>>,
}

/// What any thread may use.
struct Shared {
    poster: rt::Poster,
    posted: AtomicU64,
}

/// The reference's name for the runtime handle.
#[allow(non_camel_case_types)]
pub type async_runtime_t = async_runtime_s;

/// Every handle ever made, and the ones deinitialised and free for reuse.
struct Handles {
    all: BTreeSet<usize>,
    /// Addresses: the loop part is not `Send` (it holds the caller's
    /// context pointers), and only the thread of an init touches it.
    free: Vec<usize>,
}

static HANDLES: Mutex<Handles> = Mutex::new(Handles {
    all: BTreeSet::new(),
    free: Vec::new(),
});

thread_local! {
    /// The handle this thread last found in `HANDLES.all`: a handle stays
    /// a handle forever, so the cached answer never goes stale.
    static KNOWN: Cell<usize> = const { Cell::new(0) };
}

fn handles() -> std::sync::MutexGuard<'static, Handles> {
    // Nothing panics while holding the lock; a poisoned list is intact.
    HANDLES.lock().unwrap_or_else(|e| e.into_inner())
}

/// `rt` as a handle made by init (live or not).
#[inline]
fn handle(rt: *mut async_runtime_t) -> Result<&'static async_runtime_s> {
    let p = rt as usize;
    if KNOWN.get() != p || p == 0 {
        look_up(p)?;
    }
    // SAFETY: `p` was made by `make` (leaked, never freed).
    Ok(unsafe { &*rt })
}

/// [`handle`] for a pointer this thread has not seen last: one look in
/// the list of handles, remembered.
#[cold]
fn look_up(p: usize) -> Result<()> {
    if p == 0 {
        return Err(Error::invalid("runtime is NULL"));
    }
    if !handles().all.contains(&p) {
        return Err(not_live());
    }
    KNOWN.set(p);
    Ok(())
}

fn make(backend: Option<rt::Backend>) -> Result<*mut async_runtime_t> {
    let mut b = rt::Runtime::builder()
        .blocking_sources(true)
        .return_on_signal(true);
    if let Some(backend) = backend {
        b = b.backend(backend);
    }
    let rt = b.build()?;
    let shared = Shared {
        poster: rt.poster(),
        posted: AtomicU64::new(0),
    };
    let reused = handles().free.pop();
    let h: &'static async_runtime_s = match reused {
        Some(p) => {
            // SAFETY: `p` was made by `make` (leaked, never freed).
            let h: &'static async_runtime_s = unsafe { &*(p as *const async_runtime_s) };
            *h.inner.hold() = Some(Loop::new(rt));
            *h.shared.write().unwrap_or_else(|e| e.into_inner()) = Some(shared);
            h
        }
        None => {
            let h: &'static async_runtime_s = Box::leak(Box::new(async_runtime_s {
                shared: RwLock::new(Some(shared)),
                inner: Slot::new(Some(Loop::new(rt))),
            }));
            handles().all.insert(h as *const async_runtime_s as usize);
            h
        }
    };
    Ok((h as *const async_runtime_s).cast_mut())
}

#[cold]
fn not_live() -> Error {
    Error::new(
        UNILOOP_ERR_CLOSED,
        "not a live runtime (deinitialised, or never returned by async_runtime_init)",
    )
}

#[cold]
fn in_use() -> Error {
    Error::invalid(
        "the runtime is in use by another thread: call its loop \
         functions (all but wakeup and post_completion) from one thread",
    )
}

/// The loop part of a live runtime.
#[inline]
fn with_loop<R>(rt: *mut async_runtime_t, f: impl FnOnce(&mut Loop) -> Result<R>) -> Result<R> {
    let Some(mut held) = handle(rt)?.inner.try_hold() else {
        return Err(in_use());
    };
    match held.as_mut() {
        Some(l) => f(l),
        None => Err(not_live()),
    }
}

/// The thread-safe part of a live runtime, kept alive while `f` runs.
fn with_poster<R>(rt: *mut async_runtime_t, f: impl FnOnce(&Shared) -> Result<R>) -> Result<R> {
    let shared = handle(rt)?.shared.read().unwrap_or_else(|e| e.into_inner());
    match shared.as_ref() {
        Some(s) => f(s),
        None => Err(not_live()),
    }
}

/// A thread-safe poster for other modules (the console worker).
pub(crate) fn poster_of(rt: *mut async_runtime_t) -> Result<rt::Poster> {
    with_poster(rt, |r| Ok(r.poster.clone()))
}

/// A closure posting `(key, 0)` to the runtime behind `rt`, for the
/// queue's `SIGNAL_ON_DATA` (`queue.rs`). It returns false once the
/// runtime is gone (deinit), never touching freed memory.
pub(crate) fn poster_for(
    rt: *mut async_runtime_t,
    key: usize,
) -> Result<Box<dyn Fn() -> bool + Send + Sync>> {
    let poster = poster_of(rt)?;
    Ok(Box::new(move || poster.post(key as u64, 0).is_ok()))
}

/// A closure posting `(key, data)` to the runtime behind `rt`, for the
/// worker pool (`pool.rs`); false once the runtime is gone.
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
        let h = handle(rt)?;
        let Some(mut inner) = h.inner.try_hold() else {
            return Err(Error::invalid(
                "the runtime is in use by another thread (a wait?): not freed",
            ));
        };
        let Some(l) = inner.take() else {
            return Err(not_live());
        };
        // Waits for posts in progress; later ones find the handle closed.
        *h.shared.write().unwrap_or_else(|e| e.into_inner()) = None;
        drop(l);
        drop(inner);
        handles().free.push(h as *const async_runtime_s as usize);
        Ok(())
    })
}

/// Registers `fd` for readiness (`EVENT_READ` and/or `EVENT_WRITE`,
/// level-triggered) with `context` returned in its events. `events` 0
/// registers it with no readiness interest: no readiness event is
/// reported for it (posted reads and writes on it work, and their events
/// come), until `async_runtime_modify` asks for some — the IOCP idiom of
/// adding a socket only to post reads on it. The fd is borrowed: keep it
/// open until `async_runtime_remove`. 0, or -1 (`UNILOOP_ERR_EXISTS` if
/// registered, the OS error for a bad fd).
#[no_mangle]
pub extern "C" fn async_runtime_add(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    events: u32,
    context: *mut c_void,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| l.add(fd, events, context).and_then(|()| l.rearm())).map(|_| 0)
    })
}

/// Changes a registered fd's events and context. `events` 0 pauses its
/// readiness (back-pressure) and keeps the registration and its posted
/// operations; a later modify with `EVENT_READ`/`EVENT_WRITE` resumes it
/// (level-triggered: what is pending is reported at once). A modify to
/// the interest already set makes no system call. 0, or -1
/// (`UNILOOP_ERR_NOT_FOUND` if not registered).
#[no_mangle]
pub extern "C" fn async_runtime_modify(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    events: u32,
    context: *mut c_void,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            l.modify(fd, events, context).and_then(|()| l.rearm())
        })
        .map(|_| 0)
    })
}

/// Unregisters `fd` and cancels its posted operations (reads, writes,
/// accepts, connects): no event for it comes from a wait after this
/// returns, the runtime's read buffer for it is freed, and a connection
/// an accept had taken but no wait returned yet is closed. 0, or -1
/// (`UNILOOP_ERR_NOT_FOUND`; or the OS error for an fd closed before its
/// removal — it is forgotten all the same).
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
/// call (nothing is dropped). Call it from one thread only. Order and
/// fairness of a batch, and events of things removed within it: see the
/// top of this header (free an fd's state at the end of the batch, not
/// while handling its events).
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
        with_loop(rt, |l| {
            let n = l.wait(events, max_events as usize, timeout)?;
            l.rearm()?;
            Ok(n as c_int)
        })
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
            if completion_key as u64 == state::SIGNAL_KEY {
                return Err(Error::invalid(
                    "completion_key UINTPTR_MAX is reserved (signal events)",
                ));
            }
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
/// bytes) must stay valid until the event. One read at a time per fd:
/// until a wait has returned its event, a second post_read fails with
/// `UNILOOP_ERR_EXISTS`, even when the first finished at once. The fd's
/// `O_NONBLOCK` is checked at every post (`UNILOOP_ERR_INVALID` without
/// it). The runtime reads
/// through the fd number inside later calls: keep the fd open (its number
/// not reused) until the event has been returned by a wait or the fd
/// removed (`async_runtime_remove`), as `async_runtime_add` asks. 0, or
/// -1.
#[no_mangle]
pub extern "C" fn async_runtime_post_read(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    buffer: *mut c_void,
    len: usize,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            l.post_read(fd, buffer, len).and_then(|()| l.rearm())
        })
        .map(|_| 0)
    })
}

/// Posts a write of `len` bytes (copied before this returns) on a
/// registered, non-blocking fd. One event follows when all of it is out:
/// `EVENT_WRITE` with `bytes_transferred` = `len` and `buffer` the pointer
/// given, or `EVENT_ERROR` with how much went out. Writes on an fd go out
/// in order; `O_NONBLOCK` is checked as for `async_runtime_post_read`.
/// 0, or -1 (`UNILOOP_ERR_FULL` past the fd's write limit:
/// 1 MiB of queued output unless set with `uniloop_runtime_set_write_limit`;
/// a write on an fd with nothing queued is always taken). Each write costs
/// a copy of its bytes plus a small record until its event; many small
/// writes on one fd go out gathered. The runtime writes through the fd
/// number inside later calls: keep the fd open (its number not reused)
/// until the event has been returned by a wait or the fd removed
/// (`async_runtime_remove`); closed earlier, the bytes can reach whatever
/// file gets the number.
#[no_mangle]
pub extern "C" fn async_runtime_post_write(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    buffer: *const c_void,
    len: usize,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            l.post_write(fd, buffer, len, false)
                .and_then(|()| l.rearm())
        })
        .map(|_| 0)
    })
}

/// `struct sockaddr`: declared by uniloop.h, defined by the system's
/// socket header (`<sys/socket.h>`, `<winsock2.h>`). Read as bytes only.
#[repr(C)]
pub struct sockaddr {
    _bytes: [u8; 0],
}

/// uniloop: posts an accept on a registered, listening, non-blocking
/// socket: a server can then run on completions alone (register the
/// listener with `events` 0). One event follows: `EVENT_READ |
/// UNILOOP_EVENT_ACCEPT` with the new connection's fd in
/// `bytes_transferred` (`(socket_fd_t)ev.bytes_transferred`: non-blocking,
/// not registered, yours to add or close; `getpeername` gives its peer),
/// or `EVENT_ERROR | UNILOOP_EVENT_ACCEPT` with the OS error in
/// `completion_key` (`EMFILE` when out of descriptors: the connection
/// waits in the backlog, post again once some are free). `fd` and
/// `context` are the listener's. Post the next accept from the event; a
/// connection that died before it was accepted is skipped. One accept at
/// a time per listener (`UNILOOP_ERR_EXISTS`; a read there counts too);
/// while it is posted no readiness `EVENT_READ` is reported for the
/// listener. `async_runtime_remove` cancels it (no event then; a
/// connection it had already taken is closed), and must come before the
/// listener is closed. 0, or -1: `UNILOOP_ERR_NOT_FOUND` if not
/// registered, `UNILOOP_ERR_INVALID` for a socket without `O_NONBLOCK`
/// (checked at every post) or one that is not listening (no `listen`),
/// the OS error for a bad fd or a non-socket.
#[no_mangle]
pub extern "C" fn uniloop_runtime_post_accept(rt: *mut async_runtime_t, fd: socket_fd_t) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| l.post_accept(fd).and_then(|()| l.rearm())).map(|_| 0)
    })
}

/// uniloop: posts a connect of a registered, non-blocking TCP socket to
/// `addr` (a `struct sockaddr_in` or `sockaddr_in6` of `addrlen` bytes,
/// read before this returns). One event follows: `EVENT_WRITE |
/// UNILOOP_EVENT_CONNECT` once connected (post reads and writes on it
/// from then on), or `EVENT_ERROR | UNILOOP_EVENT_CONNECT` with the OS
/// error in `completion_key` (`ECONNREFUSED` for a closed port;
/// `WSAECONNREFUSED` on Windows). While it is posted the socket's
/// writability, hang-up and error are its own (no readiness event reports
/// them). `async_runtime_remove` cancels it (no event then). 0, or -1:
/// `UNILOOP_ERR_INVALID` for a NULL `addr`, a family other than `AF_INET`
/// / `AF_INET6`, an `addrlen` too short for it, or a socket without
/// `O_NONBLOCK`; `UNILOOP_ERR_NOT_FOUND` if not registered;
/// `UNILOOP_ERR_EXISTS` if a connect is already posted on it.
///
/// # Safety
///
/// `addr` is NULL or points to `addrlen` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn uniloop_runtime_post_connect(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    addr: *const sockaddr,
    addrlen: usize,
) -> c_int {
    guard(-1, || {
        // SAFETY: the caller's promise, passed on.
        let addr = unsafe { socket_addr(addr, addrlen) }?;
        with_loop(rt, |l| l.post_connect(fd, addr).and_then(|()| l.rearm())).map(|_| 0)
    })
}

/// The caller's `struct sockaddr` as an IPv4 or IPv6 address.
///
/// # Safety
///
/// `addr` is NULL or points to `len` readable bytes.
unsafe fn socket_addr(addr: *const sockaddr, len: usize) -> Result<std::net::SocketAddr> {
    if addr.is_null() {
        return Err(Error::invalid("addr is NULL"));
    }
    let bad_len = || {
        Error::invalid(format!(
            "addrlen {len} is too short for the address's family (sizeof(struct sockaddr_in) or sockaddr_in6)"
        ))
    };
    let storage = socket2::SockAddrStorage::zeroed();
    if len < 2 || len > storage.size_of() as usize {
        return Err(bad_len());
    }
    // SAFETY: `init` copies `len` bytes, at most the storage's size
    // (checked above), from the caller's `len` readable bytes.
    let ((), sa) = unsafe {
        socket2::SockAddr::try_init(|st, sl| {
            ptr::copy_nonoverlapping(addr.cast::<u8>(), st.cast::<u8>(), len);
            *sl = len as socket2::socklen_t;
            Ok(())
        })
    }?;
    let Some(socket) = sa.as_socket() else {
        return Err(Error::invalid(
            "addr is not an AF_INET or AF_INET6 address (sa_family)",
        ));
    };
    // The family's full size: a shorter `addrlen` left part of it unread.
    if len < socket2::SockAddr::from(socket).len() as usize {
        return Err(bad_len());
    }
    Ok(socket)
}

/// `async_runtime_add_console`'s part: remembers `kind` for
/// `async_runtime_get_console_type`.
pub(crate) fn set_console_type(rt: *mut async_runtime_t, kind: console_type_t) -> Result<()> {
    with_loop(rt, |l| {
        l.console_type = kind;
        Ok(())
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

/// For the reference functions that hand out an internal handle: checks
/// `rt` (a bad handle is still `UNILOOP_ERR_INVALID`/`_CLOSED`), then fails
/// with `UNILOOP_ERR_UNSUPPORTED` and `why`.
#[cfg_attr(not(windows), allow(dead_code))]
fn unsupported<R>(rt: *mut async_runtime_t, fail: R, why: &'static str) -> R {
    guard(fail, || {
        with_loop(rt, |_| Err(Error::new(UNILOOP_ERR_UNSUPPORTED, why)))
    })
}

/// The descriptor the runtime's wait blocks on, for nesting this loop in
/// another one (as libuv's `uv_backend_fd`): the epoll, kqueue or
/// io_uring fd. From this call on it is readable whenever
/// `async_runtime_wait` would return something other than a timer
/// expiry: readiness, a finished posted read or write, a completion, a
/// wakeup (the runtime re-arms it after each of its calls). Timers are
/// not signalled on it: block at most `uniloop_runtime_backend_timeout(rt)`
/// milliseconds. Only wait for it to be readable (poll, select, your
/// epoll); never read, register in or close it, and call the loop's
/// functions from one thread as always. -1 with `UNILOOP_ERR_UNSUPPORTED`
/// on the poll backend, which has no single descriptor (it polls a set of
/// fds); post completions with `async_runtime_post_completion`, never by
/// writing to the descriptor (the reference's eventfd).
#[cfg(not(windows))]
#[no_mangle]
pub extern "C" fn async_runtime_get_event_loop_handle(rt: *mut async_runtime_t) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| match l.rt.os_handle() {
            None => Err(Error::new(
                UNILOOP_ERR_UNSUPPORTED,
                "the poll backend has no single descriptor to wait on (use epoll, kqueue or uring)",
            )),
            Some(fd) => {
                l.external = true;
                l.rearm()?;
                Ok(fd as c_int)
            }
        })
    })
}

/// The runtime's I/O completion port (the reference's `get_iocp`). The
/// port is the runtime's: do not dequeue from it
/// (`GetQueuedCompletionStatus` would take the runtime's packets), post to
/// it or close it; post completions with `async_runtime_post_completion`.
/// NULL for a bad handle.
#[cfg(windows)]
#[no_mangle]
pub extern "C" fn async_runtime_get_iocp(rt: *mut async_runtime_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        with_loop(rt, |l| {
            l.rt.os_handle()
                .ok_or_else(|| Error::new(UNILOOP_ERR_UNSUPPORTED, "no completion port"))
        })
    })
}

/// Windows, reference: the event handle of a piped stdin. Not available:
/// NULL (`UNILOOP_ERR_UNSUPPORTED`); console input comes through the
/// console worker.
#[cfg(windows)]
#[no_mangle]
pub extern "C" fn async_runtime_get_console_event(rt: *mut async_runtime_t) -> *mut c_void {
    unsupported(rt, ptr::null_mut(), "use console_worker_init")
}

/// Windows, reference: the IOCP context of a piped stdin. Not available:
/// NULL (`UNILOOP_ERR_UNSUPPORTED`); use the console worker.
#[cfg(windows)]
#[no_mangle]
pub extern "C" fn async_runtime_get_console_ctx(rt: *mut async_runtime_t) -> *mut c_void {
    unsupported(rt, ptr::null_mut(), "use console_worker_init")
}
