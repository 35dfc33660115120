//! Receive streams: `post_recv_stream`, one `IoDone` per chunk in the
//! runtime's buffers, `take_recv` / `give_back`, and the stream's end.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use uniloop::{AsSource, Backend, Event, Events, Interest, OpId, OpKind, RecvBuf, Runtime, Token};

use crate::support::*;
use crate::util::*;

/// `Runtime::post_recv_stream` for this file's sockets.
trait StreamKept {
    fn stream_kept<S: AsSource + ?Sized>(&mut self, s: &S) -> std::io::Result<OpId>;
}

// SAFETY: every test here keeps the sockets it posts on open until after
// its last call on the runtime that posted (they are declared before the
// runtime or live to the test's end), or deregisters them first.
impl StreamKept for Runtime {
    fn stream_kept<S: AsSource + ?Sized>(&mut self, s: &S) -> std::io::Result<OpId> {
        // SAFETY: see the impl.
        unsafe { self.post_recv_stream(s) }
    }
}

fn rt_with_buffers(b: Backend, count: usize, size: usize) -> Runtime {
    let rt = Runtime::builder()
        .backend(b)
        .recv_buffers(count, size)
        .build()
        .unwrap();
    assert_eq!(rt.backend(), b);
    rt
}

/// What the loop saw of one stream.
#[derive(Default)]
struct Seen {
    data: Vec<u8>,
    end: Option<Option<ErrorKind>>,
}

/// Handles one batch: every chunk is checked against its event, appended,
/// and given back (or, every `drop_every`th, dropped); every end is taken.
/// Returns the tokens of the readiness events that came.
#[track_caller]
fn absorb(
    rt: &mut Runtime,
    events: &Events,
    seen: &mut HashMap<OpId, Seen>,
    drop_every: usize,
) -> Vec<Token> {
    let mut chunks = 0;
    let mut ready = Vec::new();
    for e in listed(events) {
        match e {
            Event::IoDone {
                op,
                kind,
                bytes,
                error,
                ..
            } => {
                assert_eq!(kind, OpKind::RecvStream, "{e:?}");
                let s = seen.get_mut(&op).expect("a stream of this test");
                assert!(s.end.is_none(), "an event after the end: {e:?}");
                if bytes == 0 || error.is_some() {
                    assert!(rt.take_recv(op).is_none(), "a chunk at the end");
                    let f = rt.take_io(op).expect("the stream's end");
                    assert_eq!(f.kind, OpKind::RecvStream);
                    assert_eq!(f.error.as_ref().map(|e| e.kind()), error);
                    assert!(rt.take_io(op).is_none(), "the end taken twice");
                    s.end = Some(error);
                } else {
                    let chunk = rt.take_recv(op).expect("the chunk of the event");
                    assert_eq!(chunk.len(), bytes);
                    s.data.extend_from_slice(&chunk);
                    chunks += 1;
                    if drop_every > 0 && chunks % drop_every == 0 {
                        drop(chunk);
                    } else {
                        rt.give_back(chunk);
                    }
                }
            }
            Event::Io { token, .. } => ready.push(token),
            _ => {}
        }
    }
    ready
}

/// Many connections send at once into a pool far smaller than what they
/// send: every connection's bytes arrive complete and in order, chunk by
/// chunk, then its end; no readiness is reported for the streamed sockets.
pub(crate) fn recv_streams_from_many_connections(b: Backend) {
    const C: usize = 40;
    const LEN: usize = 48 << 10;
    let mut pairs = Vec::new();
    for _ in 0..C {
        pairs.push(tcp_pair());
    }
    let mut rt = rt_with_buffers(b, 16, 2048);
    let mut seen = HashMap::new();
    let mut ops = Vec::new();
    for (i, (_, server)) in pairs.iter().enumerate() {
        rt.register(server, Token(i as u64), Interest::READABLE)
            .unwrap();
        let op = rt.stream_kept(server).unwrap();
        seen.insert(op, Seen::default());
        ops.push(op);
    }
    let clients: Vec<TcpStream> = pairs
        .iter()
        .map(|(c, _)| blocking(c.try_clone().unwrap()))
        .collect();
    let writer = std::thread::spawn(move || {
        // Round-robin, in pieces, so the streams interleave.
        for at in (0..LEN).step_by(4096) {
            for (i, mut c) in clients.iter().enumerate() {
                let p = payload(i as u64, LEN);
                c.write_all(&p[at..LEN.min(at + 4096)]).unwrap();
            }
        }
        for c in &clients {
            c.shutdown(Shutdown::Write).unwrap();
        }
    });
    let mut events = Events::with_capacity(64);
    let start = Instant::now();
    while seen.values().any(|s| s.end.is_none()) {
        assert!(start.elapsed() < GUARD * 2, "streams did not end");
        rt.wait(&mut events, Some(GUARD)).unwrap();
        let ended: Vec<bool> = ops.iter().map(|op| seen[op].end.is_some()).collect();
        for Token(t) in absorb(&mut rt, &events, &mut seen, 7) {
            // Once its end is taken, the socket's readability is the
            // caller's again (it is at end of stream: readable).
            assert!(ended[t as usize], "a live stream's readability reported");
        }
    }
    writer.join().unwrap();
    for (i, op) in ops.iter().enumerate() {
        let s = &seen[op];
        assert_eq!(s.end, Some(None), "connection {i} ended with an error");
        assert!(
            s.data == payload(i as u64, LEN),
            "connection {i}: bytes differ"
        );
    }
}

