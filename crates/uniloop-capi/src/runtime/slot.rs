//! The lock of a runtime's loop part: held by one call at a time, never
//! waited for (a second thread's call fails instead), and cheaper than a
//! `Mutex` for that: one atomic swap to take it, a plain store to give it
//! back, no poisoning (a panic in an earlier call leaves nothing
//! half-changed that matters more than refusing every later call would).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) struct Slot<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: as for a `Mutex`: the value is reached only through a `Held`,
// and `busy` lets one exist at a time; the value moves between threads
// only as a `T: Send` may.
unsafe impl<T: Send> Sync for Slot<T> {}

/// The slot, held; given back on drop (also while unwinding).
pub(super) struct Held<'a, T>(&'a Slot<T>);

impl<T> Slot<T> {
    pub(super) const fn new(value: T) -> Self {
        Slot {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The slot, unless a call holds it now.
    #[inline]
    pub(super) fn try_hold(&self) -> Option<Held<'_, T>> {
        if self.busy.swap(true, Ordering::Acquire) {
            None
        } else {
            Some(Held(self))
        }
    }

    /// The slot, once the call holding it (if any) gave it back.
    pub(super) fn hold(&self) -> Held<'_, T> {
        loop {
            if let Some(h) = self.try_hold() {
                return h;
            }
            std::thread::yield_now();
        }
    }
}

impl<T> Deref for Held<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: `busy` was false and this `Held` set it: no other `Held`
        // of the slot exists until this one is dropped.
        unsafe { &*self.0.value.get() }
    }
}

impl<T> DerefMut for Held<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the borrow unique.
        unsafe { &mut *self.0.value.get() }
    }
}

impl<T> Drop for Held<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Slot;

    #[test]
    fn one_holder_at_a_time() {
        let s = Slot::new(1);
        let mut h = s.try_hold().expect("free");
        assert!(s.try_hold().is_none());
        *h += 1;
        drop(h);
        assert_eq!(*s.hold(), 2);
    }

    #[test]
    fn threads_never_hold_it_together() {
        let s = Slot::new(0u64);
        std::thread::scope(|t| {
            for _ in 0..4 {
                t.spawn(|| {
                    for _ in 0..10_000 {
                        let mut h = s.hold();
                        let v = *h;
                        *h = v + 1;
                    }
                });
            }
        });
        assert_eq!(*s.hold(), 40_000);
    }
}
