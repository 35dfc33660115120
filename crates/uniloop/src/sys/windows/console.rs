//! Console input on Windows: classify stdin, and read it so that a reader
//! blocked on an idle console or an empty pipe can be woken to stop.
//!
//! * A real console is read with `ReadConsoleW` (the console keeps its own
//!   line editing and echo) and converted from UTF-16 to UTF-8 here; a high
//!   surrogate at the end of one read is carried into the next, and unpaired
//!   surrogates become U+FFFD. A line starting with Ctrl+Z is end of input,
//!   as `std` does it.
//! * A pipe or a file is read with `ReadFile`; a broken pipe or a zero-byte
//!   read is end of input.
//!
//! Stopping: Windows has no `poll` for these handles, so the blocking call is
//! cancelled instead. The reader moves a small state machine
//! `IDLE -> READING -> IDLE` around each blocking call and signals `left`
//! when it is out of it; the stopper swaps in `STOPPED`, and if the reader
//! was `READING` it cancels the call — `CancelSynchronousIo` on the reader's
//! thread, plus one injected Enter key for a console read (a console read
//! waits for a whole line) — and repeats the cancel until `left` is
//! signalled, because the reader may have been between its state change and
//! the system call when the first cancel arrived. A reader that is `IDLE`
//! sees `STOPPED` before its next call. Every access to the state is a
//! read-modify-write, so the two sides agree on who was first.

use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use windows_sys::Win32::Foundation::{
    DuplicateHandle, GetLastError, DUPLICATE_SAME_ACCESS, ERROR_BROKEN_PIPE,
    ERROR_OPERATION_ABORTED, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetFileType, ReadFile, FILE_TYPE_CHAR, FILE_TYPE_DISK, FILE_TYPE_PIPE,
};
use windows_sys::Win32::System::Console::{
    GetConsoleMode, GetStdHandle, ReadConsoleW, WriteConsoleInputW, INPUT_RECORD, KEY_EVENT,
    STD_INPUT_HANDLE,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, GetCurrentProcess, GetCurrentThread, ResetEvent, SetEvent, WaitForSingleObject,
};
use windows_sys::Win32::System::IO::CancelSynchronousIo;

use crate::ConsoleKind;

const IDLE: u8 = 0;
const READING: u8 = 1;
const STOPPED: u8 = 2;

/// How many times a stop re-issues its cancel, each followed by a wait of
/// `CANCEL_WAIT_MS` for the reader to leave its call: a bound, not a pace.
const CANCEL_TRIES: u32 = 500;
const CANCEL_WAIT_MS: u32 = 10;

/// Ctrl+Z: at the start of a console line, end of input.
const CTRL_Z: u16 = 0x1A;

/// stdin's handle, if the process has one. Stored as an integer so the
/// reader can move to its thread (the handle is the process's; not owned).
fn stdin_handle() -> Option<usize> {
    // SAFETY: GetStdHandle has no preconditions.
    let h = unsafe { GetStdHandle(STD_INPUT_HANDLE) };
    if h.is_null() || h == INVALID_HANDLE_VALUE {
        None
    } else {
        Some(h as usize)
    }
}

fn is_console(h: usize) -> bool {
    let mut mode = 0;
    // SAFETY: `h` is stdin's handle; `mode` is a valid out-pointer.
    unsafe { GetConsoleMode(h as HANDLE, &mut mode) != 0 }
}

/// What stdin is: a console, a pipe, a file (or a character device such as
/// `NUL`), or nothing.
pub(crate) fn stdin_kind() -> ConsoleKind {
    let Some(h) = stdin_handle() else {
        return ConsoleKind::None;
    };
    // SAFETY: `h` is stdin's handle.
    match unsafe { GetFileType(h as HANDLE) } {
        FILE_TYPE_CHAR if is_console(h) => ConsoleKind::Tty,
        FILE_TYPE_CHAR | FILE_TYPE_DISK => ConsoleKind::File,
        FILE_TYPE_PIPE => ConsoleKind::Pipe,
        _ if is_console(h) => ConsoleKind::Tty,
        _ => ConsoleKind::None,
    }
}