/// A pool of four buffers, and a loop that holds every chunk it is handed:
/// once the four are out, nothing more arrives (the data waits in the
/// sockets); giving them back (or dropping them) resumes the streams, and
/// in the end every byte has arrived, in order.
pub(crate) fn running_out_of_buffers_loses_nothing(b: Backend) {
    const LEN: usize = 24 << 10;
    const BUFS: usize = 4;
    let (c1, s1) = tcp_pair();
    let (c2, s2) = tcp_pair();
    let mut rt = rt_with_buffers(b, BUFS, 1024);
    rt.register(&s1, Token(1), Interest::READABLE).unwrap();
    rt.register(&s2, Token(2), Interest::READABLE).unwrap();
    let ops = [rt.stream_kept(&s1).unwrap(), rt.stream_kept(&s2).unwrap()];
    let writers: Vec<_> = [c1, c2]
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = blocking(c);
            std::thread::spawn(move || {
                c.write_all(&payload(40 + i as u64, LEN)).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                c
            })
        })
        .collect();
    let mut data = [Vec::new(), Vec::new()];
    let mut ended = [false, false];
    let mut held: Vec<RecvBuf> = Vec::new();
    let mut events = Events::with_capacity(64);
    let mut stalls = 0;
    let start = Instant::now();
    while !(ended[0] && ended[1]) {
        assert!(start.elapsed() < GUARD * 2, "streams did not end");
        if held.len() == BUFS {
            // Every buffer is out: the streams are stopped.
            let quiet = quiet_window(&mut rt, &mut events);
            assert!(
                dones(&quiet).is_empty(),
                "a chunk with every buffer out: {quiet:?}"
            );
            stalls += 1;
            for (i, chunk) in held.drain(..).enumerate() {
                if i % 2 == 0 {
                    rt.give_back(chunk);
                } else {
                    drop(chunk);
                }
            }
        }
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for d in dones(&listed(&events)) {
            let i = ops.iter().position(|&o| o == d.op).expect("a stream");
            assert_eq!(d.kind, OpKind::RecvStream);
            assert!(!ended[i], "an event after the end");
            if d.bytes == 0 {
                assert_eq!(d.error, None);
                assert!(rt.take_io(d.op).is_some());
                ended[i] = true;
            } else {
                let chunk = rt.take_recv(d.op).expect("a chunk");
                assert_eq!(chunk.len(), d.bytes);
                data[i].extend_from_slice(&chunk);
                held.push(chunk);
            }
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert!(stalls > 0, "the pool never ran out");
    for (i, d) in data.iter().enumerate() {
        assert!(
            *d == payload(40 + i as u64, LEN),
            "stream {i}: bytes differ"
        );
    }
}

/// A stream's end: the peer's FIN is a last event with 0 bytes and no
/// error, after the data; a reset is an error (or, under Wine, an end).
/// A new stream may be posted on the socket after the end is taken.
pub(crate) fn recv_stream_ends_at_eof_and_reset(b: Backend) {
    let (client, server) = tcp_pair();
    let mut rt = rt_with_buffers(b, 8, 512);
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let op = rt.stream_kept(&server).unwrap();
    send(&client, b"abc");
    client.shutdown(Shutdown::Write).unwrap();
    let mut events = Events::with_capacity(16);
    let mut seen = HashMap::from([(op, Seen::default())]);
    let start = Instant::now();
    while seen[&op].end.is_none() {
        assert!(start.elapsed() < GUARD, "no end");
        rt.wait(&mut events, Some(GUARD)).unwrap();
        absorb(&mut rt, &events, &mut seen, 0);
    }
    assert_eq!(seen[&op].data, b"abc");
    assert_eq!(seen[&op].end, Some(None));
    // Again: the socket stays at end of stream.
    let again = rt.stream_kept(&server).unwrap();
    assert_ne!(again, op);
    let (d, _) = wait_done(&mut rt, &mut events, again);
    assert_eq!((d.bytes, d.error), (0, None));
    assert!(rt.take_io(again).is_some());

    // A reset.
    let (client, server) = tcp_pair();
    rt.register(&server, Token(2), Interest::READABLE).unwrap();
    let op = rt.stream_kept(&server).unwrap();
    socket2::SockRef::from(&client)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(client);
    let (d, _) = wait_done(&mut rt, &mut events, op);
    assert_eq!(d.bytes, 0);
    assert!(
        matches!(d.error, Some(ErrorKind::ConnectionReset) | None),
        "{d:?}"
    );
    let f = rt.take_io(op).unwrap();
    assert_eq!(f.error.map(|e| e.kind()), d.error);
}

/// The descriptors this process has open, on Linux (`/proc/self/fd`);
/// `None` elsewhere.
fn open_fds() -> Option<usize> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count)
}

