//! `Queue<T>`: the reference C queue suite ported (CreateDestroy …
//! MultipleProducers), tests for the reference queue's defects (a
//! too-small dequeue buffer that blocked the head, no blocking dequeue, a
//! `SIGNAL_ON_DATA` that signalled nothing, writers stranded by `clear`
//! and `destroy`), a proptest state machine against a `VecDeque` model, and a 4-producer /
//! 2-consumer stress test.

mod util;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use uniloop::{Event, Events, Overflow, PopError, PushError, Queue, Runtime};
use util::*;

/// Runs `f` on a thread; its result, or a panic if it takes longer than the
/// guard (a hang shows as a failure, not a stuck test run).
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

#[track_caller]
fn guarded<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(GUARD)
        .expect("the thread did not finish within the guard time")
}

// ---- the reference C suite -------------------------------------------

#[test]
fn create_destroy() {
    let q = Queue::<u32>::bounded(16, Overflow::Reject);
    assert_eq!(q.capacity(), 16);
    assert_eq!(q.len(), 0);
    assert!(q.is_empty());
    assert!(!q.is_full());
    assert!(!q.is_closed());
    assert_eq!(q.overflow(), Overflow::Reject);
    drop(q);
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn zero_capacity_panics_with_a_clear_message() {
    let _ = Queue::<u32>::bounded(0, Overflow::Reject);
}

#[test]
fn enqueue_dequeue() {
    let q = Queue::bounded(4, Overflow::Reject);
    q.push("hello".to_string()).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q.try_pop().as_deref(), Some("hello"));
    assert_eq!(q.try_pop(), None);
}

