//! The runtime's own record of what is registered, so every backend gives
//! the same `AlreadyExists` / `NotFound` answers and reports the caller's
//! token exactly. Backends see only the slot number.

use std::collections::HashMap;
use std::io;

use crate::ops::SourceOps;
use crate::sys::RawSource;
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

#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_source: HashMap<RawSource, u64>,
    slots: Vec<Option<Reg>>,
    free_slots: Vec<u64>,
}

impl Registry {
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
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(reg);
                slot
            }
            None => {
                self.slots.push(Some(reg));
                (self.slots.len() - 1) as u64
            }
        };
        self.by_source.insert(raw, slot);
        slot
    }

    /// Forgets a registration and hands back what it held.
    pub(crate) fn free(&mut self, raw: RawSource) -> Option<Reg> {
        let slot = self.by_source.remove(&raw)?;
        self.free_slots.push(slot);
        self.slots[slot as usize].take()
    }

    pub(crate) fn contains(&self, raw: RawSource) -> bool {
        self.by_source.contains_key(&raw)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_source.len()
    }

    pub(crate) fn lookup(&self, raw: RawSource) -> io::Result<u64> {
        self.by_source
            .get(&raw)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "source is not registered"))
    }

    pub(crate) fn get(&self, slot: u64) -> Option<&Reg> {
        self.slots.get(slot as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, slot: u64) -> Option<&mut Reg> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }
}