/// Cancelling a stream, deregistering a socket with one, and dropping
/// the runtime with one, all while data is arriving, end them cleanly: no
/// event for a cancelled or deregistered stream afterwards, the pool gets
/// its buffers back (a new stream then receives far more than the pool
/// holds), and no descriptor is left open.
pub(crate) fn cancel_deregister_drop_with_data_in_flight(b: Backend) {
    let before = open_fds();
    {
        const BUFS: usize = 4;
        let mut rt = rt_with_buffers(b, BUFS, 256);
        let pairs: Vec<_> = (0..3).map(|_| tcp_pair()).collect();
        let mut ops = Vec::new();
        for (i, (client, server)) in pairs.iter().enumerate() {
            rt.register(server, Token(i as u64), Interest::READABLE)
                .unwrap();
            ops.push(rt.stream_kept(server).unwrap());
            // More than the pool holds: some chunks wait to be taken,
            // some data waits in the socket.
            send(client, &payload(i as u64, 4096));
        }
        let mut events = Events::with_capacity(64);
        wait_for(&mut rt, &mut events, ops[0]);
        // Cancel the first: its chunks go back to the pool.
        let f = rt.cancel_io(ops[0]).expect("a live stream");
        assert_eq!((f.kind, f.bytes), (OpKind::RecvStream, 0));
        assert!(rt.cancel_io(ops[0]).is_none());
        assert!(rt.take_recv(ops[0]).is_none());
        assert!(rt.take_io(ops[0]).is_none());
        // Deregister the second.
        rt.deregister(&pairs[1].1).unwrap();
        assert!(rt.take_recv(ops[1]).is_none());
        let quiet = quiet_window(&mut rt, &mut events);
        for d in dones(&quiet) {
            assert!(
                d.op != ops[0] && d.op != ops[1],
                "an event after cancel / deregister: {d:?}"
            );
        }
        // The third, cancelled with its chunks untaken: they go back too.
        rt.cancel_io(ops[2]).expect("a live stream");
        // A new stream receives many times the pool: every buffer came
        // back.
        let (client, server) = tcp_pair();
        rt.register(&server, Token(9), Interest::READABLE).unwrap();
        let op = rt.stream_kept(&server).unwrap();
        let len = 64 * BUFS * 256;
        let writer = {
            let mut c = blocking(client);
            std::thread::spawn(move || {
                c.write_all(&payload(99, len)).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                c
            })
        };
        let mut seen = HashMap::from([(op, Seen::default())]);
        let start = Instant::now();
        while seen[&op].end.is_none() {
            assert!(start.elapsed() < GUARD, "stalled: the pool lost buffers");
            rt.wait(&mut events, Some(GUARD)).unwrap();
            absorb(&mut rt, &events, &mut seen, 3);
        }
        assert!(seen[&op].data == payload(99, len));
        let _client = writer.join().unwrap();
        // Dropped with a stream in flight on the first socket (a new
        // one) and data arriving.
        let again = rt.stream_kept(&pairs[0].1).unwrap();
        send(&pairs[0].0, &payload(5, 2048));
        wait_for(&mut rt, &mut events, again);
        let kept = rt.take_recv(again).expect("a chunk");
        drop(rt);
        // A chunk outlives its runtime: still readable, then dropped.
        assert!(!kept.is_empty());
        drop(kept);
        drop(server);
        drop(pairs);
    }
    assert_eq!(open_fds(), before, "a descriptor left open");
}

