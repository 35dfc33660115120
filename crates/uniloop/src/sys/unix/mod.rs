//! Unix backends: epoll (Linux, Android), io_uring (Linux, opt-in), kqueue
//! (BSD, macOS), poll (everywhere).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use crate::{Backend, Interest, Readiness, Trigger};

pub(crate) mod console;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll;
#[cfg(uniloop_kqueue)]
mod kqueue;
mod poll;
pub(crate) mod signal;
#[cfg(target_os = "linux")]
mod uring;
mod waker;

pub(crate) use self::waker::Waker;

/// What [`Runtime::register`](crate::Runtime::register) accepts: anything
/// with a file descriptor (`AsFd`) on Unix, anything with a socket
/// (`AsSocket`) on Windows.
///
/// Implemented for every such type; it cannot be implemented by hand.
pub trait AsSource: private::Sealed {
    #[doc(hidden)]
    fn as_source(&self) -> Source<'_>;
}

impl<T: AsFd + ?Sized> AsSource for T {
    fn as_source(&self) -> Source<'_> {
        self.as_fd()
    }
}

mod private {
    pub trait Sealed {}
    impl<T: std::os::fd::AsFd + ?Sized> Sealed for T {}
}

pub(crate) type Source<'a> = BorrowedFd<'a>;
pub(crate) type RawSource = RawFd;

/// Moves a descriptor the runtime made off 0, 1 and 2. A process that has
/// closed its stdin (or stdout, stderr) would otherwise hand that number to
/// our epoll, eventfd or pipe, and whatever later takes fd 0 to be stdin —
/// the [`Console`](crate::Console), a child process — would read from it.
pub(crate) fn above_stdio(fd: std::os::fd::OwnedFd) -> io::Result<std::os::fd::OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // The low descriptor closes when `fd` drops.
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, 3)?)
}

/// `pipe(2)`, both ends close-on-exec and above the stdio numbers.
pub(crate) fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use rustix::io::{fcntl_setfd, FdFlags};
    let (read, write) = rustix::pipe::pipe()?;
    let (read, write) = (above_stdio(read)?, above_stdio(write)?);
    for fd in [&read, &write] {
        fcntl_setfd(fd, FdFlags::CLOEXEC)?;
    }
    Ok((read, write))
}

pub(crate) fn raw_source(source: Source<'_>) -> RawSource {
    source.as_raw_fd()
}

/// The registered fd back from its number, for posted I/O driven by
/// readiness inside `wait`.
///
/// # Safety
///
/// `raw` must be the fd of a live registration. The caller promised to keep
/// it open while registered (`Runtime::register` borrows it until
/// `deregister`), and the returned borrow must not outlive the current call.
pub(crate) unsafe fn borrow_raw<'a>(raw: RawSource) -> Source<'a> {
    // SAFETY: the caller's promise, above.
    unsafe { BorrowedFd::borrow_raw(raw) }
}

/// Refuses a blocking fd: the loop would stall on the first read or write
/// that finds nothing to do (one `fcntl(F_GETFL)`; a bad fd gives its OS
/// error, `EBADF`).
pub(crate) fn check_nonblocking(fd: Source<'_>) -> io::Result<()> {
    if rustix::fs::fcntl_getfl(fd)?.contains(rustix::fs::OFlags::NONBLOCK) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the source is in blocking mode, which would stall the loop: \
             call set_nonblocking(true) on it before registering",
        ))
    }
}

/// Whether posted writes on `fd` should go through `send(2)` (sockets, so
/// that `MSG_NOSIGNAL` keeps a closed peer from raising `SIGPIPE`) or
/// `write(2)` (pipes, ttys, anything else).
pub(crate) fn is_socket(fd: Source<'_>) -> bool {
    rustix::fs::fstat(fd)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket)
        .unwrap_or(false)
}

