//! io_uring-specific behaviour of `Backend::Uring`, beyond the
//! contract and posted-I/O suites that run on it unchanged: a submission
//! queue filled many times over, a completion queue that overflows, a cancel
//! racing its completion, dropping the runtime with operations in the
//! kernel, and the refusal where io_uring is not permitted.
#![cfg(target_os = "linux")]

mod util;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use uniloop::{Backend, Event, Events, Interest, OpId, OpKind, Runtime, Token};
use util::*;

fn rt() -> Runtime {
    Runtime::builder().backend(Backend::Uring).build().unwrap()
}

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// Waits (bounded by `GUARD`) until every op in `want` has its `IoDone`;
/// returns them by op.
#[track_caller]
fn wait_dones(rt: &mut Runtime, events: &mut Events, want: &HashSet<OpId>) -> Vec<Event> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut seen = HashSet::new();
    while seen.len() < want.len() {
        assert!(
            start.elapsed() < GUARD,
            "only {} of {} operations finished",
            seen.len(),
            want.len()
        );
        rt.wait(events, Some(GUARD)).unwrap();
        for e in events.iter() {
            if let Event::IoDone { op, .. } = *e {
                assert!(want.contains(&op), "an IoDone for an unknown op: {e:?}");
                assert!(seen.insert(op), "two IoDones for one op: {e:?}");
                got.push(*e);
            }
        }
    }
    got
}

/// 10,000 posted reads, each a `RECV` in the kernel: the 256-entry
/// submission queue fills and is submitted some 40 times while they are
/// posted, and when all of them complete at once their completions overflow
/// the 4,096-entry completion queue into the kernel's overflow list
/// (`IORING_FEAT_NODROP`). Every read completes once, with its own byte.
#[test]
fn ten_thousand_posted_reads_fill_the_queues_and_lose_nothing() {
    const READS: usize = 10_000;
    let limit = raise_fd_limit(READS as u64 + 512);
    assert!(limit as usize >= READS + 256, "fd limit too low ({limit})");
    let pairs: Vec<_> = (0..READS / 2).map(|_| pair()).collect();
    let mut rt = rt();
    let mut ops = Vec::with_capacity(READS);
    for (i, (a, b)) in pairs.iter().enumerate() {
        for (j, s) in [a, b].into_iter().enumerate() {
            rt.register(s, Token((2 * i + j) as u64), Interest::PRIORITY)
                .unwrap();
            // SAFETY: the sockets live to the end of the test, past its last call
            // on `rt`; no write is held.
            ops.push(unsafe { rt.post_read(s, Vec::with_capacity(8)) }.unwrap());
        }
    }
    let mut events = Events::with_capacity(1024);
    assert_eq!(
        poll_now(&mut rt, &mut events),
        vec![],
        "nothing arrived yet"
    );
    // Each end writes its own index's low byte to the other end.
    for (i, (a, b)) in pairs.iter().enumerate() {
        (&*a).write_all(&[(2 * i + 1) as u8]).unwrap();
        (&*b).write_all(&[(2 * i) as u8]).unwrap();
    }
    let want: HashSet<OpId> = ops.iter().copied().collect();
    let got = wait_dones(&mut rt, &mut events, &want);
    assert_eq!(got.len(), READS);
    for e in got {
        let Event::IoDone {
            token,
            op,
            kind,
            bytes,
            error,
        } = e
        else {
            unreachable!()
        };
        assert_eq!((kind, bytes, error), (OpKind::Read, 1, None), "{e:?}");
        let f = rt.take_io(op).unwrap();
        assert_eq!(f.buf, [token.0 as u8], "{e:?}");
    }
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// A cancel racing the read's completion: a peer thread writes one byte as
/// the loop cancels. Whichever wins, the byte is never lost nor delivered
/// twice: either the cancel hands it back in the buffer, or the read was
/// withdrawn empty and the next read gets it; no `IoDone` follows a cancel.
#[test]
fn cancel_racing_a_completion_loses_no_byte() {
    const ROUNDS: usize = 500;
    let mut rt = rt();
    let (ours, theirs) = pair();
    theirs.set_nonblocking(false).unwrap();
    rt.register(&ours, Token(1), Interest::PRIORITY).unwrap();
    let go = Arc::new(Barrier::new(2));
    let writer = {
        let go = go.clone();
        std::thread::spawn(move || {
            let mut theirs = theirs;
            for i in 0..ROUNDS {
                go.wait();
                theirs.write_all(&[i as u8]).unwrap();
            }
            theirs
        })
    };
    let mut events = Events::with_capacity(16);
    let (mut won_by_cancel, mut won_by_read) = (0, 0);
    for i in 0..ROUNDS {
        // SAFETY: the sockets live to the end of the test, past its last call
        // on `rt`; no write is held.
        let op = unsafe { rt.post_read(&ours, Vec::with_capacity(4)) }.unwrap();
        go.wait();
        let f = rt.cancel_io(op).expect("a posted read cancels");
        let byte = if f.bytes == 1 {
            won_by_read += 1;
            assert_eq!(f.error.map(|e| e.kind()), None);
            f.buf[0]
        } else {
            won_by_cancel += 1;
            assert_eq!((f.bytes, f.buf.len()), (0, 0), "round {i}");
            assert!(f.error.is_none(), "round {i}: {:?}", f.error);
            // The byte is still in the socket: the next read has it.
            // SAFETY: the sockets live to the end of the test, past its last call
            // on `rt`; no write is held.
            let op = unsafe { rt.post_read(&ours, Vec::with_capacity(4)) }.unwrap();
            let seen = wait_until(
                &mut rt,
                &mut events,
                |e| matches!(e, Event::IoDone { op: done, .. } if *done == op),
            );
            assert_eq!(seen.len(), 1, "round {i}: {seen:?}");
            rt.take_io(op).unwrap().buf[0]
        };
        assert_eq!(byte, i as u8, "round {i}");
        assert_eq!(
            poll_now(&mut rt, &mut events),
            vec![],
            "round {i}: an event after the cancel"
        );
    }
    writer.join().unwrap();
    eprintln!("{won_by_read} rounds the read won, {won_by_cancel} the cancel");
}

/// Dropping the runtime with reads and a large write in the kernel cancels
/// them and waits for the kernel to let go of their buffers (a use after
/// free here is what ASan/Valgrind would catch); the sockets are the
/// caller's and stay usable, and nothing the cancelled reads would have
/// taken is consumed.
#[test]
fn drop_with_operations_in_flight() {
    let pairs: Vec<_> = (0..64).map(|_| pair()).collect();
    let (big_ours, big_theirs) = pair();
    let mut rt = rt();
    for (i, (ours, _)) in pairs.iter().enumerate() {
        rt.register(ours, Token(i as u64), Interest::READABLE)
            .unwrap();
        // SAFETY: the sockets live to the end of the test, past its last call
        // on `rt`; no write is held.
        unsafe { rt.post_read(ours, Vec::with_capacity(64)) }.unwrap();
    }
    rt.register(&big_ours, Token(99), Interest::PRIORITY)
        .unwrap();
    // Far more than the socket buffer: the rest is a SEND in the kernel.
    // SAFETY: the sockets live to the end of the test, past its last call
    // on `rt`; no write is held.
    let write = unsafe { rt.post_write(&big_ours, vec![7u8; 8 << 20]) }.unwrap();
    let mut events = Events::with_capacity(64);
    let seen = poll_now(&mut rt, &mut events);
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::IoDone { op, .. } if *op == write)),
        "the big write should still be in flight: {seen:?}"
    );
    drop(rt);
    for (i, (ours, theirs)) in pairs.iter().enumerate() {
        (&*theirs).write_all(&[i as u8]).unwrap();
        let mut b = [0u8; 8];
        ours.set_nonblocking(false).unwrap();
        assert_eq!((&*ours).read(&mut b).unwrap(), 1);
        assert_eq!(b[0], i as u8, "a cancelled read took the byte");
    }
    // What the cancelled write got out is there, and then nothing more.
    big_theirs.set_nonblocking(true).unwrap();
    let sent = drain_unix(&big_theirs);
    assert!(sent > 0 && sent < 8 << 20, "{sent}");
}

