//! Posted reads: end of stream, reset, data already there, 10,000 at
//! once, readability, edge and oneshot registrations, tokens.

use std::io::{self, ErrorKind};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use uniloop::{Backend, Event, Events, Interest, OpKind, Token, Trigger};

use crate::support::*;
use crate::util::*;

/// The peer's FIN completes a read with 0 bytes and no error, after the
/// data sent before it; it does so again for the next read.
pub(crate) fn peer_fin_completes_read_as_closed(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    send(&client, b"last words");
    client.shutdown(Shutdown::Write).unwrap();
    let mut events = Events::with_capacity(16);
    let (data, d) = read_to_end(&mut rt, &mut events, &server);
    assert_eq!(data, b"last words");
    assert_eq!((d.token, d.bytes, d.error), (Token(1), 0, None));
    let (data, d) = read_to_end(&mut rt, &mut events, &server);
    assert_eq!((data.len(), d.bytes, d.error), (0, 0, None), "EOF stays");
}

/// A reset completes a pending read with an error (on Windows under Wine a
/// reset may read as end of stream, shared/WINE.md).
pub(crate) fn peer_reset_completes_read_with_error(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let op = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    let mut events = Events::with_capacity(16);
    assert_eq!(dones(&poll_now(&mut rt, &mut events)), vec![]);
    let client = socket2::Socket::from(client);
    client.set_linger(Some(Duration::ZERO)).unwrap();
    drop(client); // RST
    let (d, _) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.token, d.kind, d.bytes), (Token(1), OpKind::Read, 0));
    match d.error {
        Some(kind) => assert!(
            matches!(
                kind,
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "{kind:?}"
        ),
        None if cfg!(windows) => {} // Wine: EOF for a reset
        None => panic!("a reset read as end of stream"),
    }
    let f = rt.take_io(op).unwrap();
    assert_eq!(f.error.as_ref().map(io::Error::kind), d.error);
    assert!(f.buf.is_empty());
}

/// A read posted on a source that already has data completes in the very
/// next wait, even a zero-timeout one, and the readiness is not reported
/// beside it.
pub(crate) fn read_with_data_waiting_completes_at_once(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    send(&client, b"ready");
    let mut events = Events::with_capacity(16);
    // The data is there once readiness says so.
    wait_until(
        &mut rt,
        &mut events,
        |e| matches!(e, Event::Io { token: Token(1), ready } if ready.is_readable()),
    );
    let op = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    let got = poll_now(&mut rt, &mut events);
    assert_eq!(
        dones(&got),
        vec![Done {
            token: Token(1),
            op,
            kind: OpKind::Read,
            bytes: 5,
            error: None
        }]
    );
    assert_eq!(io_for(&got, Token(1)), vec![], "reported twice");
    assert_eq!(rt.take_io(op).unwrap().buf, b"ready");
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// 10,000 sockets (5,000 connected pairs, both ends), each with a read
/// posted; one gets data: exactly one `IoDone`, and nothing else.
pub(crate) fn ten_thousand_posted_reads_one_active(b: Backend) {
    const N: usize = 10_000;
    let limit = raise_fd_limit(N as u64 + 512);
    let pairs_wanted = N.min(limit as usize - 256) / 2;
    assert!(
        pairs_wanted >= 500,
        "fd limit too low ({limit}) for this test"
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sockets: Vec<TcpStream> = (0..pairs_wanted)
        .flat_map(|_| {
            let client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            [client, server]
        })
        .collect();
    let mut rt = rt(b);
    let mut ops = Vec::with_capacity(sockets.len());
    for (i, s) in sockets.iter().enumerate() {
        s.set_nonblocking(true).unwrap();
        rt.register(s, Token(i as u64), Interest::READABLE).unwrap();
        ops.push(rt.post_read_kept(s, read_buf(b"", 16)).unwrap());
    }
    assert_eq!(rt.registered(), sockets.len());
    let mut events = Events::with_capacity(256);
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);

    // Even indices are clients, each followed by its server.
    let active = sockets.len() / 2 + 17;
    let active = active | 1;
    send(&sockets[active - 1], b"ping");
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::IoDone { .. }));
    assert_eq!(
        seen,
        vec![Event::IoDone {
            token: Token(active as u64),
            op: ops[active],
            kind: OpKind::Read,
            bytes: 4,
            error: None
        }]
    );
    assert_eq!(
        poll_now(&mut rt, &mut events),
        vec![],
        "the rest still wait"
    );
    assert_eq!(rt.take_io(ops[active]).unwrap().buf, b"ping");
    for (i, &op) in ops.iter().enumerate().filter(|&(i, _)| i != active) {
        let f = rt
            .cancel_io(op)
            .unwrap_or_else(|| panic!("read {i} was lost"));
        assert_eq!((f.kind, f.bytes, f.buf.len()), (OpKind::Read, 0, 0));
    }
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// A read takes the source's readability while it is posted: no
/// `READABLE` readiness is reported beside the completion. With no read
/// posted and data left, level readiness is reported again, every wait.
pub(crate) fn posted_read_takes_readable_readiness(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let mut events = Events::with_capacity(16);
    // Room for 4 of the 10 bytes.
    let op = rt.post_read_kept(&server, read_buf(b"", 4)).unwrap();
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    send(&client, b"0123456789");
    let (d, seen) = wait_done(&mut rt, &mut events, op);
    assert_eq!(io_for(&seen, Token(1)), vec![], "reported twice");
    assert!((1..=4).contains(&d.bytes), "{d:?}");
    let mut data = rt.take_io(op).unwrap().buf;

    // No read posted, bytes left: readiness as usual, on every wait.
    let readable =
        |e: &Event| matches!(e, Event::Io { token: Token(1), ready } if ready.is_readable());
    wait_until(&mut rt, &mut events, readable);
    assert!(poll_now(&mut rt, &mut events).iter().any(readable));
    assert!(poll_now(&mut rt, &mut events).iter().any(readable));

    // Posted again, the read has it: it completes, nothing else reported.
    let op = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    let got = poll_now(&mut rt, &mut events);
    assert_eq!(io_for(&got, Token(1)), vec![], "reported twice");
    assert_eq!(dones(&got).len(), 1);
    data.extend(rt.take_io(op).unwrap().buf);
    assert_eq!(data, b"0123456789");
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
}

