//! Several writes per turn: every 64-byte request gets [`K`] replies of 64
//! bytes, and the client reads all of them before it sends the next
//! request — a chat server answering one line with several messages. The
//! load generator is the echo case's, reading `K × 64` bytes per round
//! trip, in its own process.
//!
//! The rows differ in how the replies go out: uniloop's posted writes
//! held for the next wait ([`uniloop::Builder::hold_writes`]) leave in one
//! gathered send per connection (on io_uring one `IORING_OP_SENDMSG`, on
//! epoll one `writev`); uniloop in readiness mode and mio write each reply
//! (one `write` per message); the raw epoll loop writes all of them with
//! one `writev`; the hand-written io_uring loop sends them as one
//! `SENDMSG` with an iovec each. The posted rows run twice: with the
//! connections registered with [`Interest::NONE`] (posted I/O only) and
//! readable, which cost differently on each backend.

use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use uniloop::{Backend, Interest};

use super::echo::{self, gone, Answer, Step, CPU};
use super::Until;
use crate::report::{Case, Role};
use crate::Config;

/// Replies per request.
const K: usize = 8;
/// Bytes of a request and of each reply.
const MSG: usize = 64;

const URING_POSTED: &str = "uniloop posted, Interest::NONE (io_uring: SENDMSG)";
const URING_POSTED_READABLE: &str = "uniloop posted, READABLE (io_uring: SENDMSG)";
const EPOLL_POSTED: &str = "uniloop posted, Interest::NONE (epoll: writev)";
const EPOLL_POSTED_READABLE: &str = "uniloop posted, READABLE (epoll: writev)";
const READINESS: &str = "uniloop readiness (epoll, a write per reply)";
const MIO: &str = "mio (a write per reply)";
const RAW_EPOLL: &str = "raw epoll loop (writev)";
const RAW_URING: &str = "raw io_uring loop (SENDMSG)";

pub(crate) fn cases(cfg: &Config) -> Vec<Case> {
    let secs = cfg.pick(5.0, 0.5);
    [64usize, 1000]
        .into_iter()
        .map(|conns| {
            let d = Duration::from_secs_f64(secs);
            let run = move |serve: echo::Serve| {
                move || echo::run_replies(conns, K * MSG, Until::Elapsed(d), serve)
            };
            let mut case = Case::new(
                "replies",
                &format!("replies-{conns}"),
                &format!("{K} replies per request, {conns} connections"),
                "round trips/s",
            )
            .method(&format!(
                "{conns} loopback connections; each {MSG}-byte request is answered with {K} replies of {MSG} bytes \
                 and the client reads all {} bytes before its next request; round trips counted for {secs} s after \
                 a warm-up; the load generator (raw epoll, the same for every system, the echo case's) runs in its own \
                 process; uniloop's posted rows (connections registered with Interest::NONE, and once READABLE) post the {K} replies as {K} \
                 writes with hold_writes, which go out together at the next wait (io_uring: one SENDMSG; epoll: one \
                 writev), and post the next read when the last is done; the readiness rows (uniloop on epoll, mio) write each reply with its own write; the raw \
                 epoll loop writes the {K} with one writev, the hand-written io_uring loop with one SENDMSG (an iovec \
                 each, COOP_TASKRUN, one submit_and_wait per turn); server CPU/round trip as in echo",
                K * MSG
            ))
            .system(
                READINESS,
                Role::Subject,
                run(|l, n| echo::serve_uniloop_with(l, n, Backend::Epoll, Replies::new(false))),
            )
            .system(
                EPOLL_POSTED,
                Role::Uniloop,
                run(|l, n| serve_posted(l, n, Backend::Epoll, Interest::NONE)),
            )
            .system(
                EPOLL_POSTED_READABLE,
                Role::Uniloop,
                run(|l, n| serve_posted(l, n, Backend::Epoll, Interest::READABLE)),
            )
            .system(
                MIO,
                Role::Peer,
                run(|l, n| echo::serve_mio_with(l, n, Replies::new(false))),
            )
            .system(
                RAW_EPOLL,
                Role::Limit,
                run(|l, n| echo::serve_raw_with(l, n, Replies::new(true))),
            )
            .goal_pair_extra_at_most(EPOLL_POSTED, RAW_EPOLL, CPU, 1.10)
            .goal_pair_extra_at_most(EPOLL_POSTED, READINESS, CPU, 1.0);
            if Backend::Uring.is_available() {
                case = case
                    .system(
                        URING_POSTED,
                        Role::Uniloop,
                        run(|l, n| serve_posted(l, n, Backend::Uring, Interest::NONE)),
                    )
                    .system(
                        URING_POSTED_READABLE,
                        Role::Uniloop,
                        run(|l, n| serve_posted(l, n, Backend::Uring, Interest::READABLE)),
                    )
                    .system(
                        RAW_URING,
                        Role::Limit,
                        run(|l, n| echo::serve_uring_raw_with(l, n, false, Some(K))),
                    )
                    .goal_pair_extra_at_most(URING_POSTED, RAW_URING, CPU, 1.10);
            } else {
                case = case.note("no io_uring rows: io_uring is not permitted on this machine");
            }
            case
        })
        .collect()
}

