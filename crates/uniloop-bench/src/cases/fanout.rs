//! Fan-out: a broadcast server over loopback, every message a client sends
//! going to every other client, the shape of a chat room or a game lobby.
//!
//! uniloop is used the natural way: a message read from one connection is
//! posted with one [`uniloop::Runtime::post_write`] per recipient (each a
//! copy, since a post owns its buffer), and each write's
//! [`uniloop::Event::IoDone`] is taken back. The mio server is what a
//! careful mio user writes: one shared buffer per message, a per-connection
//! output queue of those buffers, flushed once per poll batch with
//! `writev` (`write_vectored`), the rest on the next writable edge. A third
//! row runs the mio server's code on uniloop's readiness events, to tell
//! the loop's cost from the posted writes'.
//!
//! The load generator (raw epoll on the calling thread, the same for both)
//! runs in rounds: in each round a few clients send one message each, and
//! the round ends when every client has read every message of the round
//! meant for it; each message is checked (round, sender, no duplicate) and
//! every client's count must come out exact.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};

use super::join;
use crate::report::{Case, Role, Sample};
use crate::sys::{epoll_events, thread_cpu_time, Epoll, SyscallCount};
use crate::Config;

/// Bytes per message: a header (magic, round, sender) and padding.
const MSG: usize = 32;
const MAGIC: [u8; 4] = *b"FAN!";
const UNILOOP: &str = "uniloop, post_write per recipient";
const HELD: &str = "uniloop, post_write per recipient, hold_writes";
const MIO: &str = "mio, output queues + writev";
const READINESS: &str = "uniloop readiness, output queues + writev";

/// The size of one run.
#[derive(Clone, Copy, Debug)]
struct Load {
    conns: usize,
    /// Clients that send one message each per round.
    senders: usize,
    rounds: usize,
}

impl Load {
    /// Messages delivered (each sent message reaches `conns - 1` clients).
    fn deliveries(self) -> u64 {
        (self.rounds * self.senders * (self.conns - 1)) as u64
    }
}

pub(crate) fn case(cfg: &Config) -> Case {
    let load = Load {
        conns: cfg.pick(1000, 100),
        senders: cfg.pick(10, 5),
        rounds: cfg.pick(30, 20),
    };
    Case::new(
        "fanout",
        "fanout",
        &format!("fan-out broadcast, {} connections", load.conns),
        "ns CPU/message",
    )
    .method(&format!(
        "{conns} loopback connections; {rounds} rounds, in each {senders} clients send one {MSG}-byte message \
         and the server sends it to the {others} others ({total} deliveries, each checked by the reading client). \
         Figure: the server thread's CPU time (CLOCK_THREAD_CPUTIME_ID, user + system, from the last accept \
         to the last connection closed) ÷ messages delivered; the load generator runs on another thread \
         and is not counted. syscalls/message: the server thread's, same window.",
        conns = load.conns,
        rounds = load.rounds,
        senders = load.senders,
        others = load.conns - 1,
        total = load.deliveries(),
    ))
    .lower_is_better()
    .system(UNILOOP, Role::Subject, move || run(load, serve_uniloop))
    .system(HELD, Role::Uniloop, move || run(load, serve_uniloop_held))
    .system(MIO, Role::Peer, move || run(load, serve_mio))
    .system(READINESS, Role::Uniloop, move || {
        run(load, serve_uniloop_readiness)
    })
    .goal_at_most(MIO, 1.1)
}

/// The same server with `Builder::hold_writes`: a turn's writes to one
/// connection go out in one gathered call at the next `wait`.
fn serve_uniloop_held(listener: TcpListener, conns: usize, window: Window) -> io::Result<Usage> {
    serve_uniloop_on(
        uniloop::Runtime::builder().hold_writes(true).build()?,
        listener,
        conns,
        window,
    )
}

/// What the server thread measured between its last accept and its end.
struct Usage {
    cpu: Duration,
    syscalls: Option<u64>,
}

/// Starts the measurement once every connection is accepted, and tells the
/// load generator it may start.
struct Window {
    ready: Option<mpsc::Sender<()>>,
    count: Option<SyscallCount>,
    start: Option<(Duration, Option<u64>)>,
}

