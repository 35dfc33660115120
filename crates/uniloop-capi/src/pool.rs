//! `uniloop_pool_*`: a worker pool for C jobs. N `rt::Worker` threads take
//! jobs `(fn, arg)` from one bounded `rt::Queue`; each finished job posts
//! the completion `(key, job id)` to the runtime, so the loop learns which
//! of its requests is done from the completion alone.
//!
//! Not `rt::WorkerPool`: that pool keeps each job's Rust return value for
//! `take_result` and needs an `rt::Poster`, while a C job returns nothing
//! (its `arg` carries the result) and this layer reaches the runtime
//! through a completion sink (`runtime::completion_sink`). What remains is
//! a queue and a loop per thread, both from the core.

// The C API is reached by symbol name, not by Rust path, and keeps the
// reference's C spelling.
#![allow(unreachable_pub, non_camel_case_types)]

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::uniloop_error_t::*;
use crate::error::{guard, Error};
use crate::runtime;
use crate::types::UintPtr;

/// How many submitted jobs may wait for a thread; a submit beyond that
/// fails with `UNILOOP_ERR_FULL`.
pub const UNILOOP_POOL_QUEUE_CAPACITY: usize = 1024;

/// The most threads a pool may have.
pub const UNILOOP_POOL_MAX_THREADS: usize = 256;

/// A job: called once with its `arg` on one of the pool's threads.
pub type uniloop_job_fn = Option<unsafe extern "C" fn(arg: *mut c_void)>;

type Sink = Arc<dyn Fn(usize, usize) -> bool + Send + Sync>;

struct Job {
    id: usize,
    run: unsafe extern "C" fn(*mut c_void),
    arg: Arg,
    /// The completion's data is `arg` (`uniloop_pool_submit_arg`), not `id`.
    post_arg: bool,
}

struct Arg(*mut c_void);

// SAFETY: the C caller hands `arg` to a pool thread; making it safe to use
// there is the caller's side of `uniloop_pool_submit`.
unsafe impl Send for Arg {}

/// A pool of worker threads running C jobs. Opaque; made by
/// `uniloop_pool_create`, freed by `uniloop_pool_destroy`.
pub struct uniloop_pool_s {
    jobs: rt::Queue<Job>,
    workers: Mutex<Vec<rt::Worker<()>>>,
    next_id: AtomicUsize,
}

/// The pool handle.
pub type uniloop_pool_t = uniloop_pool_s;

