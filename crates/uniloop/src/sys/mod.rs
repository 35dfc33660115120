//! The OS backends, and the contract every one of them honours.
//!
//! Everything above this module (runtime, timers, completions, queue,
//! workers) is written once; platform `cfg`s live here and nowhere else.
//!
//! # What a backend provides
//!
//! Per backend (epoll, poll, kqueue, io_uring; IOCP), a selector type in a
//! file of its own implementing the traits in [`selector`], whose methods
//! carry the contract: [`Open`] (creating it and its doorbell),
//! [`Poller`] (registrations and the one call that blocks) and
//! [`NativeIo`] (completion I/O the kernel performs; the defaults say "not
//! here"). [`selectors!`](selector::selectors) makes the platform's
//! `Selector` enum from the list of them, in `unix/mod.rs` and
//! `windows/mod.rs`.
//!
//! Per platform (`unix/`, `windows/`), free functions the rest of the crate
//! uses whatever the backend:
//!
//! * **`Waker`** — the doorbell: implements [`Notify`].
//! * **`console`** — `stdin_kind()`, and `stdin_reader()` giving a
//!   `Reader` whose `read` blocks until stdin has data, ends, or the paired
//!   `Stopper` fires (so a blocked console read can always be stopped).
//! * **`signal`** — `raw(Signal)` / `from_raw(i32)` (the platform's
//!   numbers; `None` for a signal it does not have), and `enable(raw,
//!   deliver)` / `disable(raw)`: from `enable` on, each arrival of `raw`
//!   (or burst of them) calls `deliver(raw)` on an ordinary thread — never
//!   inside a signal handler, which may not post — until `disable` puts the
//!   previous disposition back. A signal that arrives after `enable`
//!   returned is never lost. `crate::signal` calls `enable` once per signal
//!   however many `Signals` hold it.
//! * **`accept_error(&io::Error) -> AcceptError`** — sorts an `accept`
//!   failure for [`Acceptor`](crate::Acceptor): out of descriptors or
//!   buffers (`Exhausted`: pause), the connection died before it was
//!   accepted (`Aborted`: skip it), or anything else. "Would block" and
//!   `EINTR` are sorted by `ErrorKind` before this is asked.
//! * **`AsSource` / `Source<'a>` / `RawSource`** — what can be registered
//!   (`AsFd` on Unix, `AsSocket` on Windows), the borrowed form handed to the
//!   selector, and the raw key the runtime's registry uses.
//! * **`check_nonblocking(source)`** — `register` refuses a blocking
//!   source with `ErrorKind::InvalidInput` (the message says to call
//!   `set_nonblocking(true)`) where the OS can tell (Unix: one
//!   `fcntl(F_GETFL)`); where it cannot (Windows), it does nothing.
//! * **Posted I/O primitives** — for the readiness emulation of
//!   completion-mode I/O in [`ops`](crate::ops), written once above this
//!   module for every backend (on io_uring, for what it does not submit
//!   through [`NativeIo`]):
//!   * `read(source, &mut Vec<u8>) -> io::Result<usize>`: one non-blocking
//!     read into the vector's spare capacity, growing its length by the
//!     count; "would block" is `ErrorKind::WouldBlock`, `EINTR` is retried.
//!   * `write(source, &[u8], is_socket) -> io::Result<usize>` and
//!     `write_vectored`: one non-blocking write of a prefix; a socket write
//!     must not raise `SIGPIPE` (`MSG_NOSIGNAL` where it exists).
//!   * `is_socket(source)`, checked once per source; and the unsafe
//!     `borrow_raw(RawSource) -> Source`, so readiness reported inside
//!     `select` can drive the I/O on a registered source.
//! * **`default_backend()`** — the best backend the platform has.

use std::io;

use crate::Backend;

pub(crate) mod selector;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use self::unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use self::windows as imp;

#[cfg(not(any(unix, windows)))]
compile_error!("uniloop supports Unix-like systems (epoll, poll, kqueue) and Windows (IOCP)");

