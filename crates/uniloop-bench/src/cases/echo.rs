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
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};
use uniloop::Backend;

use super::{join, tokio_rt, Until};
use crate::measure::measured;
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
/// [`measured`].
///
/// The server thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) and its
/// user-space part (`getrusage(RUSAGE_THREAD)`), over its whole life, are
/// divided by all the round trips (warm-up included), as its system calls
/// are.
pub(crate) fn run(conns: usize, until: Until, serve: Serve) -> io::Result<Sample> {
    use crate::sys::{SyscallCount, ThreadCpu};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    let listener: TcpListener = socket.into();
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || {
        // The whole life of the server thread, accepts and closes included
        // (a few per connection, against thousands of round trips each).
        let count = SyscallCount::start();
        let cpu = ThreadCpu::now()?;
        measured(|| serve(listener, conns))?;
        let used = ThreadCpu::now()?.since(cpu);
        Ok((count.and_then(|c| c.read()), used))
    });
    let r = match until {
        Until::Elapsed(d) => generate_in_child(addr, conns, d),
        Until::Iterations(_) => generate(addr, conns, until),
    };
    // The generator closed every connection: the server sees EOF on each
    // and returns.
    let s = join(server);
    let (rate, round_trips) = r?;
    let (calls, cpu) = s?;
    let mut sample = Sample::new(rate);
    if round_trips > 0 {
        let per = |d: Duration, scale: f64| d.as_secs_f64() * scale / round_trips as f64;
        sample = sample
            .with(CPU, per(cpu.total, 1e6), "µs")
            .with(USER, per(cpu.user, 1e9), "ns");
        if let Some(calls) = calls {
            sample = sample.with(
                "syscalls/round trip",
                calls as f64 / round_trips as f64,
                "syscalls",
            );
        }
    }
    Ok(sample)
}

/// The server thread's CPU time per round trip, and its user-space part.
pub(crate) const CPU: &str = "server CPU/round trip";
pub(crate) const USER: &str = "of which user";

/// Runs the load generator as a child process (this binary with
/// `--echo-generator ADDR CONNS SECONDS`) and reads its result.
fn generate_in_child(addr: SocketAddr, conns: usize, d: Duration) -> io::Result<(f64, u64)> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--echo-generator")
        .arg(addr.to_string())
        .arg(conns.to_string())
        .arg(d.as_secs_f64().to_string())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "echo generator: {} ({})",
            out.status,
            text.trim()
        )));
    }
    let mut words = text.split_whitespace();
    match (
        words.next().and_then(|w| w.parse::<f64>().ok()),
        words.next().and_then(|w| w.parse::<u64>().ok()),
    ) {
        (Some(rate), Some(total)) => Ok((rate, total)),
        _ => Err(io::Error::other(format!(
            "echo generator: unreadable result {text:?}"
        ))),
    }
}

/// The child side of [`generate_in_child`]: `ADDR CONNS SECONDS`; prints
/// the round trips per second and the round trips made.
pub(crate) fn generator_main(args: &[String]) -> io::Result<()> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: --echo-generator ADDR CONNS SECONDS",
        )
    };
    let [addr, conns, secs] = args else {
        return Err(bad());
    };
    let addr: SocketAddr = addr.parse().map_err(|_| bad())?;
    let conns: usize = conns.parse().map_err(|_| bad())?;
    let secs: f64 = secs.parse().map_err(|_| bad())?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(bad());
    }
    crate::sys::raise_fd_limit(conns as u64 + 256)?;
    let (rate, total) = generate(addr, conns, Until::Elapsed(Duration::from_secs_f64(secs)))?;
    println!("{rate} {total}");
    Ok(())
}

