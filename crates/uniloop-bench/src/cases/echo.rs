//! TCP echo over loopback: a server on one thread (the system under test),
//! and the same hand-written epoll load generator for every system on the
//! calling thread. Each connection sends 64 bytes, waits for the 64-byte
//! echo, and sends again.
//!
//! uniloop serves it twice: in readiness mode (told a socket is readable, it
//! reads and writes itself, like the mio and raw rows) and in completion mode
//! (it posts a read with a buffer, gets [`uniloop::Event::IoDone`], posts that
//! buffer as the write, and posts it again as the next read) — each on epoll
//! and, where io_uring is permitted, on `Backend::Uring` (where posted
//! reads that find nothing wait in the ring as `IORING_OP_RECV`).
//!
//! The receive-stream rows post one `post_recv_stream` per connection
//! (a multishot `IORING_OP_RECV` over a provided-buffer ring on io_uring)
//! and answer each chunk with a posted write of a copy; the chunk goes
//! straight back to the runtime's pool, which is shared by all
//! connections.
//!
//! Every row also reports the server thread's system calls per round trip
//! (counted with a perf tracepoint, where the kernel allows it).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, SockRef, Socket, Type};
use uniloop::Backend;

use super::{
    cost_sample, generate_in_child, join, spawn_server, tokio_rt, CostNames, Until, Window,
};
use crate::report::{Case, Role, Sample};
use crate::sys::{epoll_events, Epoll};
use crate::Config;

const MSG: usize = 64;
const READINESS: &str = "uniloop readiness mode (epoll)";
const COMPLETION: &str = "uniloop completion mode (epoll)";
const URING_READINESS: &str = "uniloop readiness mode (io_uring)";
const URING_COMPLETION: &str = "uniloop completion mode (io_uring)";
const STREAM: &str = "uniloop receive stream (epoll)";
const URING_STREAM: &str = "uniloop receive stream (io_uring)";
/// The receive streams' shared pool: far fewer buffers than connections
/// (the posted-read rows hold one 4 KiB buffer per connection).
const STREAM_BUFS: usize = 256;
const RAW_EPOLL: &str = "raw epoll loop";
const RAW_URING: &str = "raw io_uring loop";
const RAW_URING_DEFER: &str = "raw io_uring loop (DEFER_TASKRUN)";

