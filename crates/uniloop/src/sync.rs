//! The synchronisation primitives the crate is built on, swapped for loom's
//! model-checked versions under `--cfg uniloop_loom` (the crossbeam-utils
//! pattern). Code above this module never names `std::sync` directly for
//! anything that takes part in a cross-thread protocol.

#[cfg(uniloop_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};
#[cfg(not(uniloop_loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering},
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

/// Gives the processor to another thread: std's, or under loom the model's
/// yield (so the model schedules the thread being waited for).
#[cfg(not(uniloop_loom))]
pub(crate) fn yield_now() {
    std::thread::yield_now();
}

#[cfg(uniloop_loom)]
pub(crate) fn yield_now() {
    loom::thread::yield_now();
}
