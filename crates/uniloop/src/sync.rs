//! The synchronisation primitives the crate is built on, swapped for loom's
//! model-checked versions under `--cfg uniloop_loom` (the crossbeam-utils
//! pattern). Code above this module never names `std::sync` directly for
//! anything that takes part in a cross-thread protocol.

#[cfg(uniloop_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicU8, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};
#[cfg(not(uniloop_loom))]
#[allow(unused_imports)] // the queue and worker modules use the rest
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicU8, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

/// A cell for data whose accesses a protocol orders: loom's, which checks
/// that no two accesses race, or a thin wrapper over std's with the same
/// `with`/`with_mut` interface (the tokio and crossbeam pattern).
#[cfg(uniloop_loom)]
pub(crate) use loom::cell::UnsafeCell;

#[cfg(not(uniloop_loom))]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(uniloop_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// One step of a retry loop that waits for another thread's progress:
/// crossbeam's `Backoff` (`spin` after a lost race, `snooze` while a peer
/// finishes an operation). Under loom a yield, so the model schedules the
/// peer instead of exploring a busy loop.
#[cfg(not(uniloop_loom))]
pub(crate) fn backoff(b: &crossbeam_utils::Backoff, lost_race: bool) {
    if lost_race {
        b.spin();
    } else {
        b.snooze();
    }
}

#[cfg(uniloop_loom)]
pub(crate) fn backoff(_: &crossbeam_utils::Backoff, _lost_race: bool) {
    loom::thread::yield_now();
}

/// An unbounded multi-producer FIFO.
///
/// Normally crossbeam's lock-free `SegQueue`. Under loom it is a
/// `Mutex<VecDeque>`: `SegQueue` spins on std atomics that loom cannot see or
/// schedule, so a model would hang; the mutex version is linearizable too,
/// which is the only property the protocols built on it rely on.
pub(crate) struct FifoQueue<T> {
    #[cfg(not(uniloop_loom))]
    inner: crossbeam_queue::SegQueue<T>,
    #[cfg(uniloop_loom)]
    inner: Mutex<std::collections::VecDeque<T>>,
}

impl<T> FifoQueue<T> {
    pub(crate) fn new() -> Self {
        FifoQueue {
            inner: Default::default(),
        }
    }

    #[cfg(not(uniloop_loom))]
    pub(crate) fn push(&self, value: T) {
        self.inner.push(value);
    }

    #[cfg(not(uniloop_loom))]
    pub(crate) fn pop(&self) -> Option<T> {
        self.inner.pop()
    }

    #[cfg(not(uniloop_loom))]
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    #[cfg(not(uniloop_loom))]
    pub(crate) fn len(&self) -> usize {
        self.inner.len()
    }

    #[cfg(uniloop_loom)]
    pub(crate) fn push(&self, value: T) {
        self.inner.lock().unwrap().push_back(value);
    }

    #[cfg(uniloop_loom)]
    pub(crate) fn pop(&self) -> Option<T> {
        self.inner.lock().unwrap().pop_front()
    }

    #[cfg(uniloop_loom)]
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.lock().unwrap().is_empty()
    }

    #[cfg(uniloop_loom)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().unwrap().len()
    }
}
