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
//!     new one; a poll's `user_data` is its fd and a 32-bit generation
//!     (the next poll's number), so the removed poll's last completion,
//!     which comes back in the `io_uring_enter` that submits the removal,
//!     is recognised as stale and dropped.
//!   * *while a native receive is in the ring* the source's poll leaves
//!     readability out (`POLLIN | POLLRDHUP`; no poll at all if that was
//!     all it asked for): the receive's completion says what readability
//!     would, and the runtime would only drop the report. A poll armed
//!     when the receive is submitted is taken down and armed again without
//!     those bits; when the receive completes, the poll gets them back.
//!   * *a poll due again on a source with a send just queued* is armed only
//!     if the wait would block (see `select`): a send to a socket with room
//!     completes in the enter that submits it, and by the next `select` a
//!     posted-I/O loop has usually posted its next read. So a posted echo's
//!     round trip is one `RECV` and one `SEND`, with no poll beside them.
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
//! * **Task work** (a receive's data, a send's room) runs when the loop
//!   next enters the kernel, not by interrupting it (`IORING_SETUP_COOP_TASKRUN`),
//!   and the kernel flags pending work in the ring
//!   (`IORING_SETUP_TASKRUN_FLAG`), so a zero-timeout `select` with nothing
//!   to submit and nothing flagged makes no syscall. Kernels before 5.19
//!   refuse the flags (`EINVAL`) and get the plain ring.
//!   `DEFER_TASKRUN | SINGLE_ISSUER` is not used: it binds the ring to the
//!   thread that made it, and a `Runtime` is `Send`.
//! * **Timeouts** are the wait's own (`IORING_ENTER_EXT_ARG` with a
//!   timespec, rounded up to whole milliseconds like epoll's), so a timed
//!   wait is one `io_uring_enter`; `ETIME` is the timeout, `EINTR` is
//!   returned as `Interrupted` for the runtime to resume.
//! * **The ring's descriptor is registered** (`IORING_REGISTER_RING_FDS`,
//!   Linux 5.18) by the first wait, in the waiting thread's table, and the
//!   enters made on that thread name the ring by its index (no descriptor
//!   lookup per enter); elsewhere, or on a kernel without the call, by its
//!   descriptor (see `RingFd`).
//! * **Completion-mode I/O** (`post_read` / `post_write`) on a socket is
//!   native. A posted read is an `IORING_OP_RECV` into the buffer's spare
//!   capacity at once (no `read(2)` first: the receive tries when the next
//!   `wait` submits it; after a short read, when the socket is likely
//!   empty, with `IORING_RECVSEND_POLL_FIRST` it waits for data instead of
//!   trying). A posted write goes out with `send(2)` in the post, as on
//!   every backend, unless writes are held
//!   ([`Builder::hold_writes`](crate::Builder::hold_writes)): then it
//!   becomes an `IORING_OP_SEND` submitted with the next wait, or, with
//!   other writes queued behind it, one `IORING_OP_SENDMSG` with an iovec
//!   per write. What a `send(2)` leaves goes to the ring the same way
//!   (`MSG_WAITALL`, so the kernel sends all of it; `MSG_NOSIGNAL`). No
//!   readiness interest is added for them. The buffer moves into the
//!   selector (`inflight`, a slab whose index is the request's
//!   `user_data`) before its SQE is queued and leaves only with its
//!   completion, so nothing can free or grow it while the kernel may touch
//!   it. `cancel_io`, `deregister`, a
//!   replaced registration and dropping the runtime cancel with
//!   `IORING_OP_ASYNC_CANCEL` and wait for the cancelled operation's own
//!   completion before a buffer is released; if it finished first, that
//!   outcome is the one handed back. Posted I/O on other fds (pipes, ttys)
//!   still runs through the readiness emulation (`read(2)`/`write(2)` driven
//!   by the polls above).
//! * **Posted accepts** share one multishot accept per listener
//!   (`IORING_OP_ACCEPT` with `IORING_ACCEPT_MULTISHOT`, Linux 5.19: the
//!   kernel must have `IORING_OP_SOCKET`, which came with it, checked at
//!   setup as the other opcodes are; the probe cannot name a flag). One
//!   submission gives a completion per connection, with
//!   `IORING_CQE_F_MORE` while it stays armed; its `InFlight` stays in the
//!   slab until the completion without the flag. Each connection is a
//!   descriptor owned from the moment its completion is seen. The first
//!   finishes the posted accept; those that arrive while none is posted
//!   wait on the source, in arrival order, and the next posts finish with
//!   them at once (see `ops::source::ACCEPT_QUEUE` for the bound: when it
//!   is reached the multishot is cancelled, the kernel's listen backlog
//!   holds the rest, and a post that finds the queue empty arms it again).
//!   A connection that died before it was accepted is skipped; a
//!   completion without the flag (cancelled, or ended by the kernel on an
//!   error or an overflowing completion queue) arms a new one for a post
//!   still waiting. A multishot the kernel refuses (`EINVAL` before any
//!   connection) leaves the listener to single-shot `IORING_OP_ACCEPT`s,
//!   one per post, as on kernels without it. `cancel_io` of the posted
//!   accept cancels the multishot and waits for its last completion (a
//!   connection in between is the accept's outcome, others queue);
//!   `deregister` and dropping the runtime cancel it and wait, and the
//!   queued connections are closed with the source's state.
//! * **Receive streams** (`post_recv_stream`) pick buffers from a
//!   provided-buffer ring (`bufring.rs`, `IORING_REGISTER_PBUF_RING`,
//!   Linux 5.19) registered when the runtime is built with
//!   `Builder::recv_buffers`: one `IORING_OP_RECV` with
//!   `IORING_RECV_MULTISHOT` per stream (Linux 6.0, told by
//!   `IORING_OP_SEND_ZC`, which came with it; on 5.19 a single-shot
//!   `BUFFER_SELECT` receive that the runtime submits again after each
//!   completion). Its `InFlight` stays in the slab until the completion
//!   without `IORING_CQE_F_MORE`; each completion's buffer (named by its
//!   `bid`) leaves the ring with it and goes up as `OpDone::pooled`. While
//!   the receive is armed the source's poll leaves readability out, as for
//!   a receive. Cancelled receives' buffers go straight back to the ring;
//!   the ring is unregistered on drop once no receive is in flight. A
//!   kernel that refuses the ring leaves the buffers, and the streams, to
//!   the readiness emulation.
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
//! A poll request (and a listener's multishot accept) holds a reference to
//! its file. A source closed without `deregister` therefore stays open in
//! the kernel (its peer sees no close) while one is armed on it: until it is deregistered, its number is
//! registered again (the stale entry is replaced, see `replace`), or the
//! runtime is dropped. A level or oneshot entry whose fd is closed is found
//! out when its poll is next armed (`EBADF`) and reports nothing from then
//! on.
//!
//! # Memory ordering
//!
//! This file adds no atomic protocol. The rings' head and tail indices are
//! shared with the kernel and handled by the `io-uring` crate (an acquire
//! load of the kernel's tail before reading entries, a release store of our
//! head or tail after them, as `io_uring(7)` prescribes). Cross-thread
//! posts and wakes use the completion protocol of
//! [`completion`](crate::completion) unchanged — its AWAKE/SLEEPING state
//! word and its loom models — with the eventfd as the doorbell, exactly as
//! on epoll; a ring after the loop set the flag is a completion posted to
//! the ring (task work of the eventfd's poll), which ends the
//! `io_uring_enter` wait or makes it return at once.
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

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};

use super::bufring::{BufRing, BGID};
use super::{timeout_ms, Identity, Source, Waker};
use crate::sys::{NativeIo, OpDone, Open, Poller};
use crate::{Interest, Readiness, Trigger};

/// Tests: selectors made on this thread act as on an older kernel.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Older {
    /// Linux 5.19: buffer rings, no multishot receive.
    NoRecvMulti,
    /// Before 5.19: no buffer rings either.
    NoBufRing,
}

#[cfg(test)]
thread_local! {
    static OLDER_KERNEL: std::cell::Cell<Option<Older>> = const { std::cell::Cell::new(None) };
}

