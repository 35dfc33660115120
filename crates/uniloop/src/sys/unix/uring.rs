//! The io_uring backend (Linux, opt-in: [`Backend::Uring`](crate::Backend::Uring)).
//!
//! # What runs through the ring
//!
//! * **Readiness** is `IORING_OP_POLL_ADD`, one request per registration:
//!   * *oneshot*: a oneshot poll; its one completion disarms the
//!     registration until `reregister`, as `EPOLLONESHOT` does.
//!   * *level*: a oneshot poll re-armed by the next `select` after each
//!     report. A poll checks the file's state when it is armed, so a source
//!     still ready is reported again by every `select`, and one drained in
//!     between is not — the level contract, with the re-arm riding in the
//!     same `io_uring_enter` that waits (no extra syscall).
//!   * *edge*: a multishot poll (`IORING_POLL_ADD_MULTI`, no
//!     `IORING_POLL_ADD_LEVEL`): one completion per wake-up of the file's
//!     wait queue, as `EPOLLET` gives one event per wake-up. When the
//!     kernel ends a multishot (a completion without `IORING_CQE_F_MORE`) it
//!     is armed again; a poll reports the current state on arming, so no
//!     edge is lost (at worst one is repeated).
//!   * *reregister* removes the old poll (`IORING_OP_POLL_REMOVE`) and arms a
//!     new one; every poll has its own 64-bit id in `user_data`, never
//!     reused, so the removed poll's last completion is recognised as stale
//!     and dropped.
//! * **The doorbell** is the eventfd of [`Waker`], polled by a multishot
//!   `POLL_ADD` armed before the first wait. As with epoll's edge-triggered
//!   registration, every write to the eventfd wakes its wait queue and so
//!   posts a completion, also when the loop is not waiting yet: a ring that
//!   lands between the completion protocol's "sleeping" flag and
//!   `io_uring_enter` is a completion already in the ring, and the enter
//!   returns at once. The counter is never drained (the waker empties it on
//!   the one write in 2^64 that would overflow it); if the kernel ends the
//!   multishot, the poll is armed again before the next wait, and finds the
//!   counter non-zero — one spurious wake, never a lost one.
//! * **Timeouts** are the wait's own (`IORING_ENTER_EXT_ARG` with a
//!   timespec, rounded up to whole milliseconds like epoll's), so a timed
//!   wait is one `io_uring_enter`; `ETIME` is the timeout, `EINTR` is
//!   returned as `Interrupted` for the runtime to resume.
//! * **Completion-mode I/O** (`post_read` / `post_write`) currently runs
//!   through the readiness emulation in [`ops`](crate::ops), as on epoll:
//!   the reads and writes are `read(2)`/`send(2)` calls driven by the polls
//!   above. Native `IORING_OP_RECV`/`SEND` submissions are not done yet.
//!
//! # Capacity and overflow
//!
//! Completions the caller's `max` has no room for stay in the completion
//! queue for the next `select`. The ring is created only if the kernel has
//! `IORING_FEAT_NODROP`: a full completion queue then keeps further
//! completions in the kernel's overflow list instead of dropping them, and
//! `io_uring_enter` answers `EBUSY` while it cannot flush them. On `EBUSY`
//! the selector moves the completion queue's entries into its own backlog
//! (handled before the ring's on the next `select`) and submits again. A
//! full submission queue is submitted on the spot and the push retried.
//!
//! # Limits
//!
//! A poll request holds a reference to its file. A source closed without
//! `deregister` therefore stays open in the kernel (its peer sees no close)
//! while a poll is armed on it: until it is deregistered, its number is
//! registered again (the stale entry is replaced, see `replace`), or the
//! runtime is dropped. A level or oneshot entry whose fd is closed is found
//! out when its poll is next armed (`EBADF`) and reports nothing from then
//! on.
//!
//! # Why the `io-uring` crate
//!
//! It is the io_uring binding the Rust ecosystem has settled on (tokio-uring,
//! glommio's and monoio's rings use it or its layout), maintained by the
//! tokio project, with no runtime of its own: a typed builder for each SQE,
//! the ring mappings and the `io_uring_enter` flags, and nothing else. The
//! alternative, rustix's raw `io_uring_*` calls, would leave the mmap layout
//! and the ring's memory ordering to this file; liburing would add a C
//! build dependency.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::poll::Identity;
use super::{timeout_ms, Source, Waker};
use crate::{Interest, Readiness, Trigger};

