//! `async_queue_*`: the reference's bounded byte-message queue, plus
//! `uniloop_queue_*` extras (a blocking dequeue, close, full statistics,
//! a completion signal to a runtime).
//!
//! # Why this is not `rt::Queue`
//!
//! The reference's `dequeue` into a buffer that is too small must fail and
//! leave the message at the head, where a later call with a big enough
//! buffer takes it. That needs "look at the head, then decide whether to
//! take it" as one step. The core `Queue<T>` is a lock-free ring whose only
//! way to look at an item is to pop it; giving it a peek would mean a lock
//! or a second protocol beside the proven one. A C byte queue also has no
//! use for the core's zero-lock fast path (every call copies bytes and
//! crosses the FFI), so this queue is a `VecDeque` of messages under one
//! `Mutex` with two `Condvar`s — short enough to check by reading.
//!
//! # Lifetime
//!
//! The handle C holds is an `Arc<async_queue_s>` turned into a raw pointer
//! (`Arc::into_raw`). A call that may block (`async_queue_enqueue` on a
//! full `BLOCK_WRITER` queue, `uniloop_queue_enqueue_timeout`,
//! `uniloop_queue_dequeue_timeout`) first takes a
//! reference of its own, so `async_queue_destroy` on another thread is
//! safe while it sleeps: destroy closes the queue (waking every sleeper,
//! whose call then fails with `UNILOOP_ERR_CLOSED`) and drops the caller's
//! reference; the memory goes when the last sleeper leaves. A call that
//! *starts* after destroy uses a freed handle, as with any C API.
//!
//! # The signal
//!
//! `uniloop_queue_set_signal(q, rt, key)` makes an enqueue that lands in an
//! empty queue post one completion `(key, 0)` to the runtime (the
//! reference's `SIGNAL_ON_DATA`, which there signalled nothing). The
//! consumer, on that completion, dequeues until the queue is empty; the
//! next message after that posts again, so no message is left without a
//! completion. A completion may find the queue already drained by an
//! earlier one; that is harmless. The post happens after the queue's lock
//! is released.
//!
//! No message is missed while the signal is being set: `set_signal` stores
//! the target and `has_signal` (Release) and then looks at the queue under
//! the state lock; an enqueue pushes under that lock and afterwards loads
//! `has_signal` (Acquire). If the enqueue took the lock first, the look
//! sees its message and posts; if `set_signal` did, its store happened
//! before the enqueue's load, which sees `true` and posts. (Both may post;
//! an extra completion is harmless.)

// The C API is reached by symbol name, not by Rust path, and keeps the
// reference's C spelling.
#![allow(unreachable_pub, non_camel_case_types)]

