//! [`Runtime`]: registration, timers and the one `wait()` that merges socket
//! readiness, completions, wake-ups and timer expiries.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::completion::{Poster, Shared};
use crate::sync::Arc;
use crate::sys::{self, AsSource, RawSource, Selector, Waker};
use crate::timer::{TimerId, Timers};
use crate::{Event, Events, Interest, Readiness, Token, Trigger};

/// An OS readiness mechanism a [`Runtime`] can be built on.
///
/// | OS | default | also |
/// |---|---|---|
/// | Linux, Android | `Epoll` | `Poll` |
/// | macOS, iOS, FreeBSD, OpenBSD, NetBSD, DragonFly | `Kqueue` | `Poll` |
/// | Windows | `Iocp` | — |
/// | other Unix | `Poll` | — |
///
/// # Examples
///
/// ```
/// use uniloop::{Backend, Trigger};
/// assert!(Backend::native().is_available());
/// assert!(!Backend::Poll.supports(Trigger::Edge)); // on every platform
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Linux `epoll(7)`.
    Epoll,
    /// POSIX `poll(2)`: portable, O(registered sources) per wait.
    Poll,
    /// BSD / macOS `kqueue(2)`.
    Kqueue,
    /// Windows I/O completion ports with AFD polling.
    Iocp,
}

impl Backend {
    /// Every backend, for iterating (tests, benchmarks).
    pub const ALL: [Backend; 4] = [
        Backend::Epoll,
        Backend::Poll,
        Backend::Kqueue,
        Backend::Iocp,
    ];

    /// The backend [`Runtime::new`] uses on this platform.
    pub fn native() -> Backend {
        sys::default_backend()
    }

    /// Whether this build can create a runtime on this backend.
    pub fn is_available(self) -> bool {
        sys::is_available(self)
    }

    /// Whether this backend implements `trigger` natively and exactly.
    /// Registering with an unsupported trigger fails with
    /// [`io::ErrorKind::Unsupported`].
    pub fn supports(self, trigger: Trigger) -> bool {
        match (self, trigger) {
            (_, Trigger::Level | Trigger::Oneshot) => true,
            (Backend::Epoll | Backend::Kqueue, Trigger::Edge) => true,
            (Backend::Poll | Backend::Iocp, Trigger::Edge) => false,
        }
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
}

impl Builder {
    /// Uses `backend` instead of the platform's best.
    pub fn backend(mut self, backend: Backend) -> Builder {
        self.backend = Some(backend);
        self
    }

