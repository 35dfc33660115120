//! uniloop's extras on a runtime: choosing the backend, timers,
//! statistics.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;
use std::time::Duration;

use super::{async_runtime_t, make, state, with_loop, with_poster};
use crate::error::{guard, Error};
use crate::types::{socket_fd_t, UintPtr};
use crate::uniloop_error_t::*;

/// Runtime statistics, from `uniloop_runtime_get_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(non_camel_case_types)]
pub struct uniloop_runtime_stats_t {
    /// Registered fds.
    pub registered: usize,
    /// Pending timers.
    pub timers: usize,
    /// Posted operations (reads, writes, accepts, connects) not yet
    /// returned by a wait.
    pub pending_ops: usize,
    /// Calls to `async_runtime_wait`.
    pub waits: u64,
    /// Events returned, of every kind.
    pub events: u64,
    /// Readiness events returned.
    pub io_events: u64,
    /// Finished posted operations returned.
    pub io_done: u64,
    /// Completions returned.
    pub completions: u64,
    /// Timer expiries returned.
    pub timer_events: u64,
    /// Completions posted with `async_runtime_post_completion` (any thread).
    pub posted: u64,
}

/// uniloop: creates a runtime on a named backend: "epoll", "poll",
/// "kqueue", "iocp", "uring" (Linux io_uring, opt-in), or NULL for the
/// default. NULL on failure (`UNILOOP_ERR_INVALID` for an unknown name,
/// `UNILOOP_ERR_UNSUPPORTED` for one this platform or kernel lacks,
/// `UNILOOP_ERR_OS` where the system refuses io_uring; the message says
/// why).
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
        let b = name
            .parse::<rt::Backend>()
            .map_err(|e| Error::invalid(e.to_string()))?;
        make(Some(b))
    })
}

/// [`rt::Backend::name`] as a C string that lives as long as the process.
fn backend_c_name(backend: rt::Backend) -> &'static CStr {
    static NAMES: OnceLock<Vec<(rt::Backend, CString)>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        rt::Backend::ALL
            .iter()
            .map(|&b| {
                (
                    b,
                    CString::new(b.name()).expect("backend names have no NUL"),
                )
            })
            .collect()
    });
    names
        .iter()
        .find(|(b, _)| *b == backend)
        .map_or(c"unknown", |(_, name)| name.as_c_str())
}

/// uniloop: the name of the runtime's backend ("epoll", "poll", "kqueue",
/// "iocp", "uring"); NULL for a bad handle.
#[no_mangle]
pub extern "C" fn uniloop_runtime_backend(rt: *mut async_runtime_t) -> *const c_char {
    guard(ptr::null(), || {
        with_loop(rt, |l| Ok(backend_c_name(l.rt.backend()).as_ptr()))
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
            l.rearm()?;
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

/// uniloop: for a loop nested through `async_runtime_get_event_loop_handle`:
/// the most milliseconds the outer loop may block before calling
/// `async_runtime_wait` (the next timer, rounded up), 0 if a wait has
/// something to return now, -1 for no limit. Also re-arms the handle.
/// -1 with an error recorded for a bad handle (`uniloop_last_error()` is
/// `UNILOOP_OK` after a real -1).
#[no_mangle]
pub extern "C" fn uniloop_runtime_backend_timeout(rt: *mut async_runtime_t) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            Ok(match l.rt.prepare_external_wait()? {
                None => -1,
                Some(d) => {
                    let ms = d.as_nanos().div_ceil(1_000_000);
                    ms.min(c_int::MAX as u128) as c_int
                }
            })
        })
    })
}

/// uniloop: sets how many bytes of posted writes may wait on `fd` before
/// `async_runtime_post_write` refuses more with `UNILOOP_ERR_FULL` (a write
/// on an fd with nothing queued is always taken). Default 1 MiB. 0, or -1
/// (`UNILOOP_ERR_NOT_FOUND` if `fd` is not registered).
#[no_mangle]
pub extern "C" fn uniloop_runtime_set_write_limit(
    rt: *mut async_runtime_t,
    fd: socket_fd_t,
    bytes: usize,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            if !l.fds.contains_key(&fd) {
                return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
            }
            l.rt.set_write_limit(&state::source(fd), bytes)?;
            Ok(0)
        })
    })
}

