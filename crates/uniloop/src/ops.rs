//! Completion-mode ("posted") I/O: post a read or a write on a registered
//! source, get one [`Event::IoDone`](crate::Event::IoDone) when it has
//! finished, take the buffer back with [`Runtime::take_io`].
//!
//! # The shape
//!
//! * A buffer is a plain `Vec<u8>`, handed over by value and handed back by
//!   [`Runtime::take_io`] or [`Runtime::cancel_io`] as a [`Finished`]. A read
//!   lands in the vector's spare capacity (`len..capacity`) with no copy in
//!   between, and its length grows by what arrived; a write sends
//!   `buf[..len]`, all of it.
//! * The event is `Copy` like every [`Event`](crate::Event): it names the
//!   token, the [`OpId`] the post returned, the [`OpKind`], the byte count
//!   and an `io::ErrorKind`. What is not `Copy` — the buffer and the full
//!   `io::Error` — stays with the runtime until taken.
//! * A refused post hands its buffer back in the [`OpError`]: nothing is
//!   lost on bad input.
//!
//! # How it runs on a readiness backend
//!
//! epoll, poll, kqueue and IOCP (whose AFD polls are readiness too) all run
//! the same emulation, written once here above `sys/`:
//!
//! * **Try at once.** A posted read is attempted in `post_read` itself
//!   (unless the last attempt on that source found it empty and no readiness
//!   has been seen since); a posted write goes out in `post_write` as far as
//!   the socket takes it. What finishes there is queued and delivered by the
//!   next `wait` without blocking.
//! * **Else arm the interest and finish on readiness.** The OS is asked for
//!   the caller's interest plus what pending operations need (readable for a
//!   read, writable for queued writes), with the caller's trigger. Readiness
//!   for a source with operations pending drives the syscalls inside `wait`;
//!   what those operations consume — readable and read-closed for a read,
//!   writable and write-closed for writes, and an error for either — is not
//!   reported again as [`Event::Io`](crate::Event::Io).
//! * **Interest changes cost as little as they can.** Interest is added when
//!   an operation first needs it; writable interest the caller did not ask
//!   for is dropped as soon as the writes are out (a socket is nearly always
//!   writable, so leaving it would wake the loop for nothing); readable
//!   interest is dropped lazily, only if readiness arrives with no read
//!   posted — so the usual loop (read done, post the next read) changes
//!   nothing with the OS.
//!
//! # How it runs on io_uring
//!
//! The same "try at once", and then, for a socket, a native submission in
//! place of armed interest: the read's buffer goes to the ring as an
//! `IORING_OP_RECV`, the front write's unwritten rest as an
//! `IORING_OP_SEND` (writes behind it wait their turn here, so they go out
//! in order). While the kernel has a buffer it belongs to the selector, not
//! to the operation (whose `kernel` names the submission); its completion
//! brings it back through `Ops::on_native`, and a cancel
//! (`Ops::cancel`) waits for the kernel to let go of it first. Pipes and
//! other non-sockets keep the readiness emulation. IOCP still emulates.
//!
//! # Limits
//!
//! * One read in flight per source; a second is refused with
//!   `AlreadyExists`.
//! * Writes queue in order, up to a per-source byte limit
//!   ([`Builder::write_limit`](crate::Builder::write_limit), default 1 MiB,
//!   [`Runtime::set_write_limit`] per source): a write that would take the
//!   unwritten bytes queued on a source past it is refused with
//!   `WouldBlock`. A write on a source with nothing queued is always taken,
//!   whatever its size — it is the caller's memory already — and so is an
//!   empty write (it holds no data).

use std::collections::VecDeque;
use std::error;
use std::fmt;
use std::io;

use crate::interest::Interest;
use crate::readiness::Readiness;
use crate::sys::{self, OpDone, Selector, Source};
use crate::Trigger;

#[cfg(doc)]
use crate::Runtime;

/// The default for [`Builder::write_limit`](crate::Builder::write_limit).
pub(crate) const DEFAULT_WRITE_LIMIT: usize = 1 << 20;

