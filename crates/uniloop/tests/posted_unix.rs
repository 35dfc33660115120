//! Posted I/O over a `UnixStream` pair: the operation bookkeeping (buffers
//! handed over and back, reads into spare capacity, partial and queued
//! writes, cancel, deregister with operations in flight) without TCP,
//! written so that Miri, which emulates `socketpair` and epoll but not
//! `socket(2)`, could check it for UB too. It runs natively on epoll and
//! poll. Under Miri it would run on epoll only, since Miri has no
//! `poll(2)`; the current nightly's Miri also refuses level-triggered
//! `epoll_ctl`, so scripts/test-reliability.sh leaves it out for now.
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use uniloop::{Backend, Event, Events, Interest, OpId, OpKind, Runtime, Token};

const GUARD: Duration = Duration::from_secs(20);

fn backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .filter(|b| !cfg!(miri) || *b == Backend::Epoll)
        .collect()
}

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    set_nonblocking(&a, true);
    set_nonblocking(&b, true);
    (a, b)
}

/// `O_NONBLOCK` on or off with `fcntl`, which Miri emulates for a
/// socketpair (std's `set_nonblocking` is an `ioctl` there, which it
/// does not).
fn set_nonblocking(s: &UnixStream, on: bool) {
    use std::os::fd::AsRawFd;
    let fd = s.as_raw_fd();
    // SAFETY: `fd` is open for the call (borrowed from `s`); F_GETFL and
    // F_SETFL only read and set its status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0, "F_GETFL: {}", std::io::Error::last_os_error());
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        assert!(
            libc::fcntl(fd, libc::F_SETFL, flags) == 0,
            "F_SETFL: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Waits (bounded) for `op`'s `IoDone` and takes it.
#[track_caller]
fn done(rt: &mut Runtime, events: &mut Events, op: OpId) -> uniloop::Finished {
    let start = std::time::Instant::now();
    loop {
        assert!(start.elapsed() < GUARD, "operation {op:?} did not finish");
        rt.wait(events, Some(Duration::from_millis(50))).unwrap();
        if events
            .iter()
            .any(|e| matches!(*e, Event::IoDone { op: o, .. } if o == op))
        {
            return rt.take_io(op).expect("delivered, not yet taken");
        }
    }
}

#[test]
fn a_read_appends_to_the_spare_capacity_and_hands_the_buffer_back() {
    for b in backends() {
        let mut rt = Runtime::builder().backend(b).build().unwrap();
        let (mine, mut peer) = pair();
        rt.register(&mine, Token(1), Interest::READABLE).unwrap();
        let mut buf = Vec::with_capacity(16);
        buf.extend_from_slice(b"old:");
        // SAFETY: `mine` lives to the end of the test, past its last call on
        // `rt`; no write is held.
        let op = unsafe { rt.post_read(&mine, buf) }.unwrap();
        peer.write_all(b"hello").unwrap();
        let mut events = Events::with_capacity(8);
        let f = done(&mut rt, &mut events, op);
        assert_eq!(f.kind, OpKind::Read, "{b:?}");
        assert!(f.error.is_none(), "{b:?}: {:?}", f.error);
        assert_eq!((f.bytes, &f.buf[..]), (5, &b"old:hello"[..]), "{b:?}");
        assert!(rt.take_io(op).is_none(), "{b:?}: taken once");
        rt.deregister(&mine).unwrap();
    }
}

#[test]
fn queued_writes_complete_in_order_and_all_of_each_goes_out() {
    for b in backends() {
        let mut rt = Runtime::builder().backend(b).build().unwrap();
        let (mine, mut peer) = pair();
        rt.register(&mine, Token(1), Interest::READABLE).unwrap();
        // Bigger than a socketpair's buffer, so the first write is partial
        // and the second queues behind it.
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        // SAFETY: `mine` lives to the end of the test, past its last call on
        // `rt`; no write is held.
        let first = unsafe { rt.post_write(&mine, big.clone()) }.unwrap();
        // SAFETY: `mine` lives to the end of the test, past its last call on
        // `rt`; no write is held.
        let second = unsafe { rt.post_write(&mine, b"tail".to_vec()) }.unwrap();
        let mut got = Vec::new();
        let mut events = Events::with_capacity(8);
        let mut finished = Vec::new();
        let start = std::time::Instant::now();
        while finished.len() < 2 {
            assert!(start.elapsed() < GUARD, "{b:?}: writes did not finish");
            let mut chunk = [0u8; 65536];
            match peer.read(&mut chunk) {
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{b:?}: {e}"),
            }
            rt.wait(&mut events, Some(Duration::ZERO)).unwrap();
            for e in &events {
                if let Event::IoDone { op, .. } = *e {
                    finished.push(op);
                }
            }
        }
        assert_eq!(finished, [first, second], "{b:?}: in order");
        for (op, len) in [(first, big.len()), (second, 4)] {
            let f = rt.take_io(op).unwrap();
            assert!(f.error.is_none(), "{b:?}: {:?}", f.error);
            assert_eq!((f.kind, f.bytes, f.buf.len()), (OpKind::Write, len, len));
        }
        set_nonblocking(&peer, false);
        while got.len() < big.len() + 4 {
            let mut chunk = [0u8; 65536];
            let n = peer.read(&mut chunk).unwrap();
            assert!(n > 0, "{b:?}: early end of stream");
            got.extend_from_slice(&chunk[..n]);
        }
        assert!(
            got[..big.len()] == big[..] && &got[big.len()..] == b"tail",
            "{b:?}"
        );
    }
}

#[test]
fn cancel_and_deregister_hand_buffers_back_and_report_nothing_more() {
    for b in backends() {
        let mut rt = Runtime::builder().backend(b).build().unwrap();
        let (mine, mut peer) = pair();
        rt.register(&mine, Token(1), Interest::READABLE).unwrap();
        // SAFETY: `mine` lives to the end of the test, past its last call on
        // `rt`; no write is held.
        let read = unsafe { rt.post_read(&mine, Vec::with_capacity(64)) }.unwrap();
        let f = rt.cancel_io(read).expect("a pending read is cancelled");
        assert_eq!(
            (f.kind, f.bytes, f.buf.capacity() >= 64),
            (OpKind::Read, 0, true)
        );
        // SAFETY: `mine` lives to the end of the test, past its last call on
        // `rt`; no write is held.
        let again = unsafe { rt.post_read(&mine, Vec::with_capacity(64)) }.unwrap();
        rt.deregister(&mine).unwrap();
        assert!(
            rt.cancel_io(again).is_none(),
            "{b:?}: dropped by deregister"
        );
        peer.write_all(b"late").unwrap();
        let mut events = Events::with_capacity(8);
        for _ in 0..3 {
            rt.wait(&mut events, Some(Duration::ZERO)).unwrap();
            assert!(
                events.is_empty(),
                "{b:?}: {:?}",
                events.iter().collect::<Vec<_>>()
            );
        }
    }
}

/// `register` checks `O_NONBLOCK` once. A socket put back in blocking mode
/// afterwards must still not block the loop: posted reads and writes on a
/// socket go through `recv`/`send` with `MSG_DONTWAIT`. The loop runs on a
/// thread of its own so that a blocked read fails the test, not hangs it.
#[test]
fn a_socket_made_blocking_after_register_does_not_block_the_loop() {
    if cfg!(miri) {
        return; // Miri's socketpair has no MSG_DONTWAIT.
    }
    for b in backends() {
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let mut rt = Runtime::builder().backend(b).build().unwrap();
            let (mine, peer) = pair();
            rt.register(&mine, Token(1), Interest::READABLE).unwrap();
            set_nonblocking(&mine, false);
            // SAFETY: `mine` lives to the end of this closure, past its last
            // call on `rt`; no write is held.
            let read = unsafe { rt.post_read(&mine, Vec::with_capacity(64)) }.unwrap();
            // More than the socket buffers hold: the peer never reads.
            let big = vec![7u8; 16 << 20];
            // SAFETY: as above.
            let write = unsafe { rt.post_write(&mine, big) }.unwrap();
            let mut events = Events::with_capacity(8);
            for _ in 0..3 {
                rt.wait(&mut events, Some(Duration::ZERO)).unwrap();
            }
            assert!(rt.cancel_io(read).is_some(), "the read is still pending");
            let w = rt.cancel_io(write).expect("the write is still pending");
            assert!(w.bytes < 16 << 20, "only part of the write went out");
            tx.send(()).unwrap();
            drop(peer);
        });
        rx.recv_timeout(GUARD)
            .unwrap_or_else(|_| panic!("{b:?}: a read or write blocked the loop"));
        worker.join().unwrap();
    }
}

