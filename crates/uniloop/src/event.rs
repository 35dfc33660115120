//! What `wait` returns: [`Event`]s in an [`Events`] buffer, and the small
//! value types they are made of ([`Token`], [`Interest`], [`Trigger`],
//! [`Readiness`]).

use std::fmt;
use std::ops;

use crate::ops::{OpId, OpKind};
use crate::timer::TimerId;

/// The caller's 64-bit name for a registered source, returned unchanged in
/// [`Event::Io`].
///
/// Every value is usable, `u64::MAX` included: the runtime never mixes a
/// token with a file descriptor or with its own bookkeeping.
///
/// # Examples
///
/// ```
/// use uniloop::Token;
/// let t = Token(u64::MAX);
/// assert_eq!(t.0, u64::MAX);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);

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
        write_flags(f, &names)
    }
}

/// How readiness is reported for a registration.
///
/// Not every backend can honour every mode; [`Backend::supports`] says which
/// do, and registering with an unsupported one fails with
/// [`std::io::ErrorKind::Unsupported`] instead of behaving differently.
///
/// [`Backend::supports`]: crate::Backend::supports
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Reported on every `wait` for as long as the condition holds (until the
    /// data is read, the buffer drains...). The default, as in the reference
    /// C API.
    #[default]
    Level,
    /// Reported when the condition newly arises (new data arrives, buffer
    /// space frees up); the caller must do I/O until it would block.
    Edge,
    /// Reported once, then disabled until the source is re-registered with
    /// [`Runtime::reregister`](crate::Runtime::reregister).
    Oneshot,
}

/// The readiness reported for a source in [`Event::Io`]. Each condition is
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
    #[allow(dead_code)] // used by some backends only (epoll)
    pub(crate) const fn from_bits(bits: u32) -> Readiness {
        Readiness((bits & 0x3f) as u8)
    }

    /// The bits `from_bits` takes.
    #[allow(dead_code)] // used by some backends only
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

fn write_flags(f: &mut fmt::Formatter<'_>, names: &[(bool, &str)]) -> fmt::Result {
    let mut first = true;
    for &(set, name) in names {
        if set {
            if !first {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
            first = false;
        }
    }
    if first {
        f.write_str("(empty)")?;
    }
    Ok(())
}

/// One thing the loop must react to, as returned by
/// [`Runtime::wait`](crate::Runtime::wait).
///
/// Non-exhaustive: a `match` needs a `_` arm, so a later kind of event is
/// not a breaking change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A registered source is ready.
    Io {
        /// The token given at registration.
        token: Token,
        /// What it is ready for.
        ready: Readiness,
    },
    /// A [`Poster::post`](crate::Poster::post), delivered exactly once with
    /// both values intact.
    Completion {
        /// The posted key.
        key: u64,
        /// The posted data.
        data: u64,
    },
    /// A timer expired.
    Timer {
        /// The key given to [`Runtime::add_timer`](crate::Runtime::add_timer).
        key: u64,
        /// The timer's id (a periodic timer keeps its id).
        id: TimerId,
    },
    /// [`Poster::wake`](crate::Poster::wake) was called (any number of times)
    /// since the last `Wake` event.
    Wake,
    /// A read or write posted with
    /// [`Runtime::post_read`](crate::Runtime::post_read) /
    /// [`post_write`](crate::Runtime::post_write) finished. Take its buffer
    /// (and the full error, if any) with
    /// [`Runtime::take_io`](crate::Runtime::take_io).
    IoDone {
        /// The source's token (as it is now, if it was re-registered).
        token: Token,
        /// The id the post returned.
        op: OpId,
        /// Read or write.
        kind: OpKind,
        /// Bytes transferred. A read: how many arrived, `0` (with no error)
        /// at end of stream — the peer closed its side. A write: the whole
        /// buffer on success; on error, how much of it went out.
        bytes: usize,
        /// Why it failed, if it did; the full [`std::io::Error`] comes with
        /// `take_io`.
        error: Option<std::io::ErrorKind>,
    },
}

/// The buffer [`Runtime::wait`](crate::Runtime::wait) fills; its capacity is
/// the most events one `wait` returns. Whatever does not fit stays queued for
/// the next `wait`: nothing is dropped.
///
/// # Examples
///
/// ```
/// use uniloop::Events;
/// let events = Events::with_capacity(256);
/// assert_eq!(events.capacity(), 256);
/// assert!(events.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Events {
    list: Vec<Event>,
    capacity: usize,
}

impl Events {
    /// The largest capacity an `Events` takes: a larger request is clamped
    /// to it (one `wait` could never fill more; the OS is asked for at most
    /// a few thousand events per call anyway, and the rest come next call).
    pub const MAX_CAPACITY: usize = 1 << 20;

    /// The memory reserved up front; a larger buffer grows as events fill it.
    const RESERVE: usize = 1024;

    /// A buffer for at most `capacity` events per `wait` (clamped to
    /// [`Events::MAX_CAPACITY`]; `usize::MAX` is fine and means "as many as
    /// there are").
    ///
    /// A capacity of 0 is accepted here, but `wait` rejects it with
    /// [`std::io::ErrorKind::InvalidInput`] (it could never deliver anything).
    ///
    /// # Examples
    ///
    /// ```
    /// use uniloop::Events;
    /// assert_eq!(Events::with_capacity(usize::MAX).capacity(), Events::MAX_CAPACITY);
    /// ```
    pub fn with_capacity(capacity: usize) -> Events {
        let capacity = capacity.min(Self::MAX_CAPACITY);
        Events {
            list: Vec::with_capacity(capacity.min(Self::RESERVE)),
            capacity,
        }
    }

    /// The most events one `wait` puts here.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many events the last `wait` returned.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the last `wait` returned nothing.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The events of the last `wait`, in delivery order.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.list.iter()
    }

    /// Forgets the events (`wait` does this itself).
    pub fn clear(&mut self) {
        self.list.clear();
    }

    pub(crate) fn room(&self) -> usize {
        self.capacity - self.list.len()
    }

    pub(crate) fn push(&mut self, event: Event) {
        debug_assert!(self.list.len() < self.capacity);
        self.list.push(event);
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
