//! [`Console`]: the operator's console as a line source for the loop.
//!
//! A [`Worker`] reads stdin (a terminal, a pipe or a file), splits it into
//! lines (with the crate's [`LineSplitter`], in [`LongLines::Split`] mode)
//! and hands them to the loop through a [`Queue`] whose
//! [`signal`](Queue::signal) posts one completion per burst. The reference C
//! runtime's `add_console` only detected the type of stdin and registered
//! nothing; here the lines really arrive, end of file is an event, and
//! [`Console::stop`] interrupts a read that is waiting for input (through
//! `sys::console`, a self-pipe plus `poll(2)` on Unix).

use std::fmt;
use std::io;
use std::time::Duration;

use crate::lines::{LineSplitter, LongLines};
use crate::sys::console::{self as sys_console, ReadOutcome};
use crate::{ConsoleKind, Overflow, Poster, Queue, StopToken, Worker};

/// What the console hands to the loop.
///
/// # Examples
///
/// ```
/// use uniloop::ConsoleEvent;
/// let ev = ConsoleEvent::Line("look".into());
/// assert_ne!(ev, ConsoleEvent::Eof);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConsoleEvent {
    /// One line, without its `\n` or `\r\n`. Invalid UTF-8 is replaced by
    /// U+FFFD. A line longer than [`Console::MAX_LINE`] bytes arrives as
    /// several `Line`s of at most that many bytes each.
    Line(String),
    /// End of input (or a read error). Comes once, and nothing after it.
    Eof,
}

/// Console input as events for the loop: a worker reads stdin and each
/// burst of lines posts one completion `(key, 0)` to the runtime; the loop
/// then calls [`try_recv`](Console::try_recv) until it returns `None`.
///
/// Dropping a `Console` stops its reader without waiting for it.
///
/// # Examples
///
/// See `examples/console.rs` for a complete program.
///
/// ```no_run
/// use uniloop::{Console, ConsoleEvent, Event, Events, Runtime};
///
/// const CONSOLE: u64 = 1;
/// let mut rt = Runtime::new()?;
/// let console = Console::spawn(&rt.poster(), CONSOLE)?;
/// let mut events = Events::with_capacity(64);
/// 'run: loop {
///     rt.wait(&mut events, None)?;
///     for event in &events {
///         if let Event::Completion { key: CONSOLE, .. } = event {
///             while let Some(ev) = console.try_recv() {
///                 match ev {
///                     ConsoleEvent::Line(line) => println!("> {line}"),
///                     ConsoleEvent::Eof => break 'run,
///                 }
///             }
///         }
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Console {
    kind: ConsoleKind,
    events: Queue<ConsoleEvent>,
    worker: Option<Worker<()>>,
    stopper: Option<sys_console::Stopper>,
}

/// Lines the reader may have queued before it waits for the loop.
const QUEUE_CAPACITY: usize = 1024;
/// Bytes per `read`.
const CHUNK: usize = 8 * 1024;

impl Console {
    /// The longest line, in bytes, delivered as one [`ConsoleEvent::Line`];
    /// longer lines are split (at a UTF-8 character boundary where there is
    /// one within the last 3 bytes; [`LongLines::Split`]). Memory use stays
    /// bounded whatever the input.
    pub const MAX_LINE: usize = 64 * 1024;

    /// Starts reading stdin on a worker thread named `uniloop-console`.
    /// Each burst of input posts one completion `(key, 0)` through
    /// `poster`.
    ///
    /// With no stdin at all ([`ConsoleKind::None`]) no thread is started
    /// and the console reports [`ConsoleEvent::Eof`] at once.
    ///
    /// # Errors
    ///
    /// The OS error if the self-pipe or the thread cannot be created.
    pub fn spawn(poster: &Poster, key: u64) -> io::Result<Console> {
        let kind = sys_console::stdin_kind();
        let events = Queue::bounded(QUEUE_CAPACITY, Overflow::Block);
        if kind == ConsoleKind::None {
            // Cannot fail: the queue is empty and open.
            let _ = events.push(ConsoleEvent::Eof);
            events.signal(poster, key);
            return Ok(Console {
                kind,
                events,
                worker: None,
                stopper: None,
            });
        }
        events.signal(poster, key);
        let (reader, stopper) = sys_console::stdin_reader()?;
        let tx = events.clone();
        let worker = Worker::builder()
            .name("uniloop-console")
            .spawn(move |stop| read_lines(reader, &tx, &stop))?;
        Ok(Console {
            kind,
            events,
            worker: Some(worker),
            stopper: Some(stopper),
        })
    }

