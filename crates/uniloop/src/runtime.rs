//! [`Runtime`]: registration, timers and the one `wait()` that merges socket
//! readiness, completions, wake-ups and timer expiries.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::completion::{Poster, Shared};
use crate::ops::{Finished, OpError, OpId, OpKind, Ops, RecvBuf, RecvPool, DEFAULT_WRITE_LIMIT};
use crate::registry::{self, Reg, Registry};
use crate::sync::Arc;
use crate::sys::{self, AsSource, NativeIo, Poller, Selector, Waker};
use crate::timer::{TimerId, Timers};
use crate::{Backend, Event, Events, Interest, Readiness, Token, Trigger};

/// The kinds of pending event a run of `wait` shares out: wake, due timers,
/// finished posted I/O, completions.
const KINDS: usize = 4;

/// What only `sys/` can answer about a [`Backend`].
impl Backend {
    /// The backend [`Runtime::new`] uses on this platform.
    pub fn native() -> Backend {
        sys::default_backend()
    }

    /// Whether this build can create a runtime on this backend. For
    /// [`Backend::Uring`] this asks the kernel (a one-entry ring, closed at
    /// once), since only trying tells whether io_uring is permitted.
    pub fn is_available(self) -> bool {
        sys::is_available(self)
    }
}

/// Configures a [`Runtime`]; made by [`Runtime::builder`].
///
/// # Examples
///
/// ```
/// use uniloop::{Backend, Runtime};
/// // Force the portable fallback where this platform has it (Unix).
/// let backend = if Backend::Poll.is_available() { Backend::Poll } else { Backend::native() };
/// let rt = Runtime::builder().backend(backend).build()?;
/// assert_eq!(rt.backend(), backend);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    backend: Option<Backend>,
    write_limit: Option<usize>,
    max_pending_completions: Option<usize>,
    blocking_sources: bool,
    return_on_signal: bool,
    hold_writes: bool,
    recv_buffers: Option<(usize, usize)>,
}

impl Builder {
    /// Uses `backend` instead of the platform's best.
    pub fn backend(mut self, backend: Backend) -> Builder {
        self.backend = Some(backend);
        self
    }

    /// The write limit each registration starts with: how much the posted
    /// writes queued on one source may cost before [`Runtime::post_write`]
    /// refuses more (default 1 MiB). Each queued write costs its buffer's
    /// capacity plus [`OP_OVERHEAD`](crate::ops::OP_OVERHEAD) (64 bytes),
    /// so a peer that never reads holds about this much. Change one
    /// source's with [`Runtime::set_write_limit`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = uniloop::Runtime::builder().write_limit(64 * 1024).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_limit(mut self, bytes: usize) -> Builder {
        self.write_limit = Some(bytes);
        self
    }

    /// Holds each source's posted writes until the loop next calls
    /// [`wait`](Runtime::wait) (default: off, a write is tried at once in
    /// `post_write`). Then every write posted on a source during one turn
    /// of the loop goes out in one gathered `writev`/`sendmsg` at the start
    /// of the next `wait`, instead of one `write` each: the shape of a
    /// server that answers a batch of events with many small writes per
    /// connection (a broadcast, a prompt after each line), at the price of
    /// nothing being sent before that `wait`. Deregistering the source, or
    /// dropping the runtime, gives its held writes their try first.
    ///
    /// With this on, close a source with held writes only after
    /// [`Runtime::deregister`]: the writes go to whatever has the source's
    /// fd number at the next `wait` unless a new registration of that
    /// number replaced the old entry first (see "A source closed without
    /// `deregister`" under [`Runtime::register`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = uniloop::Runtime::builder().hold_writes(true).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn hold_writes(mut self, hold: bool) -> Builder {
        self.hold_writes = hold;
        self
    }

    /// Bounds the completions that may wait for the loop: once `n` posts
    /// are queued and not yet returned by `wait`, [`Poster::post`] refuses
    /// more with [`PostError::Full`](crate::PostError::Full), handing the
    /// key and data back, until the loop catches up.
    ///
    /// The default is no bound: a post never fails while the runtime lives,
    /// and a producer that outruns a stuck loop grows memory by about 24
    /// bytes per pending completion (its `(key, data)` and a slot state in
    /// a segment of the lock-free queue; 50 million pending posts are about
    /// 1.2 GB). Set a bound where producers can flood. With a bound, each
    /// post and each delivered completion also updates one shared counter.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = uniloop::Runtime::builder().max_pending_completions(10_000).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_pending_completions(mut self, n: usize) -> Builder {
        self.max_pending_completions = Some(n);
        self
    }

    /// Lets [`Runtime::register`] take a source in blocking mode instead of
    /// refusing it (Unix; Windows never checks). For callers that only use
    /// readiness and do their own I/O, as the C API's users do; posted I/O
    /// on a blocking source would stall the loop, so do not post on one.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = uniloop::Runtime::builder().blocking_sources(true).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn blocking_sources(mut self, allow: bool) -> Builder {
        self.blocking_sources = allow;
        self
    }

    /// Makes a [`Runtime::wait`] that a signal interrupts (`EINTR`) return
    /// at once, with the events it has (usually none), instead of resuming
    /// with the remaining time. C callers rely on this to notice a flag a
    /// signal handler set.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = uniloop::Runtime::builder().return_on_signal(true).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn return_on_signal(mut self, yes: bool) -> Builder {
        self.return_on_signal = yes;
        self
    }

    /// Gives the runtime `count` receive buffers of `size` bytes each, for
    /// [`Runtime::post_recv_stream`] (none by default: a stream is then
    /// refused). All the runtime's receive streams share them: a chunk of
    /// data arrives in one, is handed out as a
    /// [`RecvBuf`](crate::ops::RecvBuf), and comes back with
    /// [`Runtime::give_back`] (or when dropped). On io_uring they are
    /// registered with the kernel as a provided-buffer ring, which the
    /// streams' multishot receives pick from as data arrives.
    ///
    /// `count * size` bytes are allocated when the runtime is built.
    ///
    /// # Errors
    ///
    /// [`build`](Builder::build) fails with [`io::ErrorKind::InvalidInput`]
    /// if `count` is 0 or above
    /// [`MAX_RECV_BUFFERS`](crate::ops::MAX_RECV_BUFFERS) (32,768), or
    /// `size` is 0 or at least 2 GiB.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = uniloop::Runtime::builder().recv_buffers(256, 16 * 1024).build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_buffers(mut self, count: usize, size: usize) -> Builder {
        self.recv_buffers = Some((count, size));
        self
    }

    /// Creates the runtime.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Unsupported`] if the chosen backend does not exist on
    /// this platform, or (io_uring) this kernel lacks what it needs;
    /// [`io::ErrorKind::PermissionDenied`] if the system refuses io_uring;
    /// otherwise whatever the OS says when creating the
    /// selector or doorbell (out of file descriptors, say).
    pub fn build(self) -> io::Result<Runtime> {
        let backend = self.backend.unwrap_or_else(Backend::native);
        if let Some((count, size)) = self.recv_buffers {
            if count == 0
                || count > crate::ops::MAX_RECV_BUFFERS
                || size == 0
                || size > i32::MAX as usize
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "recv_buffers: 1 to 32,768 buffers of 1 byte to 2 GiB",
                ));
            }
        }
        sys::availability(backend)?;
        let (mut selector, waker) = Selector::new(backend)?;
        let mut ops = Ops::new(
            self.write_limit.unwrap_or(DEFAULT_WRITE_LIMIT),
            self.hold_writes,
        );
        if let Some((count, size)) = self.recv_buffers {
            ops.set_pool(RecvPool::new(&mut selector, count, size));
        }
        Ok(Runtime {
            backend,
            selector,
            shared: Arc::new(Shared::new(
                waker,
                self.max_pending_completions.unwrap_or(usize::MAX),
            )),
            registry: Registry::default(),
            ops,
            timers: Timers::new(),
            scratch: Vec::new(),
            with_ops: Vec::new(),
            turn: 0,
            first_kind: KINDS - 1,
            looked: false,
            clock: Instant::now(),
            deferred: None,
            blocking_sources: self.blocking_sources,
            return_on_signal: self.return_on_signal,
            #[cfg(test)]
            fail_select: None,
            _not_sync: PhantomData,
        })
    }
}

/// One blocking [`wait`](Runtime::wait) for socket readiness, completions
/// posted from other threads, wake-ups and timers.
///
/// `Runtime` is `Send` but not `Sync`: register, add timers and wait on the
/// thread that owns it; other threads reach it through a [`Poster`].
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<uniloop::Runtime>();
/// ```
///
/// # Examples
///
/// ```
/// use std::net::{TcpListener, TcpStream};
/// use std::time::Duration;
/// use uniloop::{Event, Events, Interest, Runtime, Token};
///
/// let mut rt = Runtime::new()?;
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// listener.set_nonblocking(true)?;
/// rt.register(&listener, Token(1), Interest::READABLE)?;
///
/// let _client = TcpStream::connect(listener.local_addr()?)?;
/// let mut events = Events::with_capacity(64);
/// rt.wait(&mut events, Some(Duration::from_secs(10)))?;
/// for event in &events {
///     if let Event::Io { token: Token(1), ready } = event {
///         assert!(ready.is_readable());
///         let (_conn, _addr) = listener.accept()?;
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    backend: Backend,
    selector: Selector,
    shared: Arc<Shared<Waker>>,
    registry: Registry,
    ops: Ops,
    timers: Timers,
    /// Reused buffer for the selector's `(slot, readiness)` output, on
    /// the backends that do not hand it over record by record.
    scratch: Vec<(u64, Readiness)>,
    /// Readiness of sources with posted operations, read during a select
    /// and handled after it.
    with_ops: Vec<(u64, Readiness)>,
    /// Alternates who goes first when `events` has room for only one.
    turn: u64,
    /// The kind of pending event (wake, timers, finished I/O, completions)
    /// served first by the last run that had room; the next starts after.
    first_kind: usize,
    /// Whether the last `wait` looked at the OS. A call that has events of
    /// its own to return may then skip its look (see `wait`).
    looked: bool,
    /// The last clock reading; stands in for `now` in a `wait` that needs
    /// no clock (no timer pending, no deadline of its own).
    clock: Instant,
    /// A selector error met after events had been collected: those events
    /// were returned, and the next `wait` returns this.
    deferred: Option<io::Error>,
    /// [`Builder::blocking_sources`].
    blocking_sources: bool,
    /// [`Builder::return_on_signal`].
    return_on_signal: bool,
    /// Test hook: the next selector call fails with this.
    #[cfg(test)]
    fail_select: Option<io::Error>,
    _not_sync: PhantomData<Cell<()>>,
}

