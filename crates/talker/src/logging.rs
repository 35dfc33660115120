//! The log, off the loop: [`log`] puts a line into a bounded [`Queue`] and
//! returns; a [`Worker`] thread (`talker-log`) writes the lines to stderr.
//!
//! The loop never waits for stderr. A terminal paused with Ctrl-S or a pipe
//! nobody reads blocks only the writer thread; the queue fills and further
//! lines are dropped and counted (`stats` shows `log.dropped`). When the
//! writer gets going again it first says how many lines were lost. A sink
//! that is gone (EPIPE: the Rust runtime ignores SIGPIPE, so a closed pipe
//! is an error, not a signal) stops the writer for good; every later line
//! is dropped and counted, and the talker serves on.
//!
//! Why uniloop's own `Queue` + `Worker` rather than `tracing` with
//! `tracing-appender`'s non-blocking writer: it is the same pattern
//! (bounded channel, one writer thread, lossy when full), the talker
//! already writes its stdout that way ([`crate::output`]), it needs no
//! second channel implementation or subscriber machinery, and the queue's
//! own statistics (length, high water mark, drops) are what `stats`
//! reports. The log is global (a `static`) because lines come from every
//! corner of the server, including before the server exists.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use uniloop::{Overflow, Queue, QueueStats, Worker};

/// Lines that may wait for stderr.
const CAPACITY: usize = 4096;
/// Bytes the writer gathers into one `write`.
const BATCH: usize = 64 * 1024;

#[derive(Debug)]
struct Shared {
    /// Lines dropped: the queue was full, or the sink is gone.
    dropped: AtomicU64,
    /// Set once a write to the sink failed (the sink is gone).
    closed: AtomicBool,
}

#[derive(Debug)]
struct Log {
    lines: Queue<String>,
    shared: Arc<Shared>,
    worker: Mutex<Option<Worker<()>>>,
}

static LOG: OnceLock<Option<Log>> = OnceLock::new();

/// What `stats` shows about the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Lines waiting for the writer.
    pub queued: usize,
    /// Most lines that ever waited at once.
    pub high_water: usize,
    /// Lines dropped (queue full, or the sink gone).
    pub dropped: u64,
    /// Whether the sink is gone (a write failed).
    pub sink_closed: bool,
}

fn start() -> Option<Log> {
    let lines: Queue<String> = Queue::bounded(CAPACITY, Overflow::Reject);
    let shared = Arc::new(Shared {
        dropped: AtomicU64::new(0),
        closed: AtomicBool::new(false),
    });
    let rx = lines.clone();
    let sh = Arc::clone(&shared);
    let worker = Worker::builder()
        .name("talker-log")
        .spawn(move |_stop| write_lines(&rx, &sh, &mut io::stderr()))
        .ok()?;
    Some(Log {
        lines,
        shared,
        worker: Mutex::new(Some(worker)),
    })
}

/// The writer: batches what is queued into one write; notes lost lines;
/// stops for good when the sink fails. Ends when the queue is closed and
/// drained.
fn write_lines(rx: &Queue<String>, shared: &Shared, sink: &mut dyn Write) {
    let mut reported = 0;
    let mut buf = Vec::with_capacity(BATCH);
    while let Ok(first) = rx.pop() {
        let dropped = shared.dropped.load(Ordering::Relaxed);
        if dropped > reported {
            let lost = dropped - reported;
            buf.extend_from_slice(
                format!("talker: ({lost} log line(s) dropped: the log was not being read)\n")
                    .as_bytes(),
            );
            reported = dropped;
        }
        let mut line = Some(first);
        let mut n = 0;
        while let Some(l) = line {
            n += 1;
            buf.extend_from_slice(b"talker: ");
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
            line = if buf.len() < BATCH {
                rx.try_pop()
            } else {
                None
            };
        }
        if sink.write_all(&buf).and_then(|()| sink.flush()).is_err() {
            shared.closed.store(true, Ordering::Relaxed);
            // Later lines find the queue closed and are counted as
            // dropped; what is queued now is dropped too.
            rx.close();
            let left = rx.clear() + n;
            shared.dropped.fetch_add(left as u64, Ordering::Relaxed);
            return;
        }
        buf.clear();
    }
}

/// Logs a line (stderr, `talker: ` in front). Never blocks: a line that
/// finds the queue full, or the sink gone, is dropped and counted.
pub fn log(text: &str) {
    // Without a writer thread (the OS refused it) the line is lost:
    // nothing else can be done without blocking.
    if let Some(l) = LOG.get_or_init(start) {
        if l.lines.try_push(text.to_string()).is_err() {
            l.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The log's numbers, for `stats`.
pub fn stats() -> LogStats {
    match LOG.get() {
        Some(Some(l)) => {
            let QueueStats {
                len, high_water, ..
            } = l.lines.stats();
            LogStats {
                queued: len,
                high_water,
                dropped: l.shared.dropped.load(Ordering::Relaxed),
                sink_closed: l.shared.closed.load(Ordering::Relaxed),
            }
        }
        _ => LogStats::default(),
    }
}

/// Writes out what is queued, waiting up to `timeout` (a stuck sink keeps
/// its lines), and stops the writer. Later lines are dropped.
pub fn finish(timeout: Duration) {
    let Some(Some(l)) = LOG.get() else { return };
    l.lines.close();
    let worker = l.worker.lock().map(|mut w| w.take()).unwrap_or(None);
    if let Some(mut w) = worker {
        let _ = w.join_timeout(timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that fails every write.
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn shared() -> Shared {
        Shared {
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    #[test]
    fn lines_are_prefixed_and_drops_reported() {
        let q = Queue::bounded(8, Overflow::Reject);
        let sh = shared();
        q.try_push("one".to_string()).unwrap();
        q.try_push("two".to_string()).unwrap();
        sh.dropped.store(3, Ordering::Relaxed);
        q.close();
        let mut out = Vec::new();
        write_lines(&q, &sh, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "talker: (3 log line(s) dropped: the log was not being read)\n\
             talker: one\ntalker: two\n"
        );
        assert!(!sh.closed.load(Ordering::Relaxed));
    }

    #[test]
    fn a_broken_sink_closes_the_queue_and_counts() {
        let q = Queue::bounded(8, Overflow::Reject);
        let sh = shared();
        for i in 0..5 {
            q.try_push(format!("{i}")).unwrap();
        }
        // The writer takes all five in one batch, fails, and stops.
        write_lines(&q, &sh, &mut Broken);
        assert!(sh.closed.load(Ordering::Relaxed));
        assert!(q.is_closed());
        assert!(q.try_push("late".to_string()).is_err());
        assert_eq!(sh.dropped.load(Ordering::Relaxed), 5);
    }
}