/// `user_data` of the doorbell's poll.
const WAKER: u64 = u64::MAX;
/// `user_data` of requests whose completion carries nothing for us
/// (`POLL_REMOVE`, `ASYNC_CANCEL`): their results are ignored.
const IGNORED: u64 = u64::MAX - 1;
/// A native operation's `user_data` is this bit and its index in the
/// `inflight` slab. A poll's is its fd in bits 32..63 and its generation in
/// bits 0..32 (bit 63 clear: an fd is below 2^31). The two reserved values
/// above have every bit from 32 on set, which no slab index reaches.
const OP: u64 = 1 << 63;

/// Submission and completion queue sizes. A registration has at most one
/// poll armed, and a level or oneshot one at most one completion in flight;
/// edge registrations and bursts beyond the completion queue go to the
/// kernel's overflow list (`IORING_FEAT_NODROP`), nothing is lost.
const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 4096;

/// What this backend needs of the kernel, checked by [`probe`] (and so by
/// `Backend::Uring.is_available()` and by building a runtime on it).
const NEEDED_OPS: [(u8, &str); 6] = [
    (opcode::PollAdd::CODE, "IORING_OP_POLL_ADD"),
    (opcode::PollRemove::CODE, "IORING_OP_POLL_REMOVE"),
    (opcode::Recv::CODE, "IORING_OP_RECV"),
    (opcode::Send::CODE, "IORING_OP_SEND"),
    (opcode::SendMsg::CODE, "IORING_OP_SENDMSG"),
    (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
];

/// `IORING_RECVSEND_POLL_FIRST`, the receive's `ioprio` flag to wait for
/// data before trying (`io_uring.h`; the crate keeps its copy private).
const RECVSEND_POLL_FIRST: u16 = 1;

/// The poll bits a native receive covers.
const READ_BITS: u32 = (libc::POLLIN | libc::POLLRDHUP) as u32;

/// `io_uring.h`'s `io_uring_enter` flags and register opcodes this file
/// passes itself (the crate keeps its copies private).
const ENTER_GETEVENTS: u32 = 1;
const ENTER_EXT_ARG: u32 = 1 << 3;
const ENTER_REGISTERED_RING: u32 = 1 << 4;
const REGISTER_RING_FDS: u32 = 20;
const UNREGISTER_RING_FDS: u32 = 21;

/// `struct io_uring_rsrc_update`.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// `struct __kernel_timespec`.
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `struct io_uring_getevents_arg`.
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// How `io_uring_enter` names the ring.
///
/// A ring descriptor registered with `IORING_REGISTER_RING_FDS` (Linux
/// 5.18) is named by its index in the registering thread's table, which
/// saves the kernel a descriptor lookup (and its reference count) on every
/// enter. The table is the thread's: a `Runtime` is `Send`, so the index is
/// used only on the thread that registered it (elsewhere the descriptor
/// is, as on a kernel without the call), and unregistered when the
/// selector is dropped there. One dropped on another thread cannot
/// unregister (the call acts on the caller's table): the registration
/// keeps the ring's file until that thread exits, and with it the ring's
/// kernel memory. So the registration is made by the first wait, on the
/// thread that runs the loop, not by the one that built it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RingFd {
    /// Not tried yet: the next wait tries.
    Unasked,
    /// Registered at `index` by the thread marked `thread`.
    Registered { index: u32, thread: u64 },
    /// Refused (an older kernel, a full table): the descriptor.
    Raw,
}

/// A number for the calling thread, unique for the life of the process
/// (a thread's id can be reused after it exits; this cannot).
fn thread_mark() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static MARK: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    MARK.with(|m| *m)
}

#[derive(Debug)]
struct Entry {
    slot: u64,
    interest: Interest,
    trigger: Trigger,
    /// The generation of the poll armed for this entry, if one is, and the
    /// mask it was armed with.
    poll: Option<u32>,
    mask: u32,
    /// The entry wants a poll it does not have: a level entry reported
    /// since its poll completed, an edge entry whose multishot the kernel
    /// ended, an entry whose poll was taken down to change its mask, one
    /// whose readability a receive covers. Armed by the next `select`
    /// (unless a receive still covers all it asks for).
    rearm: bool,
    /// The fd turned out closed (a poll on it failed with `EBADF`): nothing
    /// is armed or reported any more.
    closed: bool,
    /// A native receive is in the ring: its completion says what
    /// readability would, so the poll leaves readability out meanwhile.
    recv: bool,
    /// The last receive came back short: the socket is likely empty, and
    /// the next receive waits for data before trying
    /// (`IORING_RECVSEND_POLL_FIRST`).
    recv_short: bool,
    /// Native sends in the ring.
    sends: u32,
    /// The poll's arming was put off once for a send submitted with it
    /// (see `select`).
    deferred: bool,
    /// The file registered, to tell it from a later one with its number.
    id: Identity,
}

impl Entry {
    /// The mask a poll armed now has: the caller's interest, less what a
    /// receive in the ring covers.
    fn poll_mask(&self) -> u32 {
        let mask = events(self.interest);
        if self.recv {
            mask & !READ_BITS
        } else {
            mask
        }
    }
}