/// Connects `conns` clients and keeps one request in flight on each.
/// Returns the round trips per second while measuring, and all the round
/// trips made (warm-up included).
fn generate(addr: SocketAddr, conns: usize, until: Until) -> io::Result<(f64, u64)> {
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
    let mut buf = [0u8; MSG];
    let start = Instant::now();
    let mut counted: u64 = 0;
    let mut total: u64 = 0;
    let mut measuring = None;
    loop {
        match until {
            Until::Elapsed(duration) => {
                let now = Instant::now();
                match measuring {
                    None if now - start >= duration / 5 => {
                        measuring = Some(now);
                        counted = 0;
                    }
                    Some(t) if now - t >= duration => break,
                    _ => {}
                }
            }
            Until::Iterations(n) => {
                measuring.get_or_insert(start);
                if counted >= n {
                    break;
                }
            }
        }
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
            match s.read(&mut buf[..MSG - got[i]]) {
                Ok(0) => return Err(io::Error::other("echo: server closed a connection")),
                Ok(k) => {
                    got[i] += k;
                    if got[i] == MSG {
                        got[i] = 0;
                        counted += 1;
                        total += 1;
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
    let elapsed = measuring.map_or(Duration::ZERO, |t| t.elapsed());
    Ok((counted as f64 / elapsed.as_secs_f64(), total))
}

/// Echoes whatever `s` has; `Ok(false)` when the peer is gone.
fn echo_once(mut s: &TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    match s.read(buf) {
        Ok(0) => Ok(false),
        Ok(n) => match s.write_all(&buf[..n]) {
            Ok(()) => Ok(true),
            Err(e) if gone(&e) => Ok(false),
            Err(e) => Err(e),
        },
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) if gone(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The generator resets its connections when it stops.
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn serve_uniloop(listener: TcpListener, conns: usize, backend: Backend) -> io::Result<()> {
    use uniloop::{Event, Events, Interest, Runtime, Token};
    const LISTENER: Token = Token(u64::MAX);
    let mut rt = Runtime::builder().backend(backend).build()?;
    rt.register(&listener, LISTENER, Interest::READABLE)?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(conns);
    let mut open = 0;
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 4096];
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
                if !echo_once(s, &mut buf)? {
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
    let mut buf = [0u8; 4096];
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
            let mut alive = true;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => {
                        alive = false;
                        break;
                    }
                    Ok(n) => match s.write_all(&buf[..n]) {
                        Ok(()) if n < buf.len() => break,
                        Ok(()) => {}
                        Err(e) if gone(&e) => {
                            alive = false;
                            break;
                        }
                        Err(e) => return Err(e),
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if gone(&e) => {
                        alive = false;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
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
    const LISTENER: u64 = u64::MAX;
    let ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), LISTENER, libc::EPOLLIN as u32)?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(conns);
    let mut open = 0;
    let mut events = epoll_events(1024);
    let mut buf = [0u8; 4096];
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
                if !echo_once(s, &mut buf)? {
                    ep.delete(s.as_raw_fd())?;
                    streams[i] = None;
                    open -= 1;
                }
            }
        }
    }
    Ok(())
}

/// The limit for posted I/O on io_uring, written the way a C program
/// using the ring directly would: one `RECV` or `SEND` per connection in
/// the ring at any time, `user_data` = connection index × 2 (+ 1 for a
/// send), one `submit_and_wait` per turn, `COOP_TASKRUN | TASKRUN_FLAG`
/// where the kernel has them (with `defer`: `DEFER_TASKRUN |
/// SINGLE_ISSUER` instead, task work run only inside the enter that
/// waits). The connections are all accepted first (the generator connects
/// them all before it sends).
fn serve_uring_raw(listener: TcpListener, conns: usize, defer: bool) -> io::Result<()> {
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
            // SAFETY: every buffer a request points at is in `bufs`, which
            // outlives the ring and is not touched while its request is in
            // the ring (one request per connection at a time).
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
                // A receive: echo what came; end of stream or an error
                // closes (nothing of this connection is in the ring then).
                (res > 0).then(|| {
                    opcode::Send::new(types::Fd(fd), bufs[i].as_ptr(), res as u32)
                        .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
                        .build()
                        .user_data((i as u64) << 1 | 1)
                })
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
