//! The bounded buffer of data sets waiting for a template that has not arrived yet.
//!
//! A data set whose template is unknown after the whole datagram has been read (so a
//! template later in the same datagram is always used first) is copied here with what is
//! needed to decode it later. It is released when its template arrives, discarded as
//! expired when it waited longer than `pending_timeout_ns` of receive time (checked at every
//! datagram and by [`crate::Decoder::maintain`], so sets expire with no traffic too), or
//! discarded (oldest first) when the daemon-wide `max_pending_sets` or the pending share of the
//! memory budget is reached, or evicted with the decoder's least recently used state.
//!
//! The buffer only holds the sets; what they cost is charged to the budget by the decoder.

use std::collections::VecDeque;

use crate::prehash::SmallKeyMap;

use crate::scope::{Meta, ScopeKey};

#[derive(Debug)]
pub(crate) struct PendingSet {
    pub key: ScopeKey,
    pub template_id: u16,
    pub meta: Meta,
    pub data: Box<[u8]>,
    /// Bytes charged for it ([`crate::memory::pending_bytes`]).
    pub bytes: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Pending {
    sets: VecDeque<PendingSet>,
    /// Sets held per (scope, template id), so that a template learnt finds out in one lookup
    /// whether anything waits for it (a template storm must not scan the buffer per template).
    waiting: SmallKeyMap<(ScopeKey, u16), u32>,
}

impl Pending {
    pub(crate) fn len(&self) -> usize {
        self.sets.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Remove sets received more than `timeout_ns` before `now_ns`; returns how many and their
    /// bytes.
    pub(crate) fn expire(&mut self, now_ns: u64, timeout_ns: u64) -> (usize, usize) {
        // Sets are held in receive order, so the oldest are at the front.
        let (mut n, mut bytes) = (0, 0);
        while self
            .sets
            .front()
            .is_some_and(|p| now_ns.saturating_sub(p.meta.received_ns) > timeout_ns)
        {
            if let Some(b) = self.pop_oldest() {
                bytes += b;
                n += 1;
            }
        }
        (n, bytes)
    }

    /// Remove the oldest set; its bytes, or `None` when the buffer is empty.
    pub(crate) fn pop_oldest(&mut self) -> Option<usize> {
        let p = self.sets.pop_front()?;
        self.forget(&p);
        Some(p.bytes)
    }

    fn forget(&mut self, p: &PendingSet) {
        let k = (p.key, p.template_id);
        if let Some(n) = self.waiting.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                self.waiting.remove(&k);
            }
        }
    }

    pub(crate) fn push(&mut self, set: PendingSet) {
        *self.waiting.entry((set.key, set.template_id)).or_default() += 1;
        self.sets.push_back(set);
    }

    /// Remove the sets `old` says to evict; how many and their bytes.
    pub(crate) fn evict(&mut self, mut old: impl FnMut(&PendingSet) -> bool) -> (usize, usize) {
        let (mut n, mut bytes) = (0, 0);
        let waiting = &mut self.waiting;
        self.sets.retain(|p| {
            let evict = old(p);
            if evict {
                n += 1;
                bytes += p.bytes;
                let k = (p.key, p.template_id);
                if let Some(c) = waiting.get_mut(&k) {
                    *c -= 1;
                    if *c == 0 {
                        waiting.remove(&k);
                    }
                }
            }
            !evict
        });
        if self.sets.len() < self.sets.capacity() / 4 {
            self.sets.shrink_to_fit();
            self.waiting.shrink_to_fit();
        }
        (n, bytes)
    }

    /// (receive time, bytes) of every set received before `now`, eviction candidates.
    pub(crate) fn ages(&self, now: u64) -> impl Iterator<Item = (u64, usize)> + '_ {
        self.sets
            .iter()
            .filter(move |p| p.meta.received_ns < now)
            .map(|p| (p.meta.received_ns, p.bytes))
    }

    /// Every set's bytes, summed (what a decoder gives back when it goes).
    pub(crate) fn bytes(&self) -> usize {
        self.sets.iter().map(|p| p.bytes).sum()
    }

    /// Remove and return the sets waiting for template `id` of `key`.
    pub(crate) fn take(&mut self, key: &ScopeKey, id: u16) -> Vec<PendingSet> {
        let mut out = Vec::new();
        if self.waiting.remove(&(*key, id)).is_none() {
            return out;
        }
        let mut i = 0;
        while i < self.sets.len() {
            let hit = self
                .sets
                .get(i)
                .is_some_and(|p| p.key == *key && p.template_id == id);
            if hit {
                if let Some(p) = self.sets.remove(i) {
                    out.push(p);
                }
            } else {
                i += 1;
            }
        }
        out
    }
}