#[test]
fn multiple_messages_fifo() {
    let q = Queue::bounded(16, Overflow::Reject);
    for i in 0..10 {
        q.push(i).unwrap();
    }
    let got: Vec<_> = std::iter::from_fn(|| q.try_pop()).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

#[test]
fn queue_full_fifth_push_fails_and_hands_the_value_back() {
    let q = Queue::bounded(4, Overflow::Reject);
    for i in 1..=4 {
        q.push(i).unwrap();
    }
    assert!(q.is_full());
    match q.push(5) {
        Err(PushError::Full(v)) => assert_eq!(v, 5),
        other => panic!("expected Full(5), got {other:?}"),
    }
    assert!(matches!(q.try_push(6), Err(PushError::Full(6))));
    assert_eq!(q.len(), 4);
    assert_eq!(q.stats().rejected, 2);
}

#[test]
fn drop_oldest_fifth_push_succeeds_and_head_is_the_second() {
    let q = Queue::bounded(4, Overflow::DropOldest);
    for i in 1..=5 {
        q.push(i).unwrap();
    }
    assert_eq!(q.len(), 4);
    assert_eq!(q.try_pop(), Some(2));
    assert_eq!(q.stats().dropped, 1);
    // force_push hands the displaced item back, whatever the policy.
    let r = Queue::bounded(1, Overflow::Reject);
    r.push('a').unwrap();
    assert_eq!(r.force_push('b'), Ok(Some('a')));
    assert_eq!(r.try_pop(), Some('b'));
}

#[test]
fn statistics() {
    let q = Queue::bounded(4, Overflow::DropOldest);
    for i in 0..6 {
        q.push(i).unwrap();
    }
    assert!(q.try_push(9).is_err());
    q.try_pop().unwrap();
    let s = q.stats();
    assert_eq!(s.capacity, 4);
    assert_eq!(s.len, 3);
    assert_eq!(s.high_water, 4);
    assert_eq!(s.pushed, 6);
    assert_eq!(s.popped, 1);
    assert_eq!(s.dropped, 2);
    assert_eq!(s.rejected, 1);
}

#[test]
fn clear() {
    let q = Queue::bounded(8, Overflow::Reject);
    for i in 0..5 {
        q.push(i).unwrap();
    }
    assert_eq!(q.clear(), 5);
    assert!(q.is_empty());
    assert_eq!(q.stats().dropped, 5);
    q.push(42).unwrap();
    assert_eq!(q.try_pop(), Some(42));
}

#[test]
fn single_producer_single_consumer_1000_through_32() {
    const N: u32 = if cfg!(miri) { 100 } else { 1000 };
    let q = Queue::bounded(32, Overflow::Block);
    let tx = q.clone();
    let producer = on_thread(move || {
        for i in 0..N {
            tx.push(i).unwrap();
        }
    });
    for want in 0..N {
        assert_eq!(q.pop_timeout(GUARD), Ok(want));
    }
    guarded(&producer);
    assert!(q.stats().high_water <= 32);
}

#[test]
fn multiple_producers() {
    const PRODUCERS: u32 = 4;
    const EACH: u32 = if cfg!(miri) { 50 } else { 1000 };
    let q = Queue::bounded(16, Overflow::Block);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = q.clone();
            on_thread(move || {
                for i in 0..EACH {
                    tx.push((p, i)).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u32; PRODUCERS as usize];
    for _ in 0..PRODUCERS * EACH {
        let (p, i) = q.pop_timeout(GUARD).unwrap();
        assert_eq!(next[p as usize], i, "producer {p}'s items out of order");
        next[p as usize] += 1;
    }
    for p in &producers {
        guarded(p);
    }
    assert!(q.is_empty());
}

// ---- reference defect 6 ------------------------------------------------

/// Defect 6: a message bigger than the reader's buffer stayed stuck at the
/// head. Here a pop moves the whole value, whatever its size.
#[test]
fn a_large_message_never_blocks_the_head() {
    let q = Queue::bounded(2, Overflow::Reject);
    q.push(vec![7u8; 4 << 20]).unwrap();
    q.push(vec![1u8]).unwrap();
    assert_eq!(q.try_pop().unwrap().len(), 4 << 20);
    assert_eq!(q.try_pop(), Some(vec![1u8]));
}

/// Defect 6: there was no blocking dequeue (workers polled with sleeps).
#[test]
fn pop_blocks_until_a_push() {
    let q = Queue::bounded(1, Overflow::Reject);
    let rx = q.clone();
    let popper = on_thread(move || rx.pop());
    q.push(99).unwrap();
    assert_eq!(guarded(&popper), Ok(99));
}

#[test]
fn timeouts() {
    let q = Queue::bounded(1, Overflow::Block);
    assert_eq!(
        q.pop_timeout(Duration::from_millis(5)),
        Err(PopError::Timeout)
    );
    q.push(1).unwrap();
    assert!(matches!(
        q.push_timeout(2, Duration::from_millis(5)),
        Err(PushError::Timeout(2))
    ));
    assert_eq!(q.stats().rejected, 1);
    // A push_timeout that finds room does not wait.
    assert_eq!(q.try_pop(), Some(1));
    q.push_timeout(3, GUARD).unwrap();
}

/// Defect 6: `clear`/`destroy` stranded blocked writers. Closing wakes a
/// blocked pusher (its value comes back) and every blocked popper.
#[test]
fn close_wakes_blocked_pushers_and_poppers() {
    let full = Queue::bounded(1, Overflow::Block);
    full.push(0).unwrap();
    let pushers: Vec<_> = (1..=3)
        .map(|v| {
            let q = full.clone();
            on_thread(move || q.push(v))
        })
        .collect();
    let empty = Queue::<u32>::bounded(1, Overflow::Block);
    let poppers: Vec<_> = (0..3)
        .map(|_| {
            let q = empty.clone();
            on_thread(move || q.pop())
        })
        .collect();
    full.close();
    empty.close();
    for (p, v) in pushers.iter().zip(1..) {
        match guarded(p) {
            Err(PushError::Closed(back)) => assert_eq!(back, v),
            other => panic!("expected Closed({v}), got {other:?}"),
        }
    }
    for p in &poppers {
        assert_eq!(guarded(p), Err(PopError::Closed));
    }
    // What was queued before the close is still delivered.
    assert_eq!(full.pop(), Ok(0));
    assert_eq!(full.pop(), Err(PopError::Closed));
}

/// Defect 6 again: a blocked writer gets the room `clear` makes.
#[test]
fn clear_unblocks_a_blocked_pusher() {
    let q = Queue::bounded(2, Overflow::Block);
    q.push(1).unwrap();
    q.push(2).unwrap();
    let tx = q.clone();
    let pusher = on_thread(move || tx.push(3));
    // Whether the pusher is already asleep or not, it must get in (and
    // may even get in during the clear, which then takes its item too).
    let cleared = q.clear();
    assert!(guarded(&pusher).is_ok());
    let rest: Vec<_> = std::iter::from_fn(|| q.try_pop()).collect();
    assert_eq!(cleared + rest.len(), 3);
    if cleared == 2 {
        assert_eq!(rest, [3]);
    }
}

/// Defect 6: `SIGNAL_ON_DATA` signalled nothing. A push into an empty queue
/// posts one completion; a burst posts one; after a drain the next push
/// posts again.
#[test]
fn signal_posts_one_completion_per_burst_to_the_runtime() {
    const KEY: u64 = 77;
    let mut rt = Runtime::new().unwrap();
    let mut events = Events::with_capacity(64);
    let q = Queue::bounded(64, Overflow::Reject);
    q.signal(&rt.poster(), KEY);
    assert!(poll_now(&mut rt, &mut events).is_empty());

    for i in 0..20 {
        q.push(i).unwrap();
    }
    let seen = wait_until(&mut rt, &mut events, |e| {
        matches!(e, Event::Completion { key: KEY, .. })
    });
    assert_eq!(seen, [Event::Completion { key: KEY, data: 0 }]);
    assert!(
        poll_now(&mut rt, &mut events).is_empty(),
        "a burst flooded the loop"
    );

    let drained: Vec<_> = std::iter::from_fn(|| q.try_pop()).collect();
    assert_eq!(drained.len(), 20);
    assert!(poll_now(&mut rt, &mut events).is_empty());

    q.push(100).unwrap();
    assert_eq!(
        poll_now(&mut rt, &mut events),
        [Event::Completion { key: KEY, data: 0 }]
    );
}

#[test]
fn signal_on_a_non_empty_queue_posts_at_once() {
    let mut rt = Runtime::new().unwrap();
    let mut events = Events::with_capacity(8);
    let q = Queue::bounded(4, Overflow::Reject);
    q.push(1).unwrap();
    q.signal(&rt.poster(), 3);
    assert_eq!(
        poll_now(&mut rt, &mut events),
        [Event::Completion { key: 3, data: 0 }]
    );
}

/// A worker thread feeds the loop through the queue; every item arrives and
/// the loop is never left asleep with items queued.
#[test]
fn signal_with_a_producer_thread_loses_nothing() {
    const KEY: u64 = 5;
    // Miri: the same protocol at a size it runs in seconds.
    const N: u32 = if cfg!(miri) { 300 } else { 20_000 };
    let mut rt = Runtime::new().unwrap();
    let q = Queue::bounded(128, Overflow::Block);
    q.signal(&rt.poster(), KEY);
    let tx = q.clone();
    let producer = on_thread(move || {
        for i in 0..N {
            tx.push(i).unwrap();
        }
    });
    let mut events = Events::with_capacity(64);
    let mut next = 0;
    let mut completions = 0;
    let start = std::time::Instant::now();
    while next < N {
        assert!(
            start.elapsed() < GUARD,
            "the loop was left asleep at item {next}"
        );
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for e in &events {
            assert_eq!(*e, Event::Completion { key: KEY, data: 0 });
            completions += 1;
            while let Some(i) = q.try_pop() {
                assert_eq!(i, next);
                next += 1;
            }
        }
    }
    guarded(&producer);
    assert!(completions <= N as usize);
}

#[test]
fn dropping_the_last_handle_drops_the_items() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let q = Queue::bounded(8, Overflow::Reject);
    for _ in 0..5 {
        q.push(Counted(drops.clone())).unwrap();
    }
    let other = q.clone();
    drop(q);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(other);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

#[test]
fn push_error_debug_does_not_need_t_debug() {
    struct Opaque;
    let q = Queue::bounded(1, Overflow::Reject);
    q.push(Opaque).unwrap();
    let err = q.push(Opaque).unwrap_err();
    assert_eq!(format!("{err:?}"), "Full(..)");
    assert_eq!(err.to_string(), "the queue is full");
}

// ---- stress ---------------------------------------------------------------

#[test]
fn stress_4_producers_2_consumers_every_item_exactly_once() {
    const PRODUCERS: u64 = 4;
    const EACH: u64 = 50_000;
    let q = Queue::bounded(64, Overflow::Block);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = q.clone();
            on_thread(move || {
                for i in 0..EACH {
                    tx.push(p * EACH + i).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let rx = q.clone();
            on_thread(move || {
                let mut got = Vec::new();
                let mut last = [None::<u64>; PRODUCERS as usize];
                while let Ok(v) = rx.pop() {
                    let p = (v / EACH) as usize;
                    assert!(last[p] < Some(v), "producer {p} out of order");
                    last[p] = Some(v);
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for p in &producers {
        guarded(p);
    }
    q.close();
    let mut all: Vec<u64> = consumers.iter().flat_map(guarded).collect();
    all.sort_unstable();
    assert_eq!(all.len() as u64, PRODUCERS * EACH);
    assert!(
        all.iter().copied().eq(0..PRODUCERS * EACH),
        "lost or duplicated"
    );
    let s = q.stats();
    assert_eq!((s.pushed, s.popped), (PRODUCERS * EACH, PRODUCERS * EACH));
}

// ---- state machine --------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Push(u8),
    TryPush(u8),
    ForcePush(u8),
    TryPop,
    PopTimeout,
    Clear,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Push),
        2 => any::<u8>().prop_map(Op::TryPush),
        1 => any::<u8>().prop_map(Op::ForcePush),
        4 => Just(Op::TryPop),
        1 => Just(Op::PopTimeout),
        1 => Just(Op::Clear),
        1 => Just(Op::Close),
    ]
}

#[derive(Default)]
struct Model {
    items: VecDeque<u8>,
    capacity: usize,
    closed: bool,
    high_water: usize,
    pushed: u64,
    popped: u64,
    dropped: u64,
    rejected: u64,
}

impl Model {
    fn accept(&mut self, v: u8) {
        self.items.push_back(v);
        self.pushed += 1;
        self.high_water = self.high_water.max(self.items.len());
    }
}

proptest! {
    #[test]
    fn queue_matches_a_vecdeque_model(
        capacity in 1usize..6,
        drop_oldest in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let policy = if drop_oldest { Overflow::DropOldest } else { Overflow::Reject };
        let q = Queue::bounded(capacity, policy);
        let mut m = Model { capacity, ..Model::default() };
        for op in ops {
            match op {
                Op::Push(v) | Op::TryPush(v) => {
                    let r = if matches!(op, Op::Push(_)) { q.push(v) } else { q.try_push(v) };
                    let full = m.items.len() == m.capacity;
                    if m.closed {
                        prop_assert!(matches!(r, Err(PushError::Closed(x)) if x == v));
                    } else if !full {
                        prop_assert!(r.is_ok());
                        m.accept(v);
                    } else if matches!(op, Op::Push(_)) && drop_oldest {
                        prop_assert!(r.is_ok());
                        m.items.pop_front();
                        m.dropped += 1;
                        m.accept(v);
                    } else {
                        prop_assert!(matches!(r, Err(PushError::Full(x)) if x == v));
                        m.rejected += 1;
                    }
                }
                Op::ForcePush(v) => {
                    let r = q.force_push(v);
                    if m.closed {
                        prop_assert!(matches!(r, Err(PushError::Closed(x)) if x == v));
                    } else {
                        let displaced = if m.items.len() == m.capacity {
                            m.dropped += 1;
                            m.items.pop_front()
                        } else {
                            None
                        };
                        prop_assert_eq!(r.unwrap(), displaced);
                        m.accept(v);
                    }
                }
                Op::TryPop => {
                    let want = m.items.pop_front();
                    m.popped += u64::from(want.is_some());
                    prop_assert_eq!(q.try_pop(), want);
                }
                Op::PopTimeout => {
                    let got = q.pop_timeout(Duration::ZERO);
                    match m.items.pop_front() {
                        Some(v) => { m.popped += 1; prop_assert_eq!(got, Ok(v)); }
                        None if m.closed => prop_assert_eq!(got, Err(PopError::Closed)),
                        None => prop_assert_eq!(got, Err(PopError::Timeout)),
                    }
                }
                Op::Clear => {
                    let n = m.items.len();
                    m.items.clear();
                    m.dropped += n as u64;
                    prop_assert_eq!(q.clear(), n);
                }
                Op::Close => {
                    m.closed = true;
                    q.close();
                }
            }
            let s = q.stats();
            prop_assert_eq!(q.len(), m.items.len());
            prop_assert_eq!(q.is_empty(), m.items.is_empty());
            prop_assert_eq!(q.is_full(), m.items.len() == m.capacity);
            prop_assert_eq!(q.is_closed(), m.closed);
            prop_assert_eq!(
                (s.capacity, s.len, s.high_water, s.pushed, s.popped, s.dropped, s.rejected),
                (m.capacity, m.items.len(), m.high_water, m.pushed, m.popped, m.dropped, m.rejected)
            );
        }
    }
}
