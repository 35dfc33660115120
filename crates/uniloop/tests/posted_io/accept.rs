//! Posted accepts and connects: a server on completions alone, cancel,
//! refusals, a connect made, refused, cancelled.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Instant;

use socket2::{Domain, Socket, Type};
use uniloop::{AsSource, Backend, Event, Events, Interest, OpId, OpKind, Runtime, Token};

use crate::support::*;
use crate::util::*;

/// `Runtime::post_accept` / `post_connect` on sources the tests keep open
/// while the operation is pending.
trait PostSocketKept {
    fn post_accept_kept<S: AsSource + ?Sized>(&mut self, s: &S) -> std::io::Result<OpId>;
    fn post_connect_kept<S: AsSource + ?Sized>(
        &mut self,
        s: &S,
        addr: SocketAddr,
    ) -> std::io::Result<OpId>;
}

// SAFETY (both methods): every test here keeps the sockets it posts on
// open until after its last call on the runtime that posted, or
// deregisters them before dropping them.
impl PostSocketKept for Runtime {
    fn post_accept_kept<S: AsSource + ?Sized>(&mut self, s: &S) -> std::io::Result<OpId> {
        // SAFETY: see the impl.
        unsafe { self.post_accept(s) }
    }

    fn post_connect_kept<S: AsSource + ?Sized>(
        &mut self,
        s: &S,
        addr: SocketAddr,
    ) -> std::io::Result<OpId> {
        // SAFETY: see the impl.
        unsafe { self.post_connect(s, addr) }
    }
}

fn listener() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

fn client_socket() -> Socket {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// A server with no readiness interest anywhere — the listener and every
/// connection registered with `Interest::NONE` — serves 8 clients through
/// posted accepts, reads and writes alone: each gets its echo back, and
/// not one `Event::Io` comes.
pub(crate) fn server_on_completions_alone(b: Backend) {
    const CLIENTS: usize = 8;
    const LISTENER: Token = Token(0);
    let mut rt = rt(b);
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    rt.register(&listener, LISTENER, Interest::NONE).unwrap();
    let mut accept = rt.post_accept_kept(&listener).unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(GUARD)).unwrap();
                let msg = payload(i as u64, 1000 + i);
                c.write_all(&msg).unwrap();
                let mut back = vec![0; msg.len()];
                c.read_exact(&mut back).unwrap();
                assert_eq!(back, msg, "client {i}");
            })
        })
        .collect();
    let mut conns: HashMap<Token, TcpStream> = HashMap::new();
    let (mut accepted, mut closed, mut next) = (0, 0, 1);
    let mut events = Events::with_capacity(64);
    let start = Instant::now();
    while closed < CLIENTS {
        assert!(start.elapsed() < GUARD, "served {closed} of {CLIENTS}");
        rt.wait(&mut events, Some(GUARD)).unwrap();
        for e in listed(&events) {
            let Event::IoDone {
                token, op, kind, ..
            } = e
            else {
                panic!("a readiness-free server got {e:?}");
            };
            let f = rt.take_io(op).unwrap();
            assert!(f.error.is_none(), "{kind:?} on {token:?}: {:?}", f.error);
            match kind {
                OpKind::Accept => {
                    assert_eq!(op, accept);
                    let (conn, peer) = f.accepted.expect("a connection");
                    assert_eq!(conn.peer_addr().unwrap(), peer);
                    let t = Token(next);
                    next += 1;
                    accepted += 1;
                    rt.register(&conn, t, Interest::NONE).unwrap();
                    rt.post_read_kept(&conn, Vec::with_capacity(4096)).unwrap();
                    conns.insert(t, conn);
                    if accepted < CLIENTS {
                        accept = rt.post_accept_kept(&listener).unwrap();
                    }
                }
                OpKind::Read if f.bytes == 0 => {
                    let conn = conns.remove(&token).unwrap();
                    rt.deregister(&conn).unwrap();
                    closed += 1;
                }
                OpKind::Read => {
                    rt.post_write_kept(&conns[&token], f.buf).unwrap();
                }
                OpKind::Write => {
                    rt.post_read_kept(&conns[&token], Vec::with_capacity(4096))
                        .unwrap();
                }
                other => panic!("{other:?}"),
            }
        }
    }
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(accepted, CLIENTS);
}

