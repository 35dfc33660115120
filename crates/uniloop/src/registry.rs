//! The runtime's own record of what is registered, so every backend gives
//! the same `AlreadyExists` / `NotFound` answers and reports the caller's
//! token exactly. Backends see only the slot number.
//!
//! A slot number is an index into the slab plus a generation, bumped each
//! time the index is freed: readiness the OS still reports under a slot
//! that has since been freed (an epoll entry that outlived its fd through a
//! `dup`, say) matches nothing, rather than the registration that took the
//! index next.

use std::collections::HashMap;
use std::io;

use crate::ops::SourceOps;
use crate::sys::{RawSource, Source};
use crate::{Interest, Token, Trigger};

/// One registration.
#[derive(Debug)]
pub(crate) struct Reg {
    pub(crate) raw: RawSource,
    pub(crate) token: Token,
    /// The caller's interest (the OS may have more while posted operations
    /// need it; see `ops`).
    pub(crate) interest: Interest,
    pub(crate) trigger: Trigger,
    /// A oneshot registration that has reported since it was last armed.
    pub(crate) spent: bool,
    /// Posted-operation state, made by the first post on this source.
    pub(crate) ops: Option<Box<SourceOps>>,
}

impl Reg {
    /// The source's posted-operation state, made on first use. `slot` is
    /// this registration's slot number and `src` its source.
    #[inline]
    pub(crate) fn ops_mut(
        &mut self,
        src: Source<'_>,
        slot: u64,
        default_limit: usize,
        native: bool,
    ) -> &mut SourceOps {
        let (interest, spent) = (self.interest, self.spent);
        self.ops.get_or_insert_with(|| {
            Box::new(SourceOps::new(
                index_of(slot) as u32,
                interest,
                spent,
                default_limit,
                native,
                crate::sys::is_socket(src),
            ))
        })
    }
}

#[derive(Debug)]
struct Entry {
    gen: u32,
    /// The sequence number of the next operation posted through this slot
    /// ([`OpId`](crate::OpId)). It is never reset, so ids stay unique
    /// across the slot's successive registrations.
    next_seq: u32,
    reg: Option<Reg>,
}

/// Source number → slot. Every post, deregister and reregister looks its
/// source up here, so small numbers (the fds a process has open, and the
/// SOCKET values Windows hands out in practice) index a vector — one load,
/// where a SipHash map cost a fifth of a posted round trip's instructions —
/// and only numbers past [`DENSE_LIMIT`] go to a map.
#[derive(Debug, Default)]
struct SourceMap {
    /// Indexed by source number; [`NO_SLOT`] where none is registered.
    dense: Vec<u64>,
    sparse: HashMap<RawSource, u64>,
    len: usize,
}

/// No slot: slot numbers never reach it (an index is below `u32::MAX`).
const NO_SLOT: u64 = u64::MAX;

/// Source numbers below this are kept in the vector (8 bytes each, grown
/// only as far as the largest number seen).
const DENSE_LIMIT: usize = 1 << 20;

impl SourceMap {
    #[inline]
    fn dense_index(raw: RawSource) -> Option<usize> {
        usize::try_from(raw).ok().filter(|&i| i < DENSE_LIMIT)
    }

    #[inline]
    fn get(&self, raw: RawSource) -> Option<u64> {
        match Self::dense_index(raw) {
            Some(i) => self.dense.get(i).copied().filter(|&s| s != NO_SLOT),
            None => self.sparse.get(&raw).copied(),
        }
    }

    fn insert(&mut self, raw: RawSource, slot: u64) {
        let old = match Self::dense_index(raw) {
            Some(i) => {
                if i >= self.dense.len() {
                    self.dense.resize((i + 1).next_power_of_two(), NO_SLOT);
                }
                Some(std::mem::replace(&mut self.dense[i], slot)).filter(|&s| s != NO_SLOT)
            }
            None => self.sparse.insert(raw, slot),
        };
        if old.is_none() {
            self.len += 1;
        }
    }

