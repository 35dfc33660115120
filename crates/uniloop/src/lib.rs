//! One blocking [`wait`](Runtime::wait) for everything a single-threaded
//! server must react to: socket readiness, completions posted by other
//! threads, wake-ups and timers.
//!
//! * **Sockets** — register anything with a file descriptor (a socket on
//!   Windows) under a 64-bit [`Token`] of your choosing; level-triggered by
//!   default, edge or oneshot on request ([`Trigger`]).
//! * **Completions** — a [`Poster`] (`Clone + Send + Sync`) posts
//!   `(key, data)` pairs from any thread. Every post arrives exactly once,
//!   both values intact, in order per posting thread. Posts go through a
//!   user-space queue; the kernel is only involved when the loop is asleep,
//!   so a burst of posts costs about one syscall.
//! * **Posted I/O** — or let the runtime do the I/O: [`Runtime::post_read`]
//!   and [`Runtime::post_write`] take a buffer and give one
//!   [`Event::IoDone`] per operation with the byte count; a write completes
//!   only when all of it is out, partial writes and writable interest
//!   handled inside ([`ops`] module docs). It works the same on every
//!   backend.
//! * **Timers** — one-shot or periodic, in the loop, cancellable by
//!   [`TimerId`] and restartable with [`Runtime::reset_timer`] (an idle
//!   timeout); a million pending timers are fine.
//! * **Nothing lost** — when more is ready than fits in [`Events`], the rest
//!   comes with the next `wait`.
//!
//! And the pieces a server is built from, each feeding the same `wait`:
//!
//! * **Signals** — [`Signals`] turns Ctrl-C, `SIGTERM`, `SIGHUP` (any
//!   catchable signal; console control events on Windows) into completions
//!   `(key, signo)`. See "Signals and shutdown" below.
//! * **Accepting** — [`Acceptor`] accepts every pending connection, each
//!   made non-blocking, and at the descriptor limit pauses the listener
//!   instead of spinning.
//! * **Framing** — [`LineSplitter`] splits a byte stream into lines with a
//!   maximum length, in linear time.
//! * **Blocking work** — [`WorkerPool`] runs jobs on N threads; each result
//!   comes back as a completion carrying its job id or a tag of yours (a
//!   connection's token) with [`WorkerPool::submit_tagged`]. Also
//!   [`Worker`] (one managed thread), [`Queue`] (bounded, with a completion
//!   when it becomes non-empty) and [`Console`] (stdin lines as events).
//!
//! # Example
//!
//! ```
//! use std::net::TcpListener;
//! use std::time::Duration;
//! use uniloop::{Event, Events, Interest, Runtime, Token};
//!
//! let mut rt = Runtime::new()?;
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! listener.set_nonblocking(true)?;
//! rt.register(&listener, Token(0), Interest::READABLE)?;
//!
//! // A worker thread reports back through the loop.
//! let poster = rt.poster();
//! let worker = std::thread::spawn(move || poster.post(1, 1234));
//! rt.add_timer(9, Duration::from_millis(10), None);
//!
//! let mut events = Events::with_capacity(64);
//! let (mut got_completion, mut got_timer) = (false, false);
//! while !(got_completion && got_timer) {
//!     rt.wait(&mut events, Some(Duration::from_secs(10)))?;
//!     for event in &events {
//!         match *event {
//!             Event::Io { token, ready } => println!("{token:?} is {ready:?}"),
//!             Event::Completion { key: 1, data } => { assert_eq!(data, 1234); got_completion = true }
//!             Event::Timer { key: 9, .. } => got_timer = true,
//!             other => println!("{other:?}"),
//!         }
//!     }
//! }
//! worker.join().unwrap().unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Registered sources must be non-blocking
//!
//! The loop's thread must never block, so everything it reads or writes is
//! non-blocking: call `set_nonblocking(true)` on a socket before
//! registering it (`std`'s `accept` and `connect` return blocking sockets;
//! [`Acceptor`] does it for you). On Unix, [`Runtime::register`] checks and
//! refuses a blocking source with [`std::io::ErrorKind::InvalidInput`];
//! Windows cannot read the mode back, so there it is on you. Deregister a
//! source before closing it; one closed without it reports nothing, and its
//! number can be registered again. Posted reads and writes are the
//! exception: the runtime does them through the number later, so
//! `post_read` / `post_write` are `unsafe`, the caller promising to keep
//! the source open until they finish, are cancelled, or it is deregistered.
//!
//! # Write buffering and backpressure
//!
//! A server's output is "send all of this, in order, and tell me when it is
//! out" — which is what [`Runtime::post_write`] does: partial writes and
//! writable interest are handled inside, writes on one source go out in
//! order, and one [`Event::IoDone`] per write says it is done. Memory stays
//! bounded per connection: once a source has more unwritten bytes queued
//! than its write limit ([`Runtime::set_write_limit`], default 1 MiB), a
//! further write is refused with `WouldBlock` and its buffer handed back —
//! the signal to stop reading from that client (or drop it) until its
//! output drains:
//!
//! ```
//! use std::io::ErrorKind;
//! use std::net::{TcpListener, TcpStream};
//! use uniloop::{Interest, Runtime, Token};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let _slow_client = TcpStream::connect(listener.local_addr()?)?; // never reads
//! let (conn, _) = listener.accept()?;
//! conn.set_nonblocking(true)?;
//!
//! let mut rt = Runtime::new()?;
//! rt.register(&conn, Token(1), Interest::READABLE)?;
//! rt.set_write_limit(&conn, 64 * 1024)?;
//! let mut paused = false;
//! for _ in 0..10_000 {
//!     // SAFETY: `conn` outlives `rt`, so it is open while writes pend.
//!     match unsafe { rt.post_write(&conn, vec![b'x'; 1024]) } {
//!         Ok(_op) => {}                  // its IoDone comes when it is out
//!         Err(e) if e.kind() == ErrorKind::WouldBlock => {
//!             let _line = e.into_buf();  // keep it, or drop the client
//!             paused = true;             // stop reading this client for now
//!             break;
//!         }
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! assert!(paused, "a client that never reads is held at its limit");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Signals and shutdown
//!
//! A signal does not end a `wait`: an interrupted system call (`EINTR`) is
//! resumed with the remaining time, so a flag set by a signal handler is
//! only seen when something else wakes the loop. Nor may a signal handler
//! call [`Poster::post`] or [`Poster::wake`]: they are not
//! async-signal-safe (a post may allocate). Use [`Signals`]: its handler
//! only sets a flag and writes a byte to a pipe, and the signal arrives as
//! an ordinary completion. A server shuts down on Ctrl-C like this (see
//! `examples/echo.rs` for a whole one):
//!
//! ```no_run
//! use uniloop::{Event, Events, Runtime, Signal, Signals};
//!
//! const SHUTDOWN: u64 = u64::MAX;
//! let mut rt = Runtime::new()?;
//! let mut signals = Signals::new(&rt.poster(), SHUTDOWN);
//! signals.add(Signal::Interrupt)?;
//! if Signal::Terminate.is_available() {
//!     signals.add(Signal::Terminate)?;
//! }
//! let mut events = Events::with_capacity(256);
//! 'serve: loop {
//!     rt.wait(&mut events, None)?;
//!     for event in &events {
//!         if let Event::Completion { key: SHUTDOWN, .. } = event {
//!             break 'serve;
//!         }
//!         // ... sockets, timers, completions ...
//!     }
//! }
//! drop(signals); // the previous dispositions are back
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Portability
//!
//! | OS | backends | tested |
//! |---|---|---|
//! | Linux | [`Backend::Epoll`] (default), [`Backend::Poll`], [`Backend::Uring`] (opt-in, where io_uring is permitted) | natively in CI, the contract and posted-I/O suites on all three |
//! | macOS, iOS, FreeBSD, OpenBSD, NetBSD, DragonFly | [`Backend::Kqueue`] (default), [`Backend::Poll`] | type-checked and linted in CI |
//! | other Unix | [`Backend::Poll`] | builds; not run in CI |
//! | Windows | [`Backend::Iocp`] | cross-built in CI, the contract suite under Wine |
//!
//! Edge triggering needs a backend that does it natively
//! ([`Backend::supports`]); elsewhere it is refused with
//! [`std::io::ErrorKind::Unsupported`], never emulated approximately.