/// One read of stdin, or why there was none.
pub(crate) enum ReadOutcome {
    Data(usize),
    Eof,
    Stopped,
}

#[derive(Debug)]
struct Shared {
    state: AtomicU8,
    /// Manual-reset event: set when the reader is out of its blocking call.
    left: OwnedHandle,
    /// The reader's thread, recorded at its first read, for
    /// `CancelSynchronousIo`.
    thread: Mutex<Option<OwnedHandle>>,
    console: bool,
    stdin: Option<usize>,
}

/// Reads stdin until its [`Stopper`] fires.
pub(crate) struct Reader {
    shared: Arc<Shared>,
    /// A high surrogate left over from the previous console read.
    carry: Option<u16>,
    wide: Vec<u16>,
}

/// Interrupts a [`Reader`] blocked in a read and makes every later read
/// return `Stopped`.
#[derive(Debug)]
pub(crate) struct Stopper {
    shared: Arc<Shared>,
}

/// A reader of stdin and the stopper that interrupts it.
pub(crate) fn stdin_reader() -> io::Result<(Reader, Stopper)> {
    // SAFETY: no security attributes, manual reset, initially signalled (the
    // reader is not in a call yet), unnamed.
    let event = unsafe { CreateEventW(std::ptr::null(), 1, 1, std::ptr::null()) };
    if event.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `event` is a new handle that nothing else owns.
    let left = unsafe { OwnedHandle::from_raw_handle(event) };
    let stdin = stdin_handle();
    let shared = Arc::new(Shared {
        state: AtomicU8::new(IDLE),
        left,
        thread: Mutex::new(None),
        console: stdin.is_some_and(is_console),
        stdin,
    });
    let reader = Reader {
        shared: shared.clone(),
        carry: None,
        wide: Vec::new(),
    };
    Ok((reader, Stopper { shared }))
}

/// What one system call gave.
enum Got {
    Data(usize),
    Eof,
    /// Nothing this time (a cancelled or empty read): look at the state
    /// and read again.
    Again,
}

impl Reader {
    /// Blocks until stdin has data (returns it as UTF-8 bytes), reaches its
    /// end, or the stopper fired.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let Some(stdin) = self.shared.stdin else {
            return Ok(ReadOutcome::Eof);
        };
        self.record_thread()?;
        loop {
            // SAFETY: `left` is our live event handle.
            unsafe { ResetEvent(self.shared.left.as_raw_handle()) };
            if self
                .shared
                .state
                .compare_exchange(IDLE, READING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                self.leave();
                return Ok(ReadOutcome::Stopped);
            }
            let got = if self.shared.console {
                self.read_console(stdin, buf)
            } else {
                read_file(stdin, buf)
            };
            let stopped = self
                .shared
                .state
                .compare_exchange(READING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_err();
            self.leave();
            if stopped {
                return Ok(ReadOutcome::Stopped);
            }
            match got? {
                Got::Data(n) => return Ok(ReadOutcome::Data(n)),
                Got::Eof => return Ok(ReadOutcome::Eof),
                Got::Again => continue,
            }
        }
    }

    fn leave(&self) {
        // SAFETY: `left` is our live event handle.
        unsafe { SetEvent(self.shared.left.as_raw_handle()) };
    }

    fn record_thread(&self) -> io::Result<()> {
        let mut thread = self.shared.thread.lock().unwrap_or_else(|e| e.into_inner());
        if thread.is_some() {
            return Ok(());
        }
        let mut handle: HANDLE = std::ptr::null_mut();
        // SAFETY: duplicates this thread's pseudo-handle into a real handle
        // of this process; `handle` is a valid out-pointer.
        let ok = unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                GetCurrentThread(),
                GetCurrentProcess(),
                &mut handle,
                0,
                0,
                DUPLICATE_SAME_ACCESS,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `handle` is the new handle DuplicateHandle made for us.
        *thread = Some(unsafe { OwnedHandle::from_raw_handle(handle) });
        Ok(())
    }

    fn read_console(&mut self, stdin: usize, buf: &mut [u8]) -> io::Result<Got> {
        // Each UTF-16 unit becomes at most 3 UTF-8 bytes (a surrogate pair,
        // 2 units, becomes 4); one unit of room is kept for the carry.
        let units = (buf.len() / 3).saturating_sub(1).clamp(1, 4096);
        self.wide.resize(units + 1, 0);
        let start = usize::from(self.carry.is_some());
        if let Some(high) = self.carry.take() {
            self.wide[0] = high;
        }
        let mut read = 0u32;
        // SAFETY: `wide[start..]` has room for `units` u16s; `read` is a
        // valid out-pointer; no input control.
        let ok = unsafe {
            ReadConsoleW(
                stdin as HANDLE,
                self.wide[start..].as_mut_ptr().cast(),
                units as u32,
                &mut read,
                std::ptr::null(),
            )
        };
        if ok == 0 {
            // SAFETY: GetLastError has no preconditions.
            return match unsafe { GetLastError() } {
                ERROR_OPERATION_ABORTED => Ok(Got::Again),
                _ => Err(io::Error::last_os_error()),
            };
        }
        let mut end = start + read as usize;
        if read == 0 {
            return Ok(Got::Again);
        }
        if start == 0 && self.wide[0] == CTRL_Z {
            return Ok(Got::Eof);
        }
        if (0xD800..0xDC00).contains(&self.wide[end - 1]) {
            end -= 1;
            self.carry = Some(self.wide[end]);
        }
        let mut n = 0;
        for c in char::decode_utf16(self.wide[..end].iter().copied()) {
            let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
            n += c.encode_utf8(&mut buf[n..]).len();
        }
        Ok(if n == 0 { Got::Again } else { Got::Data(n) })
    }
}

