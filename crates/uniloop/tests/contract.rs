//! The runtime contract (docs/ARCHITECTURE.md, "The runtime contract"),
//! one suite run unchanged against every backend this platform has: each
//! `fn(Backend)` below becomes one `#[test]` per backend module at the
//! bottom.

mod util;

use std::collections::{BTreeSet, HashMap};
use std::io::ErrorKind;
use std::net::{Shutdown, UdpSocket};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use uniloop::{Backend, Event, Events, Interest, PostError, Runtime, Token, Trigger};
use util::*;

fn rt(b: Backend) -> Runtime {
    let rt = Runtime::builder().backend(b).build().unwrap();
    assert_eq!(rt.backend(), b);
    rt
}

fn completions(events: &Events) -> Vec<(u64, u64)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Completion { key, data } => Some((key, data)),
            _ => None,
        })
        .collect()
}

fn io_tokens(events: &[Event]) -> Vec<Token> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Io { token, .. } => Some(token),
            _ => None,
        })
        .collect()
}

// ---- completions -------------------------------------------------------

/// Reference defect 1: posts before one wait were summed into one event.
fn five_posts_same_key_five_events(b: Backend) {
    let mut rt = rt(b);
    let p = rt.poster();
    for data in 1..=5 {
        p.post(7, data).unwrap();
    }
    let mut events = Events::with_capacity(16);
    rt.wait(&mut events, Some(GUARD)).unwrap();
    assert_eq!(
        completions(&events),
        vec![(7, 1), (7, 2), (7, 3), (7, 4), (7, 5)]
    );
}

/// Reference defect 1 again: key and data were limited to 32 bits.
fn full_64_bit_key_and_data(b: Backend) {
    let mut rt = rt(b);
    let p = rt.poster();
    let pairs = [
        (u64::MAX, u64::MAX - 1),
        (0, 0),
        (1 << 63, 1 << 32),
        (0xdead_beef_0000_0001, u64::MAX),
    ];
    for (k, d) in pairs {
        p.post(k, d).unwrap();
    }
    let mut events = Events::with_capacity(16);
    rt.wait(&mut events, Some(GUARD)).unwrap();
    assert_eq!(completions(&events), pairs.to_vec());
}

