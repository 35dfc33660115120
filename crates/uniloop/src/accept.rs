//! [`Acceptor`]: accepts every pending connection of a listener, makes each
//! one non-blocking, and at the file-descriptor limit pauses the listener
//! instead of spinning.
//!
//! # The problem
//!
//! A level-triggered listener with connections waiting stays readable. A
//! server at its fd limit gets `EMFILE` from `accept`, returns to `wait`,
//! and is told at once that the listener is still readable: 100 % CPU and
//! an error per loop turn, for as long as the limit lasts.
//!
//! # What is done about it
//!
//! On `EMFILE`, `ENFILE`, `ENOBUFS` or `ENOMEM` (`WSAEMFILE`, `WSAENOBUFS` on
//! Windows) the acceptor deregisters the listener and starts a one-shot
//! timer; when it fires the loop calls [`Acceptor::resume`], which
//! registers the listener again. While paused, the waiting connections stay
//! in the kernel's listen backlog, and each is accepted and served once
//! descriptors are free again — nginx does the same (it disables accept
//! events for a while). One failed `accept` per pause, and no loop turns in
//! between: the loop sleeps.
//!
//! libuv's other answer, keeping a spare descriptor to close, accept and
//! drop the excess connection, was not taken: it turns away the very
//! clients that pausing serves a moment later, and it spends the spare
//! descriptor on every connection beyond the limit.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::sys::{self, AcceptError, AsSource};
use crate::{Interest, Runtime, TimerId, Token};

/// A listening socket an [`Acceptor`] can accept from: implemented for
/// [`TcpListener`] and, on Unix, `std::os::unix::net::UnixListener`.
/// Implement it for another listener type (a `socket2::Socket`, say) to use
/// that.
///
/// # Examples
///
/// ```
/// use std::net::TcpListener;
/// use uniloop::Listen;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// listener.set_listener_nonblocking()?;
/// let err = listener.accept_one().unwrap_err(); // nobody is connecting
/// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Listen: AsSource {
    /// An accepted connection.
    type Stream;
    /// The peer's address.
    type Addr;

    /// Accepts one connection; on a non-blocking listener with none
    /// waiting, fails with [`io::ErrorKind::WouldBlock`].
    ///
    /// # Errors
    ///
    /// What `accept(2)` says.
    fn accept_one(&self) -> io::Result<(Self::Stream, Self::Addr)>;

    /// Puts an accepted connection in non-blocking mode.
    ///
    /// # Errors
    ///
    /// What the OS says.
    fn set_stream_nonblocking(stream: &Self::Stream) -> io::Result<()>;

    /// Puts the listener in non-blocking mode.
    ///
    /// # Errors
    ///
    /// What the OS says.
    fn set_listener_nonblocking(&self) -> io::Result<()>;
}

/// `Listen` for a std listener type whose methods do the work.
macro_rules! impl_listen {
    ($listener:ty, $stream:ty, $addr:ty) => {
        impl Listen for $listener {
            type Stream = $stream;
            type Addr = $addr;

            fn accept_one(&self) -> io::Result<($stream, $addr)> {
                self.accept()
            }

            fn set_stream_nonblocking(stream: &$stream) -> io::Result<()> {
                stream.set_nonblocking(true)
            }

            fn set_listener_nonblocking(&self) -> io::Result<()> {
                self.set_nonblocking(true)
            }
        }
    };
}

impl_listen!(TcpListener, TcpStream, SocketAddr);
// The platform's others (Unix-domain sockets), named by `sys`.
sys::for_each_listener!(impl_listen);

/// What an [`Acceptor`] has done, for logs and tests.
///
/// # Examples
///
/// ```
/// use uniloop::AcceptStats;
/// let stats = AcceptStats::default();
/// assert_eq!((stats.accepted, stats.pauses), (0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AcceptStats {
    /// Connections accepted and handed out.
    pub accepted: u64,
    /// Times the listener was paused because descriptors (or buffers) ran
    /// out. Each pause follows exactly one failed `accept`.
    pub pauses: u64,
    /// Connections that failed between the peer's connect and our accept
    /// (reset or aborted: `ECONNABORTED`, `WSAECONNRESET`...); skipped.
    pub aborted: u64,
    /// Accepted connections dropped because they could not be made
    /// non-blocking.
    pub dropped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not registered with a runtime.
    Idle,
    Listening,
    /// Deregistered until the timer fires and `resume` is called.
    Paused(TimerId),
}