impl Window {
    fn new(ready: mpsc::Sender<()>) -> Window {
        Window {
            ready: Some(ready),
            count: SyscallCount::start(),
            start: None,
        }
    }

    fn all_accepted(&mut self) {
        self.start = Some((
            thread_cpu_time(),
            self.count.as_ref().and_then(SyscallCount::read),
        ));
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(());
        }
    }

    fn end(self) -> io::Result<Usage> {
        let (cpu0, calls0) = self
            .start
            .ok_or_else(|| io::Error::other("fan-out: server ended before all connections"))?;
        let calls1 = self.count.as_ref().and_then(SyscallCount::read);
        Ok(Usage {
            cpu: thread_cpu_time() - cpu0,
            syscalls: calls0.zip(calls1).map(|(a, b)| b - a),
        })
    }
}

type Serve = fn(TcpListener, usize, Window) -> io::Result<Usage>;

fn run(load: Load, serve: Serve) -> io::Result<Sample> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    let listener: TcpListener = socket.into();
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel();
    let conns = load.conns;
    let server = thread::spawn(move || serve(listener, conns, Window::new(tx)));
    let r = generate(addr, load, &rx);
    // The generator has closed every connection (or failed and dropped
    // them): the server sees EOF on each and returns.
    let usage = join(server);
    let wall = r?;
    let usage = usage?;
    let n = load.deliveries() as f64;
    let sample = Sample::new(usage.cpu.as_nanos() as f64 / n).with(
        "load wall time",
        wall.as_secs_f64() * 1e3,
        "ms",
    );
    Ok(match usage.syscalls {
        Some(c) => sample.with("syscalls/message", c as f64 / n, "syscalls"),
        None => sample,
    })
}

/// One client of the generator.
struct Client {
    s: TcpStream,
    /// Bytes of a message not complete yet.
    partial: Vec<u8>,
    /// Messages of this round read so far.
    got: usize,
    /// Which of this round's senders were heard from (bit k: sender k).
    seen: u64,
}

/// Connects the clients, waits for the server to have accepted them all,
/// runs the rounds and closes the connections. Returns the rounds' wall time.
fn generate(addr: SocketAddr, load: Load, ready: &mpsc::Receiver<()>) -> io::Result<Duration> {
    assert!(load.senders <= 64 && load.senders < load.conns);
    let mut clients = Vec::with_capacity(load.conns);
    for _ in 0..load.conns {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        // Close with RST: no TIME_WAIT pile-up across runs.
        SockRef::from(&s).set_linger(Some(Duration::ZERO))?;
        s.set_nonblocking(true)?;
        clients.push(Client {
            s,
            partial: Vec::with_capacity(MSG),
            got: 0,
            seen: 0,
        });
    }
    ready
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| io::Error::other("fan-out: the server did not accept every connection"))?;
    let ep = Epoll::new()?;
    for (i, c) in clients.iter().enumerate() {
        ep.add(c.s.as_raw_fd(), i as u64, libc::EPOLLIN as u32)?;
    }
    let mut events = epoll_events(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    for round in 0..load.rounds {
        // This round's senders: the next `senders` clients, round-robin.
        let sender_of = |k: usize| (round * load.senders + k) % load.conns;
        let mut msg = [0x5au8; MSG];
        msg[..4].copy_from_slice(&MAGIC);
        msg[4..8].copy_from_slice(&(round as u32).to_le_bytes());
        for k in 0..load.senders {
            msg[8..12].copy_from_slice(&(k as u32).to_le_bytes());
            let c = &mut clients[sender_of(k)];
            if c.s.write(&msg)? != MSG {
                return Err(io::Error::other("fan-out: short write"));
            }
        }
        let expect = |i: usize| {
            let sends = (0..load.senders).any(|k| sender_of(k) == i);
            load.senders - usize::from(sends)
        };
        let mut left: usize = (0..load.conns).map(expect).sum();
        while left > 0 {
            let n = ep.wait(&mut events, 10_000)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("fan-out: round {round}: {left} messages missing after 10 s"),
                ));
            }
            for ev in &events[..n] {
                let i = ev.u64 as usize;
                let c = &mut clients[i];
                let k = match c.s.read(&mut buf) {
                    Ok(0) => return Err(io::Error::other("fan-out: server closed a connection")),
                    Ok(k) => k,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                };
                let mut data = &buf[..k];
                while !data.is_empty() {
                    let take = (MSG - c.partial.len()).min(data.len());
                    c.partial.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if c.partial.len() < MSG {
                        break;
                    }
                    let m = &c.partial;
                    let r = u32::from_le_bytes(m[4..8].try_into().unwrap()) as usize;
                    let k = u32::from_le_bytes(m[8..12].try_into().unwrap()) as usize;
                    if m[..4] != MAGIC || r != round || k >= load.senders {
                        return Err(io::Error::other(format!(
                            "fan-out: client {i} got a bad message in round {round}"
                        )));
                    }
                    if sender_of(k) == i || c.seen & (1 << k) != 0 {
                        return Err(io::Error::other(format!(
                            "fan-out: client {i} got its own or a repeated message (sender {k}, round {round})"
                        )));
                    }
                    c.seen |= 1 << k;
                    c.got += 1;
                    c.partial.clear();
                    left -= 1;
                }
            }
        }
        for (i, c) in clients.iter_mut().enumerate() {
            if c.got != expect(i) || !c.partial.is_empty() {
                return Err(io::Error::other(format!(
                    "fan-out: client {i} read {} messages in round {round}, not {}",
                    c.got,
                    expect(i)
                )));
            }
            c.got = 0;
            c.seen = 0;
        }
    }
    Ok(start.elapsed())
}

