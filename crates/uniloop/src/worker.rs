//! [`Worker`]: a managed thread with a cooperative stop signal, an
//! observable state, a captured result or panic, and timed joins.
//!
//! The reference C workers never set `STOPPING`, could block forever in a
//! timed join issued right after creation, lost the body's return value and
//! leaked when creation failed. Here the state is one atomic byte moved by
//! compare-and-swap (so `signal_stop` and the thread's own start/finish
//! cannot overwrite each other), the result waits in a mutex-guarded slot
//! that a timed join watches with a condition variable (so it never waits
//! on the OS thread itself until the result is there), and a failed spawn
//! returns the error with everything already dropped.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sync::{Arc, AtomicBool, AtomicU8, Condvar, Mutex, MutexGuard, Ordering};

const STARTING: u8 = 0;
const RUNNING: u8 = 1;
const STOPPING: u8 = 2;
const FINISHED: u8 = 3;
const PANICKED: u8 = 4;

/// Where a [`Worker`] is in its life.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use uniloop::{Worker, WorkerState};
///
/// let (started, is_started) = mpsc::channel();
/// let mut w = Worker::spawn(move |stop| {
///     started.send(()).unwrap();
///     while !stop.wait(Duration::from_secs(60)) {}
/// })?;
/// is_started.recv().unwrap();
/// assert_eq!(w.state(), WorkerState::Running);
/// w.signal_stop();
/// assert!(matches!(w.state(), WorkerState::Stopping | WorkerState::Finished));
/// w.join_timeout(Duration::from_secs(10)).unwrap();
/// assert_eq!(w.state(), WorkerState::Finished);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkerState {
    /// Spawned; the body has not started yet.
    Starting,
    /// The body is running and no stop has been signalled.
    Running,
    /// Stop has been signalled; the body has not returned yet.
    Stopping,
    /// The body returned.
    Finished,
    /// The body panicked; the panic was captured.
    Panicked,
}

impl WorkerState {
    fn from_u8(v: u8) -> WorkerState {
        match v {
            STARTING => WorkerState::Starting,
            RUNNING => WorkerState::Running,
            STOPPING => WorkerState::Stopping,
            FINISHED => WorkerState::Finished,
            _ => WorkerState::Panicked,
        }
    }
}

/// Why [`Worker::join`] or [`Worker::join_timeout`] gave no result.
///
/// # Examples
///
/// ```
/// use uniloop::{JoinError, Worker};
/// let w = Worker::spawn(|_| -> u32 { panic!("boom") })?;
/// assert_eq!(w.join(), Err(JoinError::Panicked("boom".to_string())));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JoinError {
    /// The body had not finished when the timeout passed; the worker is
    /// still joinable.
    Timeout,
    /// The body panicked; this is the panic message (or a placeholder when
    /// the payload was not a string).
    Panicked(String),
    /// An earlier join already took the result.
    Joined,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Timeout => f.write_str("the worker did not finish in time"),
            JoinError::Panicked(msg) => write!(f, "the worker panicked: {msg}"),
            JoinError::Joined => f.write_str("the worker's result was already taken"),
        }
    }
}

impl Error for JoinError {}

/// The stop signal a [`Worker`]'s body receives. Cheap to clone.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use uniloop::Worker;
/// let w = Worker::spawn(|stop| {
///     let mut ticks = 0u32;
///     while !stop.wait(Duration::from_millis(1)) {
///         ticks += 1;
///     }
///     ticks
/// })?;
/// w.signal_stop();
/// let _ticks = w.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct StopToken {
    inner: Arc<StopInner>,
}

