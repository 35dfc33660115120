//! TEMPORARY STAND-IN — delete this file at the merge with helper A's
//! `src/runtime.rs` (branch capi-a).
//!
//! The queue's signal and the worker pool post completions to an
//! `async_runtime_t`, which helper A's runtime owns. Until the merge, this
//! file provides the two crate-visible functions they assume that runtime
//! will expose, with exactly these signatures:
//!
//! ```text
//! pub(crate) fn poster_for(rt: *mut async_runtime_s, key: usize)
//!     -> error::Result<Box<dyn Fn() -> bool + Send + Sync>>;      // posts (key, 0)
//! pub(crate) fn completion_sink(rt: *mut async_runtime_s)
//!     -> error::Result<Arc<dyn Fn(usize, usize) -> bool + Send + Sync>>; // posts (key, data)
//! ```
//!
//! (each closure returns false once the runtime is gone), plus the struct
//! `async_runtime_s` / `async_runtime_t`. The merge: delete this file and
//! its `mod` line in lib.rs, and change `use crate::runtime_standin as
//! runtime;` in queue.rs and pool.rs to `use crate::runtime;`.
//!
//! It also exports three `uniloop_standin_*` functions so the C tests of
//! the signal and the pool can run before the merge; those tests mark the
//! lines to switch to `async_runtime_init` / `async_runtime_wait` /
//! `async_runtime_deinit`.

// The C API is reached by symbol name, not by Rust path, and keeps the
// reference's C spelling.
#![allow(unreachable_pub, non_camel_case_types)]

use std::collections::VecDeque;
use std::ffi::c_int;
use std::sync::{Arc, Mutex};

use crate::error::uniloop_error_t::*;
use crate::error::{guard, Error, Result};

/// TEMPORARY stand-in for helper A's runtime handle.
pub struct async_runtime_s {
    loop_: Mutex<Loop>,
    poster: rt::Poster,
}

struct Loop {
    rt: rt::Runtime,
    events: rt::Events,
    pending: VecDeque<(u64, u64)>,
}

/// The reference's name for the runtime handle.
pub type async_runtime_t = async_runtime_s;

/// A closure posting `(key, 0)` to the runtime behind `rt`.
pub(crate) fn poster_for(
    rt: *mut async_runtime_s,
    key: usize,
) -> Result<Box<dyn Fn() -> bool + Send + Sync>> {
    // SAFETY: callers pass a non-NULL, live runtime handle.
    let rt = unsafe { rt.as_ref() }.ok_or_else(|| Error::invalid("the runtime handle is NULL"))?;
    let poster = rt.poster.clone();
    Ok(Box::new(move || poster.post(key as u64, 0).is_ok()))
}

/// A closure posting `(key, data)` to the runtime behind `rt`.
pub(crate) fn completion_sink(
    rt: *mut async_runtime_s,
) -> Result<Arc<dyn Fn(usize, usize) -> bool + Send + Sync>> {
    // SAFETY: callers pass a non-NULL, live runtime handle.
    let rt = unsafe { rt.as_ref() }.ok_or_else(|| Error::invalid("the runtime handle is NULL"))?;
    let poster = rt.poster.clone();
    Ok(Arc::new(move |key, data| {
        poster.post(key as u64, data as u64).is_ok()
    }))
}

/// TEMPORARY (tests only, until the merge): a runtime; NULL on failure.
#[no_mangle]
pub extern "C" fn uniloop_standin_runtime_new() -> *mut async_runtime_t {
    guard(std::ptr::null_mut(), || {
        let rt = rt::Runtime::new()?;
        let poster = rt.poster();
        Ok(Box::into_raw(Box::new(async_runtime_s {
            loop_: Mutex::new(Loop {
                rt,
                events: rt::Events::with_capacity(64),
                pending: VecDeque::new(),
            }),
            poster,
        })))
    })
}

/// TEMPORARY (tests only): frees a runtime from `uniloop_standin_runtime_new`.
///
/// # Safety
///
/// `rt` is NULL or a live stand-in runtime.
#[no_mangle]
pub unsafe extern "C" fn uniloop_standin_runtime_free(rt: *mut async_runtime_t) {
    guard((), || {
        if rt.is_null() {
            return Err(Error::invalid("the runtime handle is NULL"));
        }
        // SAFETY: made by `Box::into_raw` above; freed once (contract).
        drop(unsafe { Box::from_raw(rt) });
        Ok(())
    })
}

/// TEMPORARY (tests only): waits up to `timeout_ms` (-1: forever) for one
/// completion; returns 1 and sets `*key`, `*data`, or 0 on timeout, -1 on
/// error.
///
/// # Safety
///
/// `rt` is NULL or a live stand-in runtime; `key`, `data` writable.
#[no_mangle]
pub unsafe extern "C" fn uniloop_standin_wait_completion(
    rt: *mut async_runtime_t,
    timeout_ms: c_int,
    key: *mut usize,
    data: *mut usize,
) -> c_int {
    guard(-1, || {
        // SAFETY: the caller's contract.
        let rt =
            unsafe { rt.as_ref() }.ok_or_else(|| Error::invalid("the runtime handle is NULL"))?;
        let mut l = rt.loop_.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = crate::timeout::deadline(timeout_ms);
        let mut polled = false;
        loop {
            if let Some((k, d)) = l.pending.pop_front() {
                // SAFETY: the caller's contract: writable or NULL.
                unsafe {
                    if let Some(key) = key.as_mut() {
                        *key = k as usize;
                    }
                    if let Some(data) = data.as_mut() {
                        *data = d as usize;
                    }
                }
                return Ok(1);
            }
            let timeout = match crate::timeout::left(deadline) {
                None => None,
                Some(Some(left)) => Some(left),
                // Out of time, but look at least once.
                Some(None) if !polled => Some(std::time::Duration::ZERO),
                Some(None) => return Ok(0),
            };
            polled = true;
            let Loop {
                rt,
                events,
                pending,
                ..
            } = &mut *l;
            rt.wait(events, timeout)
                .map_err(|e| Error::new(UNILOOP_ERR_OS, e.to_string()))?;
            for ev in events.iter() {
                if let rt::Event::Completion { key, data } = ev {
                    pending.push_back((*key, *data));
                }
            }
        }
    })
}
