//! Console control events on Windows (Ctrl-C, Ctrl-Break, close, logoff,
//! shutdown) through `SetConsoleCtrlHandler`.
//!
//! Windows runs a control handler on a thread it creates for the event, not
//! by interrupting one of ours, so the handler may lock and post: it calls
//! `crate::signal::deliver` directly.
//!
//! The handler is installed once and never removed. Removing it would take
//! the console's handler-list lock, which Windows holds while it runs the
//! handlers — and our handler for a close event never returns (below), so
//! a removal then would block until the process is killed. Instead, an
//! event no `Signals` holds is answered `FALSE` ("not handled"): Windows
//! passes it on to the handlers installed before ours and finally to the
//! default (`ExitProcess`), exactly as if ours were not there — which is
//! the previous disposition restored.
//!
//! For a close, logoff or shutdown event Windows ends the process as soon
//! as the handlers return (or after its timeout, about 5 s for a close), so
//! after delivering one the handler parks its thread for good: the loop
//! gets the whole grace period to shut down and return from `main`, which
//! ends the process (and this thread) cleanly.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{
    SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_LOGOFF_EVENT,
    CTRL_SHUTDOWN_EVENT,
};

use crate::Signal;

/// Control event numbers 0..=6 (`CTRL_SHUTDOWN_EVENT` is 6).
const SLOTS: usize = 7;

/// Whether some `Signals` holds each event. Release by `enable`/`disable`,
/// Acquire by the handler: a handler that sees `true` also sees the
/// subscriber that `crate::signal` listed before calling `enable`.
static HELD: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
static DELIVER: OnceLock<fn(i32) -> bool> = OnceLock::new();
/// Whether the handler is installed (it stays once it is).
static INSTALLED: Mutex<bool> = Mutex::new(false);

pub(crate) fn raw(signal: Signal) -> Option<i32> {
    let raw = match signal {
        Signal::Interrupt => CTRL_C_EVENT,
        Signal::Break => CTRL_BREAK_EVENT,
        Signal::Close => CTRL_CLOSE_EVENT,
        Signal::Logoff => CTRL_LOGOFF_EVENT,
        Signal::Shutdown => CTRL_SHUTDOWN_EVENT,
        Signal::Other(n) => {
            let n = u32::try_from(n).ok()?;
            return is_event(n).then_some(n as i32);
        }
        _ => return None,
    };
    Some(raw as i32)
}

pub(crate) fn from_raw(raw: i32) -> Signal {
    match u32::try_from(raw) {
        Ok(CTRL_C_EVENT) => Signal::Interrupt,
        Ok(CTRL_BREAK_EVENT) => Signal::Break,
        Ok(CTRL_CLOSE_EVENT) => Signal::Close,
        Ok(CTRL_LOGOFF_EVENT) => Signal::Logoff,
        Ok(CTRL_SHUTDOWN_EVENT) => Signal::Shutdown,
        _ => Signal::Other(raw),
    }
}

fn is_event(n: u32) -> bool {
    [
        CTRL_C_EVENT,
        CTRL_BREAK_EVENT,
        CTRL_CLOSE_EVENT,
        CTRL_LOGOFF_EVENT,
        CTRL_SHUTDOWN_EVENT,
    ]
    .contains(&n)
}

/// Starts answering control event `raw`, delivering it through `deliver`;
/// installs the handler on first use.
pub(crate) fn enable(raw: i32, deliver: fn(i32) -> bool) -> io::Result<()> {
    let slot = u32::try_from(raw)
        .ok()
        .filter(|&n| is_event(n))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{raw} is not a console control event"),
            )
        })?;
    let _ = DELIVER.set(deliver);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if !*installed {
        // SAFETY: `on_ctrl` is a valid handler routine for the life of the
        // process (a plain function).
        if unsafe { SetConsoleCtrlHandler(Some(on_ctrl), 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        *installed = true;
    }
    HELD[slot as usize].store(true, Ordering::Release);
    Ok(())
}

/// Stops answering control event `raw`: it goes on to the earlier
/// handlers again (module docs).
pub(crate) fn disable(raw: i32) {
    if let Some(flag) = usize::try_from(raw).ok().and_then(|i| HELD.get(i)) {
        flag.store(false, Ordering::Release);
    }
}

/// The control handler, on a thread Windows made for this event.
unsafe extern "system" fn on_ctrl(ctrl: u32) -> BOOL {
    let held = HELD
        .get(ctrl as usize)
        .is_some_and(|flag| flag.load(Ordering::Acquire));
    let delivered = held && DELIVER.get().is_some_and(|deliver| deliver(ctrl as i32));
    if !delivered {
        return 0; // not ours: the next handler, or the default, runs
    }
    if ctrl == CTRL_C_EVENT || ctrl == CTRL_BREAK_EVENT {
        return 1;
    }
    // Close, logoff, shutdown: returning would end the process now.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Event, Events, Runtime, Signals};

    /// The handler delivers a held event to the loop and answers "handled";
    /// an event nobody holds (any more) is passed on. Calls the handler
    /// directly: under Wine without a console no control event can be
    /// generated (`tests/signals.rs` tries the real thing).
    #[test]
    fn the_handler_delivers_held_events_and_passes_on_the_rest() {
        let mut rt = Runtime::new().unwrap();
        let mut signals = Signals::new(&rt.poster(), 8);
        signals.add(Signal::Break).unwrap();
        // SAFETY: calling our own handler routine with a valid event code.
        assert_eq!(unsafe { on_ctrl(CTRL_BREAK_EVENT) }, 1);
        let mut events = Events::with_capacity(4);
        rt.wait(&mut events, Some(Duration::from_secs(20))).unwrap();
        assert_eq!(
            events.iter().next(),
            Some(&Event::Completion {
                key: 8,
                data: u64::from(CTRL_BREAK_EVENT)
            })
        );
        drop(signals);
        // SAFETY: as above.
        assert_eq!(unsafe { on_ctrl(CTRL_BREAK_EVENT) }, 0);
        // SAFETY: as above; an unknown code is not ours either.
        assert_eq!(unsafe { on_ctrl(99) }, 0);
    }
}
