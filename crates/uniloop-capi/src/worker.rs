//! `async_worker_*`: the reference's managed threads, on `rt::Worker`, plus
//! `uniloop_worker_result` (the body's return value after a join) and
//! `uniloop_worker_wait_stop` (a body's blocking wait for the stop signal).
//!
//! `rt::Worker` creates the thread (with the requested stack size; a
//! failed create drops everything and returns the OS error) and hands the
//! body's return value to the final join. The C layer keeps what C needs
//! beside it, under one mutex with a condition variable: the stop request
//! (also an atomic, so `async_worker_should_stop` in a tight loop is one
//! load), whether the body has returned, and the thread's native handle.
//! Because `async_worker_join` waits on "the body has returned" with a
//! deadline and only then joins the OS thread, a timed join returns on
//! time, even right after the create (the reference took a thread that
//! had not started yet for `STOPPED` and then blocked in `pthread_join`).
//!
//! States as C sees them: `ASYNC_WORKER_RUNNING` from the create until
//! `async_worker_signal_stop` (a thread that has not been scheduled yet is
//! running as far as its owner can tell), `ASYNC_WORKER_STOPPING` from then
//! until the body returns, `ASYNC_WORKER_STOPPED` afterwards.
//!
//! # Lifetime
//!
//! The handle is an `Arc<async_worker_s>` as a raw pointer, and the thread
//! holds a reference of its own until the body has returned, so
//! `async_worker_current()` stays valid inside the body even if the owner
//! destroys the handle meanwhile. `async_worker_destroy` of a running
//! worker signals stop and detaches it (the reference leaked it); the body
//! still runs to its end, it is just never joined.

// The C API is reached by symbol name, not by Rust path, and keeps the
// reference's C spelling.
#![allow(unreachable_pub, non_camel_case_types)]

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::uniloop_error_t::*;
use crate::error::{guard, Error, Result};
use crate::timeout;

/// The body of a worker: called once on the new thread with the create's
/// context; its return value is kept for `uniloop_worker_result`.
pub type async_worker_proc_t = Option<unsafe extern "C" fn(context: *mut c_void) -> *mut c_void>;

/// A worker's state (`async_worker_get_state`); the reference's values.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum async_worker_state_t {
    /// The body has returned (or the handle is NULL).
    ASYNC_WORKER_STOPPED = 0,
    /// Created, and no stop has been signalled.
    ASYNC_WORKER_RUNNING = 1,
    /// `async_worker_signal_stop` was called; the body has not returned.
    ASYNC_WORKER_STOPPING = 2,
}

/// The reference's `platform_event_t` (Neolith's `port/sync.h`), only ever
/// handled by pointer here: see `async_worker_get_stop_event`.
pub struct platform_event_s {
    _opaque: [u8; 0],
}

/// The reference's name for `struct platform_event_s`.
pub type platform_event_t = platform_event_s;

/// A native thread handle: `pthread_t` on POSIX.
#[cfg(not(windows))]
type NativeThread = libc::pthread_t;
/// A native thread handle: a `HANDLE` on Windows.
#[cfg(windows)]
type NativeThread = windows_sys::Win32::Foundation::HANDLE;

/// A worker thread. Opaque; made by `async_worker_create`, freed by
/// `async_worker_destroy`.
pub struct async_worker_s {
    /// Read without the lock by `async_worker_should_stop`; written under
    /// it (see `signal_stop`).
    stop: AtomicBool,
    flags: Mutex<Flags>,
    changed: Condvar,
    /// The core worker until it is joined (or detached by destroy).
    worker: Mutex<Option<rt::Worker<usize>>>,
    /// The body's return value, once joined.
    result: Mutex<Option<usize>>,
}

/// The reference's name for the worker handle.
pub type async_worker_t = async_worker_s;

#[derive(Default)]
struct Flags {
    stop: bool,
    finished: bool,
    native: Option<Native>,
}

/// A native thread handle, owned where the OS makes it a resource.
struct Native(NativeThread);

// SAFETY: a `pthread_t` or a thread `HANDLE` is an identifier any thread
// may hold and use.
unsafe impl Send for Native {}

#[cfg(windows)]
impl Drop for Native {
    fn drop(&mut self) {
        // SAFETY: the handle was made by `DuplicateHandle` for this value
        // alone and is closed once, here.
        unsafe { windows_sys::Win32::Foundation::CloseHandle(self.0) };
    }
}