/// One non-blocking read into `buf`'s spare capacity; `buf.len()` grows by
/// the count. Retries `EINTR`; `WouldBlock` means nothing is there yet.
pub(crate) fn read(fd: Source<'_>, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// One non-blocking write of (a prefix of) `data`. Retries `EINTR`.
pub(crate) fn write(fd: Source<'_>, data: &[u8], socket: bool) -> io::Result<usize> {
    loop {
        let r = if socket {
            send_nosignal(fd, data)
        } else {
            rustix::io::write(fd, data)
        };
        match r {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// How many buffers one gathered write takes: `IOV_MAX` is 1024 on Linux,
/// the BSDs and macOS.
pub(crate) const MAX_GATHER: usize = 1024;

/// One non-blocking gathered write of (a prefix of) `data`, at most
/// [`MAX_GATHER`] buffers: `sendmsg` on a socket (no `SIGPIPE`), `writev`
/// otherwise. Retries `EINTR`.
pub(crate) fn write_vectored(
    fd: Source<'_>,
    data: &[io::IoSlice<'_>],
    socket: bool,
) -> io::Result<usize> {
    if cfg!(miri) {
        // Miri has neither sendmsg(2) nor writev(2): one buffer at a time
        // (the caller counts what went out either way).
        let first = data.iter().find(|d| !d.is_empty());
        return write(fd, first.map_or(&[][..], |d| &d[..]), socket);
    }
    let data = &data[..data.len().min(MAX_GATHER)];
    loop {
        let r = if socket {
            sendmsg_nosignal(fd, data)
        } else {
            rustix::io::writev(fd, data)
        };
        match r {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

#[cfg(not(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
)))]
fn sendmsg_nosignal(fd: Source<'_>, data: &[io::IoSlice<'_>]) -> rustix::io::Result<usize> {
    rustix::net::sendmsg(
        fd,
        data,
        &mut rustix::net::SendAncillaryBuffer::default(),
        rustix::net::SendFlags::NOSIGNAL,
    )
}

/// No `MSG_NOSIGNAL` on Apple systems (see `send_nosignal`).
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
))]
fn sendmsg_nosignal(fd: Source<'_>, data: &[io::IoSlice<'_>]) -> rustix::io::Result<usize> {
    rustix::io::writev(fd, data)
}

#[cfg(not(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
)))]
fn send_nosignal(fd: Source<'_>, data: &[u8]) -> rustix::io::Result<usize> {
    rustix::net::send(fd, data, rustix::net::SendFlags::NOSIGNAL)
}

/// Apple systems have no `MSG_NOSIGNAL` (only the `SO_NOSIGPIPE` socket
/// option, which is the owner's to set): a Rust program ignores `SIGPIPE`
/// already; a C program should too.
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
))]
fn send_nosignal(fd: Source<'_>, data: &[u8]) -> rustix::io::Result<usize> {
    rustix::io::write(fd, data)
}

/// Sorts an `accept(2)` failure for the `Acceptor`. The skipped group is
/// what Linux's accept(2) says to treat like `EAGAIN` (errors of the new
/// connection or the network, passed on to `accept`, not the listener's),
/// plus `ECONNRESET`, which some BSDs return for a connection reset in the
/// backlog.
pub(crate) fn accept_error(e: &io::Error) -> super::AcceptError {
    use rustix::io::Errno;
    let Some(errno) = e.raw_os_error().map(Errno::from_raw_os_error) else {
        return super::AcceptError::Other;
    };
    match errno {
        Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM => super::AcceptError::Exhausted,
        Errno::CONNABORTED
        | Errno::CONNRESET
        | Errno::PROTO
        | Errno::PERM
        | Errno::NETDOWN
        | Errno::NOPROTOOPT
        | Errno::HOSTDOWN
        | Errno::HOSTUNREACH
        | Errno::OPNOTSUPP
        | Errno::NETUNREACH => super::AcceptError::Aborted,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Errno::NONET => super::AcceptError::Aborted,
        _ => super::AcceptError::Other,
    }
}

impl crate::Listen for std::os::unix::net::UnixListener {
    type Stream = std::os::unix::net::UnixStream;
    type Addr = std::os::unix::net::SocketAddr;

    fn accept_one(&self) -> io::Result<(Self::Stream, Self::Addr)> {
        self.accept()
    }

    fn set_stream_nonblocking(stream: &Self::Stream) -> io::Result<()> {
        stream.set_nonblocking(true)
    }

    fn set_listener_nonblocking(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
}

pub(crate) fn default_backend() -> Backend {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        Backend::Epoll
    } else if cfg!(uniloop_kqueue) {
        Backend::Kqueue
    } else {
        Backend::Poll
    }
}

pub(crate) fn is_available(backend: Backend) -> bool {
    match backend {
        Backend::Epoll => cfg!(any(target_os = "linux", target_os = "android")),
        Backend::Poll => true,
        Backend::Kqueue => cfg!(uniloop_kqueue),
        Backend::Uring => availability(Backend::Uring).is_ok(),
        Backend::Iocp => false,
    }
}

