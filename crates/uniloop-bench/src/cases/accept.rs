//! Accept rate: connections accepted per second, and the server thread's
//! CPU time per accepted connection. The load generator (its own process)
//! keeps [`CLIENTS`] connects in flight: each client connects, waits for
//! the one byte the server sends it, and closes (with RST, so no
//! `TIME_WAIT` piles up); then a new one starts in its place. Every server
//! does the same with each connection it accepts: one `send` of one byte
//! and a `close`, so the rows differ only in how they accept.
//!
//! The rows: uniloop's posted accept ([`uniloop::Runtime::post_accept`],
//! posted again as each one finishes; on io_uring the listener's one
//! multishot `IORING_OP_ACCEPT`, on epoll emulated on readiness), uniloop
//! in readiness mode (accept until `WouldBlock` on each readable event),
//! mio (the same, edge-triggered), a raw epoll accept loop, and a
//! hand-written io_uring loop with one multishot accept. The listener
//! (its backlog included) is the same for every row.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use uniloop::Backend;

use super::echo::listen;
use super::{cost_sample, generate_in_child, join, spawn_server, CostNames, Until, Window};
use crate::report::{Case, Role, Sample};
use crate::sys::{epoll_events, Epoll};
use crate::Config;

/// Connects in flight at once from the load generator.
const CLIENTS: usize = 64;

const URING_POSTED: &str = "uniloop posted accept (io_uring: multishot)";
const EPOLL_POSTED: &str = "uniloop posted accept (epoll: emulated)";
const READINESS: &str = "uniloop readiness (epoll)";
const RAW_EPOLL: &str = "raw epoll accept loop";
const RAW_URING: &str = "raw io_uring loop (multishot accept)";

/// What the server thread used, per accepted connection.
const CPU: &str = "server CPU/connection";
const CONNECTION: CostNames = CostNames {
    cpu: CPU,
    user: "of which user",
    syscalls: "syscalls/connection",
};

/// A server: accepts on the listener, answers each connection, and
/// returns how many it accepted once `stop` is set (checked after each
/// batch of accepts; a connection made after setting it wakes the
/// server).
type Serve = fn(TcpListener, &AtomicBool) -> io::Result<u64>;

pub(crate) fn case(cfg: &Config) -> Case {
    let secs = cfg.pick(5.0, 0.5);
    let d = Duration::from_secs_f64(secs);
    let run = move |serve: Serve| move || run(CLIENTS, d, serve);
    let mut case = Case::new(
        "accept",
        "accept",
        &format!("Accept rate, {CLIENTS} connects in flight"),
        "connections/s",
    )
    .method(&format!(
        "a load process keeps {CLIENTS} loopback connects in flight (non-blocking connect, wait for one byte, \
         close with RST, connect again); every server answers each accepted connection with a one-byte send and \
         a close, on the same listener (backlog {}); connections counted for {secs} s after a warm-up; uniloop \
         with posted accepts (on io_uring the listener's multishot IORING_OP_ACCEPT, on epoll emulated), and in \
         readiness mode (accept until WouldBlock on each readable event), beside mio, a raw epoll accept loop \
         and a hand-written io_uring loop (one multishot accept, one submit_and_wait per turn, COOP_TASKRUN); \
         server CPU/connection: the server thread's CPU time over its whole life ÷ the connections it accepted",
        super::echo::BACKLOG
    ))
    .system(READINESS, Role::Subject, run(serve_readiness))
    .system(EPOLL_POSTED, Role::Uniloop, run(|l, s| serve_posted(l, s, Backend::Epoll)))
    .system("mio", Role::Peer, run(serve_mio))
    .system(RAW_EPOLL, Role::Limit, run(serve_raw))
    .goal_pair_extra_at_most(EPOLL_POSTED, RAW_EPOLL, CPU, 1.10)
    .goal_pair_at_least(EPOLL_POSTED, RAW_EPOLL, 0.95);
    if Backend::Uring.is_available() {
        case = case
            .system(
                URING_POSTED,
                Role::Uniloop,
                run(|l, s| serve_posted(l, s, Backend::Uring)),
            )
            .system(RAW_URING, Role::Limit, run(serve_uring_raw))
            .goal_pair_extra_at_most(URING_POSTED, RAW_URING, CPU, 1.10)
            .goal_pair_at_least(URING_POSTED, RAW_URING, 0.95);
    } else {
        case = case.note("no io_uring rows: io_uring is not permitted on this machine");
    }
    case
}

