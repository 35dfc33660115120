//! Loads shaped like a server's: floods of small posted writes next to
//! completions, timers and readiness.

use std::time::{Duration, Instant};

use uniloop::{Backend, Event, Events, Interest, OpId, Runtime, Token};

use crate::support::*;
use crate::util::*;

/// A flood of finished writes — many piled up before the call, and more
/// posted every turn — holds back no other kind: a completion, a due
/// timer, a wake and a readiness event pending at a call are each in the
/// batch that call returns. Every write still completes once, in order,
/// with its byte, and completions keep their order.
pub(crate) fn a_flood_of_finished_writes_holds_nothing_back(b: Backend) {
    let piled: usize = 100_000;
    const PER_TURN: usize = 1000;
    const TURNS: usize = 20;
    const FLOOD: Token = Token(1);
    const READY: Token = Token(2);
    let total = piled + PER_TURN * TURNS;
    let mut rt = Runtime::builder()
        .backend(b)
        .write_limit(usize::MAX)
        .build()
        .unwrap();
    let (client, server) = tcp_pair();
    let peer = reader(server, total);
    rt.register(&client, FLOOD, Interest::READABLE).unwrap();
    // A source that stays readable (level, nobody reads it).
    let (ready_client, ready_server) = tcp_pair();
    rt.register(&ready_server, READY, Interest::READABLE)
        .unwrap();
    send(&ready_client, b"x");
    let mut events = Events::with_capacity(256);
    wait_until(&mut rt, &mut events, |e| {
        matches!(e, Event::Io { token: READY, .. })
    });

    let poster = rt.poster();
    let timer = rt.add_timer(5, Duration::ZERO, None);
    let mut ops = std::collections::VecDeque::new();
    let mut posted = 0;
    let mut post = |rt: &mut Runtime, ops: &mut std::collections::VecDeque<OpId>, n: usize| {
        for _ in 0..n {
            let op = rt.post_write(&client, vec![pattern(9, posted)]).unwrap();
            ops.push_back(op);
            posted += 1;
        }
    };
    post(&mut rt, &mut ops, piled);
    // The timer is due by now (posting took well over its millisecond).
    let mut next_completion = 0u64;
    poster.post(7, 0).unwrap();
    poster.wake().unwrap();

    let mut completions = 0u64;
    let mut finished = 0;
    let start = Instant::now();
    for turn in 0.. {
        assert!(
            start.elapsed() < GUARD * 3,
            "{finished} of {total} finished"
        );
        rt.wait(&mut events, Some(GUARD)).unwrap();
        let got = listed(&events);
        let mut kinds = (false, false, false, false);
        for e in &got {
            match *e {
                Event::IoDone {
                    token,
                    op,
                    bytes,
                    error,
                    ..
                } => {
                    assert_eq!(token, FLOOD);
                    assert_eq!(Some(op), ops.pop_front(), "out of order");
                    assert_eq!((bytes, error), (1, None));
                    let f = rt.take_io(op).expect("a delivered write");
                    assert_eq!(f.buf, [pattern(9, finished)]);
                    finished += 1;
                }
                Event::Completion { key: 7, data } => {
                    assert_eq!(data, completions, "completions out of order");
                    completions += 1;
                    kinds.0 = true;
                }
                Event::Timer { key: 5, id } => {
                    assert_eq!(id, timer);
                    kinds.1 = true;
                }
                Event::Wake => kinds.2 = true,
                Event::Io { token: READY, .. } => kinds.3 = true,
                // The peer closes once it has read everything.
                Event::Io { token: FLOOD, .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let all = (true, turn == 0, turn == 0, true);
        assert_eq!(
            kinds,
            all,
            "turn {turn}: (completion, timer, wake, readiness) in a batch of {}",
            got.len()
        );
        if finished == total {
            break;
        }
        // More writes, and one more completion, every turn.
        if turn < TURNS {
            post(&mut rt, &mut ops, PER_TURN);
        }
        next_completion += 1;
        poster.post(7, next_completion).unwrap();
    }
    assert_eq!(completions, next_completion + 1, "a completion was lost");
    let want: Vec<u8> = (0..total).map(|i| pattern(9, i)).collect();
    assert!(peer.join().unwrap() == want, "the bytes arrived changed");
}
