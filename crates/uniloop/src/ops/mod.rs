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
//! # The parts
//!
//! * This module: the public types, and `Ops`, the runtime's side —
//!   posting, cancelling, re-arming the OS registration for what pending
//!   operations need, and the order in which finished operations are
//!   delivered.
//! * `source`: per-source state (`SourceOps`): the posted read, the write
//!   queue, the finished operations not yet taken, the write limit's
//!   account. Each operation is one small value (`Op`) that moves from the
//!   read slot or the write queue to the finished ones and out with
//!   `take_io`; every step is O(1), however many operations are queued or
//!   finished on the source.
//! * `emulated`: what an operation is on a readiness backend — a syscall
//!   tried at once and again on readiness.
//! * `native`: what it is on io_uring — a ring submission.
//! * `stream`: receive streams ([`Runtime::post_recv_stream`]) and the
//!   pool of receive buffers they share.
//! * `recv_buf`: their data types — the chunk handed out ([`RecvBuf`]),
//!   where dropped ones go back, and the per-source stream state that
//!   `source` holds (so `source` needs nothing of `stream`).
//!
//! # How it runs on a readiness backend
//!
//! epoll, poll, kqueue and IOCP (whose AFD polls are readiness too) all run
//! the same emulation, written once here above `sys/`:
//!
//! * **Try at once.** A posted read is attempted in `post_read` itself
//!   (unless the last attempt on that source found it empty and no readiness
//!   has been seen since); what finishes there is queued and delivered by
//!   the next `wait` without blocking.
//! * **Hold writes for the rest of the turn**
//!   ([`Builder::hold_writes`](crate::Builder::hold_writes), off by
//!   default: then a posted write goes out in `post_write` as far as the
//!   socket takes it). A write posted on a source
//!   with nothing queued is held until the loop next calls `wait` (or
//!   deregisters the source, or is dropped), and the writes posted on that
//!   source meanwhile join it: at the start of `wait` they go out together
//!   in one call, as far as the socket takes them. A server that answers
//!   a batch of events with many small writes per connection (a chat
//!   broadcast, a prompt after each line) so makes one `writev` per
//!   connection per turn, not one `write` per post, and no interest
//!   change for what goes out at once. The cost: nothing is sent between
//!   the post and the next `wait`, which a loop calls right after handling
//!   its batch.
//! * **Else arm the interest and finish on readiness.** The OS is asked for
//!   the caller's interest plus what pending operations need (readable for a
//!   read, writable for queued writes), with the caller's trigger. Readiness
//!   for a source with operations pending drives the syscalls inside `wait`;
//!   what those operations consume — readable and read-closed for a read,
//!   writable and write-closed for writes, and an error for either — is not
//!   reported again as [`Event::Io`](crate::Event::Io).
//! * **Queued writes go out gathered.** When writability comes, the
//!   unwritten rests of the queued writes go out in one `writev`/`sendmsg`
//!   (`WSASend` with several buffers on Windows), up to 1,024 buffers a
//!   call. What went out is counted off the writes in order: each one that
//!   is all out completes (one event per post, with its exact count), and
//!   one cut short keeps its place and resumes where it stopped.
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
//! For a socket, a native submission in place of armed interest. A posted
//! read goes to the ring as an `IORING_OP_RECV` at once, with no `read(2)`
//! first: the receive is the try, made in the `io_uring_enter` of the
//! next `wait`. A posted write is tried at once with `send(2)` as on the
//! other backends, unless writes are held: then, at the next `wait`, the
//! queued writes go to the ring and ride in the enter that waits: a lone
//! one as an `IORING_OP_SEND`, several (up to 1,024) as one
//! `IORING_OP_SENDMSG` with an iovec per write. What a send leaves goes to
//! the ring the same way, with the writes queued meanwhile (one send per
//! source is in the ring at a time, so they go out in order). Each write
//! keeps its own completion: what a send took is counted off its writes
//! in order, as on the emulated path — each one all out finishes with its
//! count, one cut short resumes from where it stopped. While the
//! kernel has a buffer it belongs to the selector, not to the operation;
//! its completion brings it back through `Ops::on_native`, and a cancel
//! (`Ops::cancel`) waits for the kernel to let go of it first. Pipes and
//! other non-sockets keep the readiness emulation. IOCP still emulates.
//!
//! A receive stream ([`Runtime::post_recv_stream`]) is one
//! `IORING_OP_RECV` with `IORING_RECV_MULTISHOT` (Linux 6.0) that picks
//! its buffers from the runtime's provided-buffer ring
//! (`IORING_REGISTER_PBUF_RING`, Linux 5.19), set up by
//! [`Builder::recv_buffers`](crate::Builder::recv_buffers) when the runtime
//! is built: one submission for as long as the stream lasts, and a buffer
//! is taken only when data arrives. Each completion names the buffer the
//! kernel filled; it becomes a chunk ([`RecvBuf`]), and [`Runtime::give_back`]
//! (or dropping it) puts it back in the ring. An empty ring ends the
//! multishot with `ENOBUFS`: the data waits in the socket, the stream
//! waits on the pool's list; when buffers come back, the streams that
//! have waited longest are armed again, as many as there are free
//! buffers (at the next `wait`, or in `give_back`). A last completion that
//! does not end the stream (the kernel ending a multishot; every
//! completion of the single-shot receive used on 5.19) arms it again.
//! `cancel_io` cancels the receive and waits for its last completion;
//! `deregister` and dropping the runtime cancel and wait as for the
//! accept's multishot; buffers in completions whose stream is gone go
//! back to the ring. A kernel without buffer rings leaves the pool to the
//! runtime and the stream to the readiness emulation: on readability it
//! reads into free buffers, one chunk each, until the socket would block
//! (or, after a short read on a level registration, at once), the stream
//! ends, or the pool is empty.
//!
//! # Accept and connect
//!
//! [`Runtime::post_accept`] waits in a listener's read slot and
//! [`Runtime::post_connect`] in a slot of its own. On a readiness backend
//! both are the emulation: an `accept` tried at once and on readability;
//! a non-blocking `connect` whose outcome `SO_ERROR` gives on writability
//! (or error). On io_uring they go to the ring as an `IORING_OP_ACCEPT`
//! (no `accept(2)` first) and an `IORING_OP_CONNECT` (the address in the
//! operation's buffer until the completion); a ring that refuses either
//! leaves it to the emulation. The accept is the listener's multishot
//! (`IORING_ACCEPT_MULTISHOT`), armed by a post and kept armed across
//! posts: a connection that arrives while no accept is posted waits on the
//! source (`source::ACCEPT_QUEUE` of them, then the multishot is
//! cancelled; what the kernel took before the cancel reached it is kept
//! too, at most one listen backlog more) and the next post finishes with
//! it at once, in arrival order; see `ops/native.rs` and the io_uring
//! backend's module doc.
//!
//! While a connect is posted, the socket's writability, hang-up and error
//! are its own: a socket not yet connected reads as hung up. The accepted connection is kept beside the
//! finished operation until `take_io`; a native accept's descriptor is
//! owned (a `TcpStream`) from the moment its completion is seen, so one
//! dropped anywhere is closed, never leaked.
//!
//! # Limits
//!
//! * One read in flight per source, and one accept, one connect, one
//!   receive stream; a second is refused with `AlreadyExists`, and so is a
//!   read or an accept beside a stream (or a stream beside either).
//! * Receive streams share the runtime's buffers
//!   ([`Builder::recv_buffers`](crate::Builder::recv_buffers): at most
//!   [`MAX_RECV_BUFFERS`], 32,768, each under 2 GiB), allocated when the
//!   runtime is built; a chunk is at most one buffer. A buffer is out from
//!   the chunk's arrival until it is given back (or dropped, seen at the
//!   next `wait`), so a caller that holds every chunk stalls its own
//!   streams. Streams run on sockets only (`InvalidInput` otherwise).
//! * Writes queue in order, up to a per-source limit
//!   ([`Builder::write_limit`](crate::Builder::write_limit), default 1 MiB,
//!   [`Runtime::set_write_limit`] per source) on what they cost: each
//!   queued write is charged its buffer's capacity plus [`OP_OVERHEAD`]
//!   (64 bytes: the operation's record in the queue). A write that would
//!   take the charge of the writes queued on a source past the limit is
//!   refused with `WouldBlock`, so a peer that never reads holds about the
//!   limit in memory, however small the writes. A write on a source with
//!   nothing queued is always taken, whatever its size — it is the
//!   caller's memory already — and so is an empty write.

