//! The kqueue backend (macOS, iOS, FreeBSD, OpenBSD, NetBSD, DragonFly).
//!
//! `EVFILT_READ` / `EVFILT_WRITE` per interest; edge is `EV_CLEAR`, oneshot is
//! `EV_DISPATCH` (the filter stays registered but disabled after one report,
//! and `reregister` re-enables it). Changes are applied with `EV_RECEIPT`, so
//! one `kevent` call applies a batch and reports each change's own result.
//! The doorbell is an `EVFILT_USER` event on the kqueue itself where the OS
//! has it, and the eventfd/pipe waker elsewhere (OpenBSD, NetBSD).
//!
//! Readiness for one fd arrives as one event per filter: a source that is
//! both readable and writable gives two `Event::Io`s with the same token.
//! Priority interest has no kqueue filter and is ignored here.
//!
//! Written against `libc` rather than rustix's wrapper: rustix has no
//! `EV_DISPATCH`, and its `Event` takes the slot as a pointer.
//!
//! This backend cannot run on the Linux CI machines; CI type-checks and lints
//! it for `x86_64-apple-darwin` and `x86_64-unknown-freebsd`.

// `kevent`'s field types differ per OS (`flags` is u16 on macOS and FreeBSD,
// u32 on NetBSD; `filter` i16 or u32...), so casts that are needed on one are
// no-ops on another.
#![allow(clippy::unnecessary_cast)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::{EventBuf, Source, Waker};
use crate::sync::Arc;
use crate::sys::{NativeIo, Open, Poller};
use crate::{Interest, Readiness, Trigger};

/// The slot number the doorbell uses; no registration takes it.
const WAKER: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) struct Selector {
    kq: Arc<OwnedFd>,
    buf: EventBuf<libc::kevent>,
}

fn kevent(ident: usize, filter: i32, flags: u32, fflags: u32, slot: u64) -> libc::kevent {
    // SAFETY: `kevent` is a plain C struct for which all-zero is a valid
    // value (the per-OS extension fields must be zero).
    let mut ev: libc::kevent = unsafe { std::mem::zeroed() };
    ev.ident = ident as _;
    ev.filter = filter as _;
    ev.flags = flags as _;
    ev.fflags = fflags as _;
    ev.udata = slot as _;
    ev
}

impl Open for Selector {
    fn open() -> io::Result<(Selector, Waker)> {
        // SAFETY: kqueue() takes no arguments; a non-negative result is a new
        // fd that we own from here on.
        let kq = unsafe {
            let fd = libc::kqueue();
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        let kq = super::above_stdio(kq)?;
        rustix::io::fcntl_setfd(&kq, rustix::io::FdFlags::CLOEXEC)?;
        let kq = Arc::new(kq);
        let mut selector = Selector {
            kq: kq.clone(),
            buf: EventBuf::new(),
        };
        let waker = doorbell(&mut selector, kq)?;
        Ok((selector, waker))
    }
}

impl NativeIo for Selector {}

impl Poller for Selector {
    /// The kqueue fd: readable while an event is ready.
    fn os_handle(&self) -> Option<std::os::fd::RawFd> {
        Some(self.kq.as_raw_fd())
    }

    fn register(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        self.reregister(fd, slot, interest, trigger)
    }

    fn reregister(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let fd = fd.as_raw_fd() as usize;
        let mode = match trigger {
            Trigger::Level => 0,
            Trigger::Edge => libc::EV_CLEAR,
            Trigger::Oneshot => libc::EV_DISPATCH,
        };
        let on = (libc::EV_ADD | libc::EV_ENABLE | libc::EV_RECEIPT | mode) as u32;
        let off = (libc::EV_DELETE | libc::EV_RECEIPT) as u32;
        let mut changes = [
            kevent(
                fd,
                libc::EVFILT_READ as i32,
                if interest.is_readable() { on } else { off },
                0,
                slot,
            ),
            kevent(
                fd,
                libc::EVFILT_WRITE as i32,
                if interest.is_writable() { on } else { off },
                0,
                slot,
            ),
        ];
        self.apply(&mut changes)
    }