/// A read posted on a source registered for writability only still
/// completes: the runtime watches readability for it.
pub(crate) fn read_on_a_source_registered_writable_only(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::WRITABLE).unwrap();
    let op = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    send(&client, b"hi");
    let mut events = Events::with_capacity(16);
    let (d, seen) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.bytes, d.error), (2, None));
    assert!(
        io_for(&seen, Token(1))
            .iter()
            .all(|e| matches!(e, Event::Io { ready, .. } if !ready.is_readable())),
        "readability reported without READABLE interest: {seen:?}"
    );
}

/// On an edge-triggered registration a read that filled its buffer leaves
/// data behind with no new edge to come: the next posted read must still
/// find it (it is tried at once), and a read that finds the source empty
/// completes on the next edge.
pub(crate) fn posted_reads_on_an_edge_registration(b: Backend) {
    if !b.supports(Trigger::Edge) {
        return; // contract.rs checks the refusal on this backend.
    }
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register_with(&server, Token(1), Interest::READABLE, Trigger::Edge)
        .unwrap();
    let mut events = Events::with_capacity(16);
    send(&client, b"0123456789");
    wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    let mut data = Vec::new();
    while data.len() < 10 {
        let op = rt.post_read_kept(&server, read_buf(b"", 4)).unwrap();
        let (d, _) = wait_done(&mut rt, &mut events, op);
        assert!((1..=4).contains(&d.bytes), "{d:?}");
        data.extend(rt.take_io(op).unwrap().buf);
    }
    assert_eq!(data, b"0123456789");
    let op = rt.post_read_kept(&server, read_buf(b"", 4)).unwrap();
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    send(&client, b"z");
    let (d, seen) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.bytes, io_for(&seen, Token(1))), (1, vec![]));
}

/// On a oneshot registration that has had its one report, a posted read
/// still completes (the runtime arms the source for it), and the caller's
/// registration stays spent: no `Event::Io` until it re-registers.
pub(crate) fn posted_read_on_a_spent_oneshot_registration(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register_with(&server, Token(1), Interest::READABLE, Trigger::Oneshot)
        .unwrap();
    let mut events = Events::with_capacity(16);
    send(&client, b"a");
    wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(drain(&server), b"a");

    let op = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    assert_eq!(poll_now(&mut rt, &mut events), vec![]);
    send(&client, b"b");
    let (d, seen) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.bytes, d.error), (1, None));
    assert_eq!(io_for(&seen, Token(1)), vec![], "spent, yet reported");
    assert_eq!(rt.take_io(op).unwrap().buf, b"b");

    send(&client, b"c");
    let quiet = quiet_window(&mut rt, &mut events);
    assert_eq!(quiet, vec![], "spent, yet reported");
    rt.reregister_with(&server, Token(2), Interest::READABLE, Trigger::Oneshot)
        .unwrap();
    let seen = wait_until(&mut rt, &mut events, |e| matches!(e, Event::Io { .. }));
    assert_eq!(io_for(&seen, Token(2)).len(), 1);
    assert_eq!(drain(&server), b"c");
}

/// `IoDone` carries the source's token as it is when the op completes.
pub(crate) fn io_done_carries_the_current_token(b: Backend) {
    let mut rt = rt(b);
    let (client, server) = tcp_pair();
    rt.register(&server, Token(1), Interest::READABLE).unwrap();
    let op = rt.post_read_kept(&server, read_buf(b"", 64)).unwrap();
    rt.reregister(&server, Token(2), Interest::READABLE)
        .unwrap();
    send(&client, b"x");
    let (d, _) = wait_done(&mut rt, &mut Events::with_capacity(16), op);
    assert_eq!((d.token, d.bytes), (Token(2), 1));
}
