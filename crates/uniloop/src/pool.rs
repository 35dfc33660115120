//! [`WorkerPool`]: N [`Worker`]s over one bounded job [`Queue`]; every
//! finished job posts a completion to the runtime and leaves its result to
//! be taken: `(key, job_id)` and [`WorkerPool::take_result`], or, for a job
//! submitted with a tag of the caller's (a connection's token, say),
//! `(key, tag)` and [`WorkerPool::take_tagged`], so the loop routes the
//! result from the completion alone.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::error::Error;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};
use crate::worker::panic_message;
use crate::{Overflow, Poster, PushError, Queue, Worker};

/// The job queue's capacity for [`WorkerPool::new`].
pub(crate) const DEFAULT_JOB_CAPACITY: usize = 1024;

/// The correlation id of a submitted job: the `data` of the completion
/// `(key, id)` posted when it finishes.
///
/// # Examples
///
/// ```
/// use uniloop::JobId;
/// let id = JobId(7);
/// assert_eq!(id.0, 7);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// A job panicked; the panic was caught in the pool's thread. Holds the
/// panic message.
///
/// # Examples
///
/// ```
/// use uniloop::JobPanicked;
/// let p = JobPanicked("boom".into());
/// assert_eq!(p.to_string(), "the job panicked: boom");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobPanicked(pub String);

impl fmt::Display for JobPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the job panicked: {}", self.0)
    }
}

impl Error for JobPanicked {}

/// Why [`WorkerPool::submit`] refused a job; the job is handed back.
///
/// `Debug` does not require `F: Debug`.
///
/// # Examples
///
/// ```
/// use uniloop::SubmitError;
/// let e = SubmitError::Full(|| 1);
/// let job = e.into_inner();
/// assert_eq!(job(), 1);
/// ```
pub enum SubmitError<F> {
    /// The job queue is full.
    Full(F),
    /// The pool is shutting down.
    Closed(F),
}

impl<F> SubmitError<F> {
    /// The job that was not submitted.
    pub fn into_inner(self) -> F {
        match self {
            SubmitError::Full(f) | SubmitError::Closed(f) => f,
        }
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubmitError::Full(_) => "Full(..)",
            SubmitError::Closed(_) => "Closed(..)",
        })
    }
}

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubmitError::Full(_) => "the pool's job queue is full",
            SubmitError::Closed(_) => "the pool is shutting down",
        })
    }
}

impl<F> Error for SubmitError<F> {}

/// What [`WorkerPool::shutdown`] found.
///
/// # Examples
///
/// ```
/// use uniloop::ShutdownReport;
/// let r = ShutdownReport::default();
/// assert_eq!((r.completed, r.cancelled, r.unfinished, r.untaken), (0, 0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ShutdownReport {
    /// Jobs that ran to the end (returned or panicked) over the pool's life.
    pub completed: u64,
    /// Jobs still queued at shutdown; they were dropped without running.
    pub cancelled: u64,
    /// Jobs still running when the timeout passed; their threads were
    /// detached and will post their completion if they ever finish (their
    /// results are dropped with the pool's last thread, uncounted).
    pub unfinished: u64,
    /// Results of finished jobs that were never taken (by
    /// [`take_result`](WorkerPool::take_result) or
    /// [`take_tagged`](WorkerPool::take_tagged)); dropped at shutdown.
    pub untaken: u64,
}