/// Splits what arrived on a connection into whole messages, keeping a
/// partial one for the next read.
fn frame(partial: &mut Vec<u8>, data: &[u8], out: &mut Vec<[u8; MSG]>) {
    let mut data = data;
    while !data.is_empty() {
        let take = (MSG - partial.len()).min(data.len());
        partial.extend_from_slice(&data[..take]);
        data = &data[take..];
        if partial.len() == MSG {
            out.push(partial[..].try_into().unwrap());
            partial.clear();
        }
    }
}

/// The generator resets its connections when it stops.
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn serve_uniloop(listener: TcpListener, conns: usize, window: Window) -> io::Result<Usage> {
    serve_uniloop_on(uniloop::Runtime::new()?, listener, conns, window)
}

fn serve_uniloop_on(
    mut rt: uniloop::Runtime,
    listener: TcpListener,
    conns: usize,
    mut window: Window,
) -> io::Result<Usage> {
    use uniloop::{Event, Events, Interest, Token};
    const LISTENER: Token = Token(u64::MAX);
    rt.register(&listener, LISTENER, Interest::READABLE)?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(conns);
    let mut partial: Vec<Vec<u8>> = Vec::with_capacity(conns);
    let mut open = 0;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 4096];
    let mut msgs = Vec::new();
    while streams.len() < conns || open > 0 {
        if rt.wait(&mut events, Some(Duration::from_secs(30)))? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "fan-out uniloop: idle 30 s",
            ));
        }
        for ev in &events {
            match *ev {
                Event::Io {
                    token: LISTENER, ..
                } => loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(true)?;
                            s.set_nodelay(true)?;
                            rt.register(&s, Token(streams.len() as u64), Interest::READABLE)?;
                            streams.push(Some(s));
                            partial.push(Vec::with_capacity(MSG));
                            open += 1;
                            if streams.len() == conns {
                                window.all_accepted();
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                },
                Event::Io { token, .. } => {
                    let i = token.0 as usize;
                    let Some(mut s) = streams[i].as_ref() else {
                        continue;
                    };
                    let alive = match s.read(&mut buf) {
                        Ok(0) => false,
                        Ok(n) => {
                            frame(&mut partial[i], &buf[..n], &mut msgs);
                            true
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
                        Err(e) if gone(&e) => false,
                        Err(e) => return Err(e),
                    };
                    if !alive {
                        rt.deregister(s)?;
                        streams[i] = None;
                        open -= 1;
                        continue;
                    }
                    // One post per recipient, each with its own copy.
                    for m in msgs.drain(..) {
                        for (j, to) in streams.iter().enumerate() {
                            if let (Some(to), true) = (to, j != i) {
                                // SAFETY: the stream stays in `streams` until after its
                                // `deregister`.
                                unsafe { rt.post_write(to, m.to_vec()) }?;
                            }
                        }
                    }
                }
                Event::IoDone { token, op, .. } => {
                    // A connection closed earlier in this batch: its
                    // operations went with its registration.
                    if streams[token.0 as usize].is_none() {
                        continue;
                    }
                    let done = rt.take_io(op).ok_or_else(|| {
                        io::Error::other("fan-out uniloop: IoDone without a result")
                    })?;
                    match done.error {
                        Some(e) if !gone(&e) => return Err(e),
                        // A reset connection: its EOF comes as readiness.
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }
    window.end()
}

/// A connection of the mio server: its socket, its output queue (messages
/// shared by every recipient), how far into the front message it is, and
/// the bytes of an incomplete incoming message.
struct Conn<S> {
    s: S,
    out: VecDeque<Rc<[u8; MSG]>>,
    front_sent: usize,
    dirty: bool,
    partial: Vec<u8>,
}

/// Writes as much of `c`'s queue as the socket takes, up to `IOV_MAX`
/// buffers per `writev`. `Ok(false)` when the peer is gone.
fn flush<S: Write>(c: &mut Conn<S>) -> io::Result<bool> {
    const IOV_MAX: usize = 1024;
    while !c.out.is_empty() {
        let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(c.out.len().min(IOV_MAX));
        for (k, m) in c.out.iter().take(IOV_MAX).enumerate() {
            let from = if k == 0 { c.front_sent } else { 0 };
            iov.push(IoSlice::new(&m[from..]));
        }
        let mut n = match c.s.write_vectored(&iov) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if gone(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        while n > 0 {
            let left = MSG - c.front_sent;
            if n >= left {
                n -= left;
                c.front_sent = 0;
                c.out.pop_front();
            } else {
                c.front_sent += n;
                n = 0;
            }
        }
    }
    Ok(true)
}

fn serve_mio(listener: TcpListener, conns: usize, mut window: Window) -> io::Result<Usage> {
    use mio::net::TcpListener as MioListener;
    use mio::{Events, Interest, Poll, Token};
    const LISTENER: Token = Token(usize::MAX);
    let mut poll = Poll::new()?;
    let mut listener = MioListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut table: Vec<Option<Conn<mio::net::TcpStream>>> = Vec::with_capacity(conns);
    let mut open = 0;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 4096];
    let mut msgs = Vec::new();
    let mut dirty: Vec<usize> = Vec::new();
    let mut closing: Vec<usize> = Vec::new();
    while table.len() < conns || open > 0 {
        poll.poll(&mut events, Some(Duration::from_secs(30)))?;
        if events.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "fan-out mio: idle 30 s",
            ));
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                // Edge-triggered: accept until WouldBlock.
                loop {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            s.set_nodelay(true)?;
                            // Both interests once: no reregistering later;
                            // a writable edge resumes a blocked flush.
                            poll.registry().register(
                                &mut s,
                                Token(table.len()),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            table.push(Some(Conn {
                                s,
                                out: VecDeque::new(),
                                front_sent: 0,
                                dirty: false,
                                partial: Vec::with_capacity(MSG),
                            }));
                            open += 1;
                            if table.len() == conns {
                                window.all_accepted();
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let i = ev.token().0;
            let Some(c) = table[i].as_mut() else {
                continue;
            };
            if ev.is_writable() && !c.dirty && !c.out.is_empty() {
                c.dirty = true;
                dirty.push(i);
            }
            if !ev.is_readable() {
                continue;
            }
            // Edge-triggered: read until WouldBlock.
            let mut alive = true;
            loop {
                match c.s.read(&mut buf) {
                    Ok(0) => {
                        alive = false;
                        break;
                    }
                    Ok(n) => frame(&mut c.partial, &buf[..n], &mut msgs),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if gone(&e) => {
                        alive = false;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !alive {
                closing.push(i);
            }
            for m in msgs.drain(..) {
                let m = Rc::new(m);
                for (j, to) in table.iter_mut().enumerate() {
                    if let (Some(to), true) = (to, j != i) {
                        to.out.push_back(m.clone());
                        if !to.dirty {
                            to.dirty = true;
                            dirty.push(j);
                        }
                    }
                }
            }
        }
        // One flush per connection per batch.
        for j in dirty.drain(..) {
            if let Some(c) = table[j].as_mut() {
                c.dirty = false;
                if !flush(c)? {
                    closing.push(j);
                }
            }
        }
        for j in closing.drain(..) {
            if let Some(mut c) = table[j].take() {
                poll.registry().deregister(&mut c.s)?;
                open -= 1;
            }
        }
    }
    window.end()
}

/// The mio server's design on uniloop's readiness events (level-triggered:
/// writable interest only while a connection has output the socket did not
/// take).
fn serve_uniloop_readiness(
    listener: TcpListener,
    conns: usize,
    mut window: Window,
) -> io::Result<Usage> {
    use uniloop::{Event, Events, Interest, Runtime, Token};
    const LISTENER: Token = Token(u64::MAX);
    let mut rt = Runtime::new()?;
    rt.register(&listener, LISTENER, Interest::READABLE)?;
    let mut table: Vec<Option<Conn<TcpStream>>> = Vec::with_capacity(conns);
    let mut waiting: Vec<bool> = Vec::with_capacity(conns);
    let mut open = 0;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 4096];
    let mut msgs = Vec::new();
    let mut dirty: Vec<usize> = Vec::new();
    let mut closing: Vec<usize> = Vec::new();
    while table.len() < conns || open > 0 {
        if rt.wait(&mut events, Some(Duration::from_secs(30)))? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "fan-out uniloop readiness: idle 30 s",
            ));
        }
        for ev in &events {
            let Event::Io { token, ready } = *ev else {
                continue;
            };
            if token == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(true)?;
                            s.set_nodelay(true)?;
                            rt.register(&s, Token(table.len() as u64), Interest::READABLE)?;
                            table.push(Some(Conn {
                                s,
                                out: VecDeque::new(),
                                front_sent: 0,
                                dirty: false,
                                partial: Vec::with_capacity(MSG),
                            }));
                            waiting.push(false);
                            open += 1;
                            if table.len() == conns {
                                window.all_accepted();
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let i = token.0 as usize;
            let Some(c) = table[i].as_mut() else {
                continue;
            };
            if ready.is_writable() && !c.dirty && !c.out.is_empty() {
                c.dirty = true;
                dirty.push(i);
            }
            if !ready.is_readable() {
                continue;
            }
            // Level-triggered: one read per event.
            match c.s.read(&mut buf) {
                Ok(0) => closing.push(i),
                Ok(n) => frame(&mut c.partial, &buf[..n], &mut msgs),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if gone(&e) => closing.push(i),
                Err(e) => return Err(e),
            }
            for m in msgs.drain(..) {
                let m = Rc::new(m);
                for (j, to) in table.iter_mut().enumerate() {
                    if let (Some(to), true) = (to, j != i) {
                        to.out.push_back(m.clone());
                        if !to.dirty {
                            to.dirty = true;
                            dirty.push(j);
                        }
                    }
                }
            }
        }
        // One flush per connection per batch; writable interest only
        // while output is left over.
        for j in dirty.drain(..) {
            let Some(c) = table[j].as_mut() else {
                continue;
            };
            c.dirty = false;
            if !flush(c)? {
                closing.push(j);
                continue;
            }
            let want = !c.out.is_empty();
            if want != waiting[j] {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                rt.reregister(&c.s, Token(j as u64), interest)?;
                waiting[j] = want;
            }
        }
        for j in closing.drain(..) {
            if let Some(c) = table[j].take() {
                rt.deregister(&c.s)?;
                open -= 1;
            }
        }
    }
    window.end()
}