/// The calling thread's native handle.
#[cfg(not(windows))]
fn native_self() -> Option<Native> {
    // SAFETY: `pthread_self` has no preconditions.
    Some(Native(unsafe { libc::pthread_self() }))
}

/// The calling thread's native handle: a real handle duplicated from the
/// pseudo-handle `GetCurrentThread` returns.
#[cfg(windows)]
fn native_self() -> Option<Native> {
    use windows_sys::Win32::Foundation::{DuplicateHandle, DUPLICATE_SAME_ACCESS};
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetCurrentThread};
    let mut h = std::ptr::null_mut();
    // SAFETY: pseudo-handles of the current process and thread, and a
    // valid out pointer; the result is owned by the returned `Native`.
    let ok = unsafe {
        DuplicateHandle(
            GetCurrentProcess(),
            GetCurrentThread(),
            GetCurrentProcess(),
            &mut h,
            0,
            0,
            DUPLICATE_SAME_ACCESS,
        )
    };
    (ok != 0).then_some(Native(h))
}

thread_local! {
    /// The worker whose body runs on this thread, for `async_worker_current`.
    static CURRENT: Cell<*const async_worker_s> = const { Cell::new(std::ptr::null()) };
}

/// The create's context, moved to the new thread.
struct Context(*mut c_void);

// SAFETY: the C caller hands `context` to the worker thread; making it
// safe to use there is the caller's side of `async_worker_create`.
unsafe impl Send for Context {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl async_worker_s {
    fn flags(&self) -> MutexGuard<'_, Flags> {
        lock(&self.flags)
    }

    fn signal_stop(&self) {
        let mut f = self.flags();
        f.stop = true;
        // Release: pairs with the Acquire in `should_stop`, so a body that
        // sees the stop also sees what the owner wrote before signalling.
        self.stop.store(true, Ordering::Release);
        self.changed.notify_all();
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn state(&self) -> async_worker_state_t {
        let f = self.flags();
        if f.finished {
            async_worker_state_t::ASYNC_WORKER_STOPPED
        } else if f.stop {
            async_worker_state_t::ASYNC_WORKER_STOPPING
        } else {
            async_worker_state_t::ASYNC_WORKER_RUNNING
        }
    }

    /// Waits until `done(flags)` or the deadline; returns `done(flags)`.
    fn wait_for(&self, timeout_ms: c_int, done: impl Fn(&Flags) -> bool) -> bool {
        let deadline = timeout::deadline(timeout_ms);
        let mut f = self.flags();
        while !done(&f) {
            f = match timeout::left(deadline) {
                None => self.changed.wait(f).unwrap_or_else(|e| e.into_inner()),
                Some(Some(left)) => {
                    self.changed
                        .wait_timeout(f, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                Some(None) => return false,
            };
        }
        true
    }

    /// Runs on the worker thread: the C body between the bookkeeping.
    fn run(
        self: Arc<Self>,
        proc: unsafe extern "C" fn(*mut c_void) -> *mut c_void,
        ctx: Context,
    ) -> usize {
        CURRENT.with(|c| c.set(Arc::as_ptr(&self)));
        {
            let mut f = self.flags();
            f.native = native_self();
            self.changed.notify_all();
        }
        let finish = Finish(&self);
        // SAFETY: `proc` is the C caller's body and `ctx` its argument,
        // called once on this thread as `async_worker_create` documents.
        let result = unsafe { proc(ctx.0) };
        drop(finish);
        result as usize
    }

    /// Joins the finished core worker (quick: its body has returned) and
    /// keeps the result.
    fn reap(&self) {
        if let Some(w) = lock(&self.worker).take() {
            // A C body cannot panic (a foreign unwind aborts), so the
            // result is always there.
            if let Ok(r) = w.join() {
                *lock(&self.result) = Some(r);
            }
        }
    }
}

/// Marks the body as returned when dropped, so joiners are released even
/// if the body's thread unwinds (a Rust panic cannot come out of a C body,
/// but nothing here depends on that).
struct Finish<'a>(&'a async_worker_s);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null()));
        let mut f = self.0.flags();
        f.finished = true;
        self.0.changed.notify_all();
    }
}

/// Borrows the worker behind a handle.
///
/// # Safety
///
/// `w` is NULL or a handle from `async_worker_create` not yet destroyed.
unsafe fn worker_ref<'a>(w: *const async_worker_s) -> Result<&'a async_worker_s> {
    // SAFETY: the caller's contract: NULL or a live handle.
    unsafe { w.as_ref() }.ok_or_else(|| Error::invalid("the worker handle is NULL"))
}

