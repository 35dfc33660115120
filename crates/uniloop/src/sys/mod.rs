//! The OS backends, and the contract every one of them honours.
//!
//! Everything above this module (runtime, timers, completions, queue,
//! workers) is written once; platform `cfg`s live here and nowhere else.
//!
//! # What a backend provides
//!
//! * **`Selector`** — one per runtime; the only thing that blocks.
//!   * `Selector::new(Backend) -> io::Result<(Selector, Waker)>`: creates the
//!     OS object and its doorbell. Fails with `ErrorKind::Unsupported` for a
//!     backend this build does not have.
//!   * `register(source, slot, Interest, Trigger)`, `reregister(..)`,
//!     `deregister(source)`: `slot` is the runtime's `u64` name for the
//!     registration (never the user's token, never an fd). The runtime has
//!     already rejected duplicates, unknown sources and unsupported triggers,
//!     so a backend only reports what the OS says (a bad fd, say).
//!   * `replace(source, old, slot, Interest, Trigger)`: the registry still
//!     has `source`'s number, under `old`, but its source may have been
//!     closed without `deregister` and the number reused. The backend asks
//!     the OS: if `old` is this very source's live registration, it fails
//!     with [`already_registered`] and changes nothing; if it is stale, it
//!     forgets it (and anything it still had for it) and registers `source`
//!     under `slot`, so that nothing is reported under `old` any more.
//!   * `select(out, max, timeout) -> io::Result<bool>`: waits at most
//!     `timeout` (`None` = forever, `Some(ZERO)` = poll; sub-millisecond
//!     timeouts round *up*), appends at most `max` `(slot, Readiness)` pairs to
//!     `out`, and returns whether the doorbell rang and needs draining (the
//!     runtime then drains it; an edge-triggered doorbell, as on epoll, needs
//!     none and reports `false`); the doorbell is never reported as a slot.
//!     Readiness that did not
//!     fit stays with the OS (or the backend) for the next call; nothing is
//!     dropped. Level-triggered readiness that did not fit is reported
//!     round-robin, so no source starves another. `EINTR` is returned as
//!     `ErrorKind::Interrupted`; the runtime retries with the remaining time.
//!   * `select_each(scratch, max, timeout, f)`: the same, handing each
//!     `(slot, Readiness)` to `f` instead of appending it; what the runtime
//!     calls. The dispatch enum hands epoll's records to `f` straight from
//!     the kernel's buffer; the other backends go through `select` into
//!     `scratch`, which is left empty.
//!   * Level, edge and oneshot as `Backend::supports` says; a oneshot
//!     registration is reported once and then disarmed until `reregister`.
//!   * A source closed while registered reports nothing from then on (the
//!     kernel forgets it on epoll and kqueue; poll disarms a `POLLNVAL`
//!     entry, IOCP a socket whose poll says `AFD_POLL_LOCAL_CLOSE` or whose
//!     handle is invalid): never an event, never a busy loop.
//! * **`Waker`** — the doorbell: `Send + Sync`, implements
//!   [`Notify`] (never blocks; ringing twice before
//!   a drain is the same as once), and outlives the selector, so a `Poster`
//!   that rings after the runtime is gone touches a live object.
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
//!
//! * **`check_nonblocking(source)`** — `register` refuses a blocking
//!   source with `ErrorKind::InvalidInput` (the message says to call
//!   `set_nonblocking(true)`) where the OS can tell (Unix: one
//!   `fcntl(F_GETFL)`); where it cannot (Windows), it does nothing.
//!
//! * **Posted I/O primitives** — for the readiness emulation of
//!   completion-mode I/O in [`ops`](crate::ops), written once above this
//!   module for every backend:
//!   * `read(source, &mut Vec<u8>) -> io::Result<usize>`: one non-blocking
//!     read into the vector's spare capacity, growing its length by the
//!     count; "would block" is `ErrorKind::WouldBlock`, `EINTR` is retried.
//!   * `write(source, &[u8], is_socket) -> io::Result<usize>`: one
//!     non-blocking write of a prefix; a socket write must not raise
//!     `SIGPIPE` (`MSG_NOSIGNAL` where it exists).
//!   * `is_socket(source)`, checked once per source; and the unsafe
//!     `borrow_raw(RawSource) -> Source`, so readiness reported inside
//!     `select` can drive the I/O on a registered source.
//!
//!   A selector re-registered with more interest for a pending operation
//!   (`reregister`) must report the new interest from the next `select` on;
//!   that, plus the calls above, is all the emulation needs. A backend that
//!   does completion I/O natively (io_uring `RECV`/`SEND` does; overlapped
//!   `WSARecv`/`WSASend` would) says so with `native_io()` and takes
//!   submissions (`submit_recv`, `submit_send`, `cancel_op`, `pop_op_done`):
//!   the caller's buffer is the selector's from submission until its
//!   completion has been seen, never freed or moved while the kernel may
//!   write it; a cancellation is waited for before a buffer is released;
//!   completions come back as [`OpDone`] after `select`, and `ops` queues
//!   them like its own.
//!
//! # Readiness mapping
//!
//! Each OS condition maps to its own [`Readiness`](crate::Readiness) flag:
//! readable, writable, read-closed (the peer's FIN), write-closed (hang-up),
//! error, priority.

use std::io;

use crate::Backend;

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
    accept_error, borrow_raw, check_nonblocking, console, is_socket, raw_source, read, signal,
    write, write_vectored, RawSource, Selector, Source, Waker, MAX_GATHER,
};
pub use self::imp::{AsSource, RawOsHandle};

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
/// `Selector::pop_op_done`: the runtime's operation (`OpId` bits), the
/// kernel's result (a byte count, or `-errno`) and the caller's buffer,
/// handed back — for a read, its length grown by the bytes that arrived.
#[derive(Debug)]
pub(crate) struct OpDone {
    pub(crate) op: u64,
    pub(crate) result: i32,
    /// `result` is `-ECANCELED`: the operation was withdrawn, nothing done.
    pub(crate) cancelled: bool,
    pub(crate) buf: Vec<u8>,
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
    imp::is_available(backend)
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
