//! In-loop timers: no thread per timer (the reference C runtime had one), no
//! callback on a foreign thread. Expiries are [`Event::Timer`]s returned by
//! `wait`, whose timeout is shortened to the earliest deadline.
//!
//! **Resolution 1 ms, never early**: a deadline is rounded *up* to a whole
//! millisecond tick since the wheel's epoch, and a timer is due once that
//! tick has begun. Equal ticks fire in insertion order (the libuv rule).
//!
//! A hierarchical timing wheel (the kernel/tokio design): 6 levels of 64
//! slots, a slot of level `i` spanning `64^i` ticks, so the wheel covers
//! 2^36 ms (~2.2 years) ahead; anything further waits in an overflow list
//! that is re-sorted into the wheel once per 2^36 ms. Each level has a `u64`
//! occupancy bitmap and each slot a `Vec` of 16-byte `(sequence, slab index)`
//! entries. A timer's level is picked from the highest bit in which its tick
//! differs from the wheel's current tick.
//!
//! Costs: insert is an O(1) append; cancel is O(1) (timers live in a slab, a
//! [`TimerId`] is a slot plus a generation, and each wheel slot keeps a live
//! count, so its bit is cleared and its memory freed when the last live
//! timer in it goes; a slot more than three-quarters cancelled is compacted,
//! amortised O(1), so memory tracks live timers). Advancing drains the
//! level-0 slot of each tick that has come and moves a higher slot's live
//! entries one level down when its time comes, so an entry moves at most
//! once per level. Due entries of one tick fire in sequence (insertion)
//! order: a slot takes its one cascade before any direct insert, so it is
//! normally in order already, and it is checked and sorted if not.
//! `Timers::next_deadline` is exact for level 0 and otherwise the start of
//! the earliest occupied higher slot, a lower bound: the loop wakes there,
//! cascades and asks again.
//!
//! Memory per pending timer: a 40-byte slab slot (the key, period,
//! deadline and entry sequence; the tick is computed from the deadline and
//! a non-zero sequence spares `Option` its tag) and a 16-byte wheel entry,
//! with the slab and big buckets grown by a sixteenth rather than doubled:
//! about 73 bytes with the 16-byte [`TimerId`] a caller keeps (the memory
//! case of `uniloop-bench`; tokio-util's `DelayQueue` takes 81).
//!
//! Written here rather than taken from a crate because the timer crates on
//! offer either run their own thread or are tied to an async executor.
//!
//! [`Event::Timer`]: crate::Event::Timer

use std::fmt;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

/// Names a timer made by [`Runtime::add_timer`](crate::Runtime::add_timer);
/// used to cancel it and reported in [`Event::Timer`](crate::Event::Timer).
///
/// An id names one timer for the runtime's whole life: a timer added later
/// never gets the id of one that fired or was cancelled, so the id in an
/// `Event::Timer` can be compared with the one you stored, and a stale id
/// is safely rejected by `cancel_timer`.
///
/// An id also belongs to the runtime that made it: given to another
/// runtime's `cancel_timer` or `reset_timer` it names nothing there (they
/// return `false`), even where that runtime has a timer in the same place.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    raw: u64,
    /// The [`Timers`] that made it.
    owner: u32,
}

/// Tells the timer sets of a process apart (0 is never handed out).
static OWNERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

impl TimerId {
    fn new(owner: u32, slot: u32, generation: u32) -> TimerId {
        TimerId {
            raw: (u64::from(generation) << 32) | u64::from(slot),
            owner,
        }
    }

    fn slot(self) -> usize {
        (self.raw & u64::from(u32::MAX)) as usize
    }

    fn generation(self) -> u32 {
        (self.raw >> 32) as u32
    }

    /// The id as a plain number (for logs or a C API): unique among the
    /// timers of its runtime (not across runtimes).
    pub fn as_u64(self) -> u64 {
        self.raw
    }
}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TimerId({}.{}@{})",
            self.slot(),
            self.generation(),
            self.owner
        )
    }
}

/// The smallest period a periodic timer gets: a zero period would make the
/// loop spin, so it is rounded up to this.
pub(crate) const MIN_PERIOD: Duration = Duration::from_millis(1);

