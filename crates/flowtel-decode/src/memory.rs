//! What decoder state costs in memory, and how a decoder stays within its [`Budget`].
//!
//! Every piece of state an exporter makes a decoder keep is charged to the shared budget
//! before it is kept, at an estimate of the heap it takes (`size_of` of each allocation, the
//! allocator's per-block overhead, hash table slots at their average load), and credited when
//! it goes. `tests/memory.rs` measures the estimates against the process's resident memory.
//!
//! When a charge does not fit, the decoder evicts its least recently used state: templates
//! (last learnt, refreshed or used), the options state of a scope (sampling rates, system init
//! time), the names of an (exporter, domain) (interfaces, VRFs, applications) and pending data
//! sets (by receive time), oldest first, at least a sixteenth of its state at a time so the
//! scan that finds them is paid rarely. State used by the datagram being decoded is never
//! evicted for it. An exporter that still sends re-learns an evicted template at its next
//! template refresh (RFC 7011 §8.4 / RFC 3954 §5.2: templates are re-sent periodically).

use std::mem::size_of;
use std::sync::Arc;

use crate::Decoder;
use crate::cost::{MAP_BASE, block, map_entry};
use crate::options::Names;
use crate::pending::PendingSet;
use crate::scope::{NamesKey, Scope, ScopeKey, TemplateSlot};
use crate::stats::StateKind;
use crate::template::{FieldSpec, FixedOp, Op, Template};

/// A template scope: its entry in the decoder's scope table and its (empty) template table.
pub(crate) const SCOPE_BYTES: usize = map_entry::<ScopeKey, Scope>() + MAP_BASE;

/// The names of one (exporter, domain): the entry and four empty tables.
pub(crate) const NAMES_BYTES: usize = map_entry::<NamesKey, Names>() + 4 * MAP_BASE;

/// A compiled template in its scope's table.
pub(crate) fn template_bytes(t: &Template) -> usize {
    map_entry::<u16, TemplateSlot>()
        + block::<(usize, usize, Template)>(1)
        + block::<FieldSpec>(t.fields.len())
        + block::<Op>(t.ops.len())
        + t.fixed.as_ref().map_or(0, |f| block::<FixedOp>(f.len()))
        + block::<(Arc<str>, crate::FieldKind)>(t.custom.len())
        + block::<u8>(t.wire.len())
}

/// A pending data set of `len` bytes: its slot in the queue (which doubles as it grows, so
/// 1.6 slots per set on average, as for a map), its count in the index of waiting templates,
/// and a copy of the set.
pub(crate) const fn pending_bytes(len: usize) -> usize {
    size_of::<PendingSet>() * 8 / 5 + map_entry::<(ScopeKey, u16), u32>() + block::<u8>(len)
}

impl Decoder {
    /// Count `bytes` of new state against the budget, evicting this decoder's least recently
    /// used state (used before `now`) to make room. False when there is no room: the caller
    /// keeps nothing and counts the refusal.
    pub(crate) fn charge(&mut self, bytes: usize, now: u64) -> bool {
        let mut asked = false;
        loop {
            if self.budget.charge_memory(bytes) {
                self.memory += bytes;
                return true;
            }
            // Below its fair share, a decoder also asks the others to give room back.
            if !asked && self.memory < self.budget.fair_share() {
                self.ask_for_room();
                asked = true;
            }
            let want = bytes.max(self.memory / 16);
            if self.evict(want, now) == 0 {
                if !asked {
                    self.ask_for_room();
                }
                return false;
            }
        }
    }

    fn ask_for_room(&mut self) {
        self.budget.reclaim();
        self.reclaim_asked = true;
        self.reclaim_seen = self.budget.reclaim_requests();
    }

    /// Give `bytes` back to the budget.
    pub(crate) fn credit(&mut self, bytes: usize) {
        let bytes = bytes.min(self.memory);
        self.memory -= bytes;
        self.budget.credit_memory(bytes);
    }

    /// Answer other decoders' requests for room: above its fair share, evict down to it.
    pub(crate) fn answer_reclaim(&mut self, now: u64) {
        let requests = self.budget.reclaim_requests();
        if requests == self.reclaim_seen {
            return;
        }
        self.reclaim_seen = requests;
        let share = self.budget.fair_share();
        if self.memory > share {
            self.evict(self.memory - share, now);
        }
    }