/// A job as the queue holds it: runnable, or convertible back to the
/// caller's closure type when it has to be handed back.
trait JobFn<R>: Send {
    fn run(self: Box<Self>) -> R;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<R, F: FnOnce() -> R + Send + 'static> JobFn<R> for F {
    fn run(self: Box<Self>) -> R {
        self()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// A queued job: its id, its tag if it was submitted with one, the work.
type Job<R> = (JobId, Option<u64>, Box<dyn JobFn<R>>);

/// What a job gave: its value, or the panic that ended it.
type Outcome<R> = Result<R, JobPanicked>;

/// Finished jobs' results, until they are taken.
struct Results<R> {
    /// Untagged jobs, by id.
    by_id: HashMap<JobId, Outcome<R>>,
    /// Tagged jobs, by tag, oldest first.
    by_tag: HashMap<u64, VecDeque<(JobId, Outcome<R>)>>,
    /// Results in `by_tag`.
    tagged: usize,
}

impl<R> Results<R> {
    fn len(&self) -> usize {
        self.by_id.len() + self.tagged
    }
}

struct Shared<R> {
    results: Mutex<Results<R>>,
    completed: AtomicUsize,
    running: AtomicUsize,
    poster: Poster,
    key: u64,
}

/// N worker threads over one bounded job queue. Each finished job stores
/// its result and posts a completion to the runtime: `(key, job_id)` for a
/// job from [`submit`](WorkerPool::submit), `(key, tag)` for one from
/// [`submit_tagged`](WorkerPool::submit_tagged).
///
/// Use one kind of submission per pool (or tags that cannot be mistaken for
/// job ids, which count up from 0): a completion's `data` does not say which
/// kind it is.
///
/// Dropping the pool without [`shutdown`](WorkerPool::shutdown) cancels the
/// queued jobs and lets running ones finish in the background; it never
/// blocks.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use uniloop::{Event, Events, Runtime, WorkerPool};
///
/// const JOBS: u64 = 3;
/// let mut rt = Runtime::new()?;
/// let pool = WorkerPool::new(2, &rt.poster(), JOBS)?;
/// let id = pool.submit(|| 6 * 7).unwrap();
///
/// let mut events = Events::with_capacity(8);
/// loop {
///     rt.wait(&mut events, Some(Duration::from_secs(10)))?;
///     if events.iter().any(|e| *e == Event::Completion { key: JOBS, data: id.0 }) {
///         break;
///     }
/// }
/// assert_eq!(pool.take_result(id), Some(Ok(42)));
/// let report = pool.shutdown(Duration::from_secs(10));
/// assert_eq!(report.completed, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Routing results to connections by tag: the completion says which
/// connection the result is for, so no table from job ids to connections
/// is needed.
///
/// ```
/// use std::collections::HashMap;
/// use std::time::Duration;
/// use uniloop::{Event, Events, Runtime, WorkerPool};
///
/// const LOOKUPS: u64 = 1;
/// let mut rt = Runtime::new()?;
/// let pool = WorkerPool::new(2, &rt.poster(), LOOKUPS)?;
/// // Connection tokens 10 and 11 each ask for a (slow, blocking) lookup.
/// let mut replies: HashMap<u64, Vec<String>> = HashMap::new();
/// for conn in [10u64, 11] {
///     pool.submit_tagged(conn, move || format!("hello, connection {conn}")).unwrap();
/// }
/// let mut events = Events::with_capacity(8);
/// while replies.len() < 2 {
///     rt.wait(&mut events, Some(Duration::from_secs(10)))?;
///     for event in &events {
///         if let Event::Completion { key: LOOKUPS, data: conn } = *event {
///             let (_job, result) = pool.take_tagged(conn).expect("one result per completion");
///             replies.entry(conn).or_default().push(result.unwrap());
///         }
///     }
/// }
/// assert_eq!(replies[&11], ["hello, connection 11"]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct WorkerPool<R> {
    jobs: Queue<Job<R>>,
    workers: Vec<Worker<()>>,
    shared: Arc<Shared<R>>,
    next_id: AtomicUsize,
}

impl<R: Send + 'static> WorkerPool<R> {
    /// Starts `threads` workers over a job queue of
    /// 1,024 jobs; finished jobs post `(key, id)`
    /// through `poster`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `threads` is 0; the OS error if a
    /// thread cannot be created (the threads already started are stopped).
    pub fn new(threads: usize, poster: &Poster, key: u64) -> io::Result<WorkerPool<R>> {
        Self::with_capacity(threads, DEFAULT_JOB_CAPACITY, poster, key)
    }