struct StopInner {
    stop: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl StopToken {
    /// Whether stop has been signalled.
    pub fn should_stop(&self) -> bool {
        self.inner.stop.load(Ordering::Acquire)
    }

    /// Sleeps until stop is signalled or `timeout` passes; returns
    /// [`should_stop`](StopToken::should_stop). Use it instead of
    /// `thread::sleep` in a polling body so a stop is noticed at once.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = deadline(timeout);
        let mut guard = lock(&self.inner.lock);
        while !self.should_stop() {
            let Some(left) = left(deadline) else {
                return false;
            };
            guard = self
                .inner
                .cv
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn signal(&self) {
        self.inner.stop.store(true, Ordering::Release);
        // Under the lock, so a `wait` between its check and its sleep
        // cannot miss the notification.
        let _guard = lock(&self.inner.lock);
        self.inner.cv.notify_all();
    }
}

impl fmt::Debug for StopToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopToken")
            .field("should_stop", &self.should_stop())
            .finish()
    }
}

enum Slot<R> {
    Empty,
    Done(Result<R, String>),
    Taken,
}

struct Outcome<R> {
    state: AtomicU8,
    slot: Mutex<Slot<R>>,
    done: Condvar,
}

/// Configures a [`Worker`]: thread name and stack size. Made by
/// [`Worker::builder`].
///
/// # Examples
///
/// ```
/// use uniloop::Worker;
/// let w = Worker::builder()
///     .name("dns")
///     .stack_size(256 * 1024)
///     .spawn(|_stop| std::thread::current().name().map(str::to_owned))?;
/// assert_eq!(w.join().unwrap().as_deref(), Some("dns"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct WorkerBuilder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl WorkerBuilder {
    /// Names the thread (shown by debuggers and in panic messages).
    pub fn name(mut self, name: impl Into<String>) -> WorkerBuilder {
        self.name = Some(name.into());
        self
    }

    /// Sets the thread's stack size in bytes.
    pub fn stack_size(mut self, bytes: usize) -> WorkerBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the thread running `body`.
    ///
    /// # Errors
    ///
    /// Whatever the OS says when the thread cannot be created (too many
    /// threads, a stack that cannot be mapped). Nothing is left behind: the
    /// body and everything it captured are dropped before this returns.
    pub fn spawn<R, F>(self, body: F) -> io::Result<Worker<R>>
    where
        F: FnOnce(StopToken) -> R + Send + 'static,
        R: Send + 'static,
    {
        let stop = StopToken {
            inner: Arc::new(StopInner {
                stop: AtomicBool::new(false),
                lock: Mutex::new(()),
                cv: Condvar::new(),
            }),
        };
        let outcome = Arc::new(Outcome {
            state: AtomicU8::new(STARTING),
            slot: Mutex::new(Slot::Empty),
            done: Condvar::new(),
        });
        let mut builder = std::thread::Builder::new();
        if let Some(name) = &self.name {
            builder = builder.name(name.clone());
        }
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        let thread_stop = stop.clone();
        let thread_outcome = outcome.clone();
        let handle = builder.spawn(move || run(body, thread_stop, &thread_outcome))?;
        Ok(Worker {
            stop,
            outcome,
            handle: Some(handle),
            name: self.name,
        })
    }
}

fn run<R, F: FnOnce(StopToken) -> R>(body: F, stop: StopToken, outcome: &Outcome<R>) {
    // Fails if a stop was signalled first: the state stays `Stopping`.
    let _ = outcome
        .state
        .compare_exchange(STARTING, RUNNING, Ordering::AcqRel, Ordering::Acquire);
    let result = catch_unwind(AssertUnwindSafe(|| body(stop))).map_err(panic_message);
    let state = if result.is_ok() { FINISHED } else { PANICKED };
    let mut slot = lock(&outcome.slot);
    *slot = Slot::Done(result);
    outcome.state.store(state, Ordering::Release);
    outcome.done.notify_all();
}

pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<a panic payload that is not a string>".to_string()
    }
}

