//! [`Interest`]: which readiness a registration asks for. A vocabulary
//! module: it uses nothing of the crate but `readiness`, another one.

use std::fmt;
use std::ops;

/// Which readiness a registration asks for: [`Interest::READABLE`],
/// [`Interest::WRITABLE`], [`Interest::PRIORITY`], combined with `|`.
///
/// Error and hang-up conditions are always reported; they need no interest.
///
/// # Examples
///
/// ```
/// use uniloop::Interest;
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert!(!Interest::READABLE.is_writable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// Interest in the source becoming readable (or a listener having a
    /// connection to accept, or the peer closing its side).
    pub const READABLE: Interest = Interest(1);
    /// Interest in the source becoming writable (or a connect completing).
    pub const WRITABLE: Interest = Interest(2);
    /// Interest in out-of-band / priority data (`POLLPRI`).
    pub const PRIORITY: Interest = Interest(4);

    /// Whether readable interest is set.
    pub const fn is_readable(self) -> bool {
        self.0 & Self::READABLE.0 != 0
    }

    /// Whether writable interest is set.
    pub const fn is_writable(self) -> bool {
        self.0 & Self::WRITABLE.0 != 0
    }

    /// Whether priority interest is set.
    pub const fn is_priority(self) -> bool {
        self.0 & Self::PRIORITY.0 != 0
    }

    /// Both sets of interest together (the `const` form of `|`).
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// No readiness interest. A source registered (or reregistered) with it
    /// stays registered and reports no readable or writable readiness:
    /// posted reads and writes on it work (they ask the OS for what they
    /// need), and a later [`reregister`](crate::Runtime::reregister) with
    /// some interest resumes its readiness events. This registers a source
    /// only for posted I/O, or pauses one (back-pressure) without losing
    /// its registration. Errors and hang-ups may still be reported, as
    /// for any registration.
    pub const NONE: Interest = Interest(0);

    /// Whether no interest is set ([`Interest::NONE`]).
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// `self` without the flags of `other`.
    pub(crate) const fn without(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }

    /// Whether `self` has a flag that `other` lacks.
    pub(crate) const fn exceeds(self, other: Interest) -> bool {
        self.0 & !other.0 != 0
    }
}

impl ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.add(rhs)
    }
}

impl ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, rhs: Interest) {
        *self = self.add(rhs);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.is_readable(), "READABLE"),
            (self.is_writable(), "WRITABLE"),
            (self.is_priority(), "PRIORITY"),
        ];
        crate::readiness::write_flags(f, &names)
    }
}
