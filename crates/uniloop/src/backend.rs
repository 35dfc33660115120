//! [`Backend`]: the OS mechanisms a runtime can be built on, by name. A
//! vocabulary module: it uses nothing else of the crate but [`Trigger`],
//! another one.

use std::fmt;
use std::str::FromStr;

use crate::trigger::Trigger;

/// An OS readiness mechanism a [`Runtime`](crate::Runtime) can be built on.
///
/// | OS | default | also |
/// |---|---|---|
/// | Linux | `Epoll` | `Poll`, `Uring` (where io_uring is permitted) |
/// | Android | `Epoll` | `Poll` |
/// | macOS, iOS, FreeBSD, OpenBSD, NetBSD, DragonFly | `Kqueue` | `Poll` |
/// | Windows | `Iocp` | — |
/// | other Unix | `Poll` | — |
///
/// # Examples
///
/// ```
/// use uniloop::{Backend, Trigger};
/// assert!(Backend::native().is_available());
/// assert!(!Backend::Poll.supports(Trigger::Edge)); // on every platform
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Linux `epoll(7)`.
    Epoll,
    /// POSIX `poll(2)`: portable, O(registered sources) per wait.
    Poll,
    /// BSD / macOS `kqueue(2)`.
    Kqueue,
    /// Windows I/O completion ports with AFD polling.
    Iocp,
    /// Linux `io_uring(7)`, opt-in (never the default): readiness through
    /// `IORING_OP_POLL_ADD` (level, edge and oneshot), the doorbell and
    /// timeouts through the ring. Posted reads and writes on a socket that
    /// do not finish at once become native `IORING_OP_RECV`/`SEND`
    /// submissions (cancelled with `IORING_OP_ASYNC_CANCEL`); on other fds
    /// they run through the readiness emulation, as on epoll. Needs Linux 5.11 or later, and a system that permits
    /// io_uring: [`is_available`](Backend::is_available) tries, and
    /// building a runtime on it where io_uring is refused (the
    /// `kernel.io_uring_disabled` sysctl, a seccomp filter) fails with
    /// [`std::io::ErrorKind::PermissionDenied`] or
    /// [`std::io::ErrorKind::Unsupported`] naming the cause.
    Uring,
}

impl Backend {
    /// Every backend, for iterating (tests, benchmarks).
    pub const ALL: [Backend; 5] = [
        Backend::Epoll,
        Backend::Poll,
        Backend::Kqueue,
        Backend::Iocp,
        Backend::Uring,
    ];

    /// Whether this backend implements `trigger` natively and exactly.
    /// Registering with an unsupported trigger fails with
    /// [`std::io::ErrorKind::Unsupported`].
    pub fn supports(self, trigger: Trigger) -> bool {
        match (self, trigger) {
            (_, Trigger::Level | Trigger::Oneshot) => true,
            (Backend::Epoll | Backend::Kqueue | Backend::Uring, Trigger::Edge) => true,
            (Backend::Poll | Backend::Iocp, Trigger::Edge) => false,
        }
    }

    /// The backend's name as [`FromStr`] takes it and [`Display`](fmt::Display)
    /// prints it: `epoll`, `poll`, `kqueue`, `iocp`, `uring`.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Epoll => "epoll",
            Backend::Poll => "poll",
            Backend::Kqueue => "kqueue",
            Backend::Iocp => "iocp",
            Backend::Uring => "uring",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a backend's.
///
/// # Examples
///
/// ```
/// use uniloop::Backend;
/// assert_eq!("uring".parse::<Backend>().unwrap(), Backend::Uring);
/// let e = "select".parse::<Backend>().unwrap_err();
/// assert_eq!(e.to_string(), "unknown backend \"select\" (epoll, poll, kqueue, iocp, uring)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownBackend(String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown backend {:?} (", self.0)?;
        for (i, b) in Backend::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(b.name())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for Backend {
    type Err = UnknownBackend;

    /// A backend by [`name`](Backend::name), ASCII case ignored.
    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownBackend(s.to_string()))
    }
}