/// Accepts every pending connection on a listener, each made non-blocking;
/// retries `Interrupted`, skips connections that died before they were
/// accepted, and at the descriptor limit pauses instead of spinning (see
/// below).
///
/// The acceptor owns the listener and its registration: register it with
/// [`register`](Acceptor::register), not with [`Runtime::register`]. Use it
/// with one runtime only.
///
/// # At the descriptor limit
///
/// When `accept` fails with `EMFILE`, `ENFILE`, `ENOBUFS` or `ENOMEM`
/// (`WSAEMFILE` / `WSAENOBUFS`), the acceptor deregisters the listener and
/// starts a one-shot timer of [`pause`](Acceptor::pause) (100 ms unless
/// set) with the `resume_key` given to [`new`](Acceptor::new); on
/// `Event::Timer { key: resume_key, .. }` call [`resume`](Acceptor::resume).
/// Waiting clients stay in the listen backlog meanwhile and are served once
/// descriptors are free; the loop sleeps. Calling `resume` early — right
/// after closing a connection, say — is fine and cancels the timer.
///
/// # Examples
///
/// ```
/// use std::net::{TcpListener, TcpStream};
/// use std::time::Duration;
/// use uniloop::{Acceptor, Event, Events, Interest, Runtime, Token};
///
/// const LISTENER: Token = Token(0);
/// const RESUME_ACCEPT: u64 = 1;
/// let mut rt = Runtime::new()?;
/// let mut acceptor = Acceptor::new(TcpListener::bind("127.0.0.1:0")?, LISTENER, RESUME_ACCEPT)?;
/// acceptor.register(&mut rt)?;
/// let addr = acceptor.listener().local_addr()?;
/// let _clients = [TcpStream::connect(addr)?, TcpStream::connect(addr)?];
///
/// let mut conns = Vec::new();
/// let mut events = Events::with_capacity(64);
/// while conns.len() < 2 {
///     rt.wait(&mut events, Some(Duration::from_secs(10)))?;
///     for event in &events {
///         match *event {
///             Event::Io { token: LISTENER, .. } => {
///                 acceptor.accept_all(&mut rt, |rt, stream, _peer| {
///                     let token = Token(100 + conns.len() as u64);
///                     rt.register(&stream, token, Interest::READABLE)?;
///                     conns.push(stream); // already non-blocking
///                     Ok(())
///                 })?;
///             }
///             Event::Timer { key: RESUME_ACCEPT, .. } => {
///                 acceptor.resume(&mut rt)?;
///             }
///             _ => {}
///         }
///     }
/// }
/// assert_eq!(acceptor.stats().accepted, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Acceptor<L: Listen = TcpListener> {
    listener: L,
    token: Token,
    resume_key: u64,
    pause: Duration,
    state: State,
    stats: AcceptStats,
}

impl<L: Listen> Acceptor<L> {
    /// How long a pause lasts unless [`pause`](Acceptor::pause) says
    /// otherwise.
    pub const DEFAULT_PAUSE: Duration = Duration::from_millis(100);

    /// Takes `listener` (and puts it in non-blocking mode). Its readiness
    /// will be reported under `token`; a pause's timer fires with
    /// `resume_key`.
    ///
    /// # Errors
    ///
    /// The OS error if the listener cannot be made non-blocking.
    pub fn new(listener: L, token: Token, resume_key: u64) -> io::Result<Acceptor<L>> {
        listener.set_listener_nonblocking()?;
        Ok(Acceptor {
            listener,
            token,
            resume_key,
            pause: Self::DEFAULT_PAUSE,
            state: State::Idle,
            stats: AcceptStats::default(),
        })
    }

    /// Sets how long the listener stays paused at the descriptor limit
    /// before the resume timer fires (rounded up to 1 ms).
    pub fn pause(mut self, pause: Duration) -> Acceptor<L> {
        self.pause = pause.max(Duration::from_millis(1));
        self
    }

