//! The poll(2) backend: the portable fallback, selectable on every Unix so
//! CI exercises it on Linux too.
//!
//! No fixed fd limit: the `pollfd` array grows with registrations (the
//! reference C runtime wrote past its 4096-entry arrays). Level and oneshot
//! are supported; edge is not, because poll(2) only knows the current state
//! and an edge emulation without hooking the caller's I/O would either repeat
//! (that is level) or miss data that arrives after a drain. The runtime
//! rejects it with `ErrorKind::Unsupported`.
//!
//! An fd closed while registered (`POLLNVAL`) is disarmed for good and
//! reports nothing; each entry keeps the identity of the file it was made
//! for, so that a new file given the number can replace it (`replace`).
//!
//! `libc::pollfd` rather than rustix's `PollFd`: a disarmed oneshot entry
//! needs a negative fd (which poll(2) skips, even for hang-ups), and a
//! `BorrowedFd` cannot hold one.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use super::{timeout_ms, Identity, Source, Waker};
use crate::sys::{NativeIo, Open, Poller};
use crate::{Interest, Readiness, Trigger};

#[derive(Debug, Clone)]
struct Entry {
    fd: RawFd,
    slot: u64,
    oneshot: bool,
    /// poll(2) said the fd was closed (`POLLNVAL`): the entry is disarmed
    /// for good and reports nothing, as epoll forgets a closed fd.
    closed: bool,
    /// The file registered, to tell it from a later one with its number.
    id: Identity,
}

#[derive(Debug)]
pub(crate) struct Selector {
    /// `fds[0]` is the doorbell; `fds[i]` belongs to `entries[i - 1]`.
    fds: Vec<libc::pollfd>,
    entries: Vec<Entry>,
    index: HashMap<RawFd, usize>,
    /// Where the next scan starts, so that when more sources are ready than
    /// fit in one `select`, the rest come first next time (round-robin).
    cursor: usize,
}

impl Selector {
    pub(crate) fn new(waker: &Waker) -> Selector {
        Selector {
            fds: vec![libc::pollfd {
                fd: waker.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }],
            entries: Vec::new(),
            index: HashMap::new(),
            cursor: 0,
        }
    }
}

impl Open for Selector {
    fn open() -> io::Result<(Selector, Waker)> {
        let waker = Waker::new()?;
        Ok((Selector::new(&waker), waker))
    }
}

impl NativeIo for Selector {}

impl Poller for Selector {
    /// None: no single object covers the registered fds.
    fn os_handle(&self) -> Option<RawFd> {
        None
    }

    fn register(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        // poll(2) would only flag a bad fd later (POLLNVAL); fstat says so
        // now (EBADF), as epoll_ctl does.
        let id = Identity::of(fd)?;
        let raw = fd.as_raw_fd();
        let entry = Entry {
            fd: raw,
            slot,
            oneshot: check(trigger)?,
            closed: false,
            id,
        };
        self.index.insert(raw, self.entries.len());
        self.entries.push(entry);
        self.fds.push(libc::pollfd {
            fd: raw,
            events: events(interest),
            revents: 0,
        });
        Ok(())
    }

    /// The runtime still has `fd`'s number: the entry is stale if poll(2)
    /// has seen its fd closed, or if `fd` is another file than the one
    /// registered. Then it becomes `fd`'s, in place.
    fn replace(
        &mut self,
        fd: Source<'_>,
        _old: u64,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let i = *self.index.get(&raw).ok_or_else(not_found)?;
        let id = Identity::of(fd)?;
        let oneshot = check(trigger)?;
        let entry = &mut self.entries[i];
        if !entry.closed && !entry.id.differs(&id) {
            return Err(crate::sys::already_registered());
        }
        *entry = Entry {
            fd: raw,
            slot,
            oneshot,
            closed: false,
            id,
        };
        self.fds[i + 1] = libc::pollfd {
            fd: raw,
            events: events(interest),
            revents: 0,
        };
        Ok(())
    }

    fn reregister(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let i = *self.index.get(&raw).ok_or_else(not_found)?;
        let entry = &mut self.entries[i];
        // A closed entry, or one whose number another file has taken since
        // (its source closed without `deregister`): as epoll answers for
        // that fd (`ENOENT`), only `replace` or `deregister` can do anything
        // with this entry now — `fd` was never registered itself.
        if entry.closed || entry.id.differs(&Identity::of(fd)?) {
            return Err(closed());
        }
        entry.slot = slot;
        entry.oneshot = check(trigger)?;
        // Re-arms a disarmed oneshot entry too.
        self.fds[i + 1] = libc::pollfd {
            fd: raw,
            events: events(interest),
            revents: 0,
        };
        Ok(())
    }