fn read_file(stdin: usize, buf: &mut [u8]) -> io::Result<Got> {
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    let mut read = 0u32;
    // SAFETY: `buf` has room for `len` bytes; `read` is a valid out-pointer;
    // synchronous (no OVERLAPPED).
    let ok = unsafe {
        ReadFile(
            stdin as HANDLE,
            buf.as_mut_ptr(),
            len,
            &mut read,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        // SAFETY: GetLastError has no preconditions.
        return match unsafe { GetLastError() } {
            ERROR_BROKEN_PIPE => Ok(Got::Eof),
            ERROR_OPERATION_ABORTED => Ok(Got::Again),
            _ => Err(io::Error::last_os_error()),
        };
    }
    Ok(if read == 0 {
        Got::Eof
    } else {
        Got::Data(read as usize)
    })
}

impl Stopper {
    pub(crate) fn stop(&self) {
        let shared = &self.shared;
        if shared.state.swap(STOPPED, Ordering::AcqRel) != READING {
            return; // Idle (it will see STOPPED) or already stopped.
        }
        if shared.console {
            if let Some(stdin) = shared.stdin {
                inject_enter(stdin);
            }
        }
        let thread = shared.thread.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..CANCEL_TRIES {
            if let Some(thread) = thread.as_ref() {
                // SAFETY: `thread` is our duplicated handle of the reader's
                // thread; cancelling its synchronous I/O is harmless when
                // there is none.
                unsafe { CancelSynchronousIo(thread.as_raw_handle()) };
            }
            // SAFETY: `left` is our live event handle.
            if unsafe { WaitForSingleObject(shared.left.as_raw_handle(), CANCEL_WAIT_MS) }
                == WAIT_OBJECT_0
            {
                return;
            }
        }
    }
}

/// Ends a pending `ReadConsoleW` the way a user would: an Enter key press.
fn inject_enter(stdin: usize) {
    let mut records = [INPUT_RECORD::default(); 2];
    for (record, down) in records.iter_mut().zip([1, 0]) {
        record.EventType = KEY_EVENT as u16;
        record.Event.KeyEvent.bKeyDown = down;
        record.Event.KeyEvent.wRepeatCount = 1;
        record.Event.KeyEvent.wVirtualKeyCode = 0x0D; // VK_RETURN
        record.Event.KeyEvent.uChar.UnicodeChar = u16::from(b'\r');
    }
    let mut written = 0;
    // SAFETY: two initialised records; `written` is a valid out-pointer. A
    // failure (not a console after all) leaves the cancel to do the work.
    unsafe { WriteConsoleInputW(stdin as HANDLE, records.as_ptr(), 2, &mut written) };
}
