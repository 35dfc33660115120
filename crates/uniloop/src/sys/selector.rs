//! The backend contract as traits: what every backend's selector does
//! ([`Open`], [`Poller`]) and what only some do natively ([`NativeIo`],
//! whose defaults say "not here"), and [`selectors!`], which generates the
//! per-platform `Selector` enum that dispatches to them.
//!
//! The runtime holds one `Selector` and calls it through these traits, so a
//! backend that drifts from the contract (a parameter added, a method
//! missing) fails to compile rather than being papered over.

use std::io;
use std::time::Duration;

use super::{OpDone, RawOsHandle, Source, Waker};
use crate::interest::Interest;
use crate::readiness::Readiness;
use crate::trigger::Trigger;

/// Making a backend's selector: one per runtime.
pub(crate) trait Open: Sized {
    /// Creates the OS object and its doorbell. The [`Waker`] is `Send +
    /// Sync`, implements [`Notify`](super::Notify) (never blocks; ringing
    /// twice before a drain is the same as once), and outlives the
    /// selector, so a `Poster` that rings after the runtime is gone touches
    /// a live object.
    fn open() -> io::Result<(Self, Waker)>;

    /// `Ok` if this system lets the backend be created; otherwise an error
    /// naming the cause (`PermissionDenied` where the system refuses it, as
    /// io_uring may be). The default is for a backend that is there
    /// whenever it is compiled in.
    fn probe() -> io::Result<()> {
        Ok(())
    }
}

/// A boxed selector (one much larger than the others) opens as its
/// contents do.
impl<T: Open> Open for Box<T> {
    fn open() -> io::Result<(Self, Waker)> {
        T::open().map(|(selector, waker)| (Box::new(selector), waker))
    }

    fn probe() -> io::Result<()> {
        T::probe()
    }
}

