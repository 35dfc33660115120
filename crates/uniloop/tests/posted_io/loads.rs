//! Loads shaped like a server's: floods of small posted writes next to
//! completions, timers and readiness.

use std::io::Write;
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
            let op = rt
                .post_write_kept(&client, vec![pattern(9, posted)])
                .unwrap();
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

/// Posts `sizes.len()` writes of those sizes on each of `sockets` sockets
/// at once, against peers that read in `chunk`-byte reads: the writes
/// queue behind full socket buffers and go out gathered, cut short
/// anywhere. Each completes once, in order, with its exact count, and the
/// bytes arrive intact and in order.
fn gathered_writes_arrive_intact(b: Backend, sockets: usize, sizes: &[usize], chunk: usize) {
    let mut rt = Runtime::builder()
        .backend(b)
        .write_limit(usize::MAX)
        .build()
        .unwrap();
    let total: usize = sizes.iter().sum();
    let mut conns = Vec::new();
    let mut peers = Vec::new();
    // The peers start reading once everything is posted: the socket
    // buffers fill and the rest queues.
    let posted = std::sync::Arc::new(std::sync::Barrier::new(sockets + 1));
    for s in 0..sockets {
        let (client, server) = small_buffer_pair();
        rt.register(&server, Token(s as u64), Interest::READABLE)
            .unwrap();
        let mut peer = blocking(client);
        let posted = posted.clone();
        peers.push(std::thread::spawn(move || {
            use std::io::Read;
            posted.wait();
            let mut got = vec![0u8; total];
            let mut at = 0;
            while at < total {
                let end = total.min(at + chunk);
                match peer.read(&mut got[at..end]) {
                    Ok(0) => panic!("EOF after {at} of {total} bytes"),
                    Ok(n) => at += n,
                    Err(e) => panic!("read failed after {at} of {total}: {e}"),
                }
            }
            got
        }));
        conns.push(server);
    }
    let mut ops: Vec<std::collections::VecDeque<(OpId, usize)>> = vec![Default::default(); sockets];
    let mut at = 0;
    for &len in sizes {
        for (s, conn) in conns.iter().enumerate() {
            let data: Vec<u8> = (at..at + len).map(|i| pattern(s as u64, i)).collect();
            let op = rt.post_write_kept(conn, data).unwrap();
            ops[s].push_back((op, len));
        }
        at += len;
    }
    posted.wait();
    let mut events = Events::with_capacity(1024);
    let mut left = sockets * sizes.len();
    let start = Instant::now();
    while left > 0 {
        assert!(start.elapsed() < GUARD * 3, "{left} writes unfinished");
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for d in dones(&listed(&events)) {
            let s = d.token.0 as usize;
            let (op, len) = ops[s].pop_front().expect("a posted write");
            assert_eq!(d.op, op, "socket {s}: out of order");
            assert_eq!((d.bytes, d.error), (len, None), "socket {s}");
            let f = rt.take_io(op).expect("a delivered write");
            assert_eq!(f.bytes, len);
            left -= 1;
        }
    }
    for (s, peer) in peers.into_iter().enumerate() {
        let got = peer.join().unwrap();
        let want: Vec<u8> = (0..total).map(|i| pattern(s as u64, i)).collect();
        assert!(got == want, "socket {s}: the bytes arrived changed");
    }
}

/// Many small writes per socket, as a chat server posts them (one per
/// line per recipient).
pub(crate) fn many_small_writes_per_socket_in_order(b: Backend) {
    let writes = if cfg!(windows) { 1000 } else { 5000 };
    let sizes: Vec<usize> = (0..writes).map(|i| 1 + (i * 37) % 120).collect();
    gathered_writes_arrive_intact(b, 8, &sizes, 16 << 10);
}

/// Writes of odd sizes against a reader taking 1,000 bytes at a time: the
/// gathered writes are cut short mid-buffer over and over, and resume.
pub(crate) fn cut_short_gathered_writes_resume(b: Backend) {
    let sizes: Vec<usize> = (0..600).map(|i| [4099, 1, 0, 777, 65_537][i % 5]).collect();
    gathered_writes_arrive_intact(b, 2, &sizes, 1000);
}

