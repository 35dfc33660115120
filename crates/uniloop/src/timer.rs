//! In-loop timers: no thread per timer (the reference C runtime had one), no
//! callback on a foreign thread. Expiries are [`Event::Timer`]s returned by
//! `wait`, whose timeout is shortened to the earliest deadline.
//!
//! A binary min-heap keyed by `(deadline, sequence)` gives O(log n) insert and
//! expiry and fires equal deadlines in insertion order (the libuv rule).
//! Timers live in a slab, so a [`TimerId`] is a slot plus a generation and
//! cancelling is O(1): the heap entry goes stale and is skipped when it
//! surfaces; the heap is compacted when stale entries outnumber live ones, so
//! cancel-heavy workloads do not grow it without bound. Written here rather
//! than taken from a crate because the timer crates on offer either run their
//! own thread or are tied to an async executor.
//!
//! [`Event::Timer`]: crate::Event::Timer

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::{Duration, Instant};

/// Names a timer made by [`Runtime::add_timer`](crate::Runtime::add_timer);
/// used to cancel it and reported in [`Event::Timer`](crate::Event::Timer).
///
/// Ids are not reused while the timer lives; a stale id (of a fired one-shot
/// or cancelled timer) is safely rejected by `cancel_timer`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

impl TimerId {
    fn new(slot: u32, generation: u32) -> TimerId {
        TimerId((u64::from(generation) << 32) | u64::from(slot))
    }

    fn slot(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The id as a plain number (for logs or a C API).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerId({}.{})", self.slot(), self.generation())
    }
}

/// The smallest period a periodic timer gets: a zero period would make the
/// loop spin, so it is rounded up to this.
pub(crate) const MIN_PERIOD: Duration = Duration::from_millis(1);

struct Timer {
    key: u64,
    /// Nanoseconds; 0 for one-shot.
    period: u64,
    /// The sequence number of this timer's live heap entry.
    seq: u64,
}

struct Slot {
    generation: u32,
    timer: Option<Timer>,
}

/// `(deadline in ns since the wheel's epoch, insertion sequence, slot)`.
type Entry = Reverse<(u64, u64, u32)>;

pub(crate) struct Timers {
    epoch: Instant,
    heap: BinaryHeap<Entry>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    next_seq: u64,
    live: usize,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            epoch: Instant::now(),
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            live: 0,
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
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
        let timer = Timer { key, period, seq };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize].timer = Some(timer);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("more than 2^32 live timers");
                self.slots.push(Slot {
                    generation: 0,
                    timer: Some(timer),
                });
                slot
            }
        };
        self.live += 1;
        self.heap.push(Reverse((deadline, seq, slot)));
        TimerId::new(slot, self.slots[slot as usize].generation)
    }

    fn bump_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        let Some(slot) = self.slots.get_mut(id.slot()) else {
            return false;
        };
        if slot.generation != id.generation() || slot.timer.is_none() {
            return false;
        }
        self.release(id.slot());
        // Compact once stale entries clearly dominate, so memory tracks the
        // live count; amortised O(1) per cancel.
        if self.heap.len() > 1024 && self.heap.len() > 2 * self.live {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse((_, seq, slot))| is_live(slots, *slot, *seq));
        }
        true
    }

    fn release(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        s.timer = None;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot as u32);
        self.live -= 1;
    }

    /// Drops stale entries from the top of the heap, then returns the
    /// earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_stale();
        self.heap
            .peek()
            .map(|Reverse((deadline, _, _))| self.epoch + Duration::from_nanos(*deadline))
    }

    fn skip_stale(&mut self) {
        while let Some(Reverse((_, seq, slot))) = self.heap.peek() {
            if is_live(&self.slots, *slot, *seq) {
                return;
            }
            self.heap.pop();
        }
    }

    /// Whether a timer is due at `now`.
    pub(crate) fn has_due(&mut self, now: Instant) -> bool {
        let now = self.ns(now);
        self.skip_stale();
        matches!(self.heap.peek(), Some(Reverse((deadline, _, _))) if *deadline <= now)
    }

    /// Removes the earliest timer due at `now` and returns its key and id;
    /// a periodic timer is rescheduled to its next deadline after `now`
    /// (missed periods are skipped, not fired in a burst).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(u64, TimerId)> {
        let now = self.ns(now);
        self.skip_stale();
        let &Reverse((deadline, _, slot)) = self.heap.peek()?;
        if deadline > now {
            return None;
        }
        self.heap.pop();
        let s = &self.slots[slot as usize];
        let id = TimerId::new(slot, s.generation);
        let (key, period) = {
            let timer = s.timer.as_ref().expect("live entry has a timer");
            (timer.key, timer.period)
        };
        if let Some(missed) = (now - deadline).checked_div(period) {
            let next = deadline.saturating_add(period.saturating_mul(missed + 1));
            let seq = self.bump_seq();
            if let Some(timer) = self.slots[slot as usize].timer.as_mut() {
                timer.seq = seq;
            }
            self.heap.push(Reverse((next, seq, slot)));
        } else {
            // Period 0: a one-shot timer.
            self.release(slot as usize);
        }
        Some((key, id))
    }
}

fn is_live(slots: &[Slot], slot: u32, seq: u64) -> bool {
    matches!(&slots[slot as usize].timer, Some(t) if t.seq == seq)
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
    fn heap_is_compacted_after_mass_cancel() {
        let now = Instant::now();
        let mut timers = Timers::new();
        let ids: Vec<_> = (0..10_000)
            .map(|k| timers.add(k, Duration::from_secs(60), None, now))
            .collect();
        for id in &ids[..9_000] {
            assert!(timers.cancel(*id));
        }
        assert_eq!(timers.len(), 1_000);
        assert!(
            timers.heap.len() <= 2_048,
            "heap kept {} entries",
            timers.heap.len()
        );
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
            Advance(u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (any::<u64>(), 0..50u64, proptest::option::weighted(0.3, 1..20u64))
                    .prop_map(|(key, delay_ms, period_ms)| Op::Add { key, delay_ms, period_ms }),
                2 => any::<usize>().prop_map(Op::Cancel),
                3 => (0..30u64).prop_map(Op::Advance),
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
                    let next = model.live.iter().map(|t| t.0).min().map(at);
                    prop_assert_eq!(timers.next_deadline(), next);
                }
            }
        }
    }
}