/// The readiness rows' answer: read a connection, and for each whole
/// request write [`K`] replies, each with its own `write` or (`vectored`)
/// all with one `writev`.
pub(crate) struct Replies {
    vectored: bool,
    buf: [u8; 4096],
    /// Bytes of a request not yet whole, per connection.
    partial: Vec<usize>,
    reply: [u8; MSG],
    /// The `K` replies in one piece, for the rest of a short `writev`.
    all: [u8; K * MSG],
}

impl Replies {
    pub(crate) fn new(vectored: bool) -> Replies {
        Replies {
            vectored,
            buf: [0; 4096],
            partial: Vec::new(),
            reply: [0xa5; MSG],
            all: [0xa5; K * MSG],
        }
    }

    fn write_replies<S: Write>(&self, s: &mut S) -> io::Result<()> {
        if self.vectored {
            let slices = [IoSlice::new(&self.reply); K];
            let n = s.write_vectored(&slices)?;
            s.write_all(&self.all[n..])
        } else {
            for _ in 0..K {
                s.write_all(&self.reply)?;
            }
            Ok(())
        }
    }
}

impl Answer for Replies {
    fn answer<S: Read + Write>(&mut self, i: usize, mut s: S) -> io::Result<Step> {
        if self.partial.len() <= i {
            self.partial.resize(i + 1, 0);
        }
        let n = match s.read(&mut self.buf) {
            Ok(0) => return Ok(Step::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Drained),
            Err(e) if gone(&e) => return Ok(Step::Closed),
            Err(e) => return Err(e),
        };
        let have = self.partial[i] + n;
        self.partial[i] = have % MSG;
        for _ in 0..have / MSG {
            match self.write_replies(&mut s) {
                Ok(()) => {}
                Err(e) if gone(&e) => return Ok(Step::Closed),
                Err(e) => return Err(e),
            }
        }
        Ok(if n < self.buf.len() {
            Step::Drained
        } else {
            Step::More
        })
    }
}

