//! Which handles are alive, so a call with a handle that was destroyed
//! (a poster thread racing `async_runtime_deinit`, a double destroy) gets an
//! error instead of touching freed memory.
//!
//! A handle is its address. Destroying takes it out of the set under the
//! write lock, so a call that found it under the read lock and still holds
//! that lock finishes before the memory goes. A new handle may later get the
//! same address; a stale pointer then names the new handle, as a reused fd
//! number does.

use std::collections::BTreeSet;
use std::sync::{RwLock, RwLockReadGuard};

pub(crate) struct Live(RwLock<BTreeSet<usize>>);

impl Live {
    pub(crate) const fn new() -> Live {
        Live(RwLock::new(BTreeSet::new()))
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeSet<usize>> {
        // Nothing panics while holding the lock; a poisoned set is intact.
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn insert<T>(&self, p: *const T) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p as usize);
    }

    /// Takes `p` out; false if it was not alive.
    pub(crate) fn remove<T>(&self, p: *const T) -> bool {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(p as usize))
    }

    pub(crate) fn contains<T>(&self, p: *const T) -> bool {
        !p.is_null() && self.read().contains(&(p as usize))
    }
}
