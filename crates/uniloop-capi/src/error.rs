//! The thread-local last error, `uniloop_strerror`, and the guard every
//! exported function runs its body in.
//!
//! Every exported function reports failure the reference's way (`-1`,
//! `false` or `NULL`) and records why in a per-thread slot that
//! `uniloop_last_error()` and `uniloop_last_error_message()` read. A Rust
//! panic never unwinds into C: [`guard`] catches it, records
//! `UNILOOP_ERR_PANIC` and returns the failure value.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, CStr, CString};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Error codes returned by `uniloop_last_error()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum uniloop_error_t {
    /// No error has been recorded on this thread since the last success.
    UNILOOP_OK = 0,
    /// An argument is invalid: a NULL handle or buffer, a negative count.
    UNILOOP_ERR_INVALID = 1,
    /// The fd, timer or operation is not known to this handle.
    UNILOOP_ERR_NOT_FOUND = 2,
    /// Already registered, or a read is already posted on the fd.
    UNILOOP_ERR_EXISTS = 3,
    /// The queue (or write limit) is full.
    UNILOOP_ERR_FULL = 4,
    /// Nothing is available right now (an empty queue).
    UNILOOP_ERR_EMPTY = 5,
    /// A timed operation ran out of time.
    UNILOOP_ERR_TIMEOUT = 6,
    /// The handle is shut down or closed.
    UNILOOP_ERR_CLOSED = 7,
    /// A message is larger than the queue's `max_msg_size`, or a buffer
    /// is too small for the message (`*out_size` says how big it must be).
    UNILOOP_ERR_SIZE = 8,
    /// The operating system reported an error; the message names it.
    UNILOOP_ERR_OS = 9,
    /// The operation is not available on this platform or handle.
    UNILOOP_ERR_UNSUPPORTED = 10,
    /// A bug inside the library: a Rust panic was caught at the boundary.
    UNILOOP_ERR_PANIC = 11,
}

use uniloop_error_t::*;

/// What an error says: static text, a formatted message, or an OS error
/// formatted only when `uniloop_last_error_message` asks for it.
#[derive(Debug)]
pub(crate) enum Message {
    Static(&'static str),
    /// Static text that is a C string already: recorded without touching
    /// the message slot and handed out as it is (the expected outcomes:
    /// an empty queue, a timeout).
    Text(&'static CStr),
    Owned(String),
    Io(io::Error),
}

impl From<&'static str> for Message {
    fn from(s: &'static str) -> Self {
        Message::Static(s)
    }
}

impl From<&'static CStr> for Message {
    fn from(s: &'static CStr) -> Self {
        Message::Text(s)
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Owned(s)
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Static(s) => f.write_str(s),
            Message::Text(s) => f.write_str(&s.to_string_lossy()),
            Message::Owned(s) => f.write_str(s),
            Message::Io(e) => e.fmt(f),
        }
    }
}

/// An error on its way to the thread-local slot.
#[derive(Debug)]
pub(crate) struct Error {
    pub(crate) code: uniloop_error_t,
    pub(crate) message: Message,
}