    fn deregister(&mut self, fd: Source<'_>) -> io::Result<()> {
        let fd = fd.as_raw_fd() as usize;
        let off = (libc::EV_DELETE | libc::EV_RECEIPT) as u32;
        let mut changes = [
            kevent(fd, libc::EVFILT_READ as i32, off, 0, 0),
            kevent(fd, libc::EVFILT_WRITE as i32, off, 0, 0),
        ];
        self.apply(&mut changes)
    }

    /// The runtime still has `fd`'s number. Closing an fd drops its filters
    /// (knotes) from every kqueue, so if the kernel has no filter for the
    /// number, the registration was a closed fd's and the number names
    /// another file now: register it. A filter still there means this very
    /// fd is registered. (A registration with only priority interest has no
    /// filter, and so is always taken for stale.)
    fn replace(
        &mut self,
        fd: Source<'_>,
        old: u64,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        if self.has_filter(fd, old)? {
            return Err(crate::sys::already_registered());
        }
        self.register(fd, slot, interest, trigger)
    }

    fn select(
        &mut self,
        out: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        // kevent takes nanoseconds: no rounding needed, and no busy poll for
        // a sub-millisecond timeout.
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i32::MAX as u64) as _,
            tv_nsec: t.subsec_nanos() as _,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        let space = self.buf.space(max);
        // SAFETY: the event list is `space`, writable entries we own; the
        // change list is empty; `ts_ptr` is null or points at `ts`, alive
        // for the call.
        let n = unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                std::ptr::null(),
                0,
                space.as_mut_ptr().cast::<libc::kevent>(),
                space.len() as _,
                ts_ptr,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut woken = false;
        for slot in &space[..n as usize] {
            // SAFETY: kevent initialised the first `n` entries.
            let ev = unsafe { slot.assume_init_ref() };
            let data = ev.udata as u64;
            if data == WAKER {
                woken = true;
                continue;
            }
            out.push((data, readiness(ev)));
        }
        Ok(woken)
    }
}

impl Selector {
    /// Whether the kernel has a read or write filter for `fd` on this
    /// kqueue. The probe is a change with no action flag (no `EV_ADD`,
    /// `EV_DELETE`, `EV_ENABLE`, `EV_DISABLE`): the kernel looks the filter
    /// up and answers `ENOENT` if there is none. For one that exists it sets
    /// what the registration set already (udata `old`, no fflags, no data)
    /// and leaves it enabled or disabled as it was; FreeBSD and macOS
    /// re-evaluate it, so an edge registration may report once more.
    fn has_filter(&mut self, fd: Source<'_>, old: u64) -> io::Result<bool> {
        let fd = fd.as_raw_fd() as usize;
        let probe = libc::EV_RECEIPT as u32;
        let mut changes = [
            kevent(fd, libc::EVFILT_READ as i32, probe, 0, old),
            kevent(fd, libc::EVFILT_WRITE as i32, probe, 0, old),
        ];
        let n = self.submit(&mut changes)?;
        let mut found = false;
        for ev in &changes[..n] {
            // With EV_RECEIPT every receipt has EV_ERROR set; `data` is 0
            // for success, else the errno.
            let errno = if ev.flags as u32 & libc::EV_ERROR as u32 != 0 {
                ev.data as i32
            } else {
                0
            };
            match errno {
                0 => found = true,
                libc::ENOENT => {}
                errno => return Err(io::Error::from_raw_os_error(errno)),
            }
        }
        Ok(found)
    }

    /// Applies `changes` (all with `EV_RECEIPT`) in one call and returns the
    /// first real error among their receipts.
    fn apply(&mut self, changes: &mut [libc::kevent]) -> io::Result<()> {
        let n = self.submit(changes)?;
        for ev in &changes[..n] {
            if ev.flags as u32 & libc::EV_ERROR as u32 != 0 && ev.data != 0 {
                let errno = ev.data as i32;
                // ENOENT: deleting a filter that was never added (the other
                // half of the interest). EPIPE: macOS refuses EVFILT_WRITE on a
                // pipe whose reader is gone, yet the registration is made
                // (mio and polling ignore it the same way).
                if errno != libc::ENOENT && errno != libc::EPIPE {
                    return Err(io::Error::from_raw_os_error(errno));
                }
            }
        }
        Ok(())
    }

