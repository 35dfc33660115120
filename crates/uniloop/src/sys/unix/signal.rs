//! Signals on Unix: a `sigaction` handler that only sets a flag and writes
//! a byte to a self-pipe, and one thread that reads the pipe and hands each
//! pending signal to `crate::signal::deliver` (which posts completions).
//!
//! Written here with `libc::sigaction` rather than taken from signal-hook:
//! signal-hook-registry never puts back the previous disposition when its
//! last action for a signal is unregistered (its documentation says so —
//! the signal is then ignored for good), and `Signals` promises to restore
//! it. What is needed is small: one handler, one pipe, one thread. rustix
//! has no `sigaction` outside its runtime-implementers' API, hence `libc`.
//!
//! # The handler and the lost-signal argument
//!
//! The handler is async-signal-safe: an atomic store, `write(2)` on a
//! non-blocking pipe, and saving/restoring `errno` (the `errno` crate: a
//! read and a write of the thread's `errno` location). It never allocates,
//! locks or blocks.
//!
//! * Handler: `PENDING[n].store(true, Release)`, then `write(pipe, 1 byte)`.
//!   A full pipe (`EAGAIN`) is fine: it holds unread bytes, so the reader
//!   will read again.
//! * Reader: `read(pipe)` (blocking), then for every signal
//!   `PENDING[n].swap(false, Acquire)`; a `true` is delivered.
//!
//! The store is sequenced before the write, and the reader's swaps after
//! its read has returned that byte (or a later one); the pipe's kernel-side
//! locking orders the write before the read, so the swap sees the store.
//! The swap is a read-modify-write: a signal arriving during delivery sets
//! the flag again and writes a new byte, so the reader goes round once more
//! — never a lost signal, at worst one extra pass that finds nothing. Many
//! arrivals before one swap are one delivery (the kernel merges pending
//! standard signals of a kind anyway).
//!
//! The pipe's write end is never closed (it lives for the process), so the
//! handler never writes to a closed or reused descriptor.

use std::io;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;

use rustix::io::Errno;

use crate::Signal;

/// Signal numbers 1..=64 (Linux's `SIGRTMAX`; the BSDs and macOS stop
/// lower).
const SLOTS: usize = 65;

static PENDING: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
/// The self-pipe's write end, or -1 before the first `enable`.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// What `enable`/`disable` share: whether the reader runs, and each
/// installed signal's previous disposition.
struct State {
    reader: bool,
    previous: Vec<(i32, libc::sigaction)>,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, a mask and
// flags); nothing in it is tied to a thread.
unsafe impl Send for State {}

static STATE: Mutex<State> = Mutex::new(State {
    reader: false,
    previous: Vec::new(),
});

pub(crate) fn raw(signal: Signal) -> Option<i32> {
    Some(match signal {
        Signal::Interrupt => libc::SIGINT,
        Signal::Terminate => libc::SIGTERM,
        Signal::Hangup => libc::SIGHUP,
        Signal::Quit => libc::SIGQUIT,
        Signal::User1 => libc::SIGUSR1,
        Signal::User2 => libc::SIGUSR2,
        Signal::WindowChange => libc::SIGWINCH,
        Signal::Child => libc::SIGCHLD,
        Signal::Other(n) => n,
        Signal::Break | Signal::Close | Signal::Logoff | Signal::Shutdown => return None,
    })
}

pub(crate) fn from_raw(raw: i32) -> Signal {
    match raw {
        libc::SIGINT => Signal::Interrupt,
        libc::SIGTERM => Signal::Terminate,
        libc::SIGHUP => Signal::Hangup,
        libc::SIGQUIT => Signal::Quit,
        libc::SIGUSR1 => Signal::User1,
        libc::SIGUSR2 => Signal::User2,
        libc::SIGWINCH => Signal::WindowChange,
        libc::SIGCHLD => Signal::Child,
        n => Signal::Other(n),
    }
}

/// Installs the handler for `raw`, saving its previous disposition, and
/// starts the reader (once) that calls `deliver` for each arrival. The
/// caller (`crate::signal`) calls it once per signal until `disable`.
pub(crate) fn enable(raw: i32, deliver: fn(i32) -> bool) -> io::Result<()> {
    if !(1..SLOTS as i32).contains(&raw) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{raw} is not a signal number"),
        ));
    }
    if [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ]
    .contains(&raw)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {raw} cannot be caught, or must not be (a fault signal)"),
        ));
    }
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if !state.reader {
        start_reader(deliver)?;
        state.reader = true;
    }
    // A stale flag from an earlier subscription would deliver a signal
    // that arrived before this one.
    PENDING[raw as usize].store(false, Ordering::Relaxed);
    // SAFETY: an all-zero `sigaction` is a valid value (no handler, empty
    // flags) that is filled in below.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    new.sa_flags = libc::SA_RESTART;
    // SAFETY: `new.sa_mask` is a valid, exclusively borrowed sigset.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    // SAFETY: as above; overwritten by `sigaction`.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; the handler only does
    // async-signal-safe things (module docs).
    if unsafe { libc::sigaction(raw, &new, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    state.previous.push((raw, old));
    Ok(())
}

/// Puts back the disposition `raw` had before `enable`.
pub(crate) fn disable(raw: i32) {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(at) = state.previous.iter().position(|(r, _)| *r == raw) {
        let (_, old) = state.previous.swap_remove(at);
        // SAFETY: `old` is what `sigaction` gave us for this signal.
        unsafe { libc::sigaction(raw, &old, std::ptr::null_mut()) };
    }
}

/// The signal handler. Async-signal-safe: see the module docs.
extern "C" fn on_signal(raw: libc::c_int) {
    let saved = errno::errno();
    if let Some(flag) = usize::try_from(raw).ok().and_then(|i| PENDING.get(i)) {
        flag.store(true, Ordering::Release);
    }
    let fd = WAKE_FD.load(Ordering::Acquire);
    if fd >= 0 {
        // SAFETY: `fd` is the self-pipe's write end, which is never closed;
        // the buffer is one valid byte. A failed write (a full pipe) needs
        // no handling.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
    errno::set_errno(saved);
}

fn start_reader(deliver: fn(i32) -> bool) -> io::Result<()> {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let (read, write) = super::pipe()?;
    // The handler must never block; the reader does block, in `read`.
    fcntl_setfl(&write, fcntl_getfl(&write)? | OFlags::NONBLOCK)?;
    std::thread::Builder::new()
        .name("uniloop-signals".into())
        .spawn(move || read_loop(read, deliver))?;
    // Published only once the reader exists; the write end lives for the
    // process from here on (never closed). Release pairs with the handler's
    // Acquire load.
    WAKE_FD.store(write.into_raw_fd(), Ordering::Release);
    Ok(())
}

fn read_loop(read: OwnedFd, deliver: fn(i32) -> bool) {
    let mut buf = [0u8; 64];
    loop {
        match rustix::io::read(&read, &mut buf) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            // Cannot happen to a pipe we own whose write end never closes;
            // stopping is better than spinning if it ever does.
            Err(_) => return,
        }
        for (raw, flag) in PENDING.iter().enumerate().skip(1) {
            if flag.swap(false, Ordering::Acquire) {
                deliver(raw as i32);
            }
        }
    }
}