pub(crate) fn cases(cfg: &Config) -> Vec<Case> {
    let secs = cfg.pick(5.0, 0.5);
    [64usize, 1000]
        .into_iter()
        .map(|conns| {
            let d = Duration::from_secs_f64(secs);
            let mut case = Case::new(
                "echo",
                &format!("echo-{conns}"),
                &format!("TCP echo, {conns} connections"),
                "round trips/s",
            )
            .method(&format!(
                "{conns} loopback connections, {MSG}-byte request/response, round trips counted for {secs} s \
                 after a warm-up; \
                 uniloop on epoll, once with readiness events and once with posted reads and writes \
                 (completion mode, one reused buffer per connection, writes held for the next wait), and the same two on \
                 io_uring where it is permitted; once more with a receive stream per connection \
                 (post_recv_stream over a pool of {STREAM_BUFS} 4 KiB buffers shared by all connections, \
                 each chunk answered by a posted write of a copy from a per-connection buffer and given back at once); \
                 beside a hand-written io_uring loop (one RECV or SEND per connection, \
                 user_data = index, one submit_and_wait per turn, COOP_TASKRUN, and once with DEFER_TASKRUN | SINGLE_ISSUER instead); the load generator (raw epoll, the same \
                 for every system) runs in its own process; server CPU/round trip: the server thread's CPU time \
                 (CLOCK_THREAD_CPUTIME_ID) over its whole life ÷ all round trips, of which user: its user-space part \
                 (getrusage RUSAGE_THREAD, tick-sampled); syscalls/round trip: the server thread's system calls, the same way"
            ))
            .system(READINESS, Role::Subject, move || {
                run(conns, Until::Elapsed(d), |l, n| serve_uniloop(l, n, Backend::Epoll))
            })
            .system(COMPLETION, Role::Uniloop, move || {
                run(conns, Until::Elapsed(d), |l, n| {
                    serve_uniloop_completion(l, n, Backend::Epoll, true)
                })
            })
            .system(STREAM, Role::Uniloop, move || {
                run(conns, Until::Elapsed(d), |l, n| {
                    serve_uniloop_stream(l, n, Backend::Epoll)
                })
            })
            .system("mio", Role::Peer, move || run(conns, Until::Elapsed(d), serve_mio))
            .system("tokio current_thread", Role::Peer, move || {
                run(conns, Until::Elapsed(d), serve_tokio)
            })
            .system(RAW_EPOLL, Role::Limit, move || {
                run(conns, Until::Elapsed(d), serve_raw)
            })
            .goal_at_least("mio", 1.0)
            .goal_at_least(RAW_EPOLL, 0.98)
            .goal_extra_at_most("mio", CPU, 1.05)
            .goal_pair_at_least(COMPLETION, READINESS, 0.95)
            .goal_pair_at_least(COMPLETION, RAW_EPOLL, 0.95);
            if Backend::Uring.is_available() {
                case = case
                    .system(URING_READINESS, Role::Uniloop, move || {
                        run(conns, Until::Elapsed(d), |l, n| serve_uniloop(l, n, Backend::Uring))
                    })
                    .system(URING_COMPLETION, Role::Uniloop, move || {
                        run(conns, Until::Elapsed(d), |l, n| {
                            serve_uniloop_completion(l, n, Backend::Uring, true)
                        })
                    })
                    .system(URING_STREAM, Role::Uniloop, move || {
                        run(conns, Until::Elapsed(d), |l, n| {
                            serve_uniloop_stream(l, n, Backend::Uring)
                        })
                    })
                    .system(RAW_URING, Role::Limit, move || {
                        run(conns, Until::Elapsed(d), |l, n| serve_uring_raw(l, n, false))
                    })
                    .system(RAW_URING_DEFER, Role::Limit, move || {
                        run(conns, Until::Elapsed(d), |l, n| serve_uring_raw(l, n, true))
                    })
                    .goal_pair_extra_at_most(URING_COMPLETION, RAW_URING, CPU, 1.10)
                    .goal_pair_extra_at_most(URING_COMPLETION, RAW_EPOLL, CPU, 0.95);
            } else {
                case = case.note("no io_uring rows: io_uring is not permitted on this machine");
            }
            case
        })
        .collect()
}

pub(crate) type Serve = fn(TcpListener, usize) -> io::Result<()>;

/// The servers, for the `--callgrind` probes.
pub(crate) const UNILOOP_READINESS: Serve = |l, n| serve_uniloop(l, n, Backend::Epoll);
pub(crate) const UNILOOP_COMPLETION: Serve =
    |l, n| serve_uniloop_completion(l, n, Backend::Epoll, false);
pub(crate) const MIO: Serve = serve_mio;