impl Error {
    pub(crate) fn new(code: uniloop_error_t, message: impl Into<Message>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// `UNILOOP_ERR_INVALID` with a message naming the argument.
    pub(crate) fn invalid(message: impl Into<Message>) -> Self {
        Error::new(UNILOOP_ERR_INVALID, message)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        let code = match e.kind() {
            io::ErrorKind::InvalidInput => UNILOOP_ERR_INVALID,
            io::ErrorKind::NotFound => UNILOOP_ERR_NOT_FOUND,
            io::ErrorKind::AlreadyExists => UNILOOP_ERR_EXISTS,
            io::ErrorKind::WouldBlock => UNILOOP_ERR_FULL,
            io::ErrorKind::TimedOut => UNILOOP_ERR_TIMEOUT,
            io::ErrorKind::Unsupported => UNILOOP_ERR_UNSUPPORTED,
            io::ErrorKind::BrokenPipe | io::ErrorKind::NotConnected => UNILOOP_ERR_CLOSED,
            _ => UNILOOP_ERR_OS,
        };
        Error::new(code, Message::Io(e))
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// The message of a thread's last error: stored as it is (nothing
/// allocated for static text, as for an empty queue); the C string is
/// made only when `uniloop_last_error_message` asks.
struct Last {
    message: Message,
    /// The message as a C string, made on request; `None` until then.
    text: Option<CString>,
}

thread_local! {
    /// The code of this thread's last error. Apart from the message so
    /// that a success, which only looks at and perhaps resets the code,
    /// touches no slot with a destructor (a `const` thread-local without
    /// one is a plain load).
    static CODE: Cell<uniloop_error_t> = const { Cell::new(UNILOOP_OK) };
    /// Its message when that is a static C string: a plain slot like
    /// `CODE`, so recording an expected outcome is two stores. `None` when
    /// the message is in `LAST`.
    static TEXT: Cell<Option<&'static CStr>> = const { Cell::new(None) };
    /// Its message otherwise; stale (never read) while `CODE` is
    /// `UNILOOP_OK` or `TEXT` is set.
    static LAST: RefCell<Last> = const {
        RefCell::new(Last {
            message: Message::Static(""),
            text: None,
        })
    };
}

/// Records `e` as this thread's last error.
#[inline]
pub(crate) fn set_last(e: Error) {
    match e.message {
        Message::Text(text) => set_text(e.code, text),
        message => set_message(e.code, message),
    }
}

/// Records an error whose message is static text: two stores, nothing
/// allocated, nothing dropped.
#[inline]
pub(crate) fn set_text(code: uniloop_error_t, text: &'static CStr) {
    CODE.set(code);
    TEXT.set(Some(text));
}

#[inline(never)]
fn set_message(code: uniloop_error_t, message: Message) {
    CODE.set(code);
    TEXT.set(None);
    // `try_with`: during thread teardown the slot may be gone; then there
    // is nobody left to read it.
    let _ = LAST.try_with(|l| {
        let mut l = l.borrow_mut();
        l.message = message;
        l.text = None;
    });
}

#[inline]
fn clear_last() {
    if CODE.get() != UNILOOP_OK {
        CODE.set(UNILOOP_OK);
    }
}

/// Runs an exported function's body: on `Ok` clears the last error and
/// returns the value, on `Err` records it and returns `fail`, and on a
/// panic records `UNILOOP_ERR_PANIC` and returns `fail`.
#[inline]
pub(crate) fn guard<R>(fail: R, body: impl FnOnce() -> Result<R>) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => {
            clear_last();
            v
        }
        Ok(Err(e)) => {
            set_last(e);
            fail
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last(Error::new(
                UNILOOP_ERR_PANIC,
                format!("internal error (panic): {what}"),
            ));
            fail
        }
    }
}

/// The error code of the last failed call on this thread, or `UNILOOP_OK`
/// if the last call succeeded.
#[no_mangle]
pub extern "C" fn uniloop_last_error() -> c_int {
    CODE.get() as c_int
}

/// A message describing the last error on this thread ("" after a success).
/// The string belongs to the library and stays valid until the next call
/// into the library on this thread.
#[no_mangle]
pub extern "C" fn uniloop_last_error_message() -> *const c_char {
    static EMPTY: &[u8] = b"\0";
    if CODE.get() == UNILOOP_OK {
        return EMPTY.as_ptr().cast();
    }
    if let Some(text) = TEXT.get() {
        return text.as_ptr();
    }
    LAST.try_with(|l| {
        let mut l = l.borrow_mut();
        let l = &mut *l;
        let message = &l.message;
        l.text
            .get_or_insert_with(|| {
                // Interior NULs cannot appear in a C string; drop them
                // rather than fail.
                CString::new(message.to_string().replace('\0', "")).unwrap_or_default()
            })
            .as_ptr()
    })
    .unwrap_or(EMPTY.as_ptr().cast())
}

/// A static description of an error code; never NULL.
#[no_mangle]
pub extern "C" fn uniloop_strerror(code: c_int) -> *const c_char {
    let s: &'static [u8] = match code {
        0 => b"no error\0",
        1 => b"invalid argument\0",
        2 => b"not found\0",
        3 => b"already exists\0",
        4 => b"full\0",
        5 => b"empty\0",
        6 => b"timed out\0",
        7 => b"closed\0",
        8 => b"wrong size\0",
        9 => b"operating system error\0",
        10 => b"not supported\0",
        11 => b"internal error (panic)\0",
        _ => b"unknown error code\0",
    };
    s.as_ptr().cast()
}