    /// Creates the runtime.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Unsupported`] if the chosen backend does not exist on
    /// this platform; otherwise whatever the OS says when creating the
    /// selector or doorbell (out of file descriptors, say).
    pub fn build(self) -> io::Result<Runtime> {
        let backend = self.backend.unwrap_or_else(Backend::native);
        if !backend.is_available() {
            return Err(sys::unsupported(&format!(
                "the {backend:?} backend is not available on this platform"
            )));
        }
        let (selector, waker) = Selector::new(backend)?;
        Ok(Runtime {
            backend,
            selector,
            shared: Arc::new(Shared::new(waker)),
            registry: Registry::default(),
            timers: Timers::new(),
            scratch: Vec::new(),
            turn: 0,
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
    timers: Timers,
    /// Reused buffer for the selector's `(slot, readiness)` output.
    scratch: Vec<(u64, Readiness)>,
    /// Alternates who goes first when `events` has room for only one.
    turn: u64,
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
    /// Deregister it before closing it (closing first leaves a stale entry
    /// that makes a later registration of the same fd fail with
    /// `AlreadyExists`; deregistering it then clears it).
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::AlreadyExists`] if `source` is already registered.
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
        let raw = sys::raw_source(src);
        if self.registry.by_source.contains_key(&raw) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "source is already registered",
            ));
        }
        let slot = self.registry.alloc(raw, token);
        if let Err(e) = self.selector.register(src, slot, interest, trigger) {
            self.registry.free(raw);
            return Err(e);
        }
        Ok(())
    }

    /// Changes a registered source's token and interest (level-triggered);
    /// also re-arms a oneshot registration.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if `source` is not registered; the OS error
    /// otherwise.
    pub fn reregister<S: AsSource + ?Sized>(
        &mut self,
        source: &S,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.reregister_with(source, token, interest, Trigger::Level)
    }

    /// [`reregister`](Runtime::reregister) with an explicit [`Trigger`].
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
        let slot = self.registry.lookup(sys::raw_source(src))?;
        self.selector.reregister(src, slot, interest, trigger)?;
        self.registry.slots[slot as usize] = Some((sys::raw_source(src), token));
        Ok(())
    }

    /// Stops watching `source`. No event for it is returned after this.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if `source` is not registered.
    pub fn deregister<S: AsSource + ?Sized>(&mut self, source: &S) -> io::Result<()> {
        let src = source.as_source();
        let raw = sys::raw_source(src);
        self.registry.lookup(raw)?;
        // Forget it even if the OS complains (a closed fd, say): the caller
        // asked for it gone, and a stale entry would block re-registration.
        let r = self.selector.deregister(src);
        self.registry.free(raw);
        r
    }

    /// How many sources are registered.
    pub fn registered(&self) -> usize {
        self.registry.by_source.len()
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
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// How many timers are pending.
    pub fn timers(&self) -> usize {
        self.timers.len()
    }

    /// Blocks until something is ready or `timeout` passes, and fills
    /// `events` with at most `events.capacity()` events.
    ///
    /// * `None` blocks until something happens; `Some(Duration::ZERO)` only
    ///   looks. Sub-millisecond timeouts are rounded up, never down to a busy
    ///   poll. A signal (`EINTR`) does not end the wait early: it resumes with
    ///   the remaining time.
    /// * Whatever does not fit — completions, due timers, readiness — is
    ///   returned by later calls; nothing is dropped. When more kinds of
    ///   event are pending than fit, they take turns, so a flood of
    ///   completions cannot starve sockets or the other way round.
    ///
    /// Returns the number of events (0 when the timeout passed).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `events` has capacity 0; the OS
    /// error if the selector fails.
    pub fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        if events.capacity() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Events has capacity 0",
            ));
        }
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        self.turn = self.turn.wrapping_add(1);
        // Leave room for I/O readiness before taking completions and timers:
        // half the buffer, or every other call when it holds one event.
        let reserve = if events.capacity() >= 2 {
            events.capacity() / 2
        } else {
            (self.turn & 1) as usize
        };
        let mut now = start;
        // Set once a blocking select has returned: I/O was just polled with
        // the whole buffer free, so the next pass need not poll it again.
        let mut io_polled = false;
        loop {
            self.shared.begin_pass();
            let more = self.collect(events, now, events.capacity() - reserve);
            let expired = timeout == Some(Duration::ZERO) || deadline.is_some_and(|d| now >= d);
            if more || !events.is_empty() || expired {
                if events.room() > 0 && !io_polled {
                    match self.poll_io(events, Some(Duration::ZERO)) {
                        Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
                        _ => {}
                    }
                }
                self.collect(events, now, events.capacity());
                return Ok(events.len());
            }

            let block = match (deadline, self.timers.next_deadline()) {
                (None, None) => None,
                (Some(d), None) | (None, Some(d)) => Some(d.saturating_duration_since(now)),
                (Some(a), Some(b)) => Some(a.min(b).saturating_duration_since(now)),
            };
            if self.shared.prepare_sleep() {
                let r = self.poll_io(events, block);
                self.shared.finish_sleep();
                io_polled = r.is_ok();
                match r {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if !events.is_empty() {
                // The clock only matters here for due timers: skip the read
                // when there are none (one clock read less per busy wait).
                if self.timers.len() > 0 {
                    now = Instant::now();
                }
                self.shared.begin_pass();
                self.collect(events, now, events.capacity());
                return Ok(events.len());
            }
            now = Instant::now();
        }
    }

    /// Takes a pending wake, due timers and completions, in that order,
    /// until `events` holds `limit`. Returns whether something was left
    /// behind for lack of room.
    fn collect(&mut self, events: &mut Events, now: Instant, limit: usize) -> bool {
        let limit = limit.min(events.capacity());
        if self.shared.wake_pending() {
            if events.len() >= limit {
                return true;
            }
            if self.shared.take_wake() {
                events.push(Event::Wake);
            }
        }
        // No pending timer, nothing due: skip the wheel and the clock maths.
        let timers = self.timers.len() > 0;
        while timers && events.len() < limit {
            match self.timers.pop_due(now) {
                Some((key, id)) => events.push(Event::Timer { key, id }),
                None => break,
            }
        }
        while events.len() < limit {
            match self.shared.pop() {
                Some((key, data)) => events.push(Event::Completion { key, data }),
                None => return false,
            }
        }
        self.shared.has_completions() || (timers && self.timers.has_due(now))
    }

    fn poll_io(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        self.scratch.clear();
        let woken = self
            .selector
            .select(&mut self.scratch, events.room(), timeout)?;
        if woken {
            self.shared.notifier().drain();
        }
        for &(slot, ready) in &self.scratch {
            if let Some(token) = self.registry.token(slot) {
                events.push(Event::Io { token, ready });
            }
        }
        Ok(())
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

impl Drop for Runtime {
    fn drop(&mut self) {
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

/// The runtime's own record of what is registered, so every backend gives
/// the same `AlreadyExists` / `NotFound` answers and reports the caller's
/// token exactly. Backends see only the slot number.
#[derive(Default)]
struct Registry {
    by_source: HashMap<RawSource, u64>,
    slots: Vec<Option<(RawSource, Token)>>,
    free_slots: Vec<u64>,
}

impl Registry {
    fn alloc(&mut self, raw: RawSource, token: Token) -> u64 {
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some((raw, token));
                slot
            }
            None => {
                self.slots.push(Some((raw, token)));
                (self.slots.len() - 1) as u64
            }
        };
        self.by_source.insert(raw, slot);
        slot
    }

    fn free(&mut self, raw: RawSource) {
        if let Some(slot) = self.by_source.remove(&raw) {
            self.slots[slot as usize] = None;
            self.free_slots.push(slot);
        }
    }

    fn lookup(&self, raw: RawSource) -> io::Result<u64> {
        self.by_source
            .get(&raw)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "source is not registered"))
    }

    fn token(&self, slot: u64) -> Option<Token> {
        self.slots
            .get(slot as usize)
            .copied()
            .flatten()
            .map(|(_, token)| token)
    }
}

#[cfg(all(test, not(uniloop_loom)))]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    /// A burst posted while the loop is busy rings the doorbell zero times.
    #[test]
    fn no_ring_while_the_loop_is_awake() {
        for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
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
        for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
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