/// uniloop with a receive stream per connection: each chunk that arrives
/// is copied into the connection's write buffer, given back to the pool,
/// and the copy posted as the write (held for the next `wait`); the write's
/// buffer comes back for the next chunk. Nothing is allocated per round
/// trip.
fn serve_uniloop_stream(listener: TcpListener, conns: usize, backend: Backend) -> io::Result<()> {
    use uniloop::{Event, Events, Interest, OpKind, Runtime, Token};
    const LISTENER: Token = Token(u64::MAX);
    let mut rt = Runtime::builder()
        .backend(backend)
        .hold_writes(true)
        .recv_buffers(STREAM_BUFS, 4096)
        .build()?;
    rt.register(&listener, LISTENER, Interest::READABLE)?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(conns);
    let mut wbufs: Vec<Vec<u8>> = Vec::with_capacity(conns);
    let mut open = 0;
    let mut events = Events::with_capacity(1024);
    while streams.len() < conns || open > 0 {
        if rt.wait(&mut events, Some(Duration::from_secs(30)))? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "uniloop stream: idle 30 s",
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
                            // SAFETY: the stream stays in `streams` until after its
                            // `deregister`.
                            unsafe { rt.post_recv_stream(&s) }?;
                            streams.push(Some(s));
                            wbufs.push(Vec::with_capacity(4096));
                            open += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                },
                Event::IoDone {
                    token,
                    op,
                    kind,
                    bytes,
                    error,
                } => {
                    let i = token.0 as usize;
                    let Some(s) = streams[i].as_ref() else {
                        continue;
                    };
                    let alive = match (kind, error) {
                        (OpKind::RecvStream, None) if bytes > 0 => {
                            let chunk = rt.take_recv(op).ok_or_else(|| {
                                io::Error::other("uniloop stream: IoDone without a chunk")
                            })?;
                            let mut out = std::mem::take(&mut wbufs[i]);
                            out.extend_from_slice(&chunk);
                            rt.give_back(chunk);
                            // SAFETY: the stream stays in `streams` until after its
                            // `deregister`.
                            unsafe { rt.post_write(s, out) }?;
                            true
                        }
                        (OpKind::Write, None) => {
                            let mut buf = rt.take_io(op).map(|f| f.buf).unwrap_or_default();
                            buf.clear();
                            wbufs[i] = buf;
                            true
                        }
                        (_, Some(_)) => {
                            let e = rt.take_io(op).and_then(|f| f.error);
                            match e {
                                Some(e) if !gone(&e) => return Err(e),
                                _ => false,
                            }
                        }
                        _ => false, // end of stream
                    };
                    if !alive {
                        rt.deregister(s)?;
                        streams[i] = None;
                        open -= 1;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Round trips per second, and what the server thread spent on them.
/// With `Until::Elapsed` the load generator runs in its own process (this
/// binary again, `--echo-generator`), so nothing but the server shares
/// this process; with `Until::Iterations(n)` it runs on the calling thread
/// and stops after `n` round trips (no warm-up), for counting instructions
/// per round trip on the server thread, which runs all of `serve` inside
/// [`measured`](crate::measure::measured).
///
/// The server thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) and its
/// user-space part (`getrusage(RUSAGE_THREAD)`), over its whole life, are
/// divided by all the round trips (warm-up included), as its system calls
/// are.
pub(crate) fn run(conns: usize, until: Until, serve: Serve) -> io::Result<Sample> {
    run_replies(conns, MSG, until, serve)
}

/// [`run`] with replies of `reply` bytes to each 64-byte request: the
/// generator reads all of them before it sends the next request.
pub(crate) fn run_replies(
    conns: usize,
    reply: usize,
    until: Until,
    serve: Serve,
) -> io::Result<Sample> {
    let listener = listen()?;
    let addr = listener.local_addr()?;
    // The whole life of the server thread, accepts and closes included
    // (a few per connection, against thousands of round trips each).
    let server = spawn_server(move || serve(listener, conns));
    let r = match until {
        Until::Elapsed(d) => generate_in_child(
            "--echo-generator",
            addr,
            &[
                conns.to_string(),
                d.as_secs_f64().to_string(),
                reply.to_string(),
            ],
        ),
        Until::Iterations(_) => generate(addr, conns, reply, until),
    };
    // The generator closed every connection: the server sees EOF on each
    // and returns.
    let s = join(server);
    let (rate, round_trips) = r?;
    Ok(cost_sample(rate, round_trips, &s?, &ROUND_TRIP))
}

/// The listening socket every TCP case serves on: loopback, an ephemeral
/// port, a backlog of [`BACKLOG`], non-blocking.
pub(crate) fn listen() -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The listen backlog of every server (the kernel caps it at
/// `net.core.somaxconn`).
pub(crate) const BACKLOG: i32 = 4096;

/// The server thread's CPU time per round trip, and its user-space part.
pub(crate) const CPU: &str = "server CPU/round trip";
pub(crate) const USER: &str = "of which user";
const ROUND_TRIP: CostNames = CostNames {
    cpu: CPU,
    user: USER,
    syscalls: "syscalls/round trip",
};

/// The child side of [`run`]'s generator: `ADDR CONNS SECONDS [REPLY]`;
/// prints the round trips per second and the round trips made.
pub(crate) fn generator_main(args: &[String]) -> io::Result<()> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: --echo-generator ADDR CONNS SECONDS [REPLY_BYTES]",
        )
    };
    let (addr, conns, secs, reply) = match args {
        [a, c, s] => (a, c, s, None),
        [a, c, s, r] => (a, c, s, Some(r)),
        _ => return Err(bad()),
    };
    let addr: SocketAddr = addr.parse().map_err(|_| bad())?;
    let conns: usize = conns.parse().map_err(|_| bad())?;
    let secs: f64 = secs.parse().map_err(|_| bad())?;
    let reply: usize = match reply {
        Some(r) => r.parse().map_err(|_| bad())?,
        None => MSG,
    };
    if !(secs.is_finite() && secs > 0.0) || reply == 0 {
        return Err(bad());
    }
    crate::sys::raise_fd_limit(conns as u64 + 256)?;
    let (rate, total) = generate(
        addr,
        conns,
        reply,
        Until::Elapsed(Duration::from_secs_f64(secs)),
    )?;
    println!("{rate} {total}");
    Ok(())
}

/// Connects `conns` clients and keeps one request in flight on each: a
/// round trip is a 64-byte request and all `reply` bytes of its answer.
/// Returns the round trips per second while measuring, and all the round
/// trips made (warm-up included).
fn generate(addr: SocketAddr, conns: usize, reply: usize, until: Until) -> io::Result<(f64, u64)> {
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        // Close with RST: no TIME_WAIT pile-up across runs.
        SockRef::from(&s).set_linger(Some(Duration::ZERO))?;
        s.set_nonblocking(true)?;
        streams.push(s);
    }
    let ep = Epoll::new()?;
    let request = [0x5au8; MSG];
    let mut got = vec![0usize; conns];
    for (i, s) in streams.iter_mut().enumerate() {
        ep.add(s.as_raw_fd(), i as u64, libc::EPOLLIN as u32)?;
        s.write_all(&request)?;
    }
    let mut events = epoll_events(1024);
    let mut buf = vec![0u8; reply];
    let mut window = Window::new(until);
    while window.more() {
        let n = ep.wait(&mut events, 5000)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "echo: no response for 5 s",
            ));
        }
        for ev in &events[..n] {
            let i = ev.u64 as usize;
            let s = &mut streams[i];
            match s.read(&mut buf[..reply - got[i]]) {
                Ok(0) => return Err(io::Error::other("echo: server closed a connection")),
                Ok(k) => {
                    got[i] += k;
                    if got[i] == reply {
                        got[i] = 0;
                        window.count();
                        if s.write(&request)? != MSG {
                            return Err(io::Error::other("echo: short write"));
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(window.result())
}

/// What a readiness server does with a readable connection: the echo,
/// or the replies of the `replies` case.
pub(crate) trait Answer {
    /// Reads what connection `i` has and answers it.
    fn answer<S: Read + Write>(&mut self, i: usize, s: S) -> io::Result<Step>;

    /// The same for a std stream (the uniloop and raw epoll servers).
    fn answer_std(&mut self, i: usize, s: &TcpStream) -> io::Result<Step> {
        self.answer(i, s)
    }
}

/// What [`Answer::answer`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The connection has nothing more to read (a short read, or none).
    Drained,
    /// It filled the buffer: there may be more (an edge-triggered loop
    /// reads again).
    More,
    /// The peer is gone.
    Closed,
}

/// Echoes whatever a connection has.
pub(crate) struct Echo([u8; 4096]);

impl Echo {
    pub(crate) fn new() -> Echo {
        Echo([0; 4096])
    }
}

impl Answer for Echo {
    /// Not through the generic [`Answer::answer`], and with `write_all`
    /// written out: the loop stays inline here (the generic `write_all`,
    /// shared with the other servers, is not inlined), as it was when
    /// these servers echoed in a function of their own, so the
    /// `--callgrind` echo probes count what they counted then.
    fn answer_std(&mut self, _: usize, mut s: &TcpStream) -> io::Result<Step> {
        let n = match s.read(&mut self.0) {
            Ok(0) => return Ok(Step::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Drained),
            Err(e) if gone(&e) => return Ok(Step::Closed),
            Err(e) => return Err(e),
        };
        let mut out = &self.0[..n];
        while !out.is_empty() {
            match s.write(out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => out = &out[k..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if gone(&e) => return Ok(Step::Closed),
                Err(e) => return Err(e),
            }
        }
        Ok(if n < self.0.len() {
            Step::Drained
        } else {
            Step::More
        })
    }

    fn answer<S: Read + Write>(&mut self, _: usize, mut s: S) -> io::Result<Step> {
        match s.read(&mut self.0) {
            Ok(0) => Ok(Step::Closed),
            Ok(n) => match s.write_all(&self.0[..n]) {
                Ok(()) if n < self.0.len() => Ok(Step::Drained),
                Ok(()) => Ok(Step::More),
                Err(e) if gone(&e) => Ok(Step::Closed),
                Err(e) => Err(e),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::Drained),
            Err(e) if gone(&e) => Ok(Step::Closed),
            Err(e) => Err(e),
        }
    }
}

/// The generator resets its connections when it stops.
pub(crate) fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn serve_uniloop(listener: TcpListener, conns: usize, backend: Backend) -> io::Result<()> {
    serve_uniloop_with(listener, conns, backend, Echo::new())
}

/// uniloop in readiness mode: told a connection is readable, `answer`
/// reads and writes it itself.
pub(crate) fn serve_uniloop_with<A: Answer>(
    listener: TcpListener,
    conns: usize,
    backend: Backend,
    mut answer: A,
) -> io::Result<()> {
    use uniloop::{Event, Events, Interest, Runtime, Token};
    const LISTENER: Token = Token(u64::MAX);
    let mut rt = Runtime::builder().backend(backend).build()?;
    rt.register(&listener, LISTENER, Interest::READABLE)?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(conns);
    let mut open = 0;
    let mut events = Events::with_capacity(1024);
    while streams.len() < conns || open > 0 {
        if rt.wait(&mut events, Some(Duration::from_secs(30)))? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "uniloop: idle 30 s",
            ));
        }
        for ev in &events {
            let Event::Io { token, .. } = *ev else {
                continue;
            };
            if token == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(true)?;
                            s.set_nodelay(true)?;
                            rt.register(&s, Token(streams.len() as u64), Interest::READABLE)?;
                            streams.push(Some(s));
                            open += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            } else if let Some(s) = streams[token.0 as usize].as_ref() {
                if answer.answer_std(token.0 as usize, s)? == Step::Closed {
                    rt.deregister(s)?;
                    streams[token.0 as usize] = None;
                    open -= 1;
                }
            }
        }
    }
    Ok(())
}