const _: () = {
    const fn assert_send<T: Send>() {}
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<Runtime>();
    assert_send_sync::<Poster>();
};

impl Runtime {
    /// A runtime on the platform's best backend ([`Backend::native`]).
    ///
    /// # Errors
    ///
    /// Whatever the OS says when creating the selector or doorbell.
    pub fn new() -> io::Result<Runtime> {
        Builder::default().build()
    }

    /// A [`Builder`] to choose the backend.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The backend this runtime runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Registers `source` for level-triggered readiness under `token`.
    ///
    /// The runtime borrows the source: it neither owns nor closes it.
    /// Deregister it before closing it. Closing it without that is handled
    /// for readiness (below): all the runtime does through a registered
    /// number is ask the OS about readiness, which reads or writes no file's
    /// data, so this call is safe. Posted I/O is different: the runtime
    /// reads and writes through the number later, so
    /// [`post_read`](Runtime::post_read) and
    /// [`post_write`](Runtime::post_write) are `unsafe`, their callers
    /// promising to keep the source open while operations are pending.
    ///
    /// The source must be in non-blocking mode (`set_nonblocking(true)`;
    /// note that `TcpListener::accept` returns blocking sockets): the loop
    /// reads and writes until the OS says "would block", and a blocking
    /// source would stall it there instead. Posted reads and writes on a
    /// socket pass `MSG_DONTWAIT`, so a socket put back in blocking mode
    /// after registering does not stall them; on other files they rely on
    /// the mode too. On
    /// Unix a blocking source is refused (unless [`Builder::blocking_sources`]
    /// is set); Windows has no way to ask a
    /// socket its mode, so there it is the caller's to get right. Setting
    /// `O_NONBLOCK` on a file description shared with other processes (a
    /// terminal's stdin) changes it for them too: read the console with
    /// [`Console`](crate::Console) instead of registering it.
    ///
    /// # A source closed without `deregister`
    ///
    /// It reports nothing from then on (no event, no busy loop), but its
    /// entry stays ([`registered`](Runtime::registered) counts it) until
    /// `deregister` is called with a source of the same fd number (handle
    /// value on Windows), or until a new source that got the number is
    /// registered. Then the runtime asks the OS whether the entry is stale,
    /// and if it is, replaces it: its posted reads and writes are dropped
    /// exactly as [`deregister`](Runtime::deregister) drops them, and no
    /// event of the old registration (an [`Event::Io`] under its token, an
    /// [`Event::IoDone`] for its operations) is delivered once this call has
    /// returned. Events of it that an earlier `wait` already put in your
    /// [`Events`] are yours to skip ([`wait`](Runtime::wait) says how).
    ///
    /// How the OS is asked: **epoll** adds the fd; the kernel refuses
    /// (`EEXIST`) only if this very file is registered under the number —
    /// it dropped the closed one's entry. (A closed fd's entry that a live
    /// duplicate kept in the kernel after the runtime forgot it, by a
    /// `deregister` or replacement through another file, is taken over by
    /// the next registration of that file under that number; until then it
    /// may wake `wait` without reporting anything.) **kqueue**: whether the kernel
    /// still has a filter for the fd; closing an fd drops its filters.
    /// **poll**: whether the entry reported `POLLNVAL`, or the fd's identity
    /// differs from the registered one's (`fstat` device and inode; a BSD or
    /// macOS socket has neither, so its own and its peer's address).
    /// **IOCP**: whether AFD reported the socket closed, or its own or its
    /// peer's address differs.
    ///
    /// Limits: poll and IOCP watch a number, not a file. If the number is
    /// reused before a `wait` has seen the close, the old registration
    /// watches the new file and may report its readiness under the old
    /// token until the new file is registered (or the old entry
    /// deregistered). Where nothing tells the two apart (two BSD or Windows
    /// sockets with the same addresses, a file reopened under the same
    /// number on poll), `register` answers `AlreadyExists`; `deregister`
    /// clears the old entry. On kqueue a registration with no readable or
    /// writable interest has no kernel filter, so it always counts as stale.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::AlreadyExists`] if `source` is already registered.
    /// * [`io::ErrorKind::InvalidInput`] if `source` is in blocking mode
    ///   (Unix); the message says to call `set_nonblocking(true)`.
    /// * The OS error for a bad or unpollable fd (`EBADF`, `EPERM` for a
    ///   regular file on epoll...).
    pub fn register<S: AsSource + ?Sized>(
        &mut self,
        source: &S,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.register_with(source, token, interest, Trigger::Level)
    }

    /// [`register`](Runtime::register) with an explicit [`Trigger`].
    ///
    /// # Errors
    ///
    /// As `register`, plus [`io::ErrorKind::Unsupported`] if this backend
    /// cannot do `trigger` ([`Backend::supports`]).
    pub fn register_with<S: AsSource + ?Sized>(
        &mut self,
        source: &S,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.check_trigger(trigger)?;
        let src = source.as_source();
        if !self.blocking_sources {
            sys::check_nonblocking(src)?;
        }
        let raw = sys::raw_source(src);
        // The number may be in the registry still, its source closed
        // without deregistering: the selector asks the OS.
        let stale = self.registry.find(raw);
        let slot = self.registry.alloc(raw, token, interest, trigger);
        let r = match stale {
            None => self.selector.register(src, slot, interest, trigger),
            Some(old) => self.selector.replace(src, old, slot, interest, trigger),
        };
        if let Err(e) = r {
            self.registry.free(slot);
            return Err(e);
        }
        self.registry.map(slot);
        if let Some(old) = stale {
            // Dropping its operation state drops the buffers it held.
            drop(self.registry.free(old));
        }
        Ok(())
    }