/// `user_data` of the doorbell's poll.
const WAKER: u64 = u64::MAX;
/// `user_data` of requests whose completion carries nothing for us
/// (`POLL_REMOVE`): their results are ignored.
const IGNORED: u64 = u64::MAX - 1;
/// Poll ids count up from 1 and stay far below the reserved values.
const FIRST_POLL: u64 = 1;

/// Submission and completion queue sizes. A registration has at most one
/// poll armed, and a level or oneshot one at most one completion in flight;
/// edge registrations and bursts beyond the completion queue go to the
/// kernel's overflow list (`IORING_FEAT_NODROP`), nothing is lost.
const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 4096;

/// What this backend needs of the kernel, checked by [`probe`] (and so by
/// `Backend::Uring.is_available()` and by building a runtime on it).
const NEEDED_OPS: [(u8, &str); 2] = [
    (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD"),
    (opcode::PollRemove::CODE, "IORING_OP_POLL_REMOVE"),
];

#[derive(Debug)]
struct Entry {
    slot: u64,
    interest: Interest,
    trigger: Trigger,
    /// The id of the poll armed for this entry, if one is.
    poll: Option<u64>,
    /// A level entry reported since its poll completed, or an edge entry
    /// whose multishot the kernel ended: armed again by the next `select`.
    rearm: bool,
    /// The fd turned out closed (a poll on it failed with `EBADF`): nothing
    /// is armed or reported any more.
    closed: bool,
    /// The file registered, to tell it from a later one with its number.
    id: Identity,
}

/// One completion, copied out of the ring (the backlog keeps these).
#[derive(Debug, Clone, Copy)]
struct Cqe {
    user_data: u64,
    result: i32,
    flags: u32,
}

impl From<cqueue::Entry> for Cqe {
    fn from(e: cqueue::Entry) -> Cqe {
        Cqe {
            user_data: e.user_data(),
            result: e.result(),
            flags: e.flags(),
        }
    }
}

pub(crate) struct Selector {
    ring: IoUring,
    entries: HashMap<RawFd, Entry>,
    /// Live poll ids and the fd each was armed for.
    polls: HashMap<u64, RawFd>,
    next_poll: u64,
    /// Entries to arm again before the next wait.
    rearm: Vec<RawFd>,
    /// Completions moved out of the ring on `EBUSY`, handled first.
    backlog: VecDeque<Cqe>,
    waker: RawFd,
    waker_armed: bool,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selector")
            .field("ring", &self.ring.as_raw_fd())
            .field("entries", &self.entries.len())
            .field("polls", &self.polls.len())
            .field("backlog", &self.backlog.len())
            .finish_non_exhaustive()
    }
}

/// Whether this kernel lets this process make a ring with what the backend
/// needs; the error says why not. Makes a one-entry ring and closes it:
/// nothing outlives the call.
pub(crate) fn probe() -> io::Result<()> {
    new_ring(1, 2).map(drop)
}

fn new_ring(sq: u32, cq: u32) -> io::Result<IoUring> {
    let ring = IoUring::builder()
        .setup_cqsize(cq)
        .setup_clamp()
        .build(sq)
        .map_err(setup_error)?;
    let params = ring.params();
    let missing = if !params.is_feature_nodrop() {
        Some("IORING_FEAT_NODROP (Linux 5.5)")
    } else if !params.is_feature_ext_arg() {
        Some("IORING_FEAT_EXT_ARG (Linux 5.11)")
    } else {
        None
    };
    if let Some(feature) = missing {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the Uring backend needs {feature}, which this kernel's io_uring lacks"),
        ));
    }
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the Uring backend could not probe io_uring's opcodes (Linux 5.6+): {e}"),
        )
    })?;
    for (code, name) in NEEDED_OPS {
        if !probe.is_supported(code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the Uring backend needs {name}, which this kernel's io_uring lacks"),
            ));
        }
    }
    Ok(ring)
}

/// `io_uring_setup` failed: say why, with the kind a caller can act on.
fn setup_error(e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring_setup is not implemented by this kernel (ENOSYS): \
             the Uring backend needs Linux 5.11 or later built with io_uring",
        ),
        Some(libc::EPERM) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            "io_uring_setup was refused (EPERM): io_uring is disabled by the \
             kernel.io_uring_disabled sysctl, or this process is not allowed it \
             (a seccomp filter, as container runtimes install by default)",
        ),
        Some(libc::EACCES) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            "io_uring_setup was refused (EACCES): kernel.io_uring_disabled = 1 \
             limits io_uring to the kernel.io_uring_group group",
        ),
        Some(libc::EINVAL) => io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring_setup rejected the ring's parameters (EINVAL): the Uring \
             backend needs Linux 5.11 or later",
        ),
        _ => e,
    }
}

