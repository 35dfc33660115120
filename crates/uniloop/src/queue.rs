//! [`Queue`]: a bounded multi-producer multi-consumer queue with a full
//! policy, blocking and timed operations, statistics and an optional
//! completion signal to a [`Runtime`](crate::Runtime).
//!
//! # Design
//!
//! The items live in [`ring::Ring`], crossbeam-queue's lock-free
//! `ArrayQueue` algorithm owned here (its `force_push` is exactly the
//! drop-oldest policy), so the fast path of a push or a pop is that
//! structure's compare-and-swap plus a store: no mutex, no syscall, no
//! fence and no shared counter. The ring runs on `crate::sync`'s atomics,
//! so under `--cfg uniloop_loom` loom model-checks the production code
//! itself; its `Backoff` spins become `yield_now`s there.
//!
//! What the other side must be told travels in flag bits of the ring's
//! `head` and `tail` words (layout in `queue/ring.rs`): `WAITER` in `tail`
//! (a popper is parked), `WAITER` in `head` (a pusher is parked), `ARMED`
//! in `tail` (the next push posts the completion). A push's CAS on `tail`
//! reads the tail word anyway, so it learns for free whether it must wake
//! or post; a pop's CAS on `head` likewise. A mutex and a condition
//! variable per side exist only for parties that must *block* (a `pop` on
//! an empty queue, a `Block` push on a full one).
//!
//! Statistics stay off the hot path too: pops are counted by the head word
//! itself (laps times capacity plus index, minus the drops, which also move
//! the head; on 32-bit targets the word's lap field wraps, and the count with
//! it, after 2^29 to 2^30 pops), pushes as pops plus drops plus the length,
//! and the high-water mark costs a push one comparison of its new tail with
//! `check_at`, a position computed from a head read earlier before which the
//! length cannot exceed the mark (the head only moves forwards); only a push
//! that reaches it reads the consumers' head (see `Marks`). While the mark is
//! below the capacity and the consumer keeps the queue nearly empty, that
//! can be every push; once the mark is the capacity, none.
//!
//! # Memory orderings
//!
//! The ring keeps `ArrayQueue`'s: a slot is claimed by a `SeqCst` CAS, its
//! value published by a release store of the slot's stamp and taken after
//! an acquire load of it; the full and empty checks fence as `ArrayQueue`
//! does. The two flag protocols below use one more fact only: all
//! read-modify-writes of one atomic word form a single modification order,
//! each reading the value just before it, whatever their orderings. Flag
//! RMWs are `AcqRel`, so a push that takes `ARMED` also sees the signal
//! sink stored before the arming. `closed` is a `SeqCst` store read under
//! the parking mutex or before each attempt.
//!
//! # Parking protocol (no lost wake-up, no needless wake)
//!
//! A popper that found the ring empty (after a brief spin) takes the
//! poppers' mutex, counts itself as a sleeper and sets `WAITER` in `tail`
//! with a `fetch_or`, which returns the latest tail word; it waits on the
//! condition variable only if that tail equals the head (empty) and the
//! queue is not closed. A push's CAS on `tail` keeps the flag and reports
//! it; the push then (after publishing its item) takes the mutex and
//! `notify_one`s.
//!
//! Why nothing is lost: the popper's `fetch_or` and the push's CAS are two
//! RMWs of `tail`. If the CAS comes later in `tail`'s modification order,
//! it reads the flag (nobody clears it while the popper is unwoken, see
//! `Parking`) and the pusher wakes somebody; the popper holds the mutex
//! from registering until `wait` releases it atomically, so the wake-up
//! lands after it is waiting. If the `fetch_or` comes later, it reads the
//! pushed tail and the popper does not sleep. (A stale head can only make
//! the ring look non-empty, which costs a retry.) Pushers blocked on a full
//! ring mirror this exactly with `WAITER` in `head`. How the flag is
//! cleared once every sleeper has been sent a wake-up (so a burst of
//! operations costs one syscall, not one each) is argued at `Parking`.
//! [`Queue::close`] sets `closed` and then wakes everybody, so a sleeper
//! either sees `closed` under the mutex or is woken.
//!
//! # Signal protocol (one completion per burst, none lost)
//!
//! With [`Queue::signal`], `ARMED` in `tail` means "the consumer has seen
//! the queue empty since the last completion". A consumer whose pop finds
//! the ring empty sets it with a `fetch_or` (unless a plain load shows it
//! set already) and looks at the tail word that RMW returned: if an item
//! is there it pops it instead of reporting empty. A push's CAS on `tail`
//! clears `ARMED`; the one push whose CAS took it posts `(key, 0)` after
//! publishing its item. By the modification-order argument above, a push
//! whose CAS came after the consumer's arming takes the flag (and posts),
//! and one whose CAS came before is seen by the consumer's look. A stale
//! "already set" load is harmless: the flag was set by this consumer and
//! taken by a push that has posted (or will), so a completion is on its
//! way. So: after the consumer drained the queue (a pop returned nothing),
//! the next push posts exactly one completion, and a burst of pushes
//! before the next drain posts nothing more. [`Queue::signal`] arms too,
//! and if the ring already holds items takes the flag back (`fetch_and`)
//! and posts itself, unless a push took the flag first and posts.
//!
//! The consumer's side of the contract: on the completion, pop until the
//! queue reports empty. A completion may find the queue already empty (an
//! earlier drain took the items); that is harmless.

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use crossbeam_utils::{Backoff, CachePadded};