    /// Registers the listener with `rt` (level-triggered, readable).
    ///
    /// # Errors
    ///
    /// As [`Runtime::register`]; [`io::ErrorKind::AlreadyExists`] if this
    /// acceptor is registered (or paused) already.
    pub fn register(&mut self, rt: &mut Runtime) -> io::Result<()> {
        if self.state != State::Idle {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the acceptor is already registered",
            ));
        }
        rt.register(&self.listener, self.token, Interest::READABLE)?;
        self.state = State::Listening;
        Ok(())
    }

    /// Deregisters the listener (or cancels a pause's timer).
    ///
    /// # Errors
    ///
    /// As [`Runtime::deregister`]; [`io::ErrorKind::NotFound`] if it was not
    /// registered.
    pub fn deregister(&mut self, rt: &mut Runtime) -> io::Result<()> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the acceptor is not registered",
            )),
            State::Listening => rt.deregister(&self.listener),
            State::Paused(timer) => {
                rt.cancel_timer(timer);
                Ok(())
            }
        }
    }

    /// The next pending connection, non-blocking; `None` when there is none
    /// (or the acceptor is paused or not registered). Call it until it
    /// returns `None` on each readiness event of the listener — or stop
    /// early: the level-triggered listener reports again on the next
    /// `wait`.
    ///
    /// # Errors
    ///
    /// An `accept` error that is neither "none waiting", an interruption,
    /// a connection that died before it was accepted (skipped), nor the
    /// descriptor limit (a pause). Also a failure to deregister the
    /// listener or start the timer when pausing.
    pub fn accept(&mut self, rt: &mut Runtime) -> io::Result<Option<(L::Stream, L::Addr)>> {
        if self.state != State::Listening {
            return Ok(None);
        }
        loop {
            let err = match self.listener.accept_one() {
                Ok((stream, addr)) => match L::set_stream_nonblocking(&stream) {
                    Ok(()) => {
                        self.stats.accepted += 1;
                        return Ok(Some((stream, addr)));
                    }
                    // A blocking stream in the loop would stall it.
                    Err(_) => {
                        self.stats.dropped += 1;
                        continue;
                    }
                },
                Err(e) => e,
            };
            match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(None),
                io::ErrorKind::Interrupted => continue,
                _ => {}
            }
            match sys::accept_error(&err) {
                AcceptError::Aborted => self.stats.aborted += 1,
                AcceptError::Exhausted => {
                    self.pause_now(rt)?;
                    return Ok(None);
                }
                AcceptError::Other => return Err(err),
            }
        }
    }

    /// Accepts every pending connection, handing each (non-blocking) to
    /// `f` with the runtime, and returns how many. See
    /// [`accept`](Acceptor::accept). A flood of connections is accepted in
    /// one go; call `accept` yourself to take a bounded batch per turn.
    ///
    /// # Errors
    ///
    /// As [`accept`](Acceptor::accept), and the first error `f` returns
    /// (the remaining connections wait for the next readiness event).
    pub fn accept_all<F>(&mut self, rt: &mut Runtime, mut f: F) -> io::Result<usize>
    where
        F: FnMut(&mut Runtime, L::Stream, L::Addr) -> io::Result<()>,
    {
        let mut n = 0;
        while let Some((stream, addr)) = self.accept(rt)? {
            n += 1;
            f(rt, stream, addr)?;
        }
        Ok(n)
    }

    /// Ends a pause: registers the listener again (and cancels the pause's
    /// timer if it has not fired). Returns whether it was paused; `false`
    /// (and nothing done) otherwise, so calling it on every resume-timer
    /// event, or after every closed connection, is fine.
    ///
    /// # Errors
    ///
    /// As [`Runtime::register`]; the acceptor stays paused (call `resume`
    /// again later).
    pub fn resume(&mut self, rt: &mut Runtime) -> io::Result<bool> {
        let State::Paused(timer) = self.state else {
            return Ok(false);
        };
        rt.register(&self.listener, self.token, Interest::READABLE)?;
        rt.cancel_timer(timer);
        self.state = State::Listening;
        Ok(true)
    }

    /// Whether the listener is paused at the descriptor limit.
    pub fn is_paused(&self) -> bool {
        matches!(self.state, State::Paused(_))
    }

    /// What this acceptor has done so far.
    pub fn stats(&self) -> AcceptStats {
        self.stats
    }

    /// The listener (for its address, say).
    pub fn listener(&self) -> &L {
        &self.listener
    }

    /// The listener back. Deregister first if it is registered: the
    /// runtime would otherwise keep a registration for it.
    pub fn into_inner(self) -> L {
        self.listener
    }

    fn pause_now(&mut self, rt: &mut Runtime) -> io::Result<()> {
        rt.deregister(&self.listener)?;
        let timer = rt.add_timer(self.resume_key, self.pause, None);
        self.state = State::Paused(timer);
        self.stats.pauses += 1;
        Ok(())
    }
}

impl<L: Listen> fmt::Debug for Acceptor<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("token", &self.token)
            .field("resume_key", &self.resume_key)
            .field("pause", &self.pause)
            .field("paused", &self.is_paused())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