/// Posted I/O only: a read with the connection's buffer; when it brings
/// bytes, that buffer goes out as the write; when the write is done, the
/// emptied buffer is the next read. This loop allocates one buffer per
/// connection and nothing per round trip. With `hold`
/// ([`uniloop::Builder::hold_writes`]) a turn's writes go out at the next
/// `wait`: on io_uring as submissions riding in the `io_uring_enter` that
/// waits.
fn serve_uniloop_completion(
    listener: TcpListener,
    conns: usize,
    backend: Backend,
    hold: bool,
) -> io::Result<()> {
    use uniloop::{Event, Events, Interest, OpKind, Runtime, Token};
    const LISTENER: Token = Token(u64::MAX);
    let mut rt = Runtime::builder()
        .backend(backend)
        .hold_writes(hold)
        .build()?;
    rt.register(&listener, LISTENER, Interest::READABLE)?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(conns);
    let mut open = 0;
    let mut events = Events::with_capacity(1024);
    while streams.len() < conns || open > 0 {
        if rt.wait(&mut events, Some(Duration::from_secs(30)))? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "uniloop completion: idle 30 s",
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
                            // SAFETY: the stream stays in `streams` until after its
                            // `deregister`.
                            unsafe { rt.post_read(&s, Vec::with_capacity(4096)) }?;
                            streams.push(Some(s));
                            open += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                },
                Event::IoDone { token, op, .. } => {
                    let i = token.0 as usize;
                    let Some(s) = streams[i].as_ref() else {
                        continue;
                    };
                    let done = rt.take_io(op).ok_or_else(|| {
                        io::Error::other("uniloop completion: IoDone without a result")
                    })?;
                    let alive = match done.error {
                        Some(e) if gone(&e) => false,
                        Some(e) => return Err(e),
                        None => match done.kind {
                            OpKind::Read if done.bytes == 0 => false,
                            OpKind::Read => {
                                // SAFETY: the stream stays in `streams` until after its
                                // `deregister`.
                                unsafe { rt.post_write(s, done.buf) }?;
                                true
                            }
                            OpKind::Write => {
                                let mut buf = done.buf;
                                buf.clear();
                                // SAFETY: the stream stays in `streams` until after its
                                // `deregister`.
                                unsafe { rt.post_read(s, buf) }?;
                                true
                            }
                            _ => true,
                        },
                    };
                    if !alive {
                        rt.deregister(s)?;
                        streams[i] = None;
                        open -= 1;
                    }
                }
                // A connection's readiness while its write is out (no read
                // posted): the next posted read takes the data.
                _ => {}
            }
        }
    }
    Ok(())
}

