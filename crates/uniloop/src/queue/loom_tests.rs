//! Model checks of `Queue`: a lost wake-up shows up as a loom deadlock, a flood as
//! a failed assertion.
use super::*;
use crate::sync::{Condvar, Mutex};

/// Stands in for the runtime: counts signals; the consumer blocks on it.
#[derive(Default)]
struct Doorbell {
    rung: Mutex<usize>,
    cv: Condvar,
}

impl Doorbell {
    fn ring(&self) {
        *self.rung.lock().unwrap() += 1;
        self.cv.notify_one();
    }

    /// Blocks until at least one signal arrived; returns how many.
    fn take(&self) -> usize {
        let mut rung = self.rung.lock().unwrap();
        while *rung == 0 {
            rung = self.cv.wait(rung).unwrap();
        }
        std::mem::take(&mut *rung)
    }
}

#[test]
fn loom_signal_two_producers_never_lost_never_flooded() {
    loom::model(|| {
        let q = Queue::bounded(4, Overflow::Reject);
        let bell = Arc::new(Doorbell::default());
        let b = bell.clone();
        q.signal_with(Box::new(move || b.ring()));
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let q = q.clone();
                loom::thread::spawn(move || q.push(p).unwrap())
            })
            .collect();
        let mut got = Vec::new();
        let mut signals = 0;
        // The loop's side: sleep until signalled, then drain.
        while got.len() < 2 {
            signals += bell.take();
            while let Some(v) = q.try_pop() {
                got.push(v);
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        assert!(signals <= 2, "{signals} signals for 2 pushes");
    });
}