use std::collections::VecDeque;
use std::ffi::{c_int, c_uint, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::error::uniloop_error_t::*;
use crate::error::{self, guard, Error, Result};
use crate::runtime;
use crate::timeout;
use crate::types::UintPtr;

/// Behaviour flags of `async_queue_create`, combined with `|`. The values
/// are the reference's.
#[repr(C)]
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum async_queue_flags_t {
    /// A full queue drops its oldest message to make room (counted in
    /// `dropped_count`). Takes precedence over `ASYNC_QUEUE_BLOCK_WRITER`.
    ASYNC_QUEUE_DROP_OLDEST = 1,
    /// An enqueue on a full queue waits for room; a dequeue, `clear`,
    /// `uniloop_queue_close` or `async_queue_destroy` releases it.
    ASYNC_QUEUE_BLOCK_WRITER = 2,
    /// A message landing in an empty queue posts a completion to the
    /// runtime set by `uniloop_queue_set_signal` (which also enables it
    /// without this flag; with the flag and no runtime nothing is posted).
    ASYNC_QUEUE_SIGNAL_ON_DATA = 4,
}

/// What the C side passes as `async_queue_flags_t`: any combination of the
/// flags, so not the Rust enum (a combined value is no variant of it).
/// cbindgen prints it under the enum's name (see cbindgen.toml).
pub type AsyncQueueFlagBits = c_uint;

const DROP_OLDEST: c_uint = async_queue_flags_t::ASYNC_QUEUE_DROP_OLDEST as c_uint;
const BLOCK_WRITER: c_uint = async_queue_flags_t::ASYNC_QUEUE_BLOCK_WRITER as c_uint;
const KNOWN_FLAGS: c_uint =
    DROP_OLDEST | BLOCK_WRITER | async_queue_flags_t::ASYNC_QUEUE_SIGNAL_ON_DATA as c_uint;

/// The reference's queue statistics (`async_queue_get_stats`); 48 bytes
/// on 64-bit targets, laid out as in the reference header.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct async_queue_stats_t {
    /// The maximum number of messages.
    pub capacity: usize,
    /// Messages in the queue now.
    pub current_size: usize,
    /// The largest message accepted, in bytes.
    pub max_msg_size: usize,
    /// Messages accepted by an enqueue.
    pub enqueue_count: u64,
    /// Messages taken by a dequeue.
    pub dequeue_count: u64,
    /// Messages displaced by `ASYNC_QUEUE_DROP_OLDEST`.
    pub dropped_count: u64,
}

/// All of a queue's counters (`uniloop_queue_stats`). After a quiet
/// moment `enqueued == dequeued + dropped + cleared + len`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct uniloop_queue_stats_t {
    /// The maximum number of messages.
    pub capacity: usize,
    /// Messages in the queue now.
    pub len: usize,
    /// The largest message accepted, in bytes.
    pub max_msg_size: usize,
    /// The largest `len` ever reached.
    pub high_water: usize,
    /// Enqueues blocked on a full queue right now.
    pub blocked_writers: usize,
    /// Dequeues (`uniloop_queue_dequeue_timeout`) blocked on an empty
    /// queue right now.
    pub blocked_readers: usize,
    /// Messages accepted by an enqueue.
    pub enqueued: u64,
    /// Messages taken by a dequeue.
    pub dequeued: u64,
    /// Messages displaced by `ASYNC_QUEUE_DROP_OLDEST`.
    pub dropped: u64,
    /// Messages removed by `async_queue_clear`.
    pub cleared: u64,
    /// Enqueues refused: the queue was full (without `DROP_OLDEST` or
    /// `BLOCK_WRITER`, or past `uniloop_queue_enqueue_timeout`'s timeout),
    /// or the message was larger than `max_msg_size`.
    pub rejected: u64,
}

/// The completion a message landing in an empty queue triggers; returns
/// whether it was posted (false once the runtime is gone).
pub(crate) type Signal = Box<dyn Fn() -> bool + Send + Sync>;

/// A bounded FIFO of byte messages, each copied in and out. Opaque; made
/// by `async_queue_create`, freed by `async_queue_destroy`. Every function
/// may be called from any thread.
pub struct async_queue_s {
    state: Mutex<State>,
    /// A message arrived, or the queue was closed.
    readable: Condvar,
    /// Room appeared, or the queue was closed.
    writable: Condvar,
    capacity: usize,
    max_msg_size: usize,
    flags: c_uint,
    /// Set once a signal target exists, so an enqueue skips the signal
    /// mutex on queues that never signal. Written under `signal`'s lock;
    /// see "The signal" in the module docs for the ordering.
    has_signal: AtomicBool,
    signal: Mutex<Option<Arc<Signal>>>,
    /// A message is queued or the queue is closed: written under the
    /// state's lock whenever either changes, read without it by a dequeue
    /// that does not wait, so finding the queue empty (a loop's every
    /// turn) takes no lock. A false read races only with an enqueue that
    /// has not returned yet: the dequeue then came first.
    any: AtomicBool,
}

/// The reference's name for the queue handle.
pub type async_queue_t = async_queue_s;

