//! The I/O completion port and the doorbell built on it.
//!
//! One port per runtime carries two kinds of packet: AFD poll completions
//! (key [`AFD_KEY`], `lpOverlapped` = the poll's context) and the doorbell
//! (key [`WAKE_KEY`], no `OVERLAPPED`). Completions posted with
//! `Poster::post` do not travel through the port one packet each: they sit in
//! the runtime's user-space queue, and the port only carries the doorbell,
//! rung at most once per sleep (see `completion.rs`).

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::{null, null_mut};
use std::sync::Arc;
use std::time::Duration;

use windows_sys::Win32::Foundation::{GetLastError, HANDLE, INVALID_HANDLE_VALUE, WAIT_TIMEOUT};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatusEx, PostQueuedCompletionStatus,
    OVERLAPPED_ENTRY,
};

use crate::sys::Notify;

/// Key of every AFD handle's packets.
pub(super) const AFD_KEY: usize = 1;
/// Key of the doorbell's packets; no AFD handle uses it.
pub(super) const WAKE_KEY: usize = 2;

#[derive(Debug)]
pub(super) struct Port {
    handle: OwnedHandle,
}

impl Port {
    fn new() -> io::Result<Port> {
        // SAFETY: creating a fresh port: no file handle, no existing port.
        let h = unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, null_mut(), 0, 1) };
        if h.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `h` is a new handle owned by nobody else.
        let handle = unsafe { OwnedHandle::from_raw_handle(h) };
        Ok(Port { handle })
    }

    pub(super) fn raw(&self) -> HANDLE {
        self.handle.as_raw_handle()
    }

    /// Dequeues up to `buf.len()` packets, waiting at most `timeout`.
    /// Returns how many; 0 when the wait timed out.
    pub(super) fn dequeue(
        &self,
        buf: &mut [OVERLAPPED_ENTRY],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let mut n = 0u32;
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        // SAFETY: `buf` is a live, exclusively borrowed array of `len`
        // entries; the call is not alertable, so no APC runs inside it.
        let ok = unsafe {
            GetQueuedCompletionStatusEx(
                self.raw(),
                buf.as_mut_ptr(),
                len,
                &mut n,
                timeout_ms(timeout),
                0,
            )
        };
        if ok != 0 {
            return Ok(n as usize);
        }
        // SAFETY: reads this thread's last error; no preconditions.
        match unsafe { GetLastError() } {
            WAIT_TIMEOUT => Ok(0),
            code => Err(io::Error::from_raw_os_error(code as i32)),
        }
    }
}

/// `GetQueuedCompletionStatusEx`'s timeout: whole milliseconds rounded up
/// (a 100 µs wait must not become a busy 0 ms poll), `INFINITE` for none,
/// clamped just below `INFINITE`; a clamped wait returns early and the
/// runtime waits again for the rest.
fn timeout_ms(timeout: Option<Duration>) -> u32 {
    const INFINITE: u32 = u32::MAX;
    match timeout {
        None => INFINITE,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).unwrap_or(INFINITE - 1).min(INFINITE - 1)
        }
    }
}

/// The doorbell: a `WAKE_KEY` packet on the port.
///
/// It shares the port through an `Arc`, so a `Poster` that rings after the
/// runtime (and its selector) is gone posts to a port that is still open —
/// the packet is simply never read, and freed with the port when the last
/// `Poster` goes.
#[derive(Debug, Clone)]
pub(crate) struct Waker {
    port: Arc<Port>,
}

impl Waker {
    pub(super) fn new() -> io::Result<Waker> {
        Ok(Waker {
            port: Arc::new(Port::new()?),
        })
    }

    pub(super) fn port(&self) -> &Arc<Port> {
        &self.port
    }

    /// Nothing to do: dequeuing the packet already consumed the ring.
    pub(crate) fn drain(&self) {}
}

impl Notify for Waker {
    fn notify(&self) -> io::Result<()> {
        // A packet stays queued until dequeued, so a ring that lands before
        // the loop blocks is not lost. The completion protocol rings at most
        // once per sleep, so packets cannot pile up.
        // SAFETY: the port handle is live (we hold an `Arc` to it); no
        // OVERLAPPED is passed, so nothing has to outlive the call.
        if unsafe { PostQueuedCompletionStatus(self.port.raw(), 0, WAKE_KEY, null()) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