    /// Changes a registered source's token and interest, keeping its
    /// [`Trigger`]: an edge registration stays edge, a oneshot one stays
    /// oneshot (and is re-armed by this call). Only
    /// [`reregister_with`](Runtime::reregister_with) changes the trigger.
    ///
    /// The token and interest already set on a source with no posted
    /// operations cost nothing (no system call) when it is level-triggered,
    /// or oneshot and still armed (it has not reported since it was last
    /// armed); then a source closed without
    /// [`deregister`](Runtime::deregister) is not noticed. An edge-triggered
    /// source is always handed to the OS again (on epoll that re-arms its
    /// edge: a source that is ready reports again).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if `source` is not registered; the OS error
    /// otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use uniloop::{Interest, Runtime, Token, Trigger};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// let (conn, _) = listener.accept()?;
    /// conn.set_nonblocking(true)?;
    ///
    /// let mut rt = Runtime::new()?;
    /// let both = Interest::READABLE | Interest::WRITABLE;
    /// rt.register_with(&conn, Token(1), both, Trigger::Oneshot)?;
    /// // The output is flushed: drop WRITABLE. Still oneshot, and re-armed.
    /// rt.reregister(&conn, Token(1), Interest::READABLE)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reregister<S: AsSource + ?Sized>(
        &mut self,
        source: &S,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let src = source.as_source();
        // One look in the registry: the entry found is the one changed.
        let (slot, reg) = self
            .registry
            .find_mut(sys::raw_source(src))
            .ok_or_else(registry::not_registered)?;
        // Nothing changes and no posted operations: the OS already watches
        // exactly this — a level registration, or a oneshot one still
        // armed — so there is nothing to do. (An edge registration goes to
        // the OS anyway: on epoll the call re-arms its edge.)
        let armed = match reg.trigger {
            Trigger::Level => true,
            Trigger::Oneshot => !reg.spent,
            Trigger::Edge => false,
        };
        if armed && reg.interest == interest && reg.token == token && reg.ops.is_none() {
            return Ok(());
        }
        let trigger = reg.trigger;
        // The trigger is the registration's own, so it needs no check.
        rearm(&mut self.selector, reg, src, slot, token, interest, trigger)
    }

    /// [`reregister`](Runtime::reregister) with an explicit [`Trigger`]: the
    /// registration has this trigger from now on.
    ///
    /// # Errors
    ///
    /// As `reregister`, plus [`io::ErrorKind::Unsupported`] for a trigger
    /// this backend cannot do.
    pub fn reregister_with<S: AsSource + ?Sized>(
        &mut self,
        source: &S,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.check_trigger(trigger)?;
        let src = source.as_source();
        let (slot, reg) = self
            .registry
            .find_mut(sys::raw_source(src))
            .ok_or_else(registry::not_registered)?;
        rearm(&mut self.selector, reg, src, slot, token, interest, trigger)
    }

    /// Stops watching `source`. No event for it is returned after this
    /// (events of it already in the current batch stay there; see
    /// [`wait`](Runtime::wait)).
    ///
    /// Every posted read and write on it is cancelled: no
    /// [`Event::IoDone`] for them is delivered, [`take_io`](Runtime::take_io)
    /// no longer knows them, and their buffers are dropped (a write that
    /// was partly sent stays partly sent). Take back a buffer you want first
    /// with [`cancel_io`](Runtime::cancel_io).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if `source` is not registered.
    pub fn deregister<S: AsSource + ?Sized>(&mut self, source: &S) -> io::Result<()> {
        let src = source.as_source();
        let slot = self.registry.lookup(sys::raw_source(src))?;
        // Forget it even if the OS complains (a closed fd, say): the caller
        // asked for it gone.
        if let Some(io) = self
            .registry
            .get_mut(slot)
            .and_then(|r| r.ops.as_deref_mut())
        {
            self.ops.flush_before_close(src, io);
        }
        let r = self.selector.deregister(src);
        // Dropping its operation state drops the buffers it held.
        drop(self.registry.free(slot));
        r
    }

    /// The start of a `wait`: the writes held since the last one go out
    /// (see "Hold writes for the rest of the turn" in the `ops` module doc).
    fn release_held(&mut self) {
        let held = self.ops.take_held();
        for &slot in &held {
            // Gone (deregistered, its number reused) unless still there.
            let Some(reg) = self.registry.get_mut(slot) else {
                continue;
            };
            let (interest, trigger) = (reg.interest, reg.trigger);
            let Some(io) = reg.ops.as_deref_mut() else {
                continue;
            };
            // SAFETY: the held writes go out through `src` (`sendmsg` /
            // `writev`, or a ring `SEND`): I/O, so this rests on the promise
            // of the `post_write` caller that queued them — the source stays
            // open until its writes finish, are cancelled, or it is
            // deregistered. They are pending and the registry entry is live
            // (not deregistered, not replaced), so its number still names
            // that source. The borrow ends with this iteration.
            let src = unsafe { sys::borrow_raw(reg.raw) };
            self.ops
                .release_held(&mut self.selector, src, slot, io, interest, trigger);
        }
        self.ops.return_held(held);
    }

    /// How many sources are registered.
    pub fn registered(&self) -> usize {
        self.registry.len()
    }

    /// Posts a read on a registered source: one [`Event::IoDone`] with
    /// [`OpKind::Read`](crate::OpKind::Read) follows when at least one byte
    /// has arrived (`bytes` is the count), at end of stream (`bytes` 0, no
    /// error: the peer closed its side), or on error.
    ///
    /// The bytes land in `buf`'s spare capacity — from `buf.len()` up to
    /// `buf.capacity()` — with no copy in between; [`take_io`](Runtime::take_io)
    /// hands the buffer back with its length grown by the count. So
    /// `Vec::with_capacity(n)` is the usual buffer, and a buffer can be
    /// cleared and posted again.
    ///
    /// The read is tried at once: if data is already there, the event comes
    /// with the next `wait`, which does not block for it. Otherwise it
    /// finishes inside a later `wait` when the source becomes readable; while
    /// it is posted, that readiness is its own, and no [`Event::Io`] reports
    /// readable (or read-closed) for the source. Posting re-arms a oneshot
    /// registration for as long as the read needs it.
    ///
    /// An error the read meets — the OS's (a reset, a bad fd) — is not
    /// returned here; it ends the operation and comes in its event.
    ///
    /// # Safety
    ///
    /// `source` must stay open — not closed, its number (handle value on
    /// Windows) not handed to another file — until every operation posted
    /// on it has finished (its [`Event::IoDone`] returned by `wait`), been
    /// cancelled ([`cancel_io`](Runtime::cancel_io)), or `source` has been
    /// [`deregister`](Runtime::deregister)ed. (Closing it earlier is fine
    /// only if the runtime is then dropped with no call on it in between
    /// and no write on it held by [`Builder::hold_writes`]: the drop sends
    /// held writes.) The runtime does the I/O through the number inside
    /// later calls (`wait`, `cancel_io`, `deregister`); on a number closed
    /// and reused it would reach the file that got it.
    ///
    /// # Errors
    ///
    /// Refusals, each handing `buf` back in the [`OpError`]:
    /// * [`io::ErrorKind::NotFound`]: `source` is not registered.
    /// * [`io::ErrorKind::AlreadyExists`]: a read is already posted on it
    ///   (one at a time per source).
    /// * [`io::ErrorKind::InvalidInput`]: `buf` has no spare capacity (a
    ///   zero-length read could not tell data from end of stream).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use std::net::{TcpListener, TcpStream};
    /// use uniloop::{Event, Events, Interest, OpKind, Runtime, Token};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (conn, _) = listener.accept()?;
    /// conn.set_nonblocking(true)?;
    ///
    /// let mut rt = Runtime::new()?;
    /// rt.register(&conn, Token(7), Interest::READABLE)?;
    /// // SAFETY: `conn` stays open until the read has finished.
    /// let op = unsafe { rt.post_read(&conn, Vec::with_capacity(1024)) }?;
    /// client.write_all(b"hello")?;
    ///
    /// let mut events = Events::with_capacity(16);
    /// loop {
    ///     rt.wait(&mut events, None)?;
    ///     if let Some(&Event::IoDone { token, op: done, kind, bytes, error }) = events.iter().next() {
    ///         assert_eq!((token, done, kind, error), (Token(7), op, OpKind::Read, None));
    ///         let finished = rt.take_io(op).unwrap();
    ///         assert_eq!(&finished.buf[..], &b"hello"[..bytes]);
    ///         break;
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn post_read<S: AsSource + ?Sized>(
        &mut self,
        source: &S,
        buf: Vec<u8>,
    ) -> Result<OpId, OpError> {
        self.post(source.as_source(), buf, OpKind::Read)
    }

    /// Posts a write of all of `buf` on a registered source: one
    /// [`Event::IoDone`] with [`OpKind::Write`](crate::OpKind::Write) follows
    /// when every byte has been written (`bytes == buf.len()`), or on error
    /// (`bytes` is how much went out before it).
    ///
    /// Partial writes and waiting for the socket to become writable happen
    /// inside the runtime. Writes on one source go out in the order they
    /// were posted and complete in that order. The write is tried at once;
    /// if it all goes out, the event comes with the next `wait`. While
    /// writes are queued, writable (and write-closed) readiness is theirs and
    /// no [`Event::Io`] reports it for the source. An empty `buf` completes
    /// (with `bytes` 0) once the writes posted before it are out — a way to
    /// ask "is everything sent?".
    ///
    /// # Safety
    ///
    /// `source` must stay open — not closed, its number (handle value on
    /// Windows) not handed to another file — until every operation posted
    /// on it has finished (its [`Event::IoDone`] returned by `wait`), been
    /// cancelled ([`cancel_io`](Runtime::cancel_io)), or `source` has been
    /// [`deregister`](Runtime::deregister)ed. (Closing it earlier is fine
    /// only if the runtime is then dropped with no call on it in between
    /// and no write on it held by [`Builder::hold_writes`]: the drop sends
    /// held writes.) The runtime does the I/O through the number inside
    /// later calls (`wait`, `cancel_io`, `deregister`); on a number closed
    /// and reused it would reach the file that got it.
    ///
    /// # Errors
    ///
    /// Refusals, each handing `buf` back in the [`OpError`]:
    /// * [`io::ErrorKind::NotFound`]: `source` is not registered.
    /// * [`io::ErrorKind::WouldBlock`]: writes are queued on the source and
    ///   this one would take what they cost past the source's write limit
    ///   ([`set_write_limit`](Runtime::set_write_limit), default 1 MiB;
    ///   a queued write costs its buffer's capacity plus
    ///   [`OP_OVERHEAD`](crate::ops::OP_OVERHEAD)). A write on a source
    ///   with nothing queued is always taken, and so is an empty one.
    ///
    /// Errors the write meets (a reset, a closed peer) come in its event.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::{TcpListener, TcpStream};
    /// use uniloop::{Event, Events, Interest, Runtime, Token};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (conn, _) = listener.accept()?;
    /// conn.set_nonblocking(true)?;
    ///
    /// let mut rt = Runtime::new()?;
    /// rt.register(&conn, Token(7), Interest::READABLE)?;
    /// // SAFETY: `conn` stays open until the write has finished.
    /// let op = unsafe { rt.post_write(&conn, b"hello".to_vec()) }?;
    /// let mut events = Events::with_capacity(16);
    /// rt.wait(&mut events, None)?;
    /// assert!(matches!(events.iter().next(), Some(&Event::IoDone { bytes: 5, error: None, .. })));
    /// assert_eq!(rt.take_io(op).unwrap().buf, b"hello");
    ///
    /// let mut got = [0; 5];
    /// client.read_exact(&mut got)?;
    /// assert_eq!(&got, b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn post_write<S: AsSource + ?Sized>(
        &mut self,
        source: &S,
        buf: Vec<u8>,
    ) -> Result<OpId, OpError> {
        self.post(source.as_source(), buf, OpKind::Write)
    }

    /// Posts an accept on a registered listening TCP socket: one
    /// [`Event::IoDone`] with [`OpKind::Accept`](crate::OpKind::Accept)
    /// follows when a connection has been accepted — [`take_io`](Runtime::take_io)
    /// hands it over in [`Finished::accepted`], non-blocking and not
    /// registered, with its peer's address — or when the accept failed.
    ///
    /// With posted accepts, reads and writes a server runs on completions
    /// alone: no [`Event::Io`] to handle. The accept is tried at once; if
    /// no connection is waiting it finishes inside a later `wait`, and
    /// while it is posted the listener's readability is its own (no
    /// [`Event::Io`] reports it).
    ///
    /// A connection that died before it was accepted is skipped. Running
    /// out of descriptors or buffers (`EMFILE`, `ENFILE`, `ENOBUFS`,
    /// `ENOMEM`; `WSAEMFILE`, `WSAENOBUFS`) ends the accept with that
    /// error: the listener stays registered and the connection waits in
    /// the backlog; post again once descriptors are free (after closing
    /// some, or from a timer) — nothing spins meanwhile.
    ///
    /// On io_uring the accept is a ring submission (`IORING_OP_ACCEPT`),
    /// with no `accept(2)` from the loop. A connection it has taken is
    /// never lost to a [`cancel_io`](Runtime::cancel_io) racing it: the
    /// cancel hands it over in [`Finished::accepted`]. Deregistering the
    /// listener drops it (closes it), as it drops every finished operation
    /// not yet taken.
    ///
    /// # Safety
    ///
    /// As [`post_read`](Runtime::post_read): `listener` must stay open
    /// until the accept has finished, been cancelled
    /// ([`cancel_io`](Runtime::cancel_io)), or `listener` has been
    /// [`deregister`](Runtime::deregister)ed. The runtime accepts through
    /// its number inside later calls to `wait`.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::NotFound`]: `listener` is not registered.
    /// * [`io::ErrorKind::AlreadyExists`]: an accept (or a read) is
    ///   already posted on it (one at a time per source).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use uniloop::{Event, Events, Interest, OpKind, Runtime, Token};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// listener.set_nonblocking(true)?;
    /// let mut rt = Runtime::new()?;
    /// rt.register(&listener, Token(0), Interest::READABLE)?;
    /// // SAFETY: `listener` stays open until the accept has finished.
    /// let op = unsafe { rt.post_accept(&listener) }?;
    /// let client = TcpStream::connect(listener.local_addr()?)?;
    ///
    /// let mut events = Events::with_capacity(16);
    /// loop {
    ///     rt.wait(&mut events, None)?;
    ///     if let Some(&Event::IoDone { kind: OpKind::Accept, error: None, .. }) = events.iter().next() {
    ///         let (conn, peer) = rt.take_io(op).unwrap().accepted.unwrap();
    ///         assert_eq!(peer, client.local_addr()?);
    ///         assert_eq!(conn.peer_addr()?, client.local_addr()?);
    ///         break;
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn post_accept<S: AsSource + ?Sized>(&mut self, listener: &S) -> io::Result<OpId> {
        self.post_socket(listener.as_source(), None)
    }

    /// Posts a connect of a registered non-blocking socket to `addr`: one
    /// [`Event::IoDone`] with [`OpKind::Connect`](crate::OpKind::Connect)
    /// follows when the connection is made (no error) or has failed (the
    /// error: `ConnectionRefused` for a closed port, and so on).
    ///
    /// The connect is started at once; one in progress waits for the
    /// socket to become writable, and then the socket's pending error
    /// (`SO_ERROR`) decides; on io_uring it is a ring submission
    /// (`IORING_OP_CONNECT`), with no `connect(2)` from the loop. While it
    /// is posted the socket's writability, hang-up and error are its own
    /// (no [`Event::Io`] reports them). Post reads and writes on the
    /// socket once its event has come.
    ///
    /// # Safety
    ///
    /// As [`post_read`](Runtime::post_read): `socket` must stay open
    /// until the connect has finished, been cancelled
    /// ([`cancel_io`](Runtime::cancel_io)), or `socket` has been
    /// [`deregister`](Runtime::deregister)ed.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::NotFound`]: `socket` is not registered.
    /// * [`io::ErrorKind::AlreadyExists`]: a connect is already posted on
    ///   it.
    ///
    /// Errors the connect meets come in its event.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::TcpListener;
    /// use socket2::{Domain, Socket, Type};
    /// use uniloop::{Event, Events, Interest, OpKind, Runtime, Token};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    /// socket.set_nonblocking(true)?;
    /// let mut rt = Runtime::new()?;
    /// rt.register(&socket, Token(1), Interest::READABLE)?;
    /// // SAFETY: `socket` stays open until the connect has finished.
    /// let op = unsafe { rt.post_connect(&socket, listener.local_addr()?) }?;
    ///
    /// let mut events = Events::with_capacity(16);
    /// loop {
    ///     rt.wait(&mut events, None)?;
    ///     if let Some(&Event::IoDone { kind: OpKind::Connect, error, .. }) = events.iter().next() {
    ///         assert_eq!(error, None);
    ///         assert!(rt.take_io(op).unwrap().error.is_none());
    ///         break;
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn post_connect<S: AsSource + ?Sized>(
        &mut self,
        socket: &S,
        addr: std::net::SocketAddr,
    ) -> io::Result<OpId> {
        self.post_socket(socket.as_source(), Some(addr))
    }

    /// Posts a receive stream on a registered socket: it keeps receiving
    /// into the runtime's buffers ([`Builder::recv_buffers`]) until the
    /// peer closes, an error, or [`cancel_io`](Runtime::cancel_io) /
    /// [`deregister`](Runtime::deregister) ends it. Each chunk that
    /// arrives is one [`Event::IoDone`] with
    /// [`OpKind::RecvStream`](crate::OpKind::RecvStream), the returned id
    /// and `bytes` its length; take it with
    /// [`take_recv`](Runtime::take_recv) — a [`RecvBuf`] of the runtime's,
    /// which derefs to `[u8]` — and hand it back with
    /// [`give_back`](Runtime::give_back) when done (dropping it gives it
    /// back too, at the next `wait`). Chunks come in the order the bytes
    /// arrived. The stream's last event has `bytes` 0: end of stream (no
    /// error), or the error that ended it; [`take_io`](Runtime::take_io)
    /// then takes the stream's end and frees its id.
    ///
    /// No buffer is tied to an idle connection: a buffer is taken only
    /// when data arrives. When every buffer is out (handed out and not
    /// given back, or holding chunks not yet taken) the streams that get
    /// data stop receiving — the data waits in the socket, nothing is
    /// lost — and when buffers come back, the streams that have waited
    /// longest resume, as many as there are free buffers. A server that keeps every chunk it was handed until more
    /// data comes can so stall its own streams: give buffers back (copy
    /// what must be kept).
    ///
    /// While the stream is posted the socket's readability (and
    /// read-closed) is its own: no [`Event::Io`] reports it.
    ///
    /// On io_uring (a kernel with buffer rings, Linux 5.19) the stream is
    /// one `IORING_OP_RECV` with `IORING_RECV_MULTISHOT` (Linux 6.0; one
    /// single-shot receive after another before) picking buffers from the
    /// runtime's provided-buffer ring: one submission for as long as the
    /// stream lasts, no readiness poll. Elsewhere — epoll, poll, kqueue,
    /// IOCP, or a kernel without buffer rings — readability reads into a
    /// free buffer, as many as the socket has and the pool gives.
    ///
    /// # Safety
    ///
    /// As [`post_read`](Runtime::post_read): `socket` must stay open
    /// until the stream has ended (its last event returned by `wait`),
    /// been cancelled ([`cancel_io`](Runtime::cancel_io)), or `socket` has
    /// been [`deregister`](Runtime::deregister)ed. The runtime receives
    /// through its number inside later calls.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::NotFound`]: `socket` is not registered.
    /// * [`io::ErrorKind::AlreadyExists`]: a stream, a read or an accept
    ///   is already posted on it.
    /// * [`io::ErrorKind::InvalidInput`]: the runtime has no receive
    ///   buffers ([`Builder::recv_buffers`]), or `socket` is not a socket.
    ///
    /// Errors the stream meets come in its last event.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use std::net::{TcpListener, TcpStream};
    /// use uniloop::{Event, Events, Interest, OpKind, Runtime, Token};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = TcpStream::connect(listener.local_addr()?)?;
    /// let (conn, _) = listener.accept()?;
    /// conn.set_nonblocking(true)?;
    ///
    /// let mut rt = Runtime::builder().recv_buffers(64, 4096).build()?;
    /// rt.register(&conn, Token(7), Interest::READABLE)?;
    /// // SAFETY: `conn` stays open until the stream has ended.
    /// let op = unsafe { rt.post_recv_stream(&conn) }?;
    /// client.write_all(b"hello, ")?;
    /// client.write_all(b"world")?;
    /// drop(client);
    ///
    /// let mut got = Vec::new();
    /// let mut events = Events::with_capacity(16);
    /// 'run: loop {
    ///     rt.wait(&mut events, None)?;
    ///     for event in &events {
    ///         if let &Event::IoDone { kind: OpKind::RecvStream, bytes, error, .. } = event {
    ///             if bytes == 0 {
    ///                 assert_eq!(error, None); // the peer closed
    ///                 assert!(rt.take_io(op).is_some());
    ///                 break 'run;
    ///             }
    ///             let chunk = rt.take_recv(op).unwrap();
    ///             got.extend_from_slice(&chunk);
    ///             rt.give_back(chunk);
    ///         }
    ///     }
    /// }
    /// assert_eq!(got, b"hello, world");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn post_recv_stream<S: AsSource + ?Sized>(
        &mut self,
        socket: &S,
    ) -> io::Result<OpId> {
        let src = socket.as_source();
        let slot = self.registry.lookup(sys::raw_source(src))?;
        let (reg, seq) = self.registry.for_post(slot).expect("a registered slot");
        let (interest, trigger) = (reg.interest, reg.trigger);
        let native = self.selector.native_io();
        let io = reg.ops_mut(src, slot, self.ops.default_limit, native);
        self.ops
            .post_recv_stream(&mut self.selector, src, slot, io, seq, interest, trigger)
    }

    /// Takes the next chunk of the receive stream `op` whose event `wait`
    /// has returned: the oldest such chunk not taken yet. Hand it back
    /// with [`give_back`](Runtime::give_back) when done with it.
    ///
    /// Returns `None` if no delivered chunk of `op` waits (its next event
    /// is the stream's end, taken with [`take_io`](Runtime::take_io)), or
    /// `op` is not a receive stream of this runtime.
    ///
    /// # Examples
    ///
    /// See [`post_recv_stream`](Runtime::post_recv_stream).
    #[inline]
    pub fn take_recv(&mut self, op: OpId) -> Option<RecvBuf> {
        let reg = self.registry.at_index_mut(op.index())?;
        reg.ops.as_deref_mut()?.take_chunk(op)
    }

    /// Gives a chunk's buffer back to the runtime's pool, for the receive
    /// streams to use again; a stream that ran out of buffers resumes.
    /// (Dropping a [`RecvBuf`] gives it back too, at the next `wait`.) A
    /// buffer of another runtime goes back to that one.
    ///
    /// # Examples
    ///
    /// See [`post_recv_stream`](Runtime::post_recv_stream).
    pub fn give_back(&mut self, buf: RecvBuf) {
        if self.ops.give_back_recv(&mut self.selector, buf) && self.ops.recv_pending() {
            self.resume_streams();
        }
    }

    /// Buffers came back: the streams that ran out of them resume, as far
    /// as the buffers go.
    fn resume_streams(&mut self) {
        self.ops.begin_resume(&mut self.selector);
        while let Some(slot) = self.ops.next_starved() {
            // Gone (deregistered, its number reused) unless still there.
            let Some(reg) = self.registry.get_mut(slot) else {
                continue;
            };
            let (interest, trigger) = (reg.interest, reg.trigger);
            let Some(io) = reg.ops.as_deref_mut() else {
                continue;
            };
            // SAFETY: the stream receives through `src` (a ring `RECV`,
            // or `recv(2)` at once): I/O, so this rests on the promise of
            // the `post_recv_stream` caller — the socket stays open until
            // the stream ends, is cancelled, or it is deregistered. The
            // stream is live (it is starved, not ended) and the registry
            // entry is live, so its number still names that socket. The
            // borrow ends with this iteration.
            let src = unsafe { sys::borrow_raw(reg.raw) };
            self.ops
                .resume_stream(&mut self.selector, src, slot, io, interest, trigger);
        }
    }

    /// Takes back what a finished operation holds: the buffer, the byte
    /// count and the full error. Call it when its [`Event::IoDone`] arrives;
    /// until then the runtime keeps the buffer (deregistering the source
    /// drops it).
    ///
    /// Returns `None` if `op` has not finished yet, was taken or cancelled
    /// already, or belonged to a source since deregistered.
    #[inline]
    pub fn take_io(&mut self, op: OpId) -> Option<Finished> {
        let reg = self.registry.at_index_mut(op.index())?;
        let f = reg.ops.as_deref_mut()?.take(op)?;
        if f.kind == OpKind::RecvStream {
            self.stream_gone(op);
        }
        Some(f)
    }

    /// The stream `op` is over: the caller's interest is asked of the OS
    /// again.
    #[cold]
    fn stream_gone(&mut self, op: OpId) {
        let Some((slot, reg)) = self.registry.at_index_slot_mut(op.index()) else {
            return;
        };
        let (interest, trigger) = (reg.interest, reg.trigger);
        let Some(io) = reg.ops.as_deref_mut() else {
            return;
        };
        // SAFETY: only a re-registration goes through `src` (selector
        // control, no file's data), harmless even if the socket was
        // closed since. The borrow ends with this call.
        let src = unsafe { sys::borrow_raw(reg.raw) };
        self.ops
            .stream_gone(&mut self.selector, src, slot, io, interest, trigger);
    }

    /// Cancels a posted operation and hands its buffer back. After this no
    /// [`Event::IoDone`] for it is delivered — not even one that had
    /// already finished but not yet been returned by `wait`; then the
    /// [`Finished`] carries its real outcome (for a read, the bytes that
    /// arrived are in the buffer). A pending read is withdrawn (nothing was
    /// read into the buffer); a pending write is withdrawn with `bytes`
    /// saying how much of it had gone out already — the rest never will,
    /// and the writes queued after it go on.
    ///
    /// Returns `None` if `op` is unknown (taken, cancelled, or its source
    /// deregistered).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::{TcpListener, TcpStream};
    /// use uniloop::{Interest, Runtime, Token};
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let _client = TcpStream::connect(listener.local_addr()?)?;
    /// let (conn, _) = listener.accept()?;
    /// conn.set_nonblocking(true)?;
    ///
    /// let mut rt = Runtime::new()?;
    /// rt.register(&conn, Token(1), Interest::READABLE)?;
    /// // SAFETY: `conn` stays open past the `cancel_io`.
    /// let op = unsafe { rt.post_read(&conn, Vec::with_capacity(64)) }?;
    /// let finished = rt.cancel_io(op).expect("pending");
    /// assert_eq!((finished.bytes, finished.buf.capacity() >= 64), (0, true));
    /// assert!(rt.cancel_io(op).is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel_io(&mut self, op: OpId) -> Option<Finished> {
        let reg = self.registry.at_index_mut(op.index())?;
        let io = reg.ops.as_deref_mut()?;
        // SAFETY: through `src` go a re-registration with less interest
        // (epoll_ctl, kevent, the poll array, AFD polls: control of the
        // selector, which reads or writes no file's data, so harmless even
        // if `op` had finished and its source was closed since), and, for a
        // write cancelled in the ring, the next queued write (`send_front`:
        // I/O for a pending write, so the promise of the `post_write`
        // caller that queued it holds: the source is open). The borrow ends
        // with this call.
        let src = unsafe { sys::borrow_raw(reg.raw) };
        let f = self.ops.cancel(&mut self.selector, src, io, op)?;
        if f.kind == OpKind::RecvStream {
            self.stream_gone(op);
        }
        Some(f)
    }

    /// Sets how much the posted writes queued on `source` may cost before
    /// [`post_write`](Runtime::post_write) refuses more with `WouldBlock`
    /// (the default comes from [`Builder::write_limit`]): each queued write
    /// costs its buffer's capacity plus
    /// [`OP_OVERHEAD`](crate::ops::OP_OVERHEAD) bytes.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if `source` is not registered.
    pub fn set_write_limit<S: AsSource + ?Sized>(
        &mut self,
        source: &S,
        bytes: usize,
    ) -> io::Result<()> {
        let src = source.as_source();
        let slot = self.registry.lookup(sys::raw_source(src))?;
        let reg = self.registry.get_mut(slot).expect("a registered slot");
        reg.ops_mut(src, slot, self.ops.default_limit, self.selector.native_io())
            .set_limit(bytes);
        Ok(())
    }

    /// Turns [`Builder::hold_writes`] on or off for this runtime from now
    /// on. Turning it off sends what is held at once (as the next `wait`
    /// would have).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut rt = uniloop::Runtime::new()?;
    /// rt.set_hold_writes(true);
    /// assert!(rt.holds_writes());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_hold_writes(&mut self, hold: bool) {
        self.ops.set_hold(hold);
        if !hold && self.ops.has_held() {
            self.release_held();
        }
    }

    /// Whether posted writes are held for the next `wait`
    /// ([`set_hold_writes`](Runtime::set_hold_writes)).
    pub fn holds_writes(&self) -> bool {
        self.ops.holds()
    }

    /// `post_read` / `post_write`: find the source and post (which gives
    /// the OS what the pending operations then need).
    fn post(&mut self, src: sys::Source<'_>, buf: Vec<u8>, kind: OpKind) -> Result<OpId, OpError> {
        let slot = match self.registry.lookup(sys::raw_source(src)) {
            Ok(slot) => slot,
            Err(e) => return Err(OpError::from_parts(e, buf)),
        };
        let (reg, seq) = self.registry.for_post(slot).expect("a registered slot");
        let (interest, trigger) = (reg.interest, reg.trigger);
        let native = self.selector.native_io();
        let io = reg.ops_mut(src, slot, self.ops.default_limit, native);
        let sel = &mut self.selector;
        match kind {
            OpKind::Read => self
                .ops
                .post_read(sel, src, slot, io, seq, buf, interest, trigger),
            OpKind::Write => self
                .ops
                .post_write(sel, src, slot, io, seq, buf, interest, trigger),
            OpKind::Accept | OpKind::Connect | OpKind::RecvStream => Err(OpError::new(
                io::ErrorKind::InvalidInput,
                "an accept, a connect or a receive stream takes no buffer",
                buf,
            )),
        }
    }

    /// `post_accept` / `post_connect`: find the source and post.
    fn post_socket(
        &mut self,
        src: sys::Source<'_>,
        connect: Option<std::net::SocketAddr>,
    ) -> io::Result<OpId> {
        let slot = self.registry.lookup(sys::raw_source(src))?;
        let (reg, seq) = self.registry.for_post(slot).expect("a registered slot");
        let (interest, trigger) = (reg.interest, reg.trigger);
        let native = self.selector.native_io();
        let io = reg.ops_mut(src, slot, self.ops.default_limit, native);
        let sel = &mut self.selector;
        match connect {
            None => self
                .ops
                .post_accept(sel, src, slot, io, seq, interest, trigger),
            Some(addr) => self
                .ops
                .post_connect(sel, src, slot, io, seq, addr, interest, trigger),
        }
    }

    /// A handle for other threads to post completions and wake the loop.
    pub fn poster(&self) -> Poster {
        Poster::new(self.shared.clone())
    }

    /// Starts a timer that fires `Event::Timer { key, id }` after `delay`,
    /// and then every `period` if one is given.
    ///
    /// Timers run in the loop: no thread per timer. Timers with the same
    /// deadline (to the millisecond) fire in the order they were added. A
    /// periodic timer that falls behind (the loop was busy for several
    /// periods) fires once and resumes on its schedule; it does not fire the
    /// missed periods in a burst. A zero period is rounded up to 1 ms.
    ///
    /// Timers have a resolution of 1 ms and never fire early: a deadline is
    /// rounded up to the next whole millisecond (of the loop's timer clock),
    /// so a timer fires up to 1 ms after its exact deadline, plus however
    /// late the loop gets to `wait`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use uniloop::{Event, Events, Runtime};
    ///
    /// let mut rt = Runtime::new()?;
    /// let id = rt.add_timer(42, Duration::from_millis(5), None);
    /// let mut events = Events::with_capacity(4);
    /// rt.wait(&mut events, None)?;
    /// assert_eq!(events.iter().next(), Some(&Event::Timer { key: 42, id }));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn add_timer(&mut self, key: u64, delay: Duration, period: Option<Duration>) -> TimerId {
        self.timers.add(key, delay, period, Instant::now())
    }

    /// Cancels a timer. Returns `false` if `id` is not a live timer (already
    /// fired one-shot, cancelled before, or never existed).
    ///
    /// No later `wait` reports it; an `Event::Timer` for it that the current
    /// batch already holds stays there (see [`wait`](Runtime::wait)).
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// Restarts a pending timer: it fires `delay` from now instead of at
    /// its deadline, keeping its id and key; a periodic timer then goes on
    /// every period from the new deadline. Returns `false`, and does
    /// nothing, if `id` is not a live timer (a fired one-shot, cancelled,
    /// or never existed).
    ///
    /// This is the idle timeout: reset a connection's timer on every line
    /// it sends, instead of cancelling it, adding a new one and storing the
    /// new id. A restarted timer fires after timers already set for the
    /// same millisecond, as if added now; a due timer whose event has not
    /// been returned yet is postponed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use uniloop::{Event, Events, Runtime};
    ///
    /// let mut rt = Runtime::new()?;
    /// let idle = rt.add_timer(7, Duration::from_secs(30), None);
    /// // The client sent a line: 30 s from now again, same id.
    /// assert!(rt.reset_timer(idle, Duration::from_secs(30)));
    /// // Or fire soon.
    /// assert!(rt.reset_timer(idle, Duration::from_millis(1)));
    /// let mut events = Events::with_capacity(4);
    /// rt.wait(&mut events, None)?;
    /// assert_eq!(events.iter().next(), Some(&Event::Timer { key: 7, id: idle }));
    /// assert!(!rt.reset_timer(idle, Duration::from_secs(30)), "a fired one-shot is gone");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reset_timer(&mut self, id: TimerId, delay: Duration) -> bool {
        self.timers.reset(id, delay, Instant::now())
    }

    /// How many timers are pending.
    pub fn timers(&self) -> usize {
        self.timers.len()
    }

    /// The OS object `wait` blocks on, for running this loop inside another
    /// one (as libuv's `uv_backend_fd`): the epoll, kqueue or io_uring fd;
    /// the I/O completion port on Windows; `None` on poll, where no single
    /// object covers the registered fds.
    ///
    /// After [`prepare_external_wait`](Runtime::prepare_external_wait) (and
    /// until the next `wait`), the fd becomes readable when `wait` has
    /// something to return other than a timer: readiness, finished posted
    /// I/O, completions, a wake. Only wait for it to be readable (`poll`,
    /// `select`, another epoll): reading it, registering in it or closing
    /// it breaks the runtime. Windows: the port is for identification;
    /// dequeuing from it would take the runtime's packets.
    pub fn os_handle(&self) -> Option<crate::RawOsHandle> {
        self.selector.os_handle()
    }

    /// Arms [`os_handle`](Runtime::os_handle) for another loop to wait on
    /// until the next `wait`, and returns how long that loop may block at
    /// most: zero when `wait` has something to return now (the handle is
    /// then readable too), the time to the next timer, or `None`.
    ///
    /// # Errors
    ///
    /// The OS error if submitting to the kernel fails (io_uring).
    pub fn prepare_external_wait(&mut self) -> io::Result<Option<Duration>> {
        let collected = self.selector.prepare_external()?;
        // SAFETY: the runtime is the completion queue's one consumer, and
        // `Runtime` is not `Sync`: this `&mut self` call is the only one on
        // the consumer side. A sleep it sets up ends with the next `wait`
        // (its own sleep attempt sees the state and takes another pass);
        // one already set up by an earlier call stands.
        let pending = collected
            || self.ops.has_done()
            || self.shared.wake_pending()
            || unsafe { self.shared.has_ready() }
            || !(self.shared.is_sleeping()
                // A refusal swaps a stale `NOTIFIED` (a ring that `wait`
                // has consumed since) back to `AWAKE`: one more try.
                || unsafe { self.shared.prepare_sleep() }
                || unsafe { self.shared.prepare_sleep() });
        let timer = self
            .timers
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        if pending || timer == Some(Duration::ZERO) {
            // Readable now: ring the doorbell ourselves.
            crate::sys::Notify::notify(self.shared.notifier())?;
            return Ok(Some(Duration::ZERO));
        }
        Ok(timer)
    }

    /// Blocks until something is ready or `timeout` passes, and fills
    /// `events` with at most `events.capacity()` events.
    ///
    /// * `None` blocks until something happens; `Some(Duration::ZERO)` only
    ///   looks. Sub-millisecond timeouts are rounded up, never down to a busy
    ///   poll. A signal (`EINTR`) does not end the wait early: it resumes with
    ///   the remaining time (unless [`Builder::return_on_signal`] is set).
    /// * Whatever does not fit — completions, due timers, readiness — is
    ///   returned by later calls; nothing is dropped.
    ///
    /// Returns the number of events (0 when the timeout passed).
    ///
    /// # Fairness
    ///
    /// Five kinds of event can be pending: a wake, due timers, finished
    /// posted I/O, completions, and I/O readiness. Every kind that has
    /// something pending gets a share of every batch, however much the
    /// others have, so no kind holds another back for more than one call:
    ///
    /// * With `events.capacity()` of 8 or more, each kind pending when
    ///   `wait` is called is in the batch that call returns — at least
    ///   `capacity / 8` events of it, or all it has. Readiness gets at
    ///   least half the batch (up to 4,096 events per look at the OS).
    ///   One exception, for a loop whose writes finish inside
    ///   `post_write`: when everything else a call has to return is posted
    ///   I/O that finished (all of it fitting) and the previous call looked
    ///   at the OS, the call does not look, and readiness comes with the
    ///   next call — one call late, never more.
    /// * With less room than one event per kind, the kind served first
    ///   rotates from call to call, so each pending kind is served within
    ///   a few calls (8 at a capacity of 1).
    ///
    /// Within a kind the order is kept: timers by deadline (equal deadlines
    /// in the order they were added), finished posted I/O in the order it
    /// finished (per source that is the order of the posts, for writes),
    /// completions in order per posting thread. Pending work of one kind
    /// that did not fit stays queued, in order, for the next call.
    ///
    /// # Order within one batch
    ///
    /// One call returns up to three runs of events, in this order:
    ///
    /// 1. What was pending when it was called: the wake ([`Event::Wake`],
    ///    at most one), due [`Event::Timer`]s, finished posted I/O
    ///    ([`Event::IoDone`]) and [`Event::Completion`]s, shared out as
    ///    above: the kinds take turns, each taking up to its share at a
    ///    time, and which kind goes first rotates. This run leaves room for
    ///    readiness: it takes at most half of `events` (with a capacity of
    ///    1, every other call leaves it to readiness).
    /// 2. I/O readiness ([`Event::Io`]) from one look at the OS (skipped
    ///    only as said above).
    /// 3. Another run shared out as the first: what arrived, became due or
    ///    finished while the OS was asked — posted I/O that readiness has
    ///    just completed comes here — and what did not fit in the first.
    ///
    /// When the call had to block, the first run is empty: the batch
    /// starts with the readiness that ended the wait. Nothing else about
    /// the order is promised; in particular an `Io` and an `IoDone` for the
    /// same source may come in either order.
    ///
    /// # Events of things undone within the batch
    ///
    /// A batch is a snapshot. Handling one of its events may cancel a timer,
    /// deregister (or replace, see [`register`](Runtime::register)) a source
    /// or cancel an operation that a later event of the same batch names:
    /// that event stays in `events`, and skipping it is the caller's job. It
    /// can always be recognised: a [`TimerId`] is never reused (a timer
    /// added later gets a new id, so compare the event's id with the one
    /// you keep), [`Token`]s are yours to check against what you still
    /// hold (give a new connection a fresh token, not its predecessor's),
    /// and an [`OpId`] of a cancelled or dropped operation is unknown to
    /// [`take_io`](Runtime::take_io). After the call that undid it, no
    /// later `wait` delivers such an event.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `events` has capacity 0; the OS
    /// error if the selector fails. A failure never costs events: when the
    /// selector fails after this call has already taken completions, timers,
    /// a wake or finished operations from their queues, the call returns
    /// those, and the next call returns the error.
    pub fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        if events.capacity() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Events has capacity 0",
            ));
        }
        // The usual call of a loop that only does readiness: nothing of its
        // own pending (no wake, timer, finished operation, completion, held
        // write or deferred error). Then the first run is empty, and the
        // call is one look at the OS (blocking, unless the timeout is zero)
        // and the third run. The general path does the same with every
        // case covered.
        if self.deferred.is_none()
            && !self.ops.has_held()
            && !self.ops.recv_pending()
            && self.timers.len() == 0
            && !self.has_pending()
        {
            self.turn = self.turn.wrapping_add(1);
            if timeout == Some(Duration::ZERO) {
                return self.look_now(events);
            }
            return self.look(events, timeout);
        }
        self.wait_pending(events, timeout)
    }

    /// `wait` with something of its own pending: the general path from the
    /// start. A function of its own so that `wait`, which only jumps, needs
    /// no stack frame for the general path's arguments.
    #[inline(never)]
    fn wait_pending(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        self.wait_general(events, timeout, None)
    }

    /// [`look`](Runtime::look) with a zero timeout, the look of a loop
    /// that polls: no clock, no sleep, the OS's answer and then what
    /// arrived meanwhile. Out of line, as is `look`, so that `wait` itself
    /// is a few checks and a jump.
    #[inline(never)]
    fn look_now(&mut self, events: &mut Events) -> io::Result<usize> {
        match self.poll_io(events, Some(Duration::ZERO)) {
            Ok(()) => self.looked = true,
            Err(e) => self.look_failed(events, e)?,
        }
        if self.anything_pending() {
            self.collect_all(events);
        }
        Ok(events.len())
    }

    /// [`collect`](Runtime::collect) with the whole of `events` and the
    /// last clock reading, out of line: the zero-timeout look that found
    /// nothing pending loads neither.
    #[inline(never)]
    fn collect_all(&mut self, events: &mut Events) {
        self.collect_pending(events, self.clock, events.capacity());
    }

    /// A zero-timeout look that failed: an interrupted one is an empty
    /// answer; otherwise the error is returned, or kept for the next call
    /// when `events` holds what this one took already.
    #[cold]
    #[inline(never)]
    fn look_failed(&mut self, events: &Events, e: io::Error) -> io::Result<()> {
        self.looked = false;
        if e.kind() == io::ErrorKind::Interrupted {
            Ok(())
        } else if events.is_empty() {
            Err(e)
        } else {
            self.deferred = Some(e);
            Ok(())
        }
    }

    /// Whether a wake, finished posted I/O or a completion is pending (the
    /// kinds that need no clock to tell).
    #[inline(always)]
    fn has_pending(&self) -> bool {
        // SAFETY: the runtime is the completion queue's one consumer, and
        // `Runtime` is not `Sync`: this `&self` call, made from a `&mut
        // self` one, is the only one on the consumer side.
        (unsafe { self.shared.has_ready() }) || self.ops.has_done() || self.shared.wake_pending()
    }

    /// `wait` with nothing pending: one look at the OS (blocking unless
    /// `timeout` is zero), then what arrived meanwhile. When a blocking
    /// look ends with nothing to return (an early wake-up, a signal, a
    /// doorbell with nothing behind it, a sleep refused because something
    /// arrived), the general path goes on with the time that is left.
    #[inline(never)]
    fn look(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        let zero = timeout.is_some_and(|t| t.is_zero());
        // The deadline needs the start; no timer is pending, so nothing
        // else needs the clock.
        let start = if zero {
            None
        } else {
            timeout.map(|_| Instant::now())
        };
        // SAFETY: the runtime is the completion queue's one consumer (as in
        // `has_pending`).
        if !zero && !unsafe { self.shared.prepare_sleep() } {
            let resumed = Resumed {
                start,
                polled: false,
            };
            return self.wait_general(events, timeout, Some(resumed));
        }
        if zero {
            self.looked = false;
        }
        let r = self.poll_io(events, timeout);
        if !zero {
            self.shared.finish_sleep();
        }
        let polled = r.is_ok();
        match r {
            Ok(()) => self.looked |= zero,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if self.return_on_signal && !zero {
                    return Ok(events.len());
                }
            }
            Err(e) if !events.is_empty() => self.deferred = Some(e),
            Err(e) => return Err(e),
        }
        if zero || !events.is_empty() {
            // A blocking look that returned something counts as a look.
            self.looked |= !zero;
            self.collect(events, self.clock, events.capacity());
            return Ok(events.len());
        }
        self.wait_general(events, timeout, Some(Resumed { start, polled }))
    }

    /// `wait` with every case covered; `resumed` when [`look`] has made
    /// the first pass.
    ///
    /// [`look`]: Runtime::look
    #[inline(never)]
    fn wait_general(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
        resumed: Option<Resumed>,
    ) -> io::Result<usize> {
        if resumed.is_none() {
            if let Some(e) = self.deferred.take() {
                return Err(e);
            }
            if self.ops.has_held() {
                self.release_held();
            }
            if self.ops.recv_pending() {
                self.resume_streams();
            }
            self.turn = self.turn.wrapping_add(1);
        }
        // Timers only shrink during a call, so with none pending and no
        // deadline of its own (no timeout, or a zero one) the call never
        // reads the clock.
        let clocked = self.timers.len() > 0 || timeout.is_some_and(|t| !t.is_zero());
        let start = match resumed.and_then(|r| r.start) {
            Some(start) => start,
            None if clocked => Instant::now(),
            None => self.clock,
        };
        self.clock = start;
        let deadline = if clocked {
            timeout.and_then(|t| start.checked_add(t))
        } else {
            None
        };
        // Leave room for I/O readiness before taking completions and timers:
        // half the buffer, or every other call when it holds one event.
        let reserve = if events.capacity() >= 2 {
            events.capacity() / 2
        } else {
            (self.turn & 1) as usize
        };
        // Set once a blocking select has returned: I/O was just polled with
        // the whole buffer free, so the next pass need not poll it again.
        let mut io_polled = resumed.is_some_and(|r| r.polled);
        let mut now = if resumed.is_some() && clocked {
            Instant::now()
        } else {
            start
        };
        loop {
            let more = self.collect(events, now, events.capacity() - reserve);
            let expired = timeout == Some(Duration::ZERO) || deadline.is_some_and(|d| now >= d);
            if more || !events.is_empty() || expired {
                // One look at the OS, unless the last call looked and all
                // this one has to return is posted I/O that finished (in
                // the caller's own posts: a write that all went out at
                // once), all of it. A loop of posts then pays one OS look
                // per turn, not two, and the OS is still looked at by every
                // other call at least. With more finished than fits (a
                // flood), every call looks: readiness gets its share.
                let is_done = |e: &Event| matches!(e, Event::IoDone { .. });
                let skip = self.looked && !more && !events.is_empty() && events.iter().all(is_done);
                self.looked = false;
                if events.room() > 0 && !io_polled && !skip {
                    match self.poll_io(events, Some(Duration::ZERO)) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // What was collected is out of its queues already:
                        // return it, and the error with the next call.
                        Err(e) if !events.is_empty() => self.deferred = Some(e),
                        Err(e) => return Err(e),
                        Ok(()) => self.looked = true,
                    }
                }
                self.looked |= io_polled;
                self.collect(events, now, events.capacity());
                return Ok(events.len());
            }

            let block = match (deadline, self.timers.next_deadline()) {
                (None, None) => None,
                // The first pass, and no timer: the caller's whole timeout
                // (no clock arithmetic).
                (Some(_), None) if now == start => timeout,
                (Some(d), None) | (None, Some(d)) => Some(d.saturating_duration_since(now)),
                (Some(a), Some(b)) => Some(a.min(b).saturating_duration_since(now)),
            };
            // SAFETY: the runtime is the completion queue's one consumer,
            // and `Runtime` is not `Sync`: this `&mut self` call is the only
            // one on the consumer side.
            if unsafe { self.shared.prepare_sleep() } {
                let r = self.poll_io(events, block);
                self.shared.finish_sleep();
                io_polled = r.is_ok();
                match r {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                        if self.return_on_signal {
                            return Ok(events.len());
                        }
                    }
                    Err(e) if !events.is_empty() => self.deferred = Some(e),
                    Err(e) => return Err(e),
                }
            }
            if !events.is_empty() {
                self.looked = true;
                // The clock only matters here for due timers: skip the read
                // when there are none (one clock read less per busy wait).
                if self.timers.len() > 0 {
                    now = Instant::now();
                }
                self.collect(events, now, events.capacity());
                return Ok(events.len());
            }
            if clocked {
                now = Instant::now();
            }
        }
    }

    /// Takes what is pending — a wake, due timers, finished posted I/O and
    /// completions — until `events` holds `limit`, each kind with something
    /// pending getting a share (see `wait`). Returns whether something was
    /// left behind for lack of room.
    #[inline(always)]
    fn collect(&mut self, events: &mut Events, now: Instant, limit: usize) -> bool {
        // The usual case of a loop that polls: nothing of these is pending.
        if !self.anything_pending() {
            return false;
        }
        self.collect_pending(events, now, limit)
    }

    /// Whether `collect` has anything to take: a completion, a timer
    /// (due or not), finished posted I/O or a wake.
    #[inline(always)]
    fn anything_pending(&self) -> bool {
        // SAFETY: the runtime is the completion queue's one consumer (as in
        // `wait`).
        (unsafe { self.shared.has_ready() })
            || self.timers.len() > 0
            || self.ops.has_done()
            || self.shared.wake_pending()
    }

    /// [`collect`](Runtime::collect) with something pending: the room is
    /// shared out in passes. Each pass gives every kind still pending an
    /// equal share (rounded down, at least one), going round the kinds from
    /// the one after where the previous run started; a kind that takes less
    /// than its share has run out, and what it left goes to the others in
    /// the next pass.
    #[inline(never)]
    fn collect_pending(&mut self, events: &mut Events, now: Instant, limit: usize) -> bool {
        let limit = limit.min(events.capacity());
        let timers = self.timers.len() > 0;
        let mut pending = [
            self.shared.wake_pending(),
            timers && self.timers.has_due(now),
            self.ops.has_done(),
            // SAFETY: the runtime is the queue's one consumer, and `Runtime`
            // is not `Sync`: this `&mut self` call is the only one popping.
            unsafe { self.shared.has_ready() },
        ];
        if events.len() < limit {
            self.first_kind = (self.first_kind + 1) % KINDS;
        }
        loop {
            let room = limit.saturating_sub(events.len());
            let kinds = pending.iter().filter(|&&p| p).count();
            if room == 0 || kinds == 0 {
                break;
            }
            let share = (room / kinds).max(1);
            for i in 0..KINDS {
                let kind = (self.first_kind + i) % KINDS;
                let quota = share.min(limit - events.len());
                if !pending[kind] || quota == 0 {
                    continue;
                }
                let took = match kind {
                    0 => self.take_wake(events),
                    1 => self.take_timers(events, now, quota),
                    2 => self.take_done(events, quota),
                    _ => self.take_completions(events, quota),
                };
                if took < quota {
                    pending[kind] = false;
                }
            }
        }
        // SAFETY: as above.
        (unsafe { self.shared.has_ready() })
            || self.ops.has_done()
            || self.shared.wake_pending()
            || (timers && self.timers.has_due(now))
    }

    /// The pending wake, if any: 1 if taken.
    fn take_wake(&mut self, events: &mut Events) -> usize {
        if self.shared.take_wake() {
            events.push(Event::Wake);
            1
        } else {
            0
        }
    }

    /// Up to `quota` due timers; how many.
    fn take_timers(&mut self, events: &mut Events, now: Instant, quota: usize) -> usize {
        let mut took = 0;
        while took < quota {
            match self.timers.pop_due(now) {
                Some((key, id)) => events.push(Event::Timer { key, id }),
                None => break,
            }
            took += 1;
        }
        took
    }

    /// Up to `quota` finished posted operations, in the order they
    /// finished; how many.
    fn take_done(&mut self, events: &mut Events, quota: usize) -> usize {
        let mut took = 0;
        while took < quota {
            let Some(op) = self.ops.pop_done() else {
                break;
            };
            // Gone (taken, cancelled, deregistered) unless `deliver` finds it.
            let Some(reg) = self.registry.at_index_mut(op.index()) else {
                continue;
            };
            let token = reg.token;
            if let Some((kind, bytes, error)) = reg.ops.as_deref_mut().and_then(|io| io.deliver(op))
            {
                events.push(Event::IoDone {
                    token,
                    op,
                    kind,
                    bytes,
                    error,
                });
                took += 1;
            }
        }
        took
    }

    /// Up to `quota` completions; how many.
    fn take_completions(&mut self, events: &mut Events, quota: usize) -> usize {
        let mut took = 0;
        while took < quota {
            // SAFETY: the runtime is the queue's one consumer, and `Runtime`
            // is not `Sync`: this `&mut self` call is the only one popping.
            match unsafe { self.shared.pop() } {
                Some((key, data)) => events.push(Event::Completion { key, data }),
                None => break,
            }
            took += 1;
        }
        took
    }

    #[inline(always)]
    fn poll_io(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        #[cfg(test)]
        if let Some(e) = self.fail_select.take() {
            return Err(e);
        }
        // What one selector call may return: far below what any OS takes
        // (epoll_wait and kevent take an int, GetQueuedCompletionStatusEx a
        // ULONG); readiness beyond it stays with the OS for the next call.
        const MAX_PER_SELECT: usize = 4096;
        let max = events.room().min(MAX_PER_SELECT);
        // Each report becomes its event as it is read, but for a source
        // with posted operations: those need the selector, so they wait in
        // `with_ops` until it is done.
        let registry = &mut self.registry;
        let with_ops = &mut self.with_ops;
        let r = self
            .selector
            .select_each(&mut self.scratch, max, timeout, |slot, ready| {
                on_report(registry, with_ops, events, slot, ready)
            });
        let woken = r?;
        if woken {
            self.shared.notifier().drain();
        }
        if !self.with_ops.is_empty() {
            self.on_ready_ops(events);
        }
        if self.selector.native_io() {
            self.take_native();
        }
        Ok(())
    }

    /// Readiness of sources with posted operations: it drives them first,
    /// and what is left is the caller's event. Leaves `with_ops` empty.
    #[inline(never)]
    fn on_ready_ops(&mut self, events: &mut Events) {
        for i in 0..self.with_ops.len() {
            let (slot, ready) = self.with_ops[i];
            let Some(reg) = self.registry.get_mut(slot) else {
                continue;
            };
            let Some(io) = reg.ops.as_deref_mut() else {
                continue;
            };
            // SAFETY: the registration has posted operations (`reg.ops`),
            // and their reads, writes, accepts and connect checks are done
            // through `src`: I/O, so this rests on the promise of the
            // `post_read` / `post_write` / `post_accept` / `post_connect`
            // callers (the source stays open until they finish, are
            // cancelled, or it is deregistered). Readiness under a live slot alone would not
            // prove the number still names its file: poll(2) watches
            // numbers, and an epoll entry or a ring `POLL_ADD` lives on with
            // the file while a duplicate of it is open. With no operations
            // pending (or once they are done) only re-registration goes
            // through `src`: selector control, no file's data. The borrow
            // ends with this iteration.
            let src = unsafe { sys::borrow_raw(reg.raw) };
            let sel = &mut self.selector;
            let (interest, trigger) = (reg.interest, reg.trigger);
            let left = self
                .ops
                .on_ready(sel, src, slot, io, ready, interest, trigger);
            if !left.is_empty() {
                events.push(Event::Io {
                    token: reg.token,
                    ready: left,
                });
            }
        }
        self.with_ops.clear();
    }

    /// Native (io_uring) reads and writes that finished, after the
    /// readiness: a read still pending there took its source's readable
    /// readiness, as on the emulation.
    #[inline(never)]
    fn take_native(&mut self) {
        while let Some(done) = self.selector.pop_op_done() {
            let index = OpId::from_bits(done.op).index();
            // Gone (deregistered, replaced): its buffer goes with `done`,
            // or back to the pool.
            let Some((slot, reg)) = self.registry.at_index_slot_mut(index) else {
                self.ops.recycle(&mut self.selector, done);
                continue;
            };
            let Some(io) = reg.ops.as_deref_mut() else {
                self.ops.recycle(&mut self.selector, done);
                continue;
            };
            // SAFETY: the rest of a partial `SEND` and the writes queued
            // behind it are submitted and written through `src`, and an
            // accept whose connection died in the backlog is submitted (or
            // tried) again: I/O, so this rests on the `post_write` /
            // `post_accept` callers' promise (the source stays open until
            // its operations finish, are cancelled, or it is
            // deregistered). The completion's registration is live (the
            // index and its operation matched), so its writes are pending.
            // The borrow ends with this iteration.
            let src = unsafe { sys::borrow_raw(reg.raw) };
            self.ops.on_native(&mut self.selector, src, slot, io, done);
        }
    }

    fn check_trigger(&self, trigger: Trigger) -> io::Result<()> {
        if self.backend.supports(trigger) {
            Ok(())
        } else {
            Err(sys::unsupported(&format!(
                "the {:?} backend does not support {trigger:?} triggering",
                self.backend
            )))
        }
    }
}

