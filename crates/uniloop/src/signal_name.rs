//! [`Signal`]: the names of the signals (Unix) and console control events
//! (Windows) a [`Signals`](crate::Signals) delivers, in words the backends
//! and the public API share. A vocabulary module: it uses nothing else of
//! the crate; each platform's numbers are `sys::signal`'s, the subscription
//! `crate::signal`'s.

/// A signal (Unix) or console control event (Windows) that
/// [`Signals`](crate::Signals) can deliver to the loop.
///
/// Which ones exist depends on the platform ([`Signal::is_available`]):
///
/// | `Signal` | Unix | Windows |
/// |---|---|---|
/// | `Interrupt` | `SIGINT` (Ctrl-C) | `CTRL_C_EVENT` (Ctrl-C) |
/// | `Terminate` | `SIGTERM` | — |
/// | `Hangup` | `SIGHUP` | — |
/// | `Quit` | `SIGQUIT` (Ctrl-\\) | — |
/// | `User1`, `User2` | `SIGUSR1`, `SIGUSR2` | — |
/// | `WindowChange` | `SIGWINCH` | — |
/// | `Child` | `SIGCHLD` | — |
/// | `Break` | — | `CTRL_BREAK_EVENT` (Ctrl-Break) |
/// | `Close` | — | `CTRL_CLOSE_EVENT` (console window closed) |
/// | `Logoff`, `Shutdown` | — | `CTRL_LOGOFF_EVENT`, `CTRL_SHUTDOWN_EVENT` |
/// | `Other(n)` | any catchable signal number `n` | the control event `n` of those above |
///
/// # Examples
///
/// ```
/// use uniloop::Signal;
/// assert!(Signal::Interrupt.is_available()); // everywhere
/// let raw = Signal::Interrupt.as_raw().unwrap();
/// assert_eq!(Signal::from_raw(raw), Signal::Interrupt);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// Ctrl-C: `SIGINT` on Unix, `CTRL_C_EVENT` on Windows.
    Interrupt,
    /// `SIGTERM`: the polite request to stop (`kill`, service managers).
    Terminate,
    /// `SIGHUP`: the terminal went away; daemons often reload on it.
    Hangup,
    /// `SIGQUIT` (Ctrl-\\).
    Quit,
    /// `SIGUSR1`.
    User1,
    /// `SIGUSR2`.
    User2,
    /// `SIGWINCH`: the terminal was resized.
    WindowChange,
    /// `SIGCHLD`: a child process stopped or ended.
    Child,
    /// Windows `CTRL_BREAK_EVENT` (Ctrl-Break).
    Break,
    /// Windows `CTRL_CLOSE_EVENT`: the console window is being closed.
    /// Windows ends the process a few seconds later whatever the handler
    /// does; see [`Signals`](crate::Signals).
    Close,
    /// Windows `CTRL_LOGOFF_EVENT` (services only).
    Logoff,
    /// Windows `CTRL_SHUTDOWN_EVENT` (services only).
    Shutdown,
    /// Any other signal by its number (Unix), or a control event by its
    /// number (Windows).
    Other(i32),
}
