//! A registration with no readiness interest ([`Interest::NONE`]: posted
//! I/O only, or a paused source), and the runtime's OS handle for nesting
//! the loop in another one ([`Runtime::os_handle`],
//! [`Runtime::prepare_external_wait`]), on every backend of the platform.
//! (The C library's tests/c/runtime_semantics.c checks that the handle
//! becomes readable.)

mod util;

use std::time::Duration;

use uniloop::{Backend, Event, Events, Interest, Runtime, Token};
use util::*;

fn backends() -> Vec<Backend> {
    [
        Backend::Epoll,
        Backend::Poll,
        Backend::Kqueue,
        Backend::Iocp,
        Backend::Uring,
    ]
    .into_iter()
    .filter(|b| b.is_available())
    .collect()
}

#[test]
fn no_interest_reports_nothing_and_posted_io_works() {
    for b in backends() {
        let mut rt = Runtime::builder().backend(b).build().unwrap();
        let mut events = Events::with_capacity(16);
        let (client, server) = tcp_pair();
        rt.register(&server, Token(1), Interest::NONE).unwrap();
        send(&client, b"ping");
        for _ in 0..5 {
            let got = poll_now(&mut rt, &mut events);
            assert!(
                !got.iter().any(|e| matches!(e, Event::Io { .. })),
                "{b:?}: readiness with no interest: {got:?}"
            );
        }
        // SAFETY: `server` lives to the end of the test, after the read.
        let op = unsafe { rt.post_read(&server, Vec::with_capacity(16)) }.unwrap();
        wait_until(
            &mut rt,
            &mut events,
            |e| matches!(e, Event::IoDone { op: o, .. } if *o == op),
        );
        assert_eq!(rt.take_io(op).unwrap().buf, b"ping", "{b:?}");

        // Resumed, then paused again with data waiting.
        send(&client, b"more");
        rt.reregister(&server, Token(1), Interest::READABLE)
            .unwrap();
        wait_until(&mut rt, &mut events, |e| {
            matches!(
                e,
                Event::Io {
                    token: Token(1),
                    ..
                }
            )
        });
        rt.reregister(&server, Token(1), Interest::NONE).unwrap();
        let got = poll_now(&mut rt, &mut events);
        assert!(
            !got.iter().any(|e| matches!(e, Event::Io { .. })),
            "{b:?}: {got:?}"
        );
        rt.deregister(&server).unwrap();
    }
}

#[test]
fn os_handle_and_external_timeout() {
    for b in backends() {
        let mut rt = Runtime::builder().backend(b).build().unwrap();
        assert_eq!(rt.os_handle().is_some(), b != Backend::Poll, "{b:?}");
        // Nothing pending, no timer: no limit.
        assert_eq!(rt.prepare_external_wait().unwrap(), None, "{b:?}");
        assert_eq!(rt.prepare_external_wait().unwrap(), None, "{b:?}: twice");
        // A completion pending: now.
        rt.poster().post(1, 2).unwrap();
        assert_eq!(
            rt.prepare_external_wait().unwrap(),
            Some(Duration::ZERO),
            "{b:?}"
        );
        let mut events = Events::with_capacity(16);
        wait_until(&mut rt, &mut events, |e| {
            *e == Event::Completion { key: 1, data: 2 }
        });
        assert_eq!(rt.prepare_external_wait().unwrap(), None, "{b:?}: taken");
        // A timer: at most its delay (rounded up to the wheel's 1 ms).
        let id = rt.add_timer(3, Duration::from_secs(60), None);
        let t = rt
            .prepare_external_wait()
            .unwrap()
            .expect("a timer's deadline");
        assert!(t <= Duration::from_millis(60_001), "{b:?}: {t:?}");
        assert!(rt.cancel_timer(id));
    }
}
