//! Receive streams ([`Runtime::post_recv_stream`]): one post per socket
//! that keeps receiving into the runtime's own buffers
//! ([`Builder::recv_buffers`](crate::Builder::recv_buffers)), one
//! [`Event::IoDone`](crate::Event::IoDone) per chunk, the chunk handed out
//! as a [`RecvBuf`] and taken back with [`Runtime::give_back`] (or when it
//! is dropped).
//!
//! * The pool ([`RecvPool`]): on io_uring with a buffer ring the free
//!   buffers are the kernel's (`sys`' `BufRing`), picked by a multishot
//!   `IORING_OP_RECV` as data arrives; elsewhere they wait here, and a
//!   stream reads into one on readability.
//! * Out of buffers, a stream stops (on the ring `ENOBUFS` ends its
//!   multishot) and waits on the pool's `starved` list; the data stays in
//!   the socket. When buffers are free again, the streams that have waited
//!   longest resume, as many as there are free buffers (on a readiness
//!   backend, as many as the free buffers let read): a pass costs O(1)
//!   per free buffer, whatever waits. On the ring the count of free
//!   buffers is the pool's size less the buffers the runtime has seen
//!   come up and not yet go back; a stream resumed on a buffer another
//!   takes first meets `ENOBUFS` again and waits again.
//! * A dropped [`RecvBuf`] goes home through a small shared list the loop
//!   empties at its next `wait`: nothing is leaked, and a buffer dropped
//!   on another thread is safe.

use std::collections::VecDeque;
use std::fmt;
use std::io;

use super::recv_buf::{Chunk, Home, RecvBuf, Stream};
use super::source::SourceOps;
use super::{Finished, OpId, OpKind, Ops};
use crate::interest::Interest;
use crate::sync::Arc;
use crate::sys::{self, NativeIo, OpDone, Selector, Source};
use crate::Trigger;

#[cfg(doc)]
use crate::Runtime;

/// The most buffers [`Builder::recv_buffers`](crate::Builder::recv_buffers)
/// takes (io_uring's buffer ring holds at most 2¹⁵).
pub const MAX_RECV_BUFFERS: usize = 1 << 15;

/// The runtime's receive buffers.
pub(crate) struct RecvPool {
    size: usize,
    /// The free buffers, on a readiness backend (on the ring, the kernel
    /// has them).
    free: Vec<Vec<u8>>,
    /// The selector's buffer ring holds the free buffers.
    native: bool,
    home: Arc<Home>,
    /// Registrations whose stream ran out of buffers, longest waiting
    /// first. An entry whose stream is gone (or no longer starved) is
    /// skipped.
    starved: VecDeque<u64>,
    /// The pool's size.
    count: usize,
    /// On the ring: buffers that came up from the kernel and have not gone
    /// back (the ring has about `count - out`).
    out: usize,
    /// How many more starved streams the current resume pass may resume.
    budget: usize,
    /// Scratch for collecting dropped buffers.
    collected: Vec<Vec<u8>>,
}

impl RecvPool {
    /// `count` buffers of `size` bytes, given to the selector's buffer
    /// ring where it has one.
    pub(crate) fn new(sel: &mut Selector, count: usize, size: usize) -> RecvPool {
        let native = sel.native_io() && sel.setup_recv_pool(count, size);
        let free = if native {
            Vec::new()
        } else {
            (0..count).map(|_| Vec::with_capacity(size)).collect()
        };
        RecvPool {
            size,
            free,
            native,
            home: Arc::new(Home::default()),
            starved: VecDeque::new(),
            count,
            out: 0,
            budget: 0,
            collected: Vec::new(),
        }
    }

    /// A buffer back into the pool.
    fn put(&mut self, sel: &mut Selector, mut buf: Vec<u8>) {
        if buf.capacity() < self.size {
            return; // not one of ours
        }
        if self.native {
            self.out = self.out.saturating_sub(1);
            sel.provide_buf(buf);
        } else {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// How many buffers are free (on the ring, about: see `out`).
    fn available(&self) -> usize {
        if self.native {
            self.count.saturating_sub(self.out)
        } else {
            self.free.len()
        }
    }
}

impl fmt::Debug for RecvPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvPool")
            .field("size", &self.size)
            .field("native", &self.native)
            .field("starved", &self.starved.len())
            .finish_non_exhaustive()
    }
}

