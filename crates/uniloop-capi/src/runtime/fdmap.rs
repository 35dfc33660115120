//! The fd table's map: an fd number indexes a `Vec` (fds are small
//! numbers, reused lowest first), and a number too large for that
//! (a Windows `SOCKET` can be) goes to a hash map. Plus a cheap hasher for
//! the integer keys of the other maps (operation ids, timer ids): their
//! keys come from the library, not from an attacker, so SipHash's
//! flood resistance buys nothing there.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::types::socket_fd_t;

/// Multiplies an integer key by a large odd constant (Fibonacci hashing),
/// then folds the high half into the low: a product's high bits depend on
/// every key bit, its low bits only on the key's low bits, and hashbrown
/// places an entry by the low bits (and tags it with the top seven).
/// Without the fold, every operation of one source (same index in the low
/// half of its id, a different sequence number in the high half) landed in
/// the same place, and inserting one walked all of them.
#[derive(Default, Clone, Copy)]
pub(super) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u64(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A `HashMap` hashed by [`IntHasher`].
pub(super) type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Fds below this index the `Vec` (a slot is a few dozen bytes, so at most
/// a few MiB for a process that really has this many fds).
const DIRECT: usize = 1 << 16;

/// fd → `V`.
pub(super) struct FdMap<V> {
    direct: Vec<Option<V>>,
    other: IntMap<socket_fd_t, V>,
    len: usize,
}

impl<V> FdMap<V> {
    pub(super) fn new() -> Self {
        FdMap {
            direct: Vec::new(),
            other: IntMap::default(),
            len: 0,
        }
    }

    // A `SOCKET` is a `usize` already on Windows.
    #[allow(clippy::useless_conversion)]
    fn index(fd: socket_fd_t) -> Option<usize> {
        usize::try_from(fd).ok().filter(|&i| i < DIRECT)
    }

    #[inline]
    pub(super) fn get(&self, fd: &socket_fd_t) -> Option<&V> {
        match Self::index(*fd) {
            Some(i) => self.direct.get(i)?.as_ref(),
            None => self.other.get(fd),
        }
    }

    #[inline]
    pub(super) fn get_mut(&mut self, fd: &socket_fd_t) -> Option<&mut V> {
        match Self::index(*fd) {
            Some(i) => self.direct.get_mut(i)?.as_mut(),
            None => self.other.get_mut(fd),
        }
    }

    pub(super) fn contains_key(&self, fd: &socket_fd_t) -> bool {
        self.get(fd).is_some()
    }

    pub(super) fn remove(&mut self, fd: &socket_fd_t) -> Option<V> {
        let old = match Self::index(*fd) {
            Some(i) => self.direct.get_mut(i)?.take(),
            None => self.other.remove(fd),
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub(super) fn insert(&mut self, fd: socket_fd_t, v: V) -> Option<V> {
        let old = match Self::index(fd) {
            Some(i) => {
                if i >= self.direct.len() {
                    self.direct.resize_with(i + 1, || None);
                }
                self.direct[i].replace(v)
            }
            None => self.other.insert(fd, v),
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::IntHasher;

    /// The ids of one source's operations differ only in their high half
    /// (the sequence number): their hashes must still spread over the low
    /// bits hashbrown places entries by.
    #[test]
    fn one_sources_ids_spread_over_the_low_bits() {
        let build = BuildHasherDefault::<IntHasher>::default();
        let mut buckets = std::collections::HashSet::new();
        for seq in 0..4096u64 {
            let id = seq << 32 | 7;
            buckets.insert(build.hash_one(id) & 4095);
        }
        assert!(
            buckets.len() > 2048,
            "{} of 4096 buckets used",
            buckets.len()
        );
    }
}
