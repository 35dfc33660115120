//! The console worker (`console_worker_*`) and the terminal-mode helpers of
//! the reference's `console_mode.c`.
//!
//! A worker thread (an `async_worker_t`) reads stdin — a terminal, a pipe
//! or a file — and splits it into lines. Each line goes into the caller's
//! queue as one message: its bytes with the `\n`, then a NUL
//! (`out_size` = length + 1); a line longer than `CONSOLE_MAX_LINE - 1`
//! bytes comes as several messages of at most that many bytes. After each
//! message the worker posts a completion (key, line length); a full queue
//! is waited on whatever its flags (unless `DROP_OLDEST`), so no line is
//! lost, and shutdown ends that wait. At end of
//! input (or a read error) a partial last line is delivered, then
//! `console_worker_take_eof` turns true (once) and a completion (key, 0)
//! is posted. Shutdown wakes the blocked read through a self-pipe, so it
//! returns within its timeout whatever stdin is.
//!
//! The context's public part has the reference's layout (Neolith reads
//! `console_type` and `worker`); uniloop's state lives behind it.
//! `eof_detected` and `state_mutex` are kept for layout only: use
//! `console_worker_take_eof`.

// The exported items are `pub` for cbindgen and reached through the C
// symbol table, not through Rust paths; their names are the reference's.
#![allow(unreachable_pub, non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{guard, Error, Result};
use crate::live::Live;
use crate::queue::{async_queue_t, enqueue_or_wait, max_msg_size, wake_writers};
use crate::runtime::{async_runtime_t, poster_of, set_console_type};
use crate::types::{console_type_t, UintPtr};
use crate::uniloop_error_t::*;
use crate::worker::{
    async_worker_create, async_worker_destroy, async_worker_join, async_worker_signal_stop,
    async_worker_t,
};

/// The completion key Neolith gives its console worker.
#[allow(dead_code)] // only in the header
pub const CONSOLE_COMPLETION_KEY: UintPtr = 0xC0701E;
/// The largest console message, NUL included.
pub const CONSOLE_MAX_LINE: usize = 4096;

/// Room for the reference's `platform_mutex_t` (80 bytes); unused.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct uniloop_mutex_storage_t {
    /// Opaque.
    pub _opaque: [u64; 10],
}

// Two whole definitions, not `#[cfg]` fields (see io_event_t in types.rs).
/// The reference's public console worker context (136 bytes on x86_64
/// Linux). Returned by `console_worker_init`; a zeroed one (no worker) may
/// be passed to `console_worker_shutdown`, which returns true.
#[cfg(not(windows))]
#[repr(C)]
#[derive(Debug)]
#[allow(non_camel_case_types)]
pub struct console_worker_context_s {
    /// The caller's line queue.
    pub line_queue: *mut async_queue_t,
    /// The runtime completions go to.
    pub runtime: *mut async_runtime_t,
    /// The reader thread; NULL when stdin is `CONSOLE_TYPE_NONE`.
    pub worker: *mut async_worker_t,
    /// What stdin was at init.
    pub console_type: console_type_t,
    /// The key of the worker's completions.
    pub completion_key: UintPtr,
    /// Layout only.
    pub state_mutex: uniloop_mutex_storage_t,
    /// Layout only (not maintained): use `console_worker_take_eof`.
    pub eof_detected: bool,
    /// The stop self-pipe: [0] read end, [1] write end (owned by uniloop).
    pub stop_pipe_fds: [c_int; 2],
}

/// The reference's public console worker context (136 bytes on x86_64
/// Linux). Returned by `console_worker_init`; a zeroed one (no worker) may
/// be passed to `console_worker_shutdown`, which returns true.
#[cfg(windows)]
#[repr(C)]
#[derive(Debug)]
#[allow(non_camel_case_types)]
pub struct console_worker_context_s {
    /// The caller's line queue.
    pub line_queue: *mut async_queue_t,
    /// The runtime completions go to.
    pub runtime: *mut async_runtime_t,
    /// The reader thread; NULL when stdin is `CONSOLE_TYPE_NONE`.
    pub worker: *mut async_worker_t,
    /// What stdin was at init.
    pub console_type: console_type_t,
    /// The key of the worker's completions.
    pub completion_key: UintPtr,
    /// Layout only.
    pub state_mutex: uniloop_mutex_storage_t,
    /// Layout only (not maintained): use `console_worker_take_eof`.
    pub eof_detected: bool,
    /// Layout only.
    pub desired_console_mode: u32,
}

/// The reference's name for the context.
#[allow(non_camel_case_types)]
pub type console_worker_context_t = console_worker_context_s;

