//! [`Readiness`]: what [`Event::Io`](crate::Event::Io) reports. A
//! vocabulary module: it uses nothing else of the crate.

use std::fmt;
use std::ops;

/// The readiness reported for a source in [`Event::Io`](crate::Event::Io). Each condition is
/// its own flag; several may be set at once.
///
/// # Examples
///
/// ```
/// use uniloop::Readiness;
/// let r = Readiness::READABLE | Readiness::READ_CLOSED;
/// assert!(r.is_readable() && r.is_read_closed() && !r.is_error());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Readiness(u8);

impl Readiness {
    /// Nothing is ready.
    pub const EMPTY: Readiness = Readiness(0);
    /// Data (or a connection) can be read without blocking.
    pub const READABLE: Readiness = Readiness(1);
    /// Data can be written without blocking.
    pub const WRITABLE: Readiness = Readiness(1 << 1);
    /// The peer closed its writing side (FIN received); reads will reach EOF.
    pub const READ_CLOSED: Readiness = Readiness(1 << 2);
    /// Writing is no longer possible (hang-up, or the connection is gone).
    pub const WRITE_CLOSED: Readiness = Readiness(1 << 3);
    /// The source has a pending error (read it with `SO_ERROR` / `take_error`).
    pub const ERROR: Readiness = Readiness(1 << 4);
    /// Priority / out-of-band data is available.
    pub const PRIORITY: Readiness = Readiness(1 << 5);

    /// The readiness whose bits are `bits` (a backend's branch-free
    /// translation builds them; bits above `PRIORITY` are dropped).
    #[inline]
    #[allow(dead_code)] // only the Linux backends (epoll, io_uring) translate bits
    pub(crate) const fn from_bits(bits: u32) -> Readiness {
        Readiness((bits & 0x3f) as u8)
    }

    /// The bits `from_bits` takes.
    #[allow(dead_code)] // only the Linux backends assert on the bits
    pub(crate) const fn bits(self) -> u8 {
        self.0
    }

    /// See [`Readiness::READABLE`].
    pub const fn is_readable(self) -> bool {
        self.contains(Self::READABLE)
    }
    /// See [`Readiness::WRITABLE`].
    pub const fn is_writable(self) -> bool {
        self.contains(Self::WRITABLE)
    }
    /// See [`Readiness::READ_CLOSED`].
    pub const fn is_read_closed(self) -> bool {
        self.contains(Self::READ_CLOSED)
    }
    /// See [`Readiness::WRITE_CLOSED`].
    pub const fn is_write_closed(self) -> bool {
        self.contains(Self::WRITE_CLOSED)
    }
    /// See [`Readiness::ERROR`].
    pub const fn is_error(self) -> bool {
        self.contains(Self::ERROR)
    }
    /// See [`Readiness::PRIORITY`].
    pub const fn is_priority(self) -> bool {
        self.contains(Self::PRIORITY)
    }
    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: Readiness) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
    /// The union of both (the `const` form of `|`).
    #[must_use]
    pub const fn union(self, other: Readiness) -> Readiness {
        Readiness(self.0 | other.0)
    }

    /// Whether `self` and `other` share a flag.
    pub(crate) const fn intersects(self, other: Readiness) -> bool {
        self.0 & other.0 != 0
    }

    /// `self` without the flags of `other`.
    pub(crate) const fn without(self, other: Readiness) -> Readiness {
        Readiness(self.0 & !other.0)
    }
}

impl ops::BitOr for Readiness {
    type Output = Readiness;
    fn bitor(self, rhs: Readiness) -> Readiness {
        self.union(rhs)
    }
}

impl ops::BitOrAssign for Readiness {
    fn bitor_assign(&mut self, rhs: Readiness) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.is_readable(), "READABLE"),
            (self.is_writable(), "WRITABLE"),
            (self.is_read_closed(), "READ_CLOSED"),
            (self.is_write_closed(), "WRITE_CLOSED"),
            (self.is_error(), "ERROR"),
            (self.is_priority(), "PRIORITY"),
        ];
        write_flags(f, &names)
    }
}

/// `A | B` for the flags set, `(empty)` for none: the `Debug` form of
/// [`Readiness`] and of [`Interest`](crate::Interest).
pub(crate) fn write_flags(f: &mut fmt::Formatter<'_>, names: &[(bool, &str)]) -> fmt::Result {
    let mut set = names.iter().filter(|(on, _)| *on).map(|(_, name)| *name);
    match set.next() {
        None => f.write_str("(empty)"),
        Some(first) => {
            f.write_str(first)?;
            set.try_for_each(|name| write!(f, " | {name}"))
        }
    }
}