/// Refusals: an unregistered socket, no buffers, a second stream, a read
/// beside a stream and a stream beside a read; unknown ids; bad sizes.
pub(crate) fn recv_stream_bad_inputs(b: Backend) {
    let (_client, server) = tcp_pair();
    let (_c2, s2) = tcp_pair();
    let mut rt = rt_with_buffers(b, 4, 64);
    let e = rt.stream_kept(&server).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let op = rt.stream_kept(&server).unwrap();
    assert_eq!(
        rt.stream_kept(&server).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    let refused = rt
        .post_read_kept(&server, Vec::with_capacity(16))
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::AlreadyExists);
    assert_eq!(refused.into_buf().capacity(), 16);
    // A live stream has no end to take yet, and no chunk.
    assert!(rt.take_io(op).is_none());
    assert!(rt.take_recv(op).is_none());

    rt.register(&s2, Token(2), Interest::READABLE).unwrap();
    let read = rt.post_read_kept(&s2, Vec::with_capacity(16)).unwrap();
    assert_eq!(
        rt.stream_kept(&s2).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    assert!(rt.take_recv(read).is_none(), "a read is not a stream");
    rt.cancel_io(read).unwrap();

    // Ids of nothing.
    rt.cancel_io(op).unwrap();
    assert!(rt.take_recv(op).is_none());
    assert!(rt.cancel_io(op).is_none());

    // No buffers.
    let mut bare = rt_plain(b);
    bare.register(&s2, Token(2), Interest::READABLE).unwrap();
    assert_eq!(
        bare.stream_kept(&s2).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    drop(bare);
    for (count, size) in [(0, 64), (4, 0), (uniloop::ops::MAX_RECV_BUFFERS + 1, 64)] {
        let e = Runtime::builder()
            .backend(b)
            .recv_buffers(count, size)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{count} x {size}");
    }
}

/// Waits (bounded) until an event of `op` comes; there may be several.
#[track_caller]
fn wait_for(rt: &mut Runtime, events: &mut Events, op: OpId) {
    wait_until(
        rt,
        events,
        |e| matches!(e, Event::IoDone { op: o, .. } if *o == op),
    );
}

fn rt_plain(b: Backend) -> Runtime {
    rt(b)
}

/// Many streams waiting on a pool of two buffers, some of them ending
/// (a FIN, or a reset) while they wait: every stream still ends, and the
/// ones closed with a FIN deliver all their bytes in order first. (A
/// stream resumed on a free buffer that ends without taking it must not
/// leave the streams behind it waiting.)
pub(crate) fn streams_ending_while_out_of_buffers(b: Backend) {
    const C: usize = 12;
    const LEN: usize = 700;
    let (clients, servers): (Vec<_>, Vec<_>) = (0..C).map(|_| tcp_pair()).unzip();
    let mut rt = rt_with_buffers(b, 2, 64);
    let mut seen = HashMap::new();
    let mut ops = Vec::new();
    for (i, (client, server)) in clients.iter().zip(&servers).enumerate() {
        rt.register(server, Token(i as u64), Interest::READABLE)
            .unwrap();
        let op = rt.stream_kept(server).unwrap();
        seen.insert(op, Seen::default());
        ops.push(op);
        send(client, &payload(i as u64, LEN));
    }
    let mut events = Events::with_capacity(4);
    // The pool ran out in the posts (a readiness backend reads at once)
    // or runs out at the first wait, with the ends already there.
    let mut held: Vec<RecvBuf> = Vec::new();
    let mut kept = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        if i % 3 == 0 {
            // A reset: closed with no linger.
            socket2::SockRef::from(&client)
                .set_linger(Some(std::time::Duration::ZERO))
                .unwrap();
            drop(client);
        } else {
            client.shutdown(Shutdown::Write).unwrap();
            kept.push(client);
        }
    }
    let start = Instant::now();
    while seen.values().any(|s| s.end.is_none()) {
        assert!(start.elapsed() < GUARD, "streams left waiting");
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for d in dones(&listed(&events)) {
            let s = seen.get_mut(&d.op).expect("a stream of this test");
            if d.bytes == 0 || d.error.is_some() {
                rt.take_io(d.op).expect("the end");
                s.end = Some(d.error);
            } else {
                let chunk = rt.take_recv(d.op).expect("a chunk");
                s.data.extend_from_slice(&chunk);
                held.push(chunk);
            }
        }
        // Hold what came until both buffers are out, then give them back.
        if held.len() >= 2 {
            for chunk in held.drain(..) {
                rt.give_back(chunk);
            }
        }
    }
    for (i, op) in ops.iter().enumerate() {
        let s = &seen[op];
        let want = payload(i as u64, LEN);
        if s.end == Some(None) {
            assert!(want.starts_with(&s.data), "stream {i}: bytes differ");
            if i % 3 != 0 {
                assert_eq!(s.data.len(), LEN, "stream {i}: bytes lost before the FIN");
            }
        } else {
            assert!(i % 3 == 0, "stream {i} ended with {:?}", s.end);
        }
    }
}
