//! Completion-mode ("posted") I/O, issue 8: `post_read` / `post_write`,
//! `Event::IoDone`, `take_io`, `cancel_io`, write limits. One suite run
//! unchanged against every backend this platform has, like `contract.rs`:
//! each `fn(Backend)` below becomes one `#[test]` per backend module at the
//! bottom.
//!
//! Everything runs on real loopback sockets; peers are plain blocking
//! `std` sockets on threads, or non-blocking ones the test drives itself.

mod util;

use std::collections::{HashMap, HashSet};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::SockRef;
use uniloop::{Backend, Event, Events, Interest, OpId, OpKind, Runtime, Token};
use util::*;

fn rt(b: Backend) -> Runtime {
    let rt = Runtime::builder().backend(b).build().unwrap();
    assert_eq!(rt.backend(), b);
    rt
}

/// An `Event::IoDone`, taken apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Done {
    token: Token,
    op: OpId,
    kind: OpKind,
    bytes: usize,
    error: Option<ErrorKind>,
}

fn dones(events: &[Event]) -> Vec<Done> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::IoDone {
                token,
                op,
                kind,
                bytes,
                error,
            } => Some(Done {
                token,
                op,
                kind,
                bytes,
                error,
            }),
            _ => None,
        })
        .collect()
}

fn listed(events: &Events) -> Vec<Event> {
    events.iter().copied().collect()
}

/// The readiness events for `token` among `events`.
fn io_for(events: &[Event], token: Token) -> Vec<Event> {
    events
        .iter()
        .copied()
        .filter(|e| matches!(e, Event::Io { token: t, .. } if *t == token))
        .collect()
}

/// Waits (bounded) for the `IoDone` of `op`; checks it came exactly once
/// among the events seen on the way, and returns it with those events.
#[track_caller]
fn wait_done(rt: &mut Runtime, events: &mut Events, op: OpId) -> (Done, Vec<Event>) {
    let seen = wait_until(
        rt,
        events,
        |e| matches!(e, Event::IoDone { op: o, .. } if *o == op),
    );
    let mine: Vec<Done> = dones(&seen).into_iter().filter(|d| d.op == op).collect();
    assert_eq!(mine.len(), 1, "one IoDone for {op:?}: {mine:?}");
    (mine[0], seen)
}

/// Waits (bounded) until every op of `ops` has completed, counting the
/// events in `seen` first; returns their completions in arrival order.
#[track_caller]
fn wait_all(rt: &mut Runtime, events: &mut Events, ops: &[OpId], seen: &[Event]) -> Vec<Done> {
    let mut got: Vec<Done> = dones(seen)
        .into_iter()
        .filter(|d| ops.contains(&d.op))
        .collect();
    let start = Instant::now();
    while got.len() < ops.len() {
        assert!(start.elapsed() < GUARD, "completed: {got:?} of {ops:?}");
        rt.wait(events, Some(GUARD)).unwrap();
        got.extend(
            dones(&listed(events))
                .into_iter()
                .filter(|d| ops.contains(&d.op)),
        );
    }
    assert_eq!(got.len(), ops.len(), "an op completed twice: {got:?}");
    got
}

/// Waits out a short window (a loop timer) and returns every event that
/// came meanwhile. Only for checking that something does *not* happen:
/// no test relies on the window's length to pass.
fn quiet_window(rt: &mut Runtime, events: &mut Events) -> Vec<Event> {
    const KEY: u64 = 0x5175_6965_7400; // "Quiet"
    let id = rt.add_timer(KEY, Duration::from_millis(20), None);
    let mut seen = wait_until(
        rt,
        events,
        |e| matches!(e, Event::Timer { key: KEY, id: i } if *i == id),
    );
    seen.retain(|e| !matches!(e, Event::Timer { key: KEY, .. }));
    seen
}

/// `len` bytes that differ from any shift or other `seed` of themselves, so
/// a lost, repeated or reordered byte shows.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| pattern(seed, i)).collect()
}