/// A managed thread: its body gets a [`StopToken`], its state is
/// observable, its result (or panic) is handed back by a join that can time
/// out.
///
/// Dropping a `Worker` without joining it signals stop and detaches the
/// thread: the drop never blocks, and the thread finishes on its own (its
/// result is dropped).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use uniloop::{JoinError, Worker, WorkerState};
///
/// let mut w = Worker::spawn(|stop| {
///     while !stop.wait(Duration::from_secs(60)) {}
///     "stopped cleanly"
/// })?;
/// assert_eq!(w.join_timeout(Duration::from_millis(1)), Err(JoinError::Timeout));
/// w.signal_stop();
/// assert_eq!(w.join_timeout(Duration::from_secs(10)), Ok("stopped cleanly"));
/// assert_eq!(w.state(), WorkerState::Finished);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Worker<R> {
    stop: StopToken,
    outcome: Arc<Outcome<R>>,
    handle: Option<JoinHandle<()>>,
    name: Option<String>,
}

impl Worker<()> {
    /// A [`WorkerBuilder`] with no name and the default stack size.
    pub fn builder() -> WorkerBuilder {
        WorkerBuilder::default()
    }
}

impl<R: Send + 'static> Worker<R> {
    /// Starts an unnamed worker with the default stack size; the same as
    /// `Worker::builder().spawn(body)`.
    ///
    /// # Errors
    ///
    /// As [`WorkerBuilder::spawn`].
    pub fn spawn<F>(body: F) -> io::Result<Worker<R>>
    where
        F: FnOnce(StopToken) -> R + Send + 'static,
    {
        WorkerBuilder::default().spawn(body)
    }
}

impl<R> Worker<R> {
    /// Asks the body to stop: its [`StopToken`] reports it and a
    /// [`StopToken::wait`] returns at once. The state becomes
    /// [`WorkerState::Stopping`] until the body returns. Never blocks.
    pub fn signal_stop(&self) {
        let state = &self.outcome.state;
        let mut cur = state.load(Ordering::Acquire);
        while cur == STARTING || cur == RUNNING {
            match state.compare_exchange(cur, STOPPING, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.stop.signal();
    }

    /// The current state.
    pub fn state(&self) -> WorkerState {
        WorkerState::from_u8(self.outcome.state.load(Ordering::Acquire))
    }

    /// The thread's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Waits up to `timeout` for the body to finish and takes its result.
    /// It waits on the result, never on the OS thread, so it returns within
    /// `timeout` even right after the spawn.
    ///
    /// # Errors
    ///
    /// [`JoinError::Timeout`] if the body is still running (the worker
    /// stays joinable); [`JoinError::Panicked`] if it panicked;
    /// [`JoinError::Joined`] if an earlier join took the result.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, JoinError> {
        self.join_until(Some(deadline(timeout)))
    }

    /// Waits for the body to finish and takes its result.
    ///
    /// # Errors
    ///
    /// [`JoinError::Panicked`] if the body panicked; [`JoinError::Joined`]
    /// if a [`join_timeout`](Worker::join_timeout) already took the result.
    pub fn join(mut self) -> Result<R, JoinError> {
        self.join_until(None)
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<R, JoinError> {
        let mut slot = lock(&self.outcome.slot);
        loop {
            match std::mem::replace(&mut *slot, Slot::Taken) {
                Slot::Done(result) => {
                    drop(slot);
                    if let Some(handle) = self.handle.take() {
                        // The body has returned and stored its result; the
                        // thread is only unwinding its last frame.
                        let _ = handle.join();
                    }
                    return result.map_err(JoinError::Panicked);
                }
                Slot::Taken => return Err(JoinError::Joined),
                Slot::Empty => *slot = Slot::Empty,
            }
            slot = match deadline {
                None => self
                    .outcome
                    .done
                    .wait(slot)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let Some(left) = left(deadline) else {
                        return Err(JoinError::Timeout);
                    };
                    self.outcome
                        .done
                        .wait_timeout(slot, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

impl<R> Drop for Worker<R> {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.signal_stop();
        }
    }
}

impl<R> fmt::Debug for Worker<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish()
    }
}

// Fails to compile if these stop being `Send + Sync`.
const _: fn() = || {
    fn assert<T: Send + Sync>() {}
    assert::<Worker<String>>();
    assert::<StopToken>();
};

fn deadline(timeout: Duration) -> Instant {
    Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(60 * 60 * 24 * 365 * 30))
}

fn left(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