#[cfg(all(target_pointer_width = "64", target_os = "linux"))]
const _: () = {
    use std::mem::{offset_of, size_of};
    type C = console_worker_context_s;
    assert!(size_of::<C>() == 136);
    assert!(offset_of!(C, runtime) == 8);
    assert!(offset_of!(C, worker) == 16);
    assert!(offset_of!(C, console_type) == 24);
    assert!(offset_of!(C, completion_key) == 32);
    assert!(offset_of!(C, state_mutex) == 40);
    assert!(offset_of!(C, eof_detected) == 120);
    assert!(offset_of!(C, stop_pipe_fds) == 124);
};

/// What the reader thread shares with the context.
struct Shared {
    queue: QueuePtr,
    poster: rt::Poster,
    key: u64,
    eof: AtomicBool,
    /// Set by shutdown and destroy: a wait for room in the queue gives up.
    stop: AtomicBool,
    /// Set by the worker as it ends: the queue may be gone after that.
    finished: AtomicBool,
    /// Bytes of a message before its NUL: `CONSOLE_MAX_LINE - 1`, or less
    /// for a queue with a smaller `max_msg_size`.
    chunk: usize,
    #[cfg(unix)]
    stop_r: std::os::fd::OwnedFd,
    #[cfg(unix)]
    stop_w: std::os::fd::OwnedFd,
    /// Windows: set by `console_worker_shutdown`.
    #[cfg(windows)]
    stopping: AtomicBool,
    /// Windows: wakes the worker's private runtime.
    #[cfg(windows)]
    waker: std::sync::Mutex<Option<rt::Poster>>,
}

struct QueuePtr(*mut async_queue_t);
// SAFETY: the queue is thread-safe (MPMC, used from any thread by design);
// the caller keeps it alive until the worker is shut down.
unsafe impl Send for QueuePtr {}
// SAFETY: as above.
unsafe impl Sync for QueuePtr {}

/// The allocation behind a context pointer: the public part first.
#[repr(C)]
struct Ctx {
    public: console_worker_context_s,
    shared: Arc<Shared>,
}

static CONTEXTS: Live = Live::new();

impl Shared {
    /// One line (with its `\n`, if it had one) into the queue, then its
    /// completion. A full queue is waited on, whatever its flags (stdin can
    /// wait; the reference dropped the line): nothing is lost unless the
    /// caller chose `ASYNC_QUEUE_DROP_OLDEST`. Shutdown ends the wait (the
    /// line is then not delivered), as does a closed queue.
    fn deliver(&self, line: &[u8]) {
        let mut msg = Vec::with_capacity(line.len() + 1);
        msg.extend_from_slice(line);
        msg.push(0);
        // SAFETY: the caller keeps the queue alive while the worker runs.
        let q = unsafe { &*self.queue.0 };
        if enqueue_or_wait(q, &msg, &self.stop).is_ok() {
            let _ = self.poster.post(self.key, line.len() as u64);
        }
    }

    /// Stops the worker: a wait for room ends, then the blocked read.
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if !self.finished.load(Ordering::Acquire) {
            // SAFETY: the caller keeps the queue alive while the worker
            // runs (it may destroy it once a shutdown saw the worker end,
            // and then `finished` is set).
            wake_writers(unsafe { &*self.queue.0 });
        }
        sys::stop(self);
    }

    fn finish(&self) {
        // Release: pairs with the Acquire swap in take_eof, so the lines
        // queued before EOF are there when it is seen.
        self.eof.store(true, Ordering::Release);
        let _ = self.poster.post(self.key, 0);
    }
}

/// Splits input into messages of at most `CONSOLE_MAX_LINE - 1` bytes.
struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    fn push(&mut self, mut data: &[u8], shared: &Shared) {
        while !data.is_empty() {
            let room = shared.chunk - self.buf.len();
            let take = data.len().min(room);
            match data[..take].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.buf.extend_from_slice(&data[..=i]);
                    data = &data[i + 1..];
                }
                None => {
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() < shared.chunk {
                        continue;
                    }
                }
            }
            shared.deliver(&self.buf);
            self.buf.clear();
        }
    }

    fn flush(&mut self, shared: &Shared) {
        if !self.buf.is_empty() {
            shared.deliver(&self.buf);
            self.buf.clear();
        }
    }
}

/// The worker body: owns one reference to `Shared` (from `Arc::into_raw`).
extern "C" fn console_body(arg: *mut c_void) -> *mut c_void {
    // SAFETY: made by Arc::into_raw in console_worker_init; this body runs
    // once and takes that reference over.
    let shared = unsafe { Arc::from_raw(arg as *const Shared) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lines = Lines {
            buf: Vec::with_capacity(CONSOLE_MAX_LINE),
        };
        if sys::read_loop(&shared, &mut lines) {
            lines.flush(&shared);
            shared.finish();
        }
    }));
    shared.finished.store(true, Ordering::Release);
    ptr::null_mut()
}

