//! A receive stream's data types ([`stream`](super::stream) runs the
//! streams): [`RecvBuf`], the chunk handed out; `Home`, where dropped
//! ones go back to the loop; and the per-source `Stream` with its
//! `Chunk`s, which the source's state holds.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::PoisonError;

use crate::sync::{Arc, AtomicBool, Mutex, Ordering};

#[cfg(doc)]
use crate::Runtime;

/// One chunk of a receive stream: a buffer of the runtime's, holding the
/// bytes that arrived (`&buf[..]`, never empty). Give it back with
/// [`Runtime::give_back`] when done with it, so the stream can use it
/// again; dropping it gives it back too, at the loop's next `wait` (a
/// `RecvBuf` is `Send`: one dropped on another thread while the loop is
/// blocked is seen when the loop next wakes — call
/// [`Poster::wake`](crate::Poster::wake) if streams may be waiting for
/// it). It outlives its runtime safely.
///
/// # Examples
///
/// See [`Runtime::post_recv_stream`].
pub struct RecvBuf {
    buf: Vec<u8>,
    home: Option<Arc<Home>>,
}

impl RecvBuf {
    pub(super) fn new(buf: Vec<u8>, home: &Arc<Home>) -> RecvBuf {
        RecvBuf {
            buf,
            home: Some(Arc::clone(home)),
        }
    }

    /// Whether `self` came from the pool `home`; its buffer, taken out.
    pub(super) fn into_vec_for(mut self, home: &Arc<Home>) -> Option<Vec<u8>> {
        if !self.home.as_ref().is_some_and(|h| Arc::ptr_eq(h, home)) {
            return None;
        }
        self.home = None;
        Some(std::mem::take(&mut self.buf))
    }
}

impl Deref for RecvBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl DerefMut for RecvBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl AsRef<[u8]> for RecvBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBuf")
            .field("len", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            home.put(std::mem::take(&mut self.buf));
        }
    }
}

/// Where dropped [`RecvBuf`]s go, for the loop to collect.
///
/// Ordering: a drop pushes under the mutex and then sets `any` (release);
/// the loop turns `any` from true to false (acquire) and then empties the
/// list under the mutex. A push after that sets `any` again, so it is collected
/// next time; at worst a collection finds the list empty.
#[derive(Default)]
pub(crate) struct Home {
    returned: Mutex<Vec<Vec<u8>>>,
    any: AtomicBool,
}

impl Home {
    pub(super) fn put(&self, buf: Vec<u8>) {
        self.returned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buf);
        self.any.store(true, Ordering::Release);
    }

    /// Whether a drop may have put something here since the last
    /// collection (a hint: the collection itself decides).
    pub(super) fn maybe_any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    pub(super) fn take_all(&self, into: &mut Vec<Vec<u8>>) {
        // A compare-exchange, not a swap: the same for a flag, and loom
        // 0.7 mis-models a swap racing a store (tokio-rs/loom#254), which
        // would hide this protocol from its model check.
        if self
            .any
            .compare_exchange(true, false, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            into.append(&mut self.returned.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}

/// One chunk of a stream, kept until taken: data, or the end (no buffer).
pub(super) struct Chunk {
    pub(super) buf: Option<RecvBuf>,
    pub(super) error: Option<io::Error>,
}

/// A source's receive stream.
pub(crate) struct Stream {
    pub(super) seq: u32,
    /// Chunks not taken yet, in arrival order; the first `delivered` have
    /// had their events.
    pub(super) chunks: VecDeque<Chunk>,
    pub(super) delivered: usize,
    /// On the ring: the receive's submission, while the kernel has it.
    pub(super) kernel: Option<u64>,
    /// Runs on the ring (else on readiness).
    pub(super) native: bool,
    /// Out of buffers: on the pool's `starved` list.
    pub(super) starved: bool,
    /// Its last chunk (end of stream or error) is queued.
    pub(super) ended: bool,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("seq", &self.seq)
            .field("chunks", &self.chunks.len())
            .field("native", &self.native)
            .field("starved", &self.starved)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// Whether it waits for readability (a readiness-run stream that can
    /// go on).
    pub(super) fn wants_readable(&self) -> bool {
        !self.native && !self.starved && !self.ended
    }

    /// Whether it keeps readability from the caller's interest: it cannot
    /// read now (out of buffers, or ended), and its socket may stay
    /// readable meanwhile.
    pub(super) fn holds_readable(&self) -> bool {
        self.starved || self.ended
    }
}

/// Model checks of [`Home`]: a buffer dropped on another thread is
/// collected by the loop exactly once, whichever way the drop and the
/// collection interleave.
#[cfg(all(test, uniloop_loom))]
mod loom_tests {
    use super::Home;
    use crate::sync::Arc;

    #[test]
    fn loom_home_two_drops_collected_once_each() {
        loom::model(|| {
            let home = Arc::new(Home::default());
            let droppers: Vec<_> = (0..2u8)
                .map(|i| {
                    let h = Arc::clone(&home);
                    loom::thread::spawn(move || h.put(vec![i]))
                })
                .collect();
            let mut got = Vec::new();
            home.take_all(&mut got);
            for t in droppers {
                t.join().unwrap();
            }
            home.take_all(&mut got);
            got.sort();
            assert_eq!(got, vec![vec![0u8], vec![1u8]]);
        });
    }
}