mod emulated;
mod native;
mod recv_buf;
mod source;
mod stream;

use std::collections::VecDeque;
use std::error;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};

pub use self::recv_buf::RecvBuf;
use self::source::Op;
pub(crate) use self::source::SourceOps;
pub(crate) use self::stream::RecvPool;
pub use self::stream::MAX_RECV_BUFFERS;
use crate::interest::Interest;
use crate::readiness::Readiness;
use crate::sys::{self, NativeIo, Poller, Selector, Source};
use crate::Trigger;

#[cfg(doc)]
use crate::Runtime;

/// The default for [`Builder::write_limit`](crate::Builder::write_limit).
pub(crate) const DEFAULT_WRITE_LIMIT: usize = 1 << 20;

/// What the write limit charges each queued write beside its buffer's
/// capacity: the size of the operation's record in the queue (the
/// allocator's own header on the buffer, 8 to 16 bytes with the usual
/// allocators, is not counted).
pub const OP_OVERHEAD: usize = 64;

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

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpKind {
    /// [`Runtime::post_read`].
    Read,
    /// [`Runtime::post_write`].
    Write,
    /// [`Runtime::post_accept`]: the connection is in
    /// [`Finished::accepted`].
    Accept,
    /// [`Runtime::post_connect`].
    Connect,
    /// A chunk of a [`Runtime::post_recv_stream`]: take it with
    /// [`Runtime::take_recv`]; its last event (`bytes` 0: end of stream,
    /// or an error) is taken with [`Runtime::take_io`].
    RecvStream,
}

