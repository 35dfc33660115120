//! [`Signals`]: process signals (Unix) and console control events
//! (Windows) as completions of the one `wait()`.
//!
//! # Why a signal cannot simply post
//!
//! A signal handler may only do async-signal-safe things. [`Poster::post`]
//! is not one of them: it may allocate (the completion queue grows in
//! blocks) and would deadlock or corrupt the heap if the signal interrupted
//! an allocation. So the OS side (`sys::signal`) is split in two:
//!
//! * **Unix**: the handler sets the signal's pending flag and writes one
//!   byte to a non-blocking self-pipe — both async-signal-safe — and does
//!   nothing else. One process-wide thread, `uniloop-signals`, blocks
//!   reading the pipe, takes the pending flags and calls [`deliver`], which
//!   posts to every subscriber. (signalfd would need the signal blocked in
//!   every thread of the process, including threads this crate does not
//!   own; `EVFILT_SIGNAL` would tie signals to the kqueue backend and still
//!   need a disposition that keeps the default action from running. The
//!   self-pipe works the same for every backend.)
//! * **Windows**: the console control handler already runs on a thread of
//!   its own, so it calls [`deliver`] directly.
//!
//! This module keeps who listens for what (a process-wide list) and never
//! runs inside a signal handler. It uses `std::sync` directly: the list is
//! an ordinary mutex-guarded table, not part of a lock-free protocol that
//! the loom models check.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::sys::signal as sys_signal;
use crate::{Poster, Signal};

impl Signal {
    /// This platform's number for the signal — what a [`Signals`]
    /// completion carries as its `data` — or `None` if the platform does not
    /// have it.
    pub fn as_raw(self) -> Option<i32> {
        sys_signal::raw(self)
    }

    /// The signal with this platform number: a named variant where there
    /// is one, else [`Signal::Other`]. Turns a completion's `data` back
    /// into a `Signal`: `Signal::from_raw(data as i32)`.
    pub fn from_raw(raw: i32) -> Signal {
        sys_signal::from_raw(raw)
    }

    /// Whether this platform has the signal (it may still be one that
    /// cannot be caught, such as `SIGKILL`; [`Signals::add`] says so).
    pub fn is_available(self) -> bool {
        self.as_raw().is_some()
    }
}

/// Delivers signals to the loop: each signal added with
/// [`add`](Signals::add) posts the completion `(key, number)` through the
/// `Poster` it was made with, where `number` is the signal's
/// [`as_raw`](Signal::as_raw) value (so `Signal::from_raw(data as i32)`
/// names it).
///
/// # Guarantees
///
/// * **Nothing is lost.** A signal that arrives after `add` returned
///   produces a completion, whether the loop is in `wait`, busy, or not yet
///   waiting; it waits in the runtime's completion queue like any post.
/// * **Bursts coalesce.** Several signals of one kind before the loop looks
///   give at least one completion (perhaps one for all of them — the OS
///   itself merges pending signals of a kind), never zero.
/// * **Dropping restores.** While any `Signals` in the process holds a
///   signal, uniloop's handler replaces the previous disposition (the
///   default action, `SIG_IGN` or another handler, which is not called);
///   when the last one is removed or dropped, the previous disposition is
///   put back. So a second Ctrl-C after the loop has dropped its `Signals`
///   ends the process the usual way.
/// * Several `Signals` (with different runtimes or keys) may hold the same
///   signal; each gets its own completion.
///
/// # Shutting a server down on Ctrl-C
///
/// `wait(None)` does not return because a signal interrupted it (`EINTR` is
/// retried), so a flag set by a plain signal handler is not seen until
/// something else wakes the loop. Add the signals to a `Signals` instead and
/// end the loop on their completion:
///
/// ```no_run
/// use uniloop::{Event, Events, Runtime, Signal, Signals};
///
/// const SHUTDOWN: u64 = u64::MAX;
/// let mut rt = Runtime::new()?;
/// let mut signals = Signals::new(&rt.poster(), SHUTDOWN);
/// signals.add(Signal::Interrupt)?; // Ctrl-C, on every platform
/// if Signal::Terminate.is_available() {
///     signals.add(Signal::Terminate)?; // `kill`, systemd, docker stop
/// }
/// let mut events = Events::with_capacity(256);
/// 'serve: loop {
///     rt.wait(&mut events, None)?;
///     for event in &events {
///         match *event {
///             Event::Completion { key: SHUTDOWN, data } => {
///                 eprintln!("{:?}: shutting down", Signal::from_raw(data as i32));
///                 break 'serve;
///             }
///             _ => { /* sockets, timers, ... */ }
///         }
///     }
/// }
/// drop(signals); // a second Ctrl-C now ends the process at once
/// // ... close connections, flush logs ...
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Platform notes
///
/// * **Unix**: the handler is installed with `SA_RESTART`, so blocking calls
///   on other threads are not interrupted with `EINTR` because of it. The
///   first `add` starts one thread, `uniloop-signals`, which stays for the
///   life of the process (it sleeps in `read` on the self-pipe).
///   `SIGKILL` and `SIGSTOP` cannot be caught, and the fault signals
///   (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) are refused: returning from
///   their handler re-runs the faulting instruction.
/// * **Windows**: the handler is installed with `SetConsoleCtrlHandler` once
///   and stays; for an event no `Signals` holds it answers "not handled", so
///   the handlers installed before it (or the default, `ExitProcess`) run
///   as if it were not there. For [`Signal::Close`], [`Signal::Logoff`] and
///   [`Signal::Shutdown`] Windows ends the process as soon as the handler
///   returns, so uniloop's handler does not return: the loop has the time
///   Windows allows (about 5 seconds for a close) to shut down and return
///   from `main`. A process started with `CREATE_NEW_PROCESS_GROUP` gets no
///   Ctrl-C (Windows disables it there), only Ctrl-Break.
///
/// # Examples
///
/// A signal sent to the process arrives as a completion:
///
/// ```
/// use std::time::Duration;
/// use uniloop::{Event, Events, Runtime, Signal, Signals};
///
/// # if Signal::User1.is_available() { // Unix
/// let mut rt = Runtime::new()?;
/// let mut signals = Signals::new(&rt.poster(), 3);
/// signals.add(Signal::User1)?;
/// // Another process sends it: `kill -USR1 <pid>`.
/// std::process::Command::new("kill")
///     .args(["-USR1", &std::process::id().to_string()])
///     .status()?;
/// let mut events = Events::with_capacity(8);
/// let usr1 = Signal::User1.as_raw().unwrap() as u64;
/// while !events.iter().any(|e| *e == Event::Completion { key: 3, data: usr1 }) {
///     rt.wait(&mut events, Some(Duration::from_secs(10)))?;
/// }
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Signals {
    id: u64,
    key: u64,
    poster: Poster,
    /// The raw numbers this instance holds.
    held: Vec<i32>,
}