impl SourceOps {
    /// The event of the stream's next chunk, if `id` is the stream's and
    /// a chunk waits for its event.
    pub(super) fn deliver_chunk(
        &mut self,
        id: OpId,
    ) -> Option<Option<(OpKind, usize, Option<io::ErrorKind>)>> {
        let st = self.stream.as_mut().filter(|s| s.seq == id.seq())?;
        let Some(c) = st.chunks.get(st.delivered) else {
            return Some(None);
        };
        st.delivered += 1;
        let bytes = c.buf.as_ref().map_or(0, |b| b.len());
        Some(Some((
            OpKind::RecvStream,
            bytes,
            c.error.as_ref().map(io::Error::kind),
        )))
    }

    /// The oldest delivered chunk of stream `id`, if it is data.
    pub(crate) fn take_chunk(&mut self, id: OpId) -> Option<RecvBuf> {
        let st = self.stream.as_mut().filter(|s| s.seq == id.seq())?;
        if st.delivered == 0 || st.chunks.front()?.buf.is_none() {
            return None;
        }
        st.delivered -= 1;
        st.chunks.pop_front()?.buf
    }

    /// Stream `id`'s end, once its event is delivered: the stream is
    /// over (chunks not taken go back to the pool). `None` if `id` is not
    /// the stream, `Some(None)` if it has not ended.
    pub(super) fn take_stream_end(&mut self, id: OpId) -> Option<Option<Finished>> {
        let st = self.stream.as_mut().filter(|s| s.seq == id.seq())?;
        if !st.ended || st.delivered < st.chunks.len() {
            return Some(None);
        }
        let mut st = self.stream.take().expect("the stream");
        let error = st.chunks.pop_back().and_then(|c| c.error);
        Some(Some(stream_finished(error)))
    }
}

fn stream_finished(error: Option<io::Error>) -> Finished {
    Finished {
        kind: OpKind::RecvStream,
        buf: Vec::new(),
        bytes: 0,
        error,
        accepted: None,
    }
}

impl Ops {
    /// Sets the receive buffers up (once, at build).
    pub(crate) fn set_pool(&mut self, pool: RecvPool) {
        self.pool = Some(pool);
    }