/// Reference defects 3 and 4: completions beyond max_events were discarded.
fn completions_beyond_capacity_carry_over(b: Backend) {
    let mut rt = rt(b);
    let p = rt.poster();
    for i in 0..100 {
        p.post(1, i).unwrap();
    }
    let mut events = Events::with_capacity(1);
    let mut got = Vec::new();
    for _ in 0..100 {
        assert_eq!(rt.wait(&mut events, Some(GUARD)).unwrap(), 1);
        got.extend(completions(&events));
    }
    assert_eq!(got, (0..100).map(|i| (1, i)).collect::<Vec<_>>());
    assert_eq!(rt.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
}

fn two_threads_500k_posts_exactly_once_in_order(b: Backend) {
    const PER_THREAD: u64 = 500_000;
    let mut rt = rt(b);
    let producers: Vec<_> = (0..2u64)
        .map(|t| {
            let p = rt.poster();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    p.post(t, i).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u64; 2];
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    while next.iter().sum::<u64>() < 2 * PER_THREAD {
        assert!(start.elapsed() < GUARD * 3, "stalled at {next:?}");
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for (k, d) in completions(&events) {
            assert_eq!(
                d, next[k as usize],
                "thread {k}: out of order or duplicated"
            );
            next[k as usize] += 1;
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(
        rt.wait(&mut events, Some(Duration::ZERO)).unwrap(),
        0,
        "nothing extra"
    );
}

fn post_wakes_a_blocked_wait(b: Backend) {
    let mut rt = rt(b);
    let p = rt.poster();
    let barrier = Arc::new(Barrier::new(2));
    let b2 = barrier.clone();
    let t = std::thread::spawn(move || {
        b2.wait();
        p.post(3, 4).unwrap();
    });
    barrier.wait();
    let mut events = Events::with_capacity(4);
    // No timeout: if the doorbell were lost this would hang (the test
    // harness's timeout catches it) instead of passing by luck.
    rt.wait(&mut events, None).unwrap();
    assert_eq!(completions(&events), vec![(3, 4)]);
    t.join().unwrap();
}

// ---- wake ---------------------------------------------------------------

fn wake_returns_blocked_wait(b: Backend) {
    let mut rt = rt(b);
    let p = rt.poster();
    let t = std::thread::spawn(move || p.wake().unwrap());
    let mut events = Events::with_capacity(4);
    rt.wait(&mut events, None).unwrap();
    assert_eq!(
        events.iter().copied().collect::<Vec<_>>(),
        vec![Event::Wake]
    );
    t.join().unwrap();
}

fn many_wakes_give_one_event(b: Backend) {
    let mut rt = rt(b);
    let p = rt.poster();
    for _ in 0..100 {
        p.wake().unwrap();
    }
    let mut events = Events::with_capacity(16);
    assert_eq!(poll_now(&mut rt, &mut events), vec![Event::Wake]);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

fn wake_never_disturbs_completions(b: Backend) {
    let mut rt = rt(b);
    let p = rt.poster();
    p.post(1, 10).unwrap();
    p.wake().unwrap();
    p.post(1, 11).unwrap();
    p.wake().unwrap();
    let mut events = Events::with_capacity(16);
    let got = poll_now(&mut rt, &mut events);
    assert_eq!(got.iter().filter(|e| **e == Event::Wake).count(), 1);
    assert_eq!(completions(&events), vec![(1, 10), (1, 11)]);
}

// ---- drop ---------------------------------------------------------------

fn post_after_drop_is_an_error(b: Backend) {
    let rt = rt(b);
    let p = rt.poster();
    assert!(!p.is_closed());
    drop(rt);
    assert!(p.is_closed());
    assert_eq!(p.post(1, 2), Err(PostError::Closed { key: 1, data: 2 }));
    assert_eq!(p.wake(), Err(uniloop::Closed));
}

fn drop_while_threads_post(b: Backend) {
    let mut rt = rt(b);
    let barrier = Arc::new(Barrier::new(5));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let p = rt.poster();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut n = 0u64;
                // Bounded: the runtime is dropped long before this ends.
                while n < 50_000_000 {
                    if p.post(t, n).is_err() {
                        return n;
                    }
                    n += 1;
                }
                panic!("posts kept succeeding after the runtime was dropped");
            })
        })
        .collect();
    barrier.wait();
    let mut events = Events::with_capacity(64);
    wait_until(&mut rt, &mut events, |e| {
        matches!(e, Event::Completion { .. })
    });
    drop(rt);
    for t in threads {
        t.join().unwrap();
    }
}

// ---- registration -------------------------------------------------------

fn registration_errors(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    assert_eq!(
        rt.register(&server, Token(2), Interest::READABLE)
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        rt.reregister(&client, Token(2), Interest::READABLE)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        rt.deregister(&client).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    rt.deregister(&server).unwrap();
    assert_eq!(
        rt.deregister(&server).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Registering again after deregistering works.
    rt.register(&server, Token(3), Interest::READABLE).unwrap();
    assert_eq!(rt.registered(), 1);
}

fn unsupported_trigger_is_refused(b: Backend) {
    let mut rt = rt(b);
    let (_client, server) = tcp_pair();
    for trigger in [Trigger::Level, Trigger::Edge, Trigger::Oneshot] {
        let r = rt.register_with(&server, Token(1), Interest::READABLE, trigger);
        if b.supports(trigger) {
            r.unwrap();
            rt.deregister(&server).unwrap();
        } else {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::Unsupported, "{trigger:?}");
            assert_eq!(
                rt.registered(),
                0,
                "a refused registration leaves nothing behind"
            );
        }
    }
}

fn events_capacity_zero_is_invalid(b: Backend) {
    let mut rt = rt(b);
    let mut events = Events::with_capacity(0);
    let err = rt.wait(&mut events, Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// Reference defect 2: the event's fd held the low bits of a pointer.
fn tokens_are_returned_exactly(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(u64::MAX), Interest::READABLE)
        .unwrap();
    send(&client, b"x");
    let mut events = Events::with_capacity(4);
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(io_tokens(&seen), vec![Token(u64::MAX)]);

    rt.reregister(&server, Token(0xFEED_FACE_CAFE_BEEF), Interest::READABLE)
        .unwrap();
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(io_tokens(&seen), vec![Token(0xFEED_FACE_CAFE_BEEF)]);
}

fn deregistered_source_reports_nothing(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    send(&client, b"x");
    rt.deregister(&server).unwrap();
    let mut events = Events::with_capacity(4);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

// ---- readiness ----------------------------------------------------------

fn writable_when_connected(b: Backend) {
    let mut rt = rt(b);
    let (client, _server) = tcp_pair();
    rt.register(&client, Token(5), Interest::WRITABLE).unwrap();
    let mut events = Events::with_capacity(4);
    wait_until(
        &mut rt,
        &mut events,
        |e| matches!(e, Event::Io { token: Token(5), ready } if ready.is_writable()),
    );
}

fn level_re_reports_until_drained(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    send(&client, b"hello");
    let mut events = Events::with_capacity(4);
    wait_until(
        &mut rt,
        &mut events,
        |e| matches!(e, Event::Io { ready, .. } if ready.is_readable()),
    );
    // Not drained: reported again, and again.
    for _ in 0..3 {
        assert_eq!(io_tokens(&poll_now(&mut rt, &mut events)), vec![Token(1)]);
    }
    assert_eq!(drain(&server), b"hello");
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

fn edge_reports_once_per_edge(b: Backend) {
    if !b.supports(Trigger::Edge) {
        return; // `unsupported_trigger_is_refused` covers this backend.
    }
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register_with(&server, Token(1), Interest::READABLE, Trigger::Edge)
        .unwrap();
    send(&client, b"a");
    let mut events = Events::with_capacity(4);
    wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    // Not drained, but no new edge: nothing.
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    send(&client, b"b");
    wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(drain(&server), b"ab");
}

fn oneshot_reports_once_until_reregistered(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register_with(&server, Token(1), Interest::READABLE, Trigger::Oneshot)
        .unwrap();
    send(&client, b"a");
    let mut events = Events::with_capacity(4);
    wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    send(&client, b"b");
    assert_eq!(
        poll_now(&mut rt, &mut events),
        vec![],
        "disarmed after one report"
    );
    rt.reregister_with(&server, Token(2), Interest::READABLE, Trigger::Oneshot)
        .unwrap();
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(io_tokens(&seen), vec![Token(2)]);
}

/// `reregister` to the token and interest already set: on a oneshot
/// registration still armed it changes nothing (it reports once, later);
/// on a spent one it re-arms.
fn oneshot_reregister_to_the_same_interest(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register_with(&server, Token(1), Interest::READABLE, Trigger::Oneshot)
        .unwrap();
    rt.reregister(&server, Token(1), Interest::READABLE)
        .unwrap();
    send(&client, b"a");
    let mut events = Events::with_capacity(4);
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(io_tokens(&seen), vec![Token(1)]);
    assert_eq!(
        poll_now(&mut rt, &mut events),
        vec![],
        "disarmed after one report"
    );
    // Spent: the same call now re-arms, and the undrained byte reports.
    rt.reregister(&server, Token(1), Interest::READABLE)
        .unwrap();
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(io_tokens(&seen), vec![Token(1)]);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    assert_eq!(drain(&server), b"a");
}

/// `reregister` keeps an edge or oneshot registration what it is: turned
/// into a level one, a server dropping WRITABLE would get a readiness
/// report on every wait.
fn reregister_keeps_the_trigger(b: Backend) {
    for trigger in [Trigger::Edge, Trigger::Oneshot] {
        if !b.supports(trigger) {
            continue;
        }
        let mut rt = rt(b);
        let (client, server) = tcp_pair();
        rt.register_with(
            &server,
            Token(1),
            Interest::READABLE | Interest::WRITABLE,
            trigger,
        )
        .unwrap();
        // Drop WRITABLE, as a server does once its output is flushed.
        rt.reregister(&server, Token(2), Interest::READABLE)
            .unwrap();
        send(&client, b"x");
        let mut events = Events::with_capacity(4);
        let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
        assert_eq!(io_tokens(&seen), vec![Token(2)], "{trigger:?}");
        // Not drained and nothing new: still the caller's trigger, so no
        // report (a level registration would report on every wait).
        for _ in 0..3 {
            assert_eq!(poll_now(&mut rt, &mut events), vec![], "{trigger:?}");
        }
        assert_eq!(drain(&server), b"x");
    }
}

fn peer_close_is_read_closed(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut events = Events::with_capacity(4);
    let seen = wait_until(
        &mut rt,
        &mut events,
        |e| matches!(e, Event::Io { ready, .. } if ready.is_read_closed()),
    );
    let Some(Event::Io { ready, .. }) = seen.last() else {
        unreachable!()
    };
    assert!(ready.is_readable(), "EOF is readable: {ready:?}");
    assert!(!ready.is_error(), "an orderly close is no error: {ready:?}");
}

fn reset_is_error_or_closed(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    let client = socket2::Socket::from(client);
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client); // RST
    let mut events = Events::with_capacity(4);
    wait_until(
        &mut rt,
        &mut events,
        |e| matches!(e, Event::Io { ready, .. } if ready.is_error() || ready.is_read_closed() || ready.is_write_closed()),
    );
}

fn capacity_one_with_100_ready_sources_loses_none(b: Backend) {
    let mut rt = rt(b);
    let pairs: Vec<_> = (0..100).map(|_| tcp_pair()).collect();
    for (i, (client, server)) in pairs.iter().enumerate() {
        rt.register(server, Token(i as u64), Interest::READABLE)
            .unwrap();
        send(client, b"x");
    }
    let mut events = Events::with_capacity(1);
    let mut seen = BTreeSet::new();
    let start = Instant::now();
    while seen.len() < 100 {
        assert!(
            start.elapsed() < GUARD,
            "only {} of 100 sources reported",
            seen.len()
        );
        rt.wait(&mut events, Some(GUARD)).unwrap();
        assert!(events.len() <= 1);
        seen.extend(
            io_tokens(&events.iter().copied().collect::<Vec<_>>())
                .into_iter()
                .map(|t| t.0),
        );
    }
    assert_eq!(seen, (0..100).collect());
}

fn capacity_one_does_not_starve_io(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    send(&client, b"x");
    wait_until(&mut rt, &mut Events::with_capacity(4), |e| {
        matches!(e, Event::Io { .. })
    });
    let p = rt.poster();
    for i in 0..1000 {
        p.post(0, i).unwrap();
    }
    let mut events = Events::with_capacity(1);
    let mut kinds = Vec::new();
    for _ in 0..4 {
        rt.wait(&mut events, Some(GUARD)).unwrap();
        kinds.extend(events.iter().map(|e| matches!(e, Event::Io { .. })));
    }
    assert!(
        kinds.contains(&true),
        "socket starved by completions: {kinds:?}"
    );
    assert!(
        kinds.contains(&false),
        "completions starved by socket: {kinds:?}"
    );
}

/// The fd-heavy tests take turns: two copies at once (one per backend,
/// on the harness's parallel threads) would need 20,000 descriptors, the
/// usual hard limit.
static FD_HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ten_thousand_registered_one_active(b: Backend) {
    const N: usize = 10_000;
    let _turn = FD_HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let limit = raise_fd_limit(N as u64 + 512);
    let n = N.min(limit as usize - 256);
    assert!(n >= 1000, "fd limit too low ({limit}) for this test");
    let mut rt = rt(b);
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    for (i, s) in sockets.iter().enumerate() {
        rt.register(s, Token(i as u64), Interest::READABLE).unwrap();
    }
    assert_eq!(rt.registered(), n);
    let active = n / 2 + 17;
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(b"ping", sockets[active].local_addr().unwrap())
        .unwrap();
    let mut events = Events::with_capacity(256);
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(io_tokens(&seen), vec![Token(active as u64)]);
    assert_eq!(
        poll_now(&mut rt, &mut events).len(),
        1,
        "still level-ready, and still the only one"
    );
}

// ---- timers -------------------------------------------------------------

fn timer_one_shot_fires_once(b: Backend) {
    let mut rt = rt(b);
    let start = Instant::now();
    let id = rt.add_timer(11, Duration::from_millis(20), None);
    let mut events = Events::with_capacity(4);
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Timer { .. }));
    assert!(start.elapsed() >= Duration::from_millis(20), "fired early");
    assert_eq!(seen, vec![Event::Timer { key: 11, id }]);
    assert_eq!(rt.timers(), 0);
    assert!(!rt.cancel_timer(id), "a fired one-shot is gone");
}

fn timer_periodic_keeps_its_id(b: Backend) {
    let mut rt = rt(b);
    let id = rt.add_timer(3, Duration::from_millis(1), Some(Duration::from_millis(2)));
    let mut events = Events::with_capacity(4);
    for _ in 0..5 {
        let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Timer { .. }));
        assert!(seen.contains(&Event::Timer { key: 3, id }));
    }
    assert!(rt.cancel_timer(id));
    assert_eq!(rt.timers(), 0);
}

