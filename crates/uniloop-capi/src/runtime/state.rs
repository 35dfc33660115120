//! The loop part of a runtime: the fd table, posted operations, and
//! turning the Rust runtime's events into `io_event_t`s.

use std::collections::HashSet;
use std::ffi::c_void;
use std::hash::BuildHasherDefault;
use std::ptr;
use std::time::Duration;

use super::fdmap::{FdMap, IntHasher, IntMap};
use super::uniloop_runtime_stats_t;
use crate::error::{Error, Result};
use crate::types::*;
use crate::uniloop_error_t::*;

/// What `post_read(rt, fd, NULL, 0)` reads into: a buffer of this many
/// bytes that the runtime owns (4 KiB).
pub const UNILOOP_DEFAULT_READ_SIZE: usize = 4096;

/// The most events one `async_runtime_wait` returns, whatever
/// `max_events` says (the rest come with the next call).
const MAX_BATCH: usize = 65_536;

pub(super) struct Fd {
    context: *mut c_void,
    mask: u32,
    /// A read is posted and its event not yet returned.
    reading: bool,
    /// Its posted I/O, made by the first post: an fd used for readiness
    /// only keeps a small entry. Once made, the Rust runtime decides what
    /// a modify to the same interest must do (its operations keep what
    /// they need from the OS).
    io: Option<Box<FdIo>>,
}

// One fd entry per fd number up to the highest in use: kept small.
const _: () = assert!(std::mem::size_of::<Option<Fd>>() <= 24);

#[derive(Default)]
struct FdIo {
    /// The runtime-owned buffer of the last `post_read(fd, NULL, ..)`.
    read_buf: Option<Vec<u8>>,
    /// A buffer kept for the next read into a caller's buffer.
    spare: Option<Vec<u8>>,
    /// Its posted operations whose events a wait has not returned yet (a
    /// set: taking one out is O(1) however many are queued).
    ops: HashSet<rt::OpId, BuildHasherDefault<IntHasher>>,
}

impl Fd {
    fn io(&mut self) -> &mut FdIo {
        self.io.get_or_insert_with(Box::default)
    }

    /// Its posted operations, taken out.
    fn take_ops(&mut self) -> HashSet<rt::OpId, BuildHasherDefault<IntHasher>> {
        self.io
            .as_mut()
            .map(|io| std::mem::take(&mut io.ops))
            .unwrap_or_default()
    }
}

pub(super) struct Op {
    fd: socket_fd_t,
    /// The caller's buffer (NULL: the runtime's).
    user: *mut c_void,
    /// `uniloop_runtime_shutdown_fd`'s marker: when it completes, every
    /// write before it is out; then the write side is shut down.
    shutdown: bool,
}

/// Records posted operation `id` of `entry` (its fd `op.fd`): in the
/// fd's set, for `async_runtime_remove`, and in `ops`, for its event.
fn track(entry: &mut Fd, ops: &mut IntMap<rt::OpId, Op>, id: rt::OpId, op: Op) {
    entry.io().ops.insert(id);
    ops.insert(id, op);
}

pub(super) struct Loop {
    pub(super) rt: rt::Runtime,
    /// The Rust runtime's events of the current wait, kept from wait to
    /// wait (made again only when `max_events` changes).
    events: rt::Events,
    pub(super) fds: FdMap<Fd>,
    pub(super) ops: IntMap<rt::OpId, Op>,
    /// C timer id → (Rust id, periodic).
    pub(super) timers: IntMap<u64, (rt::TimerId, bool)>,
    pub(super) console_type: console_type_t,
    pub(super) stats: uniloop_runtime_stats_t,
    /// `uniloop_runtime_set_event_kinds`: every event carries its kind.
    pub(super) kinds: bool,
    /// `uniloop_signal_add`: the signals, posted under `SIGNAL_KEY`.
    pub(super) signals: Option<rt::Signals>,
    /// Signal number → the caller's key.
    pub(super) signal_keys: IntMap<u64, usize>,
    /// The OS handle was handed out (`get_event_loop_handle`): it is
    /// re-armed after every call that can make something pending.
    pub(super) external: bool,
}