fn poll_data(fd: RawFd, gen: u32) -> u64 {
    (fd as u64) << 32 | u64::from(gen)
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

/// A posted read or write the kernel has. Its buffer lives here, not with
/// the operation, from the submission until its completion has been seen:
/// nothing above `sys/` can drop or grow it while the kernel may use it.
#[derive(Debug)]
struct InFlight {
    /// The runtime's name for the operation ([`OpId`](crate::OpId) bits).
    op: u64,
    fd: RawFd,
    read: bool,
    /// An `IORING_OP_ACCEPT`: its result is a new descriptor.
    accept: bool,
    /// A multishot accept (`IORING_ACCEPT_MULTISHOT`): it stays here
    /// while its completions carry `IORING_CQE_F_MORE`.
    multi: bool,
    /// An `IORING_OP_CONNECT`.
    connect: bool,
    /// A receive stream's `IORING_OP_RECV` selecting buffers from the
    /// ring (multishot where the kernel has it).
    stream: bool,
    /// The bytes asked for.
    len: u32,
    buf: Vec<u8>,
    /// A gathered send's header, iovecs and buffers (`buf` is empty).
    gather: Option<Box<Gather>>,
}

/// What an `IORING_OP_SENDMSG` points at: its message header, the header's
/// iovecs and the buffers they point into. Boxed, so the header stays put
/// while the slab grows; once its completion is seen the buffers go back
/// and the box is kept for the next gathered send.
struct Gather {
    msg: libc::msghdr,
    iov: Vec<libc::iovec>,
    bufs: Vec<Vec<u8>>,
}

// SAFETY: the raw pointers in `msg` and `iov` point only into this value's
// own heap blocks (`iov`'s and the buffers'), which it owns: moving it to
// another thread moves what they point at with it, and nothing else holds
// them.
unsafe impl Send for Gather {}

impl Gather {
    fn new() -> Box<Gather> {
        Box::new(Gather {
            // SAFETY: all-zero is a valid `msghdr` (no name, no iovecs, no
            // control data).
            msg: unsafe { std::mem::zeroed() },
            iov: Vec::new(),
            bufs: Vec::new(),
        })
    }
}

impl std::fmt::Debug for Gather {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gather")
            .field("bufs", &self.bufs.len())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Selector {
    ring: IoUring,
    /// Native reads and writes the kernel has, at the index their
    /// `user_data` names (a slab: no hashing per completion).
    inflight: Vec<Option<InFlight>>,
    /// Free indices of `inflight`.
    free: Vec<u32>,
    /// Their completions, in the order the ring gave them, until taken.
    op_done: VecDeque<(u64, OpDone)>,
    /// Registrations by fd (fds are small and dense).
    entries: Vec<Option<Entry>>,
    /// The generation of the next poll.
    next_gen: u32,
    /// Entries to arm again before the next wait.
    rearm: Vec<RawFd>,
    /// Entries whose arming `select` puts off until it would block.
    deferred: Vec<RawFd>,
    /// Completions moved out of the ring on `EBUSY`, handled first.
    backlog: VecDeque<Cqe>,
    waker: RawFd,
    waker_armed: bool,
    /// The kernel takes `IORING_RECVSEND_POLL_FIRST` (Linux 5.19).
    poll_first: bool,
    /// The kernel takes `IORING_ACCEPT_MULTISHOT` (Linux 5.19).
    accept_multi: bool,
    /// The kernel takes `IORING_RECV_MULTISHOT` (Linux 6.0).
    recv_multi: bool,
    /// The runtime's receive buffers the kernel may pick from, if they
    /// are set up ([`NativeIo::setup_recv_pool`]).
    pbuf: Option<BufRing>,
    /// Gathered sends' boxes, kept for the next ones (boxed: the header
    /// a submission points at must not move while a send is in flight, and
    /// a box goes from here to `inflight` and back without a copy).
    #[allow(clippy::vec_box)]
    spare_gathers: Vec<Box<Gather>>,
    /// How `io_uring_enter` names the ring.
    ring_fd: RingFd,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selector")
            .field("ring", &self.ring.as_raw_fd())
            .field("entries", &self.entries.iter().flatten().count())
            .field("backlog", &self.backlog.len())
            .field("inflight", &(self.inflight.len() - self.free.len()))
            .finish_non_exhaustive()
    }
}

/// Whether this kernel lets this process make a ring with what the backend
/// needs; the error says why not. Makes a one-entry ring and closes it:
/// nothing outlives the call.
pub(crate) fn probe() -> io::Result<()> {
    new_ring(1, 2).map(drop)
}

/// The ring, whether it takes `IORING_RECVSEND_POLL_FIRST` and whether it
/// takes `IORING_RECV_MULTISHOT`.
fn new_ring(sq: u32, cq: u32) -> io::Result<(IoUring, bool, bool)> {
    if cfg!(miri) {
        // Miri stops the whole run at a syscall it does not emulate.
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring: Miri does not emulate io_uring_setup",
        ));
    }
    // Task work (a receive's data, a send's room) runs when the loop next
    // enters the kernel rather than interrupting it (`COOP_TASKRUN`), and
    // the kernel flags pending work in the ring (`TASKRUN_FLAG`) so a
    // zero-timeout `select` knows when it must enter (Linux 5.19; older
    // kernels refuse the flags with EINVAL, and get the plain ring).
    let ring = IoUring::builder()
        .setup_cqsize(cq)
        .setup_clamp()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(sq)
        .or_else(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => IoUring::builder().setup_cqsize(cq).setup_clamp().build(sq),
            _ => Err(e),
        })
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
    // `IORING_OP_SOCKET` came with `IORING_RECVSEND_POLL_FIRST` and
    // `IORING_ACCEPT_MULTISHOT`, in 5.19 (flags, which the probe cannot
    // name).
    let poll_first = probe.is_supported(opcode::Socket::CODE);
    // `IORING_OP_SEND_ZC` came with `IORING_RECV_MULTISHOT`, in 6.0.
    let recv_multi = probe.is_supported(opcode::SendZc::CODE);
    Ok((ring, poll_first, recv_multi))
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
        let (ring, poll_first, recv_multi) = new_ring(sq, cq)?;
        #[cfg(test)]
        let recv_multi = recv_multi && OLDER_KERNEL.with(|k| k.get()).is_none();
        let mut selector = Selector {
            ring,
            inflight: Vec::new(),
            free: Vec::new(),
            op_done: VecDeque::new(),
            entries: Vec::new(),
            next_gen: 0,
            rearm: Vec::new(),
            deferred: Vec::new(),
            backlog: VecDeque::new(),
            waker: waker.fd().as_raw_fd(),
            waker_armed: false,
            poll_first,
            accept_multi: poll_first,
            recv_multi,
            pbuf: None,
            spare_gathers: Vec::new(),
            ring_fd: RingFd::Unasked,
        };
        selector.arm_waker()?;
        // Armed before `new` returns, so no ring can come before the poll.
        selector.submit()?;
        Ok(selector)
    }

    fn entry(&self, fd: RawFd) -> Option<&Entry> {
        self.entries.get(usize::try_from(fd).ok()?)?.as_ref()
    }

    fn entry_mut(&mut self, fd: RawFd) -> Option<&mut Entry> {
        self.entries.get_mut(usize::try_from(fd).ok()?)?.as_mut()
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
    ///
    /// # Safety
    ///
    /// Any memory `sqe` points at must stay valid, and not be moved, until
    /// the kernel has posted the request's completion (the caller keeps a
    /// native operation's buffer in `inflight` for that long; polls,
    /// removals and cancellations point at nothing).
    unsafe fn push_unchecked(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller's promise, above.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.submit()?;
        }
    }

    /// [`push_unchecked`](Selector::push_unchecked) for entries that point
    /// at no memory: polls, poll removals, cancellations.
    fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        // SAFETY: such an entry names an fd, a mask or another request's
        // `user_data`, nothing that can go away before the kernel reads it.
        unsafe { self.push_unchecked(sqe) }
    }

    /// Submits without waiting. `EBUSY` (completions the kernel could not
    /// flush from its overflow list) is resolved by moving the completion
    /// queue into the backlog.
    fn submit(&mut self) -> io::Result<()> {
        loop {
            match self.enter_ring(0, None) {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.drain_to_backlog(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn drain_to_backlog(&mut self) {
        let cqes = self.ring.completion().map(Cqe::from);
        self.backlog.extend(cqes.filter(|c| c.user_data != IGNORED));
    }

    /// Arms `fd`'s poll with the mask its entry wants now; none while a
    /// receive covers all it asks for (the entry then waits, flagged, for
    /// the receive to end).
    fn new_poll(&mut self, fd: RawFd) -> io::Result<()> {
        let gen = self.next_gen;
        let entry = self.entry_mut(fd).expect("a registered fd");
        let mask = entry.poll_mask();
        if mask == 0 && entry.recv {
            entry.rearm = true;
            return Ok(());
        }
        let sqe = opcode::PollAdd::new(types::Fd(fd), mask)
            .multi(entry.trigger == Trigger::Edge)
            .build()
            .user_data(poll_data(fd, gen));
        self.push(&sqe)?;
        // A removed poll's last completion comes back in the enter that
        // submits the removal, some 2^32 polls before its generation
        // could come round again.
        self.next_gen = gen.wrapping_add(1);
        let entry = self.entry_mut(fd).expect("a registered fd");
        entry.poll = Some(gen);
        entry.mask = mask;
        entry.rearm = false;
        entry.deferred = false;
        Ok(())
    }

    /// Withdraws `fd`'s armed poll, if any; its last completion will be
    /// stale.
    fn remove_poll(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(entry) = self.entry_mut(fd) else {
            return Ok(());
        };
        entry.rearm = false;
        if let Some(gen) = entry.poll {
            let sqe = opcode::PollRemove::new(poll_data(fd, gen))
                .build()
                .user_data(IGNORED);
            self.push(&sqe)?;
            if let Some(entry) = self.entry_mut(fd) {
                entry.poll = None;
            }
        }
        Ok(())
    }

    /// A receive on `fd` started or ended: an armed poll whose mask is not
    /// the one wanted now is taken down and armed again by the next
    /// `select`, and an entry waiting for its poll is queued for it.
    fn recheck_poll(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(entry) = self.entry(fd) else {
            return Ok(());
        };
        if entry.closed {
            return Ok(());
        }
        match entry.poll {
            Some(_) if entry.mask != entry.poll_mask() => {
                self.remove_poll(fd)?;
                if let Some(entry) = self.entry_mut(fd) {
                    entry.rearm = true;
                }
                self.rearm.push(fd);
            }
            None if entry.rearm => self.rearm.push(fd),
            _ => {}
        }
        Ok(())
    }

    /// Whether `cqe` is a native operation's; if so, its completion is
    /// queued for [`pop_op_done`](NativeIo::pop_op_done).
    fn finish_op(&mut self, cqe: Cqe) -> bool {
        if cqe.user_data & OP == 0 || cqe.user_data == WAKER || cqe.user_data == IGNORED {
            return false;
        }
        let index = (cqe.user_data & !OP) as usize;
        let more = cqueue::more(cqe.flags);
        if let Some(Some(op)) = self.inflight.get(index) {
            if op.stream {
                self.stream_done(index, cqe);
                return true;
            }
            if op.multi && more {
                // Still armed: it stays in the slab, and its connection
                // goes up.
                let done = OpDone {
                    op: op.op,
                    result: cqe.result,
                    cancelled: false,
                    buf: Vec::new(),
                    bufs: Vec::new(),
                    stream: accepted_stream(cqe.result),
                    multi: true,
                    more: true,
                    pooled: false,
                    no_buffers: false,
                    recv_stream: false,
                };
                self.op_done.push_back((cqe.user_data, done));
                return true;
            }
        }
        let Some(mut op) = self.inflight.get_mut(index).and_then(Option::take) else {
            return false;
        };
        self.free.push(index as u32);
        if op.read && cqe.result > 0 {
            let n = cqe.result as usize;
            debug_assert!(n <= op.buf.capacity() - op.buf.len());
            // SAFETY: the kernel has written `n` bytes into the spare
            // capacity from `len` on (it was given exactly that region, and
            // never writes more than its length), and posted its completion,
            // so it writes there no more.
            unsafe { op.buf.set_len(op.buf.len() + n) };
        }
        let stream = if op.accept {
            accepted_stream(cqe.result)
        } else {
            None
        };
        if op.accept || op.connect {
            // Not a receive's or a send's: the source's poll and counters
            // stay as they are.
        } else if let Some(entry) = self.entry_mut(op.fd) {
            if op.read {
                entry.recv = false;
                entry.recv_short =
                    cqe.result == 0 || u32::try_from(cqe.result).is_ok_and(|n| n > 0 && n < op.len);
            } else {
                entry.sends = entry.sends.saturating_sub(1);
                entry.deferred = false;
            }
            if op.read {
                // The poll gets readability back. Should the removal not
                // go in, the next `select` fails the same way.
                let _ = self.recheck_poll(op.fd);
            }
        }
        let bufs = match op.gather.take() {
            Some(mut g) => {
                // The kernel is done with the header and the iovecs: the
                // box is kept, its pointers are written afresh before reuse.
                g.iov.clear();
                let bufs = std::mem::take(&mut g.bufs);
                self.spare_gathers.push(g);
                bufs
            }
            None => Vec::new(),
        };
        self.op_done.push_back((
            cqe.user_data,
            OpDone {
                op: op.op,
                result: cqe.result,
                cancelled: cqe.result == -libc::ECANCELED,
                buf: op.buf,
                bufs,
                stream,
                multi: op.multi,
                more: false,
                pooled: false,
                no_buffers: false,
                recv_stream: false,
            },
        ));
        true
    }
}

/// An accept completion's connection: its non-negative result is the
/// descriptor the kernel just made for it.
fn accepted_stream(result: i32) -> Option<std::net::TcpStream> {
    (result >= 0).then(|| {
        // SAFETY: an accept's non-negative result is the descriptor the
        // kernel just made for the connection; nothing else owns it (each
        // completion is seen once).
        std::net::TcpStream::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(result) })
    })
}

/// `addr` as the kernel's `sockaddr_in` / `sockaddr_in6`, in bytes.
fn sockaddr_bytes(addr: std::net::SocketAddr) -> Vec<u8> {
    fn bytes<T>(sa: &T) -> Vec<u8> {
        // SAFETY: `sa` is a plain C struct of `size_of::<T>()` bytes, all
        // initialised (built whole below, padding included by zeroed()).
        unsafe { std::slice::from_raw_parts((sa as *const T).cast::<u8>(), size_of::<T>()) }
            .to_vec()
    }
    match addr {
        std::net::SocketAddr::V4(a) => {
            // SAFETY: all-zero is a valid `sockaddr_in`.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = a.port().to_be();
            sa.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            bytes(&sa)
        }
        std::net::SocketAddr::V6(a) => {
            // SAFETY: all-zero is a valid `sockaddr_in6`.
            let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_port = a.port().to_be();
            sa.sin6_flowinfo = a.flowinfo();
            sa.sin6_addr.s6_addr = a.ip().octets();
            sa.sin6_scope_id = a.scope_id();
            bytes(&sa)
        }
    }
}

impl Open for Selector {
    fn open() -> io::Result<(Selector, Waker)> {
        let waker = Waker::new()?;
        Ok((Selector::new(&waker)?, waker))
    }

    fn probe() -> io::Result<()> {
        probe()
    }
}

impl NativeIo for Selector {
    fn native_io(&self) -> bool {
        true
    }

    /// A native read on socket `fd` into `buf`'s spare capacity, for the
    /// runtime's operation `op`. On an error the buffer comes back. After
    /// a short read the receive waits for data before it tries
    /// (`IORING_RECVSEND_POLL_FIRST`): no attempt that is sure to fail.
    fn submit_recv(
        &mut self,
        fd: Source<'_>,
        op: u64,
        mut buf: Vec<u8>,
    ) -> Result<u64, (io::Error, Vec<u8>)> {
        let spare = buf.capacity() - buf.len();
        let len = u32::try_from(spare).unwrap_or(u32::MAX);
        // SAFETY: `len()` is at most `capacity()`, so the pointer stays
        // inside (or one past) the allocation.
        let ptr = unsafe { buf.as_mut_ptr().add(buf.len()) };
        let raw = fd.as_raw_fd();
        let poll_first = self.poll_first && self.entry(raw).is_some_and(|e| e.recv_short);
        let ioprio = if poll_first { RECVSEND_POLL_FIRST } else { 0 };
        let sqe = opcode::Recv::new(types::Fd(raw), ptr, len)
            .ioprio(ioprio)
            .build();
        let id = self.submit_op(sqe, op, raw, true, len, buf)?;
        if let Some(entry) = self.entry_mut(raw) {
            entry.recv = true;
        }
        // The poll leaves readability to the receive. Should the removal
        // not go in, the poll stays as it was (one more report, nothing
        // lost), and the next `select` fails the same way.
        let _ = self.recheck_poll(raw);
        Ok(id)
    }

    /// A native write on socket `fd` of `buf[offset..]`, all of it
    /// (`MSG_WAITALL`: the kernel retries a short send itself), without
    /// `SIGPIPE` (`MSG_NOSIGNAL`).
    fn submit_send(
        &mut self,
        fd: Source<'_>,
        op: u64,
        buf: Vec<u8>,
        offset: usize,
    ) -> Result<u64, (io::Error, Vec<u8>)> {
        let rest = &buf[offset.min(buf.len())..];
        let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        let raw = fd.as_raw_fd();
        let sqe = opcode::Send::new(types::Fd(raw), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build();
        let id = self.submit_op(sqe, op, raw, false, len, buf)?;
        if let Some(entry) = self.entry_mut(raw) {
            entry.sends += 1;
        }
        Ok(id)
    }

    /// A native write on socket `fd` of several buffers in order — `bufs[0]`
    /// from `offset`, the others whole — as one `IORING_OP_SENDMSG` with an
    /// iovec per buffer; all of it (`MSG_WAITALL`), without `SIGPIPE`.
    fn submit_send_gathered(
        &mut self,
        fd: Source<'_>,
        op: u64,
        bufs: Vec<Vec<u8>>,
        offset: usize,
    ) -> Result<u64, (io::Error, Vec<Vec<u8>>)> {
        let mut g = self.spare_gathers.pop().unwrap_or_else(Gather::new);
        let mut len = 0usize;
        g.iov.clear();
        for (i, b) in bufs.iter().enumerate() {
            let rest = if i == 0 {
                &b[offset.min(b.len())..]
            } else {
                &b[..]
            };
            len = len.saturating_add(rest.len());
            g.iov.push(libc::iovec {
                iov_base: rest.as_ptr().cast_mut().cast(),
                iov_len: rest.len(),
            });
        }
        // Moving the `Vec` of buffers moves none of their heap blocks,
        // which the iovecs point into.
        g.bufs = bufs;
        // SAFETY: all-zero is a valid `msghdr`.
        g.msg = unsafe { std::mem::zeroed() };
        g.msg.msg_iov = g.iov.as_mut_ptr();
        g.msg.msg_iovlen = g.iov.len() as _;
        let raw = fd.as_raw_fd();
        let sqe = opcode::SendMsg::new(types::Fd(raw), &g.msg)
            .flags((libc::MSG_NOSIGNAL | libc::MSG_WAITALL) as u32)
            .build();
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        match self.submit_op_with(sqe, op, raw, false, len, Vec::new(), Some(g)) {
            Ok(id) => {
                if let Some(entry) = self.entry_mut(raw) {
                    entry.sends += 1;
                }
                Ok(id)
            }
            Err((e, _, g)) => {
                let mut g = g.expect("the gather just given");
                let bufs = std::mem::take(&mut g.bufs);
                g.iov.clear();
                self.spare_gathers.push(g);
                Err((e, bufs))
            }
        }
    }

    /// A native accept on the listening socket `fd`: the connection comes
    /// non-blocking and close-on-exec, the peer's address is asked for
    /// afterwards.
    fn submit_accept(&mut self, fd: Source<'_>, op: u64) -> io::Result<u64> {
        let raw = fd.as_raw_fd();
        let sqe = opcode::Accept::new(types::Fd(raw), std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build();
        let id = self
            .submit_op(sqe, op, raw, false, 0, Vec::new())
            .map_err(|(e, _)| e)?;
        if let Some(Some(f)) = self.inflight.get_mut((id & !OP) as usize) {
            f.accept = true;
        }
        Ok(id)
    }

    /// A multishot accept on the listening socket `fd`
    /// (`IORING_ACCEPT_MULTISHOT`, Linux 5.19): a completion per
    /// connection, each non-blocking and close-on-exec, while it stays
    /// armed. `None` on a kernel without it.
    fn submit_accept_multi(&mut self, fd: Source<'_>, op: u64) -> io::Result<Option<u64>> {
        if !self.accept_multi {
            return Ok(None);
        }
        let raw = fd.as_raw_fd();
        let sqe = opcode::AcceptMulti::new(types::Fd(raw))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build();
        let id = self
            .submit_op(sqe, op, raw, false, 0, Vec::new())
            .map_err(|(e, _)| e)?;
        if let Some(Some(f)) = self.inflight.get_mut((id & !OP) as usize) {
            f.accept = true;
            f.multi = true;
        }
        Ok(Some(id))
    }

    /// Asks for submission `id`'s cancellation (`IORING_OP_ASYNC_CANCEL`,
    /// submitted with the next enter); its completions come as usual.
    fn stop_op(&mut self, id: u64) -> io::Result<()> {
        if self.in_flight(id) {
            self.push(&opcode::AsyncCancel::new(id).build().user_data(IGNORED))?;
        }
        Ok(())
    }

    /// Cancels the multishot submission `id` and waits for its last
    /// completion; every completion of it not taken yet comes back, in
    /// order.
    fn cancel_multi(&mut self, id: u64) -> io::Result<Vec<OpDone>> {
        self.cancel_ops(&[id])
    }

    /// A native connect of socket `fd` to `addr`. The address travels in
    /// the operation's buffer, kept until the completion (the kernel copies
    /// it when it takes the entry).
    fn submit_connect(
        &mut self,
        fd: Source<'_>,
        op: u64,
        addr: std::net::SocketAddr,
    ) -> io::Result<u64> {
        let raw = fd.as_raw_fd();
        let buf = sockaddr_bytes(addr);
        let sqe = opcode::Connect::new(
            types::Fd(raw),
            buf.as_ptr().cast(),
            buf.len() as libc::socklen_t,
        )
        .build();
        let id = self
            .submit_op(sqe, op, raw, false, 0, buf)
            .map_err(|(e, _)| e)?;
        if let Some(Some(f)) = self.inflight.get_mut((id & !OP) as usize) {
            f.connect = true;
        }
        Ok(id)
    }

    /// Maps and registers a ring of `count` buffers of `size` bytes
    /// (`IORING_REGISTER_PBUF_RING`, Linux 5.19) and fills it. False if
    /// the kernel has no buffer rings: the runtime keeps the buffers and
    /// runs receive streams on readiness.
    fn setup_recv_pool(&mut self, count: usize, size: usize) -> bool {
        if self.pbuf.is_some() {
            return true;
        }
        #[cfg(test)]
        if OLDER_KERNEL.with(|k| k.get()) == Some(Older::NoBufRing) {
            return false;
        }
        match BufRing::new(&self.ring, count, size) {
            Ok(mut pbuf) => {
                for _ in 0..count {
                    pbuf.provide(Vec::with_capacity(size));
                }
                self.pbuf = Some(pbuf);
                true
            }
            Err(_) => false,
        }
    }

    fn provide_buf(&mut self, buf: Vec<u8>) {
        if let Some(pbuf) = self.pbuf.as_mut() {
            pbuf.provide(buf);
        }
    }

    /// A receive stream on socket `fd`: an `IORING_OP_RECV` that picks its
    /// buffers from the ring, multishot (`IORING_RECV_MULTISHOT`, Linux
    /// 6.0) where the kernel has it, else single-shot (the runtime submits
    /// it again after each completion). The poll leaves readability to it
    /// while it is in the ring.
    fn submit_recv_stream(&mut self, fd: Source<'_>, op: u64) -> io::Result<u64> {
        let Some(pbuf) = self.pbuf.as_ref() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no buffer ring: receive streams run on readiness",
            ));
        };
        let raw = fd.as_raw_fd();
        let sqe = if self.recv_multi {
            opcode::RecvMulti::new(types::Fd(raw), BGID).build()
        } else {
            opcode::Recv::new(types::Fd(raw), std::ptr::null_mut(), pbuf.size())
                .buf_group(BGID)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        };
        let id = self
            .submit_op(sqe, op, raw, false, 0, Vec::new())
            .map_err(|(e, _)| e)?;
        if let Some(Some(f)) = self.inflight.get_mut((id & !OP) as usize) {
            f.stream = true;
            f.multi = true;
        }
        if let Some(entry) = self.entry_mut(raw) {
            entry.recv = true;
        }
        // As for a receive: should the removal not go in, the poll stays
        // as it was (one more report, nothing lost).
        let _ = self.recheck_poll(raw);
        Ok(id)
    }

    /// The next finished native operation.
    fn pop_op_done(&mut self) -> Option<OpDone> {
        self.op_done.pop_front().map(|(_, d)| d)
    }

    /// Cancels the native operation `id` (`IORING_OP_ASYNC_CANCEL`) and
    /// waits for its completion, so that its buffer can be handed back: the
    /// result is `-ECANCELED`, or what it did if it finished first (a read
    /// whose bytes arrived, a write that went out) — the cancellation racing
    /// the completion. `None` if `id` is not in flight nor finished.
    fn cancel_op(&mut self, id: u64) -> io::Result<Option<OpDone>> {
        Ok(self.cancel_ops(&[id])?.pop())
    }
}

