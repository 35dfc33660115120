//! The native path: on io_uring a posted read on a socket is submitted to
//! the ring at once, and writes that do not finish at once (or are held
//! for the next `wait`) after it — the read's buffer as an
//! `IORING_OP_RECV`; the front write's unwritten rest as an
//! `IORING_OP_SEND`, or with the writes queued behind it as one
//! `IORING_OP_SENDMSG`, an iovec each (one send per source is in the ring
//! at a time, so they go out in order; what it took is counted off them
//! in order when it completes, and the rest goes back to the ring). While
//! the kernel has a buffer it belongs to the selector, not to the operation (whose stage is `InKernel` and `kernel`
//! names the submission); its completion brings it back through
//! [`Ops::on_native`], and a cancel waits for the kernel to let go of it
//! first.

use std::io;
use std::net::{SocketAddr, TcpStream};

use super::source::{Op, SourceOps, Stage, ACCEPT_QUEUE};
use super::{copy_error, Finished, OpError, OpId, OpKind, Ops};
use crate::sys::{self, AcceptError, NativeIo, OpDone, Selector, Source, MAX_GATHER};

impl Ops {
    /// Hands the posted read, if it did not finish at once, to the ring. A
    /// refused submission refuses the post.
    pub(super) fn submit_read(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
    ) -> Result<(), OpError> {
        let Some(op) = io.read.as_mut() else {
            return Ok(());
        };
        let id = OpId::new(io.index, op.seq);
        let buf = std::mem::take(&mut op.buf);
        match sel.submit_recv(src, id.bits(), buf) {
            Ok(k) => {
                op.kernel = k;
                op.stage = Stage::InKernel;
                Ok(())
            }
            Err((e, buf)) => {
                io.read = None;
                Err(OpError::from_parts(e, buf))
            }
        }
    }

    /// Hands the posted accept to the ring: it waits for the listener's
    /// multishot accept, armed now if it is not (a single-shot accept where
    /// the kernel has no multishot or refused it on this listener). False
    /// if the ring refused it (it stays pending, for the emulation).
    pub(super) fn submit_accept(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
    ) -> bool {
        let Some(op) = io.read.as_mut() else {
            return false;
        };
        let id = OpId::new(io.index, op.seq).bits();
        let kernel = match io.multishot {
            // Armed, or its cancellation under way: its last completion
            // arms it again for this accept.
            Some(k) => Ok(k),
            None if io.single_accept => sel.submit_accept(src, id),
            None => match sel.submit_accept_multi(src, id) {
                Ok(Some(k)) => {
                    io.multishot = Some(k);
                    io.multishot_stopping = false;
                    io.multishot_fresh = true;
                    Ok(k)
                }
                Ok(None) | Err(_) => sel.submit_accept(src, id),
            },
        };
        match kernel {
            Ok(k) => {
                op.kernel = k;
                op.stage = Stage::InKernel;
                true
            }
            Err(_) => false,
        }
    }

    /// A posted accept finds a connection the multishot accepted before
    /// it: it finishes with it at once (its event comes with the next
    /// wait, as for every finished operation). False if none waits.
    pub(super) fn accept_arrived(&mut self, io: &mut SourceOps) -> bool {
        if !io.read.as_ref().is_some_and(|op| op.kind == OpKind::Accept) {
            return false;
        }
        let Some((stream, peer)) = io.arrived.pop_front() else {
            return false;
        };
        let op = io.read.take().expect("the posted accept");
        io.accepted.push((op.seq, stream, peer));
        self.finish(io, op);
        true
    }