/// The write limit counts what queued writes cost, not only their bytes:
/// 1-byte writes to a peer that never reads are refused once the queued
/// ones' capacity plus `OP_OVERHEAD` each reaches the limit.
pub(crate) fn write_limit_counts_the_per_write_overhead(b: Backend) {
    const LIMIT: usize = 64 << 10;
    let mut rt = Runtime::builder()
        .backend(b)
        .write_limit(LIMIT)
        .build()
        .unwrap();
    let (_client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    // Fill the socket buffers first, so the posted writes queue.
    let block = vec![0u8; 64 << 10];
    loop {
        match (&server).write(&block) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let mut accepted = 0usize;
    let refused = loop {
        assert!(accepted < 100 << 20, "never refused");
        match rt.post_write_kept(&server, vec![7]) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(refused.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(refused.into_buf(), vec![7], "the buffer comes back");
    // Each queued one costs its byte and the overhead. (A few may have gone
    // out at once, had the peer's kernel made room meanwhile.)
    let fit = LIMIT / (1 + uniloop::ops::OP_OVERHEAD);
    assert!(
        (fit..fit + 64).contains(&accepted),
        "{accepted} one-byte writes taken under a {LIMIT}-byte limit (queued writes cost {} each)",
        1 + uniloop::ops::OP_OVERHEAD
    );
}

/// A runtime that holds writes for the next `wait`.
fn holding(b: Backend) -> Runtime {
    Runtime::builder()
        .backend(b)
        .hold_writes(true)
        .build()
        .unwrap()
}

/// What the peer can read now, without blocking.
fn available(peer: &std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match (&mut &*peer).read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return got,
            Err(e) => panic!("peer read: {e}"),
        }
    }
}

/// With `hold_writes`, the writes posted on a source in one turn wait for
/// the next `wait` (loopback delivers a sent byte at once, so the peer
/// reading nothing proves nothing was sent), then all go out, in order,
/// each completing once with its own count; a write cancelled while held
/// is never sent, and the ones around it are.
pub(crate) fn held_writes_go_out_at_the_next_wait(b: Backend) {
    let mut rt = holding(b);
    let (client, server) = tcp_pair();
    rt.register(&client, Token(1), Interest::READABLE).unwrap();
    let mut ops: Vec<OpId> = (0..200u8)
        .map(|i| rt.post_write_kept(&client, vec![i; 3]).unwrap())
        .collect();
    let cancelled = ops.remove(7);
    let f = rt.cancel_io(cancelled).expect("a held write is pending");
    assert_eq!((f.bytes, f.buf), (0, vec![7; 3]));
    assert_eq!(available(&server), b"", "held writes went out before wait");
    let mut events = Events::with_capacity(256);
    let got = wait_all(&mut rt, &mut events, &ops, &[]);
    let order: Vec<OpId> = got.iter().map(|d| d.op).collect();
    assert_eq!(order, ops, "held writes complete in the order posted");
    assert!(
        got.iter().all(|d| d.bytes == 3 && d.error.is_none()),
        "{got:?}"
    );
    let mut want = Vec::new();
    for i in (0..200u8).filter(|&i| i != 7) {
        want.extend_from_slice(&[i; 3]);
    }
    let start = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < want.len() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "peer got {} of {}",
            seen.len(),
            want.len()
        );
        seen.extend(available(&server));
    }
    assert_eq!(seen, want);
    // The next turn holds again.
    let op = rt.post_write_kept(&client, b"again".to_vec()).unwrap();
    assert_eq!(available(&server), b"");
    wait_all(&mut rt, &mut events, &[op], &[]);
    let start = Instant::now();
    let mut again = Vec::new();
    while again.len() < 5 {
        assert!(start.elapsed() < Duration::from_secs(20));
        again.extend(available(&server));
    }
    assert_eq!(again, b"again");
}

/// Held writes get their try when the source is deregistered or the
/// runtime dropped before the next `wait`: a goodbye posted just before
/// either still reaches the peer.
pub(crate) fn held_writes_go_out_on_deregister_and_drop(b: Backend) {
    let (client, server) = tcp_pair();
    let (client2, server2) = tcp_pair();
    {
        let mut rt = holding(b);
        rt.register(&client, Token(1), Interest::READABLE).unwrap();
        rt.register(&client2, Token(2), Interest::READABLE).unwrap();
        rt.post_write_kept(&client, b"bye ".to_vec()).unwrap();
        rt.post_write_kept(&client, b"now".to_vec()).unwrap();
        rt.post_write_kept(&client2, b"dropped".to_vec()).unwrap();
        rt.deregister(&client).unwrap();
        assert_eq!(available(&server), b"bye now");
    }
    assert_eq!(available(&server2), b"dropped");
}