/// A cancelled accept hands back a `Finished` with no connection, no
/// event follows, and a connection arriving afterwards waits for the next
/// accept.
pub(crate) fn accept_cancelled(b: Backend) {
    let mut rt = rt(b);
    let listener = listener();
    rt.register(&listener, Token(0), Interest::NONE).unwrap();
    let op = rt.post_accept_kept(&listener).unwrap();
    let f = rt.cancel_io(op).expect("pending");
    assert_eq!(f.kind, OpKind::Accept);
    assert!(f.accepted.is_none() && f.error.is_none());
    assert!(rt.cancel_io(op).is_none());
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let mut events = Events::with_capacity(16);
    assert_eq!(dones(&quiet_window(&mut rt, &mut events)), vec![]);
    let op = rt.post_accept_kept(&listener).unwrap();
    let (d, _) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.token, d.kind, d.error), (Token(0), OpKind::Accept, None));
    let (_, peer) = rt.take_io(op).unwrap().accepted.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
}

/// A second accept (or a read) while one is posted is refused with
/// `AlreadyExists`; the first goes on.
pub(crate) fn second_accept_while_one_is_posted(b: Backend) {
    let mut rt = rt(b);
    let listener = listener();
    rt.register(&listener, Token(0), Interest::READABLE)
        .unwrap();
    let op = rt.post_accept_kept(&listener).unwrap();
    let err = rt.post_accept_kept(&listener).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let err = rt
        .post_read_kept(&listener, Vec::with_capacity(8))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(err.into_buf().capacity(), 8, "the buffer comes back");
    let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let mut events = Events::with_capacity(16);
    let (d, seen) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.kind, d.error), (OpKind::Accept, None));
    assert_eq!(
        io_for(&seen, Token(0)),
        vec![],
        "readability was the accept's"
    );
    assert!(rt.take_io(op).unwrap().accepted.is_some());
}

/// An accept or a connect on an unregistered source is refused with
/// `NotFound`.
pub(crate) fn accept_and_connect_on_an_unregistered_source(b: Backend) {
    let mut rt = rt(b);
    let listener = listener();
    let err = rt.post_accept_kept(&listener).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let socket = client_socket();
    let err = rt
        .post_connect_kept(&socket, listener.local_addr().unwrap())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// A connect to a listening port completes without error, and the socket
/// then carries a posted write to the accepted side.
pub(crate) fn connect_to_a_listening_port(b: Backend) {
    let mut rt = rt(b);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let socket = client_socket();
    rt.register(&socket, Token(3), Interest::NONE).unwrap();
    let op = rt
        .post_connect_kept(&socket, listener.local_addr().unwrap())
        .unwrap();
    let mut events = Events::with_capacity(16);
    let (d, seen) = wait_done(&mut rt, &mut events, op);
    assert_eq!(
        (d.token, d.kind, d.error),
        (Token(3), OpKind::Connect, None)
    );
    assert_eq!(io_for(&seen, Token(3)), vec![]);
    let f = rt.take_io(op).unwrap();
    assert!(f.error.is_none() && f.accepted.is_none());
    let (mut conn, peer) = listener.accept().unwrap();
    assert_eq!(peer, socket.local_addr().unwrap().as_socket().unwrap());
    let w = rt.post_write_kept(&socket, b"connected".to_vec()).unwrap();
    let (d, _) = wait_done(&mut rt, &mut events, w);
    assert_eq!((d.bytes, d.error), (9, None));
    let mut got = [0; 9];
    conn.set_read_timeout(Some(GUARD)).unwrap();
    conn.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"connected");
}

