//! The IOCP backend (Windows): socket readiness through AFD poll requests
//! whose completions, like the doorbell, arrive on one completion port.
//!
//! # How a registration lives
//!
//! Each registration has one [`PollIo`] — the `IO_STATUS_BLOCK` and the
//! `AFD_POLL_INFO` the kernel writes into — in its own heap allocation, so
//! its address never changes. At most one poll per registration is in
//! flight. While it is, the allocation is the kernel's: nothing frees,
//! moves or touches it until its packet has been dequeued, whatever else
//! happens to the registration (reregister, deregister, runtime drop), and a
//! registration slot is never reused while its poll is in flight. The
//! packet's `lpOverlapped` (the poll's APC context) is the slot index plus
//! one, so it is never null.
//!
//! * **Level** (default): after a registration's readiness has been handed
//!   to the runtime, its poll is issued again at the start of the *next*
//!   `select` — after the caller has had its chance to read or write, so
//!   the new poll sees the socket's current state, not the one just
//!   reported. A socket that is still ready completes the new poll at once.
//! * **Oneshot**: the same, minus the re-issue; `reregister` re-arms.
//! * **Edge**: not offered ([`Backend::supports`](crate::Backend::supports));
//!   an AFD poll reports state, not transitions, and an emulation would be
//!   approximate.
//!
//! `reregister` bumps the registration's generation and cancels the poll
//! in flight (`NtCancelIoFileEx`); when that poll's packet comes back with
//! an older generation its result is dropped and a poll for the new interest
//! is issued. `deregister` cancels too, and frees the registration when the
//! cancelled poll's packet arrives. Dropping the selector cancels every
//! poll in flight and waits for their packets before freeing anything.
//!
//! A socket closed while registered — its poll completes with
//! `AFD_POLL_LOCAL_CLOSE`, or the next one is refused for an invalid handle —
//! is left alone: no more polls, nothing reported, until `deregister`, or
//! `replace` when a new socket with its handle value is registered.
//!
//! Readiness that does not fit in one `select`'s `max` waits, in FIFO
//! order, for the next call (and its registration is re-armed only after it
//! has been delivered).

use std::cell::UnsafeCell;
use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::fmt;
use std::hash::{DefaultHasher, Hasher};
use std::io;
use std::mem::zeroed;
use std::os::windows::io::{AsRawSocket, RawSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_INVALID_HANDLE, HANDLE, STATUS_CANCELLED, STATUS_INVALID_HANDLE,
};
use windows_sys::Win32::Networking::WinSock::{self, SOCKADDR, SOCKADDR_STORAGE, SOCKET};
use windows_sys::Win32::System::IO::{IO_STATUS_BLOCK, OVERLAPPED_ENTRY};

use super::afd::{self, Afd, PollHandleInfo, PollInfo};
use super::port::{Port, Waker, AFD_KEY, WAKE_KEY};
use super::{RawOsHandle, Source};
use crate::sys::{NativeIo, Open, Poller};
use crate::{Interest, Readiness, Trigger};

/// Sockets per AFD handle. Cancelling one request walks the requests
/// pending on its handle, so wepoll and mio spread sockets over several
/// handles; 32 is their number.
const AFD_GROUP: usize = 32;

/// Packets taken from the port per `GetQueuedCompletionStatusEx` call.
const BATCH: usize = 256;

/// How long dropping the selector waits for cancelled polls to come back
/// before it gives up and leaks their buffers (rather than free memory the
/// kernel may still write).
const DROP_GRACE: Duration = Duration::from_secs(10);

/// What the kernel writes into while a poll is in flight.
struct PollIo {
    iosb: UnsafeCell<IO_STATUS_BLOCK>,
    info: UnsafeCell<PollInfo>,
}

// SAFETY: `PollIo` is plain data (the raw pointers inside are a socket
// handle value and an unused union arm). The kernel may write it from any
// thread while a poll is in flight, whichever thread owns the selector; the
// selector reads it only after dequeuing the poll's packet, and `&mut
// Selector` is needed for that, so moving the selector between threads
// cannot race.
unsafe impl Send for PollIo {}

