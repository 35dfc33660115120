//! [`Parking`]: where one side of a [`Queue`](super::Queue) sleeps.

use std::time::Duration;

use super::lock;
use crate::sync::{Condvar, Mutex};

/// Where one side's blocked parties sleep: a mutex-guarded count of
/// sleepers and of wake-ups already sent to them, and a condition variable.
/// What the other side reads on its fast path is not here but in the ring:
/// the `WAITER` flag of this side's [`End`], which is set exactly while
/// `sleepers - woken` (the *unwoken* sleepers) may be non-zero. Every
/// change of the flag happens under the mutex: a sleeper sets it as it
/// registers ([`Ring::park`](super::ring::Ring::park), an RMW that also
/// reads the word afresh), and whoever brings `unwoken` to 0 clears it.
///
/// Counting the wake-ups sent is what keeps a syscall off every operation
/// while a sleeper is waking up: once every sleeper has been sent a
/// wake-up, the flag is clear and the other side skips the mutex and
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
/// blocked, `unwoken > 0`, the flag stays set, and every operation of the
/// other side that completes meanwhile sees it and calls `wake_one`. A
/// wake-up that finds nobody blocked costs one extra pass, never a lost
/// item, because every woken party tries its operation again.
pub(super) struct Parking {
    end: End,
    counts: Mutex<Sleepers>,
    cv: Condvar,
}

#[derive(Default)]
struct Sleepers {
    sleepers: usize,
    woken: usize,
    /// Whether the flag is set: only this side's mutex holders change it,
    /// so this copy is exact and spares a redundant RMW on the other
    /// side's busiest word.
    flagged: bool,
}

/// Which end a parking party flags: poppers flag `tail` (pushers see it),
/// pushers flag `head` (poppers see it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    Head,
    Tail,
}

/// The flag's two operations on the ring, passed in so `Parking` does not
/// depend on the ring's item type.
pub(super) trait Flag {
    /// Sets the flag; `true` if the party must still block.
    fn park(&self, end: End) -> bool;
    /// Clears the flag.
    fn unpark(&self, end: End);
}

impl Parking {
    pub(super) fn new(end: End) -> Parking {
        Parking {
            end,
            counts: Mutex::new(Sleepers::default()),
            cv: Condvar::new(),
        }
    }

    /// Registers as a sleeper and sets the flag; blocks only if the ring
    /// (read by the flag's RMW) and `still_blocked()` say so.
    pub(super) fn sleep(
        &self,
        flag: &impl Flag,
        timeout: Option<Duration>,
        still_blocked: impl FnOnce() -> bool,
    ) {
        let mut counts = lock(&self.counts);
        counts.sleepers += 1;
        counts.flagged = true;
        if !flag.park(self.end) || !still_blocked() {
            // Nobody can have woken us: a waker needs the mutex we hold.
            counts.sleepers -= 1;
            self.settle(flag, &mut counts);
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
        self.settle(flag, &mut counts);
    }

    /// Called by the other side when its CAS saw the flag.
    pub(super) fn wake_one(&self, flag: &impl Flag) {
        let mut counts = lock(&self.counts);
        if counts.sleepers > counts.woken {
            counts.woken += 1;
            self.cv.notify_one();
        }
        self.settle(flag, &mut counts);
    }

    pub(super) fn wake_all(&self, flag: &impl Flag) {
        let mut counts = lock(&self.counts);
        counts.woken = counts.sleepers;
        self.settle(flag, &mut counts);
        self.cv.notify_all();
    }

    /// Clears the flag once nobody is left unwoken. Only ever called under
    /// `counts`, so no sleeper can be between registering and blocking.
    fn settle(&self, flag: &impl Flag, counts: &mut Sleepers) {
        if counts.flagged && counts.sleepers == counts.woken {
            counts.flagged = false;
            flag.unpark(self.end);
        }
    }
}
