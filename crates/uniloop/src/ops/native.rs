//! The native path: on io_uring a posted read on a socket is submitted to
//! the ring at once, and a write that does not finish at once (or is held
//! for the next `wait`) after it — the read's buffer as an
//! `IORING_OP_RECV`, the front write's unwritten rest as an
//! `IORING_OP_SEND` (the writes behind it wait their turn here, so they go
//! out in order; when it completes, those queued behind it go out gathered
//! in one non-blocking `sendmsg`, as on the emulated path, and the ring
//! gets what the socket did not take). While the kernel has a buffer it belongs to the
//! selector, not to the operation (whose stage is `InKernel` and `kernel`
//! names the submission); its completion brings it back through
//! [`Ops::on_native`], and a cancel waits for the kernel to let go of it
//! first.

use std::io;
use std::net::{SocketAddr, TcpStream};

use super::source::{Op, SourceOps, Stage};
use super::{Finished, OpError, OpId, OpKind, Ops};
use crate::sys::{self, AcceptError, NativeIo, OpDone, Selector, Source};

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

    /// Hands the posted accept to the ring. False if the ring refused it
    /// (it stays pending, for the emulation).
    pub(super) fn submit_accept(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        io: &mut SourceOps,
    ) -> bool {
        let Some(op) = io.read.as_mut() else {
            return false;
        };
        match sel.submit_accept(src, OpId::new(io.index, op.seq).bits()) {
            Ok(k) => {
                op.kernel = k;
                op.stage = Stage::InKernel;
                true
            }
            Err(_) => false,
        }
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

    /// Hands the front write's unwritten rest to the ring, unless it is
    /// there already. A refused submission ends the write with its error.
    pub(super) fn send_front(&mut self, sel: &mut Selector, src: Source<'_>, io: &mut SourceOps) {
        loop {
            let Some(op) = io.writes.front_mut() else {
                return;
            };
            if op.stage == Stage::InKernel {
                return;
            }
            let id = OpId::new(io.index, op.seq);
            let buf = std::mem::take(&mut op.buf);
            match sel.submit_send(src, id.bits(), buf, op.bytes) {
                Ok(k) => {
                    op.kernel = k;
                    op.stage = Stage::InKernel;
                    return;
                }
                Err((e, buf)) => {
                    op.buf = buf;
                    op.error = Some(e);
                    let op = io.dequeue().expect("the front write");
                    self.finish(io, op);
                    // The next one gets its own try.
                }
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
        let Some(op) = io.writes.front_mut().filter(|op| in_kernel(op)) else {
            return; // withdrawn meanwhile: its buffer goes
        };
        op.stage = Stage::Pending;
        op.buf = done.buf;
        let left = op.buf.len() - op.bytes;
        let finished = match usize::try_from(done.result) {
            Ok(0) if left > 0 => {
                op.error = Some(io::Error::from(io::ErrorKind::WriteZero));
                true
            }
            Ok(n) => {
                op.bytes += n.min(left);
                op.bytes == op.buf.len()
            }
            Err(_) => {
                op.error = Some(io::Error::from_raw_os_error(-done.result));
                true
            }
        };
        if finished {
            let op = io.dequeue().expect("the front write");
            self.finish(io, op);
        }
        // The writes queued meanwhile go out gathered, as far as the
        // socket takes them at once (one sendmsg for up to 1,024 of them);
        // the ring gets the rest of the front one.
        self.flush(src, io);
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
        let write = io.writes.front().is_some_and(in_kernel);
        if !read && !write {
            return None;
        }
        let mut op = if read {
            io.read.take().expect("the posted read")
        } else {
            // Sent or withdrawn, none of it is queued any more.
            io.dequeue().expect("the front write")
        };
        op.stage = Stage::Pending;
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
        if write {
            self.send_front(sel, src, io);
        }
        Some(op.into_finished())
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