    /// As [`new`](WorkerPool::new), with a job queue of `capacity` jobs.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `threads` or `capacity` is 0; the
    /// OS error if a thread cannot be created.
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::{Runtime, WorkerPool};
    /// let rt = Runtime::new()?;
    /// let pool = WorkerPool::<()>::with_capacity(1, 16, &rt.poster(), 1)?;
    /// assert_eq!(pool.threads(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_capacity(
        threads: usize,
        capacity: usize,
        poster: &Poster,
        key: u64,
    ) -> io::Result<WorkerPool<R>> {
        if threads == 0 || capacity == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a worker pool needs at least one thread and room for one job",
            ));
        }
        let jobs: Queue<Job<R>> = Queue::bounded(capacity, Overflow::Reject);
        let shared = Arc::new(Shared {
            results: Mutex::new(Results {
                by_id: HashMap::new(),
                by_tag: HashMap::new(),
                tagged: 0,
            }),
            completed: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            poster: poster.clone(),
            key,
        });
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let (q, sh) = (jobs.clone(), shared.clone());
            let spawned = Worker::builder()
                .name(format!("uniloop-pool-{i}"))
                .spawn(move |_stop| work(&q, &sh));
            match spawned {
                Ok(w) => workers.push(w),
                Err(e) => {
                    jobs.close();
                    return Err(e);
                }
            }
        }
        Ok(WorkerPool {
            jobs,
            workers,
            shared,
            next_id: AtomicUsize::new(0),
        })
    }

    /// Queues `job`; returns the id its completion `(key, id)` will carry.
    /// Take its result with [`take_result`](WorkerPool::take_result).
    ///
    /// # Errors
    ///
    /// [`SubmitError::Full`] when the job queue is full,
    /// [`SubmitError::Closed`] during shutdown; both hand the job back.
    pub fn submit<F>(&self, job: F) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
    {
        self.push(None, job)
    }

    /// Queues `job` under a tag of the caller's choosing — a connection's
    /// token, say: its completion is `(key, tag)`, and its result is taken
    /// with [`take_tagged(tag)`](WorkerPool::take_tagged), so the loop
    /// routes the result without a table from job ids to connections.
    /// Several jobs may share a tag; each posts its own completion.
    ///
    /// Returns the job's id (for logging; the completion does not carry it).
    ///
    /// # Errors
    ///
    /// As [`submit`](WorkerPool::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use uniloop::{Event, Events, Runtime, WorkerPool};
    ///
    /// let mut rt = Runtime::new()?;
    /// let pool = WorkerPool::new(1, &rt.poster(), 5)?;
    /// let id = pool.submit_tagged(u64::MAX, || "done").unwrap();
    /// let mut events = Events::with_capacity(4);
    /// rt.wait(&mut events, Some(Duration::from_secs(10)))?;
    /// assert_eq!(events.iter().next(), Some(&Event::Completion { key: 5, data: u64::MAX }));
    /// assert_eq!(pool.take_tagged(u64::MAX), Some((id, Ok("done"))));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn submit_tagged<F>(&self, tag: u64, job: F) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
    {
        self.push(Some(tag), job)
    }

    fn push<F>(&self, tag: Option<u64>, job: F) -> Result<JobId, SubmitError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
    {
        let id = JobId(self.next_id.fetch_add(1, Ordering::Relaxed) as u64);
        match self.jobs.try_push((id, tag, Box::new(job))) {
            Ok(()) => Ok(id),
            Err(e) => {
                let full = matches!(e, PushError::Full(_));
                let (_, _, boxed) = e.into_inner();
                let job = *boxed
                    .into_any()
                    .downcast::<F>()
                    .unwrap_or_else(|_| unreachable!("the job was boxed as F just above"));
                Err(if full {
                    SubmitError::Full(job)
                } else {
                    SubmitError::Closed(job)
                })
            }
        }
    }
}

fn work<R>(jobs: &Queue<Job<R>>, shared: &Shared<R>) {
    // `pop` fails only once the queue is closed and empty.
    while let Ok((id, tag, job)) = jobs.pop() {
        shared.running.fetch_add(1, Ordering::AcqRel);
        let result =
            catch_unwind(AssertUnwindSafe(|| job.run())).map_err(|p| JobPanicked(panic_message(p)));
        // The result is stored before the completion is posted, so the
        // loop's `take_result` / `take_tagged` on that completion finds it.
        {
            let mut results = shared.results.lock().unwrap_or_else(|e| e.into_inner());
            match tag {
                None => {
                    results.by_id.insert(id, result);
                }
                Some(tag) => {
                    results
                        .by_tag
                        .entry(tag)
                        .or_default()
                        .push_back((id, result));
                    results.tagged += 1;
                }
            }
            // Counted under the lock, so `shutdown` sees a job as running or
            // as finished, never both.
            shared.completed.fetch_add(1, Ordering::AcqRel);
            shared.running.fetch_sub(1, Ordering::AcqRel);
        }
        let _ = shared.poster.post(shared.key, tag.unwrap_or(id.0));
    }
}

impl<R> WorkerPool<R> {
    /// Takes the result of a finished job: `None` if it has not finished
    /// (or its result was already taken).
    ///
    /// Only for jobs from [`submit`](WorkerPool::submit); a tagged job's
    /// result comes from [`take_tagged`](WorkerPool::take_tagged).
    pub fn take_result(&self, id: JobId) -> Option<Result<R, JobPanicked>> {
        self.results().by_id.remove(&id)
    }