/// Broken on purpose (queue.rs, `try_pop`: ignore what `ring.arm()` read
/// and report empty at once, i.e. arm without looking again): loom reports
/// a deadlock, the consumer asleep on the doorbell with an item queued.
#[test]
fn loom_signal_after_drain_resignals() {
    loom::model(|| {
        let q = Queue::bounded(4, Overflow::Reject);
        let bell = Arc::new(Doorbell::default());
        let b = bell.clone();
        q.signal_with(Box::new(move || b.ring()));
        let producer = {
            let q = q.clone();
            loom::thread::spawn(move || {
                q.push(1u32).unwrap();
                q.push(2).unwrap();
            })
        };
        let mut got = Vec::new();
        while got.len() < 2 {
            bell.take();
            while let Some(v) = q.try_pop() {
                got.push(v);
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [1, 2]);
    });
}

/// Both sides park here (capacity 1). Broken on purpose, each time loom
/// reports a deadlock: (1) queue.rs `after_push` ignores `pushed.waiter`
/// (no wake for a parked popper); (2) ring.rs `park(End::Tail)` reads the
/// tail with a plain load *before* its `fetch_or`, so a push between the
/// two is neither seen by the popper nor sees the flag; (3) queue.rs
/// `try_pop` ignores the pop's `waiter` (no wake for a parked pusher).
#[test]
fn loom_blocking_push_and_pop() {
    loom::model(|| {
        let q = Queue::bounded(1, Overflow::Block);
        let producer = {
            let q = q.clone();
            loom::thread::spawn(move || {
                q.push(1u32).unwrap();
                q.push(2).unwrap();
            })
        };
        assert_eq!(q.pop(), Ok(1));
        assert_eq!(q.pop(), Ok(2));
        producer.join().unwrap();
    });
}

#[test]
fn loom_two_blocked_pushers_one_popper() {
    // Three threads over the ring's spin-and-retry paths: bounded
    // harder than the others so the model finishes in CI time.
    let mut model = loom::model::Builder::new();
    model.max_branches = 100_000;
    model.preemption_bound = Some(1);
    model.check(|| {
        let q = Queue::bounded(1, Overflow::Block);
        q.push(0u32).unwrap();
        let pushers: Vec<_> = (1..=2u32)
            .map(|v| {
                let q = q.clone();
                loom::thread::spawn(move || q.push(v).unwrap())
            })
            .collect();
        let mut got: Vec<u32> = (0..3).map(|_| q.pop().unwrap()).collect();
        for p in pushers {
            p.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
    });
}

#[test]
fn loom_close_wakes_blocked_popper_and_pusher() {
    loom::model(|| {
        let q = Queue::<u32>::bounded(1, Overflow::Block);
        let popper = {
            let q = q.clone();
            loom::thread::spawn(move || q.pop())
        };
        q.close();
        assert_eq!(popper.join().unwrap(), Err(PopError::Closed));
    });
    loom::model(|| {
        let q = Queue::bounded(1, Overflow::Block);
        q.push(0u32).unwrap();
        let pusher = {
            let q = q.clone();
            loom::thread::spawn(move || q.push(1))
        };
        q.close();
        let res = pusher.join().unwrap();
        assert!(matches!(res, Err(PushError::Closed(1))));
    });
}

/// Drains like the loop does: pops until empty, counting the pops that
/// found the queue empty (each re-arms the signal at most once).
fn drain(q: &Queue<u32>, got: &mut Vec<u32>) -> usize {
    while let Some(v) = q.try_pop() {
        got.push(v);
    }
    1
}

#[test]
fn loom_signal_burst_posts_once_per_drain() {
    // `ARMED` is taken by the one push whose CAS finds it: a burst of
    // pushes before the consumer drains again posts once. Counted: every
    // completion is owed to the arming by `signal` or by a drain that
    // found the queue empty, so `signals <= 1 + drains`.
    //
    // Broken on purpose (ring.rs, `push_or_else`: the CAS keeps `ARMED`,
    // `new_tail | (word & (self.waiter() | self.armed()))`, so every push
    // sees it): fails with "3 signals for 1 drain(s)".
    loom::model(|| {
        let q = Queue::bounded(4, Overflow::Reject);
        let bell = Arc::new(Doorbell::default());
        let b = bell.clone();
        q.signal_with(Box::new(move || b.ring()));
        let producer = {
            let q = q.clone();
            loom::thread::spawn(move || {
                for v in 0..3u32 {
                    q.push(v).unwrap();
                }
            })
        };
        let mut got = Vec::new();
        let mut signals = 0;
        let mut drains = 0;
        while got.len() < 3 {
            signals += bell.take();
            drains += drain(&q, &mut got);
            assert!(
                signals <= 1 + drains,
                "{signals} signals for {drains} drain(s)"
            );
        }
        producer.join().unwrap();
        assert_eq!(got, [0, 1, 2]);
    });
}

#[test]
fn loom_drop_oldest_keeps_the_signal() {
    // A displacing push moves `head` and then `tail`; meanwhile the ring
    // looks empty (tail == head), so a draining consumer may arm the
    // signal right then and stop. The displacing push's update of `tail`
    // must therefore take `ARMED` like any push (and post), not overwrite
    // the word. Item 1 is queued before the signal is attached, so the
    // race needs only two preemptions.
    //
    // Broken on purpose, twice (ring.rs, `force_push`): reporting
    // `armed: false` from the displacing path makes loom report a deadlock
    // (the consumer asleep on the doorbell with item 3 queued); replacing
    // the CAS loop on `tail` by a load and `ArrayQueue`'s plain store,
    // `self.tail.store(new_tail | (word & self.waiter()), SeqCst)`, makes
    // the model fail too ("Model exceeded maximum number of branches", the
    // consumer retrying in `Ring::pop`).
    loom::model(|| {
        let q = Queue::bounded(1, Overflow::DropOldest);
        q.push(1u32).unwrap();
        let bell = Arc::new(Doorbell::default());
        let b = bell.clone();
        q.signal_with(Box::new(move || b.ring()));
        let producer = {
            let q = q.clone();
            loom::thread::spawn(move || {
                q.push(2).unwrap();
                q.push(3).unwrap();
            })
        };
        // Items may be displaced; the last one never is.
        let mut got = Vec::new();
        while got.last() != Some(&3) {
            bell.take();
            drain(&q, &mut got);
        }
        producer.join().unwrap();
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
    });
}

#[test]
fn loom_two_blocked_poppers_one_pusher() {
    // Two poppers parked on `tail`'s `WAITER` flag at once: the flag stays
    // set until both have been sent a wake-up. Bounded like the pushers'
    // mirror image above.
    //
    // Broken on purpose (parking.rs, `settle`: clear the flag once any
    // wake-up was sent, `counts.woken > 0`, instead of once nobody is left
    // unwoken): loom reports a deadlock, one popper asleep with item 2
    // queued.
    let mut model = loom::model::Builder::new();
    model.max_branches = 100_000;
    model.preemption_bound = Some(1);
    model.check(|| {
        let q = Queue::bounded(1, Overflow::Block);
        let poppers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                loom::thread::spawn(move || q.pop().unwrap())
            })
            .collect();
        q.push(1u32).unwrap();
        q.push(2).unwrap();
        let mut got: Vec<u32> = poppers.into_iter().map(|p| p.join().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}