/// One `Signals`' interest in one signal.
struct Subscriber {
    raw: i32,
    id: u64,
    key: u64,
    poster: Poster,
}

/// Who listens for what, process-wide. Locked briefly by `add`, `remove`
/// and `deliver`; never from a signal handler.
static SUBSCRIBERS: Mutex<Vec<Subscriber>> = Mutex::new(Vec::new());
/// Serialises installing and restoring OS handlers with the changes to
/// `SUBSCRIBERS` that decide them. Never taken by `deliver`, so the OS side
/// may deliver while a handler is being installed elsewhere.
static INSTALL: Mutex<()> = Mutex::new(());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under these locks can panic half-way through an update.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Called by `sys::signal` (never inside a signal handler) when `raw` has
/// arrived one or more times: posts `(key, raw)` to every subscriber.
/// Returns whether anyone was subscribed.
pub(crate) fn deliver(raw: i32) -> bool {
    let subs = lock(&SUBSCRIBERS);
    let mut any = false;
    for sub in subs.iter().filter(|s| s.raw == raw) {
        // A closed runtime just does not hear it.
        let _ = sub.poster.post(sub.key, raw as u64);
        any = true;
    }
    any
}

impl Signals {
    /// A `Signals` that posts `(key, number)` through `poster` for each
    /// signal later [`add`](Signals::add)ed. Holds no signal yet.
    pub fn new(poster: &Poster, key: u64) -> Signals {
        Signals {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            key,
            poster: poster.clone(),
            held: Vec::new(),
        }
    }

    /// Starts delivering `signal`: from now on each arrival (or burst of
    /// arrivals) posts one completion `(key, number)`.
    ///
    /// # Errors
    ///
    /// * [`io::ErrorKind::Unsupported`] if this platform does not have
    ///   `signal` ([`Signal::is_available`]).
    /// * [`io::ErrorKind::InvalidInput`] for a signal that cannot or must
    ///   not be caught (`SIGKILL`, `SIGSTOP`, the fault signals) or a number
    ///   out of range.
    /// * [`io::ErrorKind::AlreadyExists`] if this `Signals` holds it already.
    /// * The OS error if the handler or (on first use, Unix) the self-pipe
    ///   or its thread cannot be created.
    pub fn add(&mut self, signal: Signal) -> io::Result<()> {
        let raw = signal.as_raw().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{signal:?} does not exist on this platform"),
            )
        })?;
        if self.held.contains(&raw) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{signal:?} is already added"),
            ));
        }
        let _install = lock(&INSTALL);
        let first = {
            let mut subs = lock(&SUBSCRIBERS);
            let first = !subs.iter().any(|s| s.raw == raw);
            // Listed before the handler goes in, so a signal arriving the
            // moment it does finds its subscriber.
            subs.push(Subscriber {
                raw,
                id: self.id,
                key: self.key,
                poster: self.poster.clone(),
            });
            first
        };
        if first {
            if let Err(e) = sys_signal::enable(raw, deliver) {
                lock(&SUBSCRIBERS).retain(|s| !(s.raw == raw && s.id == self.id));
                return Err(e);
            }
        }
        self.held.push(raw);
        Ok(())
    }

    /// Stops delivering `signal`. If no other `Signals` in the process holds
    /// it, its previous disposition is restored.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] if this `Signals` does not hold it.
    pub fn remove(&mut self, signal: Signal) -> io::Result<()> {
        let raw = signal.as_raw();
        let Some(at) = self.held.iter().position(|&r| Some(r) == raw) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{signal:?} was not added"),
            ));
        };
        let raw = self.held.swap_remove(at);
        self.release(raw);
        Ok(())
    }

    /// Whether this `Signals` holds `signal`.
    pub fn contains(&self, signal: Signal) -> bool {
        signal.as_raw().is_some_and(|raw| self.held.contains(&raw))
    }

    fn release(&self, raw: i32) {
        let _install = lock(&INSTALL);
        let last = {
            let mut subs = lock(&SUBSCRIBERS);
            subs.retain(|s| !(s.raw == raw && s.id == self.id));
            !subs.iter().any(|s| s.raw == raw)
        };
        if last {
            sys_signal::disable(raw);
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for raw in std::mem::take(&mut self.held) {
            self.release(raw);
        }
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held: Vec<Signal> = self.held.iter().map(|&r| Signal::from_raw(r)).collect();
        f.debug_struct("Signals")
            .field("key", &self.key)
            .field("signals", &held)
            .finish()
    }
}
