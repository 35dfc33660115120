//! Unix backends: epoll (Linux, Android), io_uring (Linux, opt-in), kqueue
//! (BSD, macOS), poll (everywhere).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use crate::Backend;

#[cfg(target_os = "linux")]
mod bufring;
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
/// `raw` must be the fd of a live registration, and the returned borrow
/// must not outlive the current call. Where I/O is done through it, the fd
/// must be open and still the file that was registered (the promise of the
/// unsafe `Runtime::post_read` / `post_write`); where only the selector is
/// told about it (epoll_ctl, kevent, the poll array), a closed or reused
/// number reads or writes no file's data and is harmless.
pub(crate) unsafe fn borrow_raw<'a>(raw: RawSource) -> Source<'a> {
    // SAFETY: the caller's obligation, above.
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
///
/// A socket is read with `recv(MSG_DONTWAIT)`, which does not block even
/// if the socket was put back in blocking mode after it was registered
/// (`register` checks `O_NONBLOCK` once; checking it at every post would
/// cost a system call). Other files rely on that check.
pub(crate) fn read(fd: Source<'_>, buf: &mut Vec<u8>, socket: bool) -> io::Result<usize> {
    loop {
        let spare = rustix::buffer::spare_capacity(buf);
        // Miri emulates read(2) on a socketpair, not recv(2).
        let r = if socket && !cfg!(miri) {
            rustix::net::recv(fd, spare, rustix::net::RecvFlags::DONTWAIT).map(|(n, _)| n)
        } else {
            rustix::io::read(fd, spare)
        };
        match r {
            Err(rustix::io::Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

/// One non-blocking write of (a prefix of) `data`. Retries `EINTR`. A
/// socket is written with `MSG_DONTWAIT`, as [`read`] says.
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

/// One non-blocking `accept` on a listening TCP socket: the connection,
/// non-blocking and close-on-exec (`accept4` where it exists), and its
/// peer's address. Retries `EINTR`; `WouldBlock` means none is waiting. A
/// connection whose peer address is gone by the time it is asked for died
/// before it was accepted: `ConnectionAborted`.
pub(crate) fn accept(fd: Source<'_>) -> io::Result<(std::net::TcpStream, std::net::SocketAddr)> {
    let conn = loop {
        match accept_raw(fd) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?,
        }
    };
    let stream = std::net::TcpStream::from(conn);
    match stream.peer_addr() {
        Ok(peer) => Ok((stream, peer)),
        Err(_) => Err(io::ErrorKind::ConnectionAborted.into()),
    }
}

#[cfg(not(target_vendor = "apple"))]
fn accept_raw(fd: Source<'_>) -> rustix::io::Result<std::os::fd::OwnedFd> {
    use rustix::net::SocketFlags;
    rustix::net::accept_with(fd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
}

/// macOS has no `accept4`: `accept`, then the flags.
#[cfg(target_vendor = "apple")]
fn accept_raw(fd: Source<'_>) -> rustix::io::Result<std::os::fd::OwnedFd> {
    let conn = rustix::net::accept(fd)?;
    rustix::io::ioctl_fionbio(&conn, true)?;
    rustix::io::fcntl_setfd(&conn, rustix::io::FdFlags::CLOEXEC)?;
    Ok(conn)
}

/// Starts a non-blocking `connect`: `Ok(true)` if it connected at once,
/// `Ok(false)` if it is in progress (writability, then [`connected`],
/// tell the outcome).
pub(crate) fn connect(fd: Source<'_>, addr: std::net::SocketAddr) -> io::Result<bool> {
    use rustix::io::Errno;
    match rustix::net::connect(fd, &addr) {
        Ok(()) => Ok(true),
        // Interrupted, the connection goes on in the background.
        Err(Errno::INPROGRESS | Errno::INTR | Errno::AGAIN) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether a connection started by [`connect`] is made: `Ok(true)` made,
/// `Ok(false)` still in progress (readiness came early), the error it
/// failed with (`SO_ERROR`) otherwise.
pub(crate) fn connected(fd: Source<'_>) -> io::Result<bool> {
    use rustix::io::Errno;
    rustix::net::sockopt::socket_error(fd)??;
    match rustix::net::getpeername(fd) {
        Ok(_) => Ok(true),
        Err(Errno::NOTCONN) => Ok(false),
        Err(e) => Err(e.into()),
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
        rustix::net::SendFlags::NOSIGNAL | rustix::net::SendFlags::DONTWAIT,
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
    rustix::net::sendmsg(
        fd,
        data,
        &mut rustix::net::SendAncillaryBuffer::default(),
        rustix::net::SendFlags::DONTWAIT,
    )
}

#[cfg(not(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
)))]
fn send_nosignal(fd: Source<'_>, data: &[u8]) -> rustix::io::Result<usize> {
    use rustix::net::SendFlags;
    // Miri's send(2) on a socketpair takes MSG_NOSIGNAL only.
    let dontwait = if cfg!(miri) {
        SendFlags::empty()
    } else {
        SendFlags::DONTWAIT
    };
    rustix::net::send(fd, data, SendFlags::NOSIGNAL | dontwait)
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
    rustix::net::send(fd, data, rustix::net::SendFlags::DONTWAIT)
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

/// Calls `$m!(Listener, Stream, Addr)` for each listener type of this
/// platform beyond `TcpListener`: Unix-domain sockets. `accept.rs`
/// implements `Listen` for them, so the platform's types are named here
/// and the trait stays above `sys`.
macro_rules! for_each_listener {
    ($m:ident) => {
        $m!(
            std::os::unix::net::UnixListener,
            std::os::unix::net::UnixStream,
            std::os::unix::net::SocketAddr
        );
    };
}
pub(crate) use for_each_listener;

pub(crate) fn default_backend() -> Backend {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        Backend::Epoll
    } else if cfg!(uniloop_kqueue) {
        Backend::Kqueue
    } else {
        Backend::Poll
    }
}

super::selector::selectors! {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Epoll(epoll::Selector),
    #[cfg(uniloop_kqueue)]
    Kqueue(kqueue::Selector),
    Poll(poll::Selector),
    /// Boxed: the ring's mappings and tables make it several times the
    /// size of the others.
    #[cfg(target_os = "linux")]
    Uring(Box<uring::Selector>),
}

/// The OS object a runtime's `wait` blocks on
/// ([`Runtime::os_handle`](crate::Runtime::os_handle)): a file descriptor
/// on Unix, a `HANDLE` on Windows.
pub type RawOsHandle = RawFd;

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
    #[inline(always)]
    pub(crate) fn space(&mut self, max: usize) -> &mut [MaybeUninit<T>] {
        let max = max.max(1);
        if self.0.len() < max {
            self.grow(max);
        }
        debug_assert!(self.0.len() >= max);
        // SAFETY: `grow` made the buffer at least `max` long if it was
        // shorter (the bounds check the compiler cannot drop on its own:
        // `grow` is out of line).
        unsafe { self.0.get_unchecked_mut(..max) }
    }

    /// Out of line: a buffer grows a few times in a runtime's life.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, max: usize) {
        self.0.resize_with(max, MaybeUninit::uninit);
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

/// What tells an open file from a later one that got the same fd number
/// (the poll and io_uring backends keep one per registration):
/// its device and inode numbers — and for a socket on BSD or macOS, whose
/// `fstat` fills in neither (both 0), its own and its peer's address, as
/// far as it has them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    addrs: Option<
        Box<(
            Option<rustix::net::SocketAddrAny>,
            Option<rustix::net::SocketAddrAny>,
        )>,
    >,
}

impl Identity {
    // `st_dev` and `st_ino` are `u64` on some systems, not on others.
    #[allow(clippy::unnecessary_cast)]
    fn of(fd: Source<'_>) -> io::Result<Identity> {
        let st = rustix::fs::fstat(fd)?;
        let (dev, ino) = (st.st_dev as u64, st.st_ino as u64);
        let socket =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket;
        let addrs = (socket && ino == 0).then(|| {
            let local = rustix::net::getsockname(fd).ok();
            let peer = rustix::net::getpeername(fd).ok().flatten();
            Box::new((local, peer))
        });
        Ok(Identity { dev, ino, addrs })
    }

    /// Whether `now` is another file. Addresses count only where both
    /// sides have one: a socket registered before it connected gains a
    /// peer, and is still the same socket.
    fn differs(&self, now: &Identity) -> bool {
        fn known_and_unequal<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
            matches!((a, b), (Some(a), Some(b)) if a != b)
        }
        if (self.dev, self.ino) != (now.dev, now.ino) {
            return true;
        }
        match (&self.addrs, &now.addrs) {
            (Some(a), Some(b)) => known_and_unequal(&a.0, &b.0) || known_and_unequal(&a.1, &b.1),
            _ => false,
        }
    }
}

/// A Linux `poll(2)` result mask as [`Readiness`] — the same bits as
/// epoll's flags (the epoll backend reads its events with it), and what
/// io_uring's `POLL_ADD` reports — without a branch per flag: each of
/// `Readiness`'s bits is one or two of poll's shifted into place. `IN` →
/// readable, `OUT` → writable, `PRI` → priority, `RDHUP` or `HUP` →
/// read-closed, `HUP` or `ERR` → write-closed, `ERR` → error (the epoll
/// backend's test checks it against the plain reading).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline(always)]
fn readiness_bits(f: u32) -> crate::Readiness {
    const _: () = assert!(
        libc::POLLIN as u32 == 0x1
            && libc::POLLPRI as u32 == 0x2
            && libc::POLLOUT as u32 == 0x4
            && libc::POLLERR as u32 == 0x8
            && libc::POLLHUP as u32 == 0x10
            && libc::POLLRDHUP as u32 == 0x2000
    );
    const _: () = assert!(
        crate::Readiness::READABLE.bits() == 1
            && crate::Readiness::WRITABLE.bits() == 2
            && crate::Readiness::READ_CLOSED.bits() == 4
            && crate::Readiness::WRITE_CLOSED.bits() == 8
            && crate::Readiness::ERROR.bits() == 16
            && crate::Readiness::PRIORITY.bits() == 32
    );
    // The usual report, readable and/or writable and nothing else: two
    // bits to move.
    if f & !0x5 == 0 {
        return crate::Readiness::from_bits((f & 0x1) | ((f >> 1) & 0x2));
    }
    crate::Readiness::from_bits(
        (f & 0x1)                       // IN -> READABLE
            | ((f >> 1) & 0x2)          // OUT -> WRITABLE
            | (((f >> 11) | (f >> 2)) & 0x4) // RDHUP, HUP -> READ_CLOSED
            | ((f | (f >> 1)) & 0x8)    // ERR, HUP -> WRITE_CLOSED
            | ((f << 1) & 0x10)         // ERR -> ERROR
            | ((f << 4) & 0x20), // PRI -> PRIORITY
    )
}
