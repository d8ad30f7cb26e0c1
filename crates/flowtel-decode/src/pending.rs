//! The bounded buffer of data sets waiting for a template that has not arrived yet.
//!
//! A data set whose template is unknown after the whole datagram has been read (so a
//! template later in the same datagram is always used first) is copied here with what is
//! needed to decode it later. It is released when its template arrives, discarded as
//! expired when it waited longer than `pending_timeout_ns` of receive time, or discarded
//! (oldest first) when `max_pending_sets` is reached.

use std::collections::VecDeque;

use crate::scope::{Meta, ScopeKey};

#[derive(Debug)]
pub(crate) struct PendingSet {
    pub key: ScopeKey,
    pub template_id: u16,
    pub meta: Meta,
    pub data: Box<[u8]>,
}

#[derive(Debug, Default)]
pub(crate) struct Pending {
    sets: VecDeque<PendingSet>,
}

impl Pending {
    pub(crate) fn len(&self) -> usize {
        self.sets.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Drop sets received more than `timeout_ns` before `now_ns`; returns how many.
    pub(crate) fn expire(&mut self, now_ns: u64, timeout_ns: u64) -> u64 {
        // Sets are held in receive order, so the oldest are at the front.
        let mut n = 0;
        while self
            .sets
            .front()
            .is_some_and(|p| now_ns.saturating_sub(p.meta.received_ns) > timeout_ns)
        {
            self.sets.pop_front();
            n += 1;
        }
        n
    }

    /// Hold `set`, dropping the oldest sets to stay within `max`; returns how many were
    /// dropped. `max == 0` is handled by the caller (nothing is held).
    pub(crate) fn push(&mut self, set: PendingSet, max: usize) -> u64 {
        let mut dropped = 0;
        while self.sets.len() >= max && self.sets.pop_front().is_some() {
            dropped += 1;
        }
        self.sets.push_back(set);
        dropped
    }

    /// Remove and return the sets waiting for template `id` of `key`.
    pub(crate) fn take(&mut self, key: &ScopeKey, id: u16) -> Vec<PendingSet> {
        let mut out = Vec::new();
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