    fn remove(&mut self, raw: RawSource) {
        let old = match Self::dense_index(raw) {
            Some(i) => self
                .dense
                .get_mut(i)
                .map(|s| std::mem::replace(s, NO_SLOT))
                .filter(|&s| s != NO_SLOT),
            None => self.sparse.remove(&raw),
        };
        if old.is_some() {
            self.len -= 1;
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_source: SourceMap,
    slots: Vec<Entry>,
    free_slots: Vec<u32>,
}

fn slot_of(index: u32, gen: u32) -> u64 {
    u64::from(gen) << 32 | u64::from(index)
}

/// The slab index of a slot number.
pub(crate) fn index_of(slot: u64) -> usize {
    (slot & u64::from(u32::MAX)) as usize
}

fn gen_of(slot: u64) -> u32 {
    (slot >> 32) as u32
}

/// The error of a look-up that found nothing.
#[cold]
pub(crate) fn not_registered() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "source is not registered")
}

impl Registry {
    /// Takes a slot for a new registration of `raw`. It is not yet what
    /// `raw` looks up to: [`map`](Registry::map) does that.
    pub(crate) fn alloc(
        &mut self,
        raw: RawSource,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> u64 {
        let reg = Reg {
            raw,
            token,
            interest,
            trigger,
            spent: false,
            ops: None,
        };
        match self.free_slots.pop() {
            Some(index) => {
                let e = &mut self.slots[index as usize];
                e.reg = Some(reg);
                slot_of(index, e.gen)
            }
            None => {
                // `u32::MAX` as an index would let a slot number reach
                // `u64::MAX`, which the backends' doorbells use.
                let index = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i < u32::MAX)
                    .expect("fewer than 2^32 - 1 registrations");
                self.slots.push(Entry {
                    gen: 0,
                    next_seq: 0,
                    reg: Some(reg),
                });
                slot_of(index, 0)
            }
        }
    }

    /// Makes `slot`'s source look up to `slot`.
    pub(crate) fn map(&mut self, slot: u64) {
        let raw = self.get(slot).expect("a live slot").raw;
        self.by_source.insert(raw, slot);
    }

    /// Forgets a registration and hands back what it held. Its source no
    /// longer looks up to it (if it did).
    pub(crate) fn free(&mut self, slot: u64) -> Option<Reg> {
        let e = self.slots.get_mut(index_of(slot))?;
        if e.gen != gen_of(slot) {
            return None;
        }
        let reg = e.reg.take()?;
        // A generation is never reused: an index whose generation would
        // wrap is retired instead (one slab entry per 2^32 registrations).
        if let Some(next) = e.gen.checked_add(1) {
            e.gen = next;
            self.free_slots.push(index_of(slot) as u32);
        }
        if self.by_source.get(reg.raw) == Some(slot) {
            self.by_source.remove(reg.raw);
        }
        Some(reg)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_source.len
    }

    /// The slot `raw` is registered under, if any.
    #[inline]
    pub(crate) fn find(&self, raw: RawSource) -> Option<u64> {
        self.by_source.get(raw)
    }

    #[inline]
    pub(crate) fn lookup(&self, raw: RawSource) -> io::Result<u64> {
        self.find(raw).ok_or_else(not_registered)
    }

    /// The slot `raw` is registered under and its registration, in one
    /// look.
    #[inline]
    pub(crate) fn find_mut(&mut self, raw: RawSource) -> Option<(u64, &mut Reg)> {
        let slot = self.by_source.get(raw)?;
        let e = self.slots.get_mut(index_of(slot))?;
        let reg = (e.gen == gen_of(slot))
            .then_some(e.reg.as_mut())
            .flatten()?;
        Some((slot, reg))
    }

    #[inline]
    pub(crate) fn get(&self, slot: u64) -> Option<&Reg> {
        let e = self.slots.get(index_of(slot))?;
        (e.gen == gen_of(slot)).then_some(e.reg.as_ref()).flatten()
    }