/// What a finished or cancelled operation hands back: the caller's buffer
/// and the outcome.
#[derive(Debug)]
#[non_exhaustive]
pub struct Finished {
    /// What the operation was.
    pub kind: OpKind,
    /// The caller's buffer. A read: the bytes that arrived are appended (its
    /// length grew by `bytes`). A write: as it was given.
    pub buf: Vec<u8>,
    /// Bytes transferred (for a cancelled write, how much had gone out).
    pub bytes: usize,
    /// The error it ended with, if any.
    pub error: Option<io::Error>,
    /// An accept ([`OpKind::Accept`]) that succeeded: the connection
    /// (non-blocking, not registered) and its peer's address. `None` for
    /// every other operation.
    pub accepted: Option<(TcpStream, SocketAddr)>,
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

/// The runtime's side of posted operations: the order in which finished
/// operations are to be delivered (the operations themselves live with
/// their sources), and the default write limit.
pub(crate) struct Ops {
    /// Finished operations, in the order they finished. An entry whose op
    /// was taken or cancelled meanwhile no longer matches and is skipped.
    done: VecDeque<OpId>,
    pub(crate) default_limit: usize,
    /// The registrations whose writes are held until the next `wait`, in
    /// the order their first held write was posted.
    held: Vec<u64>,
    /// Whether writes are held at all ([`Builder::hold_writes`](crate::Builder::hold_writes)).
    hold: bool,
    /// The list a gathered native send hands its buffers over in, kept
    /// between sends (emptied).
    gather: Vec<Vec<u8>>,
    /// The receive buffers, if set up
    /// ([`Builder::recv_buffers`](crate::Builder::recv_buffers)).
    pool: Option<RecvPool>,
}

impl fmt::Debug for Ops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ops")
            .field("done", &self.done.len())
            .finish()
    }
}

impl Ops {
    pub(crate) fn new(default_limit: usize, hold: bool) -> Ops {
        Ops {
            done: VecDeque::new(),
            default_limit,
            held: Vec::new(),
            hold,
            gather: Vec::new(),
            pool: None,
        }
    }

    /// Holds the writes posted from now on (or not).
    pub(crate) fn set_hold(&mut self, hold: bool) {
        self.hold = hold;
    }