fn timer_cancel_prevents_firing(b: Backend) {
    let mut rt = rt(b);
    let cancelled = rt.add_timer(1, Duration::from_millis(5), None);
    let later = rt.add_timer(2, Duration::from_millis(30), None);
    assert!(rt.cancel_timer(cancelled));
    let mut events = Events::with_capacity(4);
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Timer { .. }));
    assert_eq!(seen, vec![Event::Timer { key: 2, id: later }]);
}

fn timers_same_deadline_fire_in_insertion_order(b: Backend) {
    let mut rt = rt(b);
    let ids: Vec<_> = (0..50)
        .map(|k| rt.add_timer(k, Duration::ZERO, None))
        .collect();
    let mut events = Events::with_capacity(7); // also checks carry-over
    let mut fired = Vec::new();
    while fired.len() < 50 {
        rt.wait(&mut events, Some(GUARD)).unwrap();
        assert!(events.len() <= 7);
        fired.extend(events.iter().filter_map(|e| match *e {
            Event::Timer { key, id } => Some((key, id)),
            _ => None,
        }));
    }
    assert_eq!(fired, (0..50).zip(ids).collect::<Vec<_>>());
}

fn periodic_timer_that_falls_behind_does_not_burst(b: Backend) {
    let mut rt = rt(b);
    let period = Duration::from_millis(2);
    rt.add_timer(1, period, Some(period));
    // The loop is busy (not waiting) for 20 periods.
    let busy = Instant::now();
    while busy.elapsed() < period * 20 {
        std::hint::spin_loop();
    }
    let mut events = Events::with_capacity(64);
    let n = rt.wait(&mut events, Some(Duration::ZERO)).unwrap();
    assert_eq!(n, 1, "missed periods fired as a burst: {:?}", events);
}

