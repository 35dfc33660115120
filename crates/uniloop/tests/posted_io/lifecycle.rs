//! What becomes of an operation: `take_io`, `cancel_io`, `deregister`,
//! and delivery through a one-event buffer.

use std::collections::HashSet;
use std::io::Read;
use std::time::Instant;

use uniloop::{Backend, Event, Events, Interest, OpId, OpKind, Token};

use crate::support::*;
use crate::util::*;

// ---- results: take_io ------------------------------------------------------

/// `take_io` hands a finished op's buffer over once: a read's buffer has
/// the bytes appended after what it held; a write's comes back as given.
pub(crate) fn take_io_hands_the_result_over_once(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(16);

    let read = rt.post_read_kept(&server, read_buf(b"ab", 64)).unwrap();
    assert!(rt.take_io(read).is_none(), "nothing to take while pending");
    send(&client, b"hello");
    let (d, _) = wait_done(&mut rt, &mut events, read);
    assert_eq!((d.kind, d.bytes, d.error), (OpKind::Read, 5, None));
    let f = rt.take_io(read).unwrap();
    assert_eq!(
        (f.kind, f.bytes, f.error.is_none()),
        (OpKind::Read, 5, true)
    );
    assert_eq!(f.buf, b"abhello", "len grew by `bytes`, the prefix kept");
    assert!(f.buf.capacity() >= 66, "the caller's buffer comes back");
    assert!(rt.take_io(read).is_none(), "taken twice");
    assert!(rt.cancel_io(read).is_none(), "cancelled after it was taken");

    let write = rt.post_write_kept(&server, b"xyz".to_vec()).unwrap();
    let (d, _) = wait_done(&mut rt, &mut events, write);
    assert_eq!((d.kind, d.bytes, d.error), (OpKind::Write, 3, None));
    let f = rt.take_io(write).unwrap();
    assert_eq!(
        (f.kind, f.bytes, &f.buf[..]),
        (OpKind::Write, 3, &b"xyz"[..])
    );
    assert!(rt.take_io(write).is_none());
    let mut client = blocking(client);
    let mut got = [0u8; 3];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"xyz");

    // Ids are never reused, also after their ops are gone.
    let later: Vec<OpId> = (0..10)
        .map(|_| rt.post_write_kept(&server, vec![0]).unwrap())
        .collect();
    let all: HashSet<OpId> = later.iter().copied().chain([read, write]).collect();
    assert_eq!(all.len(), 12);
}

// ---- cancel and deregister -------------------------------------------------

/// `cancel_io` on pending ops hands their buffers back (with the bytes done
/// so far) and silences them: nothing is reported for them afterwards, and
/// data arriving later is not swallowed by a cancelled read.
pub(crate) fn cancel_pending_ops(b: Backend) {
    const LEN: usize = 4 << 20;
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    // Room behind the 4 MiB write (over the default 1 MiB limit, which
    // counts its unwritten bytes) for the writes queued after it.
    rt.set_write_limit(&server, 16 << 20).unwrap();
    let read = rt.post_read_kept(&server, read_buf(b"kept", 64)).unwrap();
    let write = rt.post_write_kept(&server, payload(8, LEN)).unwrap();
    let queued = rt.post_write_kept(&server, b"queued".to_vec()).unwrap();
    let mut events = Events::with_capacity(16);
    assert_eq!(dones(&poll_now(&mut rt, &mut events)), vec![]);

    let f = rt.cancel_io(read).expect("a pending read");
    assert_eq!(
        (f.kind, f.bytes, f.error.is_none()),
        (OpKind::Read, 0, true)
    );
    assert_eq!(f.buf, b"kept");
    let f = rt.cancel_io(write).expect("a pending write");
    assert_eq!((f.kind, f.error.is_none()), (OpKind::Write, true));
    assert!(f.bytes < LEN, "4 MiB went out to a peer that reads nothing");
    assert!(f.buf == payload(8, LEN), "the buffer comes back as given");
    let f = rt.cancel_io(queued).expect("a queued write");
    assert_eq!((f.kind, &f.buf[..]), (OpKind::Write, &b"queued"[..]));
    assert!(f.bytes <= 6);
    for op in [read, write, queued] {
        assert!(rt.cancel_io(op).is_none(), "cancelled twice");
        assert!(rt.take_io(op).is_none(), "taken after cancel");
    }

    // The connection goes on; nothing of it revives the cancelled ops.
    send(&client, b"after");
    drain(&client);
    let readable =
        |e: &Event| matches!(e, Event::Io { token: Token(1), ready } if ready.is_readable());
    let mut seen = wait_until(&mut rt, &mut events, readable);
    seen.extend(quiet_window(&mut rt, &mut events));
    assert_eq!(dones(&seen), vec![], "events for cancelled ops");
    assert_eq!(drain(&server), b"after", "the cancelled read took nothing");
}

