//! crossbeam-queue's `ArrayQueue` (0.3.12) ported onto loom's atomics and
//! cells, for the model tests only: the same stamps, laps, orderings and
//! fences, with `Backoff` replaced by `loom::thread::yield_now` so loom can
//! schedule the spinning thread's peers.

use std::mem::MaybeUninit;

use loom::cell::UnsafeCell;

use crate::sync::{fence, AtomicUsize, Ordering};

struct Slot<T> {
    /// `tail + 1` once written for lap `tail`; `head + one_lap` once read.
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

pub(crate) struct Ring<T> {
    head: AtomicUsize,
    tail: AtomicUsize,
    buffer: Box<[Slot<T>]>,
    cap: usize,
    one_lap: usize,
}

// SAFETY: a value is written by exactly one pusher (the one whose CAS
// claimed the slot) and read by exactly one popper (the one whose CAS
// claimed it), and the stamp's release/acquire pair orders the two; so
// sharing the ring only moves `T`s between threads, which `T: Send` allows.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: the ring owns its `T`s; sending it sends them.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Ring<T> {
    pub(crate) fn new(cap: usize) -> Ring<T> {
        assert!(cap > 0, "capacity must be non-zero");
        let buffer = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Ring {
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            buffer,
            cap,
            one_lap: (cap + 1).next_power_of_two(),
        }
    }

    fn push_or_else<F>(&self, mut value: T, f: F) -> Result<(), T>
    where
        F: Fn(T, usize, usize, &Slot<T>) -> Result<T, T>,
    {
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let index = tail & (self.one_lap - 1);
            let lap = tail & !(self.one_lap - 1);
            let new_tail = if index + 1 < self.cap {
                tail + 1
            } else {
                lap.wrapping_add(self.one_lap)
            };
            let slot = &self.buffer[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                match self.tail.compare_exchange_weak(
                    tail,
                    new_tail,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the CAS gave this thread the slot; no
                        // popper reads it until the stamp below says so.
                        slot.value
                            .with_mut(|p| unsafe { p.write(MaybeUninit::new(value)) });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(t) => {
                        tail = t;
                        loom::thread::yield_now();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                fence(Ordering::SeqCst);
                value = f(value, tail, new_tail, slot)?;
                loom::thread::yield_now();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                loom::thread::yield_now();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        self.push_or_else(value, |v, tail, _, _| {
            let head = self.head.load(Ordering::Relaxed);
            if head.wrapping_add(self.one_lap) == tail {
                Err(v)
            } else {
                Ok(v)
            }
        })
    }

    pub(crate) fn force_push(&self, value: T) -> Option<T> {
        self.push_or_else(value, |v, tail, new_tail, slot| {
            let head = tail.wrapping_sub(self.one_lap);
            let new_head = new_tail.wrapping_sub(self.one_lap);
            if self
                .head
                .compare_exchange_weak(head, new_head, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                self.tail.store(new_tail, Ordering::SeqCst);
                // SAFETY: moving `head` past this full slot made this thread
                // its only reader and writer until the stamp store below.
                let old = slot.value.with_mut(|p| unsafe { (*p).as_ptr().read() });
                // SAFETY: as above; the old value was moved out just now.
                slot.value
                    .with_mut(|p| unsafe { p.write(MaybeUninit::new(v)) });
                slot.stamp.store(tail + 1, Ordering::Release);
                Err(old)
            } else {
                Ok(v)
            }
        })
        .err()
    }

    pub(crate) fn pop(&self) -> Option<T> {
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let index = head & (self.one_lap - 1);
            let lap = head & !(self.one_lap - 1);
            let slot = &self.buffer[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if head + 1 == stamp {
                let new = if index + 1 < self.cap {
                    head + 1
                } else {
                    lap.wrapping_add(self.one_lap)
                };
                match self.head.compare_exchange_weak(
                    head,
                    new,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the stamp (acquire) says the value is
                        // written, and the CAS made this thread its only
                        // reader.
                        let msg = slot.value.with(|p| unsafe { (*p).as_ptr().read() });
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        return Some(msg);
                    }
                    Err(h) => {
                        head = h;
                        loom::thread::yield_now();
                    }
                }
            } else if stamp == head {
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail == head {
                    return None;
                }
                loom::thread::yield_now();
                head = self.head.load(Ordering::Relaxed);
            } else {
                loom::thread::yield_now();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    pub(crate) fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst);
        tail == head
    }

    pub(crate) fn is_full(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst);
        let head = self.head.load(Ordering::SeqCst);
        head.wrapping_add(self.one_lap) == tail
    }

    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                return self.len_between(head, tail);
            }
        }
    }

    fn len_between(&self, head: usize, tail: usize) -> usize {
        let hix = head & (self.one_lap - 1);
        let tix = tail & (self.one_lap - 1);
        if hix < tix {
            tix - hix
        } else if hix > tix {
            self.cap - hix + tix
        } else if tail == head {
            0
        } else {
            self.cap
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let hix = head & (self.one_lap - 1);
        for i in 0..self.len_between(head, tail) {
            let index = (hix + i) % self.cap;
            // SAFETY: `&mut self`: no other thread; slots between head and
            // tail hold initialised values, each dropped once here.
            self.buffer[index]
                .value
                .with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}
