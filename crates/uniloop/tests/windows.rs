//! IOCP-specific behaviour: listeners through `AFD_POLL_ACCEPT`, polls in
//! flight when a socket is deregistered or the runtime dropped, many
//! sockets on one port, and connect failures.
#![cfg(windows)]

mod util;

use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::windows::io::AsRawSocket;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use uniloop::{Event, Events, Interest, Readiness, Runtime, Token};
use util::*;

fn io_events(events: &[Event]) -> Vec<(Token, Readiness)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Io { token, ready } => Some((token, ready)),
            _ => None,
        })
        .collect()
}

/// Handles open in this process (sockets and AFD handles are handles).
/// Wine answers 0; see [`handle_high_water`].
fn handle_count() -> u32 {
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};
    let mut n = 0;
    // SAFETY: the pseudo-handle needs no closing; `n` is a valid out-pointer.
    let ok = unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut n) };
    assert_ne!(
        ok,
        0,
        "GetProcessHandleCount: {}",
        io::Error::last_os_error()
    );
    n
}

/// The largest of 256 fresh handle values. Wine hands out the lowest free
/// handle slot, so every handle leaked below the probe pushes this up by
/// one slot (4); it is the leak check that works under Wine.
fn handle_high_water() -> u64 {
    let probes: Vec<UdpSocket> = (0..256)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    probes.iter().map(|s| s.as_raw_socket()).max().unwrap()
}

#[test]
fn listener_with_200_pending_connections() {
    const N: usize = 200;
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.listen(N as i32 + 56).unwrap();
    let listener = TcpListener::from(socket);
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    // All of them are waiting before the listener is even registered.
    let clients: Vec<TcpStream> = (0..N).map(|_| TcpStream::connect(addr).unwrap()).collect();

    let mut rt = Runtime::new().unwrap();
    rt.register(&listener, Token(1), Interest::READABLE)
        .unwrap();
    let mut events = Events::with_capacity(16);
    let mut accepted = Vec::new();
    let start = Instant::now();
    while accepted.len() < N {
        assert!(
            start.elapsed() < GUARD,
            "accepted {} of {N}",
            accepted.len()
        );
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for (token, ready) in io_events(&events.iter().copied().collect::<Vec<_>>()) {
            assert_eq!(token, Token(1));
            assert!(ready.is_readable(), "{ready:?}");
            loop {
                match listener.accept() {
                    Ok((conn, _)) => accepted.push(conn),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("accept: {e}"),
                }
            }
        }
    }
    assert_eq!(accepted.len(), N);
    assert_eq!(
        poll_now(&mut rt, &mut events),
        vec![],
        "no one left to accept"
    );
    drop(clients);
}

#[test]
fn deregister_with_poll_pending_then_register_with_new_token() {
    let mut rt = Runtime::new().unwrap();
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(8);
    // Issues the poll; nothing to read, so it stays in flight.
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    rt.deregister(&server).unwrap();
    rt.register(&server, Token(2), Interest::READABLE).unwrap();
    send(&client, b"x");
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    for _ in 0..3 {
        let again = poll_now(&mut rt, &mut events);
        for (token, ready) in io_events(&seen).into_iter().chain(io_events(&again)) {
            assert_eq!(token, Token(2), "stale event under the old token");
            assert!(ready.is_readable());
        }
    }
    assert_eq!(drain(&server), b"x");
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

#[test]
fn reregister_with_poll_pending_takes_the_new_interest() {
    let mut rt = Runtime::new().unwrap();
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(8);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    rt.reregister(&server, Token(2), Interest::WRITABLE)
        .unwrap();
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(io_events(&seen).len(), 1);
    let (token, ready) = io_events(&seen)[0];
    assert_eq!(token, Token(2));
    assert!(ready.is_writable() && !ready.is_readable(), "{ready:?}");
    drop(client);
}

#[test]
fn drop_runtime_with_polls_pending_leaks_no_handles() {
    fn round() {
        let mut rt = Runtime::new().unwrap();
        let pairs: Vec<_> = (0..40).map(|_| tcp_pair()).collect();
        for (i, (_, server)) in pairs.iter().enumerate() {
            rt.register(server, Token(i as u64), Interest::READABLE)
                .unwrap();
        }
        let mut events = Events::with_capacity(64);
        // Issue every poll; nothing is readable, so all stay in flight.
        assert_eq!(poll_now(&mut rt, &mut events), vec![]);
        // Some deregistered with their poll in flight, some data arriving.
        for (_, server) in &pairs[..10] {
            rt.deregister(server).unwrap();
        }
        send(&pairs[20].0, b"x");
        let poster = rt.poster();
        drop(rt);
        // The doorbell outlives the runtime: ringing it is harmless.
        assert!(poster.wake().is_err());
        drop(pairs);
    }
    // The first round warms up whatever Winsock and the test harness keep.
    round();
    let (before, before_high) = (handle_count(), handle_high_water());
    for _ in 0..20 {
        round();
    }
    let (after, after_high) = (handle_count(), handle_high_water());
    assert!(
        after <= before + 8,
        "handles grew from {before} to {after} over 20 runtimes"
    );
    assert!(
        after_high <= before_high + 4 * 8,
        "handle values grew from {before_high} to {after_high} over 20 runtimes"
    );
}

#[test]
fn two_thousand_registered_one_active() {
    const N: usize = 2_000;
    let mut rt = Runtime::new().unwrap();
    let pairs: Vec<_> = (0..N).map(|_| tcp_pair()).collect();
    for (i, (_, server)) in pairs.iter().enumerate() {
        rt.register(server, Token(i as u64), Interest::READABLE)
            .unwrap();
    }
    let mut events = Events::with_capacity(256);
    for active in [N / 3, N - 1, 7] {
        send(&pairs[active].0, b"ping");
        let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
        let tokens: Vec<Token> = io_events(&seen).into_iter().map(|(t, _)| t).collect();
        assert_eq!(tokens, vec![Token(active as u64)]);
        assert_eq!(drain(&pairs[active].1), b"ping");
        assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    }
}

#[test]
fn connect_failure_is_error_readiness() {
    // A loopback port nobody listens on.
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_nonblocking(true).unwrap();
    match socket.connect(&addr.into()) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        // WSAEWOULDBLOCK, as std does not map it for connect everywhere.
        Err(e) if e.raw_os_error() == Some(10035) => {}
        other => panic!("expected a connect in progress, got {other:?}"),
    }
    let mut rt = Runtime::new().unwrap();
    rt.register(&socket, Token(7), Interest::WRITABLE).unwrap();
    let mut events = Events::with_capacity(8);
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    let (token, ready) = io_events(&seen)[0];
    assert_eq!(token, Token(7));
    assert!(
        ready.is_error() && ready.is_write_closed(),
        "a failed connect is an error: {ready:?}"
    );
    let err = socket.take_error().unwrap().expect("SO_ERROR is set");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn reset_then_read_gives_error_or_eof() {
    let mut rt = Runtime::new().unwrap();
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let client = Socket::from(client);
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client);
    let mut events = Events::with_capacity(8);
    wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    // Windows reports the reset; Wine returns EOF (see shared/WINE.md).
    match (&server).read(&mut [0u8; 16]) {
        Ok(0) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ) => {}
        other => panic!("after a reset: {other:?}"),
    }
    rt.deregister(&server).unwrap();
}
