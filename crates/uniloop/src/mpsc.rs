//! The completion queue: an unbounded lock-free FIFO for many producers and
//! **one** consumer (the runtime's loop).
//!
//! Written here rather than taken from crossbeam's `SegQueue` (which the
//! queue was before) because `SegQueue` is multi-consumer, and
//! every pop pays for that: a CAS on the head and a locked `fetch_or` on
//! the slot, and it frees its 31-slot blocks to the allocator from the
//! consumer's thread while the producer allocates new ones (measured: a
//! futex call per few hundred posts under glibc's arena locks). With one
//! consumer, a pop needs no read-modify-write at all.
//!
//! # Layout
//!
//! Blocks of [`BLOCK_CAP`] slots, linked in order. Positions count up
//! forever; position `p` is offset `p % LAP` of block `p / LAP`, and offset
//! `BLOCK_CAP` (one past the last slot) is never a slot: while the tail
//! stands there, the producer that took the block's last slot is installing
//! the next block, and other producers wait for it.
//!
//! # The protocol and its orderings
//!
//! * **Push**: read the tail position (acquire), then the tail block
//!   (acquire); claim the position with a CAS on the tail (the claim is the
//!   one RMW of a push). The producer that claims a block's last slot first
//!   makes the next block (taking a spare one if there is one), stores it
//!   as the tail block (release), moves the tail past the reserved offset
//!   (release), and links it as `next` (release) — all before it writes its
//!   own slot. Then any producer writes its value into its slot and sets the
//!   slot's `ready` flag (release).
//! * **Pop** (consumer only): read the head slot's `ready` (acquire). Not
//!   set: nothing there yet (the slot is unclaimed, or claimed and being
//!   written; its producer's `notify` comes after the write, so the loop
//!   looks again). Set: the acquire makes the value visible, take it. At a
//!   block's last slot the acquire also makes `next` visible (it was stored
//!   before that slot's `ready`), so the consumer steps to the next block.
//! * **Reclaiming a block**: a producer touches a block only after its CAS
//!   claimed a slot in it, and its last touch is that slot's `ready` store.
//!   When the consumer has taken every slot of a block, every claim in it
//!   has ended, so no producer can reach it again (the tail has moved on;
//!   a producer still holding the old pointer from before its CAS fails the
//!   CAS, because positions never repeat). The consumer clears the block and
//!   puts it in a free place among the `spares` (a CAS from null, release);
//!   a producer that needs a new block swaps a spare out (acquire), which
//!   makes the clearing visible. Each place holds one block or none, so
//!   there is no ABA. In the steady state no block is allocated or freed.
//! * **Length** (any thread): the consumer publishes its head position
//!   (release) after each pop; `len` reads the head and then the tail.
//!
//! The loom model at the bottom runs two producers through block ends, the
//! reserved offset and the spares with two-slot blocks.

use std::mem::MaybeUninit;
use std::ptr;

use crossbeam_utils::{Backoff, CachePadded};

use crate::sync::{backoff, AtomicBool, AtomicPtr, AtomicUsize, Ordering, UnsafeCell};

/// Slots per block: 63 normally (a block is then about 1.5 KiB for the
/// runtime's 16-byte completions), 2 under loom so a model crosses blocks.
#[cfg(not(uniloop_loom))]
const BLOCK_CAP: usize = 63;
#[cfg(uniloop_loom)]
const BLOCK_CAP: usize = 2;
/// Positions per block, the reserved offset included.
const LAP: usize = BLOCK_CAP + 1;
/// Emptied blocks kept for reuse: enough for the backlog of a loop that
/// takes a thousand completions per wait (16 blocks, 24 KiB at most, kept
/// after a burst), so a producer that runs ahead of the loop and back does
/// not allocate while the loop frees (glibc then contends on its arena
/// lock: a futex call per few blocks, measured).
#[cfg(not(uniloop_loom))]
const SPARES: usize = 16;
#[cfg(uniloop_loom)]
const SPARES: usize = 1;

struct Slot<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    ready: AtomicBool,
}

struct Block<T> {
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK_CAP],
}

impl<T> Block<T> {
    fn new() -> Box<Block<T>> {
        Box::new(Block {
            next: AtomicPtr::new(ptr::null_mut()),
            slots: std::array::from_fn(|_| Slot {
                value: UnsafeCell::new(MaybeUninit::uninit()),
                ready: AtomicBool::new(false),
            }),
        })
    }
}

/// The consumer's position: only the consumer reads or writes it.
struct Head<T> {
    pos: usize,
    block: *mut Block<T>,
}

