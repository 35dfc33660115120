//! The Ancillary Function Driver (AFD) poll request: how a socket's
//! readiness reaches a completion port without a thread per socket and
//! without `WSAEventSelect`'s 64-handle limit.
//!
//! `IOCTL_AFD_POLL` is what `select`/`WSAPoll` use inside `ws2_32`. Issued
//! with `NtDeviceIoControlFile` on a handle to `\Device\Afd` that is
//! associated with our port, it completes (a port packet) once any of the
//! requested conditions holds for the socket named in the request. The
//! request is one-shot: it must be issued again to hear about the next
//! change. wepoll, mio and polling use the same mechanism; the facts below
//! are the ones they recorded.
//!
//! * The poll-info buffer is both the input (which socket, which events) and
//!   the output (which events happened); both pointers name the same buffer.
//! * The APC context must be non-null: it comes back as the packet's
//!   `lpOverlapped`, and a null context means no packet is queued at all.
//! * The kernel writes the `IO_STATUS_BLOCK` and the poll-info buffer when
//!   the request completes, so both must stay where they are, alive, until
//!   the packet has been dequeued — also after a cancel.
//! * The socket named in the request must be the base provider's handle
//!   (`SIO_BASE_HANDLE`), not a layered service provider's.

use std::ffi::c_void;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawSocket};
use std::ptr::{null, null_mut};

use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{NtCancelIoFileEx, NtCreateFile, FILE_OPEN};
use windows_sys::Wdk::System::IO::NtDeviceIoControlFile;
use windows_sys::Win32::Foundation::{
    RtlNtStatusToDosError, HANDLE, NTSTATUS, STATUS_NOT_FOUND, STATUS_PENDING, STATUS_SUCCESS,
    UNICODE_STRING,
};
use windows_sys::Win32::Networking::WinSock::{
    WSAGetLastError, WSAIoctl, INVALID_SOCKET, SIO_BASE_HANDLE, SIO_BSP_HANDLE,
    SIO_BSP_HANDLE_POLL, SIO_BSP_HANDLE_SELECT, SOCKET, SOCKET_ERROR,
};
use windows_sys::Win32::Storage::FileSystem::{
    SetFileCompletionNotificationModes, FILE_SHARE_READ, FILE_SHARE_WRITE, SYNCHRONIZE,
};
use windows_sys::Win32::System::WindowsProgramming::FILE_SKIP_SET_EVENT_ON_HANDLE;
use windows_sys::Win32::System::IO::{CreateIoCompletionPort, IO_STATUS_BLOCK};

/// `_AFD_CONTROL_CODE(AFD_POLL = 9, METHOD_BUFFERED)`.
const IOCTL_AFD_POLL: u32 = 0x0001_2024;

// The AFD_POLL_* event bits (from the Windows DDK's `afd.h`, as wepoll and
// ReactOS document them).
pub(super) const POLL_RECEIVE: u32 = 0x0001;
pub(super) const POLL_RECEIVE_EXPEDITED: u32 = 0x0002;
pub(super) const POLL_SEND: u32 = 0x0004;
pub(super) const POLL_DISCONNECT: u32 = 0x0008;
pub(super) const POLL_ABORT: u32 = 0x0010;
pub(super) const POLL_LOCAL_CLOSE: u32 = 0x0020;
pub(super) const POLL_ACCEPT: u32 = 0x0080;
pub(super) const POLL_CONNECT_FAIL: u32 = 0x0100;

/// One socket in an `AFD_POLL_INFO`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct PollHandleInfo {
    pub(super) handle: HANDLE,
    pub(super) events: u32,
    pub(super) status: NTSTATUS,
}

/// `AFD_POLL_INFO` with room for exactly one socket: input and output.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(super) struct PollInfo {
    pub(super) timeout: i64,
    pub(super) number_of_handles: u32,
    pub(super) exclusive: u32,
    pub(super) handles: [PollHandleInfo; 1],
}