/// Names one posted read or write: returned by
/// [`Runtime::post_read`] / [`Runtime::post_write`], carried by
/// [`Event::IoDone`](crate::Event::IoDone), and given to
/// [`Runtime::take_io`] / [`Runtime::cancel_io`].
///
/// An id is tied to its operation: once the operation is taken, cancelled or
/// dropped, the id matches nothing. It names the registration's internal
/// slot and a sequence number that slot never repeats (its counter survives
/// deregistration, so an old id never names a new operation short of 2³²
/// posts through one slot).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(u64);

impl OpId {
    pub(crate) fn new(index: u32, seq: u32) -> OpId {
        OpId(u64::from(seq) << 32 | u64::from(index))
    }

    /// The id from its bits (a native submission's tag).
    pub(crate) fn from_bits(bits: u64) -> OpId {
        OpId(bits)
    }

    /// Its bits.
    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    /// The registry index of the operation's source.
    pub(crate) fn index(self) -> u32 {
        self.0 as u32
    }

    fn seq(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpId({}#{})", self.index(), self.seq())
    }
}

/// Whether an operation reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// [`Runtime::post_read`].
    Read,
    /// [`Runtime::post_write`].
    Write,
}

/// What a finished or cancelled operation hands back: the caller's buffer
/// and the outcome.
#[derive(Debug)]
#[non_exhaustive]
pub struct Finished {
    /// Read or write.
    pub kind: OpKind,
    /// The caller's buffer. A read: the bytes that arrived are appended (its
    /// length grew by `bytes`). A write: as it was given.
    pub buf: Vec<u8>,
    /// Bytes transferred (for a cancelled write, how much had gone out).
    pub bytes: usize,
    /// The error it ended with, if any.
    pub error: Option<io::Error>,
}

/// A refused [`post_read`](Runtime::post_read) or
/// [`post_write`](Runtime::post_write): why, and the caller's buffer, handed
/// back untouched.
///
/// Converts into `io::Error` (dropping the buffer), so `?` works in a
/// function returning `io::Result`.
pub struct OpError {
    error: io::Error,
    buf: Vec<u8>,
}

impl OpError {
    pub(crate) fn new(kind: io::ErrorKind, msg: &'static str, buf: Vec<u8>) -> OpError {
        OpError {
            error: io::Error::new(kind, msg),
            buf,
        }
    }

    pub(crate) fn from_parts(error: io::Error, buf: Vec<u8>) -> OpError {
        OpError { error, buf }
    }

    /// Why the post was refused.
    pub fn error(&self) -> &io::Error {
        &self.error
    }

    /// The error's kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.error.kind()
    }

    /// The buffer, handed back.
    pub fn into_buf(self) -> Vec<u8> {
        self.buf
    }

    /// The error and the buffer.
    pub fn into_parts(self) -> (io::Error, Vec<u8>) {
        (self.error, self.buf)
    }
}