#[cfg(unix)]
pub(super) fn source<'a>(fd: socket_fd_t) -> std::os::fd::BorrowedFd<'a> {
    // SAFETY: the caller of async_runtime_add promised the fd stays open
    // while registered (as with the reference); the borrow lives only for
    // the call it is made in.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

#[cfg(windows)]
pub(super) fn source<'a>(fd: socket_fd_t) -> std::os::windows::io::BorrowedSocket<'a> {
    // SAFETY: as on Unix: the socket stays open while registered, and the
    // borrow lives only for the call it is made in.
    unsafe { std::os::windows::io::BorrowedSocket::borrow_raw(fd as _) }
}

/// The key signals are posted under (`uniloop_signal_add`): not a
/// `uintptr_t` on 32-bit platforms, and refused by
/// `async_runtime_post_completion` on 64-bit ones.
pub(super) const SIGNAL_KEY: u64 = u64::MAX;

/// The OS code of an operation's error, for `completion_key`.
fn os_code(e: &std::io::Error) -> usize {
    e.raw_os_error().map_or(usize::MAX, |c| c as usize)
}

/// Shuts down the write side of `fd` (its queued output is out).
#[cfg(unix)]
fn shut_write(fd: socket_fd_t) -> std::result::Result<(), usize> {
    // SAFETY: shutdown on a borrowed fd; a non-socket gives ENOTSOCK.
    if unsafe { libc::shutdown(fd, libc::SHUT_WR) } == 0 {
        Ok(())
    } else {
        Err(os_code(&std::io::Error::last_os_error()))
    }
}

/// Shuts down the write side of `fd` (its queued output is out).
#[cfg(windows)]
fn shut_write(fd: socket_fd_t) -> std::result::Result<(), usize> {
    use windows_sys::Win32::Networking::WinSock::{shutdown, WSAGetLastError, SD_SEND};
    // SAFETY: shutdown on a borrowed socket.
    if unsafe { shutdown(fd, SD_SEND) } == 0 {
        Ok(())
    } else {
        // SAFETY: reads the calling thread's last winsock error.
        Err(unsafe { WSAGetLastError() } as usize)
    }
}

fn check_fd(fd: socket_fd_t) -> Result<()> {
    if fd == INVALID_FD || (cfg!(unix) && (fd as i64) < 0) {
        Err(Error::invalid(
            "fd is invalid (negative / INVALID_SOCKET_FD)",
        ))
    } else {
        Ok(())
    }
}

/// `EVENT_READ` / `EVENT_WRITE` as an interest; 0 is no interest (the fd
/// stays registered for posted I/O, its readiness paused).
#[inline]
fn interest(events: u32) -> rt::Interest {
    match (events & EVENT_READ != 0, events & EVENT_WRITE != 0) {
        (true, true) => rt::Interest::READABLE | rt::Interest::WRITABLE,
        (true, false) => rt::Interest::READABLE,
        (false, true) => rt::Interest::WRITABLE,
        (false, false) => rt::Interest::NONE,
    }
}

/// Readiness as `EVENT_*` flags, as the reference's epoll backend reported
/// it: a peer's FIN is readable (the read returns 0), a hang-up of both
/// directions is `EVENT_CLOSE`; only asked-for READ/WRITE are reported.
fn event_type(ready: rt::Readiness, mask: u32) -> u32 {
    let mut t = 0;
    if ready.is_readable() || ready.is_read_closed() {
        t |= EVENT_READ;
    }
    if ready.is_writable() {
        t |= EVENT_WRITE;
    }
    t &= mask;
    if ready.is_error() {
        t |= EVENT_ERROR;
    }
    if ready.is_read_closed() && ready.is_write_closed() {
        t |= EVENT_CLOSE;
    }
    t
}

#[cfg(unix)]
fn check_nonblocking(fd: socket_fd_t) -> Result<()> {
    // SAFETY: F_GETFL reads flags; a bad fd gives -1/EBADF.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if fl & libc::O_NONBLOCK == 0 {
        return Err(Error::invalid(
            "posted I/O needs a non-blocking fd (set O_NONBLOCK); readiness works on any",
        ));
    }
    Ok(())
}

#[cfg(windows)]
fn check_nonblocking(_fd: socket_fd_t) -> Result<()> {
    Ok(())
}

