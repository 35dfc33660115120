//! [`Ring`]: the queue's storage. crossbeam-queue's `ArrayQueue` algorithm
//! (0.3.12: the same stamps, laps, orderings and fences), owned here so that
//!
//! * it runs on `crate::sync`'s atomics and cells, so loom sees and
//!   schedules the very code that runs in production, and
//! * its `head` and `tail` words carry flag bits that the queue's parking
//!   and signal protocols set and clear, so a push or a pop learns from the
//!   compare-and-swap it performs anyway whether anybody must be told.
//!
//! # Word layout
//!
//! `index | flags | lap`: the low bits index a slot (`0..cap`, in a field
//! of `mark = (cap + 1).next_power_of_two()` values, as in `ArrayQueue`),
//! the next two bits are flags, and the lap counts from `one_lap = mark << 2`
//! up. A slot's stamp is a position (a word with the flags cleared): `tail + 1`
//! once written for lap `tail`, `head + one_lap` once read. Flags:
//!
//! * `WAITER` (bit `mark`) in `tail`: a popper is (about to be) parked; in
//!   `head`: a pusher is. Set and cleared only by `Flag::park` and `Flag::unpark`, which the queue calls under
//!   the parking mutex of that side. A push's CAS on `tail` (a pop's on
//!   `head`) keeps the bit and reports it.
//! * `ARMED` (bit `mark << 1`, `tail` only): the consumer found the queue
//!   empty since the last completion was posted. Set by [`Ring::arm`]; the
//!   one push whose CAS finds it set clears it in that same CAS (so exactly
//!   one push reports it) and posts the completion.
//!
//! # Orderings
//!
//! Those of `ArrayQueue`: a push claims a slot by CAS on `tail` and publishes
//! the value with a release store of the stamp, which a popper's acquire
//! load of the stamp pairs with (the other direction likewise for reuse of
//! a slot). The flag protocols rely on one further fact only: all
//! read-modify-writes of one atomic word are totally ordered (its
//! modification order) and each reads the value just before it in that
//! order, whatever the orderings. So of a parking popper's `fetch_or` on
//! `tail` and a push's CAS on `tail`, either the CAS comes later and reads
//! the bit, or the `fetch_or` comes later and reads the pushed tail. The
//! proofs are in the queue's module docs; loom checks them (loom models
//! every RMW of one location in a single order, exactly as C++ does).

use std::mem::MaybeUninit;

use crossbeam_utils::{Backoff, CachePadded};

use super::parking::{End, Flag};
use crate::sync::{backoff, fence, AtomicUsize, Ordering, UnsafeCell};

struct Slot<T> {
    /// `tail + 1` once written for lap `tail`; `head + one_lap` once read.
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// What a successful push learnt from its CAS on `tail`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pushed {
    /// A popper is parked (or parking): wake one.
    pub(super) waiter: bool,
    /// This push took the `ARMED` flag: post the completion.
    pub(super) armed: bool,
    /// The tail position this push moved `tail` to.
    pub(super) tail: usize,
}

pub(super) struct Ring<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    buffer: Box<[Slot<T>]>,
    cap: usize,
    /// The first flag bit; `mark - 1` masks the index.
    mark: usize,
    /// Clears the flags: `!(mark | mark << 1)`.
    pos_mask: usize,
    one_lap: usize,
    lap_shift: u32,
}