fn a_million_pending_timers(b: Backend) {
    let mut rt = rt(b);
    let far: Vec<_> = (0..1_000_000u64)
        .map(|k| rt.add_timer(k, Duration::from_secs(3600 + k % 1000), None))
        .collect();
    let near = rt.add_timer(u64::MAX, Duration::from_millis(1), None);
    assert_eq!(rt.timers(), 1_000_001);
    let mut events = Events::with_capacity(16);
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Timer { .. }));
    assert_eq!(
        seen,
        vec![Event::Timer {
            key: u64::MAX,
            id: near
        }]
    );
    for id in far {
        assert!(rt.cancel_timer(id));
    }
    assert_eq!(rt.timers(), 0);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// Spins (the loop is busy, not waiting) until a zero-delay timer added
/// before the call is certainly due: timers round up to whole milliseconds.
fn let_zero_delay_timers_fall_due() {
    let busy = Instant::now();
    while busy.elapsed() < Duration::from_millis(2) {
        std::hint::spin_loop();
    }
}

/// Handling one event of a batch may cancel a timer
/// whose event comes later in the same batch, and add timers. The stale
/// event stays (the caller skips it by id), and no timer added later ever
/// gets its id.
fn timer_event_names_only_its_own_timer(b: Backend) {
    let mut rt = rt(b);
    let once = rt.add_timer(1, Duration::ZERO, None);
    let periodic = rt.add_timer(2, Duration::ZERO, Some(Duration::from_secs(3600)));
    let_zero_delay_timers_fall_due();
    let mut events = Events::with_capacity(8);
    rt.wait(&mut events, Some(GUARD)).unwrap();
    assert_eq!(
        events.iter().copied().collect::<Vec<_>>(),
        vec![
            Event::Timer { key: 1, id: once },
            Event::Timer {
                key: 2,
                id: periodic
            },
        ]
    );
    // Handling the first event: cancel the second one's timer, add more.
    assert!(rt.cancel_timer(periodic));
    assert!(!rt.cancel_timer(once), "a fired one-shot is gone");
    for k in 0..1000 {
        let id = rt.add_timer(k, Duration::from_secs(60), None);
        assert!(id != once && id != periodic, "{id:?} reused");
        if k % 2 == 0 {
            assert!(rt.cancel_timer(id));
        }
    }
    assert!(!rt.cancel_timer(periodic), "its id names no timer now");
    assert_eq!(rt.timers(), 500);
}

