//! The bounds on decoder state that hold over every decoder of a process.
//!
//! A daemon runs one [`crate::Decoder`] per receive worker, each owning its state, so that no
//! lock is taken per datagram. What bounds their state together is one [`Budget`] they all
//! share: a few atomic counters each decoder charges when it keeps something and credits when it
//! lets it go (memory in bytes, template scopes, pending data sets and their bytes). A charge
//! is a compare-and-swap that never takes the counter past its limit, so the limits hold at
//! every instant, not just on average.
//!
//! When the memory is full, a decoder makes room by evicting its own least recently used state
//! (templates, options data, pending sets, oldest first). A decoder cannot touch another's
//! state, so when it has nothing old enough to evict it asks for room ([`Budget::reclaim`]):
//! every decoder holding more than its fair share (the budget divided by the decoders) evicts
//! down to that share at its next datagram or [`crate::Decoder::maintain`] call.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::DecoderConfig;

/// Daemon-wide limits and usage of decoder state, shared (in an `Arc`) by every decoder that
/// must stay within them together. Create one with [`Budget::new`] and pass it to
/// [`crate::Decoder::with_budget`].
#[derive(Debug)]
pub struct Budget {
    memory_limit: usize,
    memory: AtomicUsize,
    pending_bytes_limit: usize,
    pending_bytes: AtomicUsize,
    pending_sets_limit: usize,
    pending_sets: AtomicUsize,
    scopes_limit: usize,
    scopes: AtomicUsize,
    decoders: AtomicUsize,
    /// Bumped by a decoder that needs room it cannot make itself.
    reclaim: AtomicU64,
}

/// The share of the memory budget pending data sets may take: the rest stays for templates and
/// options data, so a flood of data sets for unknown templates cannot push out the templates of
/// the exporters that work.
pub const PENDING_SHARE_DIVISOR: usize = 4;

impl Budget {
    /// The limits of `config`: `memory_budget_bytes` (a quarter of it at most for pending
    /// data), `max_pending_sets` and `max_exporters` (template scopes).
    pub fn new(config: &DecoderConfig) -> Budget {
        Budget {
            memory_limit: config.memory_budget_bytes,
            memory: AtomicUsize::new(0),
            pending_bytes_limit: config.memory_budget_bytes / PENDING_SHARE_DIVISOR,
            pending_bytes: AtomicUsize::new(0),
            pending_sets_limit: config.max_pending_sets,
            pending_sets: AtomicUsize::new(0),
            scopes_limit: config.max_exporters,
            scopes: AtomicUsize::new(0),
            decoders: AtomicUsize::new(0),
            reclaim: AtomicU64::new(0),
        }
    }

    /// Bytes of decoder state held now, over every decoder.
    pub fn memory_bytes(&self) -> usize {
        self.memory.load(Ordering::Relaxed)
    }

    /// The memory budget in bytes.
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// Bytes of pending data sets held now (included in [`Budget::memory_bytes`]).
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes.load(Ordering::Relaxed)
    }

    /// Data sets waiting for their template now, over every decoder.
    pub fn pending_sets(&self) -> usize {
        self.pending_sets.load(Ordering::Relaxed)
    }

    /// Template scopes (exporter, version, domain) known now, over every decoder.
    pub fn scopes(&self) -> usize {
        self.scopes.load(Ordering::Relaxed)
    }

    /// How many times a decoder asked the others for room; a change tells a caller driving
    /// idle decoders (the daemon's workers) to run [`crate::Decoder::maintain`] on them.
    pub fn reclaim_requests(&self) -> u64 {
        self.reclaim.load(Ordering::Relaxed)
    }

    /// The bytes each decoder may keep when others need room.
    pub(crate) fn fair_share(&self) -> usize {
        self.memory_limit / self.decoders.load(Ordering::Relaxed).max(1)
    }

    pub(crate) fn join(&self) {
        self.decoders.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self) {
        self.decoders.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn reclaim(&self) {
        self.reclaim.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn charge_memory(&self, bytes: usize) -> bool {
        reserve(&self.memory, bytes, self.memory_limit)
    }

    pub(crate) fn credit_memory(&self, bytes: usize) {
        self.memory.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub(crate) fn charge_pending(&self, bytes: usize) -> PendingCharge {
        if !reserve(&self.pending_sets, 1, self.pending_sets_limit) {
            return PendingCharge::Sets;
        }
        if !reserve(&self.pending_bytes, bytes, self.pending_bytes_limit) {
            self.pending_sets.fetch_sub(1, Ordering::Relaxed);
            return PendingCharge::Bytes;
        }
        PendingCharge::Ok
    }

    /// `sets` pending sets of `bytes` in all went.
    pub(crate) fn credit_pending(&self, sets: usize, bytes: usize) {
        self.pending_sets.fetch_sub(sets, Ordering::Relaxed);
        self.pending_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub(crate) fn charge_scope(&self) -> bool {
        reserve(&self.scopes, 1, self.scopes_limit)
    }

    pub(crate) fn credit_scope(&self) {
        self.scopes.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn scopes_full(&self) -> bool {
        self.scopes() >= self.scopes_limit
    }
}

/// Why a pending data set could not be counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PendingCharge {
    Ok,
    /// `max_pending_sets` sets are held.
    Sets,
    /// Pending sets hold their share of the memory budget.
    Bytes,
}

/// Add `n` to `counter` unless that takes it past `limit`.
fn reserve(counter: &AtomicUsize, n: usize, limit: usize) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
            c.checked_add(n).filter(|&v| v <= limit)
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_never_pass_a_limit_and_credits_give_room_back() {
        let b = Budget::new(&DecoderConfig {
            memory_budget_bytes: 1000,
            max_pending_sets: 2,
            max_exporters: 1,
            ..DecoderConfig::default()
        });
        assert!(b.charge_memory(600));
        assert!(!b.charge_memory(401));
        assert!(b.charge_memory(400));
        assert_eq!(b.memory_bytes(), 1000);
        b.credit_memory(1000);
        assert_eq!(b.charge_pending(200), PendingCharge::Ok);
        assert_eq!(b.charge_pending(51), PendingCharge::Bytes);
        assert_eq!(b.pending_sets(), 1);
        assert_eq!(b.charge_pending(50), PendingCharge::Ok);
        assert_eq!(b.charge_pending(0), PendingCharge::Sets);
        b.credit_pending(1, 200);
        assert_eq!((b.pending_sets(), b.pending_bytes()), (1, 50));
        assert!(b.charge_scope() && !b.charge_scope());
        b.credit_scope();
        assert!(!b.scopes_full());
    }

    #[test]
    fn a_limit_holds_when_decoders_charge_at_once() {
        let b = std::sync::Arc::new(Budget::new(&DecoderConfig {
            memory_budget_bytes: 10_000,
            ..DecoderConfig::default()
        }));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = std::sync::Arc::clone(&b);
                std::thread::spawn(move || (0..10_000).filter(|_| b.charge_memory(3)).count())
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(granted, 3_333);
        assert_eq!(b.memory_bytes(), 9_999);
    }
}
