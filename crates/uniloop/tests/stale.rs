//! Sources closed behind the runtime's back, on
//! every backend: a registered source closed without `deregister` reports
//! nothing and makes no busy loop, and a new source that gets its fd (or
//! handle) number registers normally, replacing the stale entry. And the
//! order `post_write` asks for — deregister, then close — keeps a
//! source's pending writes from reaching a socket that reuses its number.
//!
//! These tests close a registered source and count on the next socket made
//! getting the same number (Unix hands out the lowest free fd, Wine the
//! lowest free handle slot). A socket made by another test in between would
//! take the number — and on poll(2), which watches fd numbers, would be
//! watched under the closed registration — so they live in their own test
//! binary and take turns ([`one_at_a_time`]).

mod util;

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use uniloop::{Backend, Event, Events, Interest, Runtime, Token};
use util::*;

fn rt(b: Backend) -> Runtime {
    Runtime::builder().backend(b).build().unwrap()
}

/// Serialises the tests of this binary: none of them makes a socket while
/// another one waits for a number to come back.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(unix)]
fn number(s: &impl std::os::fd::AsRawFd) -> u64 {
    s.as_raw_fd() as u64
}

#[cfg(windows)]
fn number(s: &impl std::os::windows::io::AsRawSocket) -> u64 {
    s.as_raw_socket()
}

fn io_events(events: &Events) -> Vec<(Token, uniloop::Readiness)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Io { token, ready } => Some((token, ready)),
            _ => None,
        })
        .collect()
}