/// Readiness: registrations and the one call that blocks.
///
/// Every backend supports level, edge and oneshot as `Backend::supports`
/// says; a oneshot registration is reported once and then disarmed until
/// [`reregister`](Poller::reregister). A source closed while registered
/// reports nothing from then on (the kernel forgets it on epoll and kqueue;
/// poll disarms a `POLLNVAL` entry, IOCP a socket whose poll says
/// `AFD_POLL_LOCAL_CLOSE` or whose handle is invalid): never an event, never
/// a busy loop. Each OS condition maps to its own
/// [`Readiness`] flag: readable, writable, read-closed (the
/// peer's FIN), write-closed (hang-up), error, priority.
pub(crate) trait Poller {
    /// Starts reporting `source` under `slot`, the runtime's `u64` name for
    /// the registration (never the user's token, never an fd). The runtime
    /// has already rejected duplicates, unknown sources and unsupported
    /// triggers, so a backend only reports what the OS says (a bad fd, say).
    fn register(
        &mut self,
        source: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()>;

    /// Registers `source` whose number the runtime's registry still has,
    /// under `old`; the source registered then may have been closed without
    /// `deregister` and the number reused. The backend asks the OS: if `old`
    /// is this very source's live registration, it fails with
    /// [`already_registered`](super::already_registered) and changes
    /// nothing; if it is stale, it forgets it (and anything it still had for
    /// it) and registers `source` under `slot`, so that nothing is reported
    /// under `old` any more.
    fn replace(
        &mut self,
        source: Source<'_>,
        old: u64,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()>;

    /// Changes a registration's interest or trigger (and re-arms a spent
    /// oneshot). More interest, as a pending posted operation asks for, is
    /// reported from the next [`select`](Poller::select) on.
    fn reregister(
        &mut self,
        source: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()>;

    /// Stops reporting `source`. A source the OS has already forgotten
    /// (closed and its number reused) is not an error: the runtime's
    /// registry entry is what matters.
    fn deregister(&mut self, source: Source<'_>) -> io::Result<()>;

    /// Waits at most `timeout` (`None` = forever, `Some(ZERO)` = poll;
    /// sub-millisecond timeouts round *up*), appends at most `max` `(slot,
    /// Readiness)` pairs to `out`, and returns whether the doorbell rang and
    /// needs draining (the runtime then drains it; an edge-triggered
    /// doorbell, as on epoll, needs none and reports `false`); the doorbell
    /// is never reported as a slot.
    ///
    /// Readiness that did not fit stays with the OS (or the backend) for the
    /// next call; nothing is dropped. Level-triggered readiness that did not
    /// fit is reported round-robin, so no source starves another. `EINTR`
    /// is returned as `ErrorKind::Interrupted`; the runtime retries with the
    /// remaining time.
    fn select(
        &mut self,
        out: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<bool>;

    /// [`select`](Poller::select), handing each `(slot, Readiness)` to `f`
    /// as it is read instead of appending it: what the runtime calls. The
    /// default goes through `select` into `scratch` and hands the pairs
    /// over from there (leaving it empty); epoll overrides it and hands its
    /// records to `f` straight from the kernel's buffer.
    #[inline]
    fn select_each(
        &mut self,
        scratch: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
        mut f: impl FnMut(u64, Readiness),
    ) -> io::Result<bool> {
        let r = self.select(scratch, max, timeout);
        if r.is_ok() {
            for &(slot, ready) in scratch.iter() {
                f(slot, ready);
            }
        }
        scratch.clear();
        r
    }

    /// The OS object another loop can wait on for this one
    /// ([`Runtime::os_handle`](crate::Runtime::os_handle)): readable (or
    /// signalled) while [`select`](Poller::select) has something to
    /// report. `None` where no single object covers the registrations
    /// (poll).
    fn os_handle(&self) -> Option<RawOsHandle>;

    /// Makes what the OS knows complete before another loop waits on
    /// [`os_handle`](Poller::os_handle) (io_uring submits its queued
    /// polls); true if something is already collected in user space, so
    /// that waiting on the handle would miss it. The default has nothing to
    /// do.
    fn prepare_external(&mut self) -> io::Result<bool> {
        Ok(false)
    }
}

/// Native completion I/O: posted reads and writes the kernel performs
/// (io_uring `RECV`/`SEND`; overlapped `WSARecv`/`WSASend` would be
/// another). A backend without it keeps the defaults: `native_io` is false
/// and the runtime never calls the rest, running posted I/O through the
/// readiness emulation in [`ops`](crate::ops) instead.
///
/// With it, the caller's buffer is the selector's from submission until its
/// completion has been seen, never freed or moved while the kernel may
/// write it; a cancellation is waited for before a buffer is released;
/// completions come back as [`OpDone`] after [`Poller::select`], and `ops`
/// queues them like its own.
pub(crate) trait NativeIo {
    /// Whether posted reads and writes may be submitted to the kernel.
    fn native_io(&self) -> bool {
        false
    }

    /// Submits a read on socket `source` into `buf`'s spare capacity for the
    /// runtime's operation `op` (`OpId` bits); returns the submission's id
    /// for [`cancel_op`](NativeIo::cancel_op). On an error the buffer comes
    /// back untouched.
    fn submit_recv(
        &mut self,
        source: Source<'_>,
        op: u64,
        buf: Vec<u8>,
    ) -> Result<u64, (io::Error, Vec<u8>)> {
        let _ = (source, op);
        Err((no_native_io(), buf))
    }

    /// Submits a write on socket `source` of `buf[offset..]` for the
    /// runtime's operation `op`; as [`submit_recv`](NativeIo::submit_recv)
    /// otherwise.
    fn submit_send(
        &mut self,
        source: Source<'_>,
        op: u64,
        buf: Vec<u8>,
        offset: usize,
    ) -> Result<u64, (io::Error, Vec<u8>)> {
        let _ = (source, op, offset);
        Err((no_native_io(), buf))
    }

    /// Submits one write on socket `source` of several buffers in order —
    /// `bufs[0][offset..]`, then each of the others whole — for the
    /// runtime's operation `op`; as [`submit_send`](NativeIo::submit_send)
    /// otherwise. The completion's result counts the bytes of all of them,
    /// and [`OpDone::bufs`](crate::sys::OpDone) brings them back in order.
    fn submit_send_gathered(
        &mut self,
        source: Source<'_>,
        op: u64,
        bufs: Vec<Vec<u8>>,
        offset: usize,
    ) -> Result<u64, (io::Error, Vec<Vec<u8>>)> {
        let _ = (source, op, offset);
        Err((no_native_io(), bufs))
    }

    /// Submits an accept on the listening socket `source` for the
    /// runtime's operation `op`: the connection comes back non-blocking
    /// and close-on-exec in [`OpDone::stream`](crate::sys::OpDone).
    fn submit_accept(&mut self, source: Source<'_>, op: u64) -> io::Result<u64> {
        let _ = (source, op);
        Err(no_native_io())
    }

    /// Submits a multishot accept on the listening socket `source` for the
    /// runtime's operation `op`: one submission gives a completion per
    /// connection ([`OpDone::more`](crate::sys::OpDone) while it stays
    /// armed; [`OpDone::multi`](crate::sys::OpDone) on every one of them).
    /// `Ok(None)` if the kernel has no multishot accept.
    fn submit_accept_multi(&mut self, source: Source<'_>, op: u64) -> io::Result<Option<u64>> {
        let _ = (source, op);
        Ok(None)
    }

    /// Asks the kernel to cancel submission `id` without waiting: its last
    /// completion comes through [`pop_op_done`](NativeIo::pop_op_done).
    fn stop_op(&mut self, id: u64) -> io::Result<()> {
        let _ = id;
        Err(no_native_io())
    }

    /// [`cancel_op`](NativeIo::cancel_op) for a multishot submission: every
    /// completion it gave that is not taken yet, in order, up to its last
    /// (the cancellation's, or its own end).
    fn cancel_multi(&mut self, id: u64) -> io::Result<Vec<OpDone>> {
        let _ = id;
        Err(no_native_io())
    }

    /// Submits a connect of the socket `source` to `addr` for the
    /// runtime's operation `op`; its result is 0 or `-errno`.
    fn submit_connect(
        &mut self,
        source: Source<'_>,
        op: u64,
        addr: std::net::SocketAddr,
    ) -> io::Result<u64> {
        let _ = (source, op, addr);
        Err(no_native_io())
    }

    /// Withdraws submission `id` and waits until the kernel has let go of
    /// its buffer: its completion (cancelled, or finished after all), or
    /// `None` if it had already completed and waits in
    /// [`pop_op_done`](NativeIo::pop_op_done).
    fn cancel_op(&mut self, id: u64) -> io::Result<Option<OpDone>> {
        let _ = id;
        Err(no_native_io())
    }

    /// The next finished submission collected by
    /// [`select`](Poller::select), if any.
    fn pop_op_done(&mut self) -> Option<OpDone> {
        None
    }

    /// Takes `count` receive buffers of `size` bytes for the kernel to
    /// pick from (io_uring's provided-buffer ring): true if it did, and
    /// from then on the runtime's pool lives here — the buffers come up
    /// with a receive stream's completions ([`OpDone::pooled`]) and go
    /// back with [`provide_buf`](NativeIo::provide_buf). False (the
    /// default) leaves the pool, and receive streams, to the readiness
    /// emulation.
    fn setup_recv_pool(&mut self, count: usize, size: usize) -> bool {
        let _ = (count, size);
        false
    }

    /// Gives a pool buffer back for the kernel to pick.
    fn provide_buf(&mut self, buf: Vec<u8>) {
        drop(buf);
    }

    /// Submits a receive stream on socket `source` for the runtime's
    /// operation `op`: completions ([`OpDone::multi`]) each with a pool
    /// buffer holding the data, `more` while it stays armed; its last ends
    /// it (end of stream, an error, `ENOBUFS` when the pool is empty, a
    /// cancel — or, on a kernel without multishot receives, every
    /// completion: the runtime submits it again).
    fn submit_recv_stream(&mut self, source: Source<'_>, op: u64) -> io::Result<u64> {
        let _ = (source, op);
        Err(no_native_io())
    }
}

fn no_native_io() -> io::Error {
    super::unsupported("native completion I/O is not available on this backend")
}

/// Generates the platform's `Selector` enum from its list of backends: one
/// variant per backend, named as its [`Backend`](crate::Backend) variant,
/// holding that backend's selector type (which implements [`Open`],
/// [`Poller`] and [`NativeIo`]), under the `cfg` that compiles it in. Also
/// generates `Selector::new(Backend)`, the [`Poller`] and [`NativeIo`]
/// impls forwarding every method to the variant's selector, and
/// `availability(Backend)`.
///
/// An enum rather than a `dyn`, so that `select` is a direct call.
macro_rules! selectors {
    ($(
        $(#[doc = $doc:expr])*
        $(#[cfg($cfg:meta)])?
        $variant:ident($held:ty)
    ),+ $(,)?) => {
        use $crate::sys::selector::Open as _;

        /// One selector per runtime, of the backend it was built with.
        /// A plain byte tag (no niche in a variant's fields): each call
        /// dispatches on one compare, where a niche-packed tag took a
        /// handful of instructions to decode on every `select`.
        #[derive(Debug)]
        #[repr(u8)]
        pub(crate) enum Selector {
            $(
                $(#[doc = $doc])*
                $(#[cfg($cfg)])?
                $variant($held),
            )+
        }

        impl Selector {
            /// A selector of `backend` and its doorbell; `Unsupported` for a
            /// backend this build does not have.
            pub(crate) fn new(
                backend: $crate::backend::Backend,
            ) -> ::std::io::Result<(Selector, $crate::sys::Waker)> {
                match backend {
                    $(
                        $(#[cfg($cfg)])?
                        $crate::backend::Backend::$variant => {
                            let (selector, waker) = <$held>::open()?;
                            Ok((Selector::$variant(selector), waker))
                        }
                    )+
                    other => Err($crate::sys::selector::not_here(other)),
                }
            }
        }

        /// Whether `backend` is compiled in and this system lets it be
        /// created, and if not, why.
        pub(crate) fn availability(
            backend: $crate::backend::Backend,
        ) -> ::std::io::Result<()> {
            match backend {
                $(
                    $(#[cfg($cfg)])?
                    $crate::backend::Backend::$variant => <$held>::probe(),
                )+
                other => Err($crate::sys::selector::not_here(other)),
            }
        }

        impl $crate::sys::selector::Poller for Selector {
            fn register(
                &mut self,
                source: $crate::sys::Source<'_>,
                slot: u64,
                interest: $crate::interest::Interest,
                trigger: $crate::trigger::Trigger,
            ) -> ::std::io::Result<()> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.register(source, slot, interest, trigger), )+
                }
            }

            fn replace(
                &mut self,
                source: $crate::sys::Source<'_>,
                old: u64,
                slot: u64,
                interest: $crate::interest::Interest,
                trigger: $crate::trigger::Trigger,
            ) -> ::std::io::Result<()> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.replace(source, old, slot, interest, trigger), )+
                }
            }

            #[inline]
            fn reregister(
                &mut self,
                source: $crate::sys::Source<'_>,
                slot: u64,
                interest: $crate::interest::Interest,
                trigger: $crate::trigger::Trigger,
            ) -> ::std::io::Result<()> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.reregister(source, slot, interest, trigger), )+
                }
            }

            fn deregister(&mut self, source: $crate::sys::Source<'_>) -> ::std::io::Result<()> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.deregister(source), )+
                }
            }

            #[inline]
            fn select(
                &mut self,
                out: &mut Vec<(u64, $crate::readiness::Readiness)>,
                max: usize,
                timeout: Option<::std::time::Duration>,
            ) -> ::std::io::Result<bool> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.select(out, max, timeout), )+
                }
            }

