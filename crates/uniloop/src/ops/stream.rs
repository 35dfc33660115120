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
use std::ops::{Deref, DerefMut};
use std::sync::PoisonError;

use super::source::SourceOps;
use super::{Finished, OpId, OpKind, Ops};
use crate::interest::Interest;
use crate::sync::{Arc, AtomicBool, Mutex, Ordering};
use crate::sys::{self, NativeIo, OpDone, Selector, Source};
use crate::Trigger;

#[cfg(doc)]
use crate::Runtime;

/// The most buffers [`Builder::recv_buffers`](crate::Builder::recv_buffers)
/// takes (io_uring's buffer ring holds at most 2¹⁵).
pub const MAX_RECV_BUFFERS: usize = 1 << 15;

/// One chunk of a receive stream: a buffer of the runtime's, holding the
/// bytes that arrived (`&buf[..]`, never empty). Give it back with
/// [`Runtime::give_back`] when done with it, so the stream can use it
/// again; dropping it gives it back too, at the loop's next `wait` (a
/// `RecvBuf` is `Send`: one dropped on another thread while the loop is
/// blocked is seen when the loop next wakes — call
/// [`Poster::wake`](crate::Poster::wake) if streams may be waiting for
/// it). It outlives its runtime safely.
///
/// # Examples
///
/// See [`Runtime::post_recv_stream`].
pub struct RecvBuf {
    buf: Vec<u8>,
    home: Option<Arc<Home>>,
}

impl RecvBuf {
    fn new(buf: Vec<u8>, home: &Arc<Home>) -> RecvBuf {
        RecvBuf {
            buf,
            home: Some(Arc::clone(home)),
        }
    }

    /// Whether `self` came from the pool `home`; its buffer, taken out.
    fn into_vec_for(mut self, home: &Arc<Home>) -> Option<Vec<u8>> {
        if !self.home.as_ref().is_some_and(|h| Arc::ptr_eq(h, home)) {
            return None;
        }
        self.home = None;
        Some(std::mem::take(&mut self.buf))
    }
}

impl Deref for RecvBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl DerefMut for RecvBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl AsRef<[u8]> for RecvBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBuf")
            .field("len", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            home.put(std::mem::take(&mut self.buf));
        }
    }
}

/// Where dropped [`RecvBuf`]s go, for the loop to collect.
///
/// Ordering: a drop pushes under the mutex and then sets `any` (release);
/// the loop turns `any` from true to false (acquire) and then empties the
/// list under the mutex. A push after that sets `any` again, so it is collected
/// next time; at worst a collection finds the list empty.
#[derive(Default)]
pub(crate) struct Home {
    returned: Mutex<Vec<Vec<u8>>>,
    any: AtomicBool,
}

impl Home {
    fn put(&self, buf: Vec<u8>) {
        self.returned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buf);
        self.any.store(true, Ordering::Release);
    }

    fn take_all(&self, into: &mut Vec<Vec<u8>>) {
        // A compare-exchange, not a swap: the same for a flag, and loom
        // 0.7 mis-models a swap racing a store (tokio-rs/loom#254), which
        // would hide this protocol from its model check.
        if self
            .any
            .compare_exchange(true, false, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            into.append(&mut self.returned.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}

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

/// One chunk of a stream, kept until taken: data, or the end (no buffer).
pub(super) struct Chunk {
    buf: Option<RecvBuf>,
    error: Option<io::Error>,
}

/// A source's receive stream.
pub(crate) struct Stream {
    pub(super) seq: u32,
    /// Chunks not taken yet, in arrival order; the first `delivered` have
    /// had their events.
    chunks: VecDeque<Chunk>,
    delivered: usize,
    /// On the ring: the receive's submission, while the kernel has it.
    kernel: Option<u64>,
    /// Runs on the ring (else on readiness).
    pub(super) native: bool,
    /// Out of buffers: on the pool's `starved` list.
    pub(super) starved: bool,
    /// Its last chunk (end of stream or error) is queued.
    pub(super) ended: bool,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("seq", &self.seq)
            .field("chunks", &self.chunks.len())
            .field("native", &self.native)
            .field("starved", &self.starved)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// Whether it waits for readability (a readiness-run stream that can
    /// go on).
    pub(super) fn wants_readable(&self) -> bool {
        !self.native && !self.starved && !self.ended
    }

    /// Whether it keeps readability from the caller's interest: it cannot
    /// read now (out of buffers, or ended), and its socket may stay
    /// readable meanwhile.
    pub(super) fn holds_readable(&self) -> bool {
        self.starved || self.ended
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
        self.pool.as_ref().is_some_and(|p| {
            p.home.any.load(Ordering::Relaxed) || (!p.starved.is_empty() && p.available() > 0)
        })
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

/// Model checks of [`Home`]: a buffer dropped on another thread is
/// collected by the loop exactly once, whichever way the drop and the
/// collection interleave.
#[cfg(all(test, uniloop_loom))]
mod loom_tests {
    use super::Home;
    use crate::sync::Arc;

    #[test]
    fn loom_home_two_drops_collected_once_each() {
        loom::model(|| {
            let home = Arc::new(Home::default());
            let droppers: Vec<_> = (0..2u8)
                .map(|i| {
                    let h = Arc::clone(&home);
                    loom::thread::spawn(move || h.put(vec![i]))
                })
                .collect();
            let mut got = Vec::new();
            home.take_all(&mut got);
            for t in droppers {
                t.join().unwrap();
            }
            home.take_all(&mut got);
            got.sort();
            assert_eq!(got, vec![vec![0u8], vec![1u8]]);
        });
    }
}