    /// Takes the result of a finished job submitted with
    /// [`submit_tagged(tag, ..)`](WorkerPool::submit_tagged), with the job's
    /// id: the one that finished first, if several with this tag have.
    /// `None` if none has finished (or their results were all taken).
    ///
    /// Each completion `(key, tag)` stands for one result stored before it
    /// was posted, so taking one per completion always finds one.
    pub fn take_tagged(&self, tag: u64) -> Option<(JobId, Result<R, JobPanicked>)> {
        let mut results = self.results();
        let queue = results.by_tag.get_mut(&tag)?;
        let taken = queue.pop_front();
        if queue.is_empty() {
            results.by_tag.remove(&tag);
        }
        if taken.is_some() {
            results.tagged -= 1;
        }
        taken
    }

    /// Results of finished jobs not yet taken.
    pub fn untaken(&self) -> usize {
        self.results().len()
    }

    fn results(&self) -> crate::sync::MutexGuard<'_, Results<R>> {
        self.shared
            .results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Jobs queued and not yet started.
    pub fn queued(&self) -> usize {
        self.jobs.len()
    }

    /// Jobs running now (a server's `stats`: how busy the pool is).
    pub fn running(&self) -> usize {
        self.shared.running.load(Ordering::Acquire)
    }

    /// Jobs finished so far, panicked ones included, whether or not their
    /// results were taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use uniloop::{Events, Runtime, WorkerPool};
    ///
    /// let mut rt = Runtime::new()?;
    /// let pool = WorkerPool::new(1, &rt.poster(), 1)?;
    /// let id = pool.submit(|| 1).unwrap();
    /// let mut events = Events::with_capacity(4);
    /// while pool.take_result(id).is_none() {
    ///     rt.wait(&mut events, Some(Duration::from_secs(10)))?;
    /// }
    /// assert_eq!((pool.completed(), pool.running(), pool.queued()), (1, 0, 0));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::Acquire) as u64
    }

    /// Stops the pool: queued jobs are cancelled (dropped unrun), running
    /// jobs get up to `timeout` to finish, and threads still busy after that
    /// are detached. Results not yet taken are dropped and counted
    /// ([`ShutdownReport::untaken`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use uniloop::{Events, Runtime, WorkerPool};
    ///
    /// let mut rt = Runtime::new()?;
    /// let pool = WorkerPool::new(1, &rt.poster(), 1)?;
    /// pool.submit_tagged(7, || ()).unwrap();
    /// let mut events = Events::with_capacity(4);
    /// rt.wait(&mut events, Some(Duration::from_secs(10)))?; // finished, never taken
    /// assert_eq!(pool.shutdown(Duration::from_secs(10)).untaken, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        let deadline = Instant::now().checked_add(timeout);
        self.jobs.close();
        let cancelled = self.jobs.clear() as u64;
        for mut w in std::mem::take(&mut self.workers) {
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            // A worker that is still busy is detached by dropping it.
            let _ = w.join_timeout(left);
        }
        // Taken together under the lock, so a detached job finishing now is
        // either unfinished or untaken, not both or neither.
        let mut results = self.results();
        let untaken = results.len() as u64;
        let unfinished = self.shared.running.load(Ordering::Acquire) as u64;
        let completed = self.shared.completed.load(Ordering::Acquire) as u64;
        // Dropped after unlocking: a result's `Drop` is the caller's code.
        let dropped = (
            std::mem::take(&mut results.by_id),
            std::mem::take(&mut results.by_tag),
        );
        results.tagged = 0;
        drop(results);
        drop(dropped);
        ShutdownReport {
            completed,
            cancelled,
            unfinished,
            untaken,
        }
    }
}

impl<R> Drop for WorkerPool<R> {
    fn drop(&mut self) {
        self.jobs.close();
        self.jobs.clear();
    }
}

impl<R> fmt::Debug for WorkerPool<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("threads", &self.workers.len())
            .field("queued", &self.jobs.len())
            .field("running", &self.shared.running.load(Ordering::Relaxed))
            .finish()
    }
}

// Fails to compile if these stop being `Send + Sync`.
const _: fn() = || {
    fn assert<T: Send + Sync>() {}
    assert::<WorkerPool<String>>();
};
