//! Windows backend: IOCP, with socket readiness from AFD poll requests.

use std::io;
use std::os::windows::io::{AsRawSocket, AsSocket, BorrowedSocket, RawSocket};

use windows_sys::Win32::Networking::WinSock;

use crate::Backend;

mod afd;
pub(crate) mod console;
mod iocp;
mod port;
pub(crate) mod signal;

pub(crate) use self::port::Waker;

/// What [`Runtime::register`](crate::Runtime::register) accepts: anything
/// with a file descriptor (`AsFd`) on Unix, anything with a socket
/// (`AsSocket`) on Windows.
///
/// Implemented for every such type; it cannot be implemented by hand.
pub trait AsSource: private::Sealed {
    #[doc(hidden)]
    fn as_source(&self) -> Source<'_>;
}

impl<T: AsSocket + ?Sized> AsSource for T {
    fn as_source(&self) -> Source<'_> {
        self.as_socket()
    }
}

mod private {
    pub trait Sealed {}
    impl<T: std::os::windows::io::AsSocket + ?Sized> Sealed for T {}
}

pub(crate) type Source<'a> = BorrowedSocket<'a>;
pub(crate) type RawSource = RawSocket;

pub(crate) fn raw_source(source: Source<'_>) -> RawSource {
    source.as_raw_socket()
}

/// The registered socket back from its number, for posted I/O driven by
/// readiness inside `wait`.
///
/// # Safety
///
/// `raw` must be the socket of a live registration, and the returned
/// borrow must not outlive the current call. Where I/O is done through it,
/// the socket must be open and still the one that was registered (the
/// promise of the unsafe `Runtime::post_read` / `post_write`); where only
/// the selector asks about it (`SIO_BASE_HANDLE`, its addresses, an AFD
/// poll), a closed or reused handle value reads or writes no data.
pub(crate) unsafe fn borrow_raw<'a>(raw: RawSource) -> Source<'a> {
    // SAFETY: the caller's obligation, above.
    unsafe { BorrowedSocket::borrow_raw(raw) }
}

/// Windows cannot say whether a socket is in non-blocking mode: `FIONBIO`
/// sets the mode but nothing reads it back. So nothing is checked here; a
/// blocking socket is the caller's mistake to avoid.
pub(crate) fn check_nonblocking(_: Source<'_>) -> io::Result<()> {
    Ok(())
}

/// Every source on Windows is a socket.
pub(crate) fn is_socket(_: Source<'_>) -> bool {
    true
}