impl fmt::Debug for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpError")
            .field("error", &self.error)
            .field("buf_len", &self.buf.len())
            .finish()
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl error::Error for OpError {
    fn source(&self) -> Option<&(dyn error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<OpError> for io::Error {
    fn from(e: OpError) -> io::Error {
        e.error
    }
}

/// Where an operation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for the source.
    Pending,
    /// Finished; its event is queued.
    Queued,
    /// Finished and its event delivered; waiting for `take_io`.
    Delivered,
}

/// One operation. It lives inside its source's [`SourceOps`] for its whole
/// life — as the read or in the write queue, then as the finished read or
/// write — so a post, its completion and its `take_io` touch that source's
/// state and nothing else (no shared slab, no second lookup), and in the
/// usual rhythm (post, finish, take, post again) not even a heap block
/// beside it.
struct Op {
    seq: u32,
    kind: OpKind,
    stage: Stage,
    /// The caller's buffer — empty while the kernel has it (`kernel`).
    buf: Vec<u8>,
    /// A native (io_uring) submission's id while it is in flight: the
    /// buffer is then the selector's, until its completion is seen.
    kernel: Option<u64>,
    /// The buffer's length when posted (a write's size), known also while
    /// the kernel has the buffer.
    len: usize,
    bytes: usize,
    error: Option<io::Error>,
}

impl Op {
    fn new(seq: u32, kind: OpKind, buf: Vec<u8>) -> Op {
        Op {
            seq,
            kind,
            stage: Stage::Pending,
            len: buf.len(),
            buf,
            kernel: None,
            bytes: 0,
            error: None,
        }
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Op")
            .field("seq", &self.seq)
            .field("kind", &self.kind)
            .field("stage", &self.stage)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// Per-registration state, made on the first post on a source. Dropping it
/// (deregistration) drops every buffer it holds.
#[derive(Debug)]
pub(crate) struct SourceOps {
    /// The registry index of the source, for the ids of its operations.
    index: u32,
    /// The posted read, if any.
    read: Option<Op>,
    /// Posted writes in order; the front one is going out.
    writes: VecDeque<Op>,
    /// Unwritten bytes in `writes`.
    queued: usize,
    limit: usize,
    /// The last finished read and write not yet taken (their events queued
    /// or delivered), kept in place.
    read_done: Option<Op>,
    write_done: Option<Op>,
    /// More finished operations not yet taken, when the caller posts again
    /// before taking the last one. Searched by scanning.
    done: Vec<Op>,
    /// The interest the OS has now.
    armed: Interest,
    /// Oneshot: whether the OS registration is still armed.
    os_armed: bool,
    /// Oneshot: whether the caller's own interest is still armed (it is
    /// spent by the one `Event::Io` it gives).
    caller_armed: bool,
    /// Whether a read might find data: false after a read found the source
    /// empty, until readiness says otherwise. Saves the `read(2)` a post
    /// would make at once when the answer is known to be "would block".
    maybe_readable: bool,
    socket: bool,
    /// What does not finish at once goes to the ring as a native
    /// submission (io_uring, sockets) instead of waiting for readiness.
    native: bool,
}

impl SourceOps {
    /// `index`: the source's registry index. `spent`: a oneshot
    /// registration that has reported since it was last armed (so the OS has
    /// it disarmed, and the caller has had its event).
    pub(crate) fn new(
        src: Source<'_>,
        index: u32,
        armed: Interest,
        spent: bool,
        limit: usize,
        native: bool,
    ) -> SourceOps {
        let socket = sys::is_socket(src);
        SourceOps {
            index,
            read: None,
            writes: VecDeque::new(),
            queued: 0,
            limit,
            read_done: None,
            write_done: None,
            done: Vec::new(),
            armed,
            os_armed: !spent,
            caller_armed: !spent,
            maybe_readable: true,
            socket,
            native: native && socket,
        }
    }

    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// What pending operations need from the OS.
    #[inline]
    fn need(&self) -> Interest {
        let mut need = Interest::NONE;
        if self.native {
            return need; // the ring does the waiting
        }
        if self.read.is_some() {
            need |= Interest::READABLE;
        }
        if !self.writes.is_empty() {
            need |= Interest::WRITABLE;
        }
        need
    }

    #[inline]
    fn busy(&self) -> bool {
        self.read.is_some() || !self.writes.is_empty()
    }

    /// The caller re-registered: the OS now has `armed`, everything armed.
    pub(crate) fn rearmed(&mut self, armed: Interest) {
        self.armed = armed;
        self.os_armed = true;
        self.caller_armed = true;
        self.maybe_readable = true;
    }

    /// The caller's new interest plus what pending operations need.
    pub(crate) fn with_needs(&self, caller: Interest) -> Interest {
        caller | self.need()
    }

    /// What to ask of the OS for `caller` interest with this state.
    #[inline]
    pub(crate) fn wanted(&self, caller: Interest) -> Interest {
        let caller = if self.caller_armed {
            caller
        } else {
            Interest::NONE
        };
        caller | self.need()
    }

    /// Keeps a finished operation until it is taken.
    #[inline]
    fn keep(&mut self, op: Op) {
        let slot = match op.kind {
            OpKind::Read => &mut self.read_done,
            OpKind::Write => &mut self.write_done,
        };
        if let Some(older) = slot.replace(op) {
            self.done.push(older);
        }
    }

    /// The finished operation `seq`, wherever it is kept.
    #[inline]
    fn finished_mut(&mut self, seq: u32) -> Option<&mut Op> {
        if self.read_done.as_ref().is_some_and(|op| op.seq == seq) {
            return self.read_done.as_mut();
        }
        if self.write_done.as_ref().is_some_and(|op| op.seq == seq) {
            return self.write_done.as_mut();
        }
        self.done.iter_mut().find(|op| op.seq == seq)
    }

    /// Marks the finished operation `id` delivered, if it is finished and
    /// its event not yet delivered, and says what its event carries.
    #[inline]
    pub(crate) fn deliver(&mut self, id: OpId) -> Option<(OpKind, usize, Option<io::ErrorKind>)> {
        let op = self.finished_mut(id.seq())?;
        if op.stage != Stage::Queued {
            return None;
        }
        op.stage = Stage::Delivered;
        Some((op.kind, op.bytes, op.error.as_ref().map(io::Error::kind)))
    }

    /// Takes a finished operation. `None` if `id` is unknown or pending.
    #[inline]
    pub(crate) fn take(&mut self, id: OpId) -> Option<Finished> {
        let seq = id.seq();
        let op = if self.read_done.as_ref().is_some_and(|op| op.seq == seq) {
            self.read_done.take()
        } else if self.write_done.as_ref().is_some_and(|op| op.seq == seq) {
            self.write_done.take()
        } else {
            let pos = self.done.iter().position(|op| op.seq == seq)?;
            Some(self.done.swap_remove(pos))
        };
        op.map(finished)
    }

    /// Cancels an operation: a pending one is withdrawn, a finished one is
    /// taken. Either way no event for it is delivered afterwards.
    pub(crate) fn cancel(&mut self, id: OpId) -> Option<Finished> {
        let seq = id.seq();
        if self.read.as_ref().is_some_and(|op| op.seq == seq) {
            return self.read.take().map(finished);
        }
        if let Some(pos) = self.writes.iter().position(|op| op.seq == seq) {
            let op = self.writes.remove(pos).expect("a queued write");
            self.queued -= op.buf.len() - op.bytes;
            return Some(finished(op));
        }
        self.take(id)
    }
}

/// What the runtime must do with the OS registration after an operation
/// step: nothing, or re-register with this interest.
pub(crate) type Rearm = Option<Interest>;

/// The runtime's side of posted operations: the order in which finished
/// operations are to be delivered (the operations themselves live with
/// their sources), and the default write limit.
pub(crate) struct Ops {
    /// Finished operations, in the order they finished. An entry whose op
    /// was taken or cancelled meanwhile no longer matches and is skipped.
    done: VecDeque<OpId>,
    pub(crate) default_limit: usize,
}

impl fmt::Debug for Ops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ops")
            .field("done", &self.done.len())
            .finish()
    }
}

impl Ops {
    pub(crate) fn new(default_limit: usize) -> Ops {
        Ops {
            done: VecDeque::new(),
            default_limit,
        }
    }

    /// Posts a read as operation `seq`. The caller has checked the
    /// registration; `src` is that registration's source.
    #[inline]
    pub(crate) fn post_read(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
        seq: u32,
        buf: Vec<u8>,
        trigger: Trigger,
    ) -> Result<OpId, OpError> {
        if io.read.is_some() {
            return Err(OpError::new(
                io::ErrorKind::AlreadyExists,
                "a read is already posted on this source",
                buf,
            ));
        }
        if buf.len() == buf.capacity() {
            return Err(OpError::new(
                io::ErrorKind::InvalidInput,
                "a posted read needs a buffer with spare capacity (Vec::with_capacity)",
                buf,
            ));
        }
        io.read = Some(Op::new(seq, OpKind::Read, buf));
        if io.maybe_readable {
            self.try_read(src, io, trigger);
        }
        let id = OpId::new(io.index, seq);
        if io.native {
            if let Some(op) = io.read.as_mut() {
                let buf = std::mem::take(&mut op.buf);
                match sel.submit_recv(src, id.bits(), buf) {
                    Ok(k) => op.kernel = Some(k),
                    Err((e, buf)) => {
                        io.read = None;
                        return Err(OpError::from_parts(e, buf));
                    }
                }
            }
        }
        Ok(id)
    }

    /// Posts a write as operation `seq`.
    #[inline]
    pub(crate) fn post_write(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
        seq: u32,
        buf: Vec<u8>,
    ) -> Result<OpId, OpError> {
        if !buf.is_empty()
            && !io.writes.is_empty()
            && io.queued.saturating_add(buf.len()) > io.limit
        {
            return Err(OpError::new(
                io::ErrorKind::WouldBlock,
                "the source's write queue is at its limit (Runtime::set_write_limit)",
                buf,
            ));
        }
        let mut op = Op::new(seq, OpKind::Write, buf);
        let first = io.writes.is_empty();
        if first && self.write_out(src, io.socket, &mut op) {
            // All out (or failed) at once: it never enters the queue.
            self.finish(io, op);
        } else {
            io.queued += op.buf.len() - op.bytes;
            io.writes.push_back(op);
            if first && io.native {
                self.send_front(sel, src, io);
            }
        }
        Ok(OpId::new(io.index, seq))
    }

    /// Hands the front write's unwritten rest to the ring. A refused
    /// submission ends the write with its error.
    fn send_front(&mut self, sel: &mut Selector, src: Source<'_>, io: &mut SourceOps) {
        let Some(op) = io.writes.front_mut() else {
            return;
        };
        let id = OpId::new(io.index, op.seq);
        let buf = std::mem::take(&mut op.buf);
        match sel.submit_send(src, id.bits(), buf, op.bytes) {
            Ok(k) => op.kernel = Some(k),
            Err((e, buf)) => {
                op.buf = buf;
                op.error = Some(e);
                let op = io.writes.pop_front().expect("the front write");
                io.queued -= op.buf.len() - op.bytes;
                self.finish(io, op);
                // The next one gets its own try.
                self.send_front(sel, src, io);
            }
        }
    }

    /// A native submission finished: complete its operation, or send the
    /// rest of a write the kernel took only part of.
    pub(crate) fn on_native(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
        done: OpDone,
    ) {
        let seq = OpId::from_bits(done.op).seq();
        if io
            .read
            .as_ref()
            .is_some_and(|op| op.seq == seq && op.kernel.is_some())
        {
            let mut op = io.read.take().expect("the posted read");
            op.kernel = None;
            op.buf = done.buf;
            match usize::try_from(done.result) {
                Ok(n) => op.bytes = n,
                Err(_) => op.error = Some(io::Error::from_raw_os_error(-done.result)),
            }
            self.finish(io, op);
            return;
        }
        let Some(op) = io
            .writes
            .front_mut()
            .filter(|op| op.seq == seq && op.kernel.is_some())
        else {
            return; // withdrawn meanwhile: its buffer goes
        };
        op.kernel = None;
        op.buf = done.buf;
        let left = op.buf.len() - op.bytes;
        let finished = match usize::try_from(done.result) {
            Ok(0) if left > 0 => {
                op.error = Some(io::Error::from(io::ErrorKind::WriteZero));
                true
            }
            Ok(n) => {
                let n = n.min(left);
                op.bytes += n;
                io.queued -= n;
                op.bytes == op.buf.len()
            }
            Err(_) => {
                op.error = Some(io::Error::from_raw_os_error(-done.result));
                true
            }
        };
        if finished {
            let op = io.writes.pop_front().expect("the front write");
            io.queued -= op.buf.len() - op.bytes;
            self.finish(io, op);
        }
        self.send_front(sel, src, io);
    }

    /// [`SourceOps::cancel`] for a source whose operations may be in the
    /// ring: a read or write in flight is cancelled there and waited for
    /// (its buffer is the kernel's until then). If it finished first, its
    /// real outcome is handed back.
    pub(crate) fn cancel(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
        id: OpId,
    ) -> Option<Finished> {
        let seq = id.seq();
        let in_kernel = |op: &Op| op.seq == seq && op.kernel.is_some();
        let read = io.read.as_ref().is_some_and(in_kernel);
        let write = io.writes.front().is_some_and(in_kernel);
        if !read && !write {
            return io.cancel(id);
        }
        let mut op = if read {
            io.read.take().expect("the posted read")
        } else {
            io.writes.pop_front().expect("the front write")
        };
        let unwritten = op.len - op.bytes;
        let k = op.kernel.take().expect("in the kernel");
        match sel.cancel_op(k) {
            Ok(Some(done)) => {
                op.buf = done.buf;
                match usize::try_from(done.result) {
                    Ok(n) => op.bytes += n,
                    Err(_) if done.cancelled => {}
                    Err(_) => op.error = Some(io::Error::from_raw_os_error(-done.result)),
                }
            }
            // Not found (cannot be: it was in flight), or the wait failed:
            // the buffer stays with the selector, which drops it when the
            // completion comes (or leaks it rather than free it under the
            // kernel).
            Ok(None) => {}
            Err(e) => op.error = Some(e),
        }
        if write {
            // Sent or withdrawn, none of it is queued any more.
            io.queued -= unwritten;
            self.send_front(sel, src, io);
        }
        Some(finished(op))
    }

    /// After a post: what the OS registration must change to, if anything.
    /// Interest is only ever added here; taking it away waits for readiness
    /// that nobody wants (see the module doc).
    #[inline]
    pub(crate) fn after_post(io: &SourceOps, caller: Interest, trigger: Trigger) -> Rearm {
        if trigger == Trigger::Oneshot && !io.os_armed {
            io.busy().then(|| io.wanted(caller))
        } else {
            io.need()
                .exceeds(io.armed)
                .then(|| io.armed | io.wanted(caller))
        }
    }

    /// Readiness for a source with operation state: runs what it unblocks,
    /// and returns what is left for the caller's `Event::Io` (empty for
    /// nothing) and how the OS registration must change.
    pub(crate) fn on_ready(
        &mut self,
        src: Source<'_>,
        io: &mut SourceOps,
        ready: Readiness,
        caller: Interest,
        trigger: Trigger,
    ) -> (Readiness, Rearm) {
        if trigger == Trigger::Oneshot {
            io.os_armed = false;
        }
        const READ_SIDE: Readiness = Readiness::READABLE.union(Readiness::READ_CLOSED);
        const WRITE_SIDE: Readiness = Readiness::WRITABLE.union(Readiness::WRITE_CLOSED);
        let mut left = ready;
        let mut consumed = false;
        if ready.intersects(READ_SIDE.union(Readiness::ERROR)) {
            io.maybe_readable = true;
        }
        if io.read.is_some() {
            left = left.without(READ_SIDE);
            if !io.native && ready.intersects(READ_SIDE.union(Readiness::ERROR)) {
                self.try_read(src, io, trigger);
                consumed = true;
            }
        }
        if !io.writes.is_empty() {
            left = left.without(WRITE_SIDE);
            if !io.native && ready.intersects(WRITE_SIDE.union(Readiness::ERROR)) {
                self.flush(src, io);
                consumed = true;
            }
        }
        if consumed {
            left = left.without(Readiness::ERROR);
        }
        // Interest only operations asked for is not the caller's to see.
        if !caller.is_readable() {
            left = left.without(Readiness::READABLE);
        }
        if !caller.is_writable() {
            left = left.without(Readiness::WRITABLE);
        }
        if !caller.is_priority() {
            left = left.without(Readiness::PRIORITY);
        }
        if trigger == Trigger::Oneshot {
            if !io.caller_armed {
                left = Readiness::EMPTY;
            } else if !left.is_empty() {
                io.caller_armed = false;
            }
        }

        let want = io.wanted(caller);
        let rearm = if trigger == Trigger::Oneshot {
            // The report disarmed the registration; arm it again for
            // operations still waiting, and for the caller's interest if
            // the caller has not had its one event yet.
            (!want.is_none()).then_some(want)
        } else if io.need().exceeds(io.armed) {
            Some(io.armed | want)
        } else if io.armed.exceeds(want) && unwanted(ready, io.armed, want) {
            // Readiness nobody wants (writable with the writes out, readable
            // with no read posted): stop asking for it.
            Some(want)
        } else {
            None
        };
        (left, rearm)
    }

    /// The OS registration now has `armed` (after a successful rearm).
    #[inline]
    pub(crate) fn armed(io: &mut SourceOps, armed: Interest) {
        io.armed = armed;
        io.os_armed = !armed.is_none();
    }

    /// Re-arming the source failed: the pending operations cannot make
    /// progress, so they end with that error.
    pub(crate) fn fail_pending(&mut self, io: &mut SourceOps, e: &io::Error) {
        if io.native {
            // Its operations wait in the ring, not on the registration.
            return;
        }
        if let Some(mut op) = io.read.take() {
            op.error = Some(copy_error(e));
            self.finish(io, op);
        }
        while let Some(mut op) = io.writes.pop_front() {
            op.error = Some(copy_error(e));
            self.finish(io, op);
        }
        io.queued = 0;
    }

    #[inline]
    fn try_read(&mut self, src: Source<'_>, io: &mut SourceOps, trigger: Trigger) {
        let Some(op) = io.read.as_mut() else { return };
        let room = op.buf.capacity() - op.buf.len();
        match sys::read(src, &mut op.buf) {
            Ok(n) => {
                op.bytes = n;
                // A short read emptied the socket's receive queue. On a
                // level or oneshot registration the OS re-checks the state
                // when asked again, so the next post can skip trying and
                // wait; an edge registration only reports new data, so there
                // only "would block" proves the source empty.
                if n > 0 && n < room && trigger != Trigger::Edge {
                    io.maybe_readable = false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                io.maybe_readable = false;
                return;
            }
            Err(e) => op.error = Some(e),
        }
        let op = io.read.take().expect("the posted read");
        self.finish(io, op);
    }

    /// Writes what is left of `op`. True when it has finished: all of it
    /// out, or an error; false when the source is full.
    #[inline]
    fn write_out(&mut self, src: Source<'_>, socket: bool, op: &mut Op) -> bool {
        while op.bytes < op.buf.len() {
            match sys::write(src, &op.buf[op.bytes..], socket) {
                Ok(0) => {
                    op.error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    return true;
                }
                Ok(n) => op.bytes += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => {
                    op.error = Some(e);
                    return true;
                }
            }
        }
        true
    }

    /// Writes from the front of the queue until it is empty or the socket
    /// is full.
    fn flush(&mut self, src: Source<'_>, io: &mut SourceOps) {
        while let Some(op) = io.writes.front_mut() {
            let before = op.bytes;
            let done = self.write_out(src, io.socket, op);
            // What went out, and on an error what never will.
            let left_before = op.buf.len() - before;
            let left_now = if done { 0 } else { op.buf.len() - op.bytes };
            io.queued -= left_before - left_now;
            if !done {
                return;
            }
            let op = io.writes.pop_front().expect("the front write");
            self.finish(io, op);
        }
    }

    #[inline]
    fn finish(&mut self, io: &mut SourceOps, mut op: Op) {
        op.stage = Stage::Queued;
        self.done.push_back(OpId::new(io.index, op.seq));
        io.keep(op);
    }

    /// Whether finished operations wait for delivery.
    #[inline]
    pub(crate) fn has_done(&self) -> bool {
        !self.done.is_empty()
    }

    /// The next finished operation in delivery order (it may have been
    /// taken or cancelled since: [`SourceOps::deliver`] tells).
    #[inline]
    pub(crate) fn pop_done(&mut self) -> Option<OpId> {
        self.done.pop_front()
    }
}

fn finished(op: Op) -> Finished {
    Finished {
        kind: op.kind,
        buf: op.buf,
        bytes: op.bytes,
        error: op.error,
    }
}

/// Whether `ready` shows a condition the OS was asked for (`armed`) that
/// nobody wants now (`want`).
fn unwanted(ready: Readiness, armed: Interest, want: Interest) -> bool {
    let extra = armed.without(want);
    (extra.is_readable() && ready.is_readable()) || (extra.is_writable() && ready.is_writable())
}

/// `io::Error` is not `Clone`; one error ending several operations is
/// copied by OS code, or by kind and message.
fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}
