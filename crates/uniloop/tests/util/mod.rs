//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use uniloop::{Event, Events, Runtime};

/// Generous failure guard for anything that should happen "now".
pub const GUARD: Duration = Duration::from_secs(20);

/// A connected, non-blocking loopback TCP pair `(client, server)`.
#[track_caller]
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nonblocking(true).unwrap();
    server.set_nonblocking(true).unwrap();
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    (client, server)
}

/// Writes all of `data` to a non-blocking socket that has room for it.
#[track_caller]
pub fn send(mut s: &TcpStream, data: &[u8]) {
    s.write_all(data).unwrap();
}

/// Reads until the socket would block; returns what was read.
#[track_caller]
pub fn drain(mut s: &TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Waits (bounded by [`GUARD`]) until `pred` has seen an event it accepts;
/// returns every event seen on the way.
#[track_caller]
pub fn wait_until(
    rt: &mut Runtime,
    events: &mut Events,
    mut pred: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let left = GUARD
            .checked_sub(start.elapsed())
            .expect("event did not arrive within the guard time");
        rt.wait(events, Some(left)).unwrap();
        let mut hit = false;
        for ev in events.iter() {
            seen.push(*ev);
            hit |= pred(ev);
        }
        if hit {
            return seen;
        }
    }
}

/// One non-blocking wait; the events it returned.
#[track_caller]
pub fn poll_now(rt: &mut Runtime, events: &mut Events) -> Vec<Event> {
    rt.wait(events, Some(Duration::ZERO)).unwrap();
    events.iter().copied().collect()
}

/// Raises the soft open-file limit to `want` (or the hard limit).
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
pub fn raise_fd_limit(want: u64) -> u64 {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid out-pointer for getrlimit/setrlimit.
        unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
            if lim.rlim_cur < want as libc::rlim_t {
                lim.rlim_cur = (want as libc::rlim_t).min(lim.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        lim.rlim_cur as u64
    }
    #[cfg(not(unix))]
    {
        want
    }
}