use crate::sync::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering};
use crate::Poster;

mod parking;
mod ring;

use self::parking::{End, Parking};
use self::ring::{Pushed, Ring};

/// Whether a party about to block first spins briefly (crossbeam's
/// `Backoff`: a few busy iterations, then a few `yield_now`s). The other
/// side is usually about to act, and parking costs two syscalls plus a
/// syscall for every push or pop that sees the sleeper before it leaves.
/// Off under loom: spinning only multiplies the interleavings to explore.
const SPIN: bool = !cfg!(uniloop_loom);

/// What [`Queue::push`] does when the queue is full.
///
/// # Examples
///
/// ```
/// use uniloop::{Overflow, Queue};
/// let q = Queue::bounded(1, Overflow::DropOldest);
/// q.push("old").unwrap();
/// q.push("new").unwrap();
/// assert_eq!(q.try_pop(), Some("new"));
/// assert_eq!(q.stats().dropped, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Hand the value back in [`PushError::Full`] (counted as rejected).
    Reject,
    /// Drop the oldest item to make room (counted as dropped).
    DropOldest,
    /// Wait until there is room or the queue is closed.
    Block,
}

/// A bounded multi-producer multi-consumer FIFO.
///
/// `Queue<T>` is a handle: cloning it is cheap and every clone refers to the
/// same queue. It is `Send + Sync` when `T: Send`. Dropping the last handle
/// drops the items still inside (their destructors run).
///
/// Pushes and pops never take a lock or make a syscall unless a party is
/// blocked; [`signal`](Queue::signal) wakes a [`Runtime`](crate::Runtime)
/// with one completion per burst. Both protocols and their memory orderings
/// are written down at the top of `src/queue.rs` and model-checked with
/// loom.
///
/// # Examples
///
/// A worker hands results to the loop through a queue; the loop is woken by
/// one completion per burst.
///
/// ```
/// use std::time::Duration;
/// use uniloop::{Event, Events, Overflow, Queue, Runtime};
///
/// const RESULTS: u64 = 1;
/// let mut rt = Runtime::new()?;
/// let results = Queue::bounded(64, Overflow::Block);
/// results.signal(&rt.poster(), RESULTS);
///
/// let tx = results.clone();
/// let worker = std::thread::spawn(move || {
///     for n in 0..10u32 {
///         tx.push(n * n).unwrap();
///     }
/// });
///
/// let mut got = Vec::new();
/// let mut events = Events::with_capacity(16);
/// while got.len() < 10 {
///     rt.wait(&mut events, Some(Duration::from_secs(10)))?;
///     for event in &events {
///         if let Event::Completion { key: RESULTS, .. } = event {
///             while let Some(n) = results.try_pop() {
///                 got.push(n);
///             }
///         }
///     }
/// }
/// worker.join().unwrap();
/// assert_eq!(got, (0..10).map(|n| n * n).collect::<Vec<_>>());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Queue<T> {
    inner: Arc<Inner<T>>,
}