/// Connections per second from the generator (in its own process), and
/// what the server thread spent per connection it accepted.
fn run(clients: usize, d: Duration, serve: Serve) -> io::Result<Sample> {
    let listener = listen()?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let server = spawn_server(move || serve(listener, &flag));
    let r = generate_in_child(
        "--accept-generator",
        addr,
        &[clients.to_string(), d.as_secs_f64().to_string()],
    );
    stop.store(true, Ordering::Relaxed);
    // Wakes the server to see `stop`; it may have seen it already and
    // closed the listener.
    let _ = TcpStream::connect(addr);
    let served = join(server)?;
    let (rate, _) = r?;
    Ok(cost_sample(rate, served.result, &served, &CONNECTION))
}

/// The child side of [`run`]'s generator: `ADDR CLIENTS SECONDS`; prints
/// the connections per second and the connections made.
pub(crate) fn generator_main(args: &[String]) -> io::Result<()> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: --accept-generator ADDR CLIENTS SECONDS",
        )
    };
    let [addr, clients, secs] = args else {
        return Err(bad());
    };
    let addr: SocketAddr = addr.parse().map_err(|_| bad())?;
    let clients: usize = clients.parse().map_err(|_| bad())?;
    let secs: f64 = secs.parse().map_err(|_| bad())?;
    if !(secs.is_finite() && secs > 0.0) || clients == 0 {
        return Err(bad());
    }
    crate::sys::raise_fd_limit(clients as u64 + 256)?;
    let (rate, total) = generate(addr, clients, Until::Elapsed(Duration::from_secs_f64(secs)))?;
    println!("{rate} {total}");
    Ok(())
}

/// Starts a non-blocking connect to `addr`, watched by `ep` as `slot`.
fn connect(ep: &Epoll, addr: SocketAddr, slot: usize) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None)?;
    // Close with RST: no TIME_WAIT pile-up, no port shortage.
    s.set_linger(Some(Duration::ZERO))?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    ep.add(s.as_raw_fd(), slot as u64, libc::EPOLLIN as u32)?;
    Ok(s)
}

/// Keeps `clients` connects in flight; a connection counts once its byte
/// has come. Returns the connections per second while measuring, and all
/// of them.
fn generate(addr: SocketAddr, clients: usize, until: Until) -> io::Result<(f64, u64)> {
    let ep = Epoll::new()?;
    let mut slots = (0..clients)
        .map(|i| connect(&ep, addr, i))
        .collect::<io::Result<Vec<Socket>>>()?;
    let mut events = epoll_events(1024);
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    let mut window = Window::new(until);
    while window.more() {
        let n = ep.wait(&mut events, 5000)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "accept: no connection answered for 5 s",
            ));
        }
        for ev in &events[..n] {
            let i = ev.u64 as usize;
            match slots[i].recv(&mut byte) {
                Ok(1) => {
                    window.count();
                    // Closing it takes it out of the epoll set.
                    slots[i] = connect(&ep, addr, i)?;
                }
                Ok(_) => return Err(io::Error::other("accept: closed without its byte")),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(window.result())
}

/// What every server does with a connection: one byte, and close. A
/// connection already reset (the generator's last ones) is no error.
fn answer(mut s: impl Write) {
    let _ = s.write(b"!");
}

/// Posted accepts: one posted at a time, posted again as each finishes.
fn serve_posted(listener: TcpListener, stop: &AtomicBool, backend: Backend) -> io::Result<u64> {
    use uniloop::{Event, Events, Interest, Runtime, Token};
    let mut rt = Runtime::builder().backend(backend).build()?;
    rt.register(&listener, Token(0), Interest::READABLE)?;
    // SAFETY: `listener` outlives `rt` (declared before it, so dropped
    // after it).
    unsafe { rt.post_accept(&listener) }?;
    let mut events = Events::with_capacity(1024);
    let mut accepted = 0;
    loop {
        if rt.wait(&mut events, Some(Duration::from_secs(30)))? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "uniloop posted accept: idle 30 s",
            ));
        }
        for ev in &events {
            let Event::IoDone { op, .. } = *ev else {
                continue;
            };
            let done = rt.take_io(op).ok_or_else(|| {
                io::Error::other("uniloop posted accept: IoDone without a result")
            })?;
            if let Some(e) = done.error {
                return Err(e);
            }
            if let Some((s, _)) = done.accepted {
                answer(s);
                accepted += 1;
            }
            // SAFETY: as above.
            unsafe { rt.post_accept(&listener) }?;
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(accepted);
        }
    }
}

/// Accepts until `WouldBlock`, answering each: the readiness servers'
/// handling of a readable listener.
fn accept_all(listener: &TcpListener, accepted: &mut u64) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                answer(s);
                *accepted += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => return Err(e),
        }
    }
}

fn serve_readiness(listener: TcpListener, stop: &AtomicBool) -> io::Result<u64> {
    use uniloop::{Events, Interest, Runtime, Token};
    let mut rt = Runtime::new()?;
    rt.register(&listener, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut accepted = 0;
    loop {
        if rt.wait(&mut events, Some(Duration::from_secs(30)))? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "uniloop readiness: idle 30 s",
            ));
        }
        accept_all(&listener, &mut accepted)?;
        if stop.load(Ordering::Relaxed) {
            return Ok(accepted);
        }
    }
}