    /// A completion of the listener's multishot accept: its connection
    /// goes to the posted accept, or waits on the source for the next post
    /// (when [`ACCEPT_QUEUE`] wait, the multishot is cancelled: the
    /// kernel's backlog holds the rest). A connection that died before it
    /// was accepted is skipped; another error ends the posted accept (with
    /// none posted, the next post arms the multishot again and meets it).
    /// Its last completion (no `more`: cancelled, or ended by the kernel)
    /// arms it again for a posted accept still waiting.
    fn on_multishot_accept(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
        done: OpDone,
    ) {
        let last = !done.more;
        let fresh = io.multishot_fresh;
        let stopping = io.multishot_stopping;
        let kernel = io.multishot;
        if last {
            io.multishot = None;
            io.multishot_stopping = false;
        }
        let waiting = |io: &SourceOps| {
            io.read.as_ref().is_some_and(|op| {
                op.kind == OpKind::Accept
                    && op.stage == Stage::InKernel
                    && Some(op.kernel) == kernel
            })
        };
        if !done.cancelled {
            match accepted(done) {
                Ok(Some(conn)) => {
                    io.multishot_fresh = false;
                    self.hand_over(io, conn, kernel);
                }
                Ok(None) => {}
                // The kernel refused the multishot itself: single-shot
                // accepts on this listener from now on.
                Err(e) if last && fresh && e.kind() == io::ErrorKind::InvalidInput => {
                    io.single_accept = true;
                }
                Err(e) => {
                    if waiting(io) {
                        let mut op = io.read.take().expect("the posted accept");
                        op.stage = Stage::Pending;
                        op.error = Some(e);
                        self.finish(io, op);
                    }
                }
            }
        }
        if last {
            if waiting(io) {
                if let Some(op) = io.read.as_mut() {
                    op.stage = Stage::Pending;
                }
                // Armed again: from the ring or, if it refuses, the
                // emulation.
                if !self.submit_accept(sel, src, io) {
                    self.try_accept(src, io);
                }
            }
        } else if io.arrived.len() >= ACCEPT_QUEUE && !stopping {
            if let Some(k) = kernel {
                // Should the cancellation not go in, the multishot stays
                // armed and the queue grows: nothing is lost.
                if sel.stop_op(k).is_ok() {
                    io.multishot_stopping = true;
                }
            }
        }
    }

    /// A connection from the multishot `kernel`: to the accept posted and
    /// waiting for it, or onto the source's queue.
    fn hand_over(
        &mut self,
        io: &mut SourceOps,
        conn: (TcpStream, SocketAddr),
        kernel: Option<u64>,
    ) {
        let waiting = io.read.as_ref().is_some_and(|op| {
            op.kind == OpKind::Accept && op.stage == Stage::InKernel && Some(op.kernel) == kernel
        });
        if !waiting {
            io.arrived.push_back(conn);
            return;
        }
        let mut op = io.read.take().expect("the posted accept");
        op.stage = Stage::Pending;
        io.accepted.push((op.seq, conn.0, conn.1));
        self.finish(io, op);
    }

    /// Withdraws the posted accept `op`, waiting for the listener's
    /// multishot: the multishot is cancelled and waited for (after
    /// `cancel_io` nothing more is taken from the kernel's backlog), and its
    /// completions not seen yet are handled — the first connection among
    /// them is the accept's real outcome, the others wait on the source
    /// for the next posts.
    fn cancel_multishot(&mut self, sel: &mut Selector, io: &mut SourceOps, mut op: Op) -> Finished {
        let mut conn = None;
        match sel.cancel_multi(op.kernel) {
            Ok(dones) => {
                io.multishot = None;
                io.multishot_stopping = false;
                for done in dones {
                    if done.cancelled {
                        continue;
                    }
                    match accepted(done) {
                        Ok(Some(c)) if conn.is_none() && op.error.is_none() => conn = Some(c),
                        Ok(Some(c)) => io.arrived.push_back(c),
                        Ok(None) => {}
                        Err(e) if conn.is_none() && op.error.is_none() => op.error = Some(e),
                        Err(_) => {}
                    }
                }
            }
            // The wait failed: its completions come as usual, to the
            // source's queue.
            Err(e) => op.error = Some(e),
        }
        let mut f = op.into_finished();
        f.accepted = conn;
        f
    }

    /// A native accept finished: keep the connection, or skip one that
    /// died before it was accepted and submit the accept again.
    fn on_native_accept(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
        done: OpDone,
    ) {
        let Some(op) = io.read.as_mut() else { return };
        op.stage = Stage::Pending;
        match accepted(done) {
            Ok(Some((stream, peer))) => io.accepted.push((op.seq, stream, peer)),
            Ok(None) => {
                // Skipped: the next connection, from the ring or, if it
                // refuses, the emulation.
                if !self.submit_accept(sel, src, io) {
                    self.try_accept(src, io);
                }
                return;
            }
            Err(e) => op.error = Some(e),
        }
        let op = io.read.take().expect("the posted accept");
        self.finish(io, op);
    }

