//! The epoll backend (Linux default): level, edge (`EPOLLET`) and oneshot
//! (`EPOLLONESHOT`), all native. Each registration's epoll data is the
//! runtime's slot number; the doorbell uses `u64::MAX`, which no slot takes.
//!
//! The doorbell (an eventfd) is registered edge-triggered, as mio registers
//! its waker: every write to an eventfd queues a new edge on the epoll ready
//! list — also when nobody is waiting yet — so a ring is never lost, and the
//! loop never has to read the counter back. That saves one `read(2)` per
//! wake-up. The counter is never drained; it would take 2^64 rings (one per
//! sleep of the loop, at most) to fill it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::epoll::{self, EventData, EventFlags};

use super::{timeout_ms, EventBuf, Source, Waker};
use crate::sys::{NativeIo, Open, Poller};
use crate::{Interest, Readiness, Trigger};

const WAKER: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) struct Selector {
    ep: OwnedFd,
    buf: EventBuf<libc::epoll_event>,
}

impl Selector {
    pub(crate) fn new(waker: &Waker) -> io::Result<Selector> {
        let ep = super::above_stdio(epoll::create(epoll::CreateFlags::CLOEXEC)?)?;
        epoll::add(
            &ep,
            waker.fd(),
            EventData::new_u64(WAKER),
            EventFlags::IN | EventFlags::ET,
        )?;
        Ok(Selector {
            ep,
            buf: EventBuf::new(),
        })
    }

    fn add(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        Ok(epoll::add(
            &self.ep,
            fd,
            EventData::new_u64(slot),
            flags(interest, trigger),
        )?)
    }
}

impl Open for Selector {
    fn open() -> io::Result<(Selector, Waker)> {
        let waker = Waker::new()?;
        Ok((Selector::new(&waker)?, waker))
    }
}

impl NativeIo for Selector {}

impl Poller for Selector {
    /// The epoll fd: readable while an event is ready.
    fn os_handle(&self) -> Option<RawFd> {
        Some(self.ep.as_raw_fd())
    }

    /// The runtime has no entry under `fd`'s number. The kernel may still
    /// have one for this very file and number: a registration whose fd was
    /// closed while a duplicate kept the file open, and then forgotten by
    /// the runtime (deregistered through another file that took the
    /// number, or replaced) — epoll keeps it, and no call can remove it
    /// until the file is back under that number. It is now: `EEXIST` here
    /// can only be that orphan, so the registration takes it over.
    fn register(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        match self.add(fd, slot, interest, trigger) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::EXIST.raw_os_error()) => {
                self.reregister(fd, slot, interest, trigger)
            }
            r => r,
        }
    }

    /// The runtime still has `fd`'s number: epoll keys its entries by file
    /// and number, and drops a file's entry when its last fd is closed. So
    /// if adding succeeds, the old entry was a closed fd's and `fd` is
    /// registered now. `EEXIST` means the kernel has this very file under
    /// the number: most likely the runtime's entry (the source is
    /// registered already), possibly an orphan as [`register`] describes
    /// while the runtime's entry is a closed file's. Nothing tells the two
    /// apart, so both are `AlreadyExists`; `deregister` clears either.
    ///
    /// [`register`]: Poller::register
    fn replace(
        &mut self,
        fd: Source<'_>,
        _old: u64,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        match self.add(fd, slot, interest, trigger) {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::EXIST.raw_os_error()) => {
                Err(crate::sys::already_registered())
            }
            r => r,
        }
    }

    fn reregister(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        Ok(epoll::modify(
            &self.ep,
            fd,
            EventData::new_u64(slot),
            flags(interest, trigger),
        )?)
    }

    fn deregister(&mut self, fd: Source<'_>) -> io::Result<()> {
        match epoll::delete(&self.ep, fd) {
            // The fd was closed and reopened (or dup'd and closed) behind our
            // back, so the kernel already forgot it; the runtime's registry
            // entry is what matters.
            Err(rustix::io::Errno::NOENT) => Ok(()),
            r => Ok(r?),
        }
    }

    #[inline]
    fn select(
        &mut self,
        out: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        self.select_each(&mut Vec::new(), max, timeout, |slot, ready| {
            out.push((slot, ready))
        })
    }

    /// [`select`](Poller::select), handing each report to `f` straight
    /// from the kernel's records (no copy in between; `scratch` unused).
    #[inline(always)]
    fn select_each(
        &mut self,
        _scratch: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
        mut f: impl FnMut(u64, Readiness),
    ) -> io::Result<bool> {
        let space = self.buf.space(max);
        // Called through libc rather than rustix: glibc's wrapper is a few
        // instructions, while rustix's takes a `Timespec` and converts it
        // back to milliseconds with checked arithmetic — several times the
        // cost of the rest of a zero-timeout look. Whole milliseconds,
        // rounded up, are what `epoll_wait` takes.
        let len = i32::try_from(space.len()).unwrap_or(i32::MAX);
        // SAFETY: `space` is writable memory for `len` records of
        // `epoll_event` (at most `space.len()`), borrowed for the call;
        // the kernel writes at most `len` and returns how many.
        let n = unsafe {
            libc::epoll_wait(
                self.ep.as_raw_fd(),
                space.as_mut_ptr().cast::<libc::epoll_event>(),
                len,
                timeout_ms(timeout),
            )
        };
        let Ok(n) = usize::try_from(n) else {
            return Err(io::Error::last_os_error());
        };
        if n == 0 {
            // The usual answer of a zero-timeout look: nothing, and no loop.
            return Ok(false);
        }
        for ev in &space[..n.min(space.len())] {
            // SAFETY: the kernel wrote the first `n` records.
            let ev = unsafe { ev.assume_init_ref() };
            let (data, flags) = (ev.u64, ev.events);
            // The doorbell's edge has done its job (ending the wait); being
            // edge-triggered it needs no drain, so it is not reported.
            if data != WAKER {
                f(data, readiness(EventFlags::from_bits_retain(flags)));
            }
        }
        Ok(false)
    }
}