fn serve_mio(listener: TcpListener, stop: &AtomicBool) -> io::Result<u64> {
    use mio::net::TcpListener as MioListener;
    use mio::{Events, Interest, Poll, Token};
    let mut poll = Poll::new()?;
    let mut listener = MioListener::from_std(listener);
    poll.registry()
        .register(&mut listener, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut accepted = 0;
    loop {
        poll.poll(&mut events, Some(Duration::from_secs(30)))?;
        if events.is_empty() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "mio: idle 30 s"));
        }
        // Edge-triggered: accept until WouldBlock.
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    answer(s);
                    accepted += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => return Err(e),
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(accepted);
        }
    }
}

fn serve_raw(listener: TcpListener, stop: &AtomicBool) -> io::Result<u64> {
    let ep = Epoll::new()?;
    ep.add(listener.as_raw_fd(), 0, libc::EPOLLIN as u32)?;
    let mut events = epoll_events(16);
    let mut accepted = 0;
    loop {
        if ep.wait(&mut events, 30_000)? == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "raw: idle 30 s"));
        }
        accept_all(&listener, &mut accepted)?;
        if stop.load(Ordering::Relaxed) {
            return Ok(accepted);
        }
    }
}

/// The hand-written io_uring loop: one multishot `IORING_OP_ACCEPT`
/// (armed again when the kernel ends it), one `submit_and_wait` per turn,
/// `COOP_TASKRUN | TASKRUN_FLAG` where the kernel has them. Each
/// connection it brings gets the same `send` and `close` as every row's.
fn serve_uring_raw(listener: TcpListener, stop: &AtomicBool) -> io::Result<u64> {
    use io_uring::{cqueue, opcode, types, IoUring};
    let mut ring: IoUring = IoUring::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(256)
        .or_else(|_| IoUring::new(256))?;
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(0);
    // SAFETY: the request names no memory, only the listener, which
    // outlives the ring.
    unsafe { ring.submission().push(&accept) }
        .map_err(|_| io::Error::other("raw io_uring: submission queue full"))?;
    let ts = types::Timespec::new().sec(30);
    let args = types::SubmitArgs::new().timespec(&ts);
    let mut done: Vec<(i32, u32)> = Vec::with_capacity(512);
    let mut accepted = 0;
    loop {
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
        done.extend(ring.completion().map(|c| (c.result(), c.flags())));
        for &(res, flags) in &done {
            if res >= 0 {
                // SAFETY: the kernel made this descriptor for us.
                answer(unsafe { TcpStream::from_raw_fd(res) });
                accepted += 1;
            } else if res != -libc::ECONNABORTED && res != -libc::EINTR {
                return Err(io::Error::from_raw_os_error(-res));
            }
            if !cqueue::more(flags) {
                // SAFETY: as above.
                unsafe { ring.submission().push(&accept) }
                    .map_err(|_| io::Error::other("raw io_uring: submission queue full"))?;
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(accepted);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::thread;

    use super::*;

    /// Every server answers each connection with one byte and closes it,
    /// counts what it accepted, and stops when told; the generator counts
    /// the connections it saw answered.
    #[test]
    fn every_server_answers_each_connection_and_counts_it() {
        let mut servers: Vec<(&str, Serve)> = vec![
            (READINESS, serve_readiness),
            (EPOLL_POSTED, |l, s| serve_posted(l, s, Backend::Epoll)),
            ("mio", serve_mio),
            (RAW_EPOLL, serve_raw),
        ];
        if Backend::Uring.is_available() {
            servers.push((URING_POSTED, |l, s| serve_posted(l, s, Backend::Uring)));
            servers.push((RAW_URING, serve_uring_raw));
        }
        for (name, serve) in servers {
            let listener = listen().unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            let server = thread::spawn(move || serve(listener, &flag));
            // One by one: the byte, then the server's close.
            for _ in 0..20 {
                let mut s = TcpStream::connect(addr).unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                assert_eq!(got, b"!", "{name}");
            }
            // Eight at a time, from the generator.
            let (_, made) = generate(addr, 8, Until::Iterations(200)).unwrap();
            assert!(made >= 200, "{name}: {made}");
            stop.store(true, Ordering::Relaxed);
            TcpStream::connect(addr).unwrap();
            let accepted = server.join().unwrap().unwrap();
            // Those, and perhaps the generator's connects still in flight
            // when it stopped (up to 8) and the one that woke the server.
            let least = 20 + made;
            assert!(
                (least..=least + 9).contains(&accepted),
                "{name}: accepted {accepted}, answered {}",
                20 + made
            );
        }
    }
}