impl uniloop_pool_s {
    /// Refuses new jobs, lets the threads finish the queued ones, joins
    /// them.
    fn shut_down(&self) {
        self.jobs.close();
        for w in std::mem::take(&mut *lock(&self.workers)) {
            // A C job cannot panic (a foreign unwind aborts).
            let _ = w.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while this lock is held.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// The pool whose job runs on this thread (its address), so a job
    /// destroying its own pool is refused instead of joining itself.
    static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
}

fn work(pool: usize, jobs: &rt::Queue<Job>, sink: &Sink, key: usize) {
    CURRENT_POOL.with(|c| c.set(pool));
    // `pop` fails once the queue is closed and drained: every job
    // submitted before the destroy still runs and posts.
    while let Ok(job) = jobs.pop() {
        // SAFETY: the C caller's job and argument, called once on a pool
        // thread as `uniloop_pool_submit` documents.
        unsafe { (job.run)(job.arg.0) };
        let data = if job.post_arg {
            job.arg.0 as usize
        } else {
            job.id
        };
        // A runtime that is gone cannot be told.
        let _ = sink(key, data);
    }
}

/// Creates a pool of `threads` threads (1 to `UNILOOP_POOL_MAX_THREADS`)
/// whose finished jobs post `(key, job id)` to `runtime`. Returns NULL on
/// failure: a NULL runtime, a bad count, or a thread that could not be
/// made (those already made are stopped and joined).
///
/// # Safety
///
/// `runtime` is NULL or a live runtime, which must outlive the pool's
/// posts (after `async_runtime_deinit` they are skipped).
#[no_mangle]
pub unsafe extern "C" fn uniloop_pool_create(
    runtime: *mut runtime::async_runtime_t,
    threads: usize,
    key: UintPtr,
) -> *mut uniloop_pool_t {
    guard(std::ptr::null_mut(), || {
        if runtime.is_null() {
            return Err(Error::invalid("the runtime handle is NULL"));
        }
        if threads == 0 || threads > UNILOOP_POOL_MAX_THREADS {
            return Err(Error::invalid(format!(
                "threads must be 1 to {UNILOOP_POOL_MAX_THREADS}, not {threads}"
            )));
        }
        let sink = runtime::completion_sink(runtime)?;
        // Allocated first: the threads learn its (stable) address.
        let pool = Box::new(uniloop_pool_s {
            jobs: rt::Queue::bounded(UNILOOP_POOL_QUEUE_CAPACITY, rt::Overflow::Reject),
            workers: Mutex::new(Vec::with_capacity(threads)),
            next_id: AtomicUsize::new(1),
        });
        let addr = &*pool as *const uniloop_pool_s as usize;
        for n in 0..threads {
            let (jobs, sink) = (pool.jobs.clone(), sink.clone());
            let spawned = rt::Worker::builder()
                .name(format!("uniloop-pool-{n}"))
                .spawn(move |_stop| work(addr, &jobs, &sink, key));
            match spawned {
                Ok(w) => lock(&pool.workers).push(w),
                Err(e) => {
                    pool.shut_down();
                    return Err(Error::new(
                        UNILOOP_ERR_OS,
                        format!("cannot create a pool thread: {e}"),
                    ));
                }
            }
        }
        Ok(Box::into_raw(pool))
    })
}

fn submit(
    pool: *mut uniloop_pool_t,
    job: uniloop_job_fn,
    arg: *mut c_void,
    post_arg: bool,
) -> crate::error::Result<UintPtr> {
    // SAFETY: the caller's contract: NULL or a live pool.
    let pool = unsafe { pool.as_ref() }.ok_or_else(|| Error::invalid("the pool handle is NULL"))?;
    let run = job.ok_or_else(|| Error::invalid("the job function is NULL"))?;
    // Relaxed: only uniqueness matters. 0 is skipped on wrap-around.
    let mut id = pool.next_id.fetch_add(1, Ordering::Relaxed);
    if id == 0 {
        id = pool.next_id.fetch_add(1, Ordering::Relaxed);
    }
    let job = Job {
        id,
        run,
        arg: Arg(arg),
        post_arg,
    };
    match pool.jobs.try_push(job) {
        Ok(()) => Ok(id),
        Err(rt::PushError::Closed(_)) => {
            Err(Error::new(UNILOOP_ERR_CLOSED, "the pool is shutting down"))
        }
        Err(_) => Err(Error::new(
            UNILOOP_ERR_FULL,
            format!("{UNILOOP_POOL_QUEUE_CAPACITY} jobs are already waiting"),
        )),
    }
}

/// Queues `job(arg)` to run on one of the pool's threads; when it has
/// returned, the completion `(key, id)` is posted. Returns the job's id
/// (never 0), or 0 on failure: a NULL argument, or `UNILOOP_ERR_FULL` when
/// `UNILOOP_POOL_QUEUE_CAPACITY` jobs are already waiting. Any thread may
/// submit.
///
/// # Safety
///
/// `pool` is NULL or a live pool; `job` is safe to call with `arg` on
/// another thread.
#[no_mangle]
pub unsafe extern "C" fn uniloop_pool_submit(
    pool: *mut uniloop_pool_t,
    job: uniloop_job_fn,
    arg: *mut c_void,
) -> UintPtr {
    guard(0, || submit(pool, job, arg, false))
}

/// As `uniloop_pool_submit`, but the completion carries the caller's
/// argument: `(key, (uintptr_t)arg)`, so the loop gets back the job's
/// own state (libuv's `uv_work_t` style) without a table of ids. Returns
/// the job's id (never 0), or 0 on failure.
///
/// # Safety
///
/// As `uniloop_pool_submit`.
#[no_mangle]
pub unsafe extern "C" fn uniloop_pool_submit_arg(
    pool: *mut uniloop_pool_t,
    job: uniloop_job_fn,
    arg: *mut c_void,
) -> UintPtr {
    guard(0, || submit(pool, job, arg, true))
}

/// Jobs submitted and not yet started (0 for NULL).
///
/// # Safety
///
/// `pool` is NULL or a live pool.
#[no_mangle]
pub unsafe extern "C" fn uniloop_pool_pending(pool: *const uniloop_pool_t) -> usize {
    guard(0, || {
        // SAFETY: the caller's contract: NULL or a live pool.
        let pool =
            unsafe { pool.as_ref() }.ok_or_else(|| Error::invalid("the pool handle is NULL"))?;
        Ok(pool.jobs.len())
    })
}

/// Stops the pool: no job may be submitted any more, every job already
/// submitted still runs (and posts its completion), then the threads are
/// joined. Blocks until then. Called from one of the pool's own jobs it
/// fails with `UNILOOP_ERR_INVALID` (it would wait for itself).
///
/// # Safety
///
/// `pool` is NULL or a live pool; no call may start on it after this.
#[no_mangle]
pub unsafe extern "C" fn uniloop_pool_destroy(pool: *mut uniloop_pool_t) {
    guard((), || {
        if pool.is_null() {
            return Err(Error::invalid("the pool handle is NULL"));
        }
        if CURRENT_POOL.with(|c| c.get()) == pool as usize {
            return Err(Error::invalid("a pool's job cannot destroy its own pool"));
        }
        // SAFETY: made by `Box::into_raw` in `uniloop_pool_create`; freed
        // once (the caller's contract).
        unsafe { Box::from_raw(pool) }.shut_down();
        Ok(())
    })
}
