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

/// One `#[test]` per backend this platform has for each `fn(Backend)`
/// named, in a module per backend (`epoll::name`, `poll::name`,
/// `kqueue::name`, `iocp::name`, `uring::name`), so that every backend runs
/// the same suite in one process. An entry is `name` or `name: lock`, where
/// `lock` is a function of the parent module whose result the test holds
/// while it runs; attributes before a name (`#[cfg(unix)]`, `#[ignore]`)
/// go on each of its tests. Entries are separated by commas or whitespace.
///
/// A backend the machine refuses (io_uring under a seccomp filter, say)
/// fails its tests rather than skipping them: the suites build their
/// runtime with `unwrap()`, and `scripts/test.sh` counts that the io_uring
/// tests ran.
///
/// The list of backends and their `cfg`s is here and nowhere else in the
/// tests: adding a backend is one line below.
#[macro_export]
macro_rules! every_backend {
    (@module $module:ident $backend:ident $(#[$cfg:meta])?;
     $( $(#[$attr:meta])* $test:ident $(: $lock:ident)? ),*) => {
        $(#[$cfg])?
        mod $module {
            $(
                $(#[$attr])*
                #[test]
                fn $test() {
                    $( let _lock = super::$lock(); )?
                    super::$test(uniloop::Backend::$backend)
                }
            )*
        }
    };
    ($( $(#[$attr:meta])* $test:ident $(: $lock:ident)? $(,)? )*) => {
        $crate::every_backend!(@module epoll Epoll #[cfg(any(target_os = "linux", target_os = "android"))];
            $( $(#[$attr])* $test $(: $lock)? ),*);
        $crate::every_backend!(@module poll Poll #[cfg(unix)];
            $( $(#[$attr])* $test $(: $lock)? ),*);
        $crate::every_backend!(@module kqueue Kqueue #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd", target_os = "dragonfly"))];
            $( $(#[$attr])* $test $(: $lock)? ),*);
        $crate::every_backend!(@module iocp Iocp #[cfg(windows)];
            $( $(#[$attr])* $test $(: $lock)? ),*);
        $crate::every_backend!(@module uring Uring #[cfg(target_os = "linux")];
            $( $(#[$attr])* $test $(: $lock)? ),*);
    };
}
