//! Per-source state: the posted read, the queue of writes, the finished
//! operations not yet taken, the write limit's account, and what the OS
//! registration has.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::{SocketAddr, TcpStream};

use super::recv_buf::Stream;
use super::{Finished, OpId, OpKind, OP_OVERHEAD};
use crate::interest::Interest;
#[cfg(doc)]
use crate::sys;

/// How many connections a listener's multishot accept (io_uring) keeps
/// while no accept is posted. When that many wait, the multishot is
/// cancelled and the kernel's listen backlog holds the rest; a post that
/// finds none waiting arms it again. The kernel accepts what its backlog
/// holds in one go when the multishot is armed, and the cancellation goes
/// in with the next wait, so the queue can pass the bound by what was
/// accepted before then — at most one listen backlog. Those are kept, not
/// dropped: nothing accepted is lost.
pub(crate) const ACCEPT_QUEUE: usize = 64;

/// Where an operation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Waiting for the source (emulated: readiness; native: its turn).
    Pending,
    /// Submitted to the ring: its buffer is the selector's until the
    /// completion named by `Op::kernel` is seen.
    InKernel,
    /// Finished; its event is queued.
    Queued,
    /// Finished and its event delivered; waiting for `take_io`.
    Delivered,
}

/// One operation: the value a backend emulates (a syscall on readiness)
/// or submits (a ring entry). It moves from the source's read slot or
/// write queue to its finished operations, and out with `take_io`. Kept
/// small: a queued write is charged its size ([`OP_OVERHEAD`]) beside its
/// buffer.
pub(super) struct Op {
    /// The caller's buffer — empty while the kernel has it.
    pub(super) buf: Vec<u8>,
    pub(super) bytes: usize,
    /// The buffer's capacity when posted, known also while the kernel has
    /// the buffer: what the write limit was charged, with the overhead.
    pub(super) cap: usize,
    /// The native submission's id while `stage` is `InKernel`.
    pub(super) kernel: u64,
    pub(super) error: Option<io::Error>,
    pub(super) seq: u32,
    pub(super) kind: OpKind,
    pub(super) stage: Stage,
}

const _: () = assert!(std::mem::size_of::<Op>() <= OP_OVERHEAD);

impl Op {
    pub(super) fn new(seq: u32, kind: OpKind, buf: Vec<u8>) -> Op {
        Op {
            cap: buf.capacity(),
            buf,
            bytes: 0,
            kernel: 0,
            error: None,
            seq,
            kind,
            stage: Stage::Pending,
        }
    }

    /// What the write limit charges for this write while it is queued.
    pub(super) fn charge(&self) -> usize {
        self.cap.saturating_add(OP_OVERHEAD)
    }