/// A connect to a closed port completes with `ConnectionRefused`.
pub(crate) fn connect_to_a_closed_port_is_refused(b: Backend) {
    let mut rt = rt(b);
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap(); // closed again
    let socket = client_socket();
    rt.register(&socket, Token(4), Interest::NONE).unwrap();
    let op = rt.post_connect_kept(&socket, addr).unwrap();
    let mut events = Events::with_capacity(16);
    let (d, _) = wait_done(&mut rt, &mut events, op);
    assert_eq!(
        (d.token, d.kind, d.error),
        (
            Token(4),
            OpKind::Connect,
            Some(ErrorKind::ConnectionRefused)
        )
    );
    let f = rt.take_io(op).unwrap();
    assert_eq!(
        f.error.map(|e| e.kind()),
        Some(ErrorKind::ConnectionRefused)
    );
}

/// A cancelled connect hands its outcome back at once (withdrawn if it
/// was in progress, its result if it had finished) and no event follows;
/// a second connect while one is posted is refused.
pub(crate) fn connect_cancelled(b: Backend) {
    let mut rt = rt(b);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let socket = client_socket();
    rt.register(&socket, Token(5), Interest::WRITABLE).unwrap();
    let addr = listener.local_addr().unwrap();
    let op = rt.post_connect_kept(&socket, addr).unwrap();
    if let Err(err) = rt.post_connect_kept(&socket, addr) {
        // In progress (else it finished at once, and a second connect is
        // the OS's to answer, in its event).
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    }
    let f = rt.cancel_io(op).expect("pending or finished");
    assert_eq!(f.kind, OpKind::Connect);
    assert!(rt.cancel_io(op).is_none());
    let mut events = Events::with_capacity(16);
    let seen = quiet_window(&mut rt, &mut events);
    assert!(
        dones(&seen).iter().all(|d| d.op != op),
        "an event after cancel: {seen:?}"
    );
}

/// An accept cancelled while a connection waits loses no connection: the
/// cancel hands it over (the accept had taken it), or the next accept
/// gets it.
pub(crate) fn cancelled_accept_loses_no_connection(b: Backend) {
    let mut rt = rt(b);
    let listener = listener();
    rt.register(&listener, Token(0), Interest::NONE).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let want = client.local_addr().unwrap();
    let op = rt.post_accept_kept(&listener).unwrap();
    let mut events = Events::with_capacity(16);
    let f = rt.cancel_io(op).expect("pending or finished");
    assert!(f.error.is_none(), "{:?}", f.error);
    let peer = match f.accepted {
        Some((_, peer)) => peer,
        None => {
            let op = rt.post_accept_kept(&listener).unwrap();
            let (d, _) = wait_done(&mut rt, &mut events, op);
            assert_eq!(d.error, None);
            rt.take_io(op).unwrap().accepted.unwrap().1
        }
    };
    assert_eq!(peer, want);
    assert!(
        dones(&quiet_window(&mut rt, &mut events))
            .iter()
            .all(|d| d.op != op),
        "an event for the cancelled accept"
    );
}

/// Deregistering a listener with an accept pending and a socket with a
/// connect pending drops both operations: no event for either, and the
/// listener, registered again, accepts on. (The connection made
/// meanwhile is either still in the backlog or, on io_uring, was taken by
/// the accept in the ring and closed with it.)
pub(crate) fn deregister_with_accept_and_connect_pending(b: Backend) {
    let mut rt = rt(b);
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    rt.register(&listener, Token(0), Interest::NONE).unwrap();
    let accept = rt.post_accept_kept(&listener).unwrap();
    let socket = client_socket();
    rt.register(&socket, Token(1), Interest::NONE).unwrap();
    let connect = rt.post_connect_kept(&socket, addr).unwrap();
    rt.deregister(&listener).unwrap();
    rt.deregister(&socket).unwrap();
    let mut events = Events::with_capacity(16);
    let seen = quiet_window(&mut rt, &mut events);
    assert_eq!(dones(&seen), vec![], "{seen:?}");
    assert!(rt.take_io(accept).is_none() && rt.cancel_io(connect).is_none());
    rt.register(&listener, Token(2), Interest::NONE).unwrap();
    let late = TcpStream::connect(addr).unwrap();
    let want = late.local_addr().unwrap();
    let first = socket.local_addr().unwrap().as_socket().unwrap();
    loop {
        let op = rt.post_accept_kept(&listener).unwrap();
        let (d, _) = wait_done(&mut rt, &mut events, op);
        assert_eq!((d.token, d.error), (Token(2), None));
        let (_, peer) = rt.take_io(op).unwrap().accepted.unwrap();
        if peer == want {
            break;
        }
        assert_eq!(peer, first, "a connection nobody made");
    }
}

