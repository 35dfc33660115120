//! Idle scaling: the cost of one loop iteration with 10 and with 10,000
//! registered idle sockets, while one active socket pair ping-pongs a byte
//! inside the same loop.

use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::Until;
use crate::measure::measured;
use crate::report::{Case, Role, Sample};
use crate::Config;

const SMALL: usize = 10;
const LARGE: usize = 10_000;

pub(crate) fn case(cfg: &Config) -> Case {
    let d = Duration::from_secs_f64(cfg.pick(1.0, 0.15));
    let case = Case::new(
        "idle",
        "idle",
        "idle scaling (cost per loop iteration, 10,000 vs 10 idle sockets)",
        "ratio",
    )
    .method(&format!(
        "one loop holds N idle UDP sockets plus a UNIX socket pair that passes one byte back and forth; \
         an iteration is one wait + read + write; each run measures N = {SMALL} and N = {LARGE} for {:?} each; \
         the figure is cost(N={LARGE}) ÷ cost(N={SMALL})",
        d
    ))
    .lower_is_better()
    .system("uniloop epoll", Role::Subject, move || {
        both(|n| uniloop(n, uniloop::Backend::Epoll, Until::Elapsed(d)))
    })
    .system("uniloop poll", Role::Uniloop, move || {
        both(|n| uniloop(n, uniloop::Backend::Poll, Until::Elapsed(d)))
    })
    .system("mio", Role::Peer, move || both(|n| mio_loop(n, Until::Elapsed(d))))
    .goal_value_at_most("uniloop epoll", 1.2)
    .note("poll(2) is O(registered) per wait by nature: the poll row shows the fallback's cost, not a goal");
    if !uniloop::Backend::Uring.is_available() {
        return case.note("no io_uring row: io_uring is not permitted on this machine");
    }
    case.system("uniloop io_uring", Role::Uniloop, move || {
        both(|n| uniloop(n, uniloop::Backend::Uring, Until::Elapsed(d)))
    })
}

fn both(mut per_iter: impl FnMut(usize) -> io::Result<f64>) -> io::Result<Sample> {
    let small = per_iter(SMALL)?;
    let large = per_iter(LARGE)?;
    Ok(Sample::new(large / small)
        .with("N=10", small, "ns/iter")
        .with("N=10000", large, "ns/iter"))
}

fn idle_sockets(n: usize) -> io::Result<Vec<UdpSocket>> {
    (0..n)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect()
}

fn pair() -> io::Result<(UnixStream, UnixStream)> {
    let (a, b) = UnixStream::pair()?;
    a.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    Ok((a, b))
}

/// Reads what is there and sends one byte back; a short read means drained.
fn bounce<S>(s: &S) -> io::Result<()>
where
    for<'a> &'a S: Read + Write,
{
    let mut s = s;
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(n) if n == buf.len() => continue,
            Ok(0) => return Err(io::Error::other("idle: pair closed")),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    s.write_all(&[1])
}

/// ns per iteration.
pub(crate) fn uniloop(n: usize, backend: uniloop::Backend, until: Until) -> io::Result<f64> {
    use uniloop::{Event, Events, Interest, Runtime, Token};
    let mut rt = Runtime::builder().backend(backend).build()?;
    let idle = idle_sockets(n)?;
    for (i, s) in idle.iter().enumerate() {
        rt.register(s, Token(i as u64 + 2), Interest::READABLE)?;
    }
    let (a, b) = pair()?;
    rt.register(&a, Token(0), Interest::READABLE)?;
    rt.register(&b, Token(1), Interest::READABLE)?;
    (&a).write_all(&[1])?;
    let mut events = Events::with_capacity(64);
    let start = Instant::now();
    let iters = measured(|| -> io::Result<u64> {
        let mut iters = 0u64;
        while until.more(start, iters) {
            for _ in 0..64 {
                rt.wait(&mut events, Some(Duration::from_secs(5)))?;
                for ev in &events {
                    match *ev {
                        Event::Io {
                            token: Token(0), ..
                        } => bounce(&a)?,
                        Event::Io {
                            token: Token(1), ..
                        } => bounce(&b)?,
                        _ => return Err(io::Error::other("idle: an idle socket woke")),
                    }
                }
                iters += 1;
            }
        }
        Ok(iters)
    })?;
    Ok(start.elapsed().as_nanos() as f64 / iters as f64)
}

/// ns per iteration.
pub(crate) fn mio_loop(n: usize, until: Until) -> io::Result<f64> {
    use mio::net::{UdpSocket as MioUdp, UnixStream as MioUnix};
    use mio::{Events, Interest, Poll, Token};
    let mut poll = Poll::new()?;
    let mut idle: Vec<MioUdp> = idle_sockets(n)?.into_iter().map(MioUdp::from_std).collect();
    for (i, s) in idle.iter_mut().enumerate() {
        poll.registry()
            .register(s, Token(i + 2), Interest::READABLE)?;
    }
    let (a, b) = pair()?;
    let mut a = MioUnix::from_std(a);
    let mut b = MioUnix::from_std(b);
    poll.registry()
        .register(&mut a, Token(0), Interest::READABLE)?;
    poll.registry()
        .register(&mut b, Token(1), Interest::READABLE)?;
    (&a).write_all(&[1])?;
    let mut events = Events::with_capacity(64);
    let start = Instant::now();
    let iters = measured(|| -> io::Result<u64> {
        let mut iters = 0u64;
        while until.more(start, iters) {
            for _ in 0..64 {
                poll.poll(&mut events, Some(Duration::from_secs(5)))?;
                for ev in events.iter() {
                    match ev.token() {
                        Token(0) => bounce(&a)?,
                        Token(1) => bounce(&b)?,
                        _ => return Err(io::Error::other("idle: an idle socket woke")),
                    }
                }
                iters += 1;
            }
        }
        Ok(iters)
    })?;
    Ok(start.elapsed().as_nanos() as f64 / iters as f64)
}