    pub(super) fn into_finished(self) -> Finished {
        Finished {
            kind: self.kind,
            buf: self.buf,
            bytes: self.bytes,
            error: self.error,
            accepted: None,
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

/// Sequence numbers are distinct and mostly consecutive: one multiply
/// spreads them over the table (SipHash would cost more than the rest of a
/// take).
#[derive(Default)]
pub(super) struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type ByDone = HashMap<u32, Op, BuildHasherDefault<SeqHasher>>;

/// Per-registration state, made on the first post on a source. Dropping it
/// (deregistration) drops every buffer it holds.
///
/// Every step from post to `take_io` is O(1) whatever else is queued or
/// finished on the source: a post pushes onto the write queue (or fills
/// the read slot); the front write finishes first; a finished operation
/// waits in `read_done`/`write_done` (the usual rhythm: post, finish, take)
/// or, when the caller posts again before taking, in a window indexed by
/// its sequence number (a table for the few that finish out of order).
#[derive(Debug)]
pub(crate) struct SourceOps {
    /// The registry index of the source, for the ids of its operations.
    pub(super) index: u32,
    /// The posted read, or accept (a listener has no reads), if any.
    pub(super) read: Option<Op>,
    /// The posted connect, if any.
    pub(super) connect: Option<Op>,
    /// The receive stream, if one is posted ([`stream`](super::stream)).
    pub(super) stream: Option<Stream>,
    /// The connections of finished accepts not yet taken, by sequence
    /// number (a few at most: one accept is pending at a time).
    pub(super) accepted: Vec<(u32, TcpStream, SocketAddr)>,
    /// io_uring: the listener's multishot accept, while the kernel has it
    /// (its submission's id).
    pub(super) multishot: Option<u64>,
    /// Its cancellation is asked for; its last completion has not come.
    pub(super) multishot_stopping: bool,
    /// It has given no connection yet (an `EINVAL` then means the kernel
    /// refused the multishot itself).
    pub(super) multishot_fresh: bool,
    /// The kernel refused a multishot accept on this listener: single-shot
    /// accepts from then on.
    pub(super) single_accept: bool,
    /// Connections the multishot accepted while no accept was posted, in
    /// arrival order, for the next posts; about [`ACCEPT_QUEUE`] at most
    /// (see there).
    pub(super) arrived: VecDeque<(TcpStream, SocketAddr)>,
    /// Posted writes in order; the front one is going out.
    pub(super) writes: VecDeque<Op>,
    /// What the queued writes are charged: capacity plus [`OP_OVERHEAD`]
    /// each.
    pub(super) queued: usize,
    pub(super) limit: usize,
    /// The last finished read and write not yet taken (their events queued
    /// or delivered), kept in place.
    read_done: Option<Op>,
    write_done: Option<Op>,
    /// More finished operations not yet taken, by sequence number: a
    /// window from `base` on for the usual case (they finish, and are
    /// taken, in about the order they were posted), so a long run of them
    /// is walked in order in memory; a table for the rest.
    window: VecDeque<Option<Op>>,
    base: u32,
    /// The operations in `window`.
    in_window: usize,
    far: ByDone,
    /// The interest the OS has now.
    pub(super) armed: Interest,
    /// Oneshot: whether the OS registration is still armed.
    pub(super) os_armed: bool,
    /// Oneshot: whether the caller's own interest is still armed (it is
    /// spent by the one `Event::Io` it gives).
    pub(super) caller_armed: bool,
    /// Whether a read might find data: false after a read found the source
    /// empty, until readiness says otherwise. Saves the `read(2)` a post
    /// would make at once when the answer is known to be "would block".
    pub(super) maybe_readable: bool,
    pub(super) socket: bool,
    /// What does not finish at once goes to the ring as a native
    /// submission (io_uring, sockets) instead of waiting for readiness.
    pub(super) native: bool,
    /// The queued writes are held for the rest of the turn: they go out
    /// together when the loop next calls `wait` (the source is on
    /// [`Ops`](super::Ops)' held list).
    pub(super) held: bool,
}

impl SourceOps {
    /// `index`: the source's registry index. `spent`: a oneshot
    /// registration that has reported since it was last armed (so the OS has
    /// it disarmed, and the caller has had its event). `socket`: whether
    /// the source is a socket ([`sys::is_socket`]).
    pub(crate) fn new(
        index: u32,
        armed: Interest,
        spent: bool,
        limit: usize,
        native: bool,
        socket: bool,
    ) -> SourceOps {
        SourceOps {
            index,
            read: None,
            connect: None,
            stream: None,
            accepted: Vec::new(),
            multishot: None,
            multishot_stopping: false,
            multishot_fresh: false,
            single_accept: false,
            arrived: VecDeque::new(),
            writes: VecDeque::new(),
            queued: 0,
            limit,
            read_done: None,
            write_done: None,
            window: VecDeque::new(),
            base: 0,
            in_window: 0,
            far: ByDone::default(),
            armed,
            os_armed: !spent,
            caller_armed: !spent,
            maybe_readable: true,
            socket,
            native: native && socket,
            held: false,
        }
    }

    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Queues a write behind the others and charges it.
    #[inline]
    pub(super) fn enqueue(&mut self, op: Op) {
        self.queued += op.charge();
        self.writes.push_back(op);
    }

    /// Takes the front write off the queue and its charge off the account.
    #[inline]
    pub(super) fn dequeue(&mut self) -> Option<Op> {
        let op = self.writes.pop_front()?;
        self.queued -= op.charge();
        Some(op)
    }

    /// What pending operations need from the OS.
    #[inline]
    pub(super) fn need(&self) -> Interest {
        let mut need = Interest::NONE;
        if self.connect_emulated() {
            need |= Interest::WRITABLE;
        }
        if self.read_emulated() {
            need |= Interest::READABLE;
        }
        if !self.native && !self.writes.is_empty() {
            need |= Interest::WRITABLE;
        }
        if self.stream.as_ref().is_some_and(Stream::wants_readable) {
            need |= Interest::READABLE;
        }
        need
    }

    /// Whether a posted connect waits for readiness (one in the ring does
    /// not).
    #[inline]
    pub(super) fn connect_emulated(&self) -> bool {
        self.connect
            .as_ref()
            .is_some_and(|op| op.stage != Stage::InKernel)
    }

    /// Whether an operation in the read slot waits for readiness: any on a
    /// readiness backend; on the ring, an accept the ring refused (a
    /// receive is always the ring's).
    #[inline]
    pub(super) fn read_emulated(&self) -> bool {
        self.read.as_ref().is_some_and(|op| {
            !self.native || (op.kind == OpKind::Accept && op.stage != Stage::InKernel)
        })
    }

    #[inline]
    pub(super) fn busy(&self) -> bool {
        self.read.is_some()
            || !self.writes.is_empty()
            || self.connect.is_some()
            || self.stream.is_some()
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
    pub(super) fn wanted(&self, caller: Interest) -> Interest {
        let caller = if !self.caller_armed {
            Interest::NONE
        } else if self.stream.as_ref().is_some_and(Stream::holds_readable) {
            // A receive stream that cannot read now (out of buffers, or
            // ended and not taken) holds the source's readability: a
            // level registration reporting it would wake the loop for
            // nothing.
            caller.without(Interest::READABLE)
        } else {
            caller
        };
        caller | self.need()
    }

    /// Keeps a finished operation until it is taken.
    #[inline]
    pub(super) fn keep(&mut self, mut op: Op) {
        op.stage = Stage::Queued;
        let slot = match op.kind {
            OpKind::Read | OpKind::Accept | OpKind::RecvStream => &mut self.read_done,
            OpKind::Write | OpKind::Connect => &mut self.write_done,
        };
        if let Some(older) = slot.replace(op) {
            self.store(older);
        }
    }

    /// Puts a finished operation in the window, or in the table if it
    /// falls outside (before the window, or far past its end).
    fn store(&mut self, op: Op) {
        /// How far past the window's end an operation may land in it.
        const REACH: usize = 64;
        if self.window.is_empty() {
            self.base = op.seq;
        }
        let at = op.seq.wrapping_sub(self.base) as usize;
        if at < self.window.len() {
            if self.window[at].is_none() {
                self.window[at] = Some(op);
                self.in_window += 1;
            } else {
                self.far.insert(op.seq, op);
            }
        } else if at - self.window.len() <= REACH {
            while self.window.len() < at {
                self.window.push_back(None);
            }
            self.window.push_back(Some(op));
            self.in_window += 1;
            // An operation never taken must not hold the window open: when
            // it is mostly holes, its front goes to the table.
            while self.window.len() > 2 * self.in_window + REACH {
                if let Some(Some(op)) = self.window.pop_front() {
                    self.in_window -= 1;
                    self.far.insert(op.seq, op);
                }
                self.base = self.base.wrapping_add(1);
            }
        } else {
            self.far.insert(op.seq, op);
        }
    }

    /// The finished operation `seq`, wherever it is kept.
    #[inline]
    fn finished_mut(&mut self, seq: u32) -> Option<&mut Op> {
        if self.write_done.as_ref().is_some_and(|op| op.seq == seq) {
            return self.write_done.as_mut();
        }
        if self.read_done.as_ref().is_some_and(|op| op.seq == seq) {
            return self.read_done.as_mut();
        }
        let at = seq.wrapping_sub(self.base) as usize;
        if self.window.get(at).is_some_and(Option::is_some) {
            return self.window[at].as_mut();
        }
        if self.far.is_empty() {
            return None;
        }
        self.far.get_mut(&seq)
    }

    /// Takes the finished operation `seq` out of the window or the table.
    fn unstore(&mut self, seq: u32) -> Option<Op> {
        let at = seq.wrapping_sub(self.base) as usize;
        if let Some(op) = self.window.get_mut(at).and_then(Option::take) {
            self.in_window -= 1;
            while let Some(None) = self.window.front() {
                self.window.pop_front();
                self.base = self.base.wrapping_add(1);
            }
            return Some(op);
        }
        if self.far.is_empty() {
            return None;
        }
        self.far.remove(&seq)
    }

    /// Marks the finished operation `id` delivered, if it is finished and
    /// its event not yet delivered, and says what its event carries.
    #[inline]
    pub(crate) fn deliver(&mut self, id: OpId) -> Option<(OpKind, usize, Option<io::ErrorKind>)> {
        if let Some(chunk) = self.deliver_chunk(id) {
            return chunk;
        }
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
        if let Some(end) = self.take_stream_end(id) {
            return end;
        }
        let seq = id.seq();
        let op = if self.write_done.as_ref().is_some_and(|op| op.seq == seq) {
            self.write_done.take()
        } else if self.read_done.as_ref().is_some_and(|op| op.seq == seq) {
            self.read_done.take()
        } else {
            self.unstore(seq)
        };
        let mut finished = op?.into_finished();
        if finished.kind == OpKind::Accept {
            if let Some(at) = self.accepted.iter().position(|a| a.0 == seq) {
                let (_, stream, peer) = self.accepted.swap_remove(at);
                finished.accepted = Some((stream, peer));
            }
        }
        Some(finished)
    }

    /// Withdraws a pending operation that is not in the ring: the read, or
    /// a queued write (found by its sequence number: the queue is in post
    /// order). `None` if `seq` is neither.
    pub(super) fn withdraw(&mut self, seq: u32) -> Option<Op> {
        if self
            .connect
            .as_ref()
            .is_some_and(|op| op.seq == seq && op.stage == Stage::Pending)
        {
            return self.connect.take();
        }
        if self
            .read
            .as_ref()
            .is_some_and(|op| op.seq == seq && op.stage == Stage::Pending)
        {
            return self.read.take();
        }
        let front = self.writes.front()?.seq;
        // Sequence numbers grow along the queue (modulo 2³²): a binary
        // search by distance from the front.
        let at = self
            .writes
            .binary_search_by_key(&seq.wrapping_sub(front), |op| op.seq.wrapping_sub(front))
            .ok()?;
        if self.writes[at].stage != Stage::Pending {
            return None;
        }
        let op = self.writes.remove(at).expect("a queued write");
        self.queued -= op.charge();
        Some(op)
    }
}

#[cfg(all(test, not(uniloop_loom)))]
mod tests {
    use super::*;

    fn state() -> SourceOps {
        SourceOps::new(3, Interest::READABLE, false, usize::MAX, false, true)
    }

    fn finished(seq: u32) -> Op {
        let kind = if seq % 7 == 0 {
            OpKind::Read
        } else {
            OpKind::Write
        };
        Op::new(seq, kind, seq.to_le_bytes().to_vec())
    }

    /// Finished operations kept in a scrambled order (out of order near
    /// and far, across the sequence numbers' wrap) and taken in another are
    /// each found once, with their own buffer; and one never taken does not
    /// hold the window open.
    #[test]
    fn finished_operations_are_found_in_any_order() {
        let mut io = state();
        let start = u32::MAX - 500; // wraps
                                    // Smaller under Miri, which runs it as a check of the unsafe-free
                                    // bookkeeping at a fraction of native speed.
        let (n, more) = if cfg!(miri) {
            (600u32, 1000)
        } else {
            (3000, 10_000)
        };
        let mut order: Vec<u32> = (0..n).map(|i| start.wrapping_add(i)).collect();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut rand = move |m: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % m as u64) as usize
        };
        // Mostly in order: swap neighbours, and some far apart.
        for i in 0..order.len() {
            let j = if rand(10) == 0 {
                rand(order.len())
            } else {
                (i + rand(3)).min(order.len() - 1)
            };
            order.swap(i, j);
        }
        let pinned = order[0];
        for &seq in &order {
            io.keep(finished(seq));
        }
        for &seq in order.iter().rev() {
            let id = OpId::new(3, seq);
            assert!(io.deliver(id).is_some(), "{seq}");
            assert!(io.deliver(id).is_none(), "delivered twice: {seq}");
        }
        let mut take: Vec<u32> = order[1..].to_vec();
        for i in 0..take.len() {
            let j = (i + rand(50)).min(take.len() - 1);
            take.swap(i, j);
        }
        for &seq in &take {
            let f = io.take(OpId::new(3, seq)).expect("kept");
            assert_eq!(f.buf, seq.to_le_bytes(), "{seq}");
            assert!(io.take(OpId::new(3, seq)).is_none(), "taken twice: {seq}");
        }
        assert!(
            io.window.len() <= 2 * io.in_window + 64,
            "{}",
            io.window.len()
        );
        // Posting and taking on, with the first never taken.
        for i in 0..more {
            let seq = start.wrapping_add(n + i);
            io.keep(finished(seq));
            if i > 0 {
                let prev = seq.wrapping_sub(1);
                assert!(io.take(OpId::new(3, prev)).is_some(), "{prev}");
            }
        }
        assert!(io.window.len() <= 200, "held open: {}", io.window.len());
        let f = io.take(OpId::new(3, pinned)).expect("the one never taken");
        assert_eq!(f.buf, pinned.to_le_bytes());
    }
}