/// Held writes, a few dozen small ones per turn on one socket, to a peer
/// that reads a few bytes at a time: each turn's writes go out together
/// (on io_uring as one gathered submission), cut short anywhere by the
/// full socket buffer, and resume. Every write completes once, in the
/// order posted, with its own count; one cancelled now and then (while
/// the ones around it are out or going out) hands back what of it was
/// sent; the peer gets exactly the bytes sent, in order.
pub(crate) fn held_small_writes_gathered_to_a_slow_reader(b: Backend) {
    const TURNS: usize = 300;
    let mut rt = Runtime::builder()
        .backend(b)
        .hold_writes(true)
        .write_limit(usize::MAX)
        .build()
        .unwrap();
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    // More than the socket buffers hold.
    let big = in_flight_bound(&server, &client);
    let mut peer = blocking(client);
    let peer = std::thread::spawn(move || {
        use std::io::Read;
        let mut got = Vec::new();
        let mut buf = [0u8; 997];
        loop {
            match peer.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("read failed after {} bytes: {e}", got.len()),
            }
        }
    });
    // Each write's bytes, and how many of them went out.
    let mut data: Vec<Vec<u8>> = Vec::new();
    let mut sent: Vec<usize> = Vec::new();
    let mut pending: std::collections::VecDeque<(OpId, usize)> = Default::default();
    let mut events = Events::with_capacity(1024);
    let mut cancelled = 0;
    let start = Instant::now();
    for turn in 0..TURNS {
        // A turn with a cancel starts with a write the socket cannot take
        // at once, so the small ones behind it are still going out when
        // one of them is cancelled.
        let cancel_turn = turn % 30 == 3;
        let writes = if cancel_turn { 12 } else { 1 + turn % 40 };
        for i in 0..writes {
            let w = data.len();
            let len = if cancel_turn && i == 0 {
                big
            } else {
                [1, 64, 3, 4000, 0, 17, 16_000][w % 7]
            };
            let bytes = payload(w as u64, len);
            let op = rt.post_write_kept(&server, bytes.clone()).unwrap();
            data.push(bytes);
            sent.push(0);
            pending.push_back((op, w));
        }
        // On a turn with a cancel the writes are let go without waiting
        // for any of them: on io_uring they are then in the ring.
        let mut cancel = cancel_turn;
        let timeout = if cancel { Duration::ZERO } else { GUARD };
        rt.wait(&mut events, Some(timeout)).unwrap();
        loop {
            for d in dones(&listed(&events)) {
                let (op, w) = pending.pop_front().expect("a posted write");
                assert_eq!(d.op, op, "out of order");
                assert_eq!((d.bytes, d.error), (data[w].len(), None));
                let f = rt.take_io(op).expect("a delivered write");
                assert_eq!((f.bytes, f.buf.len()), (data[w].len(), data[w].len()));
                sent[w] = f.bytes;
            }
            if std::mem::take(&mut cancel) && pending.len() > 2 {
                // One in the middle: on io_uring it is in the ring with
                // the ones around it (or finished, not yet delivered).
                let (op, w) = pending.remove(pending.len() / 2).unwrap();
                let f = rt.cancel_io(op).expect("a pending or finished write");
                assert!(f.bytes <= data[w].len(), "{f:?}");
                assert_eq!(f.buf, data[w], "the buffer comes back as it was");
                sent[w] = f.bytes;
                cancelled += 1;
            }
            // Every few turns the writes posted so far are let out before
            // more come; otherwise the next turn posts behind them.
            if pending.is_empty() || turn % 5 != 0 && turn + 1 < TURNS {
                break;
            }
            assert!(
                start.elapsed() < GUARD * 3,
                "{} writes unfinished",
                pending.len()
            );
            rt.wait(&mut events, Some(GUARD)).unwrap();
        }
    }
    assert!(pending.is_empty());
    assert!(cancelled > 0, "none cancelled while going out");
    rt.deregister(&server).unwrap();
    drop(server);
    let got = peer.join().unwrap();
    let want: Vec<u8> = data
        .iter()
        .zip(&sent)
        .flat_map(|(d, &n)| d[..n].iter().copied())
        .collect();
    assert_eq!(got.len(), want.len(), "bytes the peer got");
    assert!(got == want, "the bytes arrived changed");
}