    /// Hands the queued writes to the ring, unless they are there already:
    /// a lone write's unwritten rest as an `IORING_OP_SEND`; several (up to
    /// [`MAX_GATHER`]) as one `IORING_OP_SENDMSG`, the front one's rest and
    /// the others whole, an iovec each. Each write keeps its own
    /// completion: [`on_native`](Ops::on_native) counts what went out off
    /// them in order. A refused submission ends the front write with its
    /// error, and the next ones get their own try.
    pub(super) fn send_front(&mut self, sel: &mut Selector, src: Source<'_>, io: &mut SourceOps) {
        loop {
            let Some(front) = io.writes.front() else {
                return;
            };
            if front.stage == Stage::InKernel {
                return;
            }
            let id = OpId::new(io.index, front.seq).bits();
            let offset = front.bytes;
            let take = io.writes.len().min(MAX_GATHER);
            let r = if take == 1 {
                let op = io.writes.front_mut().expect("the front write");
                let buf = std::mem::take(&mut op.buf);
                sel.submit_send(src, id, buf, offset).map_err(|(e, buf)| {
                    op.buf = buf;
                    e
                })
            } else {
                let mut bufs = std::mem::take(&mut self.gather);
                bufs.extend(
                    io.writes
                        .iter_mut()
                        .take(take)
                        .map(|op| std::mem::take(&mut op.buf)),
                );
                sel.submit_send_gathered(src, id, bufs, offset)
                    .map_err(|(e, bufs)| {
                        self.give_back(io, bufs);
                        e
                    })
            };
            match r {
                Ok(k) => {
                    for op in io.writes.iter_mut().take(take) {
                        op.kernel = k;
                        op.stage = Stage::InKernel;
                    }
                    return;
                }
                Err(e) => {
                    let mut op = io.dequeue().expect("the front write");
                    op.error = Some(e);
                    self.finish(io, op);
                }
            }
        }
    }

    /// The buffers of a gathered send back to their writes, the front ones
    /// in order; the emptied list is kept for the next.
    fn give_back(&mut self, io: &mut SourceOps, mut bufs: Vec<Vec<u8>>) {
        for (op, buf) in io.writes.iter_mut().zip(bufs.drain(..)) {
            op.buf = buf;
            op.stage = Stage::Pending;
        }
        self.gather = bufs;
    }

    /// A native send's completion (or its cancellation's) for the writes
    /// it covered, at the front of the queue: their buffers go back, what
    /// went out is counted off them in order — each one all out finishes
    /// with its count, one cut short keeps its place and its offset — and
    /// an error ends the front one.
    fn sent(&mut self, io: &mut SourceOps, done: OpDone) {
        if done.bufs.is_empty() {
            if let Some(op) = io.writes.front_mut() {
                op.buf = done.buf;
                op.stage = Stage::Pending;
            }
        } else {
            self.give_back(io, done.bufs);
        }
        match usize::try_from(done.result) {
            Ok(n) => {
                if !self.count_out(io, n) {
                    // Nothing went out of a non-empty rest.
                    let mut op = io.dequeue().expect("the front write");
                    op.error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    self.finish(io, op);
                }
            }
            Err(_) if done.cancelled => {}
            Err(_) => {
                let mut op = io.dequeue().expect("the front write");
                op.error = Some(io::Error::from_raw_os_error(-done.result));
                self.finish(io, op);
            }
        }
    }

    /// A native submission finished: complete its operation, or send the
    /// rest of a write the kernel took only part of.
    pub(crate) fn on_native(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        done: OpDone,
    ) {
        if done.recv_stream {
            return self.on_native_stream(sel, src, slot, io, done);
        }
        if done.multi {
            return self.on_multishot_accept(sel, src, io, done);
        }
        let seq = OpId::from_bits(done.op).seq();
        let in_kernel = |op: &Op| op.seq == seq && op.stage == Stage::InKernel;
        if io
            .read
            .as_ref()
            .is_some_and(|op| in_kernel(op) && op.kind == OpKind::Accept)
        {
            return self.on_native_accept(sel, src, io, done);
        }
        if io.connect.as_ref().is_some_and(in_kernel) {
            let mut op = io.connect.take().expect("the posted connect");
            if done.result < 0 {
                op.error = Some(io::Error::from_raw_os_error(-done.result));
            }
            self.finish(io, op);
            return;
        }
        if io.read.as_ref().is_some_and(in_kernel) {
            let mut op = io.read.take().expect("the posted read");
            op.buf = done.buf;
            match usize::try_from(done.result) {
                Ok(n) => op.bytes = n,
                Err(_) => op.error = Some(io::Error::from_raw_os_error(-done.result)),
            }
            self.finish(io, op);
            return;
        }
        if !io.writes.front().is_some_and(in_kernel) {
            return; // withdrawn meanwhile: its buffers go
        }
        self.sent(io, done);
        // What is left, and the writes queued meanwhile, go back to the
        // ring together.
        self.send_front(sel, src, io);
    }

