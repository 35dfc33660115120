//! The emulated path: on a readiness backend (epoll, poll, kqueue, IOCP's
//! AFD polls) an operation is a syscall tried at once and again whenever
//! readiness says it may get further. Queued writes go out gathered: one
//! `writev`/`sendmsg` (`WSASend` with several buffers on Windows) takes up
//! to [`MAX_GATHER`] of them.

use std::io::{self, IoSlice};

use super::source::{Op, SourceOps};
use super::{copy_error, unwanted, OpKind, Ops};
use crate::interest::Interest;
use crate::readiness::Readiness;
use crate::sys::{self, AcceptError, Selector, Source, MAX_GATHER};
use crate::Trigger;

impl Ops {
    /// Readiness for a source with operation state: runs what it unblocks,
    /// changes the OS registration as the operations left need, and
    /// returns what is left for the caller's `Event::Io` (empty for
    /// nothing).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_ready(
        &mut self,
        sel: &mut Selector,
        src: Source<'_>,
        slot: u64,
        io: &mut SourceOps,
        ready: Readiness,
        caller: Interest,
        trigger: Trigger,
    ) -> Readiness {
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
        // Readability a posted read was waiting for was wanted, even if
        // the read has finished with it: the next read is usually posted
        // before the next data, so the interest stays (see `unwanted`).
        let mut unasked = ready;
        if io.read.is_some() {
            unasked = unasked.without(Readiness::READABLE);
            left = left.without(READ_SIDE);
            if io.read_emulated() && ready.intersects(READ_SIDE.union(Readiness::ERROR)) {
                self.try_read(src, io, trigger);
                consumed = true;
            }
        }
        if let Some(st) = &io.stream {
            left = left.without(READ_SIDE);
            if st.wants_readable() && ready.intersects(READ_SIDE.union(Readiness::ERROR)) {
                self.try_stream(src, slot, io, trigger);
                consumed = true;
            }
        }
        if io.connect.is_some() {
            // A socket still connecting has no stream to close yet: its
            // hang-up and error (and writability) are the connect's
            // outcome, not the caller's. (On the ring, a poll armed in the
            // enter that submits the connect may see the socket before it
            // starts connecting: unconnected, which reads as hung up.)
            left = left
                .without(WRITE_SIDE)
                .without(Readiness::READ_CLOSED)
                .without(Readiness::ERROR);
            if io.connect_emulated() && ready.intersects(WRITE_SIDE.union(Readiness::ERROR)) {
                self.try_connect(src, io, ready.is_error());
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
        } else if io.armed.exceeds(want) && unwanted(unasked, io.armed, want) {
            // Readiness nobody wants (writable with the writes out, readable
            // with no read posted): stop asking for it.
            Some(want)
        } else {
            None
        };
        if let Some(want) = rearm {
            self.rearm(sel, src, slot, io, want, trigger);
        }
        left
    }

    /// Re-arming the source failed: the pending operations cannot make
    /// progress, so they end with that error.
    pub(super) fn fail_pending(&mut self, io: &mut SourceOps, e: &io::Error) {
        if io.connect_emulated() {
            let mut op = io.connect.take().expect("the posted connect");
            op.error = Some(copy_error(e));
            self.finish(io, op);
        }
        if io.read_emulated() {
            let mut op = io.read.take().expect("the posted read");
            op.error = Some(copy_error(e));
            self.finish(io, op);
        }
        if io.stream.as_ref().is_some_and(|st| !st.native) {
            self.end_stream(io, Some(copy_error(e)));
        }
        if io.native {
            // Its reads and writes wait in the ring, not on the
            // registration.
            return;
        }
        while let Some(mut op) = io.dequeue() {
            op.error = Some(copy_error(e));
            self.finish(io, op);
        }
    }

    #[inline]
    pub(super) fn try_read(&mut self, src: Source<'_>, io: &mut SourceOps, trigger: Trigger) {
        let Some(op) = io.read.as_mut() else { return };
        if op.kind == OpKind::Accept {
            return self.try_accept(src, io);
        }
        let room = op.buf.capacity() - op.buf.len();
        match sys::read(src, &mut op.buf, io.socket) {
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

    /// Accepts a connection for the posted accept. A connection that died
    /// before it was accepted is skipped; any other failure ends the
    /// accept with its error — also running out of descriptors or buffers
    /// (`EMFILE`, `ENOBUFS`...), which the caller answers by posting again
    /// later: the listener stays registered, and nothing spins meanwhile.
    pub(super) fn try_accept(&mut self, src: Source<'_>, io: &mut SourceOps) {
        let Some(op) = io.read.as_mut() else { return };
        loop {
            match sys::accept(src) {
                Ok((stream, peer)) => {
                    io.accepted.push((op.seq, stream, peer));
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    io.maybe_readable = false;
                    return;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted
                        || sys::accept_error(&e) == AcceptError::Aborted => {}
                Err(e) => {
                    op.error = Some(e);
                    break;
                }
            }
        }
        let op = io.read.take().expect("the posted accept");
        self.finish(io, op);
    }

    /// Readiness for a connect in progress: finishes it if the OS has an
    /// outcome. `error`: the readiness was an error, so a connect the OS
    /// still calls in progress has failed all the same.
    pub(super) fn try_connect(&mut self, src: Source<'_>, io: &mut SourceOps, error: bool) {
        let Some(op) = io.connect.as_mut() else {
            return;
        };
        match sys::connected(src) {
            Ok(true) => {}
            Ok(false) if !error => return,
            Ok(false) => op.error = Some(io::ErrorKind::ConnectionRefused.into()),
            Err(e) => op.error = Some(e),
        }
        let op = io.connect.take().expect("the posted connect");
        self.finish(io, op);
    }

    /// Writes from the front of the queue until it is empty or the source
    /// is full: one write for a lone buffer, else the unwritten rests of
    /// the front writes gathered into one call. What went out is counted
    /// off the writes in order; each that is all out finishes, and one cut
    /// short keeps its place and resumes where it stopped. An error ends
    /// the front write, and the next ones get their own try.
    pub(super) fn flush(&mut self, src: Source<'_>, io: &mut SourceOps) {
        loop {
            let r = match io.writes.len() {
                0 => return,
                1 => {
                    let op = &io.writes[0];
                    if op.bytes == op.buf.len() {
                        Ok(0) // an empty write: out once it is at the front
                    } else {
                        sys::write(src, &op.buf[op.bytes..], io.socket)
                    }
                }
                n => {
                    // The usual few on the stack: no allocation per call.
                    const ON_STACK: usize = 64;
                    let take = n.min(MAX_GATHER);
                    let rests = io
                        .writes
                        .iter()
                        .take(take)
                        .map(|op| IoSlice::new(&op.buf[op.bytes..]));
                    if take <= ON_STACK {
                        let mut slices = [IoSlice::new(&[]); ON_STACK];
                        for (slot, rest) in slices.iter_mut().zip(rests) {
                            *slot = rest;
                        }
                        sys::write_vectored(src, &slices[..take], io.socket)
                    } else {
                        let slices: Vec<IoSlice<'_>> = rests.collect();
                        sys::write_vectored(src, &slices, io.socket)
                    }
                }
            };
            match r {
                Ok(n) => {
                    if !self.count_out(io, n) {
                        // Nothing went out of a non-empty rest.
                        let mut op = io.dequeue().expect("the front write");
                        op.error = Some(io::Error::from(io::ErrorKind::WriteZero));
                        self.finish(io, op);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    let mut op = io.dequeue().expect("the front write");
                    op.error = Some(e);
                    self.finish(io, op);
                }
            }
        }
    }

    /// Counts `n` bytes written off the front writes, finishing each that
    /// is all out (and the empty writes reached). False if the front write
    /// has bytes left and none of them went out.
    #[inline]
    pub(super) fn count_out(&mut self, io: &mut SourceOps, mut n: usize) -> bool {
        let mut progress = false;
        while let Some(op) = io.writes.front_mut() {
            let left = op.buf.len() - op.bytes;
            if n < left {
                op.bytes += n;
                return progress || n > 0;
            }
            op.bytes += left;
            n -= left;
            progress = true;
            let op: Op = io.dequeue().expect("the front write");
            self.finish(io, op);
        }
        true
    }
}