struct Registration {
    io: Pin<Box<PollIo>>,
    /// The base provider's socket, the one AFD polls.
    base: RawSocket,
    /// Index into `Selector::afds`.
    afd: usize,
    /// The runtime's name for this registration.
    slot: u64,
    /// The AFD events requested.
    mask: u32,
    oneshot: bool,
    /// Unique per registration, so the ready and re-arm queues (which may
    /// outlive it) can tell it from a later one in the same slot.
    uid: u64,
    /// Bumped by `reregister`.
    gen: u64,
    /// The generation of the poll in flight, if one is.
    pending: Option<u64>,
    /// Deregistered; freed when the poll in flight comes back.
    deleted: bool,
    /// `false` for a oneshot registration that has reported.
    armed: bool,
    /// The socket was closed while registered: AFD said so
    /// (`AFD_POLL_LOCAL_CLOSE`), or refused a poll for its invalid handle.
    /// No more polls are issued; nothing is reported.
    closed: bool,
    /// The socket registered, to tell it from a later one that gets its
    /// handle value.
    id: Identity,
    /// Readiness waiting to be delivered.
    ready: Readiness,
    in_ready_queue: bool,
    in_arm_queue: bool,
}

struct AfdGroup {
    afd: Afd,
    users: usize,
}

pub(crate) struct Selector {
    port: Arc<Port>,
    afds: Vec<AfdGroup>,
    slots: Vec<Option<Registration>>,
    free: Vec<usize>,
    by_socket: HashMap<RawSocket, usize>,
    /// Registrations with readiness to deliver, oldest first.
    ready: VecDeque<(usize, u64)>,
    /// Registrations whose poll is to be issued at the next `select`.
    to_arm: Vec<(usize, u64)>,
    /// Polls in flight.
    in_flight: usize,
    next_uid: u64,
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("iocp::Selector")
            .field("registered", &self.by_socket.len())
            .field("afd_handles", &self.afds.len())
            .field("in_flight", &self.in_flight)
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl Selector {
    pub(crate) fn new(waker: &Waker) -> Selector {
        Selector {
            port: waker.port().clone(),
            afds: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            by_socket: HashMap::new(),
            ready: VecDeque::new(),
            to_arm: Vec::new(),
            in_flight: 0,
            next_uid: 0,
        }
    }
}

impl Open for Selector {
    fn open() -> io::Result<(Selector, Waker)> {
        let waker = Waker::new()?;
        Ok((Selector::new(&waker), waker))
    }
}

/// Native completion I/O is io_uring's only so far: posted reads and writes
/// on IOCP run through the readiness emulation.
impl NativeIo for Selector {}

impl Poller for Selector {
    /// The completion port.
    fn os_handle(&self) -> Option<RawOsHandle> {
        Some(self.port.raw() as _)
    }

    fn register(
        &mut self,
        socket: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let oneshot = check(trigger)?;
        let raw = socket.as_raw_socket();
        let base = afd::base_socket(raw)?;
        let afd = self.afd_with_room()?;
        self.afds[afd].users += 1;
        self.next_uid += 1;
        let reg = Registration {
            io: Box::pin(PollIo {
                // SAFETY: IO_STATUS_BLOCK is plain data; all-zero is valid.
                iosb: UnsafeCell::new(unsafe { zeroed() }),
                info: UnsafeCell::new(PollInfo::new()),
            }),
            base,
            afd,
            slot,
            mask: afd_events(interest),
            oneshot,
            uid: self.next_uid,
            gen: 0,
            pending: None,
            deleted: false,
            armed: true,
            closed: false,
            id: Identity::of(raw),
            ready: Readiness::EMPTY,
            in_ready_queue: false,
            in_arm_queue: false,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(reg);
                i
            }
            None => {
                self.slots.push(Some(reg));
                self.slots.len() - 1
            }
        };
        self.by_socket.insert(raw, index);
        self.queue_arm(index);
        Ok(())
    }

    /// The runtime still has the socket's handle value. The registration
    /// is stale if AFD said its socket was closed, or if this socket's own
    /// or peer address differs from the registered one's (Windows hands a
    /// freed handle value out again at once, so the value alone proves
    /// nothing). A stale one is dropped as by `deregister`, and this socket
    /// registered.
    fn replace(
        &mut self,
        socket: Source<'_>,
        _old: u64,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let raw = socket.as_raw_socket();
        let index = *self.by_socket.get(&raw).ok_or_else(not_found)?;
        let reg = self.slots[index].as_ref().expect("registered slot");
        if !reg.closed && !reg.id.differs(&Identity::of(raw)) {
            return Err(crate::sys::already_registered());
        }
        self.deregister(socket)?;
        self.register(socket, slot, interest, trigger)
    }