            #[inline(always)]
            fn select_each(
                &mut self,
                scratch: &mut Vec<(u64, $crate::readiness::Readiness)>,
                max: usize,
                timeout: Option<::std::time::Duration>,
                f: impl FnMut(u64, $crate::readiness::Readiness),
            ) -> ::std::io::Result<bool> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.select_each(scratch, max, timeout, f), )+
                }
            }

            #[inline]
            fn os_handle(&self) -> Option<$crate::sys::RawOsHandle> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.os_handle(), )+
                }
            }

            fn prepare_external(&mut self) -> ::std::io::Result<bool> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.prepare_external(), )+
                }
            }
        }

        impl $crate::sys::selector::NativeIo for Selector {
            #[inline]
            fn native_io(&self) -> bool {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.native_io(), )+
                }
            }

            fn submit_recv(
                &mut self,
                source: $crate::sys::Source<'_>,
                op: u64,
                buf: Vec<u8>,
            ) -> Result<u64, (::std::io::Error, Vec<u8>)> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.submit_recv(source, op, buf), )+
                }
            }

            fn submit_send(
                &mut self,
                source: $crate::sys::Source<'_>,
                op: u64,
                buf: Vec<u8>,
                offset: usize,
            ) -> Result<u64, (::std::io::Error, Vec<u8>)> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.submit_send(source, op, buf, offset), )+
                }
            }

            fn submit_send_gathered(
                &mut self,
                source: $crate::sys::Source<'_>,
                op: u64,
                bufs: Vec<Vec<u8>>,
                offset: usize,
            ) -> Result<u64, (::std::io::Error, Vec<Vec<u8>>)> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.submit_send_gathered(source, op, bufs, offset), )+
                }
            }

            fn submit_accept(
                &mut self,
                source: $crate::sys::Source<'_>,
                op: u64,
            ) -> ::std::io::Result<u64> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.submit_accept(source, op), )+
                }
            }

            fn submit_accept_multi(
                &mut self,
                source: $crate::sys::Source<'_>,
                op: u64,
            ) -> ::std::io::Result<Option<u64>> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.submit_accept_multi(source, op), )+
                }
            }

            fn stop_op(&mut self, id: u64) -> ::std::io::Result<()> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.stop_op(id), )+
                }
            }

            fn cancel_multi(&mut self, id: u64) -> ::std::io::Result<Vec<$crate::sys::OpDone>> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.cancel_multi(id), )+
                }
            }

            fn submit_connect(
                &mut self,
                source: $crate::sys::Source<'_>,
                op: u64,
                addr: ::std::net::SocketAddr,
            ) -> ::std::io::Result<u64> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.submit_connect(source, op, addr), )+
                }
            }

            fn cancel_op(
                &mut self,
                id: u64,
            ) -> ::std::io::Result<Option<$crate::sys::OpDone>> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.cancel_op(id), )+
                }
            }

            #[inline]
            fn pop_op_done(&mut self) -> Option<$crate::sys::OpDone> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.pop_op_done(), )+
                }
            }

            fn setup_recv_pool(&mut self, count: usize, size: usize) -> bool {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.setup_recv_pool(count, size), )+
                }
            }

            fn provide_buf(&mut self, buf: Vec<u8>) {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.provide_buf(buf), )+
                }
            }

            fn submit_recv_stream(
                &mut self,
                source: $crate::sys::Source<'_>,
                op: u64,
            ) -> ::std::io::Result<u64> {
                match self {
                    $( $(#[cfg($cfg)])? Selector::$variant(s) => s.submit_recv_stream(source, op), )+
                }
            }
        }
    };
}
pub(crate) use selectors;