type Sink = Box<dyn Fn() + Send + Sync>;

struct Inner<T> {
    ring: Ring<T>,
    policy: Overflow,
    closed: AtomicBool,
    has_signal: AtomicBool,
    /// Read by every push; written only when the mark rises.
    marks: CachePadded<Marks>,
    /// Poppers asleep on an empty ring (they flag `tail`).
    poppers: Parking,
    /// Pushers asleep on a full ring (they flag `head`).
    pushers: Parking,
    dropped: AtomicUsize,
    rejected: AtomicUsize,
    sink: Mutex<Option<Sink>>,
}

/// The high-water mark and what keeps its upkeep off the consumers' cache
/// line: `check_at`, a tail position before which no push can raise the
/// mark. It is computed from a head read some time ago as the position
/// `mark + 1` moves after it: the head only moves forwards, so while the
/// tail is before that position the length is at most the mark. Only a
/// push that reaches it reads the real head (and computes the next one).
struct Marks {
    high_water: AtomicUsize,
    check_at: AtomicUsize,
}

/// A snapshot of a [`Queue`]'s counters ([`Queue::stats`]).
///
/// Counters are read one by one while other threads may be pushing and
/// popping, so a snapshot taken under load is approximate; taken while the
/// queue is quiet it is exact.
///
/// # Examples
///
/// ```
/// use uniloop::{Overflow, Queue};
/// let q = Queue::bounded(2, Overflow::Reject);
/// q.push(1).unwrap();
/// q.push(2).unwrap();
/// assert!(q.push(3).is_err());
/// q.try_pop();
/// let s = q.stats();
/// assert_eq!((s.capacity, s.len, s.high_water), (2, 1, 2));
/// assert_eq!((s.pushed, s.popped, s.dropped, s.rejected), (2, 1, 0, 1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QueueStats {
    /// The fixed capacity.
    pub capacity: usize,
    /// Items in the queue now.
    pub len: usize,
    /// The largest length seen after a push.
    pub high_water: usize,
    /// Items accepted by any push.
    pub pushed: u64,
    /// Items taken by any pop.
    pub popped: u64,
    /// Items discarded: displaced by [`Overflow::DropOldest`] or
    /// [`Queue::force_push`], or removed by [`Queue::clear`].
    pub dropped: u64,
    /// Values handed back because the queue was full
    /// ([`PushError::Full`] or [`PushError::Timeout`]).
    pub rejected: u64,
}

/// Why a push handed its value back. The value is always returned.
///
/// `Debug` does not require `T: Debug`.
///
/// # Examples
///
/// ```
/// use uniloop::{Overflow, PushError, Queue};
/// let q = Queue::bounded(1, Overflow::Reject);
/// q.push(String::from("a")).unwrap();
/// let err = q.push(String::from("b")).unwrap_err();
/// assert!(matches!(err, PushError::Full(_)));
/// assert_eq!(err.into_inner(), "b");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushError<T> {
    /// The queue was full (and the policy or the call did not wait).
    Full(T),
    /// The queue has been closed.
    Closed(T),
    /// The queue stayed full until the timeout passed.
    Timeout(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v) | PushError::Closed(v) | PushError::Timeout(v) => v,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            PushError::Full(_) => "Full",
            PushError::Closed(_) => "Closed",
            PushError::Timeout(_) => "Timeout",
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(..)", self.name())
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "the queue is full",
            PushError::Closed(_) => "the queue is closed",
            PushError::Timeout(_) => "timed out waiting for room in the queue",
        })
    }
}