impl Selector {
    fn submit_op(
        &mut self,
        sqe: squeue::Entry,
        op: u64,
        fd: RawFd,
        read: bool,
        len: u32,
        buf: Vec<u8>,
    ) -> Result<u64, (io::Error, Vec<u8>)> {
        self.submit_op_with(sqe, op, fd, read, len, buf, None)
            .map_err(|(e, buf, _)| (e, buf))
    }

    /// [`submit_op`](Selector::submit_op) with a gathered send's memory.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn submit_op_with(
        &mut self,
        sqe: squeue::Entry,
        op: u64,
        fd: RawFd,
        read: bool,
        len: u32,
        buf: Vec<u8>,
        gather: Option<Box<Gather>>,
    ) -> Result<u64, (io::Error, Vec<u8>, Option<Box<Gather>>)> {
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.inflight.push(None);
                self.inflight.len() - 1
            }
        };
        let id = OP | index as u64;
        // The buffer moves in before the entry is queued: moving the `Vec`
        // does not move its heap block, which the entry points at.
        self.inflight[index] = Some(InFlight {
            op,
            fd,
            read,
            accept: false,
            multi: false,
            connect: false,
            stream: false,
            len,
            buf,
            gather,
        });
        // SAFETY: the buffer the entry points at (or the gathered send's
        // header, iovecs and buffers) is in `inflight` until its completion
        // is seen (`finish_op`), and is never reallocated or moved there
        // (the header is boxed); `Drop` waits for every in-flight request
        // (or leaks its memory).
        match unsafe { self.push_unchecked(&sqe.user_data(id)) } {
            Ok(()) => Ok(id),
            Err(e) => {
                // The entry never reached the queue (`push` fails only in
                // the submit that makes room for it): the buffer is free.
                let op = self.inflight[index].take().expect("just stored");
                self.free.push(index as u32);
                Err((e, op.buf, op.gather))
            }
        }
    }

    fn in_flight(&self, id: u64) -> bool {
        id & OP != 0
            && id != WAKER
            && id != IGNORED
            && self
                .inflight
                .get((id & !OP) as usize)
                .is_some_and(Option::is_some)
    }

    /// [`cancel_op`](NativeIo::cancel_op) for several at once: one submit,
    /// then the wait for all of them. Their completions come back (in no
    /// particular order), leaving out unknown ids.
    fn cancel_ops(&mut self, ids: &[u64]) -> io::Result<Vec<OpDone>> {
        let wanted: std::collections::HashSet<u64> = ids.iter().copied().collect();
        // The runtime's operation behind each id in flight now. A slab
        // index is reused once its operation's last completion is seen, and
        // that completion may still wait in `op_done` (an earlier
        // cancellation met it on the way): it is claimed here only if it is
        // the same operation's, never another's that had the index before.
        let mut owner = std::collections::HashMap::new();
        let mut waiting = 0;
        for &id in &wanted {
            if self.in_flight(id) {
                if let Some(Some(f)) = self.inflight.get((id & !OP) as usize) {
                    owner.insert(id, f.op);
                }
                self.push(&opcode::AsyncCancel::new(id).build().user_data(IGNORED))?;
                waiting += 1;
            }
        }
        if waiting > 0 {
            self.submit()?;
        }
        // Every other completion met on the way goes to the backlog, in
        // order, for the next `select`; op completions land in `op_done`.
        // The backlog is looked through once: what joins it below is no
        // op's.
        let mut backlog = VecDeque::with_capacity(self.backlog.len());
        // A multishot's completions with more to come leave it in flight:
        // only its last one counts.
        for cqe in std::mem::take(&mut self.backlog) {
            if !self.finish_op(cqe) {
                backlog.push_back(cqe);
            } else if wanted.contains(&cqe.user_data) && !self.in_flight(cqe.user_data) {
                waiting -= 1;
            }
        }
        while waiting > 0 {
            loop {
                let Some(e) = self.ring.completion().next() else {
                    break;
                };
                let cqe = Cqe::from(e);
                if self.finish_op(cqe) {
                    if wanted.contains(&cqe.user_data) && !self.in_flight(cqe.user_data) {
                        waiting -= 1;
                    }
                } else if cqe.user_data != IGNORED {
                    backlog.push_back(cqe);
                }
            }
            if waiting == 0 {
                break;
            }
            match self.enter_ring(1, None) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => {
                    self.backlog = backlog;
                    return Err(e);
                }
            }
        }
        self.backlog = backlog;
        let (mine, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.op_done)
            .into_iter()
            .partition(|(u, d)| wanted.contains(u) && owner.get(u).map_or(true, |&op| op == d.op));
        self.op_done = rest;
        Ok(mine.into_iter().map(|(_, d)| d).collect())
    }

    /// A completion of the receive stream in slab `index`: its buffer (the
    /// ring's `bid`, with the data) goes up with it; on its last (no
    /// `IORING_CQE_F_MORE`: ended by EOF, an error, `ENOBUFS`, a cancel,
    /// or a single-shot receive's one completion) the slab entry is freed
    /// and the source's poll gets readability back.
    fn stream_done(&mut self, index: usize, cqe: Cqe) {
        let more = cqueue::more(cqe.flags);
        let (op, fd) = match &self.inflight[index] {
            Some(f) => (f.op, f.fd),
            None => return,
        };
        if !more {
            self.inflight[index] = None;
            self.free.push(index as u32);
            if let Some(entry) = self.entry_mut(fd) {
                entry.recv = false;
            }
            // Should the removal not go in, the next `select` fails the
            // same way.
            let _ = self.recheck_poll(fd);
        }
        let n = usize::try_from(cqe.result).unwrap_or(0);
        let mut buf = Vec::new();
        if let (Some(bid), Some(pbuf)) = (cqueue::buffer_select(cqe.flags), self.pbuf.as_mut()) {
            if let Some(b) = pbuf.take(bid, n) {
                if n > 0 {
                    buf = b;
                } else {
                    // No data in it: straight back to the kernel.
                    pbuf.provide(b);
                }
            }
        }
        let pooled = buf.capacity() > 0;
        self.op_done.push_back((
            cqe.user_data,
            OpDone {
                op,
                result: cqe.result,
                cancelled: cqe.result == -libc::ECANCELED,
                buf,
                bufs: Vec::new(),
                stream: None,
                multi: true,
                more,
                pooled,
                no_buffers: cqe.result == -libc::ENOBUFS,
                recv_stream: true,
            },
        ));
    }

    /// Cancels every native operation on `fd` and waits for them; their
    /// buffers are dropped (deregistration drops what was posted). Those
    /// that had finished already stay in `op_done`, where the runtime finds
    /// their source gone and drops them.
    fn cancel_fd_ops(&mut self, fd: RawFd) -> io::Result<()> {
        let ids: Vec<u64> = self
            .inflight
            .iter()
            .enumerate()
            .filter(|(_, op)| op.as_ref().is_some_and(|op| op.fd == fd))
            .map(|(i, _)| OP | i as u64)
            .collect();
        for done in self.cancel_ops(&ids)? {
            if done.pooled {
                self.provide_buf(done.buf);
            }
        }
        Ok(())
    }
}