/// The answer for a backend this build does not have.
pub(crate) fn not_here(backend: crate::backend::Backend) -> io::Error {
    super::unsupported(&format!(
        "the {backend:?} backend is not available on this platform"
    ))
}

#[cfg(all(test, not(uniloop_loom)))]
mod tests {
    use super::{NativeIo, Poller};
    use crate::backend::Backend;
    use crate::sys::{availability, Selector};

    /// The generated `Selector::new` and `availability` agree on every
    /// backend: one that is available opens and dispatches to its own
    /// selector; one that is not is refused by both, for the same reason.
    #[test]
    #[cfg_attr(miri, ignore = "opens the OS's selectors")]
    fn every_backend_opens_exactly_where_available() {
        for b in Backend::ALL {
            match (availability(b), Selector::new(b)) {
                (Ok(()), Ok((selector, _waker))) => {
                    assert_eq!(selector.native_io(), b == Backend::Uring, "{b}");
                    assert_eq!(selector.os_handle().is_none(), b == Backend::Poll, "{b}");
                }
                (Err(why), Err(e)) => {
                    assert_eq!(why.kind(), e.kind(), "{b}: {why} / {e}");
                    assert_eq!(why.to_string(), e.to_string(), "{b}");
                }
                (why, opened) => panic!(
                    "{b}: availability {why:?} but opening {}",
                    if opened.is_ok() { "worked" } else { "failed" }
                ),
            }
        }
    }
}