pub(crate) use self::imp::{
    accept, accept_error, borrow_raw, check_nonblocking, connect, connected, console,
    for_each_listener, is_socket, raw_source, read, signal, write, write_vectored, RawSource,
    Selector, Source, Waker, MAX_GATHER,
};
pub use self::imp::{AsSource, RawOsHandle};
pub(crate) use self::selector::{NativeIo, Open, Poller};

/// The doorbell contract: what the completion protocol
/// ([`completion`](crate::completion)) needs of a backend's `Waker`. It lives
/// here, with the rest of the backend contract, so that the backends depend
/// on nothing above `sys/` and the protocol depends on `sys/`, not the other
/// way round.
pub(crate) trait Notify: Send + Sync {
    /// Makes the loop's OS wait return (now or, if it has not started, as
    /// soon as it starts). Must not block; ringing again before the loop has
    /// drained the doorbell is the same as ringing once.
    fn notify(&self) -> io::Result<()>;
}

/// A finished native (io_uring) read or write, from
/// [`NativeIo::pop_op_done`]: the runtime's operation (`OpId` bits), the
/// kernel's result (a byte count, or `-errno`) and the caller's buffer,
/// handed back — for a read, its length grown by the bytes that arrived.
#[derive(Debug)]
pub(crate) struct OpDone {
    pub(crate) op: u64,
    pub(crate) result: i32,
    /// `result` is `-ECANCELED`: the operation was withdrawn, nothing done.
    pub(crate) cancelled: bool,
    pub(crate) buf: Vec<u8>,
    /// A gathered send's buffers
    /// ([`submit_send_gathered`](NativeIo::submit_send_gathered)), in the
    /// order given; empty for every other submission.
    pub(crate) bufs: Vec<Vec<u8>>,
    /// A native accept's connection (its result, the new descriptor, owned
    /// from the moment the completion is seen: dropped unclaimed, it is
    /// closed).
    pub(crate) stream: Option<std::net::TcpStream>,
    /// A multishot submission's completion
    /// ([`submit_accept_multi`](NativeIo::submit_accept_multi)).
    pub(crate) multi: bool,
    /// A multishot submission's completion with more to come: it stays
    /// armed (`IORING_CQE_F_MORE`). False on its last.
    pub(crate) more: bool,
    /// `buf` is one of the runtime's receive buffers
    /// ([`NativeIo::setup_recv_pool`]), holding a receive stream's data:
    /// it must go back to the pool, not be dropped.
    pub(crate) pooled: bool,
    /// A receive stream's completion that ended it because the pool had
    /// no buffer (`ENOBUFS`): the data waits in the socket.
    pub(crate) no_buffers: bool,
    /// A receive stream's completion
    /// ([`submit_recv_stream`](NativeIo::submit_recv_stream)).
    pub(crate) recv_stream: bool,
}

/// How an `accept` failure is handled; see `accept_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// Out of descriptors or kernel buffers: pause the listener.
    Exhausted,
    /// The connection was reset or aborted before it was accepted: skip it.
    Aborted,
    /// Report it.
    Other,
}

/// The best backend this build offers.
pub(crate) fn default_backend() -> Backend {
    imp::default_backend()
}

/// Whether this build can create `backend`.
pub(crate) fn is_available(backend: Backend) -> bool {
    availability(backend).is_ok()
}

/// `Ok` if this build and this system can create `backend`; otherwise an
/// error naming the cause (`Unsupported`, or `PermissionDenied` where the
/// system refuses it, as io_uring may be).
pub(crate) fn availability(backend: Backend) -> io::Result<()> {
    imp::availability(backend)
}

/// The answer for registering a source that is registered already.
pub(crate) fn already_registered() -> io::Error {
    io::Error::new(io::ErrorKind::AlreadyExists, "source is already registered")
}

pub(crate) fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, what.to_string())
}
