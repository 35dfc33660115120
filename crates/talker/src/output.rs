//! stdout without blocking the loop: lines for the operator (or the MCP
//! client) go into a bounded [`Queue`] and a [`Worker`] writes them. A
//! reader that stops reading fills the queue; further lines are dropped and
//! counted instead of stalling every connection — the output twin of
//! uniloop's [`Console`](uniloop::Console).

use std::io::{self, Write};
use std::time::Duration;

use uniloop::{Overflow, Queue, Worker};

/// Lines that may wait for stdout.
const CAPACITY: usize = 4096;

/// The stdout writer.
#[derive(Debug)]
pub struct Stdout {
    lines: Queue<String>,
    worker: Option<Worker<()>>,
    dropped: u64,
}

impl Stdout {
    /// Starts the writer thread (`talker-stdout`).
    ///
    /// # Errors
    ///
    /// The OS refusing the thread.
    pub fn spawn() -> io::Result<Stdout> {
        let lines: Queue<String> = Queue::bounded(CAPACITY, Overflow::Reject);
        let rx = lines.clone();
        let worker = Worker::builder()
            .name("talker-stdout")
            .spawn(move |_stop| {
                let stdout = io::stdout();
                // Ends when the queue is closed and drained, or stdout is gone.
                while let Ok(line) = rx.pop() {
                    let mut out = stdout.lock();
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                        rx.close();
                        break;
                    }
                }
            })?;
        Ok(Stdout {
            lines,
            worker: Some(worker),
            dropped: 0,
        })
    }

    /// Queues a line; never blocks. A line that finds the queue full (or
    /// stdout gone) is dropped and counted.
    pub fn line(&mut self, text: impl Into<String>) {
        if self.lines.try_push(text.into()).is_err() {
            self.dropped += 1;
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Lines waiting to be written.
    pub fn queued(&self) -> usize {
        self.lines.len()
    }

    /// Writes out what is queued (waiting up to `timeout`) and stops.
    pub fn finish(&mut self, timeout: Duration) {
        self.lines.close();
        if let Some(mut w) = self.worker.take() {
            let _ = w.join_timeout(timeout);
        }
    }
}

impl Drop for Stdout {
    fn drop(&mut self) {
        self.lines.close();
    }
}