/// An accept needs a listening socket: `listen` not called, every accept
/// on it would fail, so the post is refused (`SO_ACCEPTCONN`).
#[cfg(unix)]
fn check_listening(fd: socket_fd_t) -> Result<()> {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes to `on`; a bad fd or
    // a non-socket gives -1 (EBADF, ENOTSOCK).
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    listening(on != 0)
}

/// An accept needs a listening socket (`SO_ACCEPTCONN`).
#[cfg(windows)]
fn check_listening(fd: socket_fd_t) -> Result<()> {
    use windows_sys::Win32::Networking::WinSock::{
        getsockopt, WSAGetLastError, SOCKET_ERROR, SOL_SOCKET, SO_ACCEPTCONN,
    };
    let mut on: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as i32;
    // SAFETY: getsockopt writes at most `len` bytes to `on`; a bad socket
    // gives SOCKET_ERROR.
    let rc = unsafe {
        getsockopt(
            fd,
            SOL_SOCKET,
            SO_ACCEPTCONN,
            (&mut on as *mut i32).cast(),
            &mut len,
        )
    };
    if rc == SOCKET_ERROR {
        // SAFETY: reads the calling thread's last winsock error.
        let code = unsafe { WSAGetLastError() };
        return Err(std::io::Error::from_raw_os_error(code).into());
    }
    listening(on != 0)
}

fn listening(on: bool) -> Result<()> {
    if on {
        Ok(())
    } else {
        Err(Error::invalid(
            "not a listening socket: call listen() before posting an accept",
        ))
    }
}

/// An fd in a `size_t` field (`INVALID_SOCKET_FD` as `(size_t)-1` on
/// POSIX), read back with `(socket_fd_t)`.
#[allow(clippy::unnecessary_cast)] // socket_fd_t is usize on Windows
fn fd_bits(fd: socket_fd_t) -> usize {
    fd as usize
}

/// An accepted connection's descriptor, handed to the caller (who closes
/// it).
#[cfg(unix)]
fn into_fd(conn: std::net::TcpStream) -> socket_fd_t {
    use std::os::fd::IntoRawFd;
    conn.into_raw_fd()
}

/// An accepted connection's socket, handed to the caller (who closes it).
#[cfg(windows)]
fn into_fd(conn: std::net::TcpStream) -> socket_fd_t {
    use std::os::windows::io::IntoRawSocket;
    conn.into_raw_socket() as socket_fd_t
}

impl Loop {
    pub(super) fn new(rt: rt::Runtime) -> Loop {
        Loop {
            rt,
            events: rt::Events::with_capacity(64),
            fds: FdMap::new(),
            ops: IntMap::default(),
            timers: IntMap::default(),
            console_type: console_type_t::CONSOLE_TYPE_NONE,
            stats: uniloop_runtime_stats_t::default(),
            kinds: false,
            signals: None,
            signal_keys: IntMap::default(),
            external: false,
        }
    }

    /// After a call that can make something pending (an event ready, an
    /// operation finished, a timer changed): re-arms the handed-out OS
    /// handle, so it is readable when a wait would return something.
    /// Returns the most another loop may block.
    #[inline]
    pub(super) fn rearm(&mut self) -> Result<Option<Duration>> {
        if !self.external {
            return Ok(None);
        }
        self.rearm_external()
    }

    #[cold]
    fn rearm_external(&mut self) -> Result<Option<Duration>> {
        Ok(self.rt.prepare_external_wait()?)
    }

    pub(super) fn add(&mut self, fd: socket_fd_t, events: u32, context: *mut c_void) -> Result<()> {
        check_fd(fd)?;
        let interest = interest(events);
        self.rt
            .register(&source(fd), rt::Token(fd as u64), interest)?;
        // A number closed without remove and reused: the core replaced its
        // registration (and dropped its operations); so do we.
        if let Some(mut old) = self.fds.remove(&fd) {
            for op in old.take_ops() {
                self.ops.remove(&op);
            }
        }
        self.fds.insert(
            fd,
            Fd {
                context,
                mask: events,
                reading: false,
                io: None,
            },
        );
        Ok(())
    }