    fn deregister(&mut self, fd: Source<'_>) -> io::Result<()> {
        let i = self.index.remove(&fd.as_raw_fd()).ok_or_else(not_found)?;
        self.entries.swap_remove(i);
        self.fds.swap_remove(i + 1);
        if let Some(moved) = self.entries.get(i) {
            self.index.insert(moved.fd, i);
        }
        Ok(())
    }

    fn select(
        &mut self,
        out: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        let nfds = libc::nfds_t::try_from(self.fds.len())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `fds` is a live, exclusively borrowed array of `nfds`
        // initialised `pollfd`s; poll(2) writes only their `revents`.
        let n = unsafe { libc::poll(self.fds.as_mut_ptr(), nfds, timeout_ms(timeout)) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut left = n as usize;
        let woken = self.fds[0].revents != 0;
        if woken {
            left -= 1;
        }
        let len = self.entries.len();
        let start = if len == 0 { 0 } else { self.cursor % len };
        let mut k = 0;
        while left > 0 && k < len {
            let i = (start + k) % len;
            k += 1;
            let pfd = &mut self.fds[i + 1];
            if pfd.revents == 0 {
                continue;
            }
            left -= 1;
            if pfd.revents & libc::POLLNVAL != 0 {
                // Closed without deregistering. Reporting it would be a
                // busy loop (it is "ready" on every call); disarm it. Should
                // the number be reused before a poll sees the close, the
                // new file is watched instead — see `Runtime::register`.
                pfd.fd = -1;
                self.entries[i].closed = true;
                continue;
            }
            if out.len() >= max {
                // Report it first next time.
                self.cursor = i;
                return Ok(woken);
            }
            out.push((self.entries[i].slot, readiness(pfd.revents)));
            if self.entries[i].oneshot {
                pfd.fd = -1;
            }
        }
        self.cursor = start + k;
        Ok(woken)
    }
}

fn check(trigger: Trigger) -> io::Result<bool> {
    match trigger {
        Trigger::Level => Ok(false),
        Trigger::Oneshot => Ok(true),
        Trigger::Edge => Err(crate::sys::unsupported(
            "the poll backend cannot do edge-triggered readiness",
        )),
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "the fd was closed while registered with the poll selector",
    )
}

fn not_found() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "source is not registered with the poll selector",
    )
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const RDHUP: libc::c_short = libc::POLLRDHUP;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const RDHUP: libc::c_short = 0;

fn events(interest: Interest) -> libc::c_short {
    let mut e = 0;
    if interest.is_readable() {
        e |= libc::POLLIN | RDHUP;
    }
    if interest.is_writable() {
        e |= libc::POLLOUT;
    }
    if interest.is_priority() {
        e |= libc::POLLPRI;
    }
    e
}

fn readiness(revents: libc::c_short) -> Readiness {
    let mut r = Readiness::EMPTY;
    if revents & libc::POLLIN != 0 {
        r |= Readiness::READABLE;
    }
    if revents & libc::POLLOUT != 0 {
        r |= Readiness::WRITABLE;
    }
    if revents & libc::POLLPRI != 0 {
        r |= Readiness::PRIORITY;
    }
    if revents & (RDHUP | libc::POLLHUP) != 0 {
        r |= Readiness::READ_CLOSED;
    }
    if revents & libc::POLLHUP != 0 {
        r |= Readiness::WRITE_CLOSED;
    }
    if revents & libc::POLLERR != 0 {
        r |= Readiness::ERROR | Readiness::WRITE_CLOSED;
    }
    r
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn identity_tells_files_apart() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (ia, ib) = (
            Identity::of(a.as_fd()).unwrap(),
            Identity::of(b.as_fd()).unwrap(),
        );
        assert!(!ia.differs(&Identity::of(a.as_fd()).unwrap()));
        assert!(ia.differs(&ib));
    }

    /// The BSD and macOS case, where a socket's `fstat` has no inode: the
    /// addresses decide, where both sides have them.
    #[test]
    fn identity_by_address_where_there_is_no_inode() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let name = |s: &UdpSocket| rustix::net::getsockname(s).ok();
        let id = |local, peer| Identity {
            dev: 0,
            ino: 0,
            addrs: Some(Box::new((local, peer))),
        };
        assert!(id(name(&a), None).differs(&id(name(&b), None)));
        assert!(!id(name(&a), None).differs(&id(name(&a), None)));
        // A peer gained since registering: the same socket.
        assert!(!id(name(&a), None).differs(&id(name(&a), name(&b))));
        assert!(id(name(&a), name(&a)).differs(&id(name(&a), name(&b))));
    }
}