/// One tick of the wheel: the timer resolution.
const TICK_NS: u64 = 1_000_000;
const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// Ticks covered by the whole wheel; a tick differing from the current one
/// at or above this bit goes to the overflow list.
const WHEEL_BITS: u32 = SLOT_BITS * LEVELS as u32;

struct Timer {
    key: u64,
    /// Nanoseconds; 0 for one-shot.
    period: u64,
    /// Deadline in ns since the epoch (periodic timers step from it).
    deadline: u64,
    /// The sequence number of this timer's live entry. Never zero, so
    /// `Option<Timer>` needs no tag of its own: a slab slot is 40 bytes.
    seq: NonZeroU64,
}

impl Timer {
    /// `deadline` rounded up to whole ticks: where the timer sits.
    #[inline]
    fn tick(&self) -> u64 {
        self.deadline.div_ceil(TICK_NS)
    }
}

struct Slot {
    generation: u32,
    timer: Option<Timer>,
}

/// A wheel, overflow or due-list entry (16 bytes: the tick is in the slab,
/// which is read anyway to tell live entries). Stale (its timer cancelled
/// or rescheduled) when the slab's timer no longer has this `seq`.
#[derive(Clone, Copy)]
struct Entry {
    seq: NonZeroU64,
    slot: u32,
}

#[derive(Default)]
struct Bucket {
    entries: Vec<Entry>,
    /// Live entries in `entries`; the occupancy bit is set iff this is > 0.
    live: u32,
}

pub(crate) struct Timers {
    /// Stamped into every id made here ([`TimerId`]).
    owner: u32,
    epoch: Instant,
    /// The last tick processed: every timer with `tick <= elapsed` is in
    /// `due`, every other one in the wheel or overflow.
    elapsed: u64,
    /// The `now` the wheel was last advanced to: `pop_due` is called once
    /// per event with the same `now`, which needs no second look.
    advanced_to: Option<Instant>,
    /// `LEVELS * SLOTS` buckets, level-major.
    wheel: Box<[Bucket]>,
    occupied: [u64; LEVELS],
    overflow: Bucket,
    /// Due entries in (tick, sequence) order, from `due_head` on.
    due: Vec<Entry>,
    due_head: usize,
    slots: Vec<Slot>,
    free: Vec<u32>,
    next_seq: NonZeroU64,
    live: usize,
}

/// Where an entry for `tick` lives when the wheel stands at `elapsed`
/// (`tick > elapsed`): `Some((level, slot))`, or `None` for the overflow.
fn place(tick: u64, elapsed: u64) -> Option<(usize, usize)> {
    debug_assert!(tick > elapsed);
    let high = 63 - (tick ^ elapsed).leading_zeros();
    if high >= WHEEL_BITS {
        return None;
    }
    let level = (high / SLOT_BITS) as usize;
    let slot = ((tick >> (SLOT_BITS * level as u32)) as usize) & (SLOTS - 1);
    Some((level, slot))
}

/// How many entries ahead a drain or cascade prefetches the slab: its slots
/// are scattered, so each is a cache miss, and misses issued early overlap.
const PREFETCH: usize = 8;

/// Hints the CPU to fetch the slab slot `entries[i]` points at.
#[inline(always)]
fn prefetch(slots: &[Slot], entries: &[Entry], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(s) = entries.get(i).and_then(|e| slots.get(e.slot as usize)) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first = (s as *const Slot).cast::<i8>();
        // A slot may straddle two cache lines: fetch both ends.
        let last = first.wrapping_add(std::mem::size_of::<Slot>() - 1);
        // SAFETY: a prefetch is only a hint; it never faults and does not
        // change memory (`last` is inside the same slot).
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(first);
            _mm_prefetch::<_MM_HINT_T0>(last);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slots, entries, i);
}

/// `v.push(x)`, growing a full `v` by a sixteenth once it holds 4,096
/// elements instead of doubling it. The slab and the buckets are nearly all
/// of a timer's memory, and doubling leaves a quarter of them unused on
/// average (a third just after a growth); a sixteenth at most 6 %. Still
/// amortised O(1): the growth is geometric, and past 4,096 elements (64 KiB
/// and more) a reallocation is one glibc serves by remapping pages, not by
/// copying them.
#[inline]
fn push_compact<T>(v: &mut Vec<T>, x: T) {
    if v.len() == v.capacity() {
        let n = v.len();
        v.reserve_exact(if n < 4096 { n.max(4) } else { n / 16 });
    }
    v.push(x);
}