#[derive(Default)]
struct State {
    msgs: VecDeque<Box<[u8]>>,
    closed: bool,
    high_water: usize,
    blocked_writers: usize,
    blocked_readers: usize,
    enqueued: u64,
    dequeued: u64,
    dropped: u64,
    cleared: u64,
    rejected: u64,
}

/// Why a take gave no message.
enum TakeError {
    /// The head message needs a buffer of this many bytes; it stays.
    TooSmall(usize),
    Empty,
    Closed,
    Timeout,
}

impl async_queue_s {
    fn new(capacity: usize, max_msg_size: usize, flags: c_uint) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::invalid(
                "async_queue_create: capacity must be at least 1",
            ));
        }
        if max_msg_size == 0 {
            return Err(Error::invalid(
                "async_queue_create: max_msg_size must be at least 1",
            ));
        }
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::invalid(format!(
                "async_queue_create: unknown flags {:#x}",
                flags & !KNOWN_FLAGS
            )));
        }
        Ok(async_queue_s {
            state: Mutex::new(State::default()),
            readable: Condvar::new(),
            writable: Condvar::new(),
            capacity,
            max_msg_size,
            flags,
            has_signal: AtomicBool::new(false),
            signal: Mutex::new(None),
            any: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned lock still
        // guards consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `async_queue_enqueue`: waits for room only with `BLOCK_WRITER`.
    fn enqueue(&self, data: &[u8]) -> Result<()> {
        let wait = (self.flags & BLOCK_WRITER != 0).then_some(None);
        self.enqueue_waiting(data, wait, None)
    }

    /// On a full queue without `DROP_OLDEST`: `wait` `None` refuses,
    /// `Some(None)` waits for room forever, `Some(Some(d))` until `d`, and
    /// while waiting gives up (`UNILOOP_ERR_CLOSED`) once `stop` is set
    /// ([`wake_writers`] wakes it to look).
    fn enqueue_waiting(
        &self,
        data: &[u8],
        wait: Option<Option<Instant>>,
        stop: Option<&AtomicBool>,
    ) -> Result<()> {
        if data.len() > self.max_msg_size {
            self.lock().rejected += 1;
            return Err(Error::new(
                UNILOOP_ERR_SIZE,
                format!(
                    "message of {} bytes is larger than the queue's max_msg_size ({})",
                    data.len(),
                    self.max_msg_size
                ),
            ));
        }
        if data.is_empty() {
            return Err(Error::invalid(
                "an empty message cannot be enqueued (size 0)",
            ));
        }
        // Copy before taking the lock.
        let msg: Box<[u8]> = data.into();
        let mut st = self.lock();
        loop {
            if st.closed {
                return Err(Error::new(UNILOOP_ERR_CLOSED, "the queue is closed"));
            }
            if st.msgs.len() < self.capacity {
                break;
            }
            if self.flags & DROP_OLDEST != 0 {
                st.msgs.pop_front();
                st.dropped += 1;
                break;
            }
            let Some(deadline) = wait else {
                st.rejected += 1;
                return Err(Error::new(UNILOOP_ERR_FULL, c"the queue is full"));
            };
            // Checked under the lock that `wake_writers` takes: a stop set
            // before it is seen here, one set after wakes the wait below.
            if stop.is_some_and(|s| s.load(Ordering::Acquire)) {
                return Err(Error::new(
                    UNILOOP_ERR_CLOSED,
                    "stopped while the queue was full",
                ));
            }
            st.blocked_writers += 1;
            st = match timeout::left(deadline) {
                None => self.writable.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(Some(left)) => {
                    self.writable
                        .wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                Some(None) => {
                    st.blocked_writers -= 1;
                    st.rejected += 1;
                    return Err(Error::new(
                        UNILOOP_ERR_TIMEOUT,
                        c"the queue stayed full until the timeout",
                    ));
                }
            };
            st.blocked_writers -= 1;
        }
        st.msgs.push_back(msg);
        self.any.store(true, Ordering::Release);
        st.enqueued += 1;
        let len = st.msgs.len();
        st.high_water = st.high_water.max(len);
        if st.blocked_readers > 0 {
            self.readable.notify_one();
        }
        drop(st);
        if len == 1 {
            self.fire();
        }
        Ok(())
    }

    fn fire(&self) {
        if !self.has_signal.load(Ordering::Acquire) {
            return;
        }
        let signal = self
            .signal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(signal) = signal {
            // A runtime that is gone cannot be told; the message stays
            // queued for whoever dequeues.
            let _ = signal();
        }
    }

    fn set_signal(&self, f: Signal) {
        {
            let mut slot = self.signal.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(Arc::new(f));
            self.has_signal.store(true, Ordering::Release);
        }
        // Messages already waiting get their completion now; otherwise
        // nothing would announce them.
        if !self.lock().msgs.is_empty() {
            self.fire();
        }
    }

    /// Copies the head message into `buf` and removes it, waiting until
    /// `deadline` for one when `wait` (a `None` deadline waits forever).
    fn take(
        &self,
        buf: &mut [u8],
        wait: bool,
        deadline: Option<Instant>,
    ) -> std::result::Result<usize, TakeError> {
        if !wait && !self.any.load(Ordering::Acquire) {
            return Err(TakeError::Empty);
        }
        let mut st = self.lock();
        loop {
            if let Some(head) = st.msgs.front() {
                let n = head.len();
                if n > buf.len() {
                    return Err(TakeError::TooSmall(n));
                }
                buf[..n].copy_from_slice(head);
                st.msgs.pop_front();
                self.any
                    .store(!st.msgs.is_empty() || st.closed, Ordering::Release);
                st.dequeued += 1;
                if st.blocked_writers > 0 {
                    self.writable.notify_one();
                }
                return Ok(n);
            }
            if st.closed {
                return Err(TakeError::Closed);
            }
            if !wait {
                return Err(TakeError::Empty);
            }
            st.blocked_readers += 1;
            st = match timeout::left(deadline) {
                None => self.readable.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(Some(left)) => {
                    self.readable
                        .wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                Some(None) => {
                    st.blocked_readers -= 1;
                    return Err(TakeError::Timeout);
                }
            };
            st.blocked_readers -= 1;
        }
    }

    fn clear(&self) {
        let mut st = self.lock();
        let n = st.msgs.len();
        st.msgs.clear();
        self.any.store(st.closed, Ordering::Release);
        st.cleared += n as u64;
        if st.blocked_writers > 0 {
            self.writable.notify_all();
        }
    }

    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        self.any.store(true, Ordering::Release);
        self.readable.notify_all();
        self.writable.notify_all();
    }

    fn stats(&self) -> uniloop_queue_stats_t {
        let st = self.lock();
        uniloop_queue_stats_t {
            capacity: self.capacity,
            len: st.msgs.len(),
            max_msg_size: self.max_msg_size,
            high_water: st.high_water,
            blocked_writers: st.blocked_writers,
            blocked_readers: st.blocked_readers,
            enqueued: st.enqueued,
            dequeued: st.dequeued,
            dropped: st.dropped,
            cleared: st.cleared,
            rejected: st.rejected,
        }
    }
}

/// Enqueues one message for the console worker: on a full queue it waits
/// for room whatever the flags (input can wait; nothing is dropped),
/// unless the queue has `DROP_OLDEST`, until `stop` is set.
pub(crate) fn enqueue_or_wait(q: &async_queue_s, data: &[u8], stop: &AtomicBool) -> Result<()> {
    q.enqueue_waiting(data, Some(None), Some(stop))
}

/// Wakes writers waiting for room so they look at their stop flag
/// ([`enqueue_or_wait`]).
pub(crate) fn wake_writers(q: &async_queue_s) {
    let _st = q.lock();
    q.writable.notify_all();
}

/// The largest message `q` takes.
pub(crate) fn max_msg_size(q: &async_queue_s) -> usize {
    q.max_msg_size
}

/// Makes a message landing in an empty `q` call `f` (which posts a
/// completion); replaces an earlier target.
pub(crate) fn set_signal(q: &async_queue_s, f: Signal) {
    q.set_signal(f);
}

/// Borrows the queue behind a handle.
///
/// # Safety
///
/// `q` is NULL or a handle from `async_queue_create` not yet destroyed.
pub(crate) unsafe fn queue_ref<'a>(q: *const async_queue_s) -> Result<&'a async_queue_s> {
    // SAFETY: the caller's contract: NULL or a live handle.
    unsafe { q.as_ref() }.ok_or_else(|| Error::invalid("the queue handle is NULL"))
}

/// A reference of the call's own, for calls that may block while another
/// thread destroys the handle.
///
/// # Safety
///
/// As [`queue_ref`].
unsafe fn queue_arc(q: *const async_queue_s) -> Result<Arc<async_queue_s>> {
    if q.is_null() {
        return Err(Error::invalid("the queue handle is NULL"));
    }
    // SAFETY: `q` came from `Arc::into_raw` in `async_queue_create` and the
    // handle's own reference is still alive (caller's contract), so the
    // count is at least one while we add ours.
    unsafe {
        Arc::increment_strong_count(q);
        Ok(Arc::from_raw(q))
    }
}

/// # Safety
///
/// `data` is NULL or points to `size` readable bytes.
unsafe fn bytes<'a>(data: *const c_void, size: usize) -> Result<&'a [u8]> {
    if size == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Error::invalid("data is NULL but size is not 0"));
    }
    // SAFETY: non-null and, by the caller's contract, `size` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) })
}

