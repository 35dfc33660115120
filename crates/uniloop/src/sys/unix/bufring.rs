//! The io_uring backend's provided-buffer ring (`IORING_REGISTER_PBUF_RING`,
//! Linux 5.19): the runtime's receive buffers
//! ([`Builder::recv_buffers`](crate::Builder::recv_buffers)) while the
//! kernel may pick them for a receive stream's data.
//!
//! The ring is an array of `{addr, len, bid}` entries in memory we map and
//! the kernel reads; we add a buffer by writing the entry at `tail` and
//! publishing the new tail with a release store (the kernel reads the tail
//! with an acquire load before it reads the entry, `io_uring.h`). A buffer
//! in the ring is the kernel's: it may write into it at any time a receive
//! that selects buffers is armed. It comes back with the completion that
//! names its `bid` (`IORING_CQE_F_BUFFER`), and only then is it handed up.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// The buffer group id of the ring (one per selector).
pub(super) const BGID: u16 = 0;

pub(super) struct BufRing {
    /// The mapped entries (`entries` of them).
    base: *mut BufRingEntry,
    map_len: usize,
    mask: u16,
    /// Our copy of the tail: the next entry to write.
    tail: u16,
    /// The size of every buffer (what the kernel may write into one).
    size: u32,
    /// The buffers the kernel has, by `bid`.
    bufs: Vec<Option<Vec<u8>>>,
    /// `bid`s with no buffer (handed up, or never filled).
    free: Vec<u16>,
    /// The ring is registered with the kernel.
    registered: bool,
}

// SAFETY: `base` points at our own mapping, which only this value (and the
// kernel) uses; moving the value to another thread moves nothing the
// pointer names.
unsafe impl Send for BufRing {}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRing")
            .field("size", &self.size)
            .field("in_ring", &(self.bufs.len() - self.free.len()))
            .finish_non_exhaustive()
    }
}

impl BufRing {
    /// Maps and registers a ring for `count` buffers of `size` bytes (the
    /// buffers themselves come with [`provide`](BufRing::provide)). An
    /// error if the kernel has no buffer rings, or `count` or `size` is
    /// out of its range (`count` at most 32,768).
    pub(super) fn new(ring: &IoUring, count: usize, size: usize) -> io::Result<BufRing> {
        let entries = count.max(1).next_power_of_two();
        let (Ok(entries16), Ok(size)) = (u16::try_from(entries), u32::try_from(size)) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a buffer ring takes at most 32,768 buffers of at most 4 GiB",
            ));
        };
        let map_len = entries * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping of `map_len` bytes, asked
        // of no address in particular: it overlaps nothing of ours. The
        // kernel wants the ring page-aligned, which a mapping is.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut me = BufRing {
            base: base.cast(),
            map_len,
            mask: entries16.wrapping_sub(1),
            tail: 0,
            size,
            bufs: (0..count).map(|_| None).collect(),
            free: (0..count as u16).rev().collect(),
            registered: false,
        };
        // SAFETY: the mapping is page-aligned, `entries` (a power of two)
        // entries long, zeroed (tail 0: empty), and stays mapped until the
        // ring is unregistered (`Drop`, after `unregister`).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(base as u64, entries16, BGID, 0)?;
        }
        me.registered = true;
        Ok(me)
    }

    /// The size of each buffer.
    pub(super) fn size(&self) -> u32 {
        self.size
    }

    /// Gives `buf` (emptied; capacity at least the ring's size) to the
    /// kernel. A buffer beyond the ring's count, or too small, is dropped.
    pub(super) fn provide(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() < self.size as usize {
            return;
        }
        let Some(bid) = self.free.pop() else { return };
        buf.clear();
        let addr = buf.as_mut_ptr() as u64;
        // The heap block stays put while the `Vec` sits here.
        self.bufs[usize::from(bid)] = Some(buf);
        let at = usize::from(self.tail & self.mask);
        // SAFETY: `at` is below the ring's entry count, inside the
        // mapping. The kernel reads only entries before the published
        // tail, and this one is at or past it (the ring never holds more
        // buffers than it has entries, so the kernel has consumed the
        // entry that was here before).
        let entry = unsafe { &mut *self.base.add(at) };
        entry.set_addr(addr);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field lives in the mapping (in the first
        // entry's last two bytes, which the kernel does not read as an
        // entry field) and is 2-aligned, so it may be used as an atomic.
        // Release: the entry written above is visible to the kernel before
        // the tail that covers it (the kernel reads the tail with acquire).
        unsafe {
            let tail = BufRingEntry::tail(self.base).cast_mut().cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// Takes back buffer `bid`, which a completion says the kernel used and
    /// let go of; `len` bytes of it are data.
    pub(super) fn take(&mut self, bid: u16, len: usize) -> Option<Vec<u8>> {
        let mut buf = self.bufs.get_mut(usize::from(bid))?.take()?;
        self.free.push(bid);
        let len = len.min(buf.capacity());
        // SAFETY: the completion naming `bid` says the kernel wrote `len`
        // bytes from the buffer's start (never more than the entry's
        // length, the buffer's size) and is done with it.
        unsafe { buf.set_len(len) };
        Some(buf)
    }

    /// Unregisters the ring; false if the kernel refused (then the memory
    /// is leaked on drop, never freed under the kernel).
    pub(super) fn unregister(&mut self, ring: &IoUring) -> bool {
        if self.registered && ring.submitter().unregister_buf_ring(BGID).is_ok() {
            self.registered = false;
        }
        !self.registered
    }
}

impl Drop for BufRing {
    /// Called with no receive in flight (the selector cancels them first).
    /// A ring the kernel still has registered keeps its memory: leaked.
    fn drop(&mut self) {
        if self.registered {
            for buf in self.bufs.drain(..).flatten() {
                std::mem::forget(buf);
            }
            return;
        }
        // SAFETY: our own mapping of `map_len` bytes, no longer registered
        // with the kernel; nothing points into it any more.
        unsafe { libc::munmap(self.base.cast(), self.map_len) };
    }
}