/// Sets the soft open-file limit for its life, and puts the old one back.
#[cfg(unix)]
struct FdLimit(libc::rlimit);

#[cfg(unix)]
impl FdLimit {
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    fn set(soft: u64) -> FdLimit {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is a valid out-pointer for getrlimit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
        let new = libc::rlimit {
            rlim_cur: (soft as libc::rlim_t).min(old.rlim_max),
            rlim_max: old.rlim_max,
        };
        // SAFETY: `new` is a valid rlimit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) }, 0);
        FdLimit(old)
    }
}

#[cfg(unix)]
impl Drop for FdLimit {
    fn drop(&mut self) {
        // SAFETY: the limit read before, a valid rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.0) };
    }
}

/// Out of descriptors, an accept ends with `EMFILE` and nothing else
/// happens: the listener stays registered, the connection waits in the
/// backlog, and an accept posted once a descriptor is free gets it.
#[cfg(unix)]
pub(crate) fn accept_out_of_descriptors_ends_with_the_error(b: Backend) {
    use std::os::fd::AsFd;
    let mut rt = rt(b);
    let listener = listener();
    rt.register(&listener, Token(0), Interest::NONE).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let mut events = Events::with_capacity(16);
    let limit = FdLimit::set(1024);
    let mut fill = Vec::new();
    while let Ok(fd) = listener.as_fd().try_clone_to_owned() {
        fill.push(fd);
        assert!(fill.len() <= 1024, "the limit did not hold");
    }
    assert!(fill.len() >= 2, "descriptors in use beyond the limit");
    let op = rt.post_accept_kept(&listener).unwrap();
    let (d, _) = wait_done(&mut rt, &mut events, op);
    assert_eq!((d.token, d.kind), (Token(0), OpKind::Accept));
    let f = rt.take_io(op).unwrap();
    assert_eq!(
        f.error.as_ref().and_then(std::io::Error::raw_os_error),
        Some(libc::EMFILE),
        "{:?}",
        f.error
    );
    assert!(f.accepted.is_none());
    assert_eq!(dones(&quiet_window(&mut rt, &mut events)), vec![]);
    fill.truncate(fill.len() - 2);
    let op = rt.post_accept_kept(&listener).unwrap();
    let (d, _) = wait_done(&mut rt, &mut events, op);
    assert_eq!(d.error, None);
    let (_, peer) = rt.take_io(op).unwrap().accepted.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    drop(fill);
    drop(limit);
}