/// # Safety
///
/// `buf` is NULL or points to `size` writable bytes.
unsafe fn bytes_mut<'a>(buf: *mut c_void, size: usize) -> Result<&'a mut [u8]> {
    if size == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(Error::invalid("buffer is NULL but buffer_size is not 0"));
    }
    // SAFETY: non-null and, by the caller's contract, `size` writable bytes
    // that nothing else touches during the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), size) })
}

/// The message of a dequeue that found the queue empty.
const EMPTY: &std::ffi::CStr = c"the queue is empty";

/// Shared by both dequeues: copies the head into `buf` and sets
/// `*out_size` to its size, or, when `buf` is too small, to the size
/// needed (the message stays at the head).
///
/// # Safety
///
/// As `async_queue_dequeue`.
unsafe fn dequeue_into(
    q: &async_queue_s,
    buffer: *mut c_void,
    buffer_size: usize,
    out_size: *mut usize,
    wait: bool,
    deadline: Option<Instant>,
) -> Result<bool> {
    // SAFETY: the caller passes `buffer_size` writable bytes at `buffer`.
    let buf = unsafe { bytes_mut(buffer, buffer_size) }?;
    let put = |n: usize| {
        // SAFETY: `out_size` is NULL or a writable `size_t` (the contract).
        if let Some(out) = unsafe { out_size.as_mut() } {
            *out = n;
        }
    };
    match q.take(buf, wait, deadline) {
        Ok(n) => {
            put(n);
            Ok(true)
        }
        Err(TakeError::TooSmall(n)) => {
            put(n);
            Err(Error::new(
                UNILOOP_ERR_SIZE,
                format!(
                    "the buffer ({buffer_size} bytes) is too small for the next message \
                     ({n} bytes); it stays at the head"
                ),
            ))
        }
        Err(TakeError::Empty) => Err(Error::new(UNILOOP_ERR_EMPTY, EMPTY)),
        Err(TakeError::Closed) => Err(Error::new(
            UNILOOP_ERR_CLOSED,
            "the queue is closed and empty",
        )),
        Err(TakeError::Timeout) => Err(Error::new(
            UNILOOP_ERR_TIMEOUT,
            c"no message arrived before the timeout",
        )),
    }
}