/// Starts a thread running `proc(context)`, with a stack of `stack_size`
/// bytes (0: the platform default; a smaller size than the platform's
/// minimum is rounded up). Returns NULL (nothing leaked) if `proc` is NULL
/// or the thread cannot be created (`UNILOOP_ERR_OS`).
#[no_mangle]
pub extern "C" fn async_worker_create(
    proc: async_worker_proc_t,
    context: *mut c_void,
    stack_size: usize,
) -> *mut async_worker_t {
    guard(std::ptr::null_mut(), || {
        let proc = proc.ok_or_else(|| Error::invalid("the worker procedure is NULL"))?;
        let me = Arc::new(async_worker_s {
            stop: AtomicBool::new(false),
            flags: Mutex::new(Flags::default()),
            changed: Condvar::new(),
            worker: Mutex::new(None),
            result: Mutex::new(None),
        });
        let mut builder = rt::Worker::builder().name("uniloop-worker");
        if stack_size > 0 {
            builder = builder.stack_size(stack_size);
        }
        let theirs = me.clone();
        let ctx = Context(context);
        // On failure the closure, and with it `theirs`, is dropped.
        let w = builder
            .spawn(move |_stop| theirs.run(proc, ctx))
            .map_err(|e| {
                // Whatever the OS said (EAGAIN, EINVAL, ENOMEM...), the
                // thread could not be made.
                Error::new(
                    UNILOOP_ERR_OS,
                    format!("cannot create the worker thread: {e}"),
                )
            })?;
        *lock(&me.worker) = Some(w);
        Ok(Arc::into_raw(me).cast_mut())
    })
}

/// Frees a worker. A worker that was joined, or whose body has returned,
/// is simply freed; a running one is signalled to stop and detached: its
/// body runs to its end on its own and is never joined (the handle stays
/// valid for `async_worker_current()` inside it until then).
///
/// # Safety
///
/// `worker` is NULL or a live handle; no call may start on it after this.
#[no_mangle]
pub unsafe extern "C" fn async_worker_destroy(worker: *mut async_worker_t) {
    guard((), || {
        if worker.is_null() {
            return Err(Error::invalid("the worker handle is NULL"));
        }
        // SAFETY: a live handle made by `Arc::into_raw`; this takes back the
        // reference the handle owned.
        let w = unsafe { Arc::from_raw(worker.cast_const()) };
        w.signal_stop();
        if w.flags().finished {
            w.reap();
        } else {
            // Dropping the core worker detaches the thread.
            drop(lock(&w.worker).take());
        }
        Ok(())
    })
}

/// The worker's thread: its `pthread_t`. Waits for the new thread to have
/// started if it has not. Returns 0 for a NULL handle.
///
/// # Safety
///
/// `worker` is NULL or a live handle.
#[cfg(not(windows))]
#[no_mangle]
pub unsafe extern "C" fn async_worker_get_native_handle(
    worker: *mut async_worker_t,
) -> libc::pthread_t {
    // SAFETY: the caller's contract, passed on.
    guard(0, || unsafe { native_handle(worker) })
}

/// The worker's thread: a `HANDLE` the worker owns (closed by
/// `async_worker_destroy`). Waits for the new thread to have started if it
/// has not. Returns NULL for a NULL handle.
///
/// # Safety
///
/// `worker` is NULL or a live handle.
#[cfg(windows)]
#[no_mangle]
pub unsafe extern "C" fn async_worker_get_native_handle(
    worker: *mut async_worker_t,
) -> windows_sys::Win32::Foundation::HANDLE {
    // SAFETY: the caller's contract, passed on.
    guard(std::ptr::null_mut(), || unsafe { native_handle(worker) })
}

/// # Safety
///
/// `worker` is NULL or a live handle.
unsafe fn native_handle(worker: *mut async_worker_t) -> Result<NativeThread> {
    // SAFETY: the caller's contract.
    let w = unsafe { worker_ref(worker) }?;
    w.wait_for(-1, |f| f.native.is_some() || f.finished);
    w.flags()
        .native
        .as_ref()
        .map(|n| n.0)
        .ok_or_else(|| Error::new(UNILOOP_ERR_OS, "the thread's handle could not be had"))
}

/// Asks the worker to stop: `async_worker_should_stop` turns true, a
/// `uniloop_worker_wait_stop` returns, and the state is
/// `ASYNC_WORKER_STOPPING` until the body returns. Never blocks.
///
/// # Safety
///
/// `worker` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn async_worker_signal_stop(worker: *mut async_worker_t) {
    guard((), || {
        // SAFETY: the caller's contract.
        unsafe { worker_ref(worker) }?.signal_stop();
        Ok(())
    })
}

