//! The cost model of decoder state: what one heap block and one hash map entry take, and the
//! sizes of the options state built from them. `memory` charges and evicts with these;
//! `options` prices the names and rates it keeps.

use std::mem::size_of;
use std::sync::Arc;

/// Bytes the allocator adds to each heap block (glibc malloc: an 8-byte size word, blocks
/// rounded to 16 bytes).
const ALLOC_OVERHEAD: usize = 16;

/// One hash map entry: the (key, value) pair and a control byte per slot, in a table kept
/// between 7/16 and 7/8 full (hashbrown doubles it when it fills), so 1.14 to 2.29 slots per
/// entry: 1.6 on average.
pub(crate) const fn map_entry<K, V>() -> usize {
    (size_of::<(K, V)>() + 1) * 8 / 5
}

/// A heap block of `n` values of `T` (nothing for `n == 0`: no allocation).
pub(crate) const fn block<T>(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        n * size_of::<T>() + ALLOC_OVERHEAD
    }
}

/// A hash map's own allocation besides its entries (the control group's tail and the block).
pub(crate) const MAP_BASE: usize = 16 + ALLOC_OVERHEAD;

/// A sampling rate of a scope's options state.
pub(crate) const SAMPLING_ENTRY_BYTES: usize = map_entry::<Option<u64>, u32>();

/// A name of `len` bytes kept for an interface or VRF (`Box<str>` keyed by `u32`).
pub(crate) const fn name_bytes(len: usize) -> usize {
    map_entry::<u32, Box<str>>() + block::<u8>(len)
}

/// An application name of `len` bytes (`Arc<str>` keyed by `u64`: two counters in its block).
pub(crate) const fn app_name_bytes(len: usize) -> usize {
    map_entry::<u64, Arc<str>>() + block::<u8>(len + 16)
}