/// Creates a queue of at most `capacity` messages of at most
/// `max_msg_size` bytes each; `flags` combines `async_queue_flags_t`
/// values (0 for none: a full queue refuses the enqueue).
///
/// Returns NULL on failure (a zero capacity or size, unknown flags).
#[no_mangle]
pub extern "C" fn async_queue_create(
    capacity: usize,
    max_msg_size: usize,
    flags: AsyncQueueFlagBits,
) -> *mut async_queue_t {
    guard(std::ptr::null_mut(), || {
        let q = async_queue_s::new(capacity, max_msg_size, flags)?;
        Ok(Arc::into_raw(Arc::new(q)).cast_mut())
    })
}

/// Destroys a queue and the messages in it. An enqueue blocked on it (or a
/// `uniloop_queue_dequeue_timeout`) on another thread returns false with
/// `UNILOOP_ERR_CLOSED`; the memory is freed when the last of them has
/// left. NULL is ignored (and recorded as `UNILOOP_ERR_INVALID`).
///
/// # Safety
///
/// `queue` is NULL or a live handle; no call may start on it after this.
#[no_mangle]
pub unsafe extern "C" fn async_queue_destroy(queue: *mut async_queue_t) {
    guard((), || {
        if queue.is_null() {
            return Err(Error::invalid("the queue handle is NULL"));
        }
        // SAFETY: a live handle made by `Arc::into_raw`; this takes back
        // the reference the handle owned.
        let q = unsafe { Arc::from_raw(queue.cast_const()) };
        q.close();
        Ok(())
    })
}