impl<T> Error for PushError<T> {}

/// Why a blocking pop returned without an item.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use uniloop::{Overflow, PopError, Queue};
/// let q = Queue::<u8>::bounded(1, Overflow::Reject);
/// assert_eq!(q.pop_timeout(Duration::from_millis(1)), Err(PopError::Timeout));
/// q.close();
/// assert_eq!(q.pop(), Err(PopError::Closed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PopError {
    /// Nothing arrived before the timeout.
    Timeout,
    /// The queue is closed and empty.
    Closed,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PopError::Timeout => "timed out waiting for an item",
            PopError::Closed => "the queue is closed and empty",
        })
    }
}

impl Error for PopError {}

impl<T> Queue<T> {
    /// Creates a queue holding at most `capacity` items, with `policy` for
    /// [`push`](Queue::push) on a full queue.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0: a queue that can hold nothing is a programming
    /// error, not a run-time condition.
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Overflow, Queue};
    /// let q = Queue::<u64>::bounded(256, Overflow::Block);
    /// assert_eq!(q.capacity(), 256);
    /// assert!(q.is_empty());
    /// ```
    pub fn bounded(capacity: usize, policy: Overflow) -> Queue<T> {
        assert!(capacity > 0, "Queue::bounded: capacity must be at least 1");
        Queue {
            inner: Arc::new(Inner {
                ring: Ring::new(capacity),
                policy,
                closed: AtomicBool::new(false),
                has_signal: AtomicBool::new(false),
                marks: CachePadded::new(Marks {
                    high_water: AtomicUsize::new(0),
                    // Position 1: the first push measures (count 1).
                    check_at: AtomicUsize::new(1),
                }),
                poppers: Parking::new(End::Tail),
                pushers: Parking::new(End::Head),
                dropped: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
                sink: Mutex::new(None),
            }),
        }
    }

    /// Pushes `value` applying the queue's [`Overflow`] policy: `Reject`
    /// hands it back when full, `DropOldest` discards the oldest item,
    /// `Block` waits for room.
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] once the queue is closed (also wakes a blocked
    /// push); [`PushError::Full`] when full under `Reject`.
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Overflow, PushError, Queue};
    /// let q = Queue::bounded(1, Overflow::Reject);
    /// q.push(1).unwrap();
    /// assert_eq!(q.push(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
        match self.inner.policy {
            Overflow::Reject => self.try_push(value),
            Overflow::DropOldest => self.force_push(value).map(drop),
            Overflow::Block => self.inner.push_until(value, None),
        }
    }

    /// Pushes `value` if there is room; never blocks and never drops.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] or [`PushError::Closed`], with the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Overflow, Queue};
    /// let q = Queue::bounded(1, Overflow::DropOldest);
    /// q.try_push(1).unwrap();
    /// assert!(q.try_push(2).is_err()); // the policy does not apply here
    /// ```
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed(value));
        }
        match inner.ring.push(value) {
            Ok(pushed) => {
                inner.after_push(pushed);
                Ok(())
            }
            Err(value) => {
                inner.rejected.fetch_add(1, Ordering::Relaxed);
                Err(PushError::Full(value))
            }
        }
    }

    /// Pushes `value`, waiting up to `timeout` for room (whatever the
    /// policy).
    ///
    /// # Errors
    ///
    /// [`PushError::Timeout`] if the queue stayed full; [`PushError::Closed`]
    /// if it is or gets closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use uniloop::{Overflow, PushError, Queue};
    /// let q = Queue::bounded(1, Overflow::Block);
    /// q.push(1).unwrap();
    /// let err = q.push_timeout(2, Duration::from_millis(5)).unwrap_err();
    /// assert!(matches!(err, PushError::Timeout(2)));
    /// ```
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), PushError<T>> {
        self.inner.push_until(value, Some(deadline(timeout)))
    }

    /// Pushes `value`; when the queue is full the oldest item is removed and
    /// returned to make room (counted as dropped).
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] once the queue is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Overflow, Queue};
    /// let q = Queue::bounded(2, Overflow::Reject);
    /// assert_eq!(q.force_push(1), Ok(None));
    /// assert_eq!(q.force_push(2), Ok(None));
    /// assert_eq!(q.force_push(3), Ok(Some(1)));
    /// ```
    pub fn force_push(&self, value: T) -> Result<Option<T>, PushError<T>> {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed(value));
        }
        let (displaced, pushed) = inner.ring.force_push(value);
        if displaced.is_some() {
            inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
        inner.after_push(pushed);
        Ok(displaced)
    }

    /// Takes the oldest item, waiting for one if the queue is empty.
    ///
    /// # Errors
    ///
    /// [`PopError::Closed`] once the queue is closed and empty (a blocked
    /// pop is woken by [`close`](Queue::close)).
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Overflow, Queue};
    /// let q = Queue::bounded(4, Overflow::Block);
    /// let tx = q.clone();
    /// std::thread::spawn(move || tx.push(42).unwrap());
    /// assert_eq!(q.pop(), Ok(42));
    /// ```
    pub fn pop(&self) -> Result<T, PopError> {
        self.inner.pop_until(None)
    }

    /// Takes the oldest item if there is one; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Overflow, Queue};
    /// let q = Queue::bounded(4, Overflow::Reject);
    /// assert_eq!(q.try_pop(), None);
    /// q.push('a').unwrap();
    /// assert_eq!(q.try_pop(), Some('a'));
    /// ```
    pub fn try_pop(&self) -> Option<T> {
        self.inner.try_pop()
    }

    /// Takes the oldest item, waiting up to `timeout` for one.
    ///
    /// # Errors
    ///
    /// [`PopError::Timeout`] if nothing arrived; [`PopError::Closed`] once
    /// the queue is closed and empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use uniloop::{Overflow, PopError, Queue};
    /// let q = Queue::<i32>::bounded(4, Overflow::Reject);
    /// assert_eq!(q.pop_timeout(Duration::from_millis(1)), Err(PopError::Timeout));
    /// ```
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        self.inner.pop_until(Some(deadline(timeout)))
    }

    /// Closes the queue: later pushes fail with [`PushError::Closed`], pops
    /// take what is left and then fail with [`PopError::Closed`]. Every
    /// blocked pusher and popper is woken. Closing twice is harmless.
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Overflow, PopError, Queue};
    /// let q = Queue::bounded(4, Overflow::Block);
    /// q.push(1).unwrap();
    /// q.close();
    /// assert!(q.is_closed());
    /// assert!(q.push(2).is_err());
    /// assert_eq!(q.pop(), Ok(1));
    /// assert_eq!(q.pop(), Err(PopError::Closed));
    /// ```
    pub fn close(&self) {
        let inner = &*self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        inner.poppers.wake_all(&inner.ring);
        inner.pushers.wake_all(&inner.ring);
    }

    /// Whether [`close`](Queue::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Removes and drops every item now in the queue (counted as dropped);
    /// returns how many. Blocked pushers get the room.
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Overflow, Queue};
    /// let q = Queue::bounded(4, Overflow::Reject);
    /// q.push(1).unwrap();
    /// q.push(2).unwrap();
    /// assert_eq!(q.clear(), 2);
    /// assert!(q.is_empty());
    /// ```
    pub fn clear(&self) -> usize {
        let inner = &*self.inner;
        let mut n = 0;
        let mut waiter = false;
        while let Some((_, w)) = inner.ring.pop() {
            n += 1;
            waiter |= w;
        }
        if n > 0 {
            inner.dropped.fetch_add(n, Ordering::Relaxed);
        }
        if waiter {
            inner.pushers.wake_all(&inner.ring);
        }
        n
    }

    /// The number of items in the queue now.
    pub fn len(&self) -> usize {
        self.inner.ring.len()
    }

    /// Whether the queue holds no items now.
    pub fn is_empty(&self) -> bool {
        self.inner.ring.is_empty()
    }

    /// Whether the queue is at capacity now.
    pub fn is_full(&self) -> bool {
        self.inner.ring.is_full()
    }

    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.inner.ring.capacity()
    }

    /// The policy [`push`](Queue::push) applies.
    pub fn overflow(&self) -> Overflow {
        self.inner.policy
    }

    /// A snapshot of the counters; see [`QueueStats`].
    pub fn stats(&self) -> QueueStats {
        let inner = &*self.inner;
        let count = |a: &AtomicUsize| a.load(Ordering::Relaxed) as u64;
        let dropped = count(&inner.dropped);
        // Every pop and every drop moved the head once, and the head word
        // counts its moves (laps times capacity plus index), so pops need
        // no counter of their own. Drops are counted after their move, so
        // under load this can run a few ahead; quiet, it is exact.
        let moves = inner.ring.count(inner.ring.head()) as u64;
        let popped = moves.saturating_sub(dropped);
        let len = inner.ring.len();
        QueueStats {
            capacity: inner.ring.capacity(),
            len,
            high_water: inner.marks.high_water.load(Ordering::Relaxed),
            // Every accepted item is popped, dropped or still queued, so
            // pushes need no counter of their own on the hot path.
            pushed: popped + dropped + len as u64,
            popped,
            dropped,
            rejected: count(&inner.rejected),
        }
    }

    /// Makes a push into an empty queue post one completion `(key, 0)`
    /// through `poster`, so the loop learns that there is something to pop.
    ///
    /// A burst of pushes posts one completion; once a pop has found the
    /// queue empty, the next push posts again. No push is ever left without
    /// a completion after the consumer drained the queue. The consumer must
    /// therefore pop until [`try_pop`](Queue::try_pop) returns `None` each
    /// time the completion arrives. If the queue already holds items, one
    /// completion is posted now. Calling it again replaces the target.
    /// Posting to a dropped runtime is silently skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use uniloop::{Event, Events, Overflow, Queue, Runtime};
    /// let mut rt = Runtime::new()?;
    /// let q = Queue::bounded(8, Overflow::Reject);
    /// q.signal(&rt.poster(), 5);
    /// q.push("a").unwrap();
    /// q.push("b").unwrap(); // no second completion: the queue was not empty
    /// let mut events = Events::with_capacity(8);
    /// rt.wait(&mut events, Some(Duration::from_secs(10)))?;
    /// assert_eq!(events.iter().collect::<Vec<_>>(), [&Event::Completion { key: 5, data: 0 }]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn signal(&self, poster: &Poster, key: u64) {
        let poster = poster.clone();
        self.inner.set_sink(Box::new(move || {
            let _ = poster.post(key, 0);
        }));
    }

    #[cfg(all(test, uniloop_loom))]
    fn signal_with(&self, sink: Sink) {
        self.inner.set_sink(sink);
    }
}

