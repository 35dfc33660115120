//! `Console` on a real Windows console (`ReadConsoleW`): a typed line
//! arrives, and `stop` ends a read that waits for the next line.
//!
//! Under Wine, stdin is a console when it is a terminal:
//! `scripts/test-windows.sh` runs this binary again under `script(1)` (a
//! pseudo-terminal). Without one the test says it skipped (pipes and files
//! are covered by `console.rs` either way). It does not `AllocConsole`: with
//! no display, Wine ends the process there with exit status 0, which would
//! pass for a green run.
#![cfg(windows)]

mod util;

use std::time::Instant;

use uniloop::{Console, ConsoleEvent, ConsoleKind, Event, Events, Runtime};
use util::GUARD;
use windows_sys::Win32::System::Console::{
    GetConsoleMode, GetStdHandle, WriteConsoleInputW, INPUT_RECORD, INPUT_RECORD_0, KEY_EVENT,
    KEY_EVENT_RECORD, KEY_EVENT_RECORD_0, STD_INPUT_HANDLE,
};

/// Whether stdin is a console.
fn console_stdin() -> bool {
    let mut mode = 0;
    // SAFETY: plain Win32 calls on this process's own stdin; `mode` is a
    // valid out-pointer.
    unsafe { GetConsoleMode(GetStdHandle(STD_INPUT_HANDLE), &mut mode) != 0 }
}

/// Types `text` into the console, as key presses.
fn type_keys(text: &str) {
    let mut records = Vec::new();
    for unit in text.encode_utf16() {
        for down in [1, 0] {
            let key = KEY_EVENT_RECORD {
                bKeyDown: down,
                wRepeatCount: 1,
                wVirtualKeyCode: if unit == u16::from(b'\r') { 0x0D } else { 0 },
                wVirtualScanCode: 0,
                uChar: KEY_EVENT_RECORD_0 { UnicodeChar: unit },
                dwControlKeyState: 0,
            };
            records.push(INPUT_RECORD {
                EventType: KEY_EVENT as u16,
                Event: INPUT_RECORD_0 { KeyEvent: key },
            });
        }
    }
    let mut written = 0;
    // SAFETY: `records` is initialised; `written` is a valid out-pointer.
    let ok = unsafe {
        WriteConsoleInputW(
            GetStdHandle(STD_INPUT_HANDLE),
            records.as_ptr(),
            records.len() as u32,
            &mut written,
        )
    };
    assert!(ok != 0, "WriteConsoleInputW failed");
}

#[test]
fn a_real_console_line_then_stop_while_waiting() {
    if !console_stdin() {
        println!(
            "SKIPPED: no Windows console could be had (under Wine, run with a display: xvfb-run)"
        );
        return;
    }
    let mut rt = Runtime::new().unwrap();
    let mut console = Console::spawn(&rt.poster(), 1).unwrap();
    assert_eq!(console.kind(), ConsoleKind::Tty);
    type_keys("h\u{e9}llo \u{1F600}\r");
    let mut events = Events::with_capacity(8);
    let start = Instant::now();
    let line = loop {
        assert!(start.elapsed() < GUARD, "no line from the console");
        rt.wait(&mut events, Some(GUARD)).unwrap();
        if events
            .iter()
            .any(|e| matches!(e, Event::Completion { key: 1, .. }))
        {
            if let Some(ev) = console.try_recv() {
                break ev;
            }
        }
    };
    assert_eq!(line, ConsoleEvent::Line("h\u{e9}llo \u{1F600}".to_string()));
    // The reader is now waiting in ReadConsoleW for the next line.
    assert!(
        console.stop(GUARD),
        "stop did not end a pending console read"
    );
}