/// One non-blocking `recv` into `buf`'s spare capacity; `buf.len()` grows
/// by the count. `WSAEWOULDBLOCK` is `ErrorKind::WouldBlock`.
pub(crate) fn read(socket: Source<'_>, buf: &mut Vec<u8>, _is_socket: bool) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let len = i32::try_from(spare.len()).unwrap_or(i32::MAX);
    // SAFETY: `spare` is `len` writable bytes (recv writes at most `len`
    // and reports how many); the socket is live for this call.
    let n = unsafe {
        WinSock::recv(
            socket.as_raw_socket() as _,
            spare.as_mut_ptr().cast(),
            len,
            0,
        )
    };
    if n == WinSock::SOCKET_ERROR {
        return Err(wsa_error());
    }
    let n = n as usize;
    // SAFETY: recv initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// One non-blocking `send` of (a prefix of) `data`.
pub(crate) fn write(socket: Source<'_>, data: &[u8], _is_socket: bool) -> io::Result<usize> {
    let len = i32::try_from(data.len()).unwrap_or(i32::MAX);
    // SAFETY: `data` is `len` readable bytes; the socket is live.
    let n = unsafe { WinSock::send(socket.as_raw_socket() as _, data.as_ptr(), len, 0) };
    if n == WinSock::SOCKET_ERROR {
        return Err(wsa_error());
    }
    Ok(n as usize)
}

/// How many buffers one gathered send takes (WinSock sets no limit of its
/// own; this matches the Unix `IOV_MAX`).
pub(crate) const MAX_GATHER: usize = 1024;

/// One non-blocking gathered `WSASend` of (a prefix of) `data`, at most
/// [`MAX_GATHER`] buffers.
pub(crate) fn write_vectored(
    socket: Source<'_>,
    data: &[io::IoSlice<'_>],
    _is_socket: bool,
) -> io::Result<usize> {
    let mut bufs = Vec::with_capacity(data.len().min(MAX_GATHER));
    for d in data.iter().take(MAX_GATHER) {
        bufs.push(WinSock::WSABUF {
            len: u32::try_from(d.len()).unwrap_or(u32::MAX),
            buf: d.as_ptr().cast_mut(),
        });
    }
    let mut sent = 0u32;
    // SAFETY: every `WSABUF` points at `len` readable bytes of `data`,
    // which outlives the call; WinSock only reads them. No overlapped
    // structure: the call is synchronous on a non-blocking socket, so
    // nothing refers to the buffers after it returns.
    let r = unsafe {
        WinSock::WSASend(
            socket.as_raw_socket() as _,
            bufs.as_ptr(),
            bufs.len() as u32,
            &mut sent,
            0,
            std::ptr::null_mut(),
            None,
        )
    };
    if r == WinSock::SOCKET_ERROR {
        return Err(wsa_error());
    }
    Ok(sent as usize)
}

/// One non-blocking `accept` on a listening socket: the connection, put in
/// non-blocking mode (`FIONBIO`), and its peer's address. `WouldBlock`
/// means none is waiting.
pub(crate) fn accept(
    socket: Source<'_>,
) -> io::Result<(std::net::TcpStream, std::net::SocketAddr)> {
    let (conn, peer) = socket2::SockRef::from(&socket).accept()?;
    conn.set_nonblocking(true)?;
    let peer = peer
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP listener"))?;
    Ok((conn.into(), peer))
}

/// Starts a non-blocking `connect`: `Ok(true)` if it connected at once,
/// `Ok(false)` if it is in progress (`WSAEWOULDBLOCK`: writability, or
/// the AFD poll's connect-fail, then [`connected`] tell the outcome).
pub(crate) fn connect(socket: Source<'_>, addr: std::net::SocketAddr) -> io::Result<bool> {
    match socket2::SockRef::from(&socket).connect(&addr.into()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) if e.raw_os_error() == Some(WinSock::WSAEINPROGRESS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a connection started by [`connect`] is made: `Ok(true)` made,
/// `Ok(false)` still in progress, the error it failed with (`SO_ERROR`)
/// otherwise.
pub(crate) fn connected(socket: Source<'_>) -> io::Result<bool> {
    let sock = socket2::SockRef::from(&socket);
    if let Some(e) = sock.take_error()? {
        return Err(e);
    }
    match sock.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(WinSock::WSAENOTCONN) => Ok(false),
        Err(e) => Err(e),
    }
}

fn wsa_error() -> io::Error {
    // SAFETY: no preconditions; reads this thread's last WinSock error.
    io::Error::from_raw_os_error(unsafe { WinSock::WSAGetLastError() })
}

/// Sorts an `accept` failure for the `Acceptor`.
pub(crate) fn accept_error(e: &io::Error) -> super::AcceptError {
    match e.raw_os_error() {
        Some(WinSock::WSAEMFILE | WinSock::WSAENOBUFS) => super::AcceptError::Exhausted,
        // The peer reset the connection before it was accepted.
        Some(WinSock::WSAECONNRESET | WinSock::WSAECONNABORTED) => super::AcceptError::Aborted,
        _ => super::AcceptError::Other,
    }
}

/// Calls `$m!(Listener, Stream, Addr)` for each listener type of this
/// platform beyond `TcpListener`: none on Windows (std has no
/// Unix-domain sockets there).
macro_rules! for_each_listener {
    ($m:ident) => {};
}
pub(crate) use for_each_listener;

pub(crate) fn default_backend() -> Backend {
    Backend::Iocp
}

super::selector::selectors! {
    Iocp(iocp::Selector),
}

/// The OS object a runtime's `wait` blocks on
/// ([`Runtime::os_handle`](crate::Runtime::os_handle)): a file descriptor
/// on Unix, a `HANDLE` on Windows.
pub type RawOsHandle = std::os::windows::io::RawHandle;