fn init(
    runtime: *mut async_runtime_t,
    queue: *mut async_queue_t,
    key: usize,
) -> Result<*mut console_worker_context_t> {
    if runtime.is_null() || queue.is_null() {
        return Err(Error::invalid("runtime or queue is NULL"));
    }
    let poster = poster_of(runtime)?;
    // SAFETY: the caller passes a live queue (checked non-NULL above).
    let max = max_msg_size(unsafe { &*queue });
    let chunk = CONSOLE_MAX_LINE.min(max).saturating_sub(1).max(1);
    let kind = sys::detect();
    #[cfg(unix)]
    let (stop_r, stop_w) = sys::stop_pipe()?;
    #[cfg(unix)]
    let fds = {
        use std::os::fd::AsRawFd;
        [stop_r.as_raw_fd(), stop_w.as_raw_fd()]
    };
    let shared = Arc::new(Shared {
        queue: QueuePtr(queue),
        poster,
        key: key as u64,
        eof: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        finished: AtomicBool::new(false),
        chunk,
        #[cfg(unix)]
        stop_r,
        #[cfg(unix)]
        stop_w,
        #[cfg(windows)]
        stopping: AtomicBool::new(false),
        #[cfg(windows)]
        waker: std::sync::Mutex::new(None),
    });
    let mut worker = ptr::null_mut();
    if kind != console_type_t::CONSOLE_TYPE_NONE {
        let arg = Arc::into_raw(shared.clone()) as *mut c_void;
        worker = async_worker_create(Some(console_body), arg, 0);
        if worker.is_null() {
            // SAFETY: the body never ran, so the reference is still ours.
            drop(unsafe { Arc::from_raw(arg as *const Shared) });
            return Err(Error::new(
                UNILOOP_ERR_OS,
                "cannot start the console worker",
            ));
        }
    }
    let ctx = Box::new(Ctx {
        public: console_worker_context_s {
            line_queue: queue,
            runtime,
            worker,
            console_type: kind,
            completion_key: key,
            state_mutex: uniloop_mutex_storage_t { _opaque: [0; 10] },
            eof_detected: false,
            #[cfg(not(windows))]
            stop_pipe_fds: fds,
            #[cfg(windows)]
            desired_console_mode: 0,
        },
        shared,
    });
    let p = Box::into_raw(ctx).cast::<console_worker_context_t>();
    CONTEXTS.insert(p);
    Ok(p)
}

/// The live context behind `ctx`.
fn live(ctx: *mut console_worker_context_t) -> Result<&'static mut Ctx> {
    if ctx.is_null() {
        return Err(Error::invalid("context is NULL"));
    }
    if !CONTEXTS.contains(ctx) {
        return Err(Error::invalid(
            "not a context from console_worker_init (or destroyed)",
        ));
    }
    // SAFETY: live contexts were made by `init` as a `Ctx` (public part
    // first, repr(C)); only the loop thread uses a context, one call at a
    // time, and only destroy frees it.
    Ok(unsafe { &mut *ctx.cast::<Ctx>() })
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
    guard(-1, || set_console_type(rt, sys::detect()).map(|()| 0))
}

/// What stdin is: a terminal (`CONSOLE_TYPE_REAL`), a pipe, a regular
/// file, or none of these (`CONSOLE_TYPE_NONE`: closed, `/dev/null`...).
#[no_mangle]
pub extern "C" fn console_detect_type() -> console_type_t {
    guard(console_type_t::CONSOLE_TYPE_NONE, || Ok(sys::detect()))
}

/// "NONE", "REAL", "PIPE", "FILE", or "UNKNOWN" for any other value.
#[no_mangle]
pub extern "C" fn console_type_str(console_type: c_int) -> *const c_char {
    guard(c"UNKNOWN".as_ptr(), || {
        let s = match console_type {
            0 => c"NONE",
            1 => c"REAL",
            2 => c"PIPE",
            3 => c"FILE",
            _ => c"UNKNOWN",
        };
        Ok(s.as_ptr())
    })
}

/// Starts reading stdin into `queue` (messages of up to `CONSOLE_MAX_LINE`
/// bytes, or of the queue's `max_msg_size` if smaller: longer lines come
/// in pieces), posting a completion with `completion_key` after each line
/// is queued and at end of input. No line is lost: on a full queue the
/// worker waits for room, whatever the queue's flags (give it flags 0, or
/// `BLOCK_WRITER`: the same here), and reads no more input meanwhile;
/// only `ASYNC_QUEUE_DROP_OLDEST`, if you choose it, drops old lines.
/// `console_worker_shutdown` releases a worker waiting for room at once.
/// With no console (`CONSOLE_TYPE_NONE`) no thread starts and `worker` is
/// NULL. The queue must outlive the worker (destroy it after
/// `console_worker_shutdown` returned true, or after
/// `console_worker_destroy`). NULL on failure.
#[no_mangle]
pub extern "C" fn console_worker_init(
    runtime: *mut async_runtime_t,
    queue: *mut async_queue_t,
    completion_key: UintPtr,
) -> *mut console_worker_context_t {
    guard(ptr::null_mut(), || init(runtime, queue, completion_key))
}