fn pattern(seed: u64, i: usize) -> u8 {
    let x = (i as u64 ^ seed.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8 ^ (x >> 29) as u8
}

/// A read buffer: `prefix` followed by spare capacity for `room` bytes.
fn read_buf(prefix: &[u8], room: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(prefix.len() + room);
    buf.extend_from_slice(prefix);
    buf
}

/// Asked-for kernel buffer size of [`small_buffer_pair`].
const SMALL_BUF: usize = 64 << 10;

/// A non-blocking pair `(client, server)` whose kernel buffers are small,
/// so that a write of a few MiB stays pending until the peer reads.
#[track_caller]
fn small_buffer_pair() -> (TcpStream, TcpStream) {
    let (client, server) = tcp_pair();
    for s in [&client, &server] {
        let s = SockRef::from(s);
        s.set_send_buffer_size(SMALL_BUF).unwrap();
        s.set_recv_buffer_size(SMALL_BUF).unwrap();
    }
    (client, server)
}

/// A generous bound on how many written bytes the kernels of a
/// [`small_buffer_pair`] can hold between the writer and the reading
/// application: four times what they report (Linux reports double what was
/// asked; headers and segments in flight come on top), at least 1 MiB.
fn in_flight_bound(writer: &TcpStream, reader: &TcpStream) -> usize {
    let snd = SockRef::from(writer).send_buffer_size().unwrap();
    let rcv = SockRef::from(reader).recv_buffer_size().unwrap();
    (4 * (snd + rcv)).max(1 << 20)
}

/// Makes `s` blocking, with [`GUARD`] as a read timeout so a missing byte
/// fails the test instead of hanging it.
#[track_caller]
fn blocking(s: TcpStream) -> TcpStream {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s.set_write_timeout(Some(GUARD)).unwrap();
    s
}

/// A thread that reads exactly `len` bytes from `peer` (blocking, 16 KiB
/// at a time) and returns them.
fn reader(peer: TcpStream, len: usize) -> JoinHandle<Vec<u8>> {
    let mut peer = blocking(peer);
    std::thread::spawn(move || {
        let mut got = vec![0u8; len];
        let mut at = 0;
        while at < len {
            let end = len.min(at + (16 << 10));
            match peer.read(&mut got[at..end]) {
                Ok(0) => panic!("EOF after {at} of {len} bytes"),
                Ok(n) => at += n,
                Err(e) => panic!("read failed after {at} of {len} bytes: {e}"),
            }
        }
        got
    })
}

/// Posts reads on `s` until one completes with 0 bytes or an error; returns
/// the bytes read before that and the last completion.
#[track_caller]
fn read_to_end(rt: &mut Runtime, events: &mut Events, s: &TcpStream) -> (Vec<u8>, Done) {
    let mut data = Vec::new();
    loop {
        let op = rt.post_read(s, Vec::with_capacity(4096)).unwrap();
        let (d, _) = wait_done(rt, events, op);
        let f = rt.take_io(op).expect("result of a delivered op");
        assert_eq!((f.kind, f.bytes), (OpKind::Read, d.bytes));
        assert_eq!(f.buf.len(), d.bytes);
        if d.bytes == 0 || d.error.is_some() {
            return (data, d);
        }
        data.extend_from_slice(&f.buf);
    }
}

// ---- an echo server on posted I/O only ---------------------------------

/// 64 blocking clients on threads, each doing round trips of varying
/// length; the server accepts through readiness and then moves every byte
/// with posted reads and writes, reusing each connection's one buffer.
fn echo_server_64_clients(b: Backend) {
    const CLIENTS: usize = 64;
    // Wine relays each overlapped operation through its server process, so
    // a round trip costs several times what it does natively; fewer rounds
    // keep the Windows run to a few seconds.
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
                            rt.post_read(&s, Vec::with_capacity(4096)).unwrap();
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
                            rt.post_write(s, f.buf).unwrap();
                        }
                        OpKind::Write => {
                            assert_eq!(f.buf.len(), bytes, "a write completes whole");
                            let mut buf = f.buf;
                            buf.clear();
                            rt.post_read(s, buf).unwrap();
                        }
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
fn four_mib_write_to_a_slow_reader(b: Backend) {
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
            got
        })
    };

    let op = rt.post_write(&server, payload(4, LEN)).unwrap();
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
    assert_eq!(peer.join().unwrap(), LEN);
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
fn hundred_queued_writes_in_order(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let msgs: Vec<Vec<u8>> = (0..100)
        .map(|i| payload(i, 1000 + i as usize * 97))
        .collect();
    let expected = msgs.concat();
    let ops: Vec<OpId> = msgs
        .iter()
        .map(|m| rt.post_write(&server, m.clone()).unwrap())
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
fn empty_write_completes_after_earlier_writes(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(16);

    let alone = rt.post_write(&server, Vec::new()).unwrap();
    let (d, _) = wait_done(&mut rt, &mut events, alone);
    assert_eq!((d.kind, d.bytes, d.error), (OpKind::Write, 0, None));
    assert!(rt.take_io(alone).unwrap().buf.is_empty());

    const LEN: usize = 4 << 20;
    let big = rt.post_write(&server, payload(5, LEN)).unwrap();
    let empty = rt.post_write(&server, Vec::new()).unwrap();
    let after = rt.post_write(&server, b"after".to_vec()).unwrap();
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
fn queued_writes_take_writable_readiness(b: Backend) {
    const LEN: usize = 4 << 20;
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    let mut events = Events::with_capacity(16);
    let writable =
        |e: &Event| matches!(e, Event::Io { token: Token(1), ready } if ready.is_writable());
    wait_until(&mut rt, &mut events, writable);

    let op = rt.post_write(&server, payload(6, LEN)).unwrap();
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
fn write_to_a_reset_peer_fails(b: Backend) {
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
    let op = rt.post_write(&server, payload(7, LEN)).unwrap();
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
fn write_to_a_closed_peer_fails(b: Backend) {
    const LEN: usize = 1024;
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    drop(client);
    let mut events = Events::with_capacity(16);
    for attempt in 0..1000 {
        let op = rt.post_write(&server, vec![attempt as u8; LEN]).unwrap();
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

// ---- reads ------------------------------------------------------------------

/// The peer's FIN completes a read with 0 bytes and no error, after the
/// data sent before it; it does so again for the next read.
fn peer_fin_completes_read_as_closed(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    send(&client, b"last words");
    client.shutdown(Shutdown::Write).unwrap();
    let mut events = Events::with_capacity(16);
    let (data, d) = read_to_end(&mut rt, &mut events, &server);
    assert_eq!(data, b"last words");
    assert_eq!((d.token, d.bytes, d.error), (Token(1), 0, None));
    let (data, d) = read_to_end(&mut rt, &mut events, &server);
    assert_eq!((data.len(), d.bytes, d.error), (0, 0, None), "EOF stays");
}

/// A reset completes a pending read with an error (on Windows under Wine a
/// reset may read as end of stream, shared/WINE.md).
fn peer_reset_completes_read_with_error(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let op = rt.post_read(&server, read_buf(b"", 64)).unwrap();
    let mut events = Events::with_capacity(16);
    assert_eq!(dones(&poll_now(&mut rt, &mut events)), vec![]);
    let client = socket2::Socket::from(client);
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client); // RST
    let (d, _) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.token, d.kind, d.bytes), (Token(1), OpKind::Read, 0));
    match d.error {
        Some(kind) => assert!(
            matches!(
                kind,
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "{kind:?}"
        ),
        None => assert!(cfg!(windows), "a reset read as end of stream"),
    }
    let f = rt.take_io(op).unwrap();
    assert_eq!(f.error.as_ref().map(io::Error::kind), d.error);
    assert!(f.buf.is_empty());
}

/// A read posted on a source that already has data completes in the very
/// next wait, even a zero-timeout one, and the readiness is not reported
/// beside it.
fn read_with_data_waiting_completes_at_once(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    send(&client, b"ready");
    let mut events = Events::with_capacity(16);
    // The data is there once readiness says so.
    wait_until(
        &mut rt,
        &mut events,
        |e| matches!(e, Event::Io { token: Token(1), ready } if ready.is_readable()),
    );
    let op = rt.post_read(&server, read_buf(b"", 64)).unwrap();
    let got = poll_now(&mut rt, &mut events);
    assert_eq!(
        dones(&got),
        vec![Done {
            token: Token(1),
            op,
            kind: OpKind::Read,
            bytes: 5,
            error: None
        }]
    );
    assert_eq!(io_for(&got, Token(1)), vec![], "reported twice");
    assert_eq!(rt.take_io(op).unwrap().buf, b"ready");
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// 10,000 sockets (5,000 connected pairs, both ends), each with a read
/// posted; one gets data: exactly one `IoDone`, and nothing else.
fn ten_thousand_posted_reads_one_active(b: Backend) {
    const N: usize = 10_000;
    let limit = raise_fd_limit(N as u64 + 512);
    let pairs_wanted = N.min(limit as usize - 256) / 2;
    assert!(
        pairs_wanted >= 500,
        "fd limit too low ({limit}) for this test"
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sockets: Vec<TcpStream> = (0..pairs_wanted)
        .flat_map(|_| {
            let client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            [client, server]
        })
        .collect();
    let mut rt = rt(b);
    let mut ops = Vec::with_capacity(sockets.len());
    for (i, s) in sockets.iter().enumerate() {
        s.set_nonblocking(true).unwrap();
        rt.register(s, Token(i as u64), Interest::READABLE).unwrap();
        ops.push(rt.post_read(s, read_buf(b"", 16)).unwrap());
    }
    assert_eq!(rt.registered(), sockets.len());
    let mut events = Events::with_capacity(256);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);

    // Even indices are clients, each followed by its server.
    let active = sockets.len() / 2 + 17;
    let active = active | 1;
    send(&sockets[active - 1], b"ping");
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::IoDone { .. }));
    assert_eq!(
        seen,
        vec![Event::IoDone {
            token: Token(active as u64),
            op: ops[active],
            kind: OpKind::Read,
            bytes: 4,
            error: None
        }]
    );
    assert_eq!(
        poll_now(&mut rt, &mut events),
        vec![],
        "the rest still wait"
    );
    assert_eq!(rt.take_io(ops[active]).unwrap().buf, b"ping");
    for (i, &op) in ops.iter().enumerate().filter(|&(i, _)| i != active) {
        let f = rt
            .cancel_io(op)
            .unwrap_or_else(|| panic!("read {i} was lost"));
        assert_eq!((f.kind, f.bytes, f.buf.len()), (OpKind::Read, 0, 0));
    }
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// A read takes the source's readability while it is posted: no
/// `READABLE` readiness is reported beside the completion. With no read
/// posted and data left, level readiness is reported again, every wait.
fn posted_read_takes_readable_readiness(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(16);
    // Room for 4 of the 10 bytes.
    let op = rt.post_read(&server, read_buf(b"", 4)).unwrap();
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    send(&client, b"0123456789");
    let (d, seen) = wait_done(&mut rt, &mut events, op);
    assert_eq!(io_for(&seen, Token(1)), vec![], "reported twice");
    assert!((1..=4).contains(&d.bytes), "{d:?}");
    let mut data = rt.take_io(op).unwrap().buf;

    // No read posted, bytes left: readiness as usual, on every wait.
    let readable =
        |e: &Event| matches!(e, Event::Io { token: Token(1), ready } if ready.is_readable());
    wait_until(&mut rt, &mut events, readable);
    assert!(poll_now(&mut rt, &mut events).iter().any(readable));
    assert!(poll_now(&mut rt, &mut events).iter().any(readable));

    // Posted again, the read has it: it completes, nothing else reported.
    let op = rt.post_read(&server, read_buf(b"", 64)).unwrap();
    let got = poll_now(&mut rt, &mut events);
    assert_eq!(io_for(&got, Token(1)), vec![], "reported twice");
    assert_eq!(dones(&got).len(), 1);
    data.extend(rt.take_io(op).unwrap().buf);
    assert_eq!(data, b"0123456789");
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// A read posted on a source registered for writability only still
/// completes: the runtime watches readability for it.
fn read_on_a_source_registered_writable_only(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::WRITABLE).unwrap();
    let op = rt.post_read(&server, read_buf(b"", 64)).unwrap();
    send(&client, b"hi");
    let mut events = Events::with_capacity(16);
    let (d, seen) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.bytes, d.error), (2, None));
    assert!(
        io_for(&seen, Token(1))
            .iter()
            .all(|e| matches!(e, Event::Io { ready, .. } if !ready.is_readable())),
        "readability reported without READABLE interest: {seen:?}"
    );
}

/// `IoDone` carries the source's token as it is when the op completes.
fn io_done_carries_the_current_token(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let op = rt.post_read(&server, read_buf(b"", 64)).unwrap();
    rt.reregister(&server, Token(2), Interest::READABLE)
        .unwrap();
    send(&client, b"x");
    let (d, _) = wait_done(&mut rt, &mut Events::with_capacity(16), op);
    assert_eq!((d.token, d.bytes), (Token(2), 1));
}

// ---- results: take_io ------------------------------------------------------

/// `take_io` hands a finished op's buffer over once: a read's buffer has
/// the bytes appended after what it held; a write's comes back as given.
fn take_io_hands_the_result_over_once(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(16);

    let read = rt.post_read(&server, read_buf(b"ab", 64)).unwrap();
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

    let write = rt.post_write(&server, b"xyz".to_vec()).unwrap();
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
        .map(|_| rt.post_write(&server, vec![0]).unwrap())
        .collect();
    let all: HashSet<OpId> = later.iter().copied().chain([read, write]).collect();
    assert_eq!(all.len(), 12);
}

// ---- cancel and deregister -------------------------------------------------

/// `cancel_io` on pending ops hands their buffers back (with the bytes done
/// so far) and silences them: nothing is reported for them afterwards, and
/// data arriving later is not swallowed by a cancelled read.
fn cancel_pending_ops(b: Backend) {
    const LEN: usize = 4 << 20;
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let read = rt.post_read(&server, read_buf(b"kept", 64)).unwrap();
    let write = rt.post_write(&server, payload(8, LEN)).unwrap();
    let queued = rt.post_write(&server, b"queued".to_vec()).unwrap();
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
fn cancel_just_finished_ops(b: Backend) {
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
    let read = rt.post_read(&server, read_buf(b"", 64)).unwrap();
    let f = rt.cancel_io(read).unwrap();
    assert_eq!((f.kind, f.error.is_none()), (OpKind::Read, true));
    assert_eq!(f.buf.len(), f.bytes);
    let mut all = f.buf;
    all.extend(drain(&server));
    assert_eq!(all, b"early", "in the buffer or still in the socket");

    let write = rt.post_write(&server, b"hello".to_vec()).unwrap();
    let f = rt.cancel_io(write).unwrap();
    assert_eq!(
        (f.kind, f.error.is_none(), &f.buf[..]),
        (OpKind::Write, true, &b"hello"[..])
    );
    assert!(f.bytes <= 5);
    let marker = rt.post_write(&server, b"|end".to_vec()).unwrap();
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
fn deregister_with_ops_in_flight(b: Backend) {
    const LEN: usize = 4 << 20;
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let read = rt.post_read(&server, read_buf(b"", 64)).unwrap();
    let write = rt.post_write(&server, payload(9, LEN)).unwrap();
    let queued = rt.post_write(&server, b"tail".to_vec()).unwrap();
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
    let op = rt.post_read(&server, read_buf(b"", 64)).unwrap();
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
fn capacity_one_hundred_writes_in_order(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let ops: Vec<OpId> = (0..100u8)
        .map(|i| rt.post_write(&server, vec![i; 10]).unwrap())
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
fn capacity_one_hundred_reads_in_order(b: Backend) {
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
        .map(|(_, server)| rt.post_read(server, read_buf(b"", 8)).unwrap())
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

// ---- bad input -------------------------------------------------------------

/// Posting on a source that is not registered: `NotFound`, and the buffer
/// comes back whole. `OpError` converts into `io::Error` for `?`, and its
/// `Debug` does not print the buffer.
fn post_on_an_unregistered_source(b: Backend) {
    fn via_question_mark(rt: &mut Runtime, s: &TcpStream) -> io::Result<OpId> {
        Ok(rt.post_read(s, Vec::with_capacity(1))?)
    }
    let mut rt = rt(b);
    let (_client, server) = tcp_pair();
    let err = rt.post_read(&server, read_buf(b"mine", 64)).unwrap_err();
    assert_eq!(
        (err.kind(), err.error().kind()),
        (ErrorKind::NotFound, ErrorKind::NotFound)
    );
    let back = err.into_buf();
    assert_eq!(back, b"mine");
    assert!(back.capacity() >= 68);

    let err = rt.post_write(&server, vec![7; 1 << 20]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!err.to_string().is_empty());
    let debug = format!("{err:?}");
    assert!(
        debug.len() < 500,
        "Debug prints the buffer: {} chars",
        debug.len()
    );
    let (e, back) = err.into_parts();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(back == vec![7; 1 << 20]);

    assert_eq!(
        via_question_mark(&mut rt, &server).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        rt.set_write_limit(&server, 10).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Deregistered is unregistered.
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    rt.deregister(&server).unwrap();
    let err = rt.post_write(&server, b"w".to_vec()).unwrap_err();
    assert_eq!(
        (err.kind(), err.into_buf()),
        (ErrorKind::NotFound, b"w".to_vec())
    );
    let mut events = Events::with_capacity(16);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// One read at a time per source: a second is `AlreadyExists` (buffer
/// back), the first is unaffected, and once it has completed the next read
/// is accepted. Writes are not limited by a posted read.
fn second_read_while_one_is_posted(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let first = rt.post_read(&server, read_buf(b"", 64)).unwrap();
    let err = rt.post_read(&server, read_buf(b"second", 64)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.into_buf(), b"second");
    let w1 = rt.post_write(&server, b"a".to_vec()).unwrap();
    let w2 = rt.post_write(&server, b"b".to_vec()).unwrap();

    send(&client, b"x");
    let mut events = Events::with_capacity(16);
    let (d, seen) = wait_done(&mut rt, &mut events, first);
    assert_eq!((d.bytes, d.error), (1, None));
    assert_eq!(rt.take_io(first).unwrap().buf, b"x");
    let writes = wait_all(&mut rt, &mut events, &[w1, w2], &seen);
    assert_eq!(
        writes.iter().map(|d| d.op).collect::<Vec<_>>(),
        vec![w1, w2]
    );

    let next = rt.post_read(&server, read_buf(b"", 64)).unwrap();
    assert_eq!(rt.cancel_io(next).unwrap().buf, b"");
    let again = rt.post_read(&server, read_buf(b"", 64));
    assert!(again.is_ok(), "a cancelled read leaves room for the next");
}

/// A read buffer with no spare capacity: `InvalidInput`, the buffer comes
/// back as it was, and no read is left posted.
fn read_buffer_without_spare_capacity(b: Backend) {
    let mut rt = rt(b);
    let (_client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut full = read_buf(b"12345678", 0);
    while full.len() < full.capacity() {
        full.push(b'x');
    }
    for buf in [Vec::new(), full] {
        let before = buf.clone();
        let err = rt.post_read(&server, buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.into_buf(), before);
    }
    assert!(rt.post_read(&server, read_buf(b"", 8)).is_ok());
}

/// The write limit: a write is refused with `WouldBlock` (buffer back) when
/// what is queued and unwritten plus it would pass the limit; a write on a
/// source with nothing queued is accepted whatever its size. The limit is
/// set per source, or for new registrations through the builder.
fn write_limit_is_would_block(b: Backend) {
    const LEN: usize = 4 << 20;
    let mut rt = rt(b);
    let (client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    rt.set_write_limit(&server, 1000).unwrap();
    let big = rt
        .post_write(&server, payload(10, LEN))
        .expect("nothing queued: accepted over the limit");
    let err = rt.post_write(&server, vec![1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert_eq!(err.into_buf(), vec![1]);
    let peer = reader(client, LEN + 1000);
    let mut events = Events::with_capacity(16);
    let (d, _) = wait_done(&mut rt, &mut events, big);
    assert_eq!((d.bytes, d.error), (LEN, None));
    let up_to = rt.post_write(&server, vec![2; 1000]).unwrap();
    wait_done(&mut rt, &mut events, up_to);
    let got = peer.join().unwrap();
    assert!(got[..LEN] == payload(10, LEN)[..] && got[LEN..] == [2; 1000]);

    // The builder's limit applies to new registrations.
    let mut rt = Runtime::builder()
        .backend(b)
        .write_limit(16)
        .build()
        .unwrap();
    let (_client, server) = small_buffer_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    rt.post_write(&server, payload(11, LEN)).unwrap();
    let err = rt.post_write(&server, vec![3; 17]).unwrap_err();
    assert_eq!(
        (err.kind(), err.into_buf()),
        (ErrorKind::WouldBlock, vec![3; 17])
    );
    rt.set_write_limit(&server, 2 * LEN).unwrap();
    assert!(rt.post_write(&server, vec![3; 17]).is_ok(), "raised limit");
}

/// A registered fd closed behind the runtime's back (a dup registered, then
/// closed without deregistering): posting on it must not succeed silently:
/// either the post is refused with the OS error or the op completes with
/// one.
#[cfg(unix)]
fn post_on_a_closed_fd(b: Backend) {
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
    let mut rt = rt(b);
    let (_client, server) = tcp_pair();
    let dup = server.as_fd().try_clone_to_owned().unwrap();
    let raw = dup.as_raw_fd();
    rt.register(&dup, Token(1), Interest::READABLE).unwrap();
    drop(dup);
    // SAFETY: `raw` is closed, against `borrow_raw`'s rule that it stay
    // open; that is the point of the test. The runtime only hands the
    // number to syscalls, which fail with EBADF. The number cannot be given
    // to anything else meanwhile: this test runs alone (`exclusive` below),
    // so no other test in the process opens a descriptor.
    let closed = unsafe { BorrowedFd::borrow_raw(raw) };
    let mut events = Events::with_capacity(16);
    fn check(rt: &mut Runtime, events: &mut Events, r: Result<OpId, uniloop::OpError>) {
        match r {
            Err(e) => {
                assert_ne!(e.kind(), ErrorKind::NotFound, "it is registered");
                assert!(e.into_buf().is_empty());
            }
            Ok(op) => {
                let (d, _) = wait_done(rt, events, op);
                assert!(d.error.is_some(), "{d:?}");
            }
        }
    }
    let r = rt.post_read(&closed, read_buf(b"", 16));
    check(&mut rt, &mut events, r);
    let r = rt.post_write(&closed, Vec::new());
    check(&mut rt, &mut events, r);
    let _ = rt.deregister(&closed); // the OS may complain; it is gone anyway
    assert_eq!(rt.registered(), 0);
}

// ---- the suite ----------------------------------------------------------------

/// Tests share this lock; one that closes a registered descriptor behind the
/// runtime's back takes it alone, so that no other test is handed the
/// closed number while the runtime still uses it.
static FDS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(unix)]
fn exclusive() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(PoisonError::into_inner)
}

macro_rules! contract_suite {
    ($($test:ident)* ; unix_exclusive: $($alone:ident)*) => {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        mod epoll {
            $( #[test] fn $test() { let _fds = super::shared(); super::$test(uniloop::Backend::Epoll) } )*
            $( #[test] fn $alone() { let _fds = super::exclusive(); super::$alone(uniloop::Backend::Epoll) } )*
        }
        #[cfg(unix)]
        mod poll {
            $( #[test] fn $test() { let _fds = super::shared(); super::$test(uniloop::Backend::Poll) } )*
            $( #[test] fn $alone() { let _fds = super::exclusive(); super::$alone(uniloop::Backend::Poll) } )*
        }
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd", target_os = "dragonfly"))]
        mod kqueue {
            $( #[test] fn $test() { let _fds = super::shared(); super::$test(uniloop::Backend::Kqueue) } )*
            $( #[test] fn $alone() { let _fds = super::exclusive(); super::$alone(uniloop::Backend::Kqueue) } )*
        }
        #[cfg(windows)]
        mod iocp {
            $( #[test] fn $test() { let _fds = super::shared(); super::$test(uniloop::Backend::Iocp) } )*
        }
    };
}

contract_suite! {
    echo_server_64_clients
    four_mib_write_to_a_slow_reader
    hundred_queued_writes_in_order
    empty_write_completes_after_earlier_writes
    queued_writes_take_writable_readiness
    write_to_a_reset_peer_fails
    write_to_a_closed_peer_fails
    peer_fin_completes_read_as_closed
    peer_reset_completes_read_with_error
    read_with_data_waiting_completes_at_once
    ten_thousand_posted_reads_one_active
    posted_read_takes_readable_readiness
    read_on_a_source_registered_writable_only
    io_done_carries_the_current_token
    take_io_hands_the_result_over_once
    cancel_pending_ops
    cancel_just_finished_ops
    deregister_with_ops_in_flight
    capacity_one_hundred_writes_in_order
    capacity_one_hundred_reads_in_order
    post_on_an_unregistered_source
    second_read_while_one_is_posted
    read_buffer_without_spare_capacity
    write_limit_is_would_block
    ; unix_exclusive:
    post_on_a_closed_fd
}