/// The events epoll `epfd` watches `fd` for, from `/proc/self/fdinfo`.
#[cfg(all(target_os = "linux", not(miri)))]
fn epoll_mask(epfd: i32, fd: i32) -> Option<u32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")).unwrap();
    info.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == "tfd:" && words.next()?.parse::<i32>().ok()? == fd).then_some(())?;
        (words.next()? == "events:").then_some(())?;
        u32::from_str_radix(words.next()?, 16).ok()
    })
}

/// The usual loop on a source registered for posted I/O only (read, answer,
/// post the next read) changes nothing with the OS between reads: the
/// readable interest a read needed stays armed once it has finished, and is
/// dropped only when readiness comes with no read posted.
#[cfg(all(target_os = "linux", not(miri)))]
#[test]
fn a_finished_read_leaves_readable_armed_until_readiness_finds_no_read() {
    use std::os::fd::AsRawFd;
    const EPOLLIN: u32 = 0x1;
    let mut rt = Runtime::builder().backend(Backend::Epoll).build().unwrap();
    let epfd = rt.os_handle().expect("epoll has one fd");
    let (mine, mut peer) = pair();
    let fd = mine.as_raw_fd();
    rt.register(&mine, Token(1), Interest::NONE).unwrap();
    assert_eq!(epoll_mask(epfd, fd).map(|m| m & EPOLLIN), Some(0));
    let mut events = Events::with_capacity(8);
    for round in 0..3 {
        // SAFETY: `mine` lives to the end of the test, past its last call
        // on `rt`.
        let op = unsafe { rt.post_read(&mine, Vec::with_capacity(16)) }.unwrap();
        peer.write_all(b"ping").unwrap();
        let f = done(&mut rt, &mut events, op);
        assert_eq!(&f.buf[..], b"ping", "round {round}");
        assert_eq!(
            epoll_mask(epfd, fd).map(|m| m & EPOLLIN),
            Some(EPOLLIN),
            "round {round}: readable dropped after the read finished"
        );
    }
    // Data with no read posted: the readiness nobody wants drops the
    // interest (and is not the caller's event: it asked for none).
    peer.write_all(b"unasked").unwrap();
    let start = std::time::Instant::now();
    while epoll_mask(epfd, fd).map(|m| m & EPOLLIN) != Some(0) {
        assert!(start.elapsed() < GUARD, "readable never dropped");
        rt.wait(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        assert!(events.is_empty(), "{:?}", events.iter().collect::<Vec<_>>());
    }
    // The data waits for the next read.
    // SAFETY: as above.
    let op = unsafe { rt.post_read(&mine, Vec::with_capacity(16)) }.unwrap();
    assert_eq!(&done(&mut rt, &mut events, op).buf[..], b"unasked");
}