/// The entry's timer, if the entry is live.
fn live_timer<'a>(slots: &'a [Slot], e: &Entry) -> Option<&'a Timer> {
    slots[e.slot as usize]
        .timer
        .as_ref()
        .filter(|t| t.seq == e.seq)
}

impl Timers {
    pub(crate) fn new() -> Timers {
        // Relaxed: the number only has to be unique, nothing is published.
        let mut owner = OWNERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if owner == 0 {
            // Wrapped after 2^32 runtimes: skip 0, keep going.
            owner = OWNERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Timers {
            owner,
            epoch: Instant::now(),
            elapsed: 0,
            advanced_to: None,
            wheel: (0..LEVELS * SLOTS).map(|_| Bucket::default()).collect(),
            occupied: [0; LEVELS],
            overflow: Bucket::default(),
            due: Vec::new(),
            due_head: 0,
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: NonZeroU64::MIN,
            live: 0,
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.epoch);
        d.as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()))
    }

    fn instant(&self, tick: u64) -> Instant {
        let d = Duration::from_nanos(tick.saturating_mul(TICK_NS));
        // Past what `Instant` holds: any far instant is a valid lower bound.
        self.epoch
            .checked_add(d)
            .unwrap_or_else(|| self.epoch + Duration::from_secs(u64::from(u32::MAX)))
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn add(
        &mut self,
        key: u64,
        delay: Duration,
        period: Option<Duration>,
        now: Instant,
    ) -> TimerId {
        let delay = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        let deadline = self.ns(now).saturating_add(delay);
        let period = period.map_or(0, |p| {
            u64::try_from(p.max(MIN_PERIOD).as_nanos()).unwrap_or(u64::MAX)
        });
        let seq = self.bump_seq();
        let tick = deadline.div_ceil(TICK_NS);
        let timer = Timer {
            key,
            period,
            deadline,
            seq,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize].timer = Some(timer);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("more than 2^32 live timers");
                push_compact(
                    &mut self.slots,
                    Slot {
                        generation: 0,
                        timer: Some(timer),
                    },
                );
                slot
            }
        };
        self.live += 1;
        self.insert(Entry { seq, slot }, tick);
        TimerId::new(self.owner, slot, self.slots[slot as usize].generation)
    }

    /// Files a live entry: due now if its tick has been processed (it then
    /// has the largest sequence, so the due list stays in order), else in
    /// its wheel slot or the overflow.
    fn insert(&mut self, e: Entry, tick: u64) {
        if tick <= self.elapsed {
            self.due.push(e);
            return;
        }
        let bucket = match place(tick, self.elapsed) {
            Some((level, slot)) => {
                self.occupied[level] |= 1 << slot;
                &mut self.wheel[level * SLOTS + slot]
            }
            None => &mut self.overflow,
        };
        push_compact(&mut bucket.entries, e);
        bucket.live += 1;
    }

    fn bump_seq(&mut self) -> NonZeroU64 {
        let seq = self.next_seq;
        // 2^64 timers and resets would take centuries at any rate.
        self.next_seq = seq.saturating_add(1);
        seq
    }

    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        let Some(tick) = self.live_tick(id) else {
            return false;
        };
        self.release(id.slot());
        self.unfile(tick);
        true
    }

    /// Moves a live timer's deadline to `delay` after `now`, keeping its id,
    /// key and period; it sorts after timers already due at that tick, as a
    /// timer added now would.
    pub(crate) fn reset(&mut self, id: TimerId, delay: Duration, now: Instant) -> bool {
        let Some(old_tick) = self.live_tick(id) else {
            return false;
        };
        let delay = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        let deadline = self.ns(now).saturating_add(delay);
        let tick = deadline.div_ceil(TICK_NS);
        let seq = self.bump_seq();
        let timer = self.slots[id.slot()]
            .timer
            .as_mut()
            .expect("a live id has a timer");
        timer.deadline = deadline;
        // The entry filed under the old sequence is stale from here on.
        timer.seq = seq;
        self.unfile(old_tick);
        self.insert(
            Entry {
                seq,
                slot: id.slot() as u32,
            },
            tick,
        );
        true
    }

    /// The tick of the live timer `id` names, if it names one.
    fn live_tick(&self, id: TimerId) -> Option<u64> {
        if id.owner != self.owner {
            return None;
        }
        let slot = self.slots.get(id.slot())?;
        if slot.generation != id.generation() {
            return None;
        }
        slot.timer.as_ref().map(Timer::tick)
    }

    /// Bookkeeping for a live entry filed at `tick` that has just gone stale
    /// (its timer cancelled or moved): its bucket's live count and
    /// occupancy bit, and compaction of a mostly stale bucket.
    fn unfile(&mut self, tick: u64) {
        if tick <= self.elapsed {
            // In the due list: skipped as stale when it surfaces.
            return;
        }
        let bucket = match place(tick, self.elapsed) {
            Some((level, slot)) => {
                let bucket = &mut self.wheel[level * SLOTS + slot];
                if bucket.live == 1 {
                    self.occupied[level] &= !(1 << slot);
                }
                bucket
            }
            None => &mut self.overflow,
        };
        bucket.live -= 1;
        if bucket.live == 0 {
            bucket.entries = Vec::new();
        } else if bucket.entries.len() > 64 && bucket.entries.len() > 4 * bucket.live as usize {
            // Mostly stale: compact, amortised O(1) per cancel, so memory
            // tracks the live count.
            let slots = &self.slots;
            bucket.entries.retain(|e| live_timer(slots, e).is_some());
        }
    }

    fn release(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        s.timer = None;
        // A generation is never reused, so neither is an id: a slot whose
        // generation would wrap is retired (one slot per 2^32 timers).
        if let Some(next) = s.generation.checked_add(1) {
            s.generation = next;
            self.free.push(slot as u32);
        }
        self.live -= 1;
    }

    /// The start tick of the earliest occupied wheel slot or overflow
    /// round, with its bucket (`None` = the overflow).
    fn next_expiration(&self) -> Option<(u64, Option<(usize, usize)>)> {
        for level in 0..LEVELS {
            let shift = SLOT_BITS * level as u32;
            let digit = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            // A level only holds slots after its current digit (an entry is
            // cascaded when its slot's time comes).
            let past = u64::MAX >> (63 - digit);
            debug_assert_eq!(self.occupied[level] & past, 0);
            let ahead = self.occupied[level] & !past;
            if ahead != 0 {
                // Any occupied slot of a lower level starts before every
                // slot of a higher one, so the first non-empty level wins.
                let slot = ahead.trailing_zeros() as usize;
                let level_start = self.elapsed & !((1u64 << (shift + SLOT_BITS)) - 1);
                return Some((level_start + ((slot as u64) << shift), Some((level, slot))));
            }
        }
        (self.overflow.live > 0).then(|| (((self.elapsed >> WHEEL_BITS) + 1) << WHEEL_BITS, None))
    }

    /// Processes every tick up to the one `now` is in.
    fn advance(&mut self, now: Instant) {
        if self.advanced_to == Some(now) {
            return;
        }
        self.advanced_to = Some(now);
        let target = self.ns(now) / TICK_NS;
        if target <= self.elapsed {
            return;
        }
        while let Some((start, at)) = self.next_expiration() {
            if start > target {
                break;
            }
            self.elapsed = start;
            let entries = match at {
                Some((level, slot)) => {
                    self.occupied[level] &= !(1 << slot);
                    let bucket = &mut self.wheel[level * SLOTS + slot];
                    bucket.live = 0;
                    std::mem::take(&mut bucket.entries)
                }
                None => {
                    self.overflow.live = 0;
                    std::mem::take(&mut self.overflow.entries)
                }
            };
            // Entries of this very tick go to the due list: a level-0 slot
            // holds nothing else, a cascade may hold some. They must fire in
            // insertion order: a slot takes its one cascade before any
            // direct insert, so they normally are in order; check, and sort
            // if not.
            let from = self.due.len();
            if matches!(at, Some((0, _))) {
                // Dropping stale entries here, in one pass of independent
                // loads, also brings the slab lines in for the pops to come.
                let slots = &self.slots;
                self.due
                    .extend(entries.iter().enumerate().filter_map(|(i, e)| {
                        prefetch(slots, &entries, i + PREFETCH);
                        live_timer(slots, e).map(|_| *e)
                    }));
            } else {
                for (i, &e) in entries.iter().enumerate() {
                    prefetch(&self.slots, &entries, i + PREFETCH);
                    if let Some(tick) = live_timer(&self.slots, &e).map(Timer::tick) {
                        self.insert(e, tick);
                    }
                }
            }
            let fresh = &mut self.due[from..];
            if !fresh.windows(2).all(|w| w[0].seq < w[1].seq) {
                fresh.sort_unstable_by_key(|e| e.seq);
            }
        }
        self.elapsed = target;
    }

    /// Drops stale entries from the front of the due list; returns the
    /// first live one.
    fn due_front(&mut self) -> Option<(Entry, u64)> {
        while let Some(e) = self.due.get(self.due_head) {
            if let Some(t) = live_timer(&self.slots, e) {
                return Some((*e, t.tick()));
            }
            self.due_head += 1;
        }
        self.due.clear();
        self.due_head = 0;
        None
    }

    /// The earliest deadline, or a lower bound of it: exact for a timer in
    /// level 0 (or already due), the start of the earliest occupied slot for
    /// one in a higher level. Never later than the true next deadline, and
    /// after `has_due(now)` found nothing, later than `now`.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        if self.live == 0 {
            // Nothing live, so every due entry is stale: drop them at once.
            self.due.clear();
            self.due_head = 0;
            return None;
        }
        if let Some((_, tick)) = self.due_front() {
            return Some(self.instant(tick));
        }
        self.next_expiration().map(|(start, _)| self.instant(start))
    }

    /// Whether a timer is due at `now`.
    pub(crate) fn has_due(&mut self, now: Instant) -> bool {
        self.advance(now);
        self.due_front().is_some()
    }

    /// Removes the earliest timer due at `now` and returns its key and id;
    /// a periodic timer is rescheduled to its next deadline after `now`
    /// (missed periods are skipped, not fired in a burst).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(u64, TimerId)> {
        self.advance(now);
        let (e, _) = self.due_front()?;
        self.due_head += 1;
        if self.due_head > 1024 && self.due_head * 2 > self.due.len() {
            self.due.drain(..self.due_head);
            self.due_head = 0;
        }
        let slot = e.slot;
        let s = &self.slots[slot as usize];
        let id = TimerId::new(self.owner, slot, s.generation);
        let (key, period, deadline) = {
            let timer = s.timer.as_ref().expect("live entry has a timer");
            (timer.key, timer.period, timer.deadline)
        };
        if let Some(missed) = self.ns(now).saturating_sub(deadline).checked_div(period) {
            let next = deadline.saturating_add(period.saturating_mul(missed + 1));
            let seq = self.bump_seq();
            let tick = next.div_ceil(TICK_NS);
            if let Some(timer) = self.slots[slot as usize].timer.as_mut() {
                timer.seq = seq;
                timer.deadline = next;
            }
            self.insert(Entry { seq, slot }, tick);
        } else {
            // Period 0: a one-shot timer.
            self.release(slot as usize);
        }
        Some((key, id))
    }

    /// Entries held in the wheel, overflow and due list, stale included.
    #[cfg(test)]
    fn stored(&self) -> usize {
        self.wheel.iter().map(|b| b.entries.len()).sum::<usize>()
            + self.overflow.entries.len()
            + (self.due.len() - self.due_head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_deadlines_fire_in_insertion_order() {
        let now = Instant::now();
        let mut timers = Timers::new();
        let ids: Vec<_> = (0..100)
            .map(|k| timers.add(k, Duration::ZERO, None, now))
            .collect();
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(now)).collect();
        assert_eq!(fired, (0..100).zip(ids).collect::<Vec<_>>());
    }

    #[test]
    fn cancel_is_exact_and_ids_are_not_confused() {
        let now = Instant::now();
        let mut timers = Timers::new();
        let a = timers.add(1, Duration::ZERO, None, now);
        assert!(timers.cancel(a));
        assert!(!timers.cancel(a), "second cancel of the same id");
        let b = timers.add(2, Duration::ZERO, None, now); // reuses a's slot
        assert_ne!(a, b);
        assert!(
            !timers.cancel(a),
            "stale id must not cancel the slot's new timer"
        );
        assert_eq!(timers.pop_due(now), Some((2, b)));
        assert_eq!(timers.pop_due(now), None);
    }

    /// After 2^32 timers in one slot its generation would wrap and the
    /// next timer there would get the id of the slot's first: the slot is
    /// retired instead.
    #[test]
    fn ids_are_never_reused_even_after_the_generation_runs_out() {
        let now = Instant::now();
        let mut timers = Timers::new();
        let first = timers.add(1, Duration::ZERO, None, now);
        assert_eq!(timers.pop_due(now), Some((1, first)));
        // As if 2^32 - 2 more timers had used the slot since.
        timers.slots[first.slot()].generation = u32::MAX;
        let last = timers.add(2, Duration::ZERO, None, now);
        assert_eq!(last.slot(), first.slot());
        assert!(timers.cancel(last));
        let next = timers.add(3, Duration::ZERO, None, now);
        assert_ne!(next, first);
        assert_ne!(next, last);
        assert_eq!(timers.pop_due(now), Some((3, next)));
    }

    #[test]
    fn reset_moves_the_deadline_and_keeps_the_id() {
        let start = Instant::now();
        let mut timers = Timers::new();
        timers.epoch = start;
        let at = |ms: u64| start + Duration::from_millis(ms);
        let ms = Duration::from_millis;
        let id = timers.add(1, ms(10), None, at(0));
        let other = timers.add(2, ms(15), None, at(0));
        assert!(timers.reset(id, ms(10), at(5)));
        assert_eq!(timers.next_deadline(), Some(at(15)));
        assert!(!timers.has_due(at(14)), "the old deadline is gone");
        // Now due with `other`, which was there first.
        assert_eq!(timers.pop_due(at(15)), Some((2, other)));
        assert_eq!(timers.pop_due(at(15)), Some((1, id)));
        assert!(!timers.reset(id, ms(1), at(15)), "a fired one-shot");
        assert!(!timers.reset(other, ms(1), at(15)));
        assert_eq!(timers.len(), 0);

        // A periodic timer keeps its period from the new deadline.
        let p = timers.add(3, ms(10), Some(ms(10)), at(20));
        assert!(timers.reset(p, ms(1), at(23)));
        assert_eq!(timers.pop_due(at(24)), Some((3, p)));
        assert!(!timers.has_due(at(33)));
        assert_eq!(timers.pop_due(at(34)), Some((3, p)));
        // Reset while due (not yet delivered): postponed.
        assert!(timers.has_due(at(44)));
        assert!(timers.reset(p, ms(100), at(44)));
        assert!(!timers.has_due(at(143)));
        assert_eq!(timers.pop_due(at(144)), Some((3, p)));
        assert!(timers.cancel(p));
        assert_eq!(timers.next_deadline(), None);
        assert_eq!(timers.stored(), 0);
    }

    #[test]
    fn periodic_skips_missed_periods() {
        let start = Instant::now();
        let mut timers = Timers::new();
        let p = Duration::from_millis(10);
        let id = timers.add(9, p, Some(p), start);
        // The loop was away for 10.5 periods: one event, not ten.
        let late = start + p * 10 + p / 2;
        assert_eq!(timers.pop_due(late), Some((9, id)));
        assert_eq!(timers.pop_due(late), None);
        let next = timers.next_deadline().unwrap();
        assert!(next > late && next <= late + p);
    }

    #[test]
    fn memory_tracks_live_timers_after_mass_cancel() {
        let now = Instant::now();
        let mut timers = Timers::new();
        // All in one high-level slot (same deadline), plus spread ones.
        let mut ids: Vec<_> = (0..10_000)
            .map(|k| timers.add(k, Duration::from_secs(60), None, now))
            .collect();
        ids.extend((0..10_000).map(|k| timers.add(k, Duration::from_millis(k), None, now)));
        for id in ids.iter().step_by(10).chain(&ids[..9_000]) {
            timers.cancel(*id);
        }
        assert!(timers.len() < 10_000);
        assert!(
            timers.stored() <= 4 * timers.len() + 64 * LEVELS * SLOTS,
            "{} entries kept for {} timers",
            timers.stored(),
            timers.len()
        );
        for id in &ids {
            timers.cancel(*id);
        }
        // (A stale due entry goes when next_deadline looks at it.)
        assert_eq!(timers.next_deadline(), None);
        assert_eq!(timers.stored(), 0);
        assert_eq!(timers.occupied, [0; LEVELS]);
    }

    #[test]
    fn a_cascade_drops_stale_entries() {
        let start = Instant::now();
        let mut timers = Timers::new();
        timers.epoch = start;
        let ms = Duration::from_millis;
        // a and c share a level-1 slot; a's cancelled entry stays there
        // (c keeps the slot live) and b reuses a's slab slot.
        let a = timers.add(1, ms(100), None, start);
        let c = timers.add(3, ms(100), None, start);
        assert!(timers.cancel(a));
        let b = timers.add(2, ms(200), None, start);
        assert_eq!(a.slot(), b.slot());
        // Cascade a and c's slot: a's entry must not be re-filed as b's.
        assert_eq!(timers.pop_due(start + ms(64)), None);
        assert!(timers.cancel(b));
        assert!(timers.cancel(c));
        assert_eq!(timers.next_deadline(), None, "an empty wheel wakes nobody");
        assert_eq!(timers.occupied, [0; LEVELS]);
    }

    #[test]
    fn resolution_is_one_millisecond_never_early() {
        let start = Instant::now();
        let mut timers = Timers::new();
        timers.epoch = start;
        let at = |us: u64| start + Duration::from_micros(us);
        let id = timers.add(1, Duration::from_micros(1_300), None, at(0));
        assert_eq!(timers.next_deadline(), Some(at(2_000)));
        assert!(!timers.has_due(at(1_300)));
        assert!(!timers.has_due(at(1_999)));
        assert_eq!(timers.pop_due(at(2_000)), Some((1, id)));
    }

    #[test]
    fn far_timers_cascade_and_overflow() {
        let start = Instant::now();
        let mut timers = Timers::new();
        timers.epoch = start;
        let day = Duration::from_secs(86_400);
        // ~3 years is past the wheel's 2^36 ms: the overflow list.
        let delays = [
            day * 1100,
            day * 3,
            Duration::from_secs(3_600),
            Duration::from_millis(70),
        ];
        let ids: Vec<_> = delays
            .iter()
            .enumerate()
            .map(|(k, d)| timers.add(k as u64, *d, None, start))
            .collect();
        let mut now = start;
        for k in (0..delays.len()).rev() {
            // Follow next_deadline as the loop would: lower bounds, never late.
            let mut wakes = 0;
            loop {
                let next = timers.next_deadline().unwrap();
                assert!(next > now, "no busy loop");
                assert!(next <= start + delays[k]);
                now = next;
                wakes += 1;
                if let Some(got) = timers.pop_due(now) {
                    assert_eq!(got, (k as u64, ids[k]));
                    assert_eq!(now, start + delays[k]);
                    break;
                }
                assert!(wakes < 20);
            }
        }
        assert_eq!(timers.next_deadline(), None);
    }

    mod model {
        //! `Timers` against a naive model: a list of live timers, fired by
        //! scanning for the smallest `(deadline, insertion order)`.
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Add {
                key: u64,
                delay_ms: u64,
                period_ms: Option<u64>,
            },
            Cancel(usize),
            Reset(usize, u64),
            Advance(u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (any::<u64>(), 0..50u64, proptest::option::weighted(0.3, 1..20u64))
                    .prop_map(|(key, delay_ms, period_ms)| Op::Add { key, delay_ms, period_ms }),
                2 => any::<usize>().prop_map(Op::Cancel),
                2 => (any::<usize>(), 0..50u64).prop_map(|(i, ms)| Op::Reset(i, ms)),
                3 => (0..30u64).prop_map(Op::Advance),
                // Far timers and long jumps: cascades from the high levels.
                1 => (any::<u64>(), 0..(4 * 86_400_000u64), proptest::option::weighted(0.3, 1..7_200_000u64))
                    .prop_map(|(key, delay_ms, period_ms)| Op::Add { key, delay_ms, period_ms }),
                1 => (0..(8 * 3_600_000u64)).prop_map(Op::Advance),
            ]
        }

        struct Model {
            /// (deadline ms, order, key, period ms, id)
            live: Vec<(u64, u64, u64, u64, TimerId)>,
            order: u64,
        }

        impl Model {
            fn pop_due(&mut self, now: u64) -> Option<(u64, TimerId)> {
                let i = (0..self.live.len())
                    .filter(|&i| self.live[i].0 <= now)
                    .min_by_key(|&i| (self.live[i].0, self.live[i].1))?;
                let (deadline, _, key, period, id) = self.live[i];
                match (now - deadline).checked_div(period) {
                    None => {
                        self.live.remove(i);
                    }
                    Some(missed) => {
                        self.live[i].0 = deadline + period * (missed + 1);
                        self.live[i].1 = self.order;
                        self.order += 1;
                    }
                }
                Some((key, id))
            }
        }

        proptest! {
            #[test]
            fn matches_model(ops in proptest::collection::vec(op(), 1..200)) {
                let start = Instant::now();
                let mut timers = Timers::new();
                // Pin the epoch so model milliseconds map exactly.
                timers.epoch = start;
                let mut model = Model { live: Vec::new(), order: 0 };
                let mut ids: Vec<TimerId> = Vec::new();
                let mut now = 0u64;
                let at = |ms: u64| start + Duration::from_millis(ms);
                for op in ops {
                    match op {
                        Op::Add { key, delay_ms, period_ms } => {
                            let id = timers.add(
                                key,
                                Duration::from_millis(delay_ms),
                                period_ms.map(Duration::from_millis),
                                at(now),
                            );
                            model.live.push((now + delay_ms, model.order, key, period_ms.unwrap_or(0), id));
                            model.order += 1;
                            ids.push(id);
                        }
                        Op::Cancel(i) if !ids.is_empty() => {
                            let id = ids[i % ids.len()];
                            let in_model = model.live.iter().position(|t| t.4 == id);
                            prop_assert_eq!(timers.cancel(id), in_model.is_some());
                            if let Some(p) = in_model {
                                model.live.remove(p);
                            }
                        }
                        Op::Cancel(_) => {}
                        Op::Reset(i, delay_ms) if !ids.is_empty() => {
                            let id = ids[i % ids.len()];
                            let in_model = model.live.iter().position(|t| t.4 == id);
                            prop_assert_eq!(
                                timers.reset(id, Duration::from_millis(delay_ms), at(now)),
                                in_model.is_some()
                            );
                            if let Some(p) = in_model {
                                // A new deadline, and the order of a timer
                                // added now.
                                model.live[p].0 = now + delay_ms;
                                model.live[p].1 = model.order;
                                model.order += 1;
                            }
                        }
                        Op::Reset(..) => {}
                        Op::Advance(ms) => {
                            now += ms;
                            loop {
                                let got = timers.pop_due(at(now));
                                prop_assert_eq!(got, model.pop_due(now));
                                if got.is_none() {
                                    break;
                                }
                            }
                        }
                    }
                    prop_assert_eq!(timers.len(), model.live.len());
                    // A lower bound (exact in level 0), never a busy loop
                    // when nothing is due, `None` iff no live timers.
                    let exact = model.live.iter().map(|t| t.0).min();
                    let next = timers.next_deadline();
                    prop_assert_eq!(next.is_none(), exact.is_none());
                    if let (Some(next), Some(exact)) = (next, exact) {
                        prop_assert!(next <= at(exact), "{:?} > {}", next.duration_since(start), exact);
                        if exact > now {
                            prop_assert!(next > at(now), "busy loop: {:?} <= {}", next.duration_since(start), now);
                        }
                    }
                }
            }
        }
    }
}