/// Gives `reg`, the registration in `slot` (of `src`), this token,
/// interest and trigger, telling the OS: one system call on epoll and
/// kqueue. A function of the two parts it uses, so that `reregister` hands
/// over the entry it looked up instead of looking it up again.
#[inline]
fn rearm(
    selector: &mut Selector,
    reg: &mut Reg,
    src: sys::Source<'_>,
    slot: u64,
    token: Token,
    interest: Interest,
    trigger: Trigger,
) -> io::Result<()> {
    // Posted operations keep what they need from the OS.
    let want = match &reg.ops {
        Some(ops) => ops.with_needs(interest),
        None => interest,
    };
    selector.reregister(src, slot, want, trigger)?;
    reg.token = token;
    reg.interest = interest;
    reg.trigger = trigger;
    reg.spent = false;
    if let Some(ops) = reg.ops.as_deref_mut() {
        ops.rearmed(want);
    }
    Ok(())
}

/// How far [`Runtime::look`] got before handing over to the general path.
#[derive(Clone, Copy)]
struct Resumed {
    /// When the call started; `None` without a timeout.
    start: Option<Instant>,
    /// Whether the blocking look at the OS succeeded.
    polled: bool,
}

/// One readiness report as it is read from the selector: the caller's
/// event, or for a source with posted operations a note in `with_ops` (they
/// need the selector, which is busy until the reports are all read).
#[inline(always)]
fn on_report(
    registry: &mut Registry,
    with_ops: &mut Vec<(u64, Readiness)>,
    events: &mut Events,
    slot: u64,
    ready: Readiness,
) {
    let Some(reg) = registry.get_mut(slot) else {
        return;
    };
    if reg.ops.is_some() {
        with_ops.push((slot, ready));
        return;
    }
    reg.spent = reg.trigger == Trigger::Oneshot;
    events.push(Event::Io {
        token: reg.token,
        ready,
    });
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Writes held for a `wait` that will not come get their one try.
        if self.ops.has_held() {
            self.release_held();
        }
        self.shared.close();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("backend", &self.backend)
            .field("registered", &self.registered())
            .field("timers", &self.timers.len())
            .field("pending_completions", &self.shared.pending())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(uniloop_loom)))]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    /// The backends this build and system can create; under Miri those it
    /// emulates (it has no `poll(2)`).
    fn backends() -> impl Iterator<Item = Backend> {
        Backend::ALL
            .into_iter()
            .filter(|b| b.is_available())
            .filter(|b| !cfg!(miri) || *b != Backend::Poll)
    }

    /// A selector that fails after `wait` collected completions, a due
    /// timer and a wake loses none of them: they come back from this call,
    /// the error from the next, and then the runtime works on.
    #[test]
    fn a_failing_selector_loses_nothing() {
        for backend in backends() {
            let mut rt = Runtime::builder().backend(backend).build().unwrap();
            let poster = rt.poster();
            for i in 0..3 {
                poster.post(7, i).unwrap();
            }
            poster.wake().unwrap();
            let timer = rt.add_timer(1, Duration::ZERO, None);
            std::thread::sleep(Duration::from_millis(2)); // let the timer fall due
            rt.fail_select = Some(io::Error::from_raw_os_error(22));
            let mut events = Events::with_capacity(64);
            let n = rt.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
            let got: Vec<Event> = events.iter().copied().collect();
            assert_eq!(n, 5, "{backend:?}: {got:?}");
            assert!(got.contains(&Event::Wake), "{backend:?}: {got:?}");
            assert!(got.contains(&Event::Timer { key: 1, id: timer }));
            let posted: Vec<u64> = got
                .iter()
                .filter_map(|e| match *e {
                    Event::Completion { key: 7, data } => Some(data),
                    _ => None,
                })
                .collect();
            assert_eq!(posted, [0, 1, 2], "{backend:?}: {got:?}");
            let e = rt.wait(&mut events, Some(Duration::ZERO)).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(22), "{backend:?}");
            poster.post(8, 8).unwrap();
            rt.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
            assert_eq!(
                events.iter().copied().collect::<Vec<_>>(),
                [Event::Completion { key: 8, data: 8 }]
            );
        }
    }

    /// A capacity too large to allocate is clamped, and `wait` works with it.
    #[test]
    fn a_huge_events_capacity_is_clamped() {
        for backend in backends() {
            let mut rt = Runtime::builder().backend(backend).build().unwrap();
            let mut events = Events::with_capacity(usize::MAX);
            assert_eq!(events.capacity(), Events::MAX_CAPACITY);
            rt.poster().post(1, 2).unwrap();
            assert_eq!(rt.wait(&mut events, Some(Duration::ZERO)).unwrap(), 1);
            assert_eq!(rt.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
        }
    }

    /// A burst posted while the loop is busy rings the doorbell zero times.
    #[test]
    fn no_ring_while_the_loop_is_awake() {
        for backend in backends() {
            let mut rt = Runtime::builder().backend(backend).build().unwrap();
            let poster = rt.poster();
            std::thread::spawn(move || {
                for i in 0..10_000 {
                    poster.post(1, i).unwrap();
                }
            })
            .join()
            .unwrap();
            assert_eq!(rt.shared.rings.load(Relaxed), 0, "{backend:?}");
            let mut events = Events::with_capacity(16_384);
            assert_eq!(rt.wait(&mut events, Some(Duration::ZERO)).unwrap(), 10_000);
        }
    }

    /// While the loop sleeps and wakes, a producer rings at most once per
    /// sleep, however many posts it makes.
    #[test]
    fn at_most_one_ring_per_sleep() {
        const N: u64 = 200_000;
        for backend in backends() {
            let mut rt = Runtime::builder().backend(backend).build().unwrap();
            let poster = rt.poster();
            let producer = std::thread::spawn(move || {
                for i in 0..N {
                    poster.post(1, i).unwrap();
                }
            });
            let mut events = Events::with_capacity(256);
            let mut got = 0;
            while got < N {
                got += rt.wait(&mut events, Some(Duration::from_secs(20))).unwrap() as u64;
            }
            producer.join().unwrap();
            let rings = rt.shared.rings.load(Relaxed);
            let sleeps = rt.shared.sleeps.load(Relaxed);
            eprintln!("{backend:?}: {N} posts, {rings} doorbell rings, {sleeps} sleeps");
            assert!(
                rings <= sleeps,
                "{backend:?}: {rings} rings for {sleeps} sleeps"
            );
            assert!((rings as u64) < N, "{backend:?}: one ring per post");
        }
    }
}