fn serve_mio(listener: TcpListener, conns: usize) -> io::Result<()> {
    serve_mio_with(listener, conns, Echo::new())
}

/// mio, edge-triggered as its docs show: `answer` until the connection is
/// drained.
pub(crate) fn serve_mio_with<A: Answer>(
    listener: TcpListener,
    conns: usize,
    mut answer: A,
) -> io::Result<()> {
    use mio::net::{TcpListener as MioListener, TcpStream as MioStream};
    use mio::{Events, Interest, Poll, Token};
    const LISTENER: Token = Token(usize::MAX);
    let mut poll = Poll::new()?;
    let mut listener = MioListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut streams: Vec<Option<MioStream>> = Vec::with_capacity(conns);
    let mut accepted = 0;
    let mut open = 0;
    let mut events = Events::with_capacity(1024);
    while accepted < conns || open > 0 {
        poll.poll(&mut events, Some(Duration::from_secs(30)))?;
        if events.is_empty() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "mio: idle 30 s"));
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                // Edge-triggered: accept until WouldBlock.
                loop {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            s.set_nodelay(true)?;
                            let token = Token(streams.len());
                            poll.registry()
                                .register(&mut s, token, Interest::READABLE)?;
                            streams.push(Some(s));
                            accepted += 1;
                            open += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let i = ev.token().0;
            let Some(s) = streams[i].as_mut() else {
                continue;
            };
            // Edge-triggered: read until WouldBlock (a short read means the
            // socket is drained, as tokio assumes too).
            let alive = loop {
                match answer.answer(i, &*s)? {
                    Step::More => {}
                    Step::Drained => break true,
                    Step::Closed => break false,
                }
            };
            if !alive {
                poll.registry().deregister(s)?;
                streams[i] = None;
                open -= 1;
            }
        }
    }
    Ok(())
}