/// Copies `size` bytes at `data` into the queue as one message. A full
/// queue drops its oldest message (`ASYNC_QUEUE_DROP_OLDEST`), waits for
/// room (`ASYNC_QUEUE_BLOCK_WRITER`) or refuses (`UNILOOP_ERR_FULL`).
///
/// Returns false when the queue is full (without those flags), the
/// message is larger than `max_msg_size` (`UNILOOP_ERR_SIZE`) or empty,
/// or the queue is closed or destroyed while waiting (`UNILOOP_ERR_CLOSED`).
///
/// # Safety
///
/// `queue` is NULL or a live handle; `data` is NULL or `size` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn async_queue_enqueue(
    queue: *mut async_queue_t,
    data: *const c_void,
    size: usize,
) -> bool {
    guard(false, || {
        // Our own reference: the enqueue may block while another thread
        // destroys the handle.
        // SAFETY: the caller's contract on `queue`.
        let q = unsafe { queue_arc(queue) }?;
        // SAFETY: the caller's contract on `data` and `size`.
        let data = unsafe { bytes(data, size) }?;
        q.enqueue(data).map(|()| true)
    })
}

/// As `async_queue_enqueue`, but a full queue (without
/// `ASYNC_QUEUE_DROP_OLDEST`) is waited on for up to `timeout_ms`
/// milliseconds (`-1`: forever, `0`: not at all), whether or not the queue
/// has `ASYNC_QUEUE_BLOCK_WRITER`. Returns false with `UNILOOP_ERR_TIMEOUT`
/// if no room came (counted as rejected), and otherwise fails as
/// `async_queue_enqueue` does.
///
/// # Safety
///
/// As `async_queue_enqueue`.
#[no_mangle]
pub unsafe extern "C" fn uniloop_queue_enqueue_timeout(
    queue: *mut async_queue_t,
    data: *const c_void,
    size: usize,
    timeout_ms: c_int,
) -> bool {
    guard(false, || {
        let deadline = timeout::deadline(timeout_ms);
        // SAFETY: the caller's contract on `queue`.
        let q = unsafe { queue_arc(queue) }?;
        // SAFETY: the caller's contract on `data` and `size`.
        let data = unsafe { bytes(data, size) }?;
        q.enqueue_waiting(data, Some(deadline), None).map(|()| true)
    })
}

