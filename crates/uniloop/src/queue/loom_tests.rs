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