fn serve_tokio(listener: TcpListener, conns: usize) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio_rt()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut tasks = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (mut s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            tasks.push(tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.map_err(io::Error::other)?;
        }
        Ok(())
    })
}

fn serve_raw(listener: TcpListener, conns: usize) -> io::Result<()> {
    serve_raw_with(listener, conns, Echo::new())
}

/// The raw epoll loop: level-triggered, `answer` once per readable
/// connection.
pub(crate) fn serve_raw_with<A: Answer>(
    listener: TcpListener,
    conns: usize,
    mut answer: A,
) -> io::Result<()> {
    const LISTENER: u64 = u64::MAX;
    let ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), LISTENER, libc::EPOLLIN as u32)?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(conns);
    let mut open = 0;
    let mut events = epoll_events(1024);
    while streams.len() < conns || open > 0 {
        let n = ep.wait(&mut events, 30_000)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "raw: idle 30 s"));
        }
        for ev in &events[..n] {
            if ev.u64 == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(true)?;
                            s.set_nodelay(true)?;
                            ep.add(s.as_raw_fd(), streams.len() as u64, libc::EPOLLIN as u32)?;
                            streams.push(Some(s));
                            open += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let i = ev.u64 as usize;
            if let Some(s) = streams[i].as_ref() {
                if answer.answer_std(i, s)? == Step::Closed {
                    ep.delete(s.as_raw_fd())?;
                    streams[i] = None;
                    open -= 1;
                }
            }
        }
    }
    Ok(())
}

fn serve_uring_raw(listener: TcpListener, conns: usize, defer: bool) -> io::Result<()> {
    serve_uring_raw_with(listener, conns, defer, None)
}

