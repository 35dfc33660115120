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
//! A native completion backend (overlapped I/O, io_uring) would take the
//! syscalls out of this module and put submissions in their place; the
//! buffer rules above are the ones such a backend needs (the runtime owns
//! the buffer until the operation's completion has been seen).
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

use crate::event::{Interest, Readiness};
use crate::sys::{self, Source};
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
/// dropped, the id matches nothing (an internal slot may be reused, but
/// under a new generation, so an old id never names a new operation short of
/// 2³² reuses of one slot).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(u64);

impl OpId {
    fn new(index: u32, gen: u32) -> OpId {
        OpId(u64::from(gen) << 32 | u64::from(index))
    }

    fn index(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }

    fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpId({}#{})", self.index(), self.gen())
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

struct Op {
    /// The registration's slot.
    reg: u64,
    kind: OpKind,
    buf: Vec<u8>,
    bytes: usize,
    error: Option<io::Error>,
    stage: Stage,
}

struct Entry {
    gen: u32,
    op: Option<Op>,
}

/// Per-registration state, made on the first post on a source.
#[derive(Debug)]
pub(crate) struct SourceOps {
    /// The posted read, if any (an op index).
    read: Option<u32>,
    /// Posted writes in order; the front one is going out.
    writes: VecDeque<u32>,
    /// Unwritten bytes in `writes`.
    queued: usize,
    limit: usize,
    /// Finished operations not yet taken (their events queued or
    /// delivered), so `deregister` can drop them.
    finished: Vec<u32>,
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
}

impl SourceOps {
    /// `spent`: a oneshot registration that has reported since it was last
    /// armed (so the OS has it disarmed, and the caller has had its event).
    pub(crate) fn new(src: Source<'_>, armed: Interest, spent: bool, limit: usize) -> SourceOps {
        SourceOps {
            read: None,
            writes: VecDeque::new(),
            queued: 0,
            limit,
            finished: Vec::new(),
            armed,
            os_armed: !spent,
            caller_armed: !spent,
            maybe_readable: true,
            socket: sys::is_socket(src),
        }
    }

    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// What pending operations need from the OS.
    fn need(&self) -> Interest {
        let mut need = Interest::NONE;
        if self.read.is_some() {
            need |= Interest::READABLE;
        }
        if !self.writes.is_empty() {
            need |= Interest::WRITABLE;
        }
        need
    }

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
    pub(crate) fn wanted(&self, caller: Interest) -> Interest {
        let caller = if self.caller_armed {
            caller
        } else {
            Interest::NONE
        };
        caller | self.need()
    }
}

/// What the runtime must do with the OS registration after an operation
/// step: nothing, or re-register with this interest.
pub(crate) type Rearm = Option<Interest>;

/// All posted operations of one runtime: a slab of generation-tagged
/// entries, and the queue of finished ones whose events are still to be
/// delivered.
pub(crate) struct Ops {
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Finished operations, in the order they finished. An entry whose op
    /// was taken or cancelled meanwhile no longer matches and is skipped.
    done: VecDeque<OpId>,
    pub(crate) default_limit: usize,
}

impl fmt::Debug for Ops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ops")
            .field("live", &(self.entries.len() - self.free.len()))
            .field("done", &self.done.len())
            .finish()
    }
}

impl Ops {
    pub(crate) fn new(default_limit: usize) -> Ops {
        Ops {
            entries: Vec::new(),
            free: Vec::new(),
            done: VecDeque::new(),
            default_limit,
        }
    }

    fn insert(&mut self, op: Op) -> OpId {
        match self.free.pop() {
            Some(i) => {
                let e = &mut self.entries[i as usize];
                e.gen = e.gen.wrapping_add(1);
                e.op = Some(op);
                OpId::new(i, e.gen)
            }
            None => {
                let i = u32::try_from(self.entries.len()).expect("fewer than 2^32 operations");
                self.entries.push(Entry {
                    gen: 0,
                    op: Some(op),
                });
                OpId::new(i, 0)
            }
        }
    }

    fn id(&self, index: u32) -> OpId {
        OpId::new(index, self.entries[index as usize].gen)
    }

    fn get(&self, id: OpId) -> Option<&Op> {
        let e = self.entries.get(id.index())?;
        if e.gen == id.gen() {
            e.op.as_ref()
        } else {
            None
        }
    }

    fn op_mut(&mut self, index: u32) -> &mut Op {
        self.entries[index as usize]
            .op
            .as_mut()
            .expect("a source's operation is live")
    }

    fn remove(&mut self, index: u32) -> Op {
        let op = self.entries[index as usize]
            .op
            .take()
            .expect("a source's operation is live");
        self.free.push(index);
        op
    }

    /// The registration slot of a live operation.
    pub(crate) fn reg_of(&self, id: OpId) -> Option<u64> {
        self.get(id).map(|op| op.reg)
    }

    /// Posts a read. The caller has checked the registration and the
    /// buffer; `src` is that registration's source.
    pub(crate) fn post_read(
        &mut self,
        src: Source<'_>,
        reg: u64,
        io: &mut SourceOps,
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
        let id = self.insert(Op {
            reg,
            kind: OpKind::Read,
            buf,
            bytes: 0,
            error: None,
            stage: Stage::Pending,
        });
        io.read = Some(id.index() as u32);
        if io.maybe_readable {
            self.try_read(src, io, trigger);
        }
        Ok(id)
    }