    fn reregister(
        &mut self,
        socket: Source<'_>,
        slot: u64,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        let oneshot = check(trigger)?;
        let raw = socket.as_raw_socket();
        let index = *self.by_socket.get(&raw).ok_or_else(not_found)?;
        if self.slots[index].as_ref().is_some_and(|r| r.closed) {
            // Its socket is gone; only `replace` or `deregister` can do
            // anything with this registration now.
            return Err(closed());
        }
        let base = afd::base_socket(raw)?;
        let reg = self.slots[index].as_mut().expect("registered slot");
        reg.base = base;
        reg.slot = slot;
        reg.mask = afd_events(interest);
        reg.oneshot = oneshot;
        reg.gen += 1;
        reg.armed = true;
        reg.ready = Readiness::EMPTY;
        if reg.pending.is_some() {
            // Its packet comes back with the old generation and is re-armed
            // with the new interest then.
            let iosb = reg.io.iosb.get();
            // SAFETY: `iosb` belongs to the poll in flight on this AFD
            // handle; cancelling only identifies the request by it.
            unsafe { self.afds[reg.afd].afd.cancel(iosb) }?;
        } else {
            self.queue_arm(index);
        }
        Ok(())
    }

    fn deregister(&mut self, socket: Source<'_>) -> io::Result<()> {
        let index = self
            .by_socket
            .remove(&socket.as_raw_socket())
            .ok_or_else(not_found)?;
        let reg = self.slots[index].as_mut().expect("registered slot");
        reg.deleted = true;
        if reg.pending.is_some() {
            let iosb = reg.io.iosb.get();
            // SAFETY: as in `reregister`. The registration (and its buffers)
            // stays in its slot until the packet arrives.
            unsafe { self.afds[reg.afd].afd.cancel(iosb) }?;
        } else {
            self.release(index);
        }
        Ok(())
    }

    fn select(
        &mut self,
        out: &mut Vec<(u64, Readiness)>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        self.arm_queued();
        // Readiness left over from the last call is ready now.
        let timeout = if self.ready.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        let mut packets = [OVERLAPPED_ENTRY::default(); BATCH];
        let n = self.port.dequeue(&mut packets, timeout)?;
        let mut woken = false;
        for packet in &packets[..n] {
            match packet.lpCompletionKey {
                WAKE_KEY => woken = true,
                // A null context cannot come from us; `wrapping_sub` turns it
                // into an index no slot has.
                AFD_KEY => self.complete((packet.lpOverlapped as usize).wrapping_sub(1)),
                _ => {}
            }
        }
        self.deliver(out, max);
        Ok(woken)
    }
}

impl Selector {
    /// A registration slot on an AFD handle with fewer than `AFD_GROUP`
    /// users, opening a new handle when all are full.
    fn afd_with_room(&mut self) -> io::Result<usize> {
        if let Some(i) = self.afds.iter().rposition(|g| g.users < AFD_GROUP) {
            return Ok(i);
        }
        self.afds.push(AfdGroup {
            afd: Afd::new(self.port.raw(), AFD_KEY)?,
            users: 0,
        });
        Ok(self.afds.len() - 1)
    }

    fn get(&mut self, index: usize, uid: u64) -> Option<&mut Registration> {
        self.slots.get_mut(index)?.as_mut().filter(|r| r.uid == uid)
    }

    fn queue_arm(&mut self, index: usize) {
        let reg = self.slots[index].as_mut().expect("live slot");
        if !reg.in_arm_queue {
            reg.in_arm_queue = true;
            self.to_arm.push((index, reg.uid));
        }
    }

    fn queue_ready(&mut self, index: usize, ready: Readiness) {
        let reg = self.slots[index].as_mut().expect("live slot");
        reg.ready |= ready;
        if !reg.in_ready_queue {
            reg.in_ready_queue = true;
            self.ready.push_back((index, reg.uid));
        }
    }