    /// Whether writes posted now are held.
    pub(crate) fn holds(&self) -> bool {
        self.hold
    }

    /// Whether writes are held for the next `wait`.
    #[inline]
    pub(crate) fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// The registrations with held writes, for the runtime to hand back to
    /// [`release_held`](Ops::release_held) one by one; the list is left
    /// empty (and its allocation is given back with
    /// [`return_held`](Ops::return_held)).
    pub(crate) fn take_held(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.held)
    }

    /// Gives the emptied list from [`take_held`](Ops::take_held) back.
    pub(crate) fn return_held(&mut self, mut list: Vec<u64>) {
        list.clear();
        if self.held.is_empty() {
            self.held = list;
        }
    }

    /// The start of a `wait` (or a deregistration) for one source with held
    /// writes: they go out now, gathered, and what does not waits for
    /// readiness (or goes to the ring) as any queued write.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn release_held(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        caller: Interest,
        trigger: Trigger,
    ) {
        if !io.held {
            return;
        }
        io.held = false;
        if io.native {
            // Into the ring, to ride in the `io_uring_enter` this `wait`
            // makes anyway: no `send(2)` first.
            self.send_front(sel, src, io);
        } else {
            self.flush(src, io);
        }
        self.after_post(sel, src, slot, io, caller, trigger);
    }

    /// Writes what is queued now; what does not go out waits for
    /// readiness, or goes to the ring.
    fn send_queued(&mut self, sel: &mut Selector, src: Source<'_>, io: &mut SourceOps) {
        self.flush(src, io);
        if io.native {
            self.send_front(sel, src, io);
        }
    }

    /// A source with held writes is going away (deregistered): they get
    /// the one try at writing they were held for; what does not go out is
    /// dropped with the source.
    pub(crate) fn flush_before_close(&mut self, src: Source<'_>, io: &mut SourceOps) {
        if io.held {
            io.held = false;
            self.flush(src, io);
        }
    }

    /// Posts a read as operation `seq` on the registration `slot`, whose
    /// source is `src`, and gives the OS what pending operations then need.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn post_read(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        seq: u32,
        buf: Vec<u8>,
        caller: Interest,
        trigger: Trigger,
    ) -> Result<OpId, OpError> {
        if let Some(op) = &io.read {
            let msg = if op.kind == OpKind::Accept {
                "an accept is posted on this source (a listener)"
            } else {
                "a read is already posted on this source"
            };
            return Err(OpError::new(io::ErrorKind::AlreadyExists, msg, buf));
        }
        if io.stream.is_some() {
            return Err(OpError::new(
                io::ErrorKind::AlreadyExists,
                "a receive stream is posted on this source",
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
        // On the ring the receive is the try: it runs in the
        // `io_uring_enter` the next `wait` makes, no `read(2)` first.
        if io.maybe_readable && !io.native {
            self.try_read(src, io, trigger);
        }
        if io.native {
            self.submit_read(sel, src, io)?;
        }
        self.after_post(sel, src, slot, io, caller, trigger);
        Ok(OpId::new(io.index, seq))
    }

    /// Posts a write as operation `seq`; as [`post_read`](Ops::post_read).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn post_write(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        seq: u32,
        buf: Vec<u8>,
        caller: Interest,
        trigger: Trigger,
    ) -> Result<OpId, OpError> {
        let op = Op::new(seq, OpKind::Write, buf);
        if !op.buf.is_empty()
            && !io.writes.is_empty()
            && io.queued.saturating_add(op.charge()) > io.limit
        {
            return Err(OpError::new(
                io::ErrorKind::WouldBlock,
                "the source's write queue is at its limit (Runtime::set_write_limit)",
                op.buf,
            ));
        }
        let first = io.writes.is_empty();
        io.enqueue(op);
        if first && self.hold {
            // Held for the rest of the turn, so that the writes the caller
            // posts on this source before its next `wait` go out with this
            // one in one gathered call (see the module doc). A write posted
            // behind others already queued just joins them.
            io.held = true;
            self.held.push(slot);
        } else if first {
            self.send_queued(sel, src, io);
        }
        if !io.held {
            self.after_post(sel, src, slot, io, caller, trigger);
        }
        Ok(OpId::new(io.index, seq))
    }

    /// Posts an accept as operation `seq` on the listener `src`: it waits
    /// in the read slot (a listener has no reads), is tried at once, and
    /// again on readability.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn post_accept(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        seq: u32,
        caller: Interest,
        trigger: Trigger,
    ) -> io::Result<OpId> {
        if let Some(op) = &io.read {
            let msg = if op.kind == OpKind::Accept {
                "an accept is already posted on this source"
            } else {
                "a read is already posted on this source"
            };
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, msg));
        }
        if io.stream.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a receive stream is posted on this source",
            ));
        }
        io.read = Some(Op::new(seq, OpKind::Accept, Vec::new()));
        // On the ring a connection the multishot accept took meanwhile
        // finishes it at once; otherwise the ring's accept is the try (and
        // a ring that refuses it leaves it to the emulation).
        if io.native && self.accept_arrived(io) {
        } else if !(io.native && self.submit_accept(sel, src, io)) && io.maybe_readable {
            self.try_accept(src, io);
        }
        self.after_post(sel, src, slot, io, caller, trigger);
        Ok(OpId::new(io.index, seq))
    }

    /// Posts a connect to `addr` as operation `seq` on the socket `src`:
    /// started at once; one that is in progress waits for writability.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn post_connect(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        seq: u32,
        addr: SocketAddr,
        caller: Interest,
        trigger: Trigger,
    ) -> io::Result<OpId> {
        if io.connect.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a connect is already posted on this source",
            ));
        }
        let mut op = Op::new(seq, OpKind::Connect, Vec::new());
        if io.native {
            // The ring's connect waits itself; one it refuses is left to
            // the emulation.
            if let Ok(k) = sel.submit_connect(src, OpId::new(io.index, seq).bits(), addr) {
                op.kernel = k;
                op.stage = source::Stage::InKernel;
                io.connect = Some(op);
                return Ok(OpId::new(io.index, seq));
            }
        }
        match sys::connect(src, addr) {
            Ok(false) => {
                io.connect = Some(op);
                self.after_post(sel, src, slot, io, caller, trigger);
            }
            Ok(true) => self.finish(io, op),
            Err(e) => {
                op.error = Some(e);
                self.finish(io, op);
            }
        }
        Ok(OpId::new(io.index, seq))
    }

    /// After a post: give the OS what the pending operations now need.
    /// Interest is only ever added here; taking it away waits for readiness
    /// that nobody wants (see the module doc).
    #[inline]
    fn after_post(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        caller: Interest,
        trigger: Trigger,
    ) {
        let want = if trigger == Trigger::Oneshot && !io.os_armed {
            io.busy().then(|| io.wanted(caller))
        } else {
            io.need()
                .exceeds(io.armed)
                .then(|| io.armed | io.wanted(caller))
        };
        if let Some(want) = want {
            self.rearm(sel, src, slot, io, want, trigger);
        }
    }

    /// Re-registers the source with `want`. If the OS refuses, the pending
    /// operations cannot make progress, so they end with that error.
    fn rearm(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        want: Interest,
        trigger: Trigger,
    ) {
        match sel.reregister(src, slot, want, trigger) {
            Ok(()) => {
                io.armed = want;
                io.os_armed = !want.is_none();
            }
            Err(e) => self.fail_pending(io, &e),
        }
    }

    /// Cancels an operation: a pending one is withdrawn (from the ring
    /// first, if it is there), a finished one is taken. Either way no event
    /// for it is delivered afterwards.
    pub(crate) fn cancel(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
        id: OpId,
    ) -> Option<Finished> {
        if let Some(f) = self.cancel_stream(sel, io, id) {
            return Some(f);
        }
        let seq = id.seq();
        if let Some(f) = self.cancel_in_kernel(sel, src, io, seq) {
            return Some(f);
        }
        if let Some(op) = io.withdraw(seq) {
            return Some(op.into_finished());
        }
        io.take(id)
    }

    /// An operation has finished: keep it for `take_io` and queue its
    /// event.
    #[inline]
    fn finish(&mut self, io: &mut SourceOps, op: Op) {
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