/// With `max_pending_completions(n)`, the n+1st post
/// while the loop is behind is refused with `Full` and its values handed
/// back; every accepted post is delivered; room comes back as the loop
/// takes completions.
fn pending_completions_can_be_bounded(b: Backend) {
    let mut rt = Runtime::builder()
        .backend(b)
        .max_pending_completions(100)
        .build()
        .unwrap();
    let poster = rt.poster();
    for i in 0..100 {
        poster.post(1, i).unwrap();
    }
    assert_eq!(poster.post(2, 7), Err(PostError::Full { key: 2, data: 7 }));
    let other = poster.clone();
    let refused = std::thread::spawn(move || other.post(3, 8)).join().unwrap();
    assert_eq!(refused.unwrap_err().into_inner(), (3, 8));

    let mut events = Events::with_capacity(10);
    rt.wait(&mut events, Some(GUARD)).unwrap();
    let mut got: Vec<u64> = events
        .iter()
        .map(|e| match e {
            Event::Completion { key: 1, data } => *data,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got.len(), 10);
    for i in 100..110 {
        poster.post(1, i).unwrap();
    }
    assert!(poster.post(1, 110).is_err(), "the bound holds again");
    while got.len() < 110 {
        rt.wait(&mut events, Some(GUARD)).unwrap();
        got.extend(events.iter().map(|e| match e {
            Event::Completion { key: 1, data } => *data,
            other => panic!("{other:?}"),
        }));
    }
    assert_eq!(got, (0..110).collect::<Vec<u64>>(), "none lost, in order");
    drop(rt);
    assert!(poster.post(1, 0).unwrap_err().is_closed());
}

/// A timer id belongs to the runtime that made it.
/// Another runtime with a timer in the same internal place neither cancels
/// nor moves it when handed the foreign id, and its own timer still fires.
fn timer_ids_are_tied_to_their_runtime(b: Backend) {
    let mut a = rt(b);
    let mut other = rt(b);
    let foreign = a.add_timer(1, Duration::from_secs(3600), None);
    let own = other.add_timer(2, Duration::ZERO, None);
    assert_ne!(foreign, own);
    assert!(
        !other.cancel_timer(foreign),
        "a foreign id cancelled a timer"
    );
    assert!(!other.reset_timer(foreign, Duration::from_secs(3600)));
    assert_eq!(other.timers(), 1);
    let seen = wait_until(&mut other, &mut Events::with_capacity(4), |e| {
        matches!(e, Event::Timer { .. })
    });
    assert!(seen.contains(&Event::Timer { key: 2, id: own }));
    assert!(a.cancel_timer(foreign), "its own runtime still knows it");
}

/// `reset_timer` moves a pending timer's deadline and keeps its id. Checked
/// by order, not by the clock: after the reset the first timer is due after
/// the second, so the second fires first, whatever the scheduler does.
fn timer_reset_postpones_and_keeps_its_id(b: Backend) {
    let mut rt = rt(b);
    let first = rt.add_timer(1, Duration::from_millis(5), None);
    let second = rt.add_timer(2, Duration::from_millis(30), None);
    assert!(rt.reset_timer(first, Duration::from_millis(60)));
    let mut events = Events::with_capacity(8);
    let mut fired = Vec::new();
    while fired.len() < 2 {
        let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Timer { .. }));
        fired.extend(
            seen.into_iter()
                .filter(|e| matches!(e, Event::Timer { .. })),
        );
    }
    assert_eq!(
        fired,
        vec![
            Event::Timer { key: 2, id: second },
            Event::Timer { key: 1, id: first },
        ]
    );
    assert!(!rt.reset_timer(first, Duration::ZERO), "a fired one-shot");
    assert_eq!(rt.timers(), 0);

    // A periodic timer keeps firing under its id after a reset.
    let periodic = rt.add_timer(3, Duration::from_secs(3600), Some(Duration::from_millis(2)));
    assert!(rt.reset_timer(periodic, Duration::from_millis(1)));
    for _ in 0..3 {
        let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Timer { .. }));
        assert!(seen.contains(&Event::Timer {
            key: 3,
            id: periodic
        }));
    }
    assert!(rt.cancel_timer(periodic));
    assert!(
        !rt.reset_timer(periodic, Duration::ZERO),
        "a cancelled timer"
    );
}