/// Whether `backend` can be created here, and if not, why: io_uring may be
/// compiled out of the kernel, disabled by a sysctl or refused by a seccomp
/// filter, which only trying says (a one-entry ring, closed at once).
pub(crate) fn availability(backend: Backend) -> io::Result<()> {
    match backend {
        #[cfg(target_os = "linux")]
        Backend::Uring => uring::probe(),
        #[cfg(not(target_os = "linux"))]
        Backend::Uring => Err(super::unsupported(
            "the Uring backend is only available on Linux",
        )),
        other if is_available(other) => Ok(()),
        other => Err(super::unsupported(&format!(
            "the {other:?} backend is not available on this platform"
        ))),
    }
}

/// One selector per runtime; an enum rather than a `dyn` so `select` is a
/// direct call.
#[derive(Debug)]
pub(crate) enum Selector {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Epoll(epoll::Selector),
    #[cfg(uniloop_kqueue)]
    Kqueue(kqueue::Selector),
    Poll(poll::Selector),
    #[cfg(target_os = "linux")]
    /// Boxed: the ring's mappings and tables make it several times the
    /// size of the others.
    Uring(Box<uring::Selector>),
}

impl Selector {
    pub(crate) fn new(backend: Backend) -> io::Result<(Selector, Waker)> {
        match backend {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Backend::Epoll => {
                let waker = Waker::new()?;
                Ok((Selector::Epoll(epoll::Selector::new(&waker)?), waker))
            }
            #[cfg(uniloop_kqueue)]
            Backend::Kqueue => {
                let (selector, waker) = kqueue::Selector::new()?;
                Ok((Selector::Kqueue(selector), waker))
            }
            Backend::Poll => {
                let waker = Waker::new()?;
                Ok((Selector::Poll(poll::Selector::new(&waker)), waker))
            }
            #[cfg(target_os = "linux")]
            Backend::Uring => {
                let waker = Waker::new()?;
                Ok((
                    Selector::Uring(Box::new(uring::Selector::new(&waker)?)),
                    waker,
                ))
            }
            #[allow(unreachable_patterns)]
            other => Err(super::unsupported(&format!(
                "the {other:?} backend is not available on this platform"
            ))),
        }
    }

    pub(crate) fn register(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Selector::Epoll(s) => s.register(fd, slot, interest, trigger),
            #[cfg(uniloop_kqueue)]
            Selector::Kqueue(s) => s.register(fd, slot, interest, trigger),
            Selector::Poll(s) => s.register(fd, slot, interest, trigger),
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.register(fd, slot, interest, trigger),
        }
    }

    /// `old` is only kqueue's business (its probe names it).
    #[cfg_attr(not(uniloop_kqueue), allow(unused_variables))]
    pub(crate) fn replace(
        &mut self,
        fd: Source<'_>,
        old: u64,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Selector::Epoll(s) => s.replace(fd, slot, interest, trigger),
            #[cfg(uniloop_kqueue)]
            Selector::Kqueue(s) => s.replace(fd, old, slot, interest, trigger),
            Selector::Poll(s) => s.replace(fd, slot, interest, trigger),
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.replace(fd, slot, interest, trigger),
        }
    }

    pub(crate) fn reregister(
        &mut self,
        fd: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Selector::Epoll(s) => s.reregister(fd, slot, interest, trigger),
            #[cfg(uniloop_kqueue)]
            Selector::Kqueue(s) => s.reregister(fd, slot, interest, trigger),
            Selector::Poll(s) => s.reregister(fd, slot, interest, trigger),
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.reregister(fd, slot, interest, trigger),
        }
    }

    pub(crate) fn deregister(&mut self, fd: Source<'_>) -> io::Result<()> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Selector::Epoll(s) => s.deregister(fd),
            #[cfg(uniloop_kqueue)]
            Selector::Kqueue(s) => s.deregister(fd),
            Selector::Poll(s) => s.deregister(fd),
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.deregister(fd),
        }
    }

    #[inline]
    pub(crate) fn select(
        &mut self,
        out: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Selector::Epoll(s) => s.select(out, max, timeout),
            #[cfg(uniloop_kqueue)]
            Selector::Kqueue(s) => s.select(out, max, timeout),
            Selector::Poll(s) => s.select(out, max, timeout),
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.select(out, max, timeout),
        }
    }
}

/// Readiness handed over report by report, for the runtime to turn into
/// events as it reads them: epoll's records go straight from the kernel's
/// buffer to `f`; the other backends fill `scratch` through `select`, and
/// it is handed over from there (and left empty).
impl Selector {
    #[inline(always)]
    pub(crate) fn select_each(
        &mut self,
        scratch: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
        mut f: impl FnMut(u64, Readiness),
    ) -> io::Result<bool> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Selector::Epoll(s) = self {
            return s.select_each(max, timeout, f);
        }
        let r = self.select(scratch, max, timeout);
        if r.is_ok() {
            for &(slot, ready) in scratch.iter() {
                f(slot, ready);
            }
        }
        scratch.clear();
        r
    }
}

