//! Windows: the core's console reader (`rt::Console`: `ReadConsoleW`
//! on a console, `ReadFile` on a pipe or file, interrupted by its
//! `stop`) on a private runtime inside the worker thread; its lines get
//! their `\n` back and go to the caller's queue like the POSIX ones.

use std::sync::atomic::Ordering;
use std::time::Duration;

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{GetFileType, FILE_TYPE_DISK, FILE_TYPE_PIPE};
use windows_sys::Win32::System::Console::{
    GetConsoleMode, GetStdHandle, SetConsoleMode, SetConsoleOutputCP, CONSOLE_MODE,
    ENABLE_ECHO_INPUT, ENABLE_LINE_INPUT, ENABLE_PROCESSED_INPUT, ENABLE_PROCESSED_OUTPUT,
    ENABLE_VIRTUAL_TERMINAL_INPUT, ENABLE_VIRTUAL_TERMINAL_PROCESSING, ENABLE_WRAP_AT_EOL_OUTPUT,
    STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};

use super::{Lines, Shared};
use crate::error::{Error, Result};
use crate::types::console_type_t;
use crate::uniloop_error_t::*;

fn std_handle(which: STD_HANDLE) -> Option<HANDLE> {
    // SAFETY: GetStdHandle has no preconditions.
    let h = unsafe { GetStdHandle(which) };
    (!h.is_null() && h != INVALID_HANDLE_VALUE).then_some(h)
}

fn mode_of(h: HANDLE) -> Option<CONSOLE_MODE> {
    let mut mode = 0;
    // SAFETY: `h` is a standard handle; `mode` a valid out-pointer.
    (unsafe { GetConsoleMode(h, &mut mode) } != 0).then_some(mode)
}

pub(super) fn detect() -> console_type_t {
    let Some(h) = std_handle(STD_INPUT_HANDLE) else {
        return console_type_t::CONSOLE_TYPE_NONE;
    };
    if mode_of(h).is_some() {
        return console_type_t::CONSOLE_TYPE_REAL;
    }
    // SAFETY: `h` is stdin's handle.
    match unsafe { GetFileType(h) } {
        FILE_TYPE_PIPE => console_type_t::CONSOLE_TYPE_PIPE,
        FILE_TYPE_DISK => console_type_t::CONSOLE_TYPE_FILE,
        _ => console_type_t::CONSOLE_TYPE_NONE,
    }
}

pub(super) fn stop(shared: &Shared) {
    shared.stopping.store(true, Ordering::SeqCst);
    if let Some(p) = &*shared.waker.lock().unwrap_or_else(|e| e.into_inner()) {
        let _ = p.wake();
    }
}

/// Reads stdin until EOF (true) or a stop (false).
pub(super) fn read_loop(shared: &Shared, lines: &mut Lines) -> bool {
    let Ok(mut private) = rt::Runtime::new() else {
        return true;
    };
    let Ok(mut console) = rt::Console::spawn(&private.poster(), 1) else {
        return true;
    };
    *shared.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(private.poster());
    let mut events = rt::Events::with_capacity(16);
    loop {
        // SeqCst with `stop`: either it sees the waker set above, or
        // this sees its flag.
        if shared.stopping.load(Ordering::SeqCst) {
            console.stop(Duration::from_secs(5));
            return false;
        }
        while let Some(ev) = console.try_recv() {
            match ev {
                rt::ConsoleEvent::Line(s) => {
                    let mut line = s.into_bytes();
                    line.push(b'\n');
                    lines.push(&line, shared);
                }
                _ => return true,
            }
        }
        if private.wait(&mut events, None).is_err() {
            return true;
        }
    }
}

fn set_input_mode(set: CONSOLE_MODE, clear: CONSOLE_MODE) -> Result<()> {
    let h = std_handle(STD_INPUT_HANDLE)
        .ok_or_else(|| Error::new(UNILOOP_ERR_UNSUPPORTED, "no stdin"))?;
    let mode =
        mode_of(h).ok_or_else(|| Error::new(UNILOOP_ERR_UNSUPPORTED, "stdin is not a console"))?;
    // Only the bits asked for change (a terminal's own flags stay).
    // SAFETY: a console handle and a mode derived from its own.
    if unsafe { SetConsoleMode(h, (mode | set) & !clear) } == 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

pub(super) fn line_mode(echo: bool) -> Result<()> {
    let echo_bit = if echo { ENABLE_ECHO_INPUT } else { 0 };
    let clear = ENABLE_VIRTUAL_TERMINAL_INPUT | if echo { 0 } else { ENABLE_ECHO_INPUT };
    set_input_mode(ENABLE_LINE_INPUT | ENABLE_PROCESSED_INPUT | echo_bit, clear)
}

pub(super) fn echo(on: bool) -> Result<()> {
    if on {
        set_input_mode(ENABLE_ECHO_INPUT, 0)
    } else {
        set_input_mode(0, ENABLE_ECHO_INPUT)
    }
}

pub(super) fn single_char() -> Result<()> {
    set_input_mode(
        ENABLE_PROCESSED_INPUT | ENABLE_VIRTUAL_TERMINAL_INPUT,
        ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT,
    )
}

pub(super) fn output_ansi() -> Result<()> {
    let h = std_handle(STD_OUTPUT_HANDLE)
        .ok_or_else(|| Error::new(UNILOOP_ERR_UNSUPPORTED, "no stdout"))?;
    let mode =
        mode_of(h).ok_or_else(|| Error::new(UNILOOP_ERR_UNSUPPORTED, "stdout is not a console"))?;
    // SAFETY: plain console calls on stdout's console handle.
    unsafe {
        SetConsoleOutputCP(65001); // UTF-8
        let want = mode
            | ENABLE_VIRTUAL_TERMINAL_PROCESSING
            | ENABLE_PROCESSED_OUTPUT
            | ENABLE_WRAP_AT_EOL_OUTPUT;
        if SetConsoleMode(h, want) == 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    Ok(())
}