/// Takes the oldest message without waiting: copies it into `buffer` and
/// sets `*out_size` (if not NULL) to its size.
///
/// Returns false when the queue is empty (`UNILOOP_ERR_EMPTY`) or when the
/// message does not fit in `buffer_size` bytes (`UNILOOP_ERR_SIZE`): then
/// `*out_size` is set to the size it needs and the message stays at the
/// head. `buffer` may be NULL with `buffer_size` 0 to learn that size.
///
/// # Safety
///
/// `queue` is NULL or a live handle; `buffer` is NULL or `buffer_size`
/// writable bytes; `out_size` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn async_queue_dequeue(
    queue: *mut async_queue_t,
    buffer: *mut c_void,
    buffer_size: usize,
    out_size: *mut usize,
) -> bool {
    // A loop drains its queue every turn and mostly finds it empty: that
    // answer is one load and the error code (static text), nothing
    // allocated, formatted or locked. A bad buffer still gets its error.
    // SAFETY: the caller's contract: NULL or a live handle.
    if let Some(q) = unsafe { queue.as_ref() } {
        if !q.any.load(Ordering::Acquire) && (buffer_size == 0 || !buffer.is_null()) {
            error::set_text(UNILOOP_ERR_EMPTY, EMPTY);
            return false;
        }
    }
    // SAFETY: the caller's contracts, passed on.
    unsafe { dequeue_now(queue, buffer, buffer_size, out_size) }
}

/// `async_queue_dequeue` past its look at an empty queue; apart, so that
/// the look saves and restores no registers.
///
/// # Safety
///
/// As `async_queue_dequeue`.
#[inline(never)]
unsafe fn dequeue_now(
    queue: *mut async_queue_t,
    buffer: *mut c_void,
    buffer_size: usize,
    out_size: *mut usize,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's contracts, passed on.
        unsafe {
            let q = queue_ref(queue)?;
            dequeue_into(q, buffer, buffer_size, out_size, false, None)
        }
    })
}

/// As `async_queue_dequeue`, but waits up to `timeout_ms` milliseconds for
/// a message (`-1` waits forever, `0` does not wait). Returns false with
/// `UNILOOP_ERR_TIMEOUT` when none came, `UNILOOP_ERR_CLOSED` when the
/// queue is closed (or destroyed) and empty, `UNILOOP_ERR_SIZE` (without
/// waiting) when the head message does not fit.
///
/// # Safety
///
/// As `async_queue_dequeue`.
#[no_mangle]
pub unsafe extern "C" fn uniloop_queue_dequeue_timeout(
    queue: *mut async_queue_t,
    buffer: *mut c_void,
    buffer_size: usize,
    out_size: *mut usize,
    timeout_ms: c_int,
) -> bool {
    guard(false, || {
        let deadline = timeout::deadline(timeout_ms);
        // SAFETY: the caller's contracts, passed on.
        unsafe {
            let q = queue_arc(queue)?;
            dequeue_into(&q, buffer, buffer_size, out_size, true, deadline)
        }
    })
}

/// Whether the queue holds no message. A NULL handle counts as empty, as
/// in the reference (and records `UNILOOP_ERR_INVALID`).
///
/// # Safety
///
/// `queue` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn async_queue_is_empty(queue: *const async_queue_t) -> bool {
    guard(true, || {
        // SAFETY: the caller's contract.
        let q = unsafe { queue_ref(queue) }?;
        Ok(q.lock().msgs.is_empty())
    })
}