impl PollInfo {
    pub(super) fn new() -> PollInfo {
        PollInfo {
            timeout: 0,
            number_of_handles: 0,
            exclusive: 0,
            handles: [PollHandleInfo {
                handle: null_mut(),
                events: 0,
                status: 0,
            }],
        }
    }
}

/// A handle to the AFD device, associated with one completion port. Many
/// sockets' polls can be pending on one such handle.
#[derive(Debug)]
pub(super) struct Afd {
    handle: OwnedHandle,
}

impl Afd {
    /// Opens `\Device\Afd\Uniloop` and associates it with `port` under
    /// `key`.
    pub(super) fn new(port: HANDLE, key: usize) -> io::Result<Afd> {
        // Any name under `\Device\Afd\` opens the device; the suffix only
        // shows up in handle listings.
        let wide: Vec<u16> = r"\Device\Afd\Uniloop".encode_utf16().collect();
        let name = UNICODE_STRING {
            Length: (wide.len() * 2) as u16,
            MaximumLength: (wide.len() * 2) as u16,
            Buffer: wide.as_ptr() as *mut u16,
        };
        let attributes = OBJECT_ATTRIBUTES {
            Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: null_mut(),
            ObjectName: &name,
            Attributes: 0,
            SecurityDescriptor: null(),
            SecurityQualityOfService: null(),
        };
        let mut handle: HANDLE = null_mut();
        // SAFETY: IO_STATUS_BLOCK is plain data; all-zero is a valid value.
        let mut iosb: IO_STATUS_BLOCK = unsafe { zeroed() };
        // SAFETY: every pointer names a live local for the duration of the
        // call (`wide` outlives `name`, which outlives `attributes`); the open is
        // synchronous, so `iosb` is not written after the call returns.
        let status = unsafe {
            NtCreateFile(
                &mut handle,
                SYNCHRONIZE,
                &attributes,
                &mut iosb,
                null(),
                0,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                FILE_OPEN,
                0,
                null(),
                0,
            )
        };
        if status != STATUS_SUCCESS {
            return Err(status_error(status));
        }
        // SAFETY: NtCreateFile succeeded, so `handle` is a fresh handle that
        // nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(handle) };
        // SAFETY: both handles are live; association only records the key.
        if unsafe { CreateIoCompletionPort(handle.as_raw_handle(), port, key, 0) }.is_null() {
            return Err(io::Error::last_os_error());
        }
        // The port is the only notification we use; skip signalling the
        // handle itself on every completion.
        // SAFETY: `handle` is live and ours.
        if unsafe {
            SetFileCompletionNotificationModes(
                handle.as_raw_handle(),
                FILE_SKIP_SET_EVENT_ON_HANDLE as u8,
            )
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(Afd { handle })
    }

    /// Issues one poll request.
    ///
    /// Returns `Ok(())` when the request is pending or already complete —
    /// either way exactly one packet with `context` as its `lpOverlapped`
    /// will be queued on the port — and the error when the request was
    /// refused (then no packet comes).
    ///
    /// # Safety
    ///
    /// `iosb` and `info` must stay valid and unmoved, and must not be read
    /// or written by anyone else, until that packet has been dequeued.
    /// `context` must be non-null.
    pub(super) unsafe fn poll(
        &self,
        iosb: *mut IO_STATUS_BLOCK,
        info: *mut PollInfo,
        context: *mut c_void,
    ) -> io::Result<()> {
        debug_assert!(!context.is_null());
        // SAFETY: the caller guarantees `iosb` is valid and exclusively
        // ours until the packet arrives.
        unsafe { (*iosb).Anonymous.Status = STATUS_PENDING };
        // SAFETY: the caller guarantees both buffers stay valid and pinned
        // until the completion packet is dequeued; the AFD handle is live;
        // the same buffer is input and output, as AFD expects.
        let status = unsafe {
            NtDeviceIoControlFile(
                self.handle.as_raw_handle(),
                null_mut(),
                None,
                context,
                iosb,
                IOCTL_AFD_POLL,
                info as *const c_void,
                size_of::<PollInfo>() as u32,
                info as *mut c_void,
                size_of::<PollInfo>() as u32,
            )
        };
        if status == STATUS_SUCCESS || status == STATUS_PENDING {
            Ok(())
        } else {
            Err(status_error(status))
        }
    }

    /// Asks the kernel to complete the pending poll that writes into
    /// `iosb` early (with `STATUS_CANCELLED`). Its packet still arrives and
    /// still has to be waited for; if it was already complete, nothing
    /// changes.
    ///
    /// # Safety
    ///
    /// `iosb` must be the status block of a poll issued on this handle.
    pub(super) unsafe fn cancel(&self, iosb: *mut IO_STATUS_BLOCK) -> io::Result<()> {
        // SAFETY: IO_STATUS_BLOCK is plain data; all-zero is a valid value.
        let mut cancel_iosb: IO_STATUS_BLOCK = unsafe { zeroed() };
        // SAFETY: the handle is live; `iosb` only identifies the request
        // (the kernel compares the pointer); `cancel_iosb` is a local that
        // the synchronous cancel call fills before returning.
        let status =
            unsafe { NtCancelIoFileEx(self.handle.as_raw_handle(), iosb, &mut cancel_iosb) };
        if status == STATUS_SUCCESS || status == STATUS_NOT_FOUND {
            Ok(())
        } else {
            Err(status_error(status))
        }
    }
}

/// The base service provider's socket behind `socket`, which is what AFD
/// polls. Layered providers may intercept `SIO_BASE_HANDLE`; the
/// `SIO_BSP_HANDLE*` requests ask for the same thing in ways some of them
/// let through.
pub(super) fn base_socket(socket: RawSocket) -> io::Result<RawSocket> {
    let mut last = io::Error::from_raw_os_error(0);
    for ioctl in [
        SIO_BASE_HANDLE,
        SIO_BSP_HANDLE_SELECT,
        SIO_BSP_HANDLE_POLL,
        SIO_BSP_HANDLE,
    ] {
        match socket_ioctl(socket as SOCKET, ioctl) {
            Ok(base) => return Ok(base as RawSocket),
            Err(e) => last = e,
        }
        // A bad socket fails every request the same way; stop at the first.
        if ioctl == SIO_BASE_HANDLE && last.raw_os_error() == Some(WSAENOTSOCK) {
            break;
        }
    }
    Err(last)
}

const WSAENOTSOCK: i32 = 10038;

fn socket_ioctl(socket: SOCKET, ioctl: u32) -> io::Result<SOCKET> {
    let mut out: SOCKET = INVALID_SOCKET;
    let mut bytes = 0u32;
    // SAFETY: no input buffer; the output buffer is a local of exactly the
    // size given; no OVERLAPPED, so the call is synchronous.
    let r = unsafe {
        WSAIoctl(
            socket,
            ioctl,
            null(),
            0,
            &mut out as *mut SOCKET as *mut c_void,
            size_of::<SOCKET>() as u32,
            &mut bytes,
            null_mut(),
            None,
        )
    };
    if r == SOCKET_ERROR {
        // SAFETY: reads this thread's last Winsock error; no preconditions.
        return Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }));
    }
    if out == INVALID_SOCKET {
        return Err(io::Error::from_raw_os_error(WSAENOTSOCK));
    }
    Ok(out)
}

/// An NTSTATUS as the matching Win32 error.
pub(super) fn status_error(status: NTSTATUS) -> io::Error {
    // SAFETY: a pure lookup with no preconditions.
    let code = unsafe { RtlNtStatusToDosError(status) };
    io::Error::from_raw_os_error(code as i32)
}