    /// Cancels operation `seq` if it is in the ring: cancelled there and
    /// waited for (its buffer is the kernel's until then). If it finished
    /// first, its real outcome is handed back. `None` if it is not in the
    /// ring.
    pub(super) fn cancel_in_kernel(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
        seq: u32,
    ) -> Option<Finished> {
        let in_kernel = |op: &Op| op.seq == seq && op.stage == Stage::InKernel;
        if io.connect.as_ref().is_some_and(in_kernel) {
            // Withdrawn, or its real outcome if it finished first.
            let mut op = io.connect.take().expect("the posted connect");
            op.stage = Stage::Pending;
            match sel.cancel_op(op.kernel) {
                Ok(Some(done)) if done.cancelled || done.result >= 0 => {}
                Ok(Some(done)) => op.error = Some(io::Error::from_raw_os_error(-done.result)),
                Ok(None) => {}
                Err(e) => op.error = Some(e),
            }
            return Some(op.into_finished());
        }
        let read = io.read.as_ref().is_some_and(in_kernel);
        if !read {
            let write = io
                .writes
                .iter()
                .take_while(|op| op.stage == Stage::InKernel)
                .any(|op| op.seq == seq);
            return write.then(|| self.cancel_send(sel, src, io, seq));
        }
        let mut op = io.read.take().expect("the posted read");
        op.stage = Stage::Pending;
        if op.kind == OpKind::Accept && io.multishot == Some(op.kernel) {
            return Some(self.cancel_multishot(sel, io, op));
        }
        if op.kind == OpKind::Accept {
            // Withdrawn, or its real outcome: a connection is handed over.
            let mut accepted_now = None;
            match sel.cancel_op(op.kernel) {
                Ok(Some(done)) if done.cancelled => {}
                Ok(Some(done)) => match accepted(done) {
                    Ok(conn) => accepted_now = conn,
                    Err(e) => op.error = Some(e),
                },
                Ok(None) => {}
                Err(e) => op.error = Some(e),
            }
            let mut f = op.into_finished();
            f.accepted = accepted_now;
            return Some(f);
        }
        match sel.cancel_op(op.kernel) {
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
        Some(op.into_finished())
    }

    /// Cancels write `seq`, one of those a send in the ring covers: the
    /// send is withdrawn and waited for, what it sent is counted off its
    /// writes in order (those all out finish as usual), and `seq` is handed
    /// back — withdrawn with what of it went out, or taken if it was all
    /// out. The others go back to the ring.
    fn cancel_send(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
        seq: u32,
    ) -> Finished {
        let kernel = io.writes.front().expect("a write in the ring").kernel;
        match sel.cancel_op(kernel) {
            Ok(Some(done)) => self.sent(io, done),
            // Not found (cannot be: it was in flight), or the wait failed:
            // the buffers stay with the selector, which drops them when
            // the completion comes (or leaks them rather than free them
            // under the kernel). The writes they belonged to end here.
            r => {
                let e = match r {
                    Err(e) => e,
                    _ => io::Error::other("the ring lost a send's completion"),
                };
                let mut mine = None;
                while io
                    .writes
                    .front()
                    .is_some_and(|op| op.stage == Stage::InKernel)
                {
                    let mut op = io.dequeue().expect("the front write");
                    op.stage = Stage::Pending;
                    op.error = Some(copy_error(&e));
                    if op.seq == seq {
                        mine = Some(op.into_finished());
                    } else {
                        self.finish(io, op);
                    }
                }
                self.send_front(sel, src, io);
                return mine.expect("the cancelled write was in the ring");
            }
        }
        let f = match io.withdraw(seq) {
            Some(op) => op.into_finished(),
            None => io
                .take(OpId::new(io.index, seq))
                .expect("a write counted out is finished"),
        };
        self.send_front(sel, src, io);
        f
    }
}

/// What a native accept's completion means: the connection and its peer,
/// `None` for one that died before it was accepted (skipped, as the
/// emulation skips it), or the error that ends the accept.
fn accepted(done: OpDone) -> io::Result<Option<(TcpStream, SocketAddr)>> {
    let Some(stream) = done.stream else {
        let e = io::Error::from_raw_os_error(-done.result);
        return if e.kind() == io::ErrorKind::Interrupted
            || e.kind() == io::ErrorKind::ConnectionAborted
            || sys::accept_error(&e) == AcceptError::Aborted
        {
            Ok(None)
        } else {
            Err(e)
        };
    };
    Ok(stream.peer_addr().ok().map(|peer| (stream, peer)))
}