/// Posted I/O with held writes: a read posted per connection; for each
/// whole request [`K`] posted writes of one reply each, which go out
/// together at the next `wait`; the read is posted again once the last of
/// them is done (as the hand-written loops do: the next request cannot
/// come before the replies have gone). Connections are registered with
/// `interest`: [`Interest::NONE`] (for posted I/O only) or readable. The
/// reply buffers come back
/// with their writes' events and are reused: nothing is allocated per
/// round trip once the pool has grown.
fn serve_posted(
    listener: std::net::TcpListener,
    conns: usize,
    backend: Backend,
    interest: Interest,
) -> io::Result<()> {
    use uniloop::{Event, Events, OpKind, Runtime, Token};
    const LISTENER: Token = Token(u64::MAX);
    let mut rt = Runtime::builder()
        .backend(backend)
        .hold_writes(true)
        .build()?;
    rt.register(&listener, LISTENER, Interest::READABLE)?;
    let mut streams: Vec<Option<TcpStream>> = Vec::with_capacity(conns);
    // Per connection: bytes of a request not yet whole, and the writes
    // not yet done.
    let mut partial: Vec<usize> = Vec::with_capacity(conns);
    let mut writing: Vec<usize> = Vec::with_capacity(conns);
    let mut reads: Vec<Vec<u8>> = Vec::with_capacity(conns);
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut open = 0;
    let mut events = Events::with_capacity(1024);
    while streams.len() < conns || open > 0 {
        if rt.wait(&mut events, Some(Duration::from_secs(30)))? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "uniloop posted: idle 30 s",
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
                            rt.register(&s, Token(streams.len() as u64), interest)?;
                            // SAFETY: the stream stays in `streams` until after its
                            // `deregister`.
                            unsafe { rt.post_read(&s, Vec::with_capacity(4096)) }?;
                            streams.push(Some(s));
                            partial.push(0);
                            writing.push(0);
                            reads.push(Vec::new());
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
                        io::Error::other("uniloop posted: IoDone without a result")
                    })?;
                    let alive = match done.error {
                        Some(e) if gone(&e) => false,
                        Some(e) => return Err(e),
                        None => match done.kind {
                            OpKind::Read if done.bytes == 0 => false,
                            OpKind::Read => {
                                let have = partial[i] + done.bytes;
                                partial[i] = have % MSG;
                                writing[i] = have / MSG * K;
                                let mut buf = done.buf;
                                buf.clear();
                                for _ in 0..writing[i] {
                                    let mut reply = pool.pop().unwrap_or_default();
                                    reply.clear();
                                    reply.extend_from_slice(&[0xa5; MSG]);
                                    // SAFETY: the stream stays in `streams` until
                                    // after its `deregister`.
                                    unsafe { rt.post_write(s, reply) }?;
                                }
                                if writing[i] == 0 {
                                    // SAFETY: as above.
                                    unsafe { rt.post_read(s, buf) }?;
                                } else {
                                    reads[i] = buf;
                                }
                                true
                            }
                            OpKind::Write => {
                                pool.push(done.buf);
                                writing[i] -= 1;
                                if writing[i] == 0 {
                                    let buf = std::mem::take(&mut reads[i]);
                                    // SAFETY: as above.
                                    unsafe { rt.post_read(s, buf) }?;
                                }
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
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::thread;

    use super::*;

    /// Every server answers each request with exactly `K` replies, a
    /// request split over two sends included, and closes when the client
    /// does.
    #[test]
    fn every_server_sends_k_replies_per_request() {
        let mut servers: Vec<(&str, echo::Serve)> = vec![
            (READINESS, |l, n| {
                echo::serve_uniloop_with(l, n, Backend::Epoll, Replies::new(false))
            }),
            (EPOLL_POSTED, |l, n| {
                serve_posted(l, n, Backend::Epoll, Interest::NONE)
            }),
            (EPOLL_POSTED_READABLE, |l, n| {
                serve_posted(l, n, Backend::Epoll, Interest::READABLE)
            }),
            (MIO, |l, n| echo::serve_mio_with(l, n, Replies::new(false))),
            (RAW_EPOLL, |l, n| {
                echo::serve_raw_with(l, n, Replies::new(true))
            }),
        ];
        if Backend::Uring.is_available() {
            servers.push((URING_POSTED, |l, n| {
                serve_posted(l, n, Backend::Uring, Interest::NONE)
            }));
            servers.push((URING_POSTED_READABLE, |l, n| {
                serve_posted(l, n, Backend::Uring, Interest::READABLE)
            }));
            servers.push((RAW_URING, |l, n| {
                echo::serve_uring_raw_with(l, n, false, Some(K))
            }));
        }
        for (name, serve) in servers {
            let listener = echo::listen().unwrap();
            let addr = listener.local_addr().unwrap();
            let server = thread::spawn(move || serve(listener, 1));
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            let mut replies = [0u8; K * MSG];
            s.write_all(&[1; MSG]).unwrap();
            s.read_exact(&mut replies).unwrap();
            assert!(replies.iter().all(|&b| b == 0xa5), "{name}");
            s.write_all(&[2; MSG / 2]).unwrap();
            s.write_all(&[2; MSG / 2]).unwrap();
            s.read_exact(&mut replies).unwrap();
            // Nothing more: the server closes once the client has.
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).unwrap();
            assert_eq!(rest.len(), 0, "{name}");
            server.join().unwrap().unwrap();
        }
    }
}