    /// The live registration at `index`, whatever its generation (an
    /// operation id names the index; its sequence number tells whether the
    /// operation is still there).
    #[inline]
    pub(crate) fn at_index_mut(&mut self, index: u32) -> Option<&mut Reg> {
        self.slots.get_mut(index as usize)?.reg.as_mut()
    }

    /// [`at_index_mut`](Registry::at_index_mut) with the registration's
    /// slot number.
    #[inline]
    pub(crate) fn at_index_slot_mut(&mut self, index: u32) -> Option<(u64, &mut Reg)> {
        let e = self.slots.get_mut(index as usize)?;
        let slot = slot_of(index, e.gen);
        Some((slot, e.reg.as_mut()?))
    }

    /// The registration in `slot` and a fresh operation sequence number.
    #[inline]
    pub(crate) fn for_post(&mut self, slot: u64) -> Option<(&mut Reg, u32)> {
        let e = self.slots.get_mut(index_of(slot))?;
        if e.gen != gen_of(slot) {
            return None;
        }
        let seq = e.next_seq;
        e.next_seq = seq.wrapping_add(1);
        Some((e.reg.as_mut()?, seq))
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u64) -> Option<&mut Reg> {
        let e = self.slots.get_mut(index_of(slot))?;
        (e.gen == gen_of(slot)).then_some(e.reg.as_mut()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_slot_number_matches_nothing_after_reuse() {
        let mut r = Registry::default();
        let a = r.alloc(5, Token(1), Interest::READABLE, Trigger::Level);
        r.map(a);
        assert!(r.free(a).is_some());
        let b = r.alloc(5, Token(2), Interest::READABLE, Trigger::Level);
        r.map(b);
        assert_eq!(index_of(a), index_of(b), "the index is reused");
        assert_ne!(a, b);
        assert!(r.get(a).is_none(), "the old number names nothing");
        assert!(r.free(a).is_none());
        assert_eq!(r.get(b).map(|reg| reg.token), Some(Token(2)));
        assert_eq!(r.find(5), Some(b));
    }

    #[test]
    fn large_source_numbers_use_the_map() {
        let mut r = Registry::default();
        let big = DENSE_LIMIT as RawSource + 3;
        let a = r.alloc(big, Token(1), Interest::READABLE, Trigger::Level);
        r.map(a);
        let b = r.alloc(7, Token(2), Interest::READABLE, Trigger::Level);
        r.map(b);
        assert_eq!((r.find(big), r.find(7), r.len()), (Some(a), Some(b), 2));
        assert_eq!(r.find(8), None);
        assert!(r.free(a).is_some());
        assert_eq!((r.find(big), r.len()), (None, 1));
        assert!(r.free(b).is_some());
        assert_eq!((r.find(7), r.len()), (None, 0));
    }

    #[test]
    fn freeing_an_unmapped_slot_keeps_the_mapping() {
        let mut r = Registry::default();
        let old = r.alloc(5, Token(1), Interest::READABLE, Trigger::Level);
        r.map(old);
        let new = r.alloc(5, Token(2), Interest::READABLE, Trigger::Level);
        r.map(new);
        assert_eq!(r.free(old).map(|reg| reg.token), Some(Token(1)));
        assert_eq!(r.find(5), Some(new));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn an_index_whose_generation_would_wrap_is_retired() {
        let mut r = Registry::default();
        let a = r.alloc(5, Token(1), Interest::READABLE, Trigger::Level);
        r.slots[index_of(a)].gen = u32::MAX;
        let a = slot_of(index_of(a) as u32, u32::MAX);
        r.map(a);
        assert!(r.free(a).is_some());
        let b = r.alloc(5, Token(2), Interest::READABLE, Trigger::Level);
        assert_ne!(index_of(a), index_of(b));
    }
}
