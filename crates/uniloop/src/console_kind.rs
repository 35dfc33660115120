//! [`ConsoleKind`]: what stdin is, in words the backends and the
//! [`Console`](crate::Console) share. A vocabulary module: it uses nothing
//! else of the crate.

/// What stdin is connected to.
///
/// # Examples
///
/// ```no_run
/// use uniloop::{Console, ConsoleKind, Runtime};
/// let rt = Runtime::new()?;
/// let console = Console::spawn(&rt.poster(), 1)?;
/// if console.kind() == ConsoleKind::Tty {
///     println!("interactive");
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConsoleKind {
    /// A terminal.
    Tty,
    /// A pipe or a socket.
    Pipe,
    /// A regular file, or a device such as `/dev/null`.
    File,
    /// No stdin at all (the descriptor is closed).
    None,
}