/// Whether the queue holds `capacity` messages. False for a NULL handle
/// (which records `UNILOOP_ERR_INVALID`).
///
/// # Safety
///
/// `queue` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn async_queue_is_full(queue: *const async_queue_t) -> bool {
    guard(false, || {
        // SAFETY: the caller's contract.
        let q = unsafe { queue_ref(queue) }?;
        Ok(q.lock().msgs.len() >= q.capacity)
    })
}

/// Removes every message (counted in `uniloop_queue_stats_t.cleared`);
/// enqueues blocked on the full queue go ahead.
///
/// # Safety
///
/// `queue` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn async_queue_clear(queue: *mut async_queue_t) {
    guard((), || {
        // SAFETY: the caller's contract.
        unsafe { queue_ref(queue) }?.clear();
        Ok(())
    })
}

/// Fills `*stats` with the reference's counters (all zero for a NULL
/// handle, which records `UNILOOP_ERR_INVALID`).
///
/// # Safety
///
/// `queue` is NULL or a live handle; `stats` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn async_queue_get_stats(
    queue: *const async_queue_t,
    stats: *mut async_queue_stats_t,
) {
    guard((), || {
        // SAFETY: the caller's contract: NULL or writable.
        let out = unsafe { stats.as_mut() }.ok_or_else(|| Error::invalid("stats is NULL"))?;
        *out = async_queue_stats_t::default();
        // SAFETY: the caller's contract.
        let s = unsafe { queue_ref(queue) }?.stats();
        *out = async_queue_stats_t {
            capacity: s.capacity,
            current_size: s.len,
            max_msg_size: s.max_msg_size,
            enqueue_count: s.enqueued,
            dequeue_count: s.dequeued,
            dropped_count: s.dropped,
        };
        Ok(())
    })
}

/// Fills `*stats` with every counter of the queue. Returns false for a
/// NULL argument.
///
/// # Safety
///
/// `queue` is NULL or a live handle; `stats` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn uniloop_queue_stats(
    queue: *const async_queue_t,
    stats: *mut uniloop_queue_stats_t,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's contract: NULL or writable.
        let out = unsafe { stats.as_mut() }.ok_or_else(|| Error::invalid("stats is NULL"))?;
        // SAFETY: the caller's contract.
        *out = unsafe { queue_ref(queue) }?.stats();
        Ok(true)
    })
}

/// Closes the queue: enqueues fail with `UNILOOP_ERR_CLOSED`, dequeues
/// take what is left and then fail with `UNILOOP_ERR_CLOSED`; every
/// blocked enqueue and dequeue returns. Closing twice is harmless.
/// Returns false for a NULL handle.
///
/// # Safety
///
/// `queue` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn uniloop_queue_close(queue: *mut async_queue_t) -> bool {
    guard(false, || {
        // SAFETY: the caller's contract.
        unsafe { queue_ref(queue) }?.close();
        Ok(true)
    })
}

/// Makes a message landing in an empty queue post one completion
/// `(key, 0)` to `runtime` (`ASYNC_QUEUE_SIGNAL_ON_DATA`). On that
/// completion, dequeue until the queue is empty; the next message posts
/// again. If the queue already holds messages, one completion is posted
/// now. Calling it again replaces the target. The runtime must outlive
/// the queue's use of it; after `async_runtime_deinit` the posts are
/// skipped. Returns false for NULL arguments.
///
/// # Safety
///
/// `queue` is NULL or a live handle; `runtime` is NULL or a live runtime.
#[no_mangle]
pub unsafe extern "C" fn uniloop_queue_set_signal(
    queue: *mut async_queue_t,
    runtime: *mut runtime::async_runtime_t,
    key: UintPtr,
) -> bool {
    guard(false, || {
        // SAFETY: the caller's contract.
        let q = unsafe { queue_ref(queue) }?;
        if runtime.is_null() {
            return Err(Error::invalid("the runtime handle is NULL"));
        }
        let post = runtime::poster_for(runtime, key)?;
        set_signal(q, post);
        Ok(true)
    })
}
