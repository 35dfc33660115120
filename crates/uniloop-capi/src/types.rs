//! The reference's runtime types, byte for byte: `io_event_t`, the
//! `EVENT_*` flags, `console_type_t`, and uniloop's additions to them.
//!
//! `socket_fd_t` and `INVALID_SOCKET_FD` are spelled in cbindgen.toml's
//! preamble exactly as the reference's `port/socket_comm.h` spells them, so
//! a program including both headers sees identical definitions.

// The exported items are `pub` for cbindgen and reached through the C
// symbol table, not through Rust paths; their names are the reference's.
#![allow(unreachable_pub, non_camel_case_types)]

use std::ffi::c_void;

/// `socket_fd_t` of the reference: `int` on POSIX. (Not emitted by
/// cbindgen: the preamble defines it, guarded like the reference's.)
#[cfg(not(windows))]
#[allow(non_camel_case_types)]
pub type socket_fd_t = std::ffi::c_int;
/// `socket_fd_t` of the reference: `SOCKET` on Windows.
#[cfg(windows)]
#[allow(non_camel_case_types)]
pub type socket_fd_t = usize;

/// `uintptr_t`: a `usize` that cbindgen prints as `uintptr_t` (every
/// other `usize` is a `size_t`), for keys and data where the reference
/// says `uintptr_t`.
pub type UintPtr = usize;

/// `INVALID_SOCKET_FD`: the `fd` of an event that is not about an fd.
#[cfg(not(windows))]
pub(crate) const INVALID_FD: socket_fd_t = -1;
/// `INVALID_SOCKET_FD`: the `fd` of an event that is not about an fd.
#[cfg(windows)]
pub(crate) const INVALID_FD: socket_fd_t = usize::MAX;

/// The fd (socket) is readable; also the `event_type` of every completion.
pub const EVENT_READ: u32 = 0x01;
/// The fd is writable, or a posted write finished.
pub const EVENT_WRITE: u32 = 0x02;
/// An error on the fd, or a posted read or write failed.
pub const EVENT_ERROR: u32 = 0x04;
/// The connection is closed: hang-up on both directions, or a posted read
/// reached end of stream.
pub const EVENT_CLOSE: u32 = 0x08;
/// uniloop: set (with `EVENT_READ`) on a timer expiry from
/// `uniloop_timer_add`; `completion_key` is the timer's key and
/// `bytes_transferred` its id.
pub const UNILOOP_EVENT_TIMER: u32 = 0x100;
/// uniloop: set (with `EVENT_READ`) on a signal from `uniloop_signal_add`:
/// `completion_key` is the key given there, `bytes_transferred` the
/// signal's number (Windows: the console control event's).
pub const UNILOOP_EVENT_SIGNAL: u32 = 0x200;
/// uniloop, after `uniloop_runtime_set_event_kinds(rt, true)`: readiness
/// of a registered fd (not a posted operation's event).
pub const UNILOOP_EVENT_READINESS: u32 = 0x400;
/// uniloop, after `uniloop_runtime_set_event_kinds(rt, true)`: a posted
/// read or write finished (or failed).
pub const UNILOOP_EVENT_POSTED: u32 = 0x800;
/// uniloop, after `uniloop_runtime_set_event_kinds(rt, true)`: a
/// completion (`async_runtime_post_completion`, the worker pool, the
/// console worker, a queue's signal).
pub const UNILOOP_EVENT_COMPLETION: u32 = 0x1000;
/// uniloop: set on the event of `uniloop_runtime_shutdown_fd` (with
/// `EVENT_WRITE`, or `EVENT_ERROR` if the fd's output failed).
pub const UNILOOP_EVENT_SHUTDOWN: u32 = 0x2000;
/// uniloop: set on the event of `uniloop_runtime_post_accept`: with
/// `EVENT_READ` when a connection was accepted, `bytes_transferred` its
/// new fd (`(socket_fd_t)ev.bytes_transferred`; non-blocking, not
/// registered, yours to close); with `EVENT_ERROR` when the accept failed,
/// `completion_key` the OS error and `bytes_transferred`
/// `INVALID_SOCKET_FD`. `fd` and `context` are the listener's.
pub const UNILOOP_EVENT_ACCEPT: u32 = 0x4000;
/// uniloop: set on the event of `uniloop_runtime_post_connect`: with
/// `EVENT_WRITE` when the connection is made, with `EVENT_ERROR` when it
/// failed, `completion_key` the OS error (`ECONNREFUSED` for a closed
/// port; a winsock code on Windows). `bytes_transferred` is 0.
pub const UNILOOP_EVENT_CONNECT: u32 = 0x8000;
/// All the kind flags: `event_type & UNILOOP_EVENT_KIND_MASK` is exactly
/// one of them once `uniloop_runtime_set_event_kinds(rt, true)` is on
/// (timer and signal events carry theirs always).
#[allow(dead_code)] // only in the header
pub const UNILOOP_EVENT_KIND_MASK: u32 = 0x1f00;