    /// Issues the polls queued since the last `select`.
    fn arm_queued(&mut self) {
        let queued = std::mem::take(&mut self.to_arm);
        for &(index, uid) in &queued {
            let Some(reg) = self.slots[index].as_mut().filter(|r| r.uid == uid) else {
                continue;
            };
            reg.in_arm_queue = false;
            if reg.pending.is_some()
                || reg.deleted
                || !reg.armed
                || reg.closed
                || !reg.ready.is_empty()
            {
                continue;
            }
            let info = reg.io.info.get();
            let iosb = reg.io.iosb.get();
            // SAFETY: no poll is in flight for this registration, so its
            // buffers are ours to write.
            unsafe {
                *info = PollInfo {
                    // Never time out: only completion or cancel ends it.
                    timeout: i64::MAX,
                    number_of_handles: 1,
                    exclusive: 0,
                    handles: [PollHandleInfo {
                        handle: reg.base as HANDLE,
                        events: reg.mask,
                        status: 0,
                    }],
                };
            }
            let gen = reg.gen;
            let context = (index + 1) as *mut c_void;
            // SAFETY: the buffers live in the registration's pinned box,
            // which is not freed or reused until this poll's packet has been
            // dequeued (`pending` is set below and cleared only then, and
            // `release`/`Drop` honour it); `context` is non-null.
            let issued = unsafe { self.afds[reg.afd].afd.poll(iosb, info, context) };
            match issued {
                Ok(()) => {
                    reg.pending = Some(gen);
                    self.in_flight += 1;
                }
                // Refused: no packet will come. A socket closed behind our
                // back (its handle is invalid now) is as if deregistered,
                // as with AFD_POLL_LOCAL_CLOSE: reporting it would be a busy
                // loop. Anything else is reported as an error (a level
                // registration keeps reporting it).
                Err(e) if e.raw_os_error() == Some(ERROR_INVALID_HANDLE as i32) => {
                    reg.closed = true;
                }
                Err(_) => self.queue_ready(index, Readiness::ERROR | Readiness::WRITE_CLOSED),
            }
        }
        // Keep the allocation for next time.
        let mut queued = queued;
        queued.clear();
        if self.to_arm.is_empty() {
            self.to_arm = queued;
        }
    }

    /// Handles the packet of the poll issued for `slots[index]`.
    fn complete(&mut self, index: usize) {
        let Some(reg) = self.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        let Some(gen) = reg.pending.take() else {
            return;
        };
        self.in_flight -= 1;
        if reg.deleted {
            self.release(index);
            return;
        }
        // SAFETY: this poll's packet has been dequeued, so the kernel has
        // finished writing both buffers and no other poll uses them.
        let (status, info) = unsafe { ((*reg.io.iosb.get()).Anonymous.Status, *reg.io.info.get()) };
        if gen != reg.gen || status == STATUS_CANCELLED {
            // Issued for an interest that no longer holds: ask again.
            self.queue_arm(index);
            return;
        }
        if status == STATUS_INVALID_HANDLE {
            // The socket was closed while the poll was being set up.
            reg.closed = true;
            return;
        }
        if status < 0 {
            self.queue_ready(index, Readiness::ERROR | Readiness::WRITE_CLOSED);
            return;
        }
        let events = if info.number_of_handles == 0 {
            0
        } else {
            info.handles[0].events
        };
        if events & afd::POLL_LOCAL_CLOSE != 0 {
            // The socket was closed while registered: as if deregistered
            // (the runtime's entry goes with the caller's `deregister`).
            reg.closed = true;
            return;
        }
        let ready = readiness(events & reg.mask);
        if ready.is_empty() {
            // Spurious: nothing we asked about.
            self.queue_arm(index);
        } else {
            self.queue_ready(index, ready);
        }
    }

    /// Hands at most `max` registrations' readiness to the runtime; the
    /// rest stays queued.
    fn deliver(&mut self, out: &mut Vec<(u64, Readiness)>, max: usize) {
        while out.len() < max {
            let Some((index, uid)) = self.ready.pop_front() else {
                return;
            };
            let Some(reg) = self.get(index, uid) else {
                continue;
            };
            reg.in_ready_queue = false;
            if reg.deleted || reg.ready.is_empty() {
                continue;
            }
            out.push((
                reg.slot,
                std::mem::replace(&mut reg.ready, Readiness::EMPTY),
            ));
            if reg.oneshot {
                reg.armed = false;
            } else {
                self.queue_arm(index);
            }
        }
    }