    /// Submits `changes` (all with `EV_RECEIPT`) in one call; their
    /// receipts overwrite them. Returns how many receipts came back.
    fn submit(&mut self, changes: &mut [libc::kevent]) -> io::Result<usize> {
        let n = changes.len();
        // One pointer for both lists: an `as_ptr()` taken before
        // `as_mut_ptr()` would be invalidated by it.
        let list = changes.as_mut_ptr();
        // SAFETY: `changes` is read as the change list and overwritten as the
        // event list (both `n` entries, exclusively borrowed); with
        // EV_RECEIPT every change yields exactly one receipt and nothing else
        // is returned; a null timeout is allowed because receipts never block.
        let r = unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                list.cast_const(),
                n as _,
                list,
                n as _,
                std::ptr::null(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }
}

/// The doorbell is an `EVFILT_USER` event on the kqueue (cleared on
/// delivery, so it needs no draining).
#[cfg(uniloop_evfilt_user)]
fn doorbell(selector: &mut Selector, kq: Arc<OwnedFd>) -> io::Result<Waker> {
    let flags = (libc::EV_ADD | libc::EV_CLEAR | libc::EV_RECEIPT) as u32;
    selector.apply(&mut [kevent(0, libc::EVFILT_USER as i32, flags, 0, WAKER)])?;
    Ok(Waker::kqueue(kq, trigger_user))
}

/// Rings the `EVFILT_USER` doorbell on `kq` (the waker's `Ring`).
#[cfg(uniloop_evfilt_user)]
fn trigger_user(kq: &OwnedFd) -> io::Result<()> {
    let ev = kevent(
        0,
        libc::EVFILT_USER as i32,
        libc::EV_RECEIPT as u32,
        libc::NOTE_TRIGGER,
        WAKER,
    );
    let mut receipt = ev;
    // SAFETY: one change in, one receipt out, both locals; null timeout.
    let r = unsafe { libc::kevent(kq.as_raw_fd(), &ev, 1, &mut receipt, 1, std::ptr::null()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if receipt.flags as u32 & libc::EV_ERROR as u32 != 0 && receipt.data != 0 {
        return Err(io::Error::from_raw_os_error(receipt.data as i32));
    }
    Ok(())
}
/// No `EVFILT_USER`: watch the eventfd/pipe doorbell for reading; the
/// runtime drains it when it fires.
#[cfg(not(uniloop_evfilt_user))]
fn doorbell(selector: &mut Selector, _kq: Arc<OwnedFd>) -> io::Result<Waker> {
    let waker = Waker::new()?;
    let fd = waker.fd().as_raw_fd() as usize;
    let flags = (libc::EV_ADD | libc::EV_RECEIPT) as u32;
    selector.apply(&mut [kevent(fd, libc::EVFILT_READ as i32, flags, 0, WAKER)])?;
    Ok(waker)
}

fn readiness(ev: &libc::kevent) -> Readiness {
    let mut r = Readiness::EMPTY;
    let flags = ev.flags as u32;
    let eof = flags & libc::EV_EOF as u32 != 0;
    if flags & libc::EV_ERROR as u32 != 0 {
        r |= Readiness::ERROR;
    }
    if ev.filter as i32 == libc::EVFILT_READ as i32 {
        r |= Readiness::READABLE;
        if eof {
            r |= Readiness::READ_CLOSED;
        }
    } else if ev.filter as i32 == libc::EVFILT_WRITE as i32 {
        r |= Readiness::WRITABLE;
        if eof {
            r |= Readiness::WRITE_CLOSED;
        }
    }
    // With EV_EOF, `fflags` holds the socket's pending error, if any
    // (a reset, a failed connect).
    if eof && ev.fflags != 0 {
        r |= Readiness::ERROR;
    }
    r
}