/// Accepts and connects work on every trigger the backend has: an accept
/// posted before the connection comes, one posted after the caller has
/// seen the listener readable, and a connect, three rounds each on a
/// level, edge and oneshot registration.
pub(crate) fn accepts_and_connects_on_every_trigger(b: Backend) {
    use uniloop::Trigger;
    for trigger in [Trigger::Level, Trigger::Edge, Trigger::Oneshot] {
        if !b.supports(trigger) {
            continue; // contract.rs checks the refusal on this backend.
        }
        let mut rt = rt(b);
        let listener = listener();
        let addr = listener.local_addr().unwrap();
        rt.register_with(&listener, Token(0), Interest::READABLE, trigger)
            .unwrap();
        let mut events = Events::with_capacity(16);
        for round in 0..3 {
            let op = rt.post_accept_kept(&listener).unwrap();
            let early = TcpStream::connect(addr).unwrap();
            let (d, seen) = wait_done(&mut rt, &mut events, op);
            assert_eq!(d.error, None, "{trigger:?} round {round}");
            assert_eq!(io_for(&seen, Token(0)), vec![], "{trigger:?}");
            let (_, peer) = rt.take_io(op).unwrap().accepted.unwrap();
            assert_eq!(peer, early.local_addr().unwrap(), "{trigger:?}");

            let socket = client_socket();
            rt.register_with(&socket, Token(1), Interest::READABLE, trigger)
                .unwrap();
            let op = rt.post_connect_kept(&socket, addr).unwrap();
            let (d, seen) = wait_done(&mut rt, &mut events, op);
            assert_eq!(d.error, None, "{trigger:?} round {round}");
            assert_eq!(io_for(&seen, Token(1)), vec![], "{trigger:?}");
            rt.deregister(&socket).unwrap();
            let want = socket.local_addr().unwrap().as_socket().unwrap();
            // With no accept posted, the connection is the caller's
            // readiness (a oneshot registration gives it once).
            let readable = |e: &Event| matches!(e, Event::Io { token: Token(0), ready } if ready.is_readable());
            let reported = seen.iter().any(readable);
            if trigger == Trigger::Oneshot && round > 0 {
                assert!(!reported, "a oneshot reported twice: {seen:?}");
            } else if !reported {
                wait_until(&mut rt, &mut events, readable);
            }
            let op = rt.post_accept_kept(&listener).unwrap();
            let (d, _) = wait_done(&mut rt, &mut events, op);
            assert_eq!(d.error, None, "{trigger:?} round {round}");
            let (_, peer) = rt.take_io(op).unwrap().accepted.unwrap();
            assert_eq!(peer, want, "{trigger:?} round {round}");
        }
    }
}

/// More connections than a listener keeps waiting for posts (64 on
/// io_uring, whose multishot accept takes them from the kernel's backlog
/// ahead of the posts).
const BURST: u32 = 100;

/// `n` clients connected to `addr` one after another, each having sent
/// its number (from `first` on) as 4 bytes.
fn clients(addr: SocketAddr, first: u32, n: u32) -> Vec<TcpStream> {
    (first..first + n)
        .map(|id| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(&id.to_le_bytes()).unwrap();
            c
        })
        .collect()
}

/// Posts an accept, waits for it and returns the number its client sent.
#[track_caller]
fn accept_id(rt: &mut Runtime, events: &mut Events, listener: &TcpListener) -> u32 {
    let op = rt.post_accept_kept(listener).unwrap();
    let (d, _) = wait_done(rt, events, op);
    assert_eq!((d.kind, d.error), (OpKind::Accept, None));
    let (mut conn, peer) = rt.take_io(op).unwrap().accepted.unwrap();
    assert_eq!(conn.peer_addr().unwrap(), peer);
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(GUARD)).unwrap();
    let mut id = [0; 4];
    conn.read_exact(&mut id).unwrap();
    u32::from_le_bytes(id)
}

/// A burst of connections, more than a listener keeps waiting, is accepted
/// by as many posts one at a time: each exactly once, in the order they
/// connected; then no accept finishes without a connection.
pub(crate) fn burst_accepted_one_post_at_a_time(b: Backend) {
    let mut rt = rt(b);
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    rt.register(&listener, Token(0), Interest::NONE).unwrap();
    let mut events = Events::with_capacity(64);
    let _clients = clients(addr, 0, BURST);
    let mut late = Vec::new();
    for want in 0..BURST + 3 {
        assert_eq!(accept_id(&mut rt, &mut events, &listener), want);
        if want == BURST / 2 {
            // On io_uring the multishot is cancelled by now (the queue
            // was full): these wait in the kernel's backlog until a post
            // finds the queue empty and arms it again.
            late = clients(addr, BURST, 3);
        }
    }
    drop(late);
    let op = rt.post_accept_kept(&listener).unwrap();
    let seen = quiet_window(&mut rt, &mut events);
    assert_eq!(dones(&seen), vec![], "{seen:?}");
    let f = rt.cancel_io(op).expect("pending");
    assert!(f.accepted.is_none() && f.error.is_none());
    // Connections arriving after the cancel wait for the next posts.
    let _after = clients(addr, BURST + 3, 3);
    for want in BURST + 3..BURST + 6 {
        assert_eq!(accept_id(&mut rt, &mut events, &listener), want);
    }
}