// Two whole definitions rather than one with a `#[cfg]` field: cbindgen
// writes a conditional field's `;` outside its `#if` (mozilla/cbindgen#1058),
// which `-pedantic` rejects.
/// One event from `async_runtime_wait`: an fd's readiness, a finished
/// posted read or write, a completion or a timer expiry.
///
/// * Readiness: `fd` the fd, `context` the one given to add/modify,
///   `completion_key` 0, `bytes_transferred` 0, `buffer` NULL.
/// * Posted read or write finished: as readiness, plus `bytes_transferred`
///   the byte count and `buffer` the data (the caller's buffer, or for
///   `post_read(rt, fd, NULL, 0)` the runtime's, valid until the next
///   `post_read` on that fd or its removal). A failed one is
///   `EVENT_ERROR` with `bytes_transferred` what was transferred and
///   `completion_key` the OS error code (`errno`; a winsock code on
///   Windows), which is 0 in every other fd event.
/// * Completion: `fd` `INVALID_SOCKET_FD`, `completion_key` the key,
///   `bytes_transferred` the data (both full width), `event_type`
///   `EVENT_READ`, `context` and `buffer` NULL.
/// * Timer: as a completion, with `UNILOOP_EVENT_TIMER` also set in
///   `event_type` and `bytes_transferred` the timer's id.
/// * Signal: as a completion, with `UNILOOP_EVENT_SIGNAL` also set and
///   `bytes_transferred` the signal's number.
///
/// Telling them apart without looking at `fd`: timer and signal events
/// carry their flag always; `uniloop_runtime_set_event_kinds(rt, true)`
/// adds `UNILOOP_EVENT_READINESS`, `_POSTED` or `_COMPLETION` to the
/// others (off by default: code written for the reference may compare
/// `event_type == EVENT_READ`).
#[cfg(not(windows))]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct io_event_t {
    /// The fd, or `INVALID_SOCKET_FD` for completions and timers.
    pub fd: socket_fd_t,
    /// The key of a completion or timer; 0 for fd events.
    pub completion_key: UintPtr,
    /// `EVENT_*` flags.
    pub event_type: u32,
    /// The context given to `async_runtime_add`/`modify`; NULL otherwise.
    pub context: *mut c_void,
    /// Bytes of a posted read or write; a completion's data; a timer's id.
    pub bytes_transferred: usize,
    /// The data of a posted read or write; NULL otherwise.
    pub buffer: *mut c_void,
}

/// One event from `async_runtime_wait`: an fd's readiness, a finished
/// posted read or write, a completion or a timer expiry.
///
/// * Readiness: `fd` the fd, `context` the one given to add/modify,
///   `completion_key` 0, `bytes_transferred` 0, `buffer` NULL.
/// * Posted read or write finished: as readiness, plus `bytes_transferred`
///   the byte count and `buffer` the data (the caller's buffer, or for
///   `post_read(rt, fd, NULL, 0)` the runtime's, valid until the next
///   `post_read` on that fd or its removal). A failed one is
///   `EVENT_ERROR` with `bytes_transferred` what was transferred and
///   `completion_key` the OS error code (`errno`; a winsock code on
///   Windows), which is 0 in every other fd event.
/// * Completion: `fd` `INVALID_SOCKET_FD`, `completion_key` the key,
///   `bytes_transferred` the data (both full width), `event_type`
///   `EVENT_READ`, `context` and `buffer` NULL.
/// * Timer: as a completion, with `UNILOOP_EVENT_TIMER` also set in
///   `event_type` and `bytes_transferred` the timer's id.
/// * Signal: as a completion, with `UNILOOP_EVENT_SIGNAL` also set and
///   `bytes_transferred` the signal's number.
///
/// Telling them apart without looking at `fd`: timer and signal events
/// carry their flag always; `uniloop_runtime_set_event_kinds(rt, true)`
/// adds `UNILOOP_EVENT_READINESS`, `_POSTED` or `_COMPLETION` to the
/// others (off by default: code written for the reference may compare
/// `event_type == EVENT_READ`).
///
/// Windows: with the reference's `HANDLE handle` after `fd`.
#[cfg(windows)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
#[allow(non_camel_case_types)]
pub struct io_event_t {
    /// The fd, or `INVALID_SOCKET_FD` for completions and timers.
    pub fd: socket_fd_t,
    /// Always NULL (there is no accept thread any more).
    pub handle: *mut c_void,
    /// The key of a completion or timer; 0 for fd events.
    pub completion_key: UintPtr,
    /// `EVENT_*` flags.
    pub event_type: u32,
    /// The context given to `async_runtime_add`/`modify`; NULL otherwise.
    pub context: *mut c_void,
    /// Bytes of a posted read or write; a completion's data; a timer's id.
    pub bytes_transferred: usize,
    /// The data of a posted read or write; NULL otherwise.
    pub buffer: *mut c_void,
}

impl io_event_t {
    pub(crate) fn zeroed() -> io_event_t {
        io_event_t {
            fd: INVALID_FD,
            #[cfg(windows)]
            handle: std::ptr::null_mut(),
            completion_key: 0,
            event_type: 0,
            context: std::ptr::null_mut(),
            bytes_transferred: 0,
            buffer: std::ptr::null_mut(),
        }
    }
}

/// What stdin is connected to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum console_type_t {
    /// No console: stdin is closed, `/dev/null` or another device.
    CONSOLE_TYPE_NONE = 0,
    /// A terminal (Windows: a console).
    CONSOLE_TYPE_REAL = 1,
    /// A pipe.
    CONSOLE_TYPE_PIPE = 2,
    /// A regular file.
    CONSOLE_TYPE_FILE = 3,
}

#[cfg(all(target_pointer_width = "64", windows))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<io_event_t>() == 56);
    assert!(offset_of!(io_event_t, handle) == 8);
    assert!(offset_of!(io_event_t, completion_key) == 16);
    assert!(offset_of!(io_event_t, buffer) == 48);
};

#[cfg(all(target_pointer_width = "64", not(windows)))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<io_event_t>() == 48);
    assert!(offset_of!(io_event_t, completion_key) == 8);
    assert!(offset_of!(io_event_t, event_type) == 16);
    assert!(offset_of!(io_event_t, context) == 24);
    assert!(offset_of!(io_event_t, bytes_transferred) == 32);
    assert!(offset_of!(io_event_t, buffer) == 40);
    assert!(size_of::<console_type_t>() == 4);
};
