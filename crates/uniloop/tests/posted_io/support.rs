//! Helpers for the posted-I/O suite: runtimes, completions taken apart,
//! bounded waits for them, payloads, peers.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::SockRef;
use uniloop::{AsSource, Backend, Event, Events, OpError, OpId, OpKind, Runtime, Token};

use crate::util::*;

/// `Runtime::post_read` / `post_write` for this suite's sources, which the
/// tests keep open while operations on them are pending.
pub(crate) trait PostKept {
    fn post_read_kept<S: AsSource + ?Sized>(
        &mut self,
        s: &S,
        buf: Vec<u8>,
    ) -> Result<OpId, OpError>;
    fn post_write_kept<S: AsSource + ?Sized>(
        &mut self,
        s: &S,
        buf: Vec<u8>,
    ) -> Result<OpId, OpError>;
}

// SAFETY (both methods): every test of this suite keeps the sockets it
// posts on open until after its last call on the runtime that posted —
// they are declared in the test and live to its end, or are deregistered
// before they are dropped (the echo server's `conns`) — except where a
// socket is dropped with nothing more than the runtime's drop after it and
// no write held. `post_on_a_closed_fd` posts on a closed number with its
// own `unsafe` and reasons.
impl PostKept for Runtime {
    fn post_read_kept<S: AsSource + ?Sized>(
        &mut self,
        s: &S,
        buf: Vec<u8>,
    ) -> Result<OpId, OpError> {
        // SAFETY: see the impl.
        unsafe { self.post_read(s, buf) }
    }

    fn post_write_kept<S: AsSource + ?Sized>(
        &mut self,
        s: &S,
        buf: Vec<u8>,
    ) -> Result<OpId, OpError> {
        // SAFETY: see the impl.
        unsafe { self.post_write(s, buf) }
    }
}

pub(crate) fn rt(b: Backend) -> Runtime {
    let rt = Runtime::builder().backend(b).build().unwrap();
    assert_eq!(rt.backend(), b);
    rt
}

/// An `Event::IoDone`, taken apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Done {
    pub(crate) token: Token,
    pub(crate) op: OpId,
    pub(crate) kind: OpKind,
    pub(crate) bytes: usize,
    pub(crate) error: Option<ErrorKind>,
}

pub(crate) fn dones(events: &[Event]) -> Vec<Done> {
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

pub(crate) fn listed(events: &Events) -> Vec<Event> {
    events.iter().copied().collect()
}

/// The readiness events for `token` among `events`.
pub(crate) fn io_for(events: &[Event], token: Token) -> Vec<Event> {
    events
        .iter()
        .copied()
        .filter(|e| matches!(e, Event::Io { token: t, .. } if *t == token))
        .collect()
}

/// Waits (bounded) for the `IoDone` of `op`; checks it came exactly once
/// among the events seen on the way, and returns it with those events.
#[track_caller]
pub(crate) fn wait_done(rt: &mut Runtime, events: &mut Events, op: OpId) -> (Done, Vec<Event>) {
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
pub(crate) fn wait_all(
    rt: &mut Runtime,
    events: &mut Events,
    ops: &[OpId],
    seen: &[Event],
) -> Vec<Done> {
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
pub(crate) fn quiet_window(rt: &mut Runtime, events: &mut Events) -> Vec<Event> {
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
pub(crate) fn payload(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| pattern(seed, i)).collect()
}

pub(crate) fn pattern(seed: u64, i: usize) -> u8 {
    let x = (i as u64 ^ seed.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8 ^ (x >> 29) as u8
}

/// A read buffer: `prefix` followed by spare capacity for `room` bytes.
pub(crate) fn read_buf(prefix: &[u8], room: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(prefix.len() + room);
    buf.extend_from_slice(prefix);
    buf
}

/// Asked-for kernel buffer size of [`small_buffer_pair`].
pub(crate) const SMALL_BUF: usize = 64 << 10;

/// A non-blocking pair `(client, server)` whose kernel buffers are small,
/// so that a write of a few MiB stays pending until the peer reads.
#[track_caller]
pub(crate) fn small_buffer_pair() -> (TcpStream, TcpStream) {
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
pub(crate) fn in_flight_bound(writer: &TcpStream, reader: &TcpStream) -> usize {
    let snd = SockRef::from(writer).send_buffer_size().unwrap();
    let rcv = SockRef::from(reader).recv_buffer_size().unwrap();
    (4 * (snd + rcv)).max(1 << 20)
}

/// Makes `s` blocking, with [`GUARD`] as a read timeout so a missing byte
/// fails the test instead of hanging it.
#[track_caller]
pub(crate) fn blocking(s: TcpStream) -> TcpStream {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s.set_write_timeout(Some(GUARD)).unwrap();
    s
}

/// A thread that reads exactly `len` bytes from `peer` (blocking, 16 KiB
/// at a time) and returns them.
pub(crate) fn reader(peer: TcpStream, len: usize) -> JoinHandle<Vec<u8>> {
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
pub(crate) fn read_to_end(rt: &mut Runtime, events: &mut Events, s: &TcpStream) -> (Vec<u8>, Done) {
    let mut data = Vec::new();
    loop {
        let op = rt.post_read_kept(s, Vec::with_capacity(4096)).unwrap();
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
