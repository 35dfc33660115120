//! What `wait` returns: [`Event`]s in an [`Events`] buffer.

use crate::ops::{OpId, OpKind};
use crate::readiness::Readiness;
use crate::timer::TimerId;
use crate::token::Token;

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
    /// [`post_write`](crate::Runtime::post_write) (or an accept, a
    /// connect) finished. Take its buffer (and the full error, if any) with
    /// [`Runtime::take_io`](crate::Runtime::take_io).
    ///
    /// A receive stream
    /// ([`Runtime::post_recv_stream`](crate::Runtime::post_recv_stream),
    /// [`OpKind::RecvStream`]) gives one per chunk, all with the same `op`:
    /// take each chunk with
    /// [`Runtime::take_recv`](crate::Runtime::take_recv); its last event
    /// (`bytes` 0) is its end, taken with `take_io`.
    IoDone {
        /// The source's token (as it is now, if it was re-registered).
        token: Token,
        /// The id the post returned.
        op: OpId,
        /// Read, write, accept, connect, or a receive stream's chunk.
        kind: OpKind,
        /// Bytes transferred. A read: how many arrived, `0` (with no error)
        /// at end of stream — the peer closed its side. A write: the whole
        /// buffer on success; on error, how much of it went out. A receive
        /// stream's chunk: its length; its end: `0`.
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