/// A closed source reports nothing: poll(2) says `POLLNVAL` for a closed fd
/// on every wait, which reported as `WRITE_CLOSED | ERROR` would be a busy
/// loop (epoll reports nothing). Two sources: one idle when it is closed (on IOCP its AFD poll is
/// in flight and completes with `AFD_POLL_LOCAL_CLOSE`), one that has just
/// reported (on IOCP its next poll is issued on a closed handle).
fn closed_source_reports_nothing(b: Backend) {
    let _turn = one_at_a_time();
    let mut rt = rt(b);
    let (_idle_peer, idle) = tcp_pair();
    let (busy_peer, busy) = tcp_pair();
    rt.register(&idle, Token(1), Interest::READABLE).unwrap();
    rt.register(&busy, Token(2), Interest::READABLE).unwrap();
    send(&busy_peer, b"x");
    let mut events = Events::with_capacity(16);
    wait_until(&mut rt, &mut events, |e| {
        matches!(
            e,
            Event::Io {
                token: Token(2),
                ..
            }
        )
    });
    drop(idle);
    drop(busy);
    // Short waits, a bounded number of them: a backend that reports the
    // closed sources, or spins on them, shows up as events here.
    let mut seen = Vec::new();
    for _ in 0..5 {
        rt.wait(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        seen.extend(io_events(&events));
    }
    assert_eq!(seen, vec![], "{b:?}: events for closed sources");
    assert_eq!(rt.registered(), 2, "still registered until deregistered");
}

/// A source dropped without `deregister` leaves its number in the
/// registry; the next socket that gets the number must still register
/// (not fail with `AlreadyExists`). `wait_between`: whether the runtime
/// waits (and so can see the close) between the close and the reuse.
/// `dup_kept`: a duplicate of the closed source is kept open (a `dup`, a
/// forked child, `SCM_RIGHTS`), so the OS may keep its old entry alive and
/// report it under the old slot; those reports must match nothing (slots
/// are generation-tagged).
fn reused_number_registers(b: Backend, wait_between: bool, dup_kept: bool) {
    let _turn = one_at_a_time();
    let mut rt = rt(b);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (old_peer, old) = tcp_pair();
    rt.register(&old, Token(1), Interest::READABLE).unwrap();
    // A read that finishes before the close (a pending one would break
    // `post_read`'s promise): its result, never taken, is dropped with the
    // stale entry, exactly as `deregister` drops it.
    // SAFETY: `old` stays open until the read has finished (the
    // `wait_until` below returns its completion).
    let read = unsafe { rt.post_read(&old, Vec::with_capacity(16)) }.unwrap();
    send(&old_peer, b"z");
    let mut events = Events::with_capacity(16);
    wait_until(
        &mut rt,
        &mut events,
        |e| matches!(e, Event::IoDone { op, .. } if *op == read),
    );
    let old_number = number(&old);
    let duplicate = dup_kept.then(|| old.try_clone().unwrap());
    drop(old);
    if wait_between {
        for _ in 0..3 {
            assert_eq!(poll_now(&mut rt, &mut events), vec![], "{b:?}");
        }
    }

    // New connections, all kept open, until one end gets the old number.
    let mut held = Vec::new();
    let mut reused = None;
    for _ in 0..64 {
        let a = TcpStream::connect(addr).unwrap();
        let (b, _) = listener.accept().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        if number(&a) == old_number {
            reused = Some((a, b));
            break;
        }
        if number(&b) == old_number {
            reused = Some((b, a));
            break;
        }
        held.push((a, b));
    }
    let Some((new, peer)) = reused else {
        // What can still be checked: new sockets register, and the old
        // token stays silent.
        eprintln!(
            "{b:?}: none of 64 new sockets got the closed one's number \
             {old_number}; the stale-entry replacement was NOT exercised"
        );
        for (i, (s, peer)) in held.iter().enumerate() {
            rt.register(s, Token(10 + i as u64), Interest::READABLE)
                .unwrap();
            send(peer, b"y");
        }
        let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
        assert!(!seen.iter().any(|e| matches!(
            e,
            Event::Io {
                token: Token(1),
                ..
            }
        )));
        return;
    };

    rt.register(&new, Token(2), Interest::READABLE)
        .expect("a socket that reuses a stale entry's number registers");
    assert_eq!(rt.registered(), 1, "{b:?}: the stale entry was replaced");
    assert!(
        rt.take_io(read).is_none(),
        "{b:?}: the stale entry's finished read was dropped"
    );
    assert_eq!(
        rt.register(&new, Token(3), Interest::READABLE)
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists,
        "{b:?}: a real duplicate is still refused"
    );

    if duplicate.is_some() {
        // The old file, still open through its duplicate, becomes readable:
        // whatever the OS still reports for its old entry reaches nobody.
        send(&old_peer, b"old");
        for _ in 0..3 {
            assert_eq!(
                poll_now(&mut rt, &mut events),
                vec![],
                "{b:?}: stale report delivered"
            );
        }
    }

    // It works, under the new token only.
    send(&peer, b"y");
    let mut seen = Vec::new();
    wait_until(&mut rt, &mut events, |e| {
        seen.push(*e);
        matches!(e, Event::Io { .. })
    });
    for _ in 0..3 {
        seen.extend(poll_now(&mut rt, &mut events));
    }
    for e in &seen {
        match *e {
            Event::Io { token, ready } => {
                assert_eq!(token, Token(2), "{b:?}: {e:?}");
                assert!(ready.is_readable(), "{b:?}: {e:?}");
            }
            _ => panic!("{b:?}: unexpected {e:?}"),
        }
    }
    assert_eq!(drain(&new), b"y");
    rt.deregister(&new).unwrap();
    assert_eq!(rt.registered(), 0);
    drop(held);
}

fn reused_number_registers_at_once(b: Backend) {
    reused_number_registers(b, false, false);
}

fn reused_number_registers_after_a_wait(b: Backend) {
    reused_number_registers(b, true, false);
}

fn reused_number_with_a_live_duplicate_of_the_old_source(b: Backend) {
    reused_number_registers(b, true, true);
}

/// The rule `post_write`'s callers keep, kept: a source with a write held
/// for the next `wait` (`hold_writes`) and a large one queued behind it is
/// deregistered, then closed, and a new connection gets its number. The
/// deregister gives the held writes their one try on the old socket (its
/// peer gets "secret" first) and drops what did not go out; the waits
/// after it send nothing to the new connection.
fn deregistered_then_closed_sends_nothing_to_a_reused_number(b: Backend) {
    let _turn = one_at_a_time();
    let mut rt = Runtime::builder()
        .backend(b)
        .hold_writes(true)
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (old_peer, old) = tcp_pair();
    for s in [&old_peer, &old] {
        let s = socket2::SockRef::from(s);
        s.set_send_buffer_size(16 << 10).unwrap();
        s.set_recv_buffer_size(16 << 10).unwrap();
    }
    rt.register(&old, Token(1), Interest::READABLE).unwrap();
    rt.set_write_limit(&old, 8 << 20).unwrap();
    // SAFETY: `old` stays open until after its `deregister` below.
    unsafe { rt.post_write(&old, b"secret".to_vec()) }.unwrap();
    // Far more than the socket buffers take: most of it is still queued
    // when the source is deregistered.
    // SAFETY: as for the first write.
    unsafe { rt.post_write(&old, vec![b'S'; 4 << 20]) }.unwrap();
    rt.deregister(&old).unwrap();
    let old_number = number(&old);
    drop(old);

    old_peer.set_nonblocking(false).unwrap();
    old_peer.set_read_timeout(Some(GUARD)).unwrap();
    let mut first = [0u8; 6];
    (&old_peer).read_exact(&mut first).unwrap();
    assert_eq!(&first, b"secret", "{b:?}: the held write went out first");

    // New connections, all kept open, until one end gets the old number.
    let mut held = Vec::new();
    let mut reused = None;
    for _ in 0..64 {
        let a = TcpStream::connect(addr).unwrap();
        let (c, _) = listener.accept().unwrap();
        a.set_nonblocking(true).unwrap();
        c.set_nonblocking(true).unwrap();
        if number(&a) == old_number {
            reused = Some((a, c));
            break;
        }
        if number(&c) == old_number {
            reused = Some((c, a));
            break;
        }
        held.push((a, c));
    }
    let mut events = Events::with_capacity(16);
    for _ in 0..3 {
        assert_eq!(poll_now(&mut rt, &mut events), vec![], "{b:?}");
    }
    let Some((new, peer)) = reused else {
        eprintln!(
            "{b:?}: none of 64 new sockets got the closed one's number \
             {old_number}; the reuse was NOT exercised"
        );
        for (x, y) in &held {
            assert_eq!(drain(x), b"", "{b:?}");
            assert_eq!(drain(y), b"", "{b:?}");
        }
        return;
    };
    // Registered too, so that a registration under the number is live.
    rt.register(&new, Token(2), Interest::READABLE).unwrap();
    for _ in 0..3 {
        assert_eq!(poll_now(&mut rt, &mut events), vec![], "{b:?}");
    }
    assert_eq!(
        drain(&peer),
        b"",
        "{b:?}: the old source's bytes reached the new connection"
    );
    rt.deregister(&new).unwrap();
    assert_eq!(rt.registered(), 0);
    drop(held);
}

every_backend! {
    closed_source_reports_nothing
    reused_number_registers_at_once
    reused_number_registers_after_a_wait
    reused_number_with_a_live_duplicate_of_the_old_source
    deregistered_then_closed_sends_nothing_to_a_reused_number
}
