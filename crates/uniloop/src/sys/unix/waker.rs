//! The doorbell for the epoll and poll backends: an eventfd on Linux and
//! Android, a non-blocking pipe elsewhere. Both are level-triggered: once
//! rung they stay readable until drained, so a ring that lands before the
//! loop blocks is not lost.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;

use crate::completion::Notify;

#[derive(Debug)]
pub(crate) struct Waker {
    /// The end the loop polls and drains.
    read: OwnedFd,
    /// The end producers write; `None` when it is the same fd (eventfd).
    #[cfg_attr(any(target_os = "linux", target_os = "android"), allow(dead_code))]
    write: Option<OwnedFd>,
}

impl Waker {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn new() -> io::Result<Waker> {
        use rustix::event::{eventfd, EventfdFlags};
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Waker {
            read: fd,
            write: None,
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn new() -> io::Result<Waker> {
        use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
        use rustix::io::{fcntl_setfd, FdFlags};
        let (read, write) = rustix::pipe::pipe()?;
        for fd in [&read, &write] {
            fcntl_setfd(fd, FdFlags::CLOEXEC)?;
            fcntl_setfl(fd, fcntl_getfl(fd)? | OFlags::NONBLOCK)?;
        }
        Ok(Waker {
            read,
            write: Some(write),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Empties the doorbell after the selector saw it readable.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            match rustix::io::read(&self.read, &mut buf) {
                // An eventfd read takes the whole counter at once; a pipe
                // may need several reads.
                Ok(n) if n == buf.len() => continue,
                Ok(_) | Err(Errno::AGAIN) => return,
                Err(Errno::INTR) => continue,
                Err(_) => return,
            }
        }
    }
}

impl Notify for Waker {
    fn notify(&self) -> io::Result<()> {
        let fd = self.write.as_ref().unwrap_or(&self.read);
        loop {
            match rustix::io::write(fd, &1u64.to_ne_bytes()) {
                // Full (eventfd counter or pipe): it is already rung.
                Ok(_) | Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