/// The order `wait` documents for one batch: what was pending first —
/// wake, timers, finished posted I/O, completions, in turns — then
/// readiness.
fn batch_order_is_as_documented(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(9), Interest::READABLE).unwrap();
    rt.register(&client, Token(8), Interest::READABLE).unwrap();
    send(&client, b"x");
    let mut events = Events::with_capacity(16);
    wait_until(&mut rt, &mut events, |e| {
        matches!(
            e,
            Event::Io {
                token: Token(9),
                ..
            }
        )
    });
    // The server stays readable (level); now one of every other kind.
    let mut firsts = BTreeSet::new();
    for _ in 0..8 {
        let poster = rt.poster();
        poster.post(1, 1).unwrap();
        let timer = rt.add_timer(5, Duration::ZERO, None);
        // SAFETY: `client` lives to the end of the test, after the write.
        let write = unsafe { rt.post_write(&client, b"y".to_vec()) }.unwrap();
        poster.wake().unwrap();
        let_zero_delay_timers_fall_due();
        rt.wait(&mut events, Some(GUARD)).unwrap();
        let got: Vec<Event> = events.iter().copied().collect();
        assert_eq!(got.len(), 5, "{got:?}");
        let mut run: Vec<Event> = got[..4].to_vec();
        firsts.insert(
            format!("{:?}", run[0])
                .split(' ')
                .next()
                .unwrap()
                .to_owned(),
        );
        run.sort_by_key(|e| match e {
            Event::Wake => 0,
            Event::Timer { .. } => 1,
            Event::IoDone { .. } => 2,
            _ => 3,
        });
        assert!(
            matches!(
                run[..],
                [
                    Event::Wake,
                    Event::Timer { key: 5, id },
                    Event::IoDone { token: Token(8), op, bytes: 1, error: None, .. },
                    Event::Completion { key: 1, data: 1 },
                ] if id == timer && op == write
            ),
            "{got:?}"
        );
        assert!(
            matches!(
                got[4],
                Event::Io {
                    token: Token(9),
                    ..
                }
            ),
            "{got:?}"
        );
        assert!(rt.take_io(write).is_some());
        drain(&server);
    }
    // Which kind goes first rotates.
    assert_eq!(firsts.len(), 4, "{firsts:?}");
}

