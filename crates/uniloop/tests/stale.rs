//! Sources closed behind the runtime's back (issue 9, defects 2 and 3), on
//! every backend: a registered source closed without `deregister` reports
//! nothing and makes no busy loop, and a new source that gets its fd (or
//! handle) number registers normally, replacing the stale entry.
//!
//! These tests close a registered source and count on the next socket made
//! getting the same number (Unix hands out the lowest free fd, Wine the
//! lowest free handle slot). A socket made by another test in between would
//! take the number — and on poll(2), which watches fd numbers, would be
//! watched under the closed registration — so they live in their own test
//! binary and take turns ([`one_at_a_time`]).

mod util;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use uniloop::{Backend, Event, Events, Interest, Runtime, Token};
use util::*;

fn rt(b: Backend) -> Runtime {
    Runtime::builder().backend(b).build().unwrap()
}

/// Serialises the tests of this binary: none of them makes a socket while
/// another one waits for a number to come back.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn io_events(events: &Events) -> Vec<(Token, uniloop::Readiness)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Io { token, ready } => Some((token, ready)),
            _ => None,
        })
        .collect()
}

/// Issue 9, defect 2: poll(2) reported a closed fd (`POLLNVAL`) as
/// `WRITE_CLOSED | ERROR` on every wait, a busy loop, where epoll reports
/// nothing. Two sources: one idle when it is closed (on IOCP its AFD poll is
/// in flight and completes with `AFD_POLL_LOCAL_CLOSE`), one that has just
/// reported (on IOCP its next poll is issued on a closed handle).
fn closed_source_reports_nothing(b: Backend) {
    let _turn = one_at_a_time();
    let mut rt = rt(b);
    let (_idle_peer, idle) = tcp_pair();
    let (busy_peer, busy) = tcp_pair();
    rt.register(&idle, Token(1), Interest::READABLE).unwrap();
    rt.register(&busy, Token(2), Interest::READABLE).unwrap();
    send(&busy_peer, b"x");
    let mut events = Events::with_capacity(16);
    wait_until(&mut rt, &mut events, |e| {
        matches!(
            e,
            Event::Io {
                token: Token(2),
                ..
            }
        )
    });
    drop(idle);
    drop(busy);
    // Short waits, a bounded number of them: a backend that reports the
    // closed sources, or spins on them, shows up as events here.
    let mut seen = Vec::new();
    for _ in 0..5 {
        rt.wait(&mut events, Some(Duration::from_millis(10)))
            .unwrap();
        seen.extend(io_events(&events));
    }
    assert_eq!(seen, vec![], "{b:?}: events for closed sources");
    assert_eq!(rt.registered(), 2, "still registered until deregistered");
}

macro_rules! every_backend {
    ($($test:ident)*) => {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        mod epoll {
            $( #[test] fn $test() { super::$test(uniloop::Backend::Epoll) } )*
        }
        #[cfg(unix)]
        mod poll {
            $( #[test] fn $test() { super::$test(uniloop::Backend::Poll) } )*
        }
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd", target_os = "openbsd", target_os = "netbsd", target_os = "dragonfly"))]
        mod kqueue {
            $( #[test] fn $test() { super::$test(uniloop::Backend::Kqueue) } )*
        }
        #[cfg(windows)]
        mod iocp {
            $( #[test] fn $test() { super::$test(uniloop::Backend::Iocp) } )*
        }
    };
}

every_backend! {
    closed_source_reports_nothing
}