#![deny(dead_code, unused_imports)]

mod accept;
mod backend;
mod completion;
mod console;
mod console_kind;
mod event;
mod interest;
mod lines;
mod mpsc;
pub mod ops;
mod pool;
mod queue;
mod readiness;
mod registry;
mod runtime;
mod signal;
mod signal_name;
mod sync;
mod sys;
mod timer;
mod token;
mod trigger;
mod worker;

pub use crate::accept::{AcceptStats, Acceptor, Listen};
pub use crate::backend::{Backend, UnknownBackend};
pub use crate::completion::{Closed, PostError, Poster};
pub use crate::console::{Console, ConsoleEvent};
pub use crate::console_kind::ConsoleKind;
pub use crate::event::{Event, Events};
pub use crate::interest::Interest;
pub use crate::lines::{Line, LineSplitter, LineStats, LongLines};
pub use crate::ops::{Finished, OpError, OpId, OpKind, RecvBuf};
pub use crate::pool::{JobId, JobPanicked, ShutdownReport, SubmitError, WorkerPool};
pub use crate::queue::{Overflow, PopError, PushError, Queue, QueueStats};
pub use crate::readiness::Readiness;
pub use crate::runtime::{Builder, Runtime};
pub use crate::signal::Signals;
pub use crate::signal_name::Signal;
pub use crate::sys::{AsSource, RawOsHandle};
pub use crate::timer::TimerId;
pub use crate::token::Token;
pub use crate::trigger::Trigger;
pub use crate::worker::{JoinError, StopToken, Worker, WorkerBuilder, WorkerState};
