//! A counting global allocator for the memory case: while counting is on, it
//! keeps the net number of heap bytes allocated. Off (the default) it costs
//! one uncontended relaxed load per call, so the throughput cases do not
//! pay for it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);
static NET_BYTES: AtomicIsize = AtomicIsize::new(0);

/// The process's allocator: `System`, plus a byte count when switched on.
#[derive(Debug)]
pub(crate) struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping
// touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        NET_BYTES.fetch_add(delta, Ordering::Relaxed);
    }
}

/// Net heap bytes allocated while `f` runs (on any thread), and its result.
pub(crate) fn measure<R>(f: impl FnOnce() -> R) -> (isize, R) {
    NET_BYTES.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let r = f();
    COUNTING.store(false, Ordering::SeqCst);
    (NET_BYTES.load(Ordering::SeqCst), r)
}
