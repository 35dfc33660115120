//! (issue 10, helper A) STAND-IN — DELETE AT MERGE with capi-b.
//!
//! Minimal stand-ins for helper B's `async_queue_s` (src/queue.rs) and
//! `async_worker_s` (src/worker.rs), so the console worker and its C tests
//! build and run on this branch before the merge. At the merge: delete this
//! file and its `mod` line in lib.rs, and change the one `use` in
//! src/console.rs from `crate::queue_standin` to `crate::queue` /
//! `crate::worker`. What the console worker relies on:
//!
//! * `pub struct async_queue_s`, `pub type async_queue_t`, and
//!   `pub(crate) fn enqueue_bytes(q: &async_queue_s, data: &[u8]) -> Result<()>`;
//!   the C functions `async_queue_create`, `async_queue_dequeue`,
//!   `async_queue_destroy` with the reference's signatures.
//! * `pub struct async_worker_s`, `pub type async_worker_t`, and the C
//!   functions `async_worker_create`, `async_worker_signal_stop`,
//!   `async_worker_join` (false on timeout, -1 waits), `async_worker_destroy`
//!   (safe on a running worker: it detaches).

// The exported items are `pub` for cbindgen and reached through the C
// symbol table, not through Rust paths; their names are the reference's.
#![allow(unreachable_pub, non_camel_case_types)]

use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::{guard, Error, Result};
use crate::uniloop_error_t::*;

/// STAND-IN for helper B's queue.
#[derive(Debug)]
pub struct async_queue_s {
    q: Mutex<VecDeque<Vec<u8>>>,
    capacity: usize,
    max_msg_size: usize,
}

/// STAND-IN: the reference's queue handle.
#[allow(non_camel_case_types)]
pub type async_queue_t = async_queue_s;

/// STAND-IN: copies `data` in as one message (drops the oldest when full).
pub(crate) fn enqueue_bytes(q: &async_queue_s, data: &[u8]) -> Result<()> {
    if data.len() > q.max_msg_size {
        return Err(Error::new(
            UNILOOP_ERR_SIZE,
            "message larger than max_msg_size",
        ));
    }
    let mut g = q.q.lock().unwrap_or_else(|e| e.into_inner());
    if g.len() >= q.capacity {
        g.pop_front();
    }
    g.push_back(data.to_vec());
    Ok(())
}

/// STAND-IN: creates a queue.
#[no_mangle]
pub extern "C" fn async_queue_create(
    capacity: usize,
    max_msg_size: usize,
    flags: c_int,
) -> *mut async_queue_t {
    let _ = flags;
    guard(std::ptr::null_mut(), || {
        if capacity == 0 || max_msg_size == 0 {
            return Err(Error::invalid("capacity and max_msg_size must be > 0"));
        }
        Ok(Box::into_raw(Box::new(async_queue_s {
            q: Mutex::new(VecDeque::new()),
            capacity,
            max_msg_size,
        })))
    })
}

/// STAND-IN: destroys a queue.
///
/// # Safety
///
/// `q` is NULL or from `async_queue_create`, destroyed once.
#[no_mangle]
pub unsafe extern "C" fn async_queue_destroy(q: *mut async_queue_t) {
    if !q.is_null() {
        // SAFETY: the caller's promise above.
        drop(unsafe { Box::from_raw(q) });
    }
}

/// STAND-IN: takes the head message if it fits in `buffer`.
///
/// # Safety
///
/// `q` is from `async_queue_create`; `buffer` has `buffer_size` bytes;
/// `out_size` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn async_queue_dequeue(
    q: *mut async_queue_t,
    buffer: *mut c_void,
    buffer_size: usize,
    out_size: *mut usize,
) -> bool {
    guard(false, || {
        if q.is_null() || buffer.is_null() {
            return Err(Error::invalid("NULL argument"));
        }
        // SAFETY: the caller's promise above.
        let q = unsafe { &*q };
        let mut g = q.q.lock().unwrap_or_else(|e| e.into_inner());
        let Some(head) = g.front() else {
            return Err(Error::new(UNILOOP_ERR_EMPTY, "empty"));
        };
        if !out_size.is_null() {
            // SAFETY: the caller's promise above.
            unsafe { *out_size = head.len() };
        }
        if head.len() > buffer_size {
            return Err(Error::new(UNILOOP_ERR_SIZE, "buffer too small"));
        }
        // SAFETY: `buffer` has `buffer_size >= head.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(head.as_ptr(), buffer.cast(), head.len()) };
        g.pop_front();
        Ok(true)
    })
}