pub(crate) struct Mpsc<T> {
    head: CachePadded<UnsafeCell<Head<T>>>,
    /// The head position as the consumer last published it, for `len`.
    head_pos: CachePadded<AtomicUsize>,
    tail_pos: CachePadded<AtomicUsize>,
    tail_block: AtomicPtr<Block<T>>,
    /// Cleared blocks kept for the next blocks producers need.
    spares: [AtomicPtr<Block<T>>; SPARES],
}

// SAFETY: values move from producers to the consumer (`T: Send`); the
// blocks and slots are shared only through the protocol above, and `Head`
// is touched by the one consumer (`pop`'s contract).
unsafe impl<T: Send> Send for Mpsc<T> {}
// SAFETY: as above: `push` from any thread, `pop` from one at a time.
unsafe impl<T: Send> Sync for Mpsc<T> {}

/// How many slots lie before position `pos` (the reserved offsets are not
/// slots).
fn slots_before(pos: usize) -> usize {
    pos / LAP * BLOCK_CAP + (pos % LAP).min(BLOCK_CAP)
}

impl<T> Mpsc<T> {
    pub(crate) fn new() -> Mpsc<T> {
        let first = Box::into_raw(Block::new());
        Mpsc {
            head: CachePadded::new(UnsafeCell::new(Head {
                pos: 0,
                block: first,
            })),
            head_pos: CachePadded::new(AtomicUsize::new(0)),
            tail_pos: CachePadded::new(AtomicUsize::new(0)),
            tail_block: AtomicPtr::new(first),
            spares: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// Appends `value`. Lock-free; allocates only when no spare block is
    /// left (a burst longer than the queue has ever held).
    pub(crate) fn push(&self, value: T) {
        let b = Backoff::new();
        let mut next: Option<Box<Block<T>>> = None;
        let mut pos = self.tail_pos.load(Ordering::Acquire);
        let mut block = self.tail_block.load(Ordering::Acquire);
        loop {
            let offset = pos % LAP;
            if offset == BLOCK_CAP {
                // The block's last slot is taken and its taker is linking
                // the next block: wait for it.
                backoff(&b, false);
                pos = self.tail_pos.load(Ordering::Acquire);
                block = self.tail_block.load(Ordering::Acquire);
                continue;
            }
            if offset + 1 == BLOCK_CAP && next.is_none() {
                next = Some(self.take_spare().unwrap_or_else(Block::new));
            }
            match self.tail_pos.compare_exchange_weak(
                pos,
                pos + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if offset + 1 == BLOCK_CAP {
                        let new = Box::into_raw(next.take().expect("made above"));
                        self.tail_block.store(new, Ordering::Release);
                        self.tail_pos.fetch_add(1, Ordering::Release);
                        // SAFETY: the CAS claimed a slot of `block`, so the
                        // consumer cannot reclaim it before that slot's
                        // `ready`, which comes below.
                        unsafe { (*block).next.store(new, Ordering::Release) };
                    }
                    // SAFETY: as above, `block` lives until this slot is
                    // consumed; the claim makes this producer the slot's
                    // only writer, and the consumer reads it only after the
                    // `ready` store.
                    unsafe {
                        let slot = (*block).slots.get_unchecked(offset);
                        slot.value.with_mut(|p| p.write(MaybeUninit::new(value)));
                        slot.ready.store(true, Ordering::Release);
                    }
                    break;
                }
                Err(now) => {
                    pos = now;
                    block = self.tail_block.load(Ordering::Acquire);
                    backoff(&b, true);
                }
            }
        }
        if let Some(unused) = next {
            self.put_spare(unused);
        }
    }

    /// Takes the oldest value, if one is ready.
    ///
    /// # Safety
    ///
    /// Only one thread may be in `pop` at a time (the runtime's loop).
    pub(crate) unsafe fn pop(&self) -> Option<T> {
        self.head.with_mut(|head| {
            // SAFETY: the consumer's own state (this fn's contract).
            let head = unsafe { &mut *head };
            let offset = head.pos % LAP;
            // SAFETY: the head block is reclaimed only by the consumer,
            // below, after its last slot.
            let block = unsafe { &*head.block };
            let slot = &block.slots[offset];
            if !slot.ready.load(Ordering::Acquire) {
                return None;
            }
            // SAFETY: `ready` (acquire) says the producer's write is done
            // and visible; the value is taken once, and the slot is not
            // read again until the block is cleared for reuse.
            let value = slot.value.with(|p| unsafe { (*p).assume_init_read() });
            if offset + 1 == BLOCK_CAP {
                let next = block.next.load(Ordering::Acquire);
                debug_assert!(
                    !next.is_null(),
                    "the last slot's producer links the next block first"
                );
                let old = head.block;
                head.block = next;
                head.pos += 2; // the last slot and the reserved offset
                               // SAFETY: every slot of `old` has been taken, so every
                               // claim in it has ended (module docs) and nobody else can
                               // reach it.
                self.put_spare(unsafe { Box::from_raw(old) });
            } else {
                head.pos += 1;
            }
            self.head_pos.store(head.pos, Ordering::Release);
            Some(value)
        })
    }

    /// Whether the head slot holds a value, that is whether [`pop`](Mpsc::pop)
    /// would return one now. One load; a relaxed one, because only `pop`'s
    /// own acquire makes the value visible: this is the runtime's cheap
    /// "anything there?" before it pays for a pop.
    ///
    /// # Safety
    ///
    /// As for `pop`: only the consumer's thread.
    #[inline]
    pub(crate) unsafe fn head_ready(&self) -> bool {
        self.head.with(|head| {
            // SAFETY: the consumer's own state (this fn's contract).
            let head = unsafe { &*head };
            // SAFETY: the head block lives until the consumer reclaims it
            // in `pop`.
            let block = unsafe { &*head.block };
            let offset = head.pos % LAP;
            debug_assert!(offset < BLOCK_CAP, "the head skips the reserved offset");
            // SAFETY: the head never rests on the reserved offset (`pop`
            // steps over it with the block's last slot), so `offset` is a
            // slot's: this drops the bounds check from the runtime's
            // "anything there?".
            unsafe { block.slots.get_unchecked(offset) }
                .ready
                .load(Ordering::Relaxed)
        })
    }

    /// Whether a producer has claimed a position past the head — a value
    /// that is there, or one that is being written. The tail is read with
    /// a read-modify-write (`fetch_add(0)`, acquire-release), which reads
    /// the newest claim in the tail's modification order and, when a claim
    /// comes after it, synchronizes-with that claim: this is the consumer's
    /// half of the swap-free post in [`completion`](crate::completion).
    ///
    /// # Safety
    ///
    /// As for `pop`: only the consumer's thread.
    pub(crate) unsafe fn claimed_past_head(&self) -> bool {
        #[cfg(uniloop_loom)]
        let tail = if broken::PLAIN_TAIL_LOAD.load(std::sync::atomic::Ordering::Relaxed) {
            self.tail_pos.load(Ordering::Acquire)
        } else {
            self.tail_pos.fetch_add(0, Ordering::AcqRel)
        };
        #[cfg(not(uniloop_loom))]
        let tail = self.tail_pos.fetch_add(0, Ordering::AcqRel);
        // SAFETY: the consumer's own state (this fn's contract).
        let head = self.head.with(|head| unsafe { (*head).pos });
        // Positions, not slots, compare: the head never stands on a
        // reserved offset, and it steps past one only after popping the
        // block's last slot, whose producer moved the tail past it first.
        // So the tail is never behind the head, and any tail beyond it has
        // claimed the head's slot at least.
        tail > head
    }

    /// How many values are queued (a snapshot; exact when nobody pushes or
    /// pops meanwhile).
    pub(crate) fn len(&self) -> usize {
        let head = self.head_pos.load(Ordering::Acquire);
        let tail = self.tail_pos.load(Ordering::Acquire);
        slots_before(tail).saturating_sub(slots_before(head))
    }

    fn take_spare(&self) -> Option<Box<Block<T>>> {
        for spare in &self.spares {
            // The plain load only skips empty places; the swap decides.
            if spare.load(Ordering::Relaxed).is_null() {
                continue;
            }
            let b = spare.swap(ptr::null_mut(), Ordering::Acquire);
            if !b.is_null() {
                // SAFETY: a spare is a cleared block that nobody else
                // holds; the swap made this thread its only owner.
                return Some(unsafe { Box::from_raw(b) });
            }
        }
        None
    }

    /// Clears `block` (its values were all taken, or never written) and
    /// keeps it as a spare, or frees it if every place is taken.
    fn put_spare(&self, block: Box<Block<T>>) {
        block.next.store(ptr::null_mut(), Ordering::Relaxed);
        for slot in &block.slots {
            slot.ready.store(false, Ordering::Relaxed);
        }
        let block = Box::into_raw(block);
        for spare in &self.spares {
            // Release: whoever takes it (acquire) sees it cleared.
            if spare.load(Ordering::Relaxed).is_null()
                && spare
                    .compare_exchange(ptr::null_mut(), block, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        // SAFETY: not published anywhere: still this thread's alone.
        drop(unsafe { Box::from_raw(block) });
    }
}

impl<T> Drop for Mpsc<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no producer and no other consumer is left.
        while unsafe { self.pop() }.is_some() {}
        let head = self.head.with_mut(|h| {
            // SAFETY: `&mut self`.
            unsafe { (*h).block }
        });
        // With every value taken the head block is normally the last one
        // (a next block is linked by the taker of its last slot, and
        // popping that slot moves the head on); free whatever is linked
        // anyway.
        let mut block = head;
        while !block.is_null() {
            // SAFETY: `&mut self`: the blocks from the head on are ours, and
            // each is freed once.
            let next = unsafe { (*block).next.load(Ordering::Relaxed) };
            // SAFETY: as above.
            drop(unsafe { Box::from_raw(block) });
            block = next;
        }
        while let Some(spare) = self.take_spare() {
            drop(spare);
        }
    }
}

/// Breaking the protocol on purpose, for the loom model that shows it can
/// fail (`completion::loom_tests`).
#[cfg(uniloop_loom)]
pub(crate) mod broken {
    /// `claimed_past_head` reads the tail with a plain acquire load instead
    /// of its read-modify-write. A std atomic, outside the model: it is set
    /// once, before the model runs, by a test that runs alone in a child
    /// process.
    pub(crate) static PLAIN_TAIL_LOAD: std::sync::atomic::AtomicBool =
        std::sync::atomic::AtomicBool::new(false);
}

#[cfg(all(test, not(uniloop_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fifo_across_many_blocks_and_the_spare() {
        // Past the 16 spare places and back, three times.
        const N: u64 = if cfg!(miri) { 300 } else { 2000 };
        let q = Mpsc::new();
        for round in 0..3 {
            for i in 0..N {
                q.push((round, i));
            }
            assert_eq!(q.len(), N as usize);
            for i in 0..N {
                // SAFETY: one consumer, this thread.
                assert_eq!(unsafe { q.pop() }, Some((round, i)));
            }
            // SAFETY: as above.
            assert_eq!(unsafe { q.pop() }, None);
            assert_eq!(q.len(), 0);
        }
    }

    #[test]
    fn values_left_in_the_queue_are_dropped_with_it() {
        let witness = Arc::new(());
        let q = Mpsc::new();
        for _ in 0..200 {
            q.push(witness.clone());
        }
        // SAFETY: one consumer, this thread.
        drop(unsafe { q.pop() });
        drop(q);
        assert_eq!(Arc::strong_count(&witness), 1);
    }

    #[test]
    fn producers_on_threads_lose_nothing_and_keep_their_order() {
        const PER: u64 = if cfg!(miri) { 100 } else { 100_000 };
        let q = Arc::new(Mpsc::new());
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..PER {
                        q.push((p, i));
                    }
                })
            })
            .collect();
        let mut next = [0u64; 3];
        while next.iter().sum::<u64>() < 3 * PER {
            // SAFETY: this thread is the one consumer.
            match unsafe { q.pop() } {
                Some((p, i)) => {
                    assert_eq!(next[p as usize], i, "FIFO per producer");
                    next[p as usize] += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        // SAFETY: as above.
        assert_eq!(unsafe { q.pop() }, None);
    }
}

#[cfg(all(test, uniloop_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Arc;

    /// Two producers push three values each through two-slot blocks: every
    /// interleaving crosses block ends, the reserved offset (a producer
    /// waiting for the next block) and the spare. Every value arrives once,
    /// in order per producer, and nothing is touched after it is reclaimed
    /// (loom checks each slot access against the `ready` that orders it).
    ///
    /// Broken on purpose, it fails: with the `ready` store `Relaxed`, or the
    /// spare's CAS in `put_spare` `Relaxed`, loom reports a causality
    /// violation on a slot's value within a second (checked by hand; the
    /// orderings are what this model proves necessary).
    #[test]
    fn two_producers_through_block_ends() {
        // Three blocks' worth: the third is the first one again, recycled
        // through the spare once the consumer has emptied it.
        const PER: u64 = 3;
        loom::model(|| {
            let q = Arc::new(Mpsc::new());
            let producers: Vec<_> = (0..2u64)
                .map(|p| {
                    let q = q.clone();
                    loom::thread::spawn(move || {
                        for i in 0..PER {
                            q.push((p, i));
                        }
                    })
                })
                .collect();
            let mut next = [0u64; 2];
            let take = |next: &mut [u64; 2], item: Option<(u64, u64)>| {
                if let Some((p, i)) = item {
                    assert_eq!(next[p as usize], i, "FIFO per producer");
                    next[p as usize] += 1;
                }
            };
            // Pops racing the pushes (a bounded number: a spinning
            // consumer would make the model unbounded), then the rest.
            for _ in 0..4 {
                // SAFETY: the model's main thread is the one consumer.
                take(&mut next, unsafe { q.pop() });
            }
            for p in producers {
                p.join().unwrap();
            }
            assert_eq!(q.len(), (2 * PER - next.iter().sum::<u64>()) as usize);
            // SAFETY: as above.
            while let Some(item) = unsafe { q.pop() } {
                take(&mut next, Some(item));
            }
            assert_eq!(next, [PER, PER], "every value once");
            assert_eq!(q.len(), 0);
        });
    }
}