impl Selector {
    pub(crate) fn new(waker: &Waker) -> io::Result<Selector> {
        Selector::with_sizes(waker, SQ_ENTRIES, CQ_ENTRIES)
    }

    /// With explicit queue sizes, so the tests can fill them.
    pub(crate) fn with_sizes(waker: &Waker, sq: u32, cq: u32) -> io::Result<Selector> {
        let mut selector = Selector {
            ring: new_ring(sq, cq)?,
            entries: HashMap::new(),
            polls: HashMap::new(),
            next_poll: FIRST_POLL,
            rearm: Vec::new(),
            backlog: VecDeque::new(),
            waker: waker.fd().as_raw_fd(),
            waker_armed: false,
        };
        selector.arm_waker()?;
        // Armed before `new` returns, so no ring can come before the poll.
        selector.submit()?;
        Ok(selector)
    }

    fn arm_waker(&mut self) -> io::Result<()> {
        let sqe = opcode::PollAdd::new(types::Fd(self.waker), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(WAKER);
        self.push(&sqe)?;
        self.waker_armed = true;
        Ok(())
    }

    /// Puts one SQE in the submission queue, submitting what is there first
    /// if it is full.
    fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entries pushed here are polls and poll removals:
            // they point at no memory (an fd and a mask, or a `user_data`
            // value), so nothing they name can go away before the kernel
            // has read them.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.submit()?;
        }
    }

    /// Submits without waiting. `EBUSY` (completions the kernel could not
    /// flush from its overflow list) is resolved by moving the completion
    /// queue into the backlog.
    fn submit(&mut self) -> io::Result<()> {
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.drain_to_backlog(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn drain_to_backlog(&mut self) {
        self.backlog.extend(self.ring.completion().map(Cqe::from));
    }

    fn new_poll(&mut self, fd: RawFd) -> io::Result<()> {
        let entry = self.entries.get(&fd).expect("a registered fd");
        let id = self.next_poll;
        self.next_poll += 1;
        let sqe = opcode::PollAdd::new(types::Fd(fd), events(entry.interest))
            .multi(entry.trigger == Trigger::Edge)
            .build()
            .user_data(id);
        self.push(&sqe)?;
        self.polls.insert(id, fd);
        let entry = self.entries.get_mut(&fd).expect("a registered fd");
        entry.poll = Some(id);
        entry.rearm = false;
        Ok(())
    }

    /// Withdraws `fd`'s armed poll, if any; its last completion will be
    /// stale.
    fn remove_poll(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(entry) = self.entries.get_mut(&fd) else {
            return Ok(());
        };
        entry.rearm = false;
        if let Some(id) = entry.poll.take() {
            self.polls.remove(&id);
            let sqe = opcode::PollRemove::new(id).build().user_data(IGNORED);
            self.push(&sqe)?;
        }
        Ok(())
    }

    pub(crate) fn register(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        // fstat says EBADF now, as epoll_ctl would; it also keeps the
        // file's identity for `replace`.
        let id = Identity::of(fd)?;
        let raw = fd.as_raw_fd();
        self.entries.insert(
            raw,
            Entry {
                slot,
                interest,
                trigger,
                poll: None,
                rearm: false,
                closed: false,
                id,
            },
        );
        // Armed now, submitted with the next wait (or when the queue fills).
        self.new_poll(raw)
    }

    /// The runtime still has `fd`'s number: the entry is stale if a poll
    /// found its fd closed, or if `fd` is another file than the one
    /// registered. Then it becomes `fd`'s.
    pub(crate) fn replace(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let id = Identity::of(fd)?;
        let entry = self.entries.get(&raw).ok_or_else(not_found)?;
        if !entry.closed && !entry.id.differs(&id) {
            return Err(crate::sys::already_registered());
        }
        // The old poll pins the old file: let it go now.
        self.remove_poll(raw)?;
        self.submit()?;
        self.register(fd, slot, interest, trigger)
    }

    pub(crate) fn reregister(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let entry = self.entries.get_mut(&raw).ok_or_else(not_found)?;
        if entry.closed {
            return Err(closed());
        }
        entry.slot = slot;
        entry.interest = interest;
        entry.trigger = trigger;
        self.remove_poll(raw)?;
        self.new_poll(raw)
    }

    pub(crate) fn deregister(&mut self, fd: Source<'_>) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        if !self.entries.contains_key(&raw) {
            return Err(not_found());
        }
        self.remove_poll(raw)?;
        self.entries.remove(&raw);
        // Submitted at once: the poll holds a reference to the file, which
        // the caller may be about to close and expects closed.
        self.submit()
    }

    pub(crate) fn select(
        &mut self,
        out: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        for fd in std::mem::take(&mut self.rearm) {
            if self
                .entries
                .get(&fd)
                .is_some_and(|e| e.rearm && e.poll.is_none() && !e.closed)
            {
                self.new_poll(fd)?;
            }
        }
        if !self.waker_armed {
            self.arm_waker()?;
        }
        let have = !self.backlog.is_empty() || !self.ring.completion().is_empty();
        let timeout = if have { Some(Duration::ZERO) } else { timeout };
        self.enter(timeout)?;
        self.reap(out, max.max(1));
        Ok(false)
    }

    /// Submits what is queued and waits for at least one completion, at
    /// most `timeout`.
    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let r = match timeout {
            Some(Duration::ZERO) => self.ring.submit(),
            None => self.ring.submit_and_wait(1),
            Some(_) => {
                let ms = timeout_ms(timeout);
                let ts = types::Timespec::new()
                    .sec((ms / 1000) as u64)
                    .nsec((ms % 1000) as u32 * 1_000_000);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                // Completions are waiting already; make room for the
                // overflow and let `reap` hand them out.
                self.drain_to_backlog();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn reap(&mut self, out: &mut Vec<(u64, Readiness)>, max: usize) {
        while out.len() < max {
            let cqe = match self.backlog.pop_front() {
                Some(cqe) => cqe,
                None => match self.ring.completion().next() {
                    Some(e) => Cqe::from(e),
                    None => return,
                },
            };
            self.handle(cqe, out);
        }
    }

    fn handle(&mut self, cqe: Cqe, out: &mut Vec<(u64, Readiness)>) {
        let more = cqueue::more(cqe.flags);
        match cqe.user_data {
            IGNORED => return,
            WAKER => {
                if !more {
                    self.waker_armed = false;
                }
                return;
            }
            _ => {}
        }
        let id = cqe.user_data;
        let Some(&fd) = self.polls.get(&id) else {
            return; // removed (reregister, deregister): stale
        };
        if !more {
            self.polls.remove(&id);
        }
        let Some(entry) = self.entries.get_mut(&fd) else {
            return;
        };
        if entry.poll != Some(id) {
            return;
        }
        if !more {
            entry.poll = None;
        }
        if cqe.result < 0 {
            match -cqe.result {
                // Ended by the kernel (an overflow ends a multishot, say):
                // arm again, unless the registration is oneshot.
                libc::ECANCELED if entry.trigger != Trigger::Oneshot => {
                    entry.rearm = true;
                    self.rearm.push(fd);
                }
                libc::EBADF => entry.closed = true,
                _ => out.push((entry.slot, Readiness::ERROR)),
            }
            return;
        }
        out.push((entry.slot, readiness(cqe.result as u32)));
        if !more && entry.trigger != Trigger::Oneshot {
            entry.rearm = true;
            self.rearm.push(fd);
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "the fd was closed while registered with the io_uring selector",
    )
}

fn not_found() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "source is not registered with the io_uring selector",
    )
}

fn events(interest: Interest) -> u32 {
    let mut e = 0;
    if interest.is_readable() {
        e |= libc::POLLIN | libc::POLLRDHUP;
    }
    if interest.is_writable() {
        e |= libc::POLLOUT;
    }
    if interest.is_priority() {
        e |= libc::POLLPRI;
    }
    e as u32
}

/// A poll's result mask. The kernel adds `POLLERR`, `POLLHUP` and
/// `POLLRDHUP` to every poll's mask, so a source with no read interest can
/// report read-closed too (epoll reports `EPOLLRDHUP` only when asked).
fn readiness(mask: u32) -> Readiness {
    let has = |bit: libc::c_short| mask & bit as u32 != 0;
    let mut r = Readiness::EMPTY;
    if has(libc::POLLIN) {
        r |= Readiness::READABLE;
    }
    if has(libc::POLLOUT) {
        r |= Readiness::WRITABLE;
    }
    if has(libc::POLLPRI) {
        r |= Readiness::PRIORITY;
    }
    if has(libc::POLLRDHUP) || has(libc::POLLHUP) {
        r |= Readiness::READ_CLOSED;
    }
    if has(libc::POLLHUP) {
        r |= Readiness::WRITE_CLOSED;
    }
    if has(libc::POLLERR) {
        r |= Readiness::ERROR | Readiness::WRITE_CLOSED;
    }
    r
}