// SAFETY: a value is written by exactly one pusher (the one whose CAS
// claimed the slot) and read by exactly one popper (the one whose CAS
// claimed it), and the stamp's release/acquire pair orders the two; so
// sharing the ring only moves `T`s between threads, which `T: Send` allows.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: the ring owns its `T`s; sending it sends them.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Ring<T> {
    pub(super) fn new(cap: usize) -> Ring<T> {
        assert!(cap > 0, "capacity must be non-zero");
        let mark = (cap + 1).next_power_of_two();
        let one_lap = mark << 2;
        let buffer = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Ring {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            buffer,
            cap,
            mark,
            pos_mask: !(mark | mark << 1),
            one_lap,
            lap_shift: one_lap.trailing_zeros(),
        }
    }

    #[inline]
    fn waiter(&self) -> usize {
        self.mark
    }

    #[inline]
    fn armed(&self) -> usize {
        self.mark << 1
    }

    /// The position in a word: the word without its flags.
    #[inline]
    fn pos(&self, word: usize) -> usize {
        word & self.pos_mask
    }

    /// The position after `pos`.
    #[inline]
    fn next(&self, pos: usize) -> usize {
        let index = pos & (self.mark - 1);
        let lap = pos & !(self.one_lap - 1);
        if index + 1 < self.cap {
            pos + 1
        } else {
            lap.wrapping_add(self.one_lap)
        }
    }

    /// The slot at position `pos`.
    #[inline]
    fn slot(&self, pos: usize) -> &Slot<T> {
        let index = pos & (self.mark - 1);
        debug_assert!(index < self.cap);
        // SAFETY: every position the ring makes has an index below `cap`
        // (`next` wraps to the next lap at `cap`), and `buffer` has `cap`
        // slots.
        unsafe { self.buffer.get_unchecked(index) }
    }

    /// Claims the slot at `tail` for a push, or hands the value to `full`
    /// when the ring is full there (`full` returns `Err` to finish, `Ok` to
    /// retry). On success, writes the value and reports the flags.
    /// Always inlined, as `pop` is: left to itself the compiler kept both as
    /// calls, and the calls' register saves were a third of a message's
    /// instructions (`uniloop-bench --callgrind`, the queue probe: 226
    /// instructions per message with the calls, 160 without).
    #[inline(always)]
    fn push_or_else<R, F>(&self, mut value: T, full: F) -> Result<Pushed, R>
    where
        F: Fn(T, usize, usize, &Slot<T>) -> Result<T, R>,
    {
        let b = Backoff::new();
        let mut word = self.tail.load(Ordering::Relaxed);
        loop {
            let tail = self.pos(word);
            let new_tail = self.next(tail);
            let slot = self.slot(tail);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                // Keep a parked popper's flag; take `ARMED` (this push is
                // the one that reports it).
                let new_word = new_tail | (word & self.waiter());
                match self.tail.compare_exchange_weak(
                    word,
                    new_word,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the CAS gave this thread the slot (its
                        // stamp says the last lap's value was read); no
                        // popper reads it until the stamp below says so.
                        slot.value
                            .with_mut(|p| unsafe { p.write(MaybeUninit::new(value)) });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(Pushed {
                            waiter: word & self.waiter() != 0,
                            armed: word & self.armed() != 0,
                            tail: new_tail,
                        });
                    }
                    Err(w) => {
                        word = w;
                        backoff(&b, true);
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                fence(Ordering::SeqCst);
                value = full(value, tail, new_tail, slot)?;
                backoff(&b, true);
                word = self.tail.load(Ordering::Relaxed);
            } else {
                backoff(&b, false);
                word = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Pushes if there is room; `Err` hands the value back when full.
    #[inline]
    pub(super) fn push(&self, value: T) -> Result<Pushed, T> {
        self.push_or_else(value, |v, tail, _, _| {
            let head = self.pos(self.head.load(Ordering::Relaxed));
            if head.wrapping_add(self.one_lap) == tail {
                Err(v)
            } else {
                Ok(v)
            }
        })
    }

    /// Pushes, displacing the oldest value when full (returned).
    pub(super) fn force_push(&self, value: T) -> (Option<T>, Pushed) {
        let res = self.push_or_else(value, |v, tail, new_tail, slot| {
            let head = tail.wrapping_sub(self.one_lap);
            let new_head = new_tail.wrapping_sub(self.one_lap);
            // The head word may carry a parked pusher's flag: keep it (the
            // ring stays full, so nobody needs waking on its account).
            let flag = self.head.load(Ordering::Relaxed) & self.waiter();
            if self
                .head
                .compare_exchange_weak(
                    head | flag,
                    new_head | flag,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                return Ok(v);
            }
            // Moving `head` past this full slot locked `tail` for us: every
            // other push sees this slot full and a head that is not a lap
            // behind `tail`, and retries. Only flag RMWs can change the word
            // meanwhile, so this loop ends; it keeps `WAITER` and takes
            // `ARMED`, as a push's CAS does (a plain store, as `ArrayQueue`
            // has here, would erase a flag set meanwhile).
            let mut word = self.tail.load(Ordering::Relaxed);
            while let Err(w) = self.tail.compare_exchange_weak(
                word,
                new_tail | (word & self.waiter()),
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                word = w;
            }
            // SAFETY: moving `head` past this full slot made this thread
            // its only reader and writer until the stamp store below.
            let old = slot.value.with_mut(|p| unsafe { (*p).as_ptr().read() });
            // SAFETY: as above; the old value was moved out just now.
            slot.value
                .with_mut(|p| unsafe { p.write(MaybeUninit::new(v)) });
            slot.stamp.store(tail + 1, Ordering::Release);
            Err((
                old,
                Pushed {
                    waiter: word & self.waiter() != 0,
                    armed: word & self.armed() != 0,
                    tail: new_tail,
                },
            ))
        });
        match res {
            Ok(pushed) => (None, pushed),
            Err((old, pushed)) => (Some(old), pushed),
        }
    }

    /// Pops the oldest value; the flag says whether a pusher is parked.
    #[inline(always)]
    pub(super) fn pop(&self) -> Option<(T, bool)> {
        let b = Backoff::new();
        let mut word = self.head.load(Ordering::Relaxed);
        loop {
            let head = self.pos(word);
            let slot = self.slot(head);
            let stamp = slot.stamp.load(Ordering::Acquire);
            if head + 1 == stamp {
                let new_word = self.next(head) | (word & self.waiter());
                match self.head.compare_exchange_weak(
                    word,
                    new_word,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the stamp (acquire) says the value is
                        // written, and the CAS made this thread its only
                        // reader.
                        let v = slot.value.with(|p| unsafe { (*p).as_ptr().read() });
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        return Some((v, word & self.waiter() != 0));
                    }
                    Err(w) => {
                        word = w;
                        backoff(&b, true);
                    }
                }
            } else if stamp == head {
                fence(Ordering::SeqCst);
                let tail = self.pos(self.tail.load(Ordering::Relaxed));
                if tail == head {
                    return None;
                }
                backoff(&b, true);
                word = self.head.load(Ordering::Relaxed);
            } else {
                backoff(&b, false);
                word = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// Sets `ARMED` (the next push reports it) and reports whether the
    /// ring was empty at that moment (as [`Flag::park`] does for
    /// `Tail`). Release: a push that takes the flag and then locks the
    /// signal's sink sees the sink stored before.
    pub(super) fn arm(&self) -> bool {
        let tail = self.pos(self.tail.fetch_or(self.armed(), Ordering::AcqRel));
        let head = self.pos(self.head.load(Ordering::Acquire));
        tail == head
    }

    /// Clears `ARMED`; `true` if it was still set (no push took it), so
    /// the caller owns the completion it stood for.
    pub(super) fn disarm(&self) -> bool {
        self.tail.fetch_and(!self.armed(), Ordering::AcqRel) & self.armed() != 0
    }

    /// Whether `ARMED` looks set; may be stale (see the queue's signal
    /// protocol for why that is harmless).
    pub(super) fn armed_hint(&self) -> bool {
        self.tail.load(Ordering::Relaxed) & self.armed() != 0
    }

    pub(super) fn capacity(&self) -> usize {
        self.cap
    }

    /// The head position now (flags cleared).
    pub(super) fn head(&self) -> usize {
        self.pos(self.head.load(Ordering::Relaxed))
    }

    /// How many pops `pos` stands for since the ring was made: laps times
    /// the capacity plus the index (wrapping with the word's lap counter,
    /// which on 64-bit targets is never).
    pub(super) fn count(&self, pos: usize) -> usize {
        (pos >> self.lap_shift)
            .wrapping_mul(self.cap)
            .wrapping_add(pos & (self.mark - 1))
    }

    /// The position `n` moves after `pos`, for `n <= cap`.
    pub(super) fn advance(&self, pos: usize, n: usize) -> usize {
        debug_assert!(n <= self.cap);
        let index = (pos & (self.mark - 1)) + n;
        let lap = pos & !(self.one_lap - 1);
        if index < self.cap {
            lap | index
        } else {
            lap.wrapping_add(self.one_lap) | (index - self.cap)
        }
    }

    /// The number of items from position `head` to position `tail`, which
    /// are at most a lap apart; 0 if `head` is not before `tail` (a head
    /// read after other pops passed this tail). Positions grow with every
    /// move (wrapping), so their difference orders them.
    pub(super) fn distance(&self, head: usize, tail: usize) -> usize {
        if tail.wrapping_sub(head) as isize <= 0 {
            return 0;
        }
        let hix = head & (self.mark - 1);
        let tix = tail & (self.mark - 1);
        if head & !(self.one_lap - 1) == tail & !(self.one_lap - 1) {
            tix - hix
        } else {
            self.cap - hix + tix
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        let head = self.pos(self.head.load(Ordering::SeqCst));
        let tail = self.pos(self.tail.load(Ordering::SeqCst));
        tail == head
    }

    pub(super) fn is_full(&self) -> bool {
        let tail = self.pos(self.tail.load(Ordering::SeqCst));
        let head = self.pos(self.head.load(Ordering::SeqCst));
        head.wrapping_add(self.one_lap) == tail
    }

    pub(super) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.pos(self.tail.load(Ordering::SeqCst)) == self.pos(tail) {
                return self.len_between(self.pos(head), self.pos(tail));
            }
        }
    }

    fn len_between(&self, head: usize, tail: usize) -> usize {
        let hix = head & (self.mark - 1);
        let tix = tail & (self.mark - 1);
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

impl<T> Flag for Ring<T> {
    /// Flags `end` as having a parked party and reports whether that party
    /// must still block: for `Tail` (a popper), whether the ring is empty;
    /// for `Head` (a pusher), whether it is full. The RMW reads the latest
    /// value of the flagged word, which is what the parking proof needs;
    /// the other word may be stale, which can only make the ring look
    /// neither empty nor full (its other end only moves forwards), so the
    /// caller retries instead of sleeping. Call only under the parking
    /// mutex of that side.
    fn park(&self, end: End) -> bool {
        match end {
            End::Tail => {
                let tail = self.pos(self.tail.fetch_or(self.waiter(), Ordering::AcqRel));
                let head = self.pos(self.head.load(Ordering::Acquire));
                tail == head
            }
            End::Head => {
                let head = self.pos(self.head.fetch_or(self.waiter(), Ordering::AcqRel));
                let tail = self.pos(self.tail.load(Ordering::Acquire));
                head.wrapping_add(self.one_lap) == tail
            }
        }
    }

    /// Clears `end`'s waiter flag. Call only under the parking mutex of
    /// that side, when no party of that side is left unwoken.
    fn unpark(&self, end: End) {
        let word = match end {
            End::Head => &self.head,
            End::Tail => &self.tail,
        };
        word.fetch_and(!self.waiter(), Ordering::AcqRel);
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let head = self.pos(self.head.load(Ordering::Relaxed));
        let tail = self.pos(self.tail.load(Ordering::Relaxed));
        let hix = head & (self.mark - 1);
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