    /// Posts a receive stream as operation `seq` on the socket `src`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn post_recv_stream(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        seq: u32,
        caller: Interest,
        trigger: Trigger,
    ) -> io::Result<OpId> {
        let Some(pool) = self.pool.as_ref() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no receive buffers: set them up with Builder::recv_buffers",
            ));
        };
        if io.stream.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a receive stream is already posted on this source",
            ));
        }
        if io.read.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a read or an accept is posted on this source",
            ));
        }
        if !io.socket {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a receive stream needs a socket",
            ));
        }
        let native = io.native && pool.native;
        io.stream = Some(Stream {
            seq,
            chunks: VecDeque::new(),
            delivered: 0,
            kernel: None,
            native,
            starved: false,
            ended: false,
        });
        if native {
            self.arm_stream(sel, src, io);
        } else {
            if io.maybe_readable {
                self.try_stream(src, slot, io, trigger);
            }
            self.after_post(sel, src, slot, io, caller, trigger);
        }
        Ok(OpId::new(io.index, seq))
    }

    /// Submits the stream's receive to the ring; a refusal ends the
    /// stream with its error.
    fn arm_stream(&mut self, sel: &mut Selector, src: Source<'_>, io: &mut SourceOps) {
        let Some(st) = io.stream.as_mut() else { return };
        match sel.submit_recv_stream(src, OpId::new(io.index, st.seq).bits()) {
            Ok(k) => st.kernel = Some(k),
            Err(e) => self.end_stream(io, Some(e)),
        }
    }

    /// Queues a chunk of data for the stream.
    fn push_chunk(&mut self, io: &mut SourceOps, buf: Vec<u8>) {
        let pool = self.pool.as_ref().expect("a stream has a pool");
        let buf = RecvBuf::new(buf, &pool.home);
        let st = io.stream.as_mut().expect("the stream");
        st.chunks.push_back(Chunk {
            buf: Some(buf),
            error: None,
        });
        self.done.push_back(OpId::new(io.index, st.seq));
    }

    /// Queues the stream's last chunk: end of stream, or `error`.
    pub(super) fn end_stream(&mut self, io: &mut SourceOps, error: Option<io::Error>) {
        let Some(st) = io.stream.as_mut() else { return };
        if st.ended {
            return;
        }
        st.ended = true;
        st.chunks.push_back(Chunk { buf: None, error });
        self.done.push_back(OpId::new(io.index, st.seq));
    }

    /// Marks the stream out of buffers, waiting on the pool.
    fn starve(&mut self, io: &mut SourceOps, slot: u64) {
        let Some(st) = io.stream.as_mut() else { return };
        if !st.starved {
            st.starved = true;
            if let Some(pool) = self.pool.as_mut() {
                pool.starved.push_back(slot);
            }
        }
    }

    /// A readiness-run stream reads what the socket has into free
    /// buffers: until it would block, the stream ends, or the pool is
    /// empty (then the stream waits for a buffer to come back).
    pub(super) fn try_stream(
        &mut self,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        trigger: Trigger,
    ) {
        loop {
            let Some(st) = io.stream.as_ref() else { return };
            if st.native || st.ended || st.starved {
                return;
            }
            let pool = self.pool.as_mut().expect("a stream has a pool");
            let Some(mut buf) = pool.free.pop() else {
                return self.starve(io, slot);
            };
            let room = buf.capacity();
            match sys::read(src, &mut buf, io.socket) {
                Ok(0) => {
                    pool.free.push(buf);
                    return self.end_stream(io, None);
                }
                Ok(n) => {
                    self.push_chunk(io, buf);
                    // As for a posted read: a short read emptied the
                    // socket (level and oneshot re-check when asked again).
                    if n < room && trigger != Trigger::Edge {
                        io.maybe_readable = false;
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    pool.free.push(buf);
                    io.maybe_readable = false;
                    return;
                }
                Err(e) => {
                    pool.free.push(buf);
                    return self.end_stream(io, Some(e));
                }
            }
        }
    }

    /// A completion of the stream's ring receive: a chunk, its end, or
    /// out of buffers. A last completion that does not end the stream
    /// (a single-shot receive's, or the kernel ending a multishot) arms
    /// the receive again.
    pub(super) fn on_native_stream(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        done: OpDone,
    ) {
        let seq = OpId::from_bits(done.op).seq();
        if !io.stream.as_ref().is_some_and(|s| s.seq == seq) {
            // Its stream is gone (cancelled): the buffer goes back.
            return self.recycle(sel, done);
        }
        if !done.more {
            io.stream.as_mut().expect("the stream").kernel = None;
        }
        if done.result > 0 && done.pooled {
            if let Some(pool) = self.pool.as_mut() {
                pool.out += 1;
            }
            self.push_chunk(io, done.buf);
        } else if done.result == 0 {
            self.end_stream(io, None);
        } else if done.no_buffers {
            self.starve(io, slot);
        } else if done.result < 0 && !done.cancelled {
            self.end_stream(io, Some(io::Error::from_raw_os_error(-done.result)));
        }
        let st = io.stream.as_ref().expect("the stream");
        if !done.more && !st.ended && !st.starved && st.kernel.is_none() {
            self.arm_stream(sel, src, io);
        }
    }

    /// A completion whose stream is gone: its buffer back to the pool.
    pub(crate) fn recycle(&mut self, sel: &mut Selector, done: OpDone) {
        if done.pooled {
            if let Some(pool) = self.pool.as_mut() {
                pool.out += 1; // up from the kernel, and straight back
                pool.put(sel, done.buf);
            }
        }
    }

    /// Cancels the stream (`id` is its): the ring's receive is withdrawn
    /// and waited for; the chunks not taken go back to the pool. `None`
    /// if `id` is not the stream.
    pub(super) fn cancel_stream(
        &mut self,
        sel: &mut Selector,
        io: &mut SourceOps,
        id: OpId,
    ) -> Option<Finished> {
        if !io.stream.as_ref().is_some_and(|s| s.seq == id.seq()) {
            return None;
        }
        let mut st = io.stream.take().expect("the stream");
        let mut error = None;
        if let Some(k) = st.kernel.take() {
            match sel.cancel_multi(k) {
                Ok(dones) => {
                    for done in dones {
                        self.recycle(sel, done);
                    }
                }
                // The wait failed: its completions come as usual, and find
                // the stream gone.
                Err(e) => error = Some(e),
            }
        }
        let pool = self.pool.as_mut().expect("a stream has a pool");
        for c in st.chunks.drain(..) {
            if c.error.is_some() && error.is_none() {
                error = c.error;
            }
            if let Some(v) = c.buf.and_then(|b| b.into_vec_for(&pool.home)) {
                pool.put(sel, v);
            }
        }
        Some(stream_finished(error))
    }

    /// A stream on the source is over (its end taken, or cancelled): the
    /// caller's interest, which a stream that could not read kept from the
    /// OS, is asked for again.
    pub(crate) fn stream_gone(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        caller: Interest,
        trigger: Trigger,
    ) {
        let want = io.wanted(caller);
        if want.exceeds(io.armed) {
            self.rearm(sel, src, slot, io, io.armed | want, trigger);
        }
    }

    /// Takes back a chunk handed out; false if it is not this runtime's
    /// (it is then dropped, which sends it home).
    pub(crate) fn give_back_recv(&mut self, sel: &mut Selector, buf: RecvBuf) -> bool {
        let Some(pool) = self.pool.as_mut() else {
            return false;
        };
        match buf.into_vec_for(&pool.home) {
            Some(v) => {
                pool.put(sel, v);
                true
            }
            None => false,
        }
    }

    /// Whether buffers came back (given back, or dropped anywhere) while
    /// streams wait for them: then the runtime calls
    /// [`next_starved`](Ops::next_starved) before it waits.
    #[inline]
    pub(crate) fn recv_pending(&self) -> bool {
        self.pool
            .as_ref()
            .is_some_and(|p| p.home.maybe_any() || (!p.starved.is_empty() && p.available() > 0))
    }

    /// Starts a resume pass: collects the dropped buffers, and allows as
    /// many resumptions as buffers are free.
    pub(crate) fn begin_resume(&mut self, sel: &mut Selector) {
        let Some(pool) = self.pool.as_mut() else {
            return;
        };
        let mut got = std::mem::take(&mut pool.collected);
        pool.home.take_all(&mut got);
        for v in got.drain(..) {
            pool.put(sel, v);
        }
        pool.collected = got;
        pool.budget = pool.available();
    }

    /// The registration of the next starved stream to resume in this pass
    /// (on a readiness backend, while free buffers are left). `None` when
    /// the pass is done.
    pub(crate) fn next_starved(&mut self) -> Option<u64> {
        let pool = self.pool.as_mut()?;
        let more = if pool.native {
            pool.budget > 0
        } else {
            !pool.free.is_empty()
        };
        if !more {
            return None;
        }
        pool.starved.pop_front()
    }

    /// Resumes a starved stream on registration `slot`: its receive goes
    /// back to the ring, or it reads at once and waits for readability.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn resume_stream(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        caller: Interest,
        trigger: Trigger,
    ) {
        let Some(st) = io.stream.as_mut() else { return };
        if !st.starved {
            return;
        }
        st.starved = false;
        if let Some(pool) = self.pool.as_mut() {
            pool.budget = pool.budget.saturating_sub(1);
        }
        if st.native {
            self.arm_stream(sel, src, io);
        } else {
            self.try_stream(src, slot, io, trigger);
            self.after_post(sel, src, slot, io, caller, trigger);
        }
    }
}
