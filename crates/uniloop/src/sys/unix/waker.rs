//! The doorbell for the epoll and poll backends: an eventfd on Linux and
//! Android, a non-blocking pipe elsewhere. Both are level-triggered: once
//! rung they stay readable until drained, so a ring that lands before the
//! loop blocks is not lost.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;

use crate::sys::Notify;

/// Rings a doorbell that lives on the kqueue itself.
#[cfg(uniloop_evfilt_user)]
pub(crate) type Ring = fn(&OwnedFd) -> io::Result<()>;

#[derive(Debug)]
pub(crate) struct Waker {
    /// The end the loop polls and drains; `None` for a kqueue `EVFILT_USER`
    /// doorbell, which lives on the kqueue itself.
    read: Option<OwnedFd>,
    /// The end producers write; `None` when it is the same fd (eventfd).
    write: Option<OwnedFd>,
    /// The kqueue whose `EVFILT_USER` event is the doorbell, and how the
    /// kqueue backend rings it. Shared with the selector so that ringing
    /// after the runtime is gone stays harmless.
    #[cfg(uniloop_evfilt_user)]
    kqueue: Option<(crate::sync::Arc<OwnedFd>, Ring)>,
}

impl Waker {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn new() -> io::Result<Waker> {
        use rustix::event::{eventfd, EventfdFlags};
        let fd = super::above_stdio(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?)?;
        Ok(Waker {
            read: Some(fd),
            write: None,
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn new() -> io::Result<Waker> {
        use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
        let (read, write) = super::pipe()?;
        for fd in [&read, &write] {
            fcntl_setfl(fd, fcntl_getfl(fd)? | OFlags::NONBLOCK)?;
        }
        Ok(Waker {
            read: Some(read),
            write: Some(write),
            #[cfg(uniloop_evfilt_user)]
            kqueue: None,
        })
    }

    /// A doorbell on the kqueue `kq`, which `ring` rings.
    #[cfg(uniloop_evfilt_user)]
    pub(crate) fn kqueue(kq: crate::sync::Arc<OwnedFd>, ring: Ring) -> Waker {
        Waker {
            read: None,
            write: None,
            kqueue: Some((kq, ring)),
        }
    }

    /// The fd the selector watches. Only fd doorbells are handed to the
    /// epoll and poll selectors, which are the callers.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_ref().expect("an fd doorbell").as_fd()
    }

    /// Empties the doorbell after the selector saw it ring.
    pub(crate) fn drain(&self) {
        let Some(read) = &self.read else {
            return; // EVFILT_USER with EV_CLEAR resets itself.
        };
        let mut buf = [0u8; 64];
        loop {
            match rustix::io::read(read, &mut buf) {
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
        #[cfg(uniloop_evfilt_user)]
        if let Some((kq, ring)) = &self.kqueue {
            return ring(kq);
        }
        let Some(fd) = self.write.as_ref().or(self.read.as_ref()) else {
            return Ok(());
        };
        let mut drained = false;
        loop {
            match rustix::io::write(fd, &1u64.to_ne_bytes()) {
                Ok(_) => return Ok(()),
                // A full pipe is already rung (the poll and kqueue selectors
                // watch it level-triggered). A full eventfd counter (2^64 - 2
                // rings without a drain) would make no new edge for an
                // edge-triggered epoll registration: empty it and ring again.
                Err(Errno::AGAIN) if self.write.is_none() && !drained => {
                    self.drain();
                    drained = true;
                }
                Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    /// An eventfd whose counter is full cannot take another write; ringing
    /// must still produce a fresh edge (epoll watches it edge-triggered).
    #[test]
    fn ringing_a_full_eventfd_empties_it_and_rings_again() {
        let waker = Waker::new().unwrap();
        let full = u64::MAX - 1; // the largest value an eventfd holds
        rustix::io::write(waker.fd(), &full.to_ne_bytes()).unwrap();
        waker.notify().unwrap();
        let mut buf = [0u8; 8];
        rustix::io::read(waker.fd(), &mut buf).unwrap();
        assert_eq!(
            u64::from_ne_bytes(buf),
            1,
            "the ring after the drain is the only one left"
        );
    }
}