/// uniloop: holds the writes posted on each fd until the next
/// `async_runtime_wait` (`hold` true), which sends each fd's in one
/// gathered call (`writev`): for a server that answers a batch of events
/// with many small writes per connection. Off by default (a write is tried
/// at once in `async_runtime_post_write`); turning it off sends what is
/// held. With it on, `async_runtime_remove` an fd before closing it: held
/// writes go to whatever has the fd number at the next wait. 0, or -1.
#[no_mangle]
pub extern "C" fn uniloop_runtime_set_hold_writes(rt: *mut async_runtime_t, hold: bool) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            l.rt.set_hold_writes(hold);
            Ok(0)
        })
    })
}

/// uniloop: flush-then-close (libuv's `uv_shutdown`): when every write
/// posted on `fd` before this call is out, shuts down the write side
/// (`shutdown(fd, SHUT_WR)`; the peer reads end of stream) and returns one
/// event: `EVENT_WRITE | UNILOOP_EVENT_SHUTDOWN` with 0 bytes, or
/// `EVENT_ERROR | UNILOOP_EVENT_SHUTDOWN` with the OS error in
/// `completion_key`. Close the fd after that event (or remove it first:
/// no event then). 0, or -1.
#[no_mangle]
pub extern "C" fn uniloop_runtime_shutdown_fd(rt: *mut async_runtime_t, fd: socket_fd_t) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            l.post_write(fd, ptr::null(), 0, true)?;
            l.rearm()?;
            Ok(0)
        })
    })
}

/// uniloop: with `on` true, every event's `event_type` also carries its
/// kind: `UNILOOP_EVENT_READINESS`, `UNILOOP_EVENT_POSTED`,
/// `UNILOOP_EVENT_COMPLETION`, `UNILOOP_EVENT_TIMER` or
/// `UNILOOP_EVENT_SIGNAL` (`event_type & UNILOOP_EVENT_KIND_MASK`). Off by
/// default, where only timers and signals carry theirs (code written for
/// the reference may test `event_type == EVENT_READ`). 0, or -1.
#[no_mangle]
pub extern "C" fn uniloop_runtime_set_event_kinds(rt: *mut async_runtime_t, on: bool) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            l.kinds = on;
            Ok(0)
        })
    })
}

/// uniloop: delivers a signal as events (POSIX: `SIGINT`, `SIGTERM`,
/// `SIGHUP`, `SIGUSR1`...; Windows: a console control event number,
/// `CTRL_C_EVENT`, `CTRL_BREAK_EVENT`, `CTRL_CLOSE_EVENT`): each arrival
/// (or burst of arrivals) gives one event with `completion_key` = `key`,
/// `bytes_transferred` = the number, `event_type` = `EVENT_READ |
/// UNILOOP_EVENT_SIGNAL`, `fd` `INVALID_SOCKET_FD`. The handler is
/// uniloop's (async-signal-safe; nothing runs in signal context that you
/// write); while any runtime holds a signal its default action (ending
/// the process) does not run. Adding it again changes the key. 0, or -1
/// (`UNILOOP_ERR_INVALID` for one that cannot be caught, `SIGKILL`,
/// `SIGSEGV`...; `UNILOOP_ERR_UNSUPPORTED` for a number this platform
/// lacks).
#[no_mangle]
pub extern "C" fn uniloop_signal_add(
    rt: *mut async_runtime_t,
    signum: c_int,
    key: UintPtr,
) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            let raw = signum as u64;
            if !l.signal_keys.contains_key(&raw) {
                let poster = l.rt.poster();
                let signals = l
                    .signals
                    .get_or_insert_with(|| rt::Signals::new(&poster, state::SIGNAL_KEY));
                signals.add(rt::Signal::from_raw(signum))?;
            }
            l.signal_keys.insert(raw, key);
            Ok(0)
        })
    })
}

/// uniloop: stops delivering `signum` (its default action is back once no
/// runtime holds it). Events of it already queued are dropped. 0, or -1
/// (`UNILOOP_ERR_NOT_FOUND` if it was not added).
#[no_mangle]
pub extern "C" fn uniloop_signal_remove(rt: *mut async_runtime_t, signum: c_int) -> c_int {
    guard(-1, || {
        with_loop(rt, |l| {
            if l.signal_keys.remove(&(signum as u64)).is_none() {
                return Err(Error::new(
                    UNILOOP_ERR_NOT_FOUND,
                    "the signal was not added",
                ));
            }
            if let Some(s) = l.signals.as_mut() {
                s.remove(rt::Signal::from_raw(signum))?;
            }
            Ok(0)
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