impl<T> Inner<T> {
    /// Everything a successful push owes: the high-water mark, then what
    /// its CAS on `tail` reported — a parked popper to wake, a completion
    /// to post. No fence: the flags are in the word the CAS just read.
    #[inline(always)]
    fn after_push(&self, pushed: Pushed) {
        self.note_len(pushed.tail);
        if pushed.waiter {
            self.poppers.wake_one(&self.ring);
        }
        if pushed.armed {
            self.fire();
        }
    }

    /// Raises the high-water mark to the length after a push that moved
    /// the tail to `tail`, reading the consumers' head only when `tail`
    /// has reached `check_at` (see `Marks`). Once the mark is the capacity
    /// nothing can raise it.
    #[inline]
    fn note_len(&self, tail: usize) {
        let marks = &*self.marks;
        let high = marks.high_water.load(Ordering::Relaxed);
        // Positions grow with the count (wrapping: compare the difference).
        let reached = tail.wrapping_sub(marks.check_at.load(Ordering::Relaxed)) as isize >= 0;
        if high < self.ring.capacity() && reached {
            self.measure(tail, high);
        }
    }

    #[cold]
    fn measure(&self, tail: usize, high: usize) {
        let marks = &*self.marks;
        let head = self.ring.head();
        let len = self.ring.distance(head, tail).min(self.ring.capacity());
        let high = if len > high {
            marks.high_water.fetch_max(len, Ordering::Relaxed).max(len)
        } else {
            high
        };
        if high < self.ring.capacity() {
            let next = self.ring.advance(head, high + 1);
            marks.check_at.store(next, Ordering::Relaxed);
        }
    }