/// STAND-IN for helper B's worker.
#[derive(Debug)]
pub struct async_worker_s {
    state: Arc<(Mutex<bool>, Condvar)>,
}

/// STAND-IN: the reference's worker handle.
#[allow(non_camel_case_types)]
pub type async_worker_t = async_worker_s;

/// STAND-IN: the reference's worker body type.
#[allow(non_camel_case_types)]
pub type async_worker_proc_t = Option<unsafe extern "C" fn(*mut c_void) -> *mut c_void>;

struct SendPtr(*mut c_void);
// SAFETY: the body's context pointer is the caller's to make thread-safe,
// as with pthread_create.
unsafe impl Send for SendPtr {}

/// STAND-IN: starts `proc(context)` on a new thread.
#[no_mangle]
pub extern "C" fn async_worker_create(
    proc_: async_worker_proc_t,
    context: *mut c_void,
    stack_size: usize,
) -> *mut async_worker_t {
    guard(std::ptr::null_mut(), || {
        let Some(f) = proc_ else {
            return Err(Error::invalid("proc is NULL"));
        };
        let state = Arc::new((Mutex::new(false), Condvar::new()));
        let done = state.clone();
        let ctx = SendPtr(context);
        let mut b = std::thread::Builder::new();
        if stack_size > 0 {
            b = b.stack_size(stack_size);
        }
        b.spawn(move || {
            let ctx = ctx;
            // SAFETY: the caller's body and context, as with pthread_create.
            let _ = std::panic::catch_unwind(|| unsafe { f(ctx.0) });
            *done.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
            done.1.notify_all();
        })
        .map_err(Error::from)?;
        Ok(Box::into_raw(Box::new(async_worker_s { state })))
    })
}

/// STAND-IN: asks the worker to stop (the console body has its own pipe).
///
/// # Safety
///
/// `worker` is NULL or from `async_worker_create`.
#[no_mangle]
pub unsafe extern "C" fn async_worker_signal_stop(worker: *mut async_worker_t) {
    let _ = worker;
}

/// STAND-IN: waits up to `timeout_ms` (-1: forever) for the body to return.
///
/// # Safety
///
/// `worker` is from `async_worker_create`.
#[no_mangle]
pub unsafe extern "C" fn async_worker_join(worker: *mut async_worker_t, timeout_ms: c_int) -> bool {
    guard(false, || {
        if worker.is_null() {
            return Err(Error::invalid("worker is NULL"));
        }
        // SAFETY: the caller's promise above.
        let (m, cv) = &*unsafe { &*worker }.state;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        let done = if timeout_ms < 0 {
            *cv.wait_while(g, |d| !*d).unwrap_or_else(|e| e.into_inner())
        } else {
            let ms = Duration::from_millis(timeout_ms as u64);
            *cv.wait_timeout_while(g, ms, |d| !*d)
                .unwrap_or_else(|e| e.into_inner())
                .0
        };
        if done {
            Ok(true)
        } else {
            Err(Error::new(UNILOOP_ERR_TIMEOUT, "worker still running"))
        }
    })
}

/// STAND-IN: frees the handle (a running thread is detached).
///
/// # Safety
///
/// `worker` is NULL or from `async_worker_create`, destroyed once.
#[no_mangle]
pub unsafe extern "C" fn async_worker_destroy(worker: *mut async_worker_t) {
    if !worker.is_null() {
        // SAFETY: the caller's promise above.
        drop(unsafe { Box::from_raw(worker) });
    }
}