    /// What stdin is connected to.
    pub fn kind(&self) -> ConsoleKind {
        self.kind
    }

    /// The next line or end of file, if one has arrived; never blocks.
    pub fn try_recv(&self) -> Option<ConsoleEvent> {
        self.events.try_pop()
    }

    /// Stops the reader, interrupting a read that is waiting for input, and
    /// waits up to `timeout` for its thread to finish. Returns whether it
    /// finished (calling `stop` again waits again). Lines already received
    /// stay available to [`try_recv`](Console::try_recv).
    pub fn stop(&mut self, timeout: Duration) -> bool {
        self.signal_stop();
        match self.worker.as_mut().map(|w| w.join_timeout(timeout)) {
            None => true,
            Some(Err(crate::JoinError::Timeout)) => false,
            Some(_) => {
                self.worker = None;
                true
            }
        }
    }

    fn signal_stop(&self) {
        if let Some(w) = &self.worker {
            w.signal_stop();
        }
        if let Some(s) = &self.stopper {
            s.stop();
        }
        // Wakes a reader blocked on a full queue.
        self.events.close();
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("kind", &self.kind)
            .field("queued", &self.events.len())
            .field("running", &self.worker.is_some())
            .finish()
    }
}

fn read_lines(mut reader: sys_console::Reader, events: &Queue<ConsoleEvent>, stop: &StopToken) {
    let mut lines = LineSplitter::new(Console::MAX_LINE).long_lines(LongLines::Split);
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::new();
    while !stop.should_stop() {
        match reader.read(&mut buf) {
            Ok(ReadOutcome::Data(n)) => {
                lines.push(&buf[..n]);
                while let Some(l) = lines.next_line() {
                    out.push(line(l.bytes()));
                }
            }
            Ok(ReadOutcome::Stopped) => return,
            // A read error ends the input as surely as end of file does.
            Ok(ReadOutcome::Eof) | Err(_) => {
                while let Some(l) = lines.finish() {
                    out.push(line(l.bytes()));
                }
                out.push(ConsoleEvent::Eof);
            }
        }
        let eof = out.last() == Some(&ConsoleEvent::Eof);
        for ev in out.drain(..) {
            // Fails only once the console is stopping.
            if events.push(ev).is_err() {
                return;
            }
        }
        if eof {
            return;
        }
    }
}

fn line(bytes: &[u8]) -> ConsoleEvent {
    ConsoleEvent::Line(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `read_lines` makes of these reads followed by end of input.
    fn split(chunks: &[&[u8]]) -> Vec<ConsoleEvent> {
        let mut s = LineSplitter::new(Console::MAX_LINE).long_lines(LongLines::Split);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c);
            while let Some(l) = s.next_line() {
                out.push(line(l.bytes()));
            }
        }
        while let Some(l) = s.finish() {
            out.push(line(l.bytes()));
        }
        out
    }

    fn l(s: &str) -> ConsoleEvent {
        ConsoleEvent::Line(s.to_string())
    }

    #[test]
    fn lf_crlf_and_chunk_boundaries() {
        assert_eq!(
            split(&[b"a\nb\r", b"\nc", b"d\n\n", b"tail"]),
            [l("a"), l("b"), l("cd"), l(""), l("tail")]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(&[b"ok \xff\xfe!\n"]), [l("ok \u{fffd}\u{fffd}!")]);
    }

    #[test]
    fn long_lines_split_at_max_and_char_boundary() {
        let mut long = vec![b'x'; Console::MAX_LINE - 1];
        long.extend_from_slice("é".as_bytes()); // straddles MAX_LINE
        long.extend_from_slice(b"yz\n");
        let out = split(&[&long]);
        assert_eq!(out[0], l(&"x".repeat(Console::MAX_LINE - 1)));
        assert_eq!(out[1..], [l("éyz")]);
        for ev in &out {
            let ConsoleEvent::Line(s) = ev else {
                unreachable!()
            };
            assert!(s.len() <= Console::MAX_LINE);
        }
    }
}