impl Poller for Selector {
    fn register(
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
        let index = usize::try_from(raw).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        if self.entries.len() <= index {
            self.entries.resize_with(index + 1, || None);
        }
        self.entries[index] = Some(Entry {
            slot,
            interest,
            trigger,
            poll: None,
            mask: 0,
            rearm: false,
            closed: false,
            recv: false,
            recv_short: false,
            sends: 0,
            deferred: false,
            id,
        });
        // Armed now, submitted with the next wait (or when the queue fills).
        self.new_poll(raw)
    }

    /// The runtime still has `fd`'s number: the entry is stale if a poll
    /// found its fd closed, or if `fd` is another file than the one
    /// registered. Then it becomes `fd`'s.
    fn replace(
        &mut self,
        fd: Source<'_>,
        _old: u64,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let id = Identity::of(fd)?;
        let entry = self.entry(raw).ok_or_else(not_found)?;
        if !entry.closed && !entry.id.differs(&id) {
            return Err(crate::sys::already_registered());
        }
        // The old poll and operations pin the old file: let them go now.
        self.remove_poll(raw)?;
        self.submit()?;
        self.cancel_fd_ops(raw)?;
        self.register(fd, slot, interest, trigger)
    }

    fn reregister(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let entry = self.entry_mut(raw).ok_or_else(not_found)?;
        if entry.closed {
            return Err(closed());
        }
        entry.slot = slot;
        entry.interest = interest;
        entry.trigger = trigger;
        self.remove_poll(raw)?;
        self.new_poll(raw)
    }