/// The OS object a runtime's `wait` blocks on
/// ([`Runtime::os_handle`](crate::Runtime::os_handle)): a file descriptor
/// on Unix, a `HANDLE` on Windows.
pub type RawOsHandle = RawFd;

/// Nesting the loop in another one ([`Runtime::os_handle`](crate::Runtime::os_handle)).
impl Selector {
    /// The epoll, kqueue or io_uring fd; none on poll (no single object
    /// covers the registered fds).
    pub(crate) fn os_handle(&self) -> Option<RawOsHandle> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Selector::Epoll(s) => Some(s.os_handle()),
            #[cfg(uniloop_kqueue)]
            Selector::Kqueue(s) => Some(s.os_handle()),
            Selector::Poll(_) => None,
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => Some(s.os_handle()),
        }
    }

    /// Makes what the OS knows complete before another loop waits on the
    /// handle; true if something is already collected in user space.
    pub(crate) fn prepare_external(&mut self) -> io::Result<bool> {
        match self {
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.prepare_external(),
            #[allow(unreachable_patterns)]
            _ => Ok(false),
        }
    }
}

/// Native completion I/O, io_uring's only (see `sys` docs): on the other
/// backends `native_io` is false and the runtime never calls the rest.
impl Selector {
    pub(crate) fn native_io(&self) -> bool {
        match self {
            #[cfg(target_os = "linux")]
            Selector::Uring(_) => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub(crate) fn submit_recv(
        &mut self,
        fd: Source<'_>,
        op: u64,
        buf: Vec<u8>,
    ) -> Result<u64, (io::Error, Vec<u8>)> {
        match self {
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.submit_recv(fd, op, buf),
            #[allow(unreachable_patterns)]
            _ => Err((no_native_io(), buf)),
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub(crate) fn submit_send(
        &mut self,
        fd: Source<'_>,
        op: u64,
        buf: Vec<u8>,
        offset: usize,
    ) -> Result<u64, (io::Error, Vec<u8>)> {
        match self {
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.submit_send(fd, op, buf, offset),
            #[allow(unreachable_patterns)]
            _ => Err((no_native_io(), buf)),
        }
    }

    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    pub(crate) fn cancel_op(&mut self, id: u64) -> io::Result<Option<super::OpDone>> {
        match self {
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.cancel_op(id),
            #[allow(unreachable_patterns)]
            _ => Err(no_native_io()),
        }
    }

    pub(crate) fn pop_op_done(&mut self) -> Option<super::OpDone> {
        match self {
            #[cfg(target_os = "linux")]
            Selector::Uring(s) => s.pop_op_done(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

fn no_native_io() -> io::Error {
    super::unsupported("native completion I/O is the io_uring backend's only")
}

/// A reusable output buffer for the OS's event records (`epoll_event`,
/// `kevent`).
pub(crate) struct EventBuf<T>(Vec<MaybeUninit<T>>);

// SAFETY: the record types are `!Send` only because their user-data field can
// hold a pointer. Our selectors store plain slot numbers there and never
// dereference it, so the buffer is plain bytes and may move between threads
// with its runtime.
unsafe impl<T> Send for EventBuf<T> {}

impl<T> EventBuf<T> {
    pub(crate) fn new() -> Self {
        EventBuf(Vec::new())
    }

    /// Room for exactly `max` records (at least one).
    pub(crate) fn space(&mut self, max: usize) -> &mut [MaybeUninit<T>] {
        let max = max.max(1);
        if self.0.len() < max {
            self.0.resize_with(max, MaybeUninit::uninit);
        }
        &mut self.0[..max]
    }
}

impl<T> std::fmt::Debug for EventBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventBuf({})", self.0.len())
    }
}

/// A timeout in whole milliseconds for `poll(2)`/`epoll_wait(2)`: rounded up
/// (a 100 µs timeout must not become a busy 0 ms poll), clamped to `i32`;
/// `-1` for "forever". A clamped wait just returns early and the runtime
/// waits again for the rest.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(t) => {
            // Whole seconds are whole milliseconds, so rounding up the
            // sub-second part is rounding up the whole (without the u128
            // division `as_nanos` would need).
            let ms = t
                .as_secs()
                .saturating_mul(1000)
                .saturating_add(u64::from(t.subsec_nanos().div_ceil(1_000_000)));
            i32::try_from(ms).unwrap_or(i32::MAX)
        }
    }
}
