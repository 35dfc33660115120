//! The epoll backend (Linux default): level, edge (`EPOLLET`) and oneshot
//! (`EPOLLONESHOT`), all native. Each registration's epoll data is the
//! runtime's slot number; the doorbell uses `u64::MAX`, which no slot takes.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::event::Timespec;

use super::{timeout_ms, EventBuf, Source, Waker};
use crate::{Interest, Readiness, Trigger};

const WAKER: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) struct Selector {
    ep: OwnedFd,
    buf: EventBuf<epoll::Event>,
}

impl Selector {
    pub(crate) fn new(waker: &Waker) -> io::Result<Selector> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(&ep, waker.fd(), EventData::new_u64(WAKER), EventFlags::IN)?;
        Ok(Selector {
            ep,
            buf: EventBuf::new(),
        })
    }

    pub(crate) fn register(
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

    pub(crate) fn reregister(
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

    pub(crate) fn deregister(&mut self, fd: Source<'_>) -> io::Result<()> {
        match epoll::delete(&self.ep, fd) {
            // The fd was closed and reopened (or dup'd and closed) behind our
            // back, so the kernel already forgot it; the runtime's registry
            // entry is what matters.
            Err(rustix::io::Errno::NOENT) => Ok(()),
            r => Ok(r?),
        }
    }

    pub(crate) fn select(
        &mut self,
        out: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        // Whole milliseconds, rounded up, so rustix takes the plain
        // `epoll_pwait` path (no `epoll_pwait2` needed on old kernels).
        let ts = timeout.map(|_| {
            let ms = timeout_ms(timeout);
            Timespec {
                tv_sec: i64::from(ms / 1000),
                tv_nsec: i64::from(ms % 1000) * 1_000_000,
            }
        });
        let (ready, _) = epoll::wait(&self.ep, self.buf.space(max), ts.as_ref())?;
        let mut woken = false;
        for ev in ready.iter() {
            let data = ev.data.u64();
            if data == WAKER {
                woken = true;
            } else {
                out.push((data, readiness(ev.flags)));
            }
        }
        Ok(woken)
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

fn readiness(f: EventFlags) -> Readiness {
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

impl AsFd for Selector {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ep.as_fd()
    }
}