    /// Posts a write.
    pub(crate) fn post_write(
        &mut self,
        src: Source<'_>,
        reg: u64,
        io: &mut SourceOps,
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
        io.queued += buf.len();
        let id = self.insert(Op {
            reg,
            kind: OpKind::Write,
            buf,
            bytes: 0,
            error: None,
            stage: Stage::Pending,
        });
        io.writes.push_back(id.index() as u32);
        if io.writes.len() == 1 {
            self.flush(src, io);
        }
        Ok(id)
    }

    /// After a post: what the OS registration must change to, if anything.
    /// Interest is only ever added here; taking it away waits for readiness
    /// that nobody wants (see the module doc).
    pub(crate) fn after_post(io: &SourceOps, caller: Interest, trigger: Trigger) -> Rearm {
        let want = io.wanted(caller);
        if trigger == Trigger::Oneshot && !io.os_armed {
            io.busy().then_some(want)
        } else {
            io.need().exceeds(io.armed).then_some(io.armed | want)
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
            if ready.intersects(READ_SIDE.union(Readiness::ERROR)) {
                self.try_read(src, io, trigger);
                consumed = true;
            }
        }
        if !io.writes.is_empty() {
            left = left.without(WRITE_SIDE);
            if ready.intersects(WRITE_SIDE.union(Readiness::ERROR)) {
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
    pub(crate) fn armed(io: &mut SourceOps, armed: Interest) {
        io.armed = armed;
        io.os_armed = !armed.is_none();
    }

    /// Re-arming the source failed: the pending operations cannot make
    /// progress, so they end with that error.
    pub(crate) fn fail_pending(&mut self, io: &mut SourceOps, e: &io::Error) {
        if let Some(i) = io.read.take() {
            self.op_mut(i).error = Some(copy_error(e));
            self.finish(io, i);
        }
        while let Some(i) = io.writes.pop_front() {
            self.op_mut(i).error = Some(copy_error(e));
            self.finish(io, i);
        }
        io.queued = 0;
    }

    fn try_read(&mut self, src: Source<'_>, io: &mut SourceOps, trigger: Trigger) {
        let Some(i) = io.read else { return };
        let op = self.op_mut(i);
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
                io.read = None;
                self.finish(io, i);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.maybe_readable = false,
            Err(e) => {
                op.error = Some(e);
                io.read = None;
                self.finish(io, i);
            }
        }
    }

    /// Writes from the front of the queue until it is empty or the socket
    /// is full.
    fn flush(&mut self, src: Source<'_>, io: &mut SourceOps) {
        while let Some(&i) = io.writes.front() {
            let socket = io.socket;
            let op = self.op_mut(i);
            while op.bytes < op.buf.len() {
                match sys::write(src, &op.buf[op.bytes..], socket) {
                    Ok(0) => {
                        op.error = Some(io::Error::from(io::ErrorKind::WriteZero));
                        break;
                    }
                    Ok(n) => {
                        op.bytes += n;
                        io.queued -= n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) => {
                        op.error = Some(e);
                        break;
                    }
                }
            }
            io.queued -= op.buf.len() - op.bytes;
            io.writes.pop_front();
            self.finish(io, i);
        }
    }

    fn finish(&mut self, io: &mut SourceOps, index: u32) {
        self.op_mut(index).stage = Stage::Queued;
        io.finished.push(index);
        let id = self.id(index);
        self.done.push_back(id);
    }

    /// Whether finished operations wait for delivery.
    pub(crate) fn has_done(&self) -> bool {
        !self.done.is_empty()
    }

    /// The next finished operation to deliver: its id, registration slot,
    /// kind, bytes and error kind. Marks it delivered.
    pub(crate) fn pop_done(&mut self) -> Option<(OpId, u64, OpKind, usize, Option<io::ErrorKind>)> {
        while let Some(id) = self.done.pop_front() {
            let Some(e) = self.entries.get_mut(id.index()) else {
                continue;
            };
            if e.gen != id.gen() {
                continue;
            }
            let Some(op) = e.op.as_mut() else { continue };
            if op.stage != Stage::Queued {
                continue;
            }
            op.stage = Stage::Delivered;
            return Some((
                id,
                op.reg,
                op.kind,
                op.bytes,
                op.error.as_ref().map(io::Error::kind),
            ));
        }
        None
    }

    /// Takes a finished operation. `None` if `id` is unknown or pending.
    pub(crate) fn take(&mut self, io: &mut SourceOps, id: OpId) -> Option<Finished> {
        let op = self.get(id)?;
        if op.stage == Stage::Pending {
            return None;
        }
        let index = id.index() as u32;
        if let Some(pos) = io.finished.iter().position(|&i| i == index) {
            io.finished.swap_remove(pos);
        }
        Some(finished(self.remove(index)))
    }

    /// Cancels an operation: a pending one is withdrawn, a finished one is
    /// taken. Either way no event for it is delivered afterwards.
    pub(crate) fn cancel(&mut self, io: &mut SourceOps, id: OpId) -> Option<Finished> {
        let op = self.get(id)?;
        if op.stage != Stage::Pending {
            return self.take(io, id);
        }
        let index = id.index() as u32;
        if io.read == Some(index) {
            io.read = None;
        } else if let Some(pos) = io.writes.iter().position(|&i| i == index) {
            io.writes.remove(pos);
            let op = self.op_mut(index);
            io.queued -= op.buf.len() - op.bytes;
        }
        Some(finished(self.remove(index)))
    }

    /// Drops every operation of a source (it is being deregistered).
    pub(crate) fn drop_source(&mut self, io: SourceOps) {
        for i in io.read.into_iter().chain(io.writes).chain(io.finished) {
            self.remove(i);
        }
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