    fn deregister(&mut self, fd: Source<'_>) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        if self.entry(raw).is_none() {
            return Err(not_found());
        }
        self.remove_poll(raw)?;
        self.entries[raw as usize] = None;
        self.cancel_fd_ops(raw)?;
        // Submitted at once: the poll holds a reference to the file, which
        // the caller may be about to close and expects closed.
        self.submit()
    }

    /// Waits for completions and turns them into readiness (and finished
    /// operations, for [`pop_op_done`](NativeIo::pop_op_done)).
    ///
    /// A poll that is due again on a source with a send just queued is
    /// armed only if the wait would block: the entries go in first, and a
    /// send to a socket with room completes right there, in the same
    /// `io_uring_enter`; if that (or anything else) gave completions, this
    /// call returns them and the poll waits for the next one, by which time
    /// a posted-I/O loop has usually posted its next read, whose receive
    /// covers readability. So a posted echo's round trip arms no poll, and
    /// a source still ready is reported by the next `select` at the latest
    /// (the poll is put off once per send, never while a wait blocks).
    fn select(
        &mut self,
        out: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        self.rearm_polls(true)?;
        let have = !self.backlog.is_empty() || !self.ring.completion().is_empty();
        if have {
            self.keep_deferred();
            self.enter(Some(Duration::ZERO))?;
        } else if timeout == Some(Duration::ZERO) || self.deferred.is_empty() {
            self.arm_deferred()?;
            self.enter(timeout)?;
        } else {
            self.submit()?;
            if self.backlog.is_empty() && self.ring.completion().is_empty() {
                self.arm_deferred()?;
                self.enter(timeout)?;
            } else {
                self.keep_deferred();
            }
        }
        self.reap(out, max.max(1));
        Ok(false)
    }

    /// The ring's fd: readable while a completion is in the queue.
    fn os_handle(&self) -> Option<RawFd> {
        Some(self.ring.as_raw_fd())
    }

    /// Before another loop waits on [`os_handle`](Poller::os_handle):
    /// submits the polls (re-armed ones, the doorbell's), so readiness and
    /// rings post completions. True if completions wait in user space.
    fn prepare_external(&mut self) -> io::Result<bool> {
        self.rearm_polls(false)?;
        self.arm_deferred()?;
        self.submit()?;
        Ok(!self.backlog.is_empty())
    }
}