/// `cancel_io` on an op that may already have finished (its completion not
/// yet delivered) returns the real outcome; either way no byte is lost or
/// doubled, and no event follows.
pub(crate) fn cancel_just_finished_ops(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(16);
    send(&client, b"early");
    wait_until(
        &mut rt,
        &mut events,
        |e| matches!(e, Event::Io { token: Token(1), ready } if ready.is_readable()),
    );
    let read = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    let f = rt.cancel_io(read).unwrap();
    assert_eq!((f.kind, f.error.is_none()), (OpKind::Read, true));
    assert_eq!(f.buf.len(), f.bytes);
    let mut all = f.buf;
    all.extend(drain(&server));
    assert_eq!(all, b"early", "in the buffer or still in the socket");

    let write = rt.post_write_kept(&server, b"hello".to_vec()).unwrap();
    let f = rt.cancel_io(write).unwrap();
    assert_eq!(
        (f.kind, f.error.is_none(), &f.buf[..]),
        (OpKind::Write, true, &b"hello"[..])
    );
    assert!(f.bytes <= 5);
    let marker = rt.post_write_kept(&server, b"|end".to_vec()).unwrap();
    let (_, mut seen) = wait_done(&mut rt, &mut events, marker);
    let mut client = blocking(client);
    let mut got = vec![0u8; f.bytes + 4];
    client.read_exact(&mut got).unwrap();
    assert_eq!(
        &got[..f.bytes],
        &b"hello"[..f.bytes],
        "the bytes it reports"
    );
    assert_eq!(&got[f.bytes..], b"|end");

    seen.extend(quiet_window(&mut rt, &mut events));
    let stray: Vec<Done> = dones(&seen)
        .into_iter()
        .filter(|d| d.op == read || d.op == write)
        .collect();
    assert_eq!(stray, vec![], "events for cancelled ops");
}

/// Deregistering a source with a read and writes in flight drops them: no
/// event for them afterwards, nothing to take, nothing to cancel; data that
/// arrives later is left in the socket for whoever reads next.
pub(crate) fn deregister_with_ops_in_flight(b: Backend) {
    const LEN: usize = 4 << 20;
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    // Room behind the 4 MiB write (over the default 1 MiB limit, which
    // counts its unwritten bytes) for the writes queued after it.
    rt.set_write_limit(&server, 16 << 20).unwrap();
    let read = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    let write = rt.post_write_kept(&server, payload(9, LEN)).unwrap();
    let queued = rt.post_write_kept(&server, b"tail".to_vec()).unwrap();
    let mut events = Events::with_capacity(16);
    assert_eq!(dones(&poll_now(&mut rt, &mut events)), vec![]);

    rt.deregister(&server).unwrap();
    assert_eq!(rt.registered(), 0);
    for op in [read, write, queued] {
        assert!(rt.take_io(op).is_none());
        assert!(rt.cancel_io(op).is_none());
    }
    send(&client, b"after");
    drain(&client);
    let mut seen = quiet_window(&mut rt, &mut events);

    // Registered again, a new read gets the data the dropped read left.
    rt.register(&server, Token(2), Interest::READABLE).unwrap();
    let op = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    // The new registration reuses the slot: the old ids still name nothing.
    for old in [read, write, queued] {
        assert_ne!(old, op);
        assert!(rt.cancel_io(old).is_none(), "an old id took a new op");
    }
    let (d, more) = wait_done(&mut rt, &mut events, op);
    seen.extend(more);
    seen.extend(poll_now(&mut rt, &mut events));
    assert_eq!((d.token, d.bytes, d.error), (Token(2), 5, None));
    assert_eq!(rt.take_io(op).unwrap().buf, b"after");
    let stray: Vec<Done> = dones(&seen).into_iter().filter(|d| d.op != op).collect();
    assert_eq!(stray, vec![], "events for dropped ops");
}