/// A flood of completions, refilled every turn, holds back neither a due
/// timer nor readiness: each is in the first batch, and the completions
/// keep their order.
fn a_flood_of_completions_holds_nothing_back(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(9), Interest::READABLE).unwrap();
    send(&client, b"x");
    let mut events = Events::with_capacity(64);
    wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    let p = rt.poster();
    let mut next = 0u64;
    let mut posted = 0u64;
    for turn in 0..50 {
        for _ in 0..1000 {
            p.post(1, posted).unwrap();
            posted += 1;
        }
        let timer = rt.add_timer(turn, Duration::ZERO, None);
        let_zero_delay_timers_fall_due();
        p.wake().unwrap();
        rt.wait(&mut events, Some(GUARD)).unwrap();
        let (mut io, mut timed, mut woken) = (false, false, false);
        for e in &events {
            match *e {
                Event::Completion { key: 1, data } => {
                    assert_eq!(data, next, "out of order");
                    next += 1;
                }
                Event::Timer { key, id } => {
                    assert_eq!((key, id), (turn, timer));
                    timed = true;
                }
                Event::Io {
                    token: Token(9), ..
                } => io = true,
                Event::Wake => woken = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            io && timed && woken,
            "turn {turn}: {:?}",
            events.iter().collect::<Vec<_>>()
        );
    }
    while next < posted {
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for (_, data) in completions(&events) {
            assert_eq!(data, next, "out of order");
            next += 1;
        }
    }
}

// ---- timeouts -----------------------------------------------------------