    /// Frees a registration whose poll is not in flight.
    fn release(&mut self, index: usize) {
        if let Some(reg) = self.slots[index].take() {
            debug_assert!(reg.pending.is_none());
            self.afds[reg.afd].users -= 1;
            self.free.push(index);
        }
    }
}

impl Drop for Selector {
    fn drop(&mut self) {
        for reg in self.slots.iter().flatten() {
            if reg.pending.is_some() {
                // SAFETY: as in `reregister`.
                let _ = unsafe { self.afds[reg.afd].afd.cancel(reg.io.iosb.get()) };
            }
        }
        let deadline = Instant::now() + DROP_GRACE;
        let mut packets = [OVERLAPPED_ENTRY::default(); BATCH];
        while self.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Ok(n) = self.port.dequeue(&mut packets, Some(left)) else {
                break;
            };
            for packet in &packets[..n] {
                if packet.lpCompletionKey != AFD_KEY {
                    continue;
                }
                let index = (packet.lpOverlapped as usize).wrapping_sub(1);
                if let Some(reg) = self.slots.get_mut(index).and_then(Option::as_mut) {
                    if reg.pending.take().is_some() {
                        self.in_flight -= 1;
                    }
                }
            }
        }
        // Polls that never came back: their buffers may still be written,
        // so they must never be freed.
        for reg in self.slots.iter_mut().flatten() {
            if reg.pending.is_some() {
                let io = std::mem::replace(
                    &mut reg.io,
                    Box::pin(PollIo {
                        // SAFETY: IO_STATUS_BLOCK is plain data; all-zero is
                        // valid.
                        iosb: UnsafeCell::new(unsafe { zeroed() }),
                        info: UnsafeCell::new(PollInfo::new()),
                    }),
                );
                std::mem::forget(io);
            }
        }
    }
}

fn check(trigger: Trigger) -> io::Result<bool> {
    match trigger {
        Trigger::Level => Ok(false),
        Trigger::Oneshot => Ok(true),
        Trigger::Edge => Err(crate::sys::unsupported(
            "the IOCP backend cannot do edge-triggered readiness",
        )),
    }
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "the socket was closed while registered with the IOCP selector",
    )
}

fn not_found() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "socket is not registered with the IOCP selector",
    )
}

/// What tells a socket from a later one with the same handle value: its
/// own and its peer's address (hashed), as far as it has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    local: Option<u64>,
    peer: Option<u64>,
}

impl Identity {
    fn of(socket: RawSocket) -> Identity {
        Identity {
            local: address(socket, false),
            peer: address(socket, true),
        }
    }

    /// Whether `now` is another socket. An address counts only where both
    /// sides have it: a socket registered before it connected gains a peer,
    /// and is still the same socket.
    fn differs(&self, now: &Identity) -> bool {
        fn known_and_unequal(a: Option<u64>, b: Option<u64>) -> bool {
            matches!((a, b), (Some(a), Some(b)) if a != b)
        }
        known_and_unequal(self.local, now.local) || known_and_unequal(self.peer, now.peer)
    }
}

/// A hash of the socket's own (`getsockname`) or peer (`getpeername`)
/// address; `None` if it has none (unbound, unconnected).
fn address(socket: RawSocket, peer: bool) -> Option<u64> {
    // SAFETY: SOCKADDR_STORAGE is plain data; all-zero is valid.
    let mut storage: SOCKADDR_STORAGE = unsafe { zeroed() };
    let size = std::mem::size_of::<SOCKADDR_STORAGE>();
    let mut len = size as i32;
    let name = (&mut storage as *mut SOCKADDR_STORAGE).cast::<SOCKADDR>();
    // SAFETY: `name` points at `len` writable bytes, which is all either
    // call writes (it sets `len` to what it wrote); the socket handle is
    // only looked up.
    let r = unsafe {
        if peer {
            WinSock::getpeername(socket as SOCKET, name, &mut len)
        } else {
            WinSock::getsockname(socket as SOCKET, name, &mut len)
        }
    };
    if r != 0 {
        return None;
    }
    let len = usize::try_from(len).unwrap_or(0).min(size);
    // SAFETY: the call initialised the first `len` bytes of `storage`,
    // which lives until the end of this function.
    let bytes = unsafe { std::slice::from_raw_parts(name.cast::<u8>(), len) };
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    Some(hasher.finish())
}