/// The limit for posted I/O on io_uring, written the way a C program
/// using the ring directly would: one `RECV` or send per connection in
/// the ring at any time, `user_data` = connection index × 2 (+ 1 for a
/// send), one `submit_and_wait` per turn, `COOP_TASKRUN | TASKRUN_FLAG`
/// where the kernel has them (with `defer`: `DEFER_TASKRUN |
/// SINGLE_ISSUER` instead, task work run only inside the enter that
/// waits). The send is a `SEND` of what came (the echo) or, with
/// `replies: Some(k)`, one `SENDMSG` of k 64-byte replies, an iovec each,
/// to each 64-byte request. The connections are all accepted first (the
/// generator connects them all before it sends).
pub(crate) fn serve_uring_raw_with(
    listener: TcpListener,
    conns: usize,
    defer: bool,
    replies: Option<usize>,
) -> io::Result<()> {
    use io_uring::{opcode, types, IoUring};
    const SIZE: usize = 4096;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(conns);
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    while streams.len() < conns {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nodelay(true)?;
                streams.push(Some(s));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(&mut pfd, 1, 30_000) } == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "raw io_uring: no connection for 30 s",
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    // Declared before the ring, so dropped after it (and every request has
    // completed by then anyway).
    let mut bufs: Vec<[u8; SIZE]> = vec![[0; SIZE]; conns];
    // The replies: one 64-byte message, k iovecs naming it, and one
    // msghdr per connection naming those (the kernel reads them while
    // the connection's SENDMSG is in the ring).
    let k = replies.unwrap_or(0);
    let reply = [0xa5u8; MSG];
    let iovs: Vec<libc::iovec> = (0..k)
        .map(|_| libc::iovec {
            iov_base: reply.as_ptr() as *mut libc::c_void,
            iov_len: MSG,
        })
        .collect();
    let msgs: Vec<libc::msghdr> = (0..if k > 0 { conns } else { 0 })
        .map(|_| {
            // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
            let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
            m.msg_iov = iovs.as_ptr() as *mut libc::iovec;
            m.msg_iovlen = k as _;
            m
        })
        .collect();
    // Bytes of a request not yet whole, per connection.
    let mut partial = vec![0usize; conns];
    let entries = (conns as u32).next_power_of_two().max(64);
    let mut ring: IoUring = if defer {
        IoUring::builder()
            .setup_defer_taskrun()
            .setup_single_issuer()
            .build(entries)?
    } else {
        IoUring::builder()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(entries)
            .or_else(|_| IoUring::new(entries))?
    };
    let recv = |i: usize, fd: i32, buf: &mut [u8; SIZE]| {
        opcode::Recv::new(types::Fd(fd), buf.as_mut_ptr(), SIZE as u32)
            .build()
            .user_data((i as u64) << 1)
    };
    let push = |ring: &mut IoUring, sqe: io_uring::squeue::Entry| -> io::Result<()> {
        loop {
            // SAFETY: every buffer a request points at is in `bufs`,
            // `msgs`, `iovs` or `reply`, which outlive the ring and are not
            // touched while its request is in the ring (one request per
            // connection at a time).
            if unsafe { ring.submission().push(&sqe) }.is_ok() {
                return Ok(());
            }
            ring.submit()?;
        }
    };
    for (i, s) in streams.iter().enumerate() {
        let fd = s.as_ref().map_or(-1, |s| s.as_raw_fd());
        push(&mut ring, recv(i, fd, &mut bufs[i]))?;
    }
    let mut open = conns;
    let mut done: Vec<(u64, i32)> = Vec::with_capacity(entries as usize * 2);
    let ts = types::Timespec::new().sec(30);
    let args = types::SubmitArgs::new().timespec(&ts);
    while open > 0 {
        match ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "raw io_uring: idle 30 s",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        done.clear();
        done.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        for &(data, res) in &done {
            let i = (data >> 1) as usize;
            let Some(fd) = streams[i].as_ref().map(|s| s.as_raw_fd()) else {
                continue;
            };
            let next = if data & 1 == 0 {
                // A receive: answer what came; end of stream or an error
                // closes (nothing of this connection is in the ring then).
                if res <= 0 {
                    None
                } else if k == 0 {
                    Some(
                        opcode::Send::new(types::Fd(fd), bufs[i].as_ptr(), res as u32)
                            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
                            .build()
                            .user_data((i as u64) << 1 | 1),
                    )
                } else {
                    partial[i] += res as usize;
                    match partial[i] / MSG {
                        0 => Some(recv(i, fd, &mut bufs[i])),
                        1 => {
                            partial[i] -= MSG;
                            Some(
                                opcode::SendMsg::new(types::Fd(fd), &msgs[i])
                                    .flags((libc::MSG_NOSIGNAL | libc::MSG_WAITALL) as u32)
                                    .build()
                                    .user_data((i as u64) << 1 | 1),
                            )
                        }
                        _ => {
                            return Err(io::Error::other(
                                "raw io_uring: more than one request in flight",
                            ))
                        }
                    }
                }
            } else {
                (res >= 0).then(|| recv(i, fd, &mut bufs[i]))
            };
            match next {
                Some(sqe) => push(&mut ring, sqe)?,
                None => {
                    streams[i] = None;
                    open -= 1;
                }
            }
        }
    }
    Ok(())
}