fn flags(interest: Interest, trigger: Trigger) -> EventFlags {
    let mut f = EventFlags::empty();
    if interest.is_readable() {
        f |= EventFlags::IN | EventFlags::RDHUP;
    }
    if interest.is_writable() {
        f |= EventFlags::OUT;
    }
    if interest.is_priority() {
        f |= EventFlags::PRI;
    }
    match trigger {
        Trigger::Level => {}
        Trigger::Edge => f |= EventFlags::ET,
        Trigger::Oneshot => f |= EventFlags::ONESHOT,
    }
    f
}

/// epoll's flags as [`Readiness`], without a branch per flag (it runs once
/// per event): each of `Readiness`'s bits is one or two of epoll's shifted
/// into place. `IN` → readable, `OUT` → writable, `PRI` → priority,
/// `RDHUP` or `HUP` → read-closed, `HUP` or `ERR` → write-closed, `ERR` →
/// error. The test below checks it against the plain reading.
#[inline]
fn readiness(f: EventFlags) -> Readiness {
    const _: () = assert!(
        EventFlags::IN.bits() == libc::POLLIN as u32
            && EventFlags::PRI.bits() == libc::POLLPRI as u32
            && EventFlags::OUT.bits() == libc::POLLOUT as u32
            && EventFlags::ERR.bits() == libc::POLLERR as u32
            && EventFlags::HUP.bits() == libc::POLLHUP as u32
            && EventFlags::RDHUP.bits() == libc::POLLRDHUP as u32
    );
    super::readiness_bits(f.bits())
}

impl AsFd for Selector {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ep.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flag-by-flag reading that `readiness` computes without branches.
    fn plain(f: EventFlags) -> Readiness {
        let mut r = Readiness::EMPTY;
        if f.contains(EventFlags::IN) {
            r |= Readiness::READABLE;
        }
        if f.contains(EventFlags::OUT) {
            r |= Readiness::WRITABLE;
        }
        if f.contains(EventFlags::PRI) {
            r |= Readiness::PRIORITY;
        }
        if f.intersects(EventFlags::RDHUP | EventFlags::HUP) {
            r |= Readiness::READ_CLOSED;
        }
        if f.contains(EventFlags::HUP) {
            r |= Readiness::WRITE_CLOSED;
        }
        if f.contains(EventFlags::ERR) {
            r |= Readiness::ERROR | Readiness::WRITE_CLOSED;
        }
        r
    }

    #[test]
    fn readiness_matches_the_plain_reading_for_every_flag_combination() {
        let flags = [
            EventFlags::IN,
            EventFlags::PRI,
            EventFlags::OUT,
            EventFlags::ERR,
            EventFlags::HUP,
            EventFlags::RDHUP,
            EventFlags::ET,
            EventFlags::ONESHOT,
        ];
        for combo in 0u32..1 << flags.len() {
            let f = flags
                .iter()
                .enumerate()
                .filter(|(i, _)| combo & (1 << i) != 0)
                .fold(EventFlags::empty(), |acc, (_, &f)| acc | f);
            assert_eq!(readiness(f), plain(f), "{f:?}");
        }
    }
}