    fn fire(&self) {
        if let Some(sink) = lock(&self.sink).as_ref() {
            sink();
        }
    }

    fn set_sink(&self, sink: Sink) {
        *lock(&self.sink) = Some(sink);
        self.has_signal.store(true, Ordering::Relaxed);
        // Arm: the next push posts. If the ring already holds items, take
        // the flag back and post now, unless a push took it first (then
        // that push posts). Either way exactly one completion.
        if !self.ring.arm() && self.ring.disarm() {
            self.fire();
        }
    }

    #[inline(always)]
    fn try_pop(&self) -> Option<T> {
        loop {
            if let Some((v, waiter)) = self.ring.pop() {
                if waiter {
                    self.pushers.wake_one(&self.ring);
                }
                return Some(v);
            }
            // Empty. Re-arm the signal (the next push posts), reading the
            // tail afresh as it does: a push that came before the arming
            // is found there. See "Signal protocol" in the module docs.
            if !self.has_signal.load(Ordering::Relaxed) || self.ring.armed_hint() {
                return None;
            }
            if self.ring.arm() {
                return None;
            }
        }
    }

    fn pop_until(&self, deadline: Option<Instant>) -> Result<T, PopError> {
        let backoff = Backoff::new();
        loop {
            if let Some(v) = self.try_pop() {
                return Ok(v);
            }
            if self.closed.load(Ordering::SeqCst) {
                return self.try_pop().ok_or(PopError::Closed);
            }
            if SPIN && !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            let left = match remaining(deadline) {
                Some(Some(left)) => Some(left),
                Some(None) => return Err(PopError::Timeout),
                None => None,
            };
            self.poppers
                .sleep(&self.ring, left, || !self.closed.load(Ordering::SeqCst));
        }
    }

