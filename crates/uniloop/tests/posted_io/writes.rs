//! Posted writes: an echo server on posted I/O only, a slow reader, order,
//! empty writes, writability, closed and reset peers.

use std::collections::{HashMap, HashSet};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use uniloop::{Backend, Event, Events, Interest, OpId, OpKind, Token};

use crate::support::*;
use crate::util::*;

// ---- an echo server on posted I/O only ---------------------------------

/// 64 blocking clients on threads, each doing round trips of varying
/// length; the server accepts through readiness and then moves every byte
/// with posted reads and writes, reusing each connection's one buffer.
pub(crate) fn echo_server_64_clients(b: Backend) {
    const CLIENTS: usize = 64;
    // Scaled down on Windows: under Wine every socket call and AFD poll
    // goes through the Wine server, and 1,000 rounds take about 30 s there
    // (250 take about 7 s; natively 1,000 take about 1.5 s).
    let rounds: usize = if cfg!(windows) { 250 } else { 1000 };
    const LISTENER: Token = Token(u64::MAX);
    let mut rt = rt(b);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.register(&listener, LISTENER, Interest::READABLE)
        .unwrap();

    let msg_len = |c: usize, r: usize| 1 + (c * 31 + r * 17) % 200;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = blocking(TcpStream::connect(addr).unwrap());
                s.set_nodelay(true).unwrap();
                let mut back = [0u8; 256];
                for r in 0..rounds {
                    let msg = payload((c * rounds + r) as u64, msg_len(c, r));
                    s.write_all(&msg).unwrap();
                    s.read_exact(&mut back[..msg.len()]).unwrap();
                    assert!(
                        back[..msg.len()] == msg[..],
                        "client {c}, round {r}: the echo differs"
                    );
                }
                s.shutdown(Shutdown::Write).unwrap();
                // The server closes once it has read our EOF.
                assert_eq!(s.read(&mut back).unwrap(), 0);
            })
        })
        .collect();

    let mut conns: HashMap<Token, TcpStream> = HashMap::new();
    let (mut next, mut closed, mut echoed) = (0u64, 0usize, 0usize);
    let mut events = Events::with_capacity(256);
    let start = Instant::now();
    while closed < CLIENTS {
        assert!(
            start.elapsed() < GUARD * 3,
            "stalled: {next} accepted, {closed} closed, {echoed} bytes echoed"
        );
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for ev in events.iter() {
            match *ev {
                Event::Io {
                    token: LISTENER, ..
                } => loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(true).unwrap();
                            s.set_nodelay(true).unwrap();
                            let token = Token(next);
                            next += 1;
                            rt.register(&s, token, Interest::READABLE).unwrap();
                            rt.post_read_kept(&s, Vec::with_capacity(4096)).unwrap();
                            conns.insert(token, s);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept: {e}"),
                    }
                },
                // The rest of a message that came in pieces, while the
                // first piece's echo is out: read once the write is done.
                Event::Io { .. } => {}
                Event::IoDone {
                    token,
                    op,
                    kind,
                    bytes,
                    error,
                } => {
                    assert_eq!(error, None, "{token:?} {kind:?}");
                    let f = rt.take_io(op).expect("result of a delivered op");
                    assert_eq!((f.kind, f.bytes), (kind, bytes));
                    let s = &conns[&token];
                    match kind {
                        OpKind::Read if bytes == 0 => {
                            rt.deregister(s).unwrap();
                            conns.remove(&token);
                            closed += 1;
                        }
                        OpKind::Read => {
                            assert_eq!(f.buf.len(), bytes);
                            echoed += bytes;
                            rt.post_write_kept(s, f.buf).unwrap();
                        }
                        OpKind::Write => {
                            assert_eq!(f.buf.len(), bytes, "a write completes whole");
                            let mut buf = f.buf;
                            buf.clear();
                            rt.post_read_kept(s, buf).unwrap();
                        }
                        other => panic!("only reads and writes were posted, not {other:?}"),
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    for c in clients {
        c.join().unwrap();
    }
    let total: usize = (0..CLIENTS)
        .flat_map(|c| (0..rounds).map(move |r| msg_len(c, r)))
        .sum();
    assert_eq!(echoed, total);
    assert_eq!(next as usize, CLIENTS);
    assert_eq!(rt.registered(), 1);
}

// ---- writes ---------------------------------------------------------------

/// A 4 MiB write to a peer that reads 4 KiB at a time, and only as much as
/// the loop's 1 ms timer has allowed it so far (64 KiB a tick): the write is
/// pending for dozens of ticks, the timer keeps firing meanwhile, and the
/// write completes once, after the peer has read all but what the kernels
/// can hold.
pub(crate) fn four_mib_write_to_a_slow_reader(b: Backend) {
    const LEN: usize = 4 << 20;
    const GRANT: usize = 64 << 10;
    const CHUNK: usize = 4 << 10;
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    let slack = in_flight_bound(&server, &client);
    rt.register(&server, Token(1), Interest::READABLE).unwrap();

    let read = Arc::new(AtomicUsize::new(0));
    let (grants, granted) = mpsc::channel::<()>();
    let peer = {
        let mut client = blocking(client);
        let read = read.clone();
        std::thread::spawn(move || {
            let (mut allowed, mut got) = (0, 0);
            let mut buf = [0u8; CHUNK];
            while got < LEN {
                if got == allowed {
                    granted
                        .recv_timeout(GUARD)
                        .expect("the loop's timer stopped while the write was pending");
                    allowed = LEN.min(allowed + GRANT);
                    continue;
                }
                let n = client.read(&mut buf[..CHUNK.min(allowed - got)]).unwrap();
                assert_ne!(n, 0, "EOF after {got} bytes");
                for (i, &byte) in buf[..n].iter().enumerate() {
                    assert_eq!(byte, pattern(4, got + i), "byte {}", got + i);
                }
                got += n;
                // Release: pairs with the loop's Acquire load at completion.
                read.store(got, Ordering::Release);
            }
            // Kept open until joined: its FIN would be readiness for the loop.
            (got, client)
        })
    };

    let op = rt.post_write_kept(&server, payload(4, LEN)).unwrap();
    let tick = rt.add_timer(7, Duration::from_millis(1), Some(Duration::from_millis(1)));
    let mut events = Events::with_capacity(16);
    let mut ticks = 0usize;
    let mut done_at = None; // (bytes the peer had read, ticks) at completion
    let start = Instant::now();
    while done_at.is_none() || read.load(Ordering::Acquire) < LEN {
        assert!(
            start.elapsed() < GUARD * 2,
            "stalled: peer read {} bytes, {ticks} ticks, completed at {done_at:?}",
            read.load(Ordering::Acquire)
        );
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for ev in listed(&events) {
            match ev {
                Event::Timer { id, .. } if id == tick => {
                    ticks += 1;
                    // The peer is gone once it has read everything.
                    let _ = grants.send(());
                }
                Event::IoDone {
                    token,
                    op: o,
                    kind,
                    bytes,
                    error,
                } if o == op => {
                    assert!(done_at.is_none(), "the write completed twice");
                    done_at = Some((read.load(Ordering::Acquire), ticks));
                    assert_eq!(
                        (token, kind, bytes, error),
                        (Token(1), OpKind::Write, LEN, None)
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(rt.cancel_timer(tick));
    assert_eq!(peer.join().unwrap().0, LEN);
    let (read_then, ticks_then) = done_at.unwrap();
    assert!(
        read_then + slack >= LEN,
        "completed when the peer had read {read_then} of {LEN} bytes \
         (the kernels hold at most {slack})"
    );
    assert!(
        ticks_then * GRANT >= LEN - slack,
        "the timer fired only {ticks_then} times while the write was pending"
    );
    let f = rt.take_io(op).unwrap();
    assert_eq!(
        (f.kind, f.bytes, f.error.is_none()),
        (OpKind::Write, LEN, true)
    );
    assert!(f.buf == payload(4, LEN), "the buffer comes back as given");
    assert!(dones(&poll_now(&mut rt, &mut events)).is_empty());
}

/// 100 writes posted at once (more than the kernel buffers hold, so most
/// wait their turn) arrive in order and complete in order.
pub(crate) fn hundred_queued_writes_in_order(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let msgs: Vec<Vec<u8>> = (0..100)
        .map(|i| payload(i, 1000 + i as usize * 97))
        .collect();
    let expected = msgs.concat();
    let ops: Vec<OpId> = msgs
        .iter()
        .map(|m| rt.post_write_kept(&server, m.clone()).unwrap())
        .collect();
    assert_eq!(
        ops.iter().collect::<HashSet<_>>().len(),
        100,
        "op ids are distinct"
    );
    let peer = reader(client, expected.len());

    let mut events = Events::with_capacity(16);
    let mut done = Vec::new();
    let start = Instant::now();
    while done.len() < 100 {
        assert!(start.elapsed() < GUARD, "{} of 100 completed", done.len());
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for d in dones(&listed(&events)) {
            assert_eq!((d.token, d.kind, d.error), (Token(1), OpKind::Write, None));
            done.push(d);
        }
    }
    assert_eq!(
        done.iter().map(|d| d.op).collect::<Vec<_>>(),
        ops,
        "completion order"
    );
    for (d, m) in done.iter().zip(&msgs) {
        assert_eq!(d.bytes, m.len());
        assert!(rt.take_io(d.op).unwrap().buf == *m);
    }
    assert!(
        peer.join().unwrap() == expected,
        "bytes arrive in posting order"
    );
}

/// An empty write completes with 0 bytes: at once on an idle source, and
/// behind the writes posted before it on a busy one.
pub(crate) fn empty_write_completes_after_earlier_writes(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    // Room behind the 4 MiB write (over the default 1 MiB limit, which
    // counts its unwritten bytes) for the writes queued after it.
    rt.set_write_limit(&server, 16 << 20).unwrap();
    let mut events = Events::with_capacity(16);

    let alone = rt.post_write_kept(&server, Vec::new()).unwrap();
    let (d, _) = wait_done(&mut rt, &mut events, alone);
    assert_eq!((d.kind, d.bytes, d.error), (OpKind::Write, 0, None));
    assert!(rt.take_io(alone).unwrap().buf.is_empty());

    const LEN: usize = 4 << 20;
    let big = rt.post_write_kept(&server, payload(5, LEN)).unwrap();
    let empty = rt.post_write_kept(&server, Vec::new()).unwrap();
    let after = rt.post_write_kept(&server, b"after".to_vec()).unwrap();
    assert_eq!(
        dones(&poll_now(&mut rt, &mut events)),
        vec![],
        "nothing can finish before the peer reads"
    );
    let peer = reader(client, LEN + 5);
    let mut order = Vec::new();
    let start = Instant::now();
    while order.len() < 3 {
        assert!(start.elapsed() < GUARD, "completed: {order:?}");
        rt.wait(&mut events, Some(GUARD)).unwrap();
        order.extend(dones(&listed(&events)));
    }
    assert_eq!(
        order
            .iter()
            .map(|d| (d.op, d.bytes, d.error))
            .collect::<Vec<_>>(),
        vec![(big, LEN, None), (empty, 0, None), (after, 5, None)]
    );
    let got = peer.join().unwrap();
    assert!(got[..LEN] == payload(5, LEN)[..] && &got[LEN..] == b"after");
}

/// While writes are queued the runtime uses the source's writability
/// itself: no `WRITABLE` readiness is reported for it until they are done,
/// and then level readiness is back.
pub(crate) fn queued_writes_take_writable_readiness(b: Backend) {
    const LEN: usize = 4 << 20;
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    let mut events = Events::with_capacity(16);
    let writable =
        |e: &Event| matches!(e, Event::Io { token: Token(1), ready } if ready.is_writable());
    wait_until(&mut rt, &mut events, writable);

    let op = rt.post_write_kept(&server, payload(6, LEN)).unwrap();
    let peer = reader(client, LEN);
    let (_, seen) = wait_done(&mut rt, &mut events, op);
    assert_eq!(
        io_for(&seen, Token(1)),
        vec![],
        "readiness reported while writes were queued"
    );
    // Nothing queued now: level writability is reported again, every wait.
    wait_until(&mut rt, &mut events, writable);
    assert!(poll_now(&mut rt, &mut events).iter().any(writable));
    assert!(peer.join().unwrap() == payload(6, LEN));
}

/// Writing to a peer that reset the connection fails, with the bytes that
/// went out before the failure (none here, at most all).
pub(crate) fn write_to_a_reset_peer_fails(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let client = socket2::Socket::from(client);
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client); // RST
    let mut events = Events::with_capacity(16);
    // The reset has arrived once readiness shows it.
    wait_until(
        &mut rt,
        &mut events,
        |e| matches!(e, Event::Io { ready, .. } if ready.is_error() || ready.is_read_closed() || ready.is_write_closed()),
    );
    const LEN: usize = 64 << 10;
    let op = rt.post_write_kept(&server, payload(7, LEN)).unwrap();
    let (d, _) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.token, d.kind), (Token(1), OpKind::Write));
    assert!(
        d.error.is_some(),
        "a write to a reset peer succeeded: {d:?}"
    );
    assert!(d.bytes <= LEN);
    let f = rt.take_io(op).unwrap();
    assert_eq!(f.bytes, d.bytes);
    assert_eq!(f.error.as_ref().map(io::Error::kind), d.error);
    assert!(f.buf == payload(7, LEN), "the buffer comes back as given");
}

/// Writing to a peer that closed (no reset yet) goes on succeeding only
/// until the peer's kernel answers with a reset; then a write fails with
/// the count it wrote.
pub(crate) fn write_to_a_closed_peer_fails(b: Backend) {
    const LEN: usize = 1024;
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    drop(client);
    let mut events = Events::with_capacity(16);
    for attempt in 0..1000 {
        let op = rt
            .post_write_kept(&server, vec![attempt as u8; LEN])
            .unwrap();
        let (d, _) = wait_done(&mut rt, &mut events, op);
        let f = rt.take_io(op).unwrap();
        assert_eq!(
            (f.bytes, f.error.as_ref().map(io::Error::kind)),
            (d.bytes, d.error)
        );
        match d.error {
            None => assert_eq!(d.bytes, LEN, "a write that succeeds is whole"),
            Some(_) => {
                assert!(d.bytes <= LEN, "{d:?}");
                return;
            }
        }
    }
    panic!("1000 writes to a closed peer succeeded");
}

// ---- one OS look per turn ------------------------------------------------------

/// A write that goes out inside `post_write` is delivered by the next
/// `wait`; when the call before it looked at the OS, that `wait` returns it
/// without looking again (one OS call per turn of a post-and-wait loop),
/// and the readiness it left comes with the call after. No call skips two
/// looks in a row.
pub(crate) fn finished_writes_alone_skip_one_os_look(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    rt.register(&client, Token(2), Interest::READABLE).unwrap();
    send(&client, b"x");
    let mut events = Events::with_capacity(16);
    // The server stays readable (level: nobody reads it).
    wait_until(&mut rt, &mut events, |e| {
        matches!(
            e,
            Event::Io {
                token: Token(1),
                ..
            }
        )
    });
    let mut looks_missed = 0;
    for round in 0..20 {
        let op = rt.post_write_kept(&client, vec![b'y']).unwrap();
        rt.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
        let got = listed(&events);
        let done = dones(&got);
        assert_eq!(done.len(), 1, "round {round}: {got:?}");
        assert_eq!((done[0].op, done[0].bytes), (op, 1));
        assert!(rt.take_io(op).is_some());
        if io_for(&got, Token(1)).is_empty() {
            looks_missed += 1;
            // Skipped this time: the next call looks and reports it.
            rt.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
            let got = listed(&events);
            assert!(!io_for(&got, Token(1)).is_empty(), "round {round}: {got:?}");
        }
    }
    assert_eq!(
        looks_missed, 20,
        "every finished-at-once write skipped a look"
    );
}