fn drain_unix(mut s: &UnixStream) -> usize {
    let mut n = 0;
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return n,
            Ok(k) => {
                assert!(buf[..k].iter().all(|&b| b == 7));
                n += k;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Where `io_uring_setup` is refused — here by a seccomp filter on this
/// thread, as container runtimes install — `is_available` says so and
/// building on `Backend::Uring` fails with `PermissionDenied` naming the
/// cause; `Runtime::new()` (epoll) is unaffected.
#[cfg(target_arch = "x86_64")]
#[test]
fn refused_io_uring_is_a_clear_error() {
    std::thread::spawn(|| {
        deny_io_uring_setup_on_this_thread();
        assert!(!Backend::Uring.is_available());
        let e = Runtime::builder()
            .backend(Backend::Uring)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("io_uring_setup"), "{e}");
        assert_eq!(Runtime::new().unwrap().backend(), Backend::Epoll);
    })
    .join()
    .unwrap();
    assert!(
        Backend::Uring.is_available(),
        "the filter is the thread's own"
    );
}

/// A seccomp filter on the calling thread only (no `TSYNC`) that makes
/// `io_uring_setup` fail with `EPERM`.
#[cfg(target_arch = "x86_64")]
fn deny_io_uring_setup_on_this_thread() {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let stmt = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let mut filter = [
        // The syscall number: offset 0 of `struct seccomp_data`.
        stmt(LD_W_ABS, 0),
        libc::sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(RET_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: plain prctl calls; `prog` points at a filter that lives until
    // the kernel has copied it (during the call).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ),
            0,
            "{}",
            std::io::Error::last_os_error()
        );
    }
}

/// With a registration asking only for priority data, a posted read still
/// completes: on io_uring it waits in the ring (`RECV`), not on readable
/// interest added for it.
#[test]
fn a_posted_read_needs_no_readiness_interest() {
    let mut rt = rt();
    let (ours, theirs) = pair();
    rt.register(&ours, Token(1), Interest::PRIORITY).unwrap();
    // SAFETY: the sockets live to the end of the test, past its last call
    // on `rt`; no write is held.
    let op = unsafe { rt.post_read(&ours, Vec::with_capacity(16)) }.unwrap();
    let mut events = Events::with_capacity(8);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    (&theirs).write_all(b"ring").unwrap();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < GUARD);
        rt.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
        if events
            .iter()
            .any(|e| matches!(e, Event::IoDone { op: done, bytes: 4, .. } if *done == op))
        {
            break;
        }
    }
    assert_eq!(rt.take_io(op).unwrap().buf, b"ring");
}