/// Stops the worker: wakes its blocked read, or its wait for room in a
/// full queue (the line it holds is then not delivered), and waits up to
/// `timeout_ms`
/// (0: no wait, -1: forever). True when it has stopped, or when there is
/// no worker (a zeroed context, `CONSOLE_TYPE_NONE`); false on timeout
/// (`UNILOOP_ERR_TIMEOUT`) or a bad context.
///
/// # Safety
///
/// `ctx` is NULL, from `console_worker_init`, or points to a readable
/// context (a zeroed one, say).
#[no_mangle]
pub unsafe extern "C" fn console_worker_shutdown(
    ctx: *mut console_worker_context_t,
    timeout_ms: c_int,
) -> bool {
    guard(false, || {
        if ctx.is_null() {
            return Err(Error::invalid("context is NULL"));
        }
        // SAFETY: the caller passes a readable context.
        if unsafe { (*ctx).worker }.is_null() {
            return Ok(true);
        }
        let c = live(ctx)?;
        c.shared.stop();
        // SAFETY: a live context's worker is from async_worker_create and
        // is destroyed only by console_worker_destroy.
        unsafe { async_worker_signal_stop(c.public.worker) };
        // SAFETY: as above.
        if unsafe { async_worker_join(c.public.worker, timeout_ms) } {
            Ok(true)
        } else {
            Err(Error::new(
                UNILOOP_ERR_TIMEOUT,
                "the console worker has not stopped yet",
            ))
        }
    })
}

/// Frees the context. A worker still running is told to stop and left to
/// finish on its own (it touches only its own state and the queue). NULL
/// is ignored.
#[no_mangle]
pub extern "C" fn console_worker_destroy(ctx: *mut console_worker_context_t) {
    guard((), || {
        if ctx.is_null() {
            return Ok(());
        }
        live(ctx)?;
        CONTEXTS.remove(ctx);
        // SAFETY: live, so made by `init` with Box::into_raw as a `Ctx`;
        // just taken out of the set.
        let c = unsafe { Box::from_raw(ctx.cast::<Ctx>()) };
        if !c.public.worker.is_null() {
            c.shared.stop();
            // SAFETY: from async_worker_create; not destroyed yet.
            unsafe { async_worker_signal_stop(c.public.worker) };
            // SAFETY: from async_worker_create; destroyed once, here.
            unsafe { async_worker_destroy(c.public.worker) };
        }
        Ok(())
    })
}

/// True once after the worker saw the end of input, then false again.
#[no_mangle]
pub extern "C" fn console_worker_take_eof(ctx: *mut console_worker_context_t) -> bool {
    guard(false, || {
        let c = live(ctx)?;
        // Acquire: pairs with the Release store in `finish`.
        Ok(c.shared.eof.swap(false, Ordering::Acquire))
    })
}

/// Cooked line input on the stdin terminal, with echo on or off. 1 if
/// stdin is a terminal and its mode was set, else 0. `ctx` may be NULL.
#[no_mangle]
pub extern "C" fn set_console_input_line_mode(
    ctx: *mut console_worker_context_t,
    echo: c_int,
) -> c_int {
    let _ = ctx;
    guard(0, || sys::line_mode(echo != 0).map(|()| 1))
}

/// Local echo on the stdin terminal on or off. 1 if set, else 0.
#[no_mangle]
pub extern "C" fn set_console_input_echo(ctx: *mut console_worker_context_t, echo: c_int) -> c_int {
    let _ = ctx;
    guard(0, || sys::echo(echo != 0).map(|()| 1))
}

/// Single-character input (no line editing, no echo) on the stdin
/// terminal, or back to cooked mode with echo. 1 if set, else 0.
#[no_mangle]
pub extern "C" fn set_console_input_single_char(
    ctx: *mut console_worker_context_t,
    single: c_int,
) -> c_int {
    let _ = ctx;
    guard(0, || {
        if single == 0 {
            sys::line_mode(true)
        } else {
            sys::single_char()
        }
        .map(|()| 1)
    })
}

/// ANSI escape processing for the stdout console: 1 if it was enabled
/// (Windows consoles), 0 elsewhere (POSIX terminals need nothing).
#[no_mangle]
pub extern "C" fn enable_console_output_ansi() -> c_int {
    guard(0, || sys::output_ansi().map(|()| 1))
}

#[cfg(unix)]
#[path = "console/unix.rs"]
mod sys;
#[cfg(windows)]
#[path = "console/windows.rs"]
mod sys;