/// The AFD events to request for `interest`. Errors and a local close are
/// always requested, as epoll always reports `EPOLLERR`/`EPOLLHUP`; read
/// interest includes the peer's FIN (`DISCONNECT`) and, for listeners,
/// `ACCEPT`.
fn afd_events(interest: Interest) -> u32 {
    let mut e = afd::POLL_ABORT | afd::POLL_CONNECT_FAIL | afd::POLL_LOCAL_CLOSE;
    if interest.is_readable() {
        e |= afd::POLL_RECEIVE | afd::POLL_ACCEPT | afd::POLL_DISCONNECT;
    }
    if interest.is_writable() {
        e |= afd::POLL_SEND;
    }
    if interest.is_priority() {
        e |= afd::POLL_RECEIVE_EXPEDITED;
    }
    e
}

fn readiness(events: u32) -> Readiness {
    let mut r = Readiness::EMPTY;
    if events & (afd::POLL_RECEIVE | afd::POLL_ACCEPT) != 0 {
        r |= Readiness::READABLE;
    }
    if events & afd::POLL_SEND != 0 {
        r |= Readiness::WRITABLE;
    }
    if events & afd::POLL_RECEIVE_EXPEDITED != 0 {
        r |= Readiness::PRIORITY;
    }
    if events & afd::POLL_DISCONNECT != 0 {
        // EOF is readable: a read returns 0.
        r |= Readiness::READABLE | Readiness::READ_CLOSED;
    }
    if events & (afd::POLL_ABORT | afd::POLL_CONNECT_FAIL) != 0 {
        r |= Readiness::ERROR | Readiness::READ_CLOSED | Readiness::WRITE_CLOSED;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_interest_asks_for_disconnect_and_accept() {
        let e = afd_events(Interest::READABLE);
        for bit in [afd::POLL_RECEIVE, afd::POLL_ACCEPT, afd::POLL_DISCONNECT] {
            assert_ne!(e & bit, 0, "{bit:#x}");
        }
        assert_eq!(e & afd::POLL_SEND, 0);
        // Errors and a local close are always asked for.
        let w = afd_events(Interest::WRITABLE);
        for bit in [
            afd::POLL_SEND,
            afd::POLL_ABORT,
            afd::POLL_CONNECT_FAIL,
            afd::POLL_LOCAL_CLOSE,
        ] {
            assert_ne!(w & bit, 0, "{bit:#x}");
        }
        assert_eq!(w & afd::POLL_RECEIVE, 0);
    }

    #[test]
    fn identity_tells_sockets_apart_by_address() {
        use std::net::{TcpListener, TcpStream, UdpSocket};
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let id = |s: &dyn AsRawSocket| Identity::of(s.as_raw_socket());
        assert!(!id(&a).differs(&id(&a)));
        assert!(id(&a).differs(&id(&b)));
        // Two accepted connections: the same own address, other peers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _c1 = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _c2 = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s1, _) = listener.accept().unwrap();
        let (s2, _) = listener.accept().unwrap();
        assert!(id(&s1).differs(&id(&s2)));
        // Unbound: nothing known, nothing to tell apart.
        let unbound =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        assert_eq!(
            id(&unbound),
            Identity {
                local: None,
                peer: None
            }
        );
    }

    #[test]
    fn afd_bits_map_to_their_own_flags() {
        assert_eq!(readiness(afd::POLL_RECEIVE), Readiness::READABLE);
        assert_eq!(readiness(afd::POLL_ACCEPT), Readiness::READABLE);
        assert_eq!(readiness(afd::POLL_SEND), Readiness::WRITABLE);
        assert_eq!(readiness(afd::POLL_RECEIVE_EXPEDITED), Readiness::PRIORITY);
        assert_eq!(
            readiness(afd::POLL_DISCONNECT),
            Readiness::READABLE | Readiness::READ_CLOSED
        );
        let failed = Readiness::ERROR | Readiness::READ_CLOSED | Readiness::WRITE_CLOSED;
        assert_eq!(readiness(afd::POLL_ABORT), failed);
        assert_eq!(readiness(afd::POLL_CONNECT_FAIL), failed);
        assert_eq!(readiness(0), Readiness::EMPTY);
    }
}