    fn push_until(&self, mut value: T, deadline: Option<Instant>) -> Result<(), PushError<T>> {
        let backoff = Backoff::new();
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Err(PushError::Closed(value));
            }
            match self.ring.push(value) {
                Ok(pushed) => {
                    self.after_push(pushed);
                    return Ok(());
                }
                Err(back) => value = back,
            }
            if SPIN && !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            let left = match remaining(deadline) {
                Some(Some(left)) => Some(left),
                Some(None) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(PushError::Timeout(value));
                }
                None => None,
            };
            self.pushers
                .sleep(&self.ring, left, || !self.closed.load(Ordering::SeqCst));
        }
    }
}

fn deadline(timeout: Duration) -> Instant {
    // A timeout too large to represent is as good as forever.
    Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(60 * 60 * 24 * 365 * 30))
}

/// `None`: no deadline; `Some(None)`: it has passed; `Some(Some(d))`: `d` left.
fn remaining(deadline: Option<Instant>) -> Option<Option<Duration>> {
    deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    })
}

/// Locks, ignoring poisoning: nothing panics while holding these mutexes
/// except a signal sink, which leaves nothing half-written.
fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("overflow", &self.inner.policy)
            .field("closed", &self.is_closed())
            .finish()
    }
}

// Fails to compile if these stop being `Send + Sync`.
const _: fn() = || {
    fn assert<T: Send + Sync>() {}
    assert::<Queue<String>>();
    assert::<PushError<String>>();
    assert::<QueueStats>();
};

#[cfg(all(test, uniloop_loom))]
mod loom_tests;