/// Connections that arrive before any accept is posted, and between posts
/// once accepts have run, finish the next posts at once, in arrival
/// order.
pub(crate) fn connections_before_the_post_are_accepted_in_order(b: Backend) {
    let mut rt = rt(b);
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    rt.register(&listener, Token(0), Interest::NONE).unwrap();
    let mut events = Events::with_capacity(64);
    let _early = clients(addr, 0, 2);
    assert_eq!(dones(&quiet_window(&mut rt, &mut events)), vec![]);
    assert_eq!(accept_id(&mut rt, &mut events, &listener), 0);
    assert_eq!(accept_id(&mut rt, &mut events, &listener), 1);
    // None posted now: on io_uring the multishot accept takes these.
    let _between = clients(addr, 2, 5);
    assert_eq!(dones(&quiet_window(&mut rt, &mut events)), vec![]);
    for want in 2..7 {
        assert_eq!(accept_id(&mut rt, &mut events, &listener), want);
    }
}

/// The descriptors this process has open, on Linux (`/proc/self/fd`);
/// `None` elsewhere. (A Windows build under Wine can read the directory
/// too, but it lists Wine's own descriptors, not the test's handles.)
fn open_fds() -> Option<usize> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count)
}

/// Each of `peers` sees its connection closed (end of file or a reset)
/// within the failure guard.
#[track_caller]
fn all_closed(peers: Vec<TcpStream>) {
    for mut peer in peers {
        peer.set_read_timeout(Some(GUARD)).unwrap();
        let mut buf = [0; 16];
        match peer.read(&mut buf) {
            Ok(0) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) => {}
            r => panic!("the connection is still open: {r:?}"),
        }
    }
}

/// A listener with connections waiting (on io_uring, taken by the
/// multishot accept and queued) whose connections the runtime lets go —
/// `deregister` if `drop_runtime` is false, else dropping the runtime —
/// and which is then closed: every peer sees its connection closed, and
/// no descriptor is left open.
fn queued_connections_let_go(b: Backend, drop_runtime: bool) {
    let before = open_fds();
    let mut rt = rt(b);
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    rt.register(&listener, Token(0), Interest::NONE).unwrap();
    let mut events = Events::with_capacity(64);
    let first = clients(addr, 0, 1);
    assert_eq!(accept_id(&mut rt, &mut events, &listener), 0);
    let waiting = clients(addr, 1, 8);
    assert_eq!(dones(&quiet_window(&mut rt, &mut events)), vec![]);
    // The runtime stays through the check after a deregister.
    let kept = if drop_runtime {
        drop(rt);
        drop(listener);
        None
    } else {
        rt.deregister(&listener).unwrap();
        drop(listener);
        assert_eq!(dones(&quiet_window(&mut rt, &mut events)), vec![]);
        Some(rt)
    };
    all_closed(waiting);
    drop((first, kept));
    assert_eq!(open_fds(), before, "a descriptor left open");
}

/// Deregistering a listener with connections waiting closes those the
/// runtime took: their peers see them closed, nothing leaks.
pub(crate) fn deregister_with_queued_connections(b: Backend) {
    queued_connections_let_go(b, false);
}

/// Dropping the runtime with connections waiting on a listener closes
/// those it took: their peers see them closed, nothing leaks.
pub(crate) fn drop_with_queued_connections(b: Backend) {
    queued_connections_let_go(b, true);
}
