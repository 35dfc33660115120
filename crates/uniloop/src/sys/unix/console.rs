//! Console input on Unix: classify stdin, and read it through `poll(2)` on
//! stdin plus a self-pipe, so a reader blocked on a terminal or an empty
//! pipe can be woken to stop.
//!
//! stdin's file description is shared with the parent shell, so it is never
//! switched to non-blocking mode; `poll` decides when a `read` cannot block.

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::FileType;
use rustix::io::Errno;

use crate::ConsoleKind;

/// What stdin is: a terminal, a pipe or socket, a file (or a device such as
/// `/dev/null`), or nothing (fd 0 is closed).
pub(crate) fn stdin_kind() -> ConsoleKind {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return ConsoleKind::Tty;
    }
    match rustix::fs::fstat(stdin.as_fd()) {
        Err(_) => ConsoleKind::None,
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::Fifo | FileType::Socket => ConsoleKind::Pipe,
            _ => ConsoleKind::File,
        },
    }
}

/// One `read` on stdin, or why there was none.
pub(crate) enum ReadOutcome {
    Data(usize),
    Eof,
    Stopped,
}

/// Reads stdin until its [`Stopper`] fires.
pub(crate) struct Reader {
    stop: OwnedFd,
}

/// Wakes a [`Reader`] blocked in `read` and makes every later `read`
/// return `Stopped`.
#[derive(Debug)]
pub(crate) struct Stopper {
    stop: OwnedFd,
}

/// A reader of stdin and the stopper that interrupts it.
pub(crate) fn stdin_reader() -> io::Result<(Reader, Stopper)> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let (read, write) = super::pipe()?;
    // Stopping twice must not block on a full pipe.
    fcntl_setfl(&write, fcntl_getfl(&write)? | OFlags::NONBLOCK)?;
    Ok((Reader { stop: read }, Stopper { stop: write }))
}

impl Reader {
    /// Blocks until stdin has data (returns it), reaches end of file, or
    /// the stopper fired. `EINTR` is retried here.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let stdin = io::stdin();
        let stdin = stdin.as_fd();
        loop {
            let mut fds = [
                PollFd::from_borrowed_fd(self.stop.as_fd(), PollFlags::IN),
                PollFd::from_borrowed_fd(stdin, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            // The stop byte is never drained: once stopped, stays stopped.
            if !fds[0].revents().is_empty() {
                return Ok(ReadOutcome::Stopped);
            }
            if fds[1].revents().contains(PollFlags::NVAL) {
                return Ok(ReadOutcome::Eof);
            }
            if fds[1].revents().is_empty() {
                continue;
            }
            // Readable, hung up or in error: a read now does not block, and
            // reports the data, the end (0) or the error.
            return match rustix::io::read(stdin, &mut *buf) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => Ok(ReadOutcome::Data(n)),
                Err(Errno::INTR) | Err(Errno::AGAIN) => continue,
                Err(e) => Err(e.into()),
            };
        }
    }
}

impl Stopper {
    pub(crate) fn stop(&self) {
        loop {
            match rustix::io::write(&self.stop, &[1]) {
                Err(Errno::INTR) => continue,
                // Written, or the pipe is already full of stop bytes.
                _ => return,
            }
        }
    }
}