impl Selector {
    /// Queues the polls to re-arm and the doorbell's poll if it ended.
    /// With `defer`, entries with a send in the ring whose poll has not
    /// been put off yet go to `deferred` instead.
    fn rearm_polls(&mut self, defer: bool) -> io::Result<()> {
        let mut list = std::mem::take(&mut self.rearm);
        for &fd in &list {
            let Some(entry) = self.entry_mut(fd) else {
                continue;
            };
            if !entry.rearm || entry.poll.is_some() || entry.closed {
                continue;
            }
            if defer && entry.sends > 0 && !entry.deferred {
                entry.deferred = true;
                self.deferred.push(fd);
            } else {
                self.new_poll(fd)?;
            }
        }
        list.clear();
        if self.rearm.is_empty() {
            self.rearm = list;
        }
        if !self.waker_armed {
            self.arm_waker()?;
        }
        Ok(())
    }

    fn arm_deferred(&mut self) -> io::Result<()> {
        while let Some(fd) = self.deferred.pop() {
            if self
                .entry(fd)
                .is_some_and(|e| e.rearm && e.poll.is_none() && !e.closed)
            {
                self.new_poll(fd)?;
            }
        }
        Ok(())
    }

    /// The deferred polls wait for the next `select`, which arms them.
    fn keep_deferred(&mut self) {
        self.rearm.append(&mut self.deferred);
    }

    /// Submits what is queued and waits for at least one completion, at
    /// most `timeout`. A zero timeout with nothing to submit and no task
    /// work flagged (`IORING_SQ_TASKRUN`) or overflow to flush skips the
    /// syscall: what the kernel has for us is in the completion queue
    /// already.
    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let r = match timeout {
            Some(Duration::ZERO) => {
                let sq = self.ring.submission();
                if sq.is_empty() && !sq.taskrun() && !sq.cq_overflow() {
                    return Ok(());
                }
                drop(sq);
                self.enter_ring(0, None)
            }
            None => self.enter_ring(1, None),
            Some(_) => {
                let ms = timeout_ms(timeout);
                let ts = KernelTimespec {
                    tv_sec: i64::from(ms / 1000),
                    tv_nsec: i64::from(ms % 1000) * 1_000_000,
                };
                self.enter_ring(1, Some(&ts))
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

    /// `io_uring_enter`: submits what is queued and, with `want` 1, waits
    /// for a completion, at most `timeout`. As the crate's
    /// `submit_and_wait` / `submit_with_args` (task work or an overflow
    /// flagged also ask the kernel for events), but naming the ring by its
    /// registered index where it has one (see [`RingFd`]).
    fn enter_ring(&mut self, want: u32, timeout: Option<&KernelTimespec>) -> io::Result<usize> {
        let sq = self.ring.submission();
        let to_submit = sq.len() as u32;
        let events = want > 0 || sq.taskrun() || sq.cq_overflow();
        drop(sq);
        let mut flags = if events { ENTER_GETEVENTS } else { 0 };
        let arg = timeout.map(|ts| GeteventsArg {
            sigmask: 0,
            sigmask_sz: 0,
            min_wait_usec: 0,
            ts: ts as *const KernelTimespec as u64,
        });
        let (argp, argsz) = match &arg {
            Some(a) => {
                flags |= ENTER_EXT_ARG;
                (a as *const GeteventsArg, size_of::<GeteventsArg>())
            }
            None => (std::ptr::null(), 0),
        };
        loop {
            let (fd, registered) = self.ring_name(want > 0);
            let flags = if registered {
                flags | ENTER_REGISTERED_RING
            } else {
                flags
            };
            // SAFETY: `fd` names this ring (its descriptor, or its index
            // in this thread's table of registered rings); `argp` is null
            // or points at a `GeteventsArg` (and its timespec) that live
            // until the call returns, `argsz` its size, as
            // `IORING_ENTER_EXT_ARG` asks. The entries submitted are the
            // caller's, each pushed under its own promise.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_io_uring_enter,
                    fd as libc::c_long,
                    to_submit as libc::c_long,
                    want as libc::c_long,
                    flags as libc::c_long,
                    argp,
                    argsz,
                )
            };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            if registered && e.raw_os_error() == Some(libc::EBADF) {
                // The index is not in this thread's table (a forked
                // child's copy of the loop): the descriptor from now on.
                self.ring_fd = RingFd::Raw;
                continue;
            }
            return Err(e);
        }
    }

    /// How to name the ring to `io_uring_enter` from this thread: its
    /// registered index (`true`), or its descriptor. `register`: a wait,
    /// made on the thread that runs the loop, so the time to register if
    /// that was not tried yet.
    #[inline]
    fn ring_name(&mut self, register: bool) -> (i32, bool) {
        match self.ring_fd {
            RingFd::Registered { index, thread } if thread == thread_mark() => {
                return (index as i32, true);
            }
            RingFd::Unasked if register => {
                self.ring_fd = match register_ring_fd(self.ring.as_raw_fd()) {
                    Some(index) => RingFd::Registered {
                        index,
                        thread: thread_mark(),
                    },
                    None => RingFd::Raw,
                };
                return self.ring_name(false);
            }
            _ => {}
        }
        (self.ring.as_raw_fd(), false)
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
        if self.finish_op(cqe) {
            return;
        }
        let fd = (cqe.user_data >> 32) as RawFd;
        let gen = cqe.user_data as u32;
        let Some(entry) = self.entry_mut(fd) else {
            return; // deregistered: stale
        };
        if entry.poll != Some(gen) {
            return; // removed (reregister, a new mask): stale
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
    super::readiness_bits(mask)
}

impl Drop for Selector {
    /// The kernel may still write into the buffers of reads in flight:
    /// cancel them all and wait for their completions before the buffers
    /// (and the ring) go. Should that wait fail, the buffers are leaked,
    /// never freed under the kernel.
    fn drop(&mut self) {
        let ids: Vec<u64> = self
            .inflight
            .iter()
            .enumerate()
            .filter(|(_, op)| op.is_some())
            .map(|(i, _)| OP | i as u64)
            .collect();
        if self.cancel_ops(&ids).is_err() {
            for op in self.inflight.drain(..).flatten() {
                std::mem::forget(op);
            }
        } else if let Some(pbuf) = self.pbuf.as_mut() {
            // No receive is in flight: the kernel lets go of the ring (a
            // refusal leaks its memory, see `BufRing`'s drop).
            pbuf.unregister(&self.ring);
        }
        if let RingFd::Registered { index, thread } = self.ring_fd {
            if thread == thread_mark() {
                // A failure leaves the registration to the thread's exit.
                unregister_ring_fd(self.ring.as_raw_fd(), index);
            }
        }
    }
}

/// Registers the ring descriptor `ring` in the calling thread's table
/// (`IORING_REGISTER_RING_FDS`, Linux 5.18) and returns its index; `None`
/// if the kernel refuses (too old, or the table's 16 places taken).
fn register_ring_fd(ring: RawFd) -> Option<u32> {
    let mut up = RsrcUpdate {
        offset: u32::MAX, // any free index
        resv: 0,
        data: ring as u64,
    };
    // SAFETY: `up` is one `io_uring_rsrc_update`, valid and writable for
    // the call; the kernel writes the index it chose into `offset`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring as libc::c_long,
            REGISTER_RING_FDS as libc::c_long,
            &mut up as *mut RsrcUpdate,
            1 as libc::c_long,
        )
    };
    (r == 1).then_some(up.offset)
}