/// Waits up to `timeout_ms` milliseconds (`-1`: forever) for the body to
/// return, then joins the thread. Returns true once it has (also on later
/// calls), false on time (`UNILOOP_ERR_TIMEOUT`; the worker stays
/// joinable) — even right after the create, a timed join returns on time.
/// A body joining its own worker fails with `UNILOOP_ERR_INVALID`.
///
/// # Safety
///
/// `worker` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn async_worker_join(worker: *mut async_worker_t, timeout_ms: c_int) -> bool {
    guard(false, || {
        // SAFETY: the caller's contract.
        let w = unsafe { worker_ref(worker) }?;
        if CURRENT.with(|c| c.get()) == worker.cast_const() {
            return Err(Error::invalid("a worker cannot join itself"));
        }
        if !w.wait_for(timeout_ms, |f| f.finished) {
            return Err(Error::new(
                UNILOOP_ERR_TIMEOUT,
                "the worker's body did not return in time",
            ));
        }
        w.reap();
        Ok(true)
    })
}

/// The worker whose body is running on the calling thread, or NULL on any
/// other thread.
#[no_mangle]
pub extern "C" fn async_worker_current() -> *mut async_worker_t {
    guard(std::ptr::null_mut(), || {
        Ok(CURRENT.with(|c| c.get()).cast_mut())
    })
}

/// Whether `async_worker_signal_stop` has been called (false for NULL,
/// which records `UNILOOP_ERR_INVALID`). Cheap enough for a tight loop.
///
/// # Safety
///
/// `worker` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn async_worker_should_stop(worker: *mut async_worker_t) -> bool {
    guard(false, || {
        // SAFETY: the caller's contract.
        Ok(unsafe { worker_ref(worker) }?.should_stop())
    })
}

/// The worker's state; `ASYNC_WORKER_STOPPED` for NULL (which records
/// `UNILOOP_ERR_INVALID`).
///
/// # Safety
///
/// `worker` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn async_worker_get_state(
    worker: *const async_worker_t,
) -> async_worker_state_t {
    guard(async_worker_state_t::ASYNC_WORKER_STOPPED, || {
        // SAFETY: the caller's contract.
        Ok(unsafe { worker_ref(worker) }?.state())
    })
}

/// Not honoured: always NULL with `UNILOOP_ERR_UNSUPPORTED`. The
/// reference returned its internal `platform_event_t`, an object of
/// Neolith's own `port/sync` library that this library neither has nor
/// can make. A body that must sleep until stop is signalled calls
/// `uniloop_worker_wait_stop` instead.
///
/// # Safety
///
/// `worker` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn async_worker_get_stop_event(
    worker: *mut async_worker_t,
) -> *mut platform_event_t {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller's contract.
        unsafe { worker_ref(worker) }?;
        Err(Error::new(
            UNILOOP_ERR_UNSUPPORTED,
            "async_worker_get_stop_event is not supported; use uniloop_worker_wait_stop",
        ))
    })
}

/// Sleeps until stop is signalled or `timeout_ms` milliseconds pass (`-1`:
/// forever); returns whether stop has been signalled. Use it instead of a
/// sleep in a polling body, so a stop is noticed at once.
///
/// # Safety
///
/// `worker` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn uniloop_worker_wait_stop(
    worker: *mut async_worker_t,
    timeout_ms: c_int,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's contract.
        let w = unsafe { worker_ref(worker) }?;
        Ok(w.wait_for(timeout_ms, |f| f.stop))
    })
}

/// After a successful `async_worker_join`, stores the body's return value
/// in `*out` and returns true. False (and `*out` untouched) before the
/// join (`UNILOOP_ERR_NOT_FOUND`) or for NULL arguments.
///
/// # Safety
///
/// `worker` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn uniloop_worker_result(
    worker: *mut async_worker_t,
    out: *mut *mut c_void,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's contract.
        let w = unsafe { worker_ref(worker) }?;
        // SAFETY: the caller's contract: NULL or writable.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Error::invalid("out is NULL"))?;
        let r = lock(&w.result).ok_or_else(|| {
            Error::new(
                UNILOOP_ERR_NOT_FOUND,
                "the worker has not been joined; its result is not there yet",
            )
        })?;
        *out = r as *mut c_void;
        Ok(true)
    })
}