    /// Evict the least recently used state used before `now`, at least `want` bytes if there is
    /// that much; returns the bytes freed.
    pub(crate) fn evict(&mut self, want: usize, now: u64) -> usize {
        let Some(cutoff) = self.eviction_cutoff(want, now) else {
            return 0;
        };
        let old = |t: u64| t <= cutoff && t < now;
        let mut freed = 0usize;
        let (mut templates, mut options, mut names, mut pending) = (0u64, 0u64, 0u64, 0u64);
        let mut scopes_removed = 0usize;
        self.scopes.retain(|_, scope| {
            let before = scope.templates.len();
            scope.templates.retain(|_, t| {
                let keep = !old(t.last_used);
                if !keep {
                    freed += t.bytes;
                }
                keep
            });
            templates += (before - scope.templates.len()) as u64;
            if before > 8 && scope.templates.len() < scope.templates.capacity() / 4 {
                scope.templates.shrink_to_fit();
            }
            if scope.options_bytes > 0 && old(scope.options_used) {
                freed += scope.options_bytes;
                scope.options_bytes = 0;
                scope.options = Default::default();
                options += 1;
            }
            let remove =
                scope.templates.is_empty() && scope.options_bytes == 0 && scope.last_used < now;
            if remove {
                freed += SCOPE_BYTES;
                scopes_removed += 1;
            }
            !remove
        });
        self.names.retain(|_, n| {
            let keep = !old(n.last_used);
            if !keep {
                freed += n.bytes + NAMES_BYTES;
                names += 1;
            }
            keep
        });
        let (sets, bytes) = self.pending.evict(|p| old(p.meta.received_ns));
        self.budget.credit_pending(sets, bytes);
        pending += sets as u64;
        freed += bytes;
        for _ in 0..scopes_removed {
            self.budget.credit_scope();
        }
        if self.scopes.len() < self.scopes.capacity() / 4 {
            self.scopes.shrink_to_fit();
        }
        if self.names.len() < self.names.capacity() / 4 {
            self.names.shrink_to_fit();
        }
        self.credit(freed);
        self.stats.count_evictions(StateKind::Template, templates);
        self.stats
            .count_evictions(StateKind::Options, options + names);
        self.stats.count_evictions(StateKind::Pending, pending);
        freed
    }

    /// The last-use time at and before which evicting frees at least `want` bytes (or
    /// everything used before `now` when that is less); `None` when nothing was used before
    /// `now`.
    fn eviction_cutoff(&mut self, want: usize, now: u64) -> Option<u64> {
        let mut c = std::mem::take(&mut self.evict_scratch);
        c.clear();
        for scope in self.scopes.values() {
            c.extend(
                scope
                    .templates
                    .values()
                    .filter(|t| t.last_used < now)
                    .map(|t| (t.last_used, t.bytes)),
            );
            if scope.options_bytes > 0 && scope.options_used < now {
                c.push((scope.options_used, scope.options_bytes));
            }
        }
        c.extend(
            self.names
                .values()
                .filter(|n| n.last_used < now)
                .map(|n| (n.last_used, n.bytes + NAMES_BYTES)),
        );
        c.extend(self.pending.ages(now));
        let cutoff = select_cutoff(&mut c, want);
        self.evict_scratch = c;
        cutoff
    }
}

/// The smallest time `t` such that the candidates `(time, bytes)` at or before `t` add up to
/// `want` bytes (the latest time when they all add up to less); `None` when there are none.
/// Expected O(n): a selection per round, usually one round.
fn select_cutoff(c: &mut [(u64, usize)], want: usize) -> Option<u64> {
    let mut lo = 0usize;
    let mut got = 0usize;
    let mut cutoff = None;
    while lo < c.len() && got < want {
        let rest = c.get_mut(lo..)?;
        let total: usize = rest.iter().map(|x| x.1).sum();
        let need = want - got;
        if total <= need {
            return rest.iter().map(|x| x.0).max().max(cutoff);
        }
        // Estimate how many of the oldest make `need`, assuming average sizes.
        let k = ((need as u128 * rest.len() as u128).div_ceil(total.max(1) as u128) as usize)
            .clamp(1, rest.len())
            - 1;
        rest.select_nth_unstable_by_key(k, |x| x.0);
        let (head, _) = rest.split_at(k + 1);
        got += head.iter().map(|x| x.1).sum::<usize>();
        cutoff = head.iter().map(|x| x.0).max().max(cutoff);
        lo += k + 1;
    }
    cutoff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_frees_at_least_what_is_wanted_oldest_first() {
        let mut c: Vec<(u64, usize)> = (0..1000u64)
            .rev()
            .map(|t| (t, 10 + (t % 7) as usize))
            .collect();
        for want in [1, 10, 500, 5_000, 12_000] {
            let cutoff = select_cutoff(&mut c.clone(), want).unwrap();
            let freed: usize = c.iter().filter(|x| x.0 <= cutoff).map(|x| x.1).sum();
            assert!(
                freed >= want.min(c.iter().map(|x| x.1).sum()),
                "{want}: {freed}"
            );
            // Close to the oldest that make it: the selection estimates by average size.
            assert!(freed <= want * 5 / 4 + 32, "{want}: {freed}");
        }
        assert_eq!(select_cutoff(&mut [], 5), None);
        c.truncate(3);
        assert_eq!(select_cutoff(&mut c, 1_000_000), Some(999));
    }
}
