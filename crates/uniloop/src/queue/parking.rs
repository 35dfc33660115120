//! [`Parking`]: where one side of a [`Queue`](super::Queue) sleeps.

use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::lock;
use crate::sync::{fence, AtomicUsize, Condvar, Mutex, Ordering};

/// Where one side's blocked parties sleep: a mutex-guarded count of
/// sleepers and of wake-ups already sent to them, a condition variable, and
/// an atomic copy of `sleepers - woken` that the other side reads on its
/// fast path.
///
/// Counting the wake-ups sent is what keeps a syscall off every operation
/// while a sleeper is waking up: once every sleeper has been sent a
/// wake-up, `unwoken` is 0 and the other side skips the mutex and
/// `notify_one` entirely (crossbeam-channel gets the same effect by
/// unregistering a waiter as it notifies it).
///
/// Why no wake-up is lost: let `F` be the counted sleepers still blocked in
/// the condition variable and `P` those already out of it (notified or timed
/// out) that have not yet re-taken the mutex. `woken <= P` always holds:
/// `wake_one` adds a wake-up either by taking one sleeper out of `F` into
/// `P`, or only when `sleepers > woken` with `F` empty, i.e. `P > woken`; a
/// sleeper that re-takes the mutex leaves `P` and takes one wake-up with it
/// (if any). So `unwoken = F + P - woken >= F`: while anyone is still
/// blocked, `unwoken > 0` and the next wake reaches the condition variable.
/// A wake-up that finds nobody blocked costs one extra pass, never a lost
/// item, because every woken party tries its operation again.
pub(super) struct Parking {
    unwoken: CachePadded<AtomicUsize>,
    counts: Mutex<Sleepers>,
    cv: Condvar,
}

#[derive(Default)]
struct Sleepers {
    sleepers: usize,
    woken: usize,
}

impl Parking {
    pub(super) fn new() -> Parking {
        Parking {
            unwoken: CachePadded::new(AtomicUsize::new(0)),
            counts: Mutex::new(Sleepers::default()),
            cv: Condvar::new(),
        }
    }

    /// Registers as a sleeper, issues the `SeqCst` fence that pairs with
    /// the other side's fence after its operation, and blocks only if
    /// `still_blocked()` (checked after the fence) says so.
    pub(super) fn sleep(&self, timeout: Option<Duration>, still_blocked: impl FnOnce() -> bool) {
        let mut counts = lock(&self.counts);
        counts.sleepers += 1;
        self.publish(&counts);
        fence(Ordering::SeqCst);
        if !still_blocked() {
            // Nobody can have woken us: a waker needs the mutex we hold.
            counts.sleepers -= 1;
            self.publish(&counts);
            return;
        }
        counts = match timeout {
            None => self.cv.wait(counts).unwrap_or_else(|e| e.into_inner()),
            Some(t) => {
                self.cv
                    .wait_timeout(counts, t)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        counts.sleepers -= 1;
        counts.woken = counts.woken.saturating_sub(1);
        self.publish(&counts);
    }

    /// The fast-path check, after the caller's `SeqCst` fence.
    pub(super) fn has_unwoken(&self) -> bool {
        self.unwoken.load(Ordering::Relaxed) > 0
    }

    pub(super) fn wake_one(&self) {
        let mut counts = lock(&self.counts);
        if counts.sleepers > counts.woken {
            counts.woken += 1;
            self.publish(&counts);
            self.cv.notify_one();
        }
    }

    pub(super) fn wake_all(&self) {
        let mut counts = lock(&self.counts);
        counts.woken = counts.sleepers;
        self.publish(&counts);
        self.cv.notify_all();
    }

    /// Only ever written under `counts`, so the stores are in order.
    fn publish(&self, counts: &Sleepers) {
        self.unwoken
            .store(counts.sleepers - counts.woken, Ordering::Relaxed);
    }
}