    /// Inlined into `async_runtime_modify`: one frame per call.
    #[inline]
    pub(super) fn modify(
        &mut self,
        fd: socket_fd_t,
        events: u32,
        context: *mut c_void,
    ) -> Result<()> {
        check_fd(fd)?;
        let Some(entry) = self.fds.get_mut(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        // The same readiness interest on an fd that never had posted I/O:
        // the OS already watches exactly this (level-triggered), so only
        // the context and flags change.
        let same = (entry.mask ^ events) & (EVENT_READ | EVENT_WRITE) == 0;
        if !same || entry.io.is_some() {
            self.rt
                .reregister(&source(fd), rt::Token(fd as u64), interest(events))?;
        }
        entry.context = context;
        entry.mask = events;
        Ok(())
    }

    pub(super) fn remove(&mut self, fd: socket_fd_t) -> Result<()> {
        check_fd(fd)?;
        let Some(mut entry) = self.fds.remove(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        for op in entry.take_ops() {
            self.ops.remove(&op);
        }
        // Forgotten even if the OS complains (an fd closed before remove).
        self.rt.deregister(&source(fd))?;
        Ok(())
    }

    pub(super) fn post_read(
        &mut self,
        fd: socket_fd_t,
        buf: *mut c_void,
        len: usize,
    ) -> Result<()> {
        check_fd(fd)?;
        if !buf.is_null() && len == 0 {
            return Err(Error::invalid(
                "a read into a caller's buffer needs len > 0",
            ));
        }
        let Some(entry) = self.fds.get_mut(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        // Until its event is out of `wait`, a read counts, even one that
        // finished at once: a second would replace the buffer (`read_buf`,
        // or the caller's) that the first one's event hands out in the same
        // batch. Found by fuzz/fuzz_targets/capi_calls.rs (a heap
        // use-after-free of the first event's buffer).
        if entry.reading {
            return Err(Error::new(
                UNILOOP_ERR_EXISTS,
                "a read is already posted on this fd (its event not yet returned by a wait)",
            ));
        }
        // Every post asks (one `fcntl`): a flag cached from an earlier
        // post would let a read block the loop once the fd's flags change
        // or its number goes to another file.
        check_nonblocking(fd)?;
        let size = match (buf.is_null(), len) {
            (true, 0) => UNILOOP_DEFAULT_READ_SIZE,
            (_, n) => n,
        };
        let reuse = if buf.is_null() {
            entry.io().read_buf.take()
        } else {
            entry.io().spare.take()
        };
        let vec = match reuse {
            Some(mut v) if v.capacity() == size => {
                v.clear();
                v
            }
            _ => Vec::with_capacity(size),
        };
        // SAFETY: `fd` is registered (in `fds`), and the caller of
        // `async_runtime_add` promised to keep it open until
        // `async_runtime_remove`, which deregisters it (dropping its posted
        // operations) — so it is open while this read is pending.
        match unsafe { self.rt.post_read(&source(fd), vec) } {
            Ok(op) => {
                entry.reading = true;
                track(
                    entry,
                    &mut self.ops,
                    op,
                    Op {
                        fd,
                        user: buf,
                        shutdown: false,
                    },
                );
                Ok(())
            }
            Err(e) => {
                let (e, v) = e.into_parts();
                if buf.is_null() {
                    entry.io().read_buf = Some(v);
                }
                Err(e.into())
            }
        }
    }

    /// A posted write; `shutdown`: the marker of `shutdown_fd` (no data).
    pub(super) fn post_write(
        &mut self,
        fd: socket_fd_t,
        buf: *const c_void,
        len: usize,
        shutdown: bool,
    ) -> Result<()> {
        check_fd(fd)?;
        if buf.is_null() && len != 0 {
            return Err(Error::invalid("buffer is NULL and len is not 0"));
        }
        let Some(entry) = self.fds.get_mut(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        // Every post asks (one `fcntl`): a flag cached from an earlier
        // post would let a read block the loop once the fd's flags change
        // or its number goes to another file.
        check_nonblocking(fd)?;
        let data = if len == 0 {
            Vec::new()
        } else {
            // SAFETY: the caller passes `len` readable bytes at `buf`
            // (checked non-NULL above); they are copied before returning.
            unsafe { std::slice::from_raw_parts(buf as *const u8, len) }.to_vec()
        };
        // SAFETY: as in `post_read`: registered, and kept open by the
        // caller until `async_runtime_remove` deregisters it.
        let op = unsafe { self.rt.post_write(&source(fd), data) }.map_err(|e| {
            let e = e.into_parts().0;
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::new(
                    UNILOOP_ERR_FULL,
                    "the fd's queued output is at its write limit (1 MiB unless set with \
                     uniloop_runtime_set_write_limit): wait for write events first",
                )
            } else {
                Error::from(e)
            }
        })?;
        track(
            entry,
            &mut self.ops,
            op,
            Op {
                fd,
                user: buf.cast_mut(),
                shutdown,
            },
        );
        Ok(())
    }

    /// A posted accept on a registered listening socket.
    pub(super) fn post_accept(&mut self, fd: socket_fd_t) -> Result<()> {
        check_fd(fd)?;
        let Some(entry) = self.fds.get_mut(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        // Asked at every post, as for reads: an accept on a blocking
        // listener would block the loop.
        check_nonblocking(fd)?;
        check_listening(fd)?;
        // SAFETY: as in `post_read`: registered, and kept open by the
        // caller until `async_runtime_remove` deregisters it.
        let op = unsafe { self.rt.post_accept(&source(fd)) }?;
        track(
            entry,
            &mut self.ops,
            op,
            Op {
                fd,
                user: ptr::null_mut(),
                shutdown: false,
            },
        );
        Ok(())
    }

    /// A posted connect of a registered socket to `addr`.
    pub(super) fn post_connect(
        &mut self,
        fd: socket_fd_t,
        addr: std::net::SocketAddr,
    ) -> Result<()> {
        check_fd(fd)?;
        let Some(entry) = self.fds.get_mut(&fd) else {
            return Err(Error::new(UNILOOP_ERR_NOT_FOUND, "fd is not registered"));
        };
        check_nonblocking(fd)?;
        // SAFETY: as in `post_read`: registered, and kept open by the
        // caller until `async_runtime_remove` deregisters it.
        let op = unsafe { self.rt.post_connect(&source(fd), addr) }?;
        track(
            entry,
            &mut self.ops,
            op,
            Op {
                fd,
                user: ptr::null_mut(),
                shutdown: false,
            },
        );
        Ok(())
    }

    /// One wait, its events written to `out` (room for `max` events).
    /// Inlined into `async_runtime_wait`: one frame per call.
    #[inline]
    pub(super) fn wait(
        &mut self,
        out: *mut io_event_t,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        let cap = max.min(MAX_BATCH);
        if self.events.capacity() != cap {
            self.events = rt::Events::with_capacity(cap);
        }
        self.stats.waits += 1;
        self.rt.wait(&mut self.events, timeout)?;
        let mut n = 0;
        let mut io = 0;
        // By index: readiness is read in place; another kind is copied out
        // of the buffer, as its translation needs all of `self`.
        for i in 0..self.events.len() {
            let e = match self.events.iter().as_slice()[i] {
                // Readiness, most of what a loop sees: written here.
                rt::Event::Io { token, ready } => {
                    let fd = token.0 as socket_fd_t;
                    let Some(entry) = self.fds.get(&fd) else {
                        continue;
                    };
                    let mut t = event_type(ready, entry.mask);
                    if t == 0 {
                        continue;
                    }
                    if self.kinds {
                        t |= UNILOOP_EVENT_READINESS;
                    }
                    io += 1;
                    io_event_t {
                        event_type: t,
                        fd,
                        context: entry.context,
                        ..io_event_t::zeroed()
                    }
                }
                other => match self.translate(other) {
                    Some(e) => e,
                    None => continue,
                },
            };
            // SAFETY: `out` has room for `max` events (the caller's
            // promise) and `n < events.len() <= cap <= max`.
            unsafe { out.add(n).write(e) };
            n += 1;
        }
        self.stats.io_events += io;
        self.stats.events += n as u64;
        Ok(n)
    }

    /// An event other than readiness as an `io_event_t`, if it is one.
    #[inline(never)]
    fn translate(&mut self, ev: rt::Event) -> Option<io_event_t> {
        let mut e = io_event_t::zeroed();
        match ev {
            rt::Event::IoDone { op, .. } => {
                let Op { fd, user, shutdown } = self.ops.remove(&op)?;
                let fin = self.rt.take_io(op)?;
                let entry = self.fds.get_mut(&fd)?;
                entry.io().ops.remove(&op);
                if fin.kind == rt::OpKind::Read {
                    entry.reading = false;
                }
                e.fd = fd;
                e.context = entry.context;
                e.bytes_transferred = fin.bytes;
                let mut error = fin.error.as_ref().map(os_code);
                if shutdown && error.is_none() {
                    // Everything queued before the marker is out.
                    error = shut_write(fd).err();
                }
                if fin.kind == rt::OpKind::Accept {
                    // The connection, now the caller's: its fd in place of
                    // a byte count (`INVALID_SOCKET_FD` when none came).
                    e.bytes_transferred = match fin.accepted {
                        Some((conn, _)) if error.is_none() => fd_bits(into_fd(conn)),
                        _ => fd_bits(INVALID_FD),
                    };
                }
                e.event_type = match (fin.kind, error.is_some(), fin.bytes) {
                    (_, true, _) => EVENT_ERROR,
                    (rt::OpKind::Read, false, 0) => EVENT_CLOSE,
                    (rt::OpKind::Read | rt::OpKind::Accept, false, _) => EVENT_READ,
                    (_, false, _) => EVENT_WRITE, // a write or a connect
                };
                match fin.kind {
                    rt::OpKind::Accept => e.event_type |= UNILOOP_EVENT_ACCEPT,
                    rt::OpKind::Connect => e.event_type |= UNILOOP_EVENT_CONNECT,
                    _ if shutdown => e.event_type |= UNILOOP_EVENT_SHUTDOWN,
                    _ => {}
                }
                // The OS error code of a failed operation (errno; a
                // winsock code on Windows): fd events have no key.
                e.completion_key = error.unwrap_or(0);
                if self.kinds {
                    e.event_type |= UNILOOP_EVENT_POSTED;
                }
                e.buffer = match fin.kind {
                    rt::OpKind::Read if user.is_null() => {
                        let buf = entry.io().read_buf.insert(fin.buf);
                        buf.as_mut_ptr().cast()
                    }
                    rt::OpKind::Read => {
                        // SAFETY: the caller's buffer of the posted length
                        // stays valid until this event (the IOCP contract);
                        // `fin.bytes` is at most that length (the Vec had
                        // exactly that capacity).
                        unsafe {
                            ptr::copy_nonoverlapping(fin.buf.as_ptr(), user.cast(), fin.bytes)
                        };
                        entry.io().spare = Some(fin.buf);
                        user
                    }
                    _ => user, // a write: the caller's pointer back
                };
                self.stats.io_done += 1;
            }
            rt::Event::Completion { key, data } if key == SIGNAL_KEY => {
                // A signal (uniloop_signal_add); one removed since is dropped.
                e.completion_key = *self.signal_keys.get(&data)?;
                e.bytes_transferred = data as usize;
                e.event_type = EVENT_READ | UNILOOP_EVENT_SIGNAL;
                self.stats.completions += 1;
            }
            rt::Event::Completion { key, data } => {
                e.completion_key = key as usize;
                e.bytes_transferred = data as usize;
                e.event_type = EVENT_READ;
                if self.kinds {
                    e.event_type |= UNILOOP_EVENT_COMPLETION;
                }
                self.stats.completions += 1;
            }
            rt::Event::Timer { key, id } => {
                let cid = id.as_u64().wrapping_add(1);
                if let Some(&(_, false)) = self.timers.get(&cid) {
                    self.timers.remove(&cid);
                }
                e.completion_key = key as usize;
                e.bytes_transferred = cid as usize;
                e.event_type = EVENT_READ | UNILOOP_EVENT_TIMER;
                self.stats.timer_events += 1;
            }
            // A wakeup ends the wait and is not an event (the reference's
            // epoll backend reported a fake completion with key 0).
            rt::Event::Wake => return None,
            _ => return None,
        }
        Some(e)
    }
}