/// Undoes [`register_ring_fd`]: frees `index` in the calling thread's
/// table, which must be the thread that registered it. False if the
/// kernel refused.
fn unregister_ring_fd(ring: RawFd, index: u32) -> bool {
    let up = RsrcUpdate {
        offset: index,
        resv: 0,
        data: 0,
    };
    // SAFETY: `up` is one `io_uring_rsrc_update` naming a registration in
    // this thread's table, valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring as libc::c_long,
            UNREGISTER_RING_FDS as libc::c_long,
            &up as *const RsrcUpdate,
            1 as libc::c_long,
        )
    };
    r == 1
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::net::UnixStream;

    use super::*;

    /// A source registered readable with a receive in the ring has no
    /// poll armed (the receive covers readability): the data completes the
    /// receive and nothing else reports it. Once the receive is done the
    /// poll is back, and reports what is left.
    #[test]
    fn no_poll_beside_a_native_receive() {
        let waker = Waker::new().unwrap();
        let mut sel = Selector::new(&waker).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let raw = a.as_raw_fd();
        sel.register(a.as_fd(), 7, Interest::READABLE, Trigger::Level)
            .unwrap();
        let mut out = Vec::new();
        sel.select(&mut out, 16, Some(Duration::ZERO)).unwrap();
        assert!(
            sel.entry(raw).unwrap().poll.is_some(),
            "armed for the caller"
        );
        let id = sel
            .submit_recv(a.as_fd(), 42, Vec::with_capacity(4))
            .unwrap();
        sel.select(&mut out, 16, Some(Duration::ZERO)).unwrap();
        let entry = sel.entry(raw).unwrap();
        assert!(entry.poll.is_none() && entry.recv, "{entry:?}");
        assert!(out.is_empty(), "{out:?}");
        (&b).write_all(b"0123456789").unwrap();
        let mut done = None;
        for _ in 0..100 {
            sel.select(&mut out, 16, Some(Duration::from_secs(5)))
                .unwrap();
            done = sel.pop_op_done();
            if done.is_some() {
                break;
            }
        }
        let done = done.expect("the receive completed");
        assert_eq!((done.op, done.result, &done.buf[..]), (42, 4, &b"0123"[..]));
        assert!(out.is_empty(), "reported beside the receive: {out:?}");
        assert!(!sel.in_flight(id));
        // The rest is the caller's readiness again.
        sel.select(&mut out, 16, Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].0 == 7 && out[0].1.is_readable(), "{out:?}");
    }

    /// Receive streams on older kernels: with buffer rings but single-shot
    /// receives (5.19), each completion's receive is submitted again; with
    /// no buffer rings, streams run on readiness. Either way two streams
    /// on a pool of four buffers that the loop holds until all are out
    /// get every byte, in order, and their ends; a cancel mid-stream ends
    /// it cleanly.
    #[test]
    fn receive_streams_on_older_kernels() {
        use std::net::Shutdown;

        use crate::{Backend, Event, Events, OpKind, Runtime, Token};

        for older in [Older::NoRecvMulti, Older::NoBufRing] {
            OLDER_KERNEL.with(|k| k.set(Some(older)));
            let mut rt = Runtime::builder()
                .backend(Backend::Uring)
                .recv_buffers(4, 512)
                .build()
                .unwrap();
            OLDER_KERNEL.with(|k| k.set(None));
            let pair = || {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
                let s = l.accept().unwrap().0;
                s.set_nonblocking(true).unwrap();
                (c, s)
            };
            let conns: Vec<_> = (0..3).map(|_| pair()).collect();
            let mut ops = Vec::new();
            for (i, (_, s)) in conns.iter().enumerate() {
                rt.register(s, Token(i as u64), Interest::READABLE).unwrap();
                // SAFETY: `conns` outlives the runtime's last call.
                ops.push(unsafe { rt.post_recv_stream(s) }.unwrap());
            }
            let data = |i: usize| -> Vec<u8> { (0..16_384).map(|j| (j * 7 + i) as u8).collect() };
            let writers: Vec<_> = conns
                .iter()
                .enumerate()
                .map(|(i, (c, _))| {
                    let mut c = c.try_clone().unwrap();
                    std::thread::spawn(move || {
                        c.write_all(&data(i)).unwrap();
                        c.shutdown(Shutdown::Write).unwrap();
                    })
                })
                .collect();
            let mut got = vec![Vec::new(); 3];
            let mut ended = [false, false, true];
            let mut held = Vec::new();
            let mut events = Events::with_capacity(64);
            let start = std::time::Instant::now();
            let mut turns = 0;
            while !(ended[0] && ended[1]) {
                assert!(start.elapsed() < Duration::from_secs(20), "{older:?}");
                if turns == 1 {
                    // The third, cancelled while data arrives.
                    let f = rt.cancel_io(ops[2]).unwrap();
                    assert_eq!(f.kind, OpKind::RecvStream);
                }
                rt.wait(&mut events, Some(Duration::from_secs(20))).unwrap();
                turns += 1;
                for e in events.iter() {
                    let &Event::IoDone {
                        op, bytes, error, ..
                    } = e
                    else {
                        continue;
                    };
                    let i = ops.iter().position(|&o| o == op).unwrap();
                    assert!(i < 2 || turns == 1, "{older:?}: an event after the cancel");
                    if i == 2 {
                        continue; // dropped with the stream
                    }
                    if bytes == 0 {
                        assert_eq!(error, None, "{older:?}");
                        rt.take_io(op).unwrap();
                        ended[i] = true;
                    } else {
                        let chunk = rt.take_recv(op).unwrap();
                        got[i].extend_from_slice(&chunk);
                        held.push(chunk);
                    }
                }
                if held.len() >= 4 {
                    for chunk in held.drain(..) {
                        rt.give_back(chunk);
                    }
                }
            }
            for w in writers {
                w.join().unwrap();
            }
            for (i, g) in got.iter().take(2).enumerate() {
                assert!(*g == data(i), "{older:?}: stream {i}'s bytes differ");
            }
        }
    }

    /// Waits on the ring through its registered index on the thread that
    /// first waited (where the kernel has `IORING_REGISTER_RING_FDS`), and
    /// through its descriptor on another: a selector moved to another
    /// thread still waits, wakes and is dropped there.
    #[test]
    fn registered_ring_fd_stays_with_its_thread() {
        let waker = Waker::new().unwrap();
        let mut sel = Selector::new(&waker).unwrap();
        assert_eq!(sel.ring_fd, RingFd::Unasked, "a wait registers, not new");
        let mut out = Vec::new();
        sel.select(&mut out, 16, Some(Duration::from_millis(1)))
            .unwrap();
        let here = thread_mark();
        let registered = register_ring_fd(sel.ring.as_raw_fd()).map(|index| {
            // Only asking whether this kernel has the call: undone at once.
            unregister_ring_fd(sel.ring.as_raw_fd(), index);
        });
        match sel.ring_fd {
            RingFd::Registered { thread, .. } => assert_eq!(thread, here),
            RingFd::Raw => assert!(registered.is_none(), "the kernel has the call"),
            RingFd::Unasked => panic!("a wait did not try to register"),
        }
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        sel.register(a.as_fd(), 7, Interest::READABLE, Trigger::Level)
            .unwrap();
        std::thread::spawn(move || {
            assert_ne!(thread_mark(), here);
            let (fd, registered) = sel.ring_name(true);
            assert!(!registered && fd == sel.ring.as_raw_fd());
            (&b).write_all(b"x").unwrap();
            let mut out = Vec::new();
            for _ in 0..100 {
                sel.select(&mut out, 16, Some(Duration::from_secs(5)))
                    .unwrap();
                if !out.is_empty() {
                    break;
                }
            }
            assert!(out.len() == 1 && out[0].0 == 7, "{out:?}");
            drop(sel);
            drop(a);
        })
        .join()
        .unwrap();
        drop(waker);
    }

    /// 64 ready sources on an 8-entry completion queue (and a 4-entry
    /// submission queue): the kernel keeps what does not fit in its overflow
    /// list (`IORING_FEAT_NODROP`), and every report arrives, once.
    #[test]
    fn an_overflowing_completion_queue_loses_nothing() {
        let waker = Waker::new().unwrap();
        let mut sel = Selector::with_sizes(&waker, 4, 8).unwrap();
        let pairs: Vec<_> = (0..64).map(|_| UnixStream::pair().unwrap()).collect();
        for (i, (a, b)) in pairs.iter().enumerate() {
            a.set_nonblocking(true).unwrap();
            (&*b).write_all(b"x").unwrap();
            sel.register(a.as_fd(), i as u64, Interest::READABLE, Trigger::Oneshot)
                .unwrap();
        }
        let mut out = Vec::new();
        sel.select(&mut out, 1, Some(Duration::ZERO)).unwrap();
        assert_eq!(out.len(), 1);
        assert!(
            sel.ring.submission().cq_overflow() || !sel.backlog.is_empty(),
            "the completion queue should have overflowed"
        );
        for _ in 0..100 {
            if out.len() >= 64 {
                break;
            }
            sel.select(&mut out, 1000, Some(Duration::ZERO)).unwrap();
        }
        let mut slots: Vec<u64> = out.iter().map(|&(slot, _)| slot).collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..64).collect::<Vec<_>>());
        assert!(out.iter().all(|(_, r)| r.is_readable()));
        sel.select(&mut out, 1000, Some(Duration::ZERO)).unwrap();
        assert_eq!(out.len(), 64, "oneshot: each reported once");
    }
}