// ---- capacity -----------------------------------------------------------------

/// 100 finished writes (and 100 posted completions beside them) through
/// an `Events` of capacity 1: one event per wait, none lost, each kind in
/// order.
pub(crate) fn capacity_one_hundred_writes_in_order(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let ops: Vec<OpId> = (0..100u8)
        .map(|i| rt.post_write_kept(&server, vec![i; 10]).unwrap())
        .collect();
    let poster = rt.poster();
    for i in 0..100 {
        poster.post(1, i).unwrap();
    }
    let mut events = Events::with_capacity(1);
    let (mut done, mut posted) = (Vec::new(), Vec::new());
    let start = Instant::now();
    while done.len() < 100 || posted.len() < 100 {
        assert!(
            start.elapsed() < GUARD,
            "{} writes, {} completions",
            done.len(),
            posted.len()
        );
        rt.wait(&mut events, Some(GUARD)).unwrap();
        assert!(events.len() <= 1);
        for ev in listed(&events) {
            match ev {
                Event::IoDone { op, bytes, .. } => done.push((op, bytes)),
                Event::Completion { key: 1, data } => posted.push(data),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(done, ops.iter().map(|&op| (op, 10)).collect::<Vec<_>>());
    assert_eq!(posted, (0..100).collect::<Vec<_>>());
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    let expected: Vec<u8> = (0..100u8).flat_map(|i| [i; 10]).collect();
    assert!(reader(client, 1000).join().unwrap() == expected);
}

/// 100 reads on 100 sources, all with data waiting, through an `Events` of
/// capacity 1: each completes once, in the order they were posted.
pub(crate) fn capacity_one_hundred_reads_in_order(b: Backend) {
    let mut rt = rt(b);
    let pairs: Vec<_> = (0..100).map(|_| tcp_pair()).collect();
    for (i, (client, server)) in pairs.iter().enumerate() {
        rt.register(server, Token(i as u64), Interest::READABLE)
            .unwrap();
        send(client, &[i as u8]);
    }
    // All the data is there once all 100 have been reported readable.
    let mut big = Events::with_capacity(256);
    let mut ready = HashSet::new();
    let start = Instant::now();
    while ready.len() < 100 {
        assert!(start.elapsed() < GUARD, "{} of 100 readable", ready.len());
        rt.wait(&mut big, Some(GUARD)).unwrap();
        for ev in listed(&big) {
            if let Event::Io { token, .. } = ev {
                ready.insert(token);
            }
        }
    }
    let ops: Vec<OpId> = pairs
        .iter()
        .map(|(_, server)| rt.post_read_kept(server, read_buf(b"", 8)).unwrap())
        .collect();
    let mut events = Events::with_capacity(1);
    let mut done = Vec::new();
    let start = Instant::now();
    while done.len() < 100 {
        assert!(start.elapsed() < GUARD, "{} of 100 reads", done.len());
        rt.wait(&mut events, Some(GUARD)).unwrap();
        assert!(events.len() <= 1);
        for ev in listed(&events) {
            match ev {
                Event::IoDone {
                    token, op, bytes, ..
                } => done.push((token, op, bytes)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let expected: Vec<_> = ops
        .iter()
        .enumerate()
        .map(|(i, &op)| (Token(i as u64), op, 1))
        .collect();
    assert_eq!(done, expected);
    for (i, op) in ops.into_iter().enumerate() {
        assert_eq!(rt.take_io(op).unwrap().buf, [i as u8]);
    }
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}