fn zero_timeout_polls(b: Backend) {
    let mut rt = rt(b);
    let mut events = Events::with_capacity(4);
    assert_eq!(rt.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
}

fn sub_millisecond_timeout_rounds_up(b: Backend) {
    let mut rt = rt(b);
    let mut events = Events::with_capacity(4);
    for us in [1, 100, 999] {
        let t = Duration::from_micros(us);
        let start = Instant::now();
        assert_eq!(rt.wait(&mut events, Some(t)).unwrap(), 0);
        assert!(
            start.elapsed() >= t,
            "returned after {:?} < {t:?}",
            start.elapsed()
        );
    }
}

fn timeout_expires_with_nothing(b: Backend) {
    let mut rt = rt(b);
    let mut events = Events::with_capacity(4);
    let start = Instant::now();
    assert_eq!(
        rt.wait(&mut events, Some(Duration::from_millis(30)))
            .unwrap(),
        0
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
}

// ---- threads --------------------------------------------------------------

fn runtime_moves_to_another_thread(b: Backend) {
    let rt = rt(b);
    let p = rt.poster();
    p.post(1, 2).unwrap();
    let got = std::thread::spawn(move || {
        let mut rt = rt;
        let mut events = Events::with_capacity(4);
        rt.wait(&mut events, Some(GUARD)).unwrap();
        completions(&events)
    })
    .join()
    .unwrap();
    assert_eq!(got, vec![(1, 2)]);
}

fn mixed_sources_in_one_wait(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(9), Interest::READABLE).unwrap();
    send(&client, b"x");
    let p = rt.poster();
    p.post(1, 1).unwrap();
    p.wake().unwrap();
    let id = rt.add_timer(5, Duration::ZERO, None);
    let mut events = Events::with_capacity(16);
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    let start = Instant::now();
    while kinds.len() < 4 {
        assert!(start.elapsed() < GUARD, "{kinds:?}");
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for e in &events {
            let k = match *e {
                Event::Io { token, .. } => {
                    assert_eq!(token, Token(9));
                    "io"
                }
                Event::Completion { key, data } => {
                    assert_eq!((key, data), (1, 1));
                    "completion"
                }
                Event::Timer { key, id: got } => {
                    assert_eq!((key, got), (5, id));
                    "timer"
                }
                Event::Wake => "wake",
                other => panic!("unexpected {other:?}"),
            };
            *kinds.entry(k).or_default() += 1;
        }
    }
    assert_eq!(kinds["completion"], 1);
    assert_eq!(kinds["timer"], 1);
    assert_eq!(kinds["wake"], 1);
}

every_backend! {
    five_posts_same_key_five_events
    full_64_bit_key_and_data
    completions_beyond_capacity_carry_over
    two_threads_500k_posts_exactly_once_in_order
    post_wakes_a_blocked_wait
    wake_returns_blocked_wait
    many_wakes_give_one_event
    wake_never_disturbs_completions
    post_after_drop_is_an_error
    drop_while_threads_post
    registration_errors
    unsupported_trigger_is_refused
    events_capacity_zero_is_invalid
    tokens_are_returned_exactly
    deregistered_source_reports_nothing
    writable_when_connected
    level_re_reports_until_drained
    edge_reports_once_per_edge
    oneshot_reports_once_until_reregistered
    oneshot_reregister_to_the_same_interest
    reregister_keeps_the_trigger
    peer_close_is_read_closed
    reset_is_error_or_closed
    capacity_one_with_100_ready_sources_loses_none
    capacity_one_does_not_starve_io
    ten_thousand_registered_one_active
    timer_one_shot_fires_once
    timer_periodic_keeps_its_id
    timer_cancel_prevents_firing
    timers_same_deadline_fire_in_insertion_order
    periodic_timer_that_falls_behind_does_not_burst
    a_million_pending_timers
    timer_event_names_only_its_own_timer
    timer_reset_postpones_and_keeps_its_id
    timer_ids_are_tied_to_their_runtime
    pending_completions_can_be_bounded
    batch_order_is_as_documented
    a_flood_of_completions_holds_nothing_back
    zero_timeout_polls
    sub_millisecond_timeout_rounds_up
    timeout_expires_with_nothing
    runtime_moves_to_another_thread
    mixed_sources_in_one_wait
}
