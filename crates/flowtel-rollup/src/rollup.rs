//! The rollup engine: windows, keyed sums, heavy-hitter eviction, top-K and overflow.

use std::cmp::Ordering;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use flowtel_decode::{CustomValue, Firewall, FlowDirection, FlowRecord, Nat, RecordFields};
use foldhash::fast::SeedableRandomState;

use crate::config::{
    ConfigError, DEFAULT_DIMENSIONS, Dimension, Direction, Profile, RollupConfig, ValueKind,
};
use crate::enrich::{Country, Enriched, address_country};
use crate::geo::CountryDb;
use crate::index::KeyIndex;
use crate::services;
use flowtel_series::{AttrValue, Point, PointKind, WindowBatch};

/// The attribute marking the overflow series (OpenTelemetry SDK cardinality-limit convention).
pub const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";

/// A rollup's configuration compiled for the hot path; shared by its windows.
#[derive(Debug)]
struct Def {
    config: RollupConfig,
    name: Arc<str>,
    metric: Arc<str>,
    unit: Arc<str>,
    attr_names: Vec<Arc<str>>,
    overflow_name: Arc<str>,
    interval_ns: u64,
    /// The dimensions are the default set ([`DEFAULT_DIMENSIONS`]): keys are encoded by
    /// [`encode_default_key`], without a dispatch per dimension.
    default_dimensions: bool,
    /// The source (destination) country is a dimension together with the source
    /// (destination) address: it is a function of the address, so it is left out of the key
    /// and looked up only for the series emitted (see [`WindowAggregate::finish`]).
    src_country_from_addr: bool,
    dst_country_from_addr: bool,
    /// [`key_hasher`], copied here so that a push does not look it up.
    hasher: SeedableRandomState,
    /// The buffers of this rollup instance's last finished window, for its next window (see
    /// [`Buffers`]).
    spare: Mutex<Option<Buffers>>,
}

impl Def {
    /// Whether country `d` is looked up at finish rather than kept in the key.
    fn country_from_addr(&self, d: &Dimension) -> bool {
        match d {
            Dimension::SrcCountry => self.src_country_from_addr,
            Dimension::DstCountry => self.dst_country_from_addr,
            _ => false,
        }
    }
}

/// Cumulative counters of one rollup (sum them over workers with [`RollupStats::merge`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupStats {
    /// Records pushed.
    pub records_in: u64,
    /// Records not counted because of the rollup's direction filter.
    pub records_filtered: u64,
    /// Records older than the oldest window still open, folded into it (see crate docs).
    pub late_records: u64,
    /// Sampling-corrected value pushed (saturating).
    pub value_in: u64,
    /// Keys evicted by the heavy-hitter compaction (counted when their window is finished);
    /// their value went to the overflow series.
    pub keys_evicted: u64,
    /// Windows whose top-K choice is approximate because keys were evicted.
    pub windows_approximated: u64,
    /// Windows emitted.
    pub windows_emitted: u64,
    /// Points emitted, overflow points included.
    pub points_emitted: u64,
    /// Overflow points emitted.
    pub overflow_points: u64,
    /// Tracked keys that were summed into an overflow point instead of their own series.
    pub keys_overflowed: u64,
    /// GeoIP country lookups that failed while labelling emitted series (corrupt database);
    /// the country is left empty.
    pub geo_lookup_errors: u64,
}

impl RollupStats {
    pub fn merge(&mut self, o: &RollupStats) {
        self.records_in += o.records_in;
        self.records_filtered += o.records_filtered;
        self.late_records += o.late_records;
        self.value_in = self.value_in.saturating_add(o.value_in);
        self.keys_evicted += o.keys_evicted;
        self.windows_approximated += o.windows_approximated;
        self.windows_emitted += o.windows_emitted;
        self.points_emitted += o.points_emitted;
        self.overflow_points += o.overflow_points;
        self.keys_overflowed += o.keys_overflowed;
        self.geo_lookup_errors += o.geo_lookup_errors;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// Exact value pushed under this key since it was (last) inserted.
    value: u64,
    /// Upper bound on the value this key had before it was inserted (evicted earlier or
    /// pushed to another worker's table): the Space-Saving error term.
    err: u64,
}

impl Slot {
    fn estimate(&self) -> u64 {
        self.value.saturating_add(self.err)
    }
}

/// One tracked key: its sums and its bytes, in the entry itself when they fit
/// ([`INLINE_KEY`] bytes: a default key of an IPv4 flow from a device named by its address
/// or by a name of up to 16 bytes) and in the aggregate's arena otherwise. 64 bytes, aligned
/// to 64, so an entry is exactly one cache line: a lookup of an inline key reads that one line
/// for its sums and its bytes, the one the batch's reads ahead loaded
/// (`WindowAggregate::read_ahead`). With every key in the arena (32-byte entries), a lookup in
/// a window larger than the caches waited on the entry and then, at an address only the entry
/// gives, on the key.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Entry {
    /// The key's hash, kept so the table grows without reading keys back.
    hash: u64,
    slot: Slot,
    /// The key's length.
    len: u32,
    /// The key's bytes when it is at most [`INLINE_KEY`] bytes long; otherwise its first
    /// eight bytes are the key's offset in the arena (`arena[off..off + len]`).
    bytes: [u8; INLINE_KEY],
}

/// Key bytes an [`Entry`] holds itself: what is left of its cache line.
const INLINE_KEY: usize = 36;

const _: () = assert!(std::mem::size_of::<Entry>() == 64);

impl Entry {
    /// An entry without its key yet ([`Entry::store`] puts it in).
    fn empty(hash: u64, slot: Slot) -> Entry {
        Entry {
            hash,
            slot,
            len: 0,
            bytes: [0; INLINE_KEY],
        }
    }

    /// An entry for `key`, whose bytes go into the entry or, when longer than
    /// [`INLINE_KEY`], at the end of `arena`.
    #[cfg(test)]
    fn new(hash: u64, key: &[u8], arena: &mut Vec<u8>, slot: Slot) -> Entry {
        let mut e = Entry::empty(hash, slot);
        e.store(key, arena);
        e
    }

    /// Put `key`'s bytes in the entry, or at the end of `arena` if they do not fit.
    fn store(&mut self, key: &[u8], arena: &mut Vec<u8>) {
        match self.bytes.get_mut(..key.len()) {
            Some(inline) => {
                inline.copy_from_slice(key);
                self.len = key.len() as u32;
            }
            None => {
                self.place(arena.len(), key.len());
                arena.extend_from_slice(key);
            }
        }
    }

    /// A key longer than [`INLINE_KEY`] at `off` in the arena. (Keys are at most a few
    /// kilobytes: names are cut at 255 bytes.)
    fn place(&mut self, off: usize, len: usize) {
        self.len = u32::try_from(len).unwrap_or(u32::MAX);
        if let Some(at) = self.bytes.first_chunk_mut::<8>() {
            *at = (off as u64).to_le_bytes();
        }
    }

    /// The arena offset of a key longer than [`INLINE_KEY`].
    #[inline(always)]
    fn off(&self) -> usize {
        self.bytes
            .first_chunk::<8>()
            .map_or(0, |at| u64::from_le_bytes(*at) as usize)
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.len as usize
    }

    /// The key is in the entry, not in the arena.
    #[inline(always)]
    fn is_inline(&self) -> bool {
        self.len() <= INLINE_KEY
    }
}

/// The key bytes of `e`: its own, or those in `arena` (empty if `arena` is not the one `e`
/// was stored in, which is never the case).
#[inline(always)]
fn key_of<'a>(arena: &'a [u8], e: &'a Entry) -> &'a [u8] {
    if e.is_inline() {
        e.bytes.get(..e.len()).unwrap_or_default()
    } else {
        arena
            .get(e.off()..e.off().saturating_add(e.len()))
            .unwrap_or_default()
    }
}

/// The hash of `key`'s bytes. Written to the hasher as they are, without `hash_one`'s length
/// prefix: foldhash mixes a write's length into its state (a rotation by it), so keys of
/// different lengths still hash apart, and the prefix cost a multiply and another at the end.
#[inline]
fn key_hash(hasher: &SeedableRandomState, key: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(key);
    h.finish()
}

/// The hasher of every rollup's keys, which are hashed once per push: foldhash, seeded at
/// random once per process, so that the same key has the same hash in every worker's aggregate
/// (merging reuses it) and exporters cannot send flows whose keys collide (the keys are
/// addresses and ports from the wire).
fn key_hasher() -> SeedableRandomState {
    static STATE: OnceLock<SeedableRandomState> = OnceLock::new();
    STATE.get_or_init(SeedableRandomState::random).clone()
}

/// Rank order: higher estimate first, then higher exact value, then key bytes (total order,
/// so selection is deterministic whatever the hash table's iteration order).
fn rank(arena: &[u8], a: &Entry, b: &Entry) -> Ordering {
    rank_by_sums(a, b).then_with(|| key_of(arena, a).cmp(key_of(arena, b)))
}

/// [`rank`] without its last step, the key bytes.
fn rank_by_sums(a: &Entry, b: &Entry) -> Ordering {
    b.slot
        .estimate()
        .cmp(&a.slot.estimate())
        .then(b.slot.value.cmp(&a.slot.value))
}

/// Put `entries[i]` in `index`. `entries` never holds more than twice `max_keys` (a merge,
/// before it compacts), which validation keeps within `u32`.
#[inline]
fn index_entry(index: &mut KeyIndex, entries: &[Entry], i: usize) {
    let at = u32::try_from(i).ok().filter(|at| *at < u32::MAX);
    let (Some(e), Some(at)) = (entries.get(i), at) else {
        return;
    };
    let rehash = |i: u32| entries.get(i as usize).map_or(0, |e| e.hash);
    index.insert_unique(e.hash, at, rehash);
}

/// Put the `keep` best-ranked entries ([`rank`]) first, in no particular order.
///
/// The same set as one selection by [`rank`], for fewer reads of the keys: a selection by
/// estimate and value alone finds the sums of the `keep`-th entry; the entries with better
/// sums are kept; only those tied with it are ordered by their key bytes (read at random in
/// the arena), to fill the places left. Many keys tie on their sums when eviction runs
/// (equal sampled frame sizes times the same rate), and comparing their bytes in one
/// selection over every entry was most of compaction's time.
fn select_best(entries: &mut [Entry], arena: &[u8], keep: usize) {
    if keep == 0 || keep >= entries.len() {
        return;
    }
    entries.select_nth_unstable_by(keep - 1, rank_by_sums);
    let Some(boundary) = entries.get(keep - 1).copied() else {
        return;
    };
    let tied = |e: &Entry| rank_by_sums(e, &boundary) == Ordering::Equal;
    let (kept, rest) = entries.split_at_mut(keep);
    // Kept entries are better than the boundary or tied with it: the better ones first.
    let better = partition(kept, |e| !tied(e));
    // The others are worse or tied: the tied ones first.
    let tied_after = partition(rest, tied);
    let group = entries
        .get_mut(better..keep + tied_after)
        .unwrap_or_default();
    let need = keep - better;
    // `need` is at least 1: the boundary entry itself is kept and tied.
    if need > 0 && need < group.len() {
        group.select_nth_unstable_by(need - 1, |a, b| rank(arena, a, b));
    }
}

/// Move the entries for which `first` holds to the front of `v`; returns how many there are.
fn partition(v: &mut [Entry], first: impl Fn(&Entry) -> bool) -> usize {
    let mut n = 0;
    for i in 0..v.len() {
        if v.get(i).is_some_and(&first) {
            v.swap(n, i);
            n += 1;
        }
    }
    n
}

/// The keyed sums of one window of one rollup instance. Mergeable with the same window of
/// other instances of the same rollup (per-core workers) before [`WindowAggregate::finish`]
/// selects the top-K.
///
/// Entries live back to back in one vector, in the order their keys came, each holding its
/// key's bytes when they fit (`INLINE_KEY`, 36 bytes); longer keys live back to back in one byte
/// arena. The index (`KeyIndex`, `index.rs`) holds each entry's position under its hash. A
/// new key costs no allocation of its own, and its entry is appended where the previous one
/// was written: with the entries themselves in a hash table's buckets (megabytes, at random),
/// every new key cost an entry's write to memory far from the cache. The index is 2 MiB when
/// full (default `max_keys`, at most half its slots used), and a lookup waits on its slot,
/// then its entry (and a long key's bytes), hence the batches ([`BATCH`]) and the reads ahead
/// (`WindowAggregate::read_ahead`). Compaction rebuilds the arena and the index with the kept
/// keys.
#[derive(Debug)]
pub struct WindowAggregate {
    def: Arc<Def>,
    start_ns: u64,
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// Index in `entries` of each key, by the key's hash.
    index: KeyIndex,
    /// Largest estimate evicted so far: the error bound a newly inserted key inherits.
    floor: u64,
    /// Exact sampling-corrected total of the window (saturating).
    total: u64,
    keys_evicted: u64,
    /// The country database the emitted series' countries are looked up in.
    country_db: Option<Arc<CountryDb>>,
}

/// A window's allocations, handed from a finished window to the next window of the same
/// rollup instance (through [`Def`]: windows are finished, and dropped, by whoever merges the
/// workers' windows, on another thread).
///
/// A window of the default `max_keys` is about 8.4 MB (6.4 MB of entries, a 2 MiB index).
/// Allocated afresh for each window, its pages were faulted in and zeroed by the kernel again
/// every window: 5 100–8 100 page faults in 20 s of the load test at 150 000 records/s with
/// one worker, once its first windows had filled (in a 10 s run, 6 % of the daemon's CPU
/// samples were page faults). Reused, they stay mapped: 13–229 faults in the same 20 s, and a
/// peak RSS of 33–38 MiB instead of 38–54. (A compaction's new arena needs no such care: the
/// allocator hands it the memory the last one freed.) A rollup instance keeps one spare set,
/// the largest recent window's (a window merged from several workers' holds up to twice
/// `max_keys` before it compacts), so at rest it holds two windows' memory, as it already did
/// while one window was being finished and the next one filled.
#[derive(Debug)]
struct Buffers {
    entries: Vec<Entry>,
    index: KeyIndex,
    arena: Vec<u8>,
}

/// Why two aggregates could not be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("aggregates of different rollups ({0} and {1})")]
    Rollup(String, String),
    #[error("aggregates of different windows ({0} and {1})")]
    Window(u64, u64),
}

impl WindowAggregate {
    /// An empty window sized for `hint` (the previous window's size), so a steady stream of
    /// keys does not regrow and rehash the table from empty every window.
    fn new(
        def: Arc<Def>,
        start_ns: u64,
        hint: SizeHint,
        country_db: Option<Arc<CountryDb>>,
    ) -> Self {
        let keys = hint.keys.min(def.config.max_keys);
        let spare = def.spare.lock().ok().and_then(|mut s| s.take());
        let Buffers {
            mut entries,
            index,
            mut arena,
        } = spare.unwrap_or_else(|| Buffers {
            entries: Vec::new(),
            index: KeyIndex::with_capacity(0),
            arena: Vec::new(),
        });
        // Both were emptied when the window that had them was dropped.
        entries.reserve(keys);
        arena.reserve(hint.arena_bytes);
        WindowAggregate {
            start_ns,
            arena,
            entries,
            index: index.reuse(keys),
            def,
            floor: 0,
            total: 0,
            keys_evicted: 0,
            country_db,
        }
    }

    /// The rollup's name.
    pub fn rollup(&self) -> &str {
        &self.def.name
    }

    /// Window start, Unix nanoseconds.
    pub fn start_time_unix_nano(&self) -> u64 {
        self.start_ns
    }

    /// Window end, Unix nanoseconds.
    pub fn end_time_unix_nano(&self) -> u64 {
        self.start_ns.saturating_add(self.def.interval_ns)
    }

    /// Keys held.
    pub fn keys(&self) -> usize {
        self.entries.len()
    }

    /// Exact sampling-corrected total of the window.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The index in `entries` of `key`, whose hash is `hash`.
    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let (arena, entries) = (&self.arena, &self.entries);
        // The stored hash is compared first: a slot whose 32-bit tag matches another key's
        // then costs no read of the arena.
        let same = |i: usize| {
            entries
                .get(i)
                .is_some_and(|e| e.hash == hash && key_of(arena, e) == key)
        };
        self.index.find(hash, same)
    }

    /// Add a batch of keys (`keys` back to back, ending where each `Pending` says) in order.
    /// Once the window is larger than the core's caches (`PREFETCH_FROM_KEYS`), the data
    /// the adds will touch is read ahead first (`WindowAggregate::read_ahead`).
    fn add_batch(&mut self, keys: &[u8], pending: &[Pending]) {
        if self.entries.len() >= PREFETCH_FROM_KEYS {
            self.read_ahead(pending);
        }
        let mut from = 0;
        for p in pending {
            let key = keys.get(from..p.end).unwrap_or_default();
            self.add(key, p.hash, p.value);
            from = p.end;
        }
    }

    /// Read the batch's index slots back to back, then the entries and key bytes those slots
    /// point at. Each read is independent of the others in its pass, so the processor has
    /// the whole batch's cache misses under way at once, and the adds then find their data
    /// in the cache; one add at a time waited on its slot, then its entry, then its key, one
    /// after the other. The values read are folded into one word passed to `black_box`, so
    /// the reads are not optimised away. (A prefetch instruction would not hold up
    /// retirement, but needs `unsafe`, which the workspace denies.)
    fn read_ahead(&self, pending: &[Pending]) {
        let mut seen = 0u64;
        for p in pending {
            seen ^= self.index.home(p.hash);
        }
        for p in pending {
            let candidate = self.index.candidate(p.hash);
            if let Some(e) = candidate.and_then(|i| self.entries.get(i)) {
                seen ^= e.slot.value;
                if !e.is_inline() {
                    // The key's first and last bytes: a key may straddle two cache lines.
                    let first = self.arena.get(e.off()).copied().unwrap_or_default();
                    let last = self.arena.get(e.off() + e.len().saturating_sub(1));
                    seen ^= u64::from(first) ^ u64::from(last.copied().unwrap_or(0));
                }
            }
        }
        std::hint::black_box(seen);
    }

    fn add(&mut self, key: &[u8], hash: u64, value: u64) {
        self.total = self.total.saturating_add(value);
        if let Some(e) = self.find(hash, key).and_then(|i| self.entries.get_mut(i)) {
            e.slot.value = e.slot.value.saturating_add(value);
            return;
        }
        if self.entries.len() >= self.def.config.max_keys {
            self.compact();
        }
        let slot = Slot {
            value,
            err: self.floor,
        };
        self.insert_new(hash, key, slot);
    }

    /// Insert a key known to be absent.
    fn insert_new(&mut self, hash: u64, key: &[u8], slot: Slot) {
        // The key is copied into the entry where it stays. Into an entry made on the stack,
        // the copy's stores (of the key's length) were still in flight when the entry was
        // moved into place in 16-byte loads, which then waited for them to reach the cache.
        self.entries.push(Entry::empty(hash, slot));
        if let Some(e) = self.entries.last_mut() {
            e.store(key, &mut self.arena);
        }
        self.index(self.entries.len() - 1);
    }

    /// Put the entry at `i` in the hash table.
    fn index(&mut self, i: usize) {
        index_entry(&mut self.index, &self.entries, i);
    }

    /// Batched Space-Saving: keep the better-ranked half of the keys, evict the rest. The
    /// evicted values stay in `total` (and so in the overflow series); new keys inherit the
    /// largest evicted estimate as their error bound. Amortised O(1) per insert.
    fn compact(&mut self) {
        let keep = (self.def.config.max_keys / 2).max(1);
        if self.entries.len() <= keep {
            return;
        }
        select_best(&mut self.entries, &self.arena, keep);
        for e in self.entries.iter().skip(keep) {
            self.floor = self.floor.max(e.slot.estimate());
            self.keys_evicted += 1;
        }
        self.entries.truncate(keep);
        // The kept keys of the arena move to a fresh one; the index is rebuilt in its own
        // capacity.
        let capacity = self.arena.capacity();
        let old = std::mem::replace(&mut self.arena, Vec::with_capacity(capacity));
        for e in self.entries.iter_mut().filter(|e| !e.is_inline()) {
            let (off, len) = (e.off(), e.len());
            let key = old.get(off..off + len).unwrap_or_default();
            e.store(key, &mut self.arena);
        }
        self.reindex();
    }

    /// Index every entry again, into the emptied index: [`BATCH`] entries at a time, their
    /// home slots read first, back to back, as `read_ahead` does for a batch of keys. One
    /// entry at a time, each insert waited on its slot's cache miss (the 2 MiB index, just
    /// emptied, is larger than the core's cache) before the next one's could start.
    fn reindex(&mut self) {
        self.index.clear();
        let (entries, index) = (&self.entries, &mut self.index);
        let read_ahead = entries.len() >= PREFETCH_FROM_KEYS;
        for (c, chunk) in entries.chunks(BATCH).enumerate() {
            if read_ahead {
                let seen = chunk.iter().fold(0, |seen, e| seen ^ index.home(e.hash));
                std::hint::black_box(seen);
            }
            for j in 0..chunk.len() {
                index_entry(index, entries, c * BATCH + j);
            }
        }
    }

    /// Merge the same window of another instance of the same rollup into this one.
    ///
    /// Counts add up; a key missing from one side gets that side's eviction floor added to
    /// its error bound (mergeable Space-Saving, Agarwal et al. 2012). The merged aggregate is
    /// compacted back under `max_keys`.
    pub fn merge(&mut self, mut other: WindowAggregate) -> Result<(), MergeError> {
        if self.def.name != other.def.name {
            return Err(MergeError::Rollup(
                self.def.name.to_string(),
                other.def.name.to_string(),
            ));
        }
        if self.start_ns != other.start_ns {
            return Err(MergeError::Window(self.start_ns, other.start_ns));
        }
        // The merge is symmetric, so it is made in whichever side has the more room: that one
        // is kept, with its memory then reused by its own rollup instance ([`Buffers`]), and
        // it is then large enough for the next merge too. Merged into whichever came first,
        // a worker's reused memory was now and then too small for a merge and grew again.
        if other.entries.capacity() > self.entries.capacity() {
            std::mem::swap(self, &mut other);
        }
        if other.floor > 0 {
            for e in &mut self.entries {
                if other.find(e.hash, key_of(&self.arena, e)).is_none() {
                    e.slot.err = e.slot.err.saturating_add(other.floor);
                }
            }
        }
        // Drained, not taken: `other`'s allocations go back to its rollup instance ([`Buffers`]).
        for o in other.entries.drain(..) {
            let key = key_of(&other.arena, &o);
            match self.find(o.hash, key).and_then(|i| self.entries.get_mut(i)) {
                Some(e) => {
                    e.slot.value = e.slot.value.saturating_add(o.slot.value);
                    e.slot.err = e.slot.err.saturating_add(o.slot.err);
                }
                None => {
                    let slot = Slot {
                        value: o.slot.value,
                        err: o.slot.err.saturating_add(self.floor),
                    };
                    self.insert_new(o.hash, key, slot);
                }
            }
        }
        self.floor = self.floor.saturating_add(other.floor);
        self.total = self.total.saturating_add(other.total);
        self.keys_evicted += other.keys_evicted;
        if self.country_db.is_none() {
            self.country_db = other.country_db.take();
        }
        while self.entries.len() > self.def.config.max_keys {
            self.compact();
        }
        Ok(())
    }

    /// Select the top-K series and sum the rest into the overflow series.
    ///
    /// The emitted values, overflow included, add up to [`WindowAggregate::total`] exactly.
    /// A country keyed with its address is not in the key: it is looked up here, for the
    /// emitted series only, in the database the window was given
    /// ([`RollupSet::set_country_db`]).
    pub fn finish(mut self, stats: &mut RollupStats) -> WindowBatch {
        let def = Arc::clone(&self.def);
        let end = self.start_ns.saturating_add(def.interval_ns);
        let arena = &self.arena;
        let entries = &mut self.entries;
        let top_k = def.config.top_k;
        let rest = entries.len().saturating_sub(top_k);
        if rest > 0 {
            select_best(entries, arena, top_k);
            entries.truncate(top_k);
        }
        entries.sort_unstable_by(|a, b| rank(arena, a, b));
        let mut points = Vec::with_capacity(entries.len() + 1);
        let mut emitted: u64 = 0;
        for e in entries.iter() {
            emitted = emitted.saturating_add(e.slot.value);
            points.push(Point {
                metric: Arc::clone(&def.metric),
                unit: Arc::clone(&def.unit),
                kind: PointKind::Total,
                attributes: decode_key(
                    &def,
                    key_of(arena, e),
                    self.country_db.as_deref(),
                    &mut stats.geo_lookup_errors,
                ),
                value: e.slot.value,
                start_time_unix_nano: self.start_ns,
                time_unix_nano: end,
            });
        }
        let approximated = self.keys_evicted > 0;
        if rest > 0 || approximated {
            points.push(Point {
                metric: Arc::clone(&def.metric),
                unit: Arc::clone(&def.unit),
                kind: PointKind::Total,
                attributes: vec![(Arc::clone(&def.overflow_name), AttrValue::Bool(true))],
                value: self.total.saturating_sub(emitted),
                start_time_unix_nano: self.start_ns,
                time_unix_nano: end,
            });
            stats.overflow_points += 1;
            stats.keys_overflowed += rest as u64;
        }
        if approximated {
            stats.windows_approximated += 1;
            stats.keys_evicted += self.keys_evicted;
        }
        stats.windows_emitted += 1;
        stats.points_emitted += points.len() as u64;
        WindowBatch {
            rollup: Arc::clone(&def.name),
            start_time_unix_nano: self.start_ns,
            time_unix_nano: end,
            points,
        }
    }
}

impl Drop for WindowAggregate {
    fn drop(&mut self) {
        // Hand the window's allocations, emptied, to the next window of its rollup instance
        // (`Buffers`), unless it already has larger ones. They are emptied before the lock is
        // taken, and what is let go is freed after it is released: the worker that opens the
        // next window takes the same lock.
        let mut index = std::mem::replace(&mut self.index, KeyIndex::with_capacity(0));
        index.clear();
        let mut buffers = Buffers {
            entries: std::mem::take(&mut self.entries),
            index,
            arena: std::mem::take(&mut self.arena),
        };
        buffers.entries.clear();
        buffers.arena.clear();
        let let_go = match self.def.spare.lock() {
            Ok(mut spare) => {
                let ours_larger = spare
                    .as_ref()
                    .is_none_or(|b| b.entries.capacity() < buffers.entries.capacity());
                if ours_larger {
                    spare.replace(buffers)
                } else {
                    Some(buffers)
                }
            }
            Err(_) => Some(buffers),
        };
        // The lock is released.
        drop(let_go);
    }
}

/// Records a rollup takes before adding them to its window.
///
/// A push is the key's encoding, then (at the batch's settle, hashed there: see `Batch`) a
/// lookup in a table of up to `max_keys` keys (100 000 by default: megabytes, beyond the
/// core's own caches) that waits on three memory reads one after another: the index slot, the
/// entry, the key's bytes. Pushed one by one between the rest of each record's work
/// (decoding, enrichment), every lookup waits alone.
/// Batched, the batch's reads are made ahead in passes of independent loads
/// (`WindowAggregate::read_ahead`) and the adds find their data in the cache. The order of
/// the adds is unchanged, so the sums, the evictions and their error bounds are the same as
/// unbatched.
pub const BATCH: usize = 32;

/// Keys a window holds before its batches' reads are made ahead of their adds: below, its
/// index, entries and keys (about 80 bytes a key) stay in the core's own caches and the reads
/// ahead would only add instructions (about 2 % of the whole pipeline's, measured on the
/// committed NetFlow v9 capture's few thousand keys).
const PREFETCH_FROM_KEYS: usize = 8192;

/// The keys of the records pushed since the last [`Rollup::settle`], back to back, and for
/// each where it ends, its value and (from the settle on) its hash. Every batched record is
/// in the open window (opening another settles first).
///
/// The keys are hashed when the batch is settled, not as they are pushed: the hash reads a
/// key in 8-byte words just after the key was written a few bytes at a time, and a load
/// that spans several smaller stores still in flight cannot take its bytes from them (no
/// store-to-load forwarding); it waits until they reach the cache. A batch later they have.
#[derive(Debug, Default)]
struct Batch {
    keys: Vec<u8>,
    pending: Vec<Pending>,
}

impl Batch {
    /// Hash every pending key.
    fn hash(&mut self, hasher: &SeedableRandomState) {
        let mut from = 0;
        for p in &mut self.pending {
            p.hash = key_hash(hasher, self.keys.get(from..p.end).unwrap_or_default());
            from = p.end;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Set by [`Batch::hash`].
    hash: u64,
    end: usize,
    value: u64,
}

/// The size of the last closed window, for sizing the next one.
#[derive(Debug, Clone, Copy, Default)]
struct SizeHint {
    keys: usize,
    arena_bytes: usize,
}

/// One rollup instance: push enriched records, take or flush completed windows.
///
/// Windows are `[k × interval, (k+1) × interval)` in the records' receive time. One window
/// is open at a time; see the crate docs for the late-record policy.
#[derive(Debug)]
pub struct Rollup {
    def: Arc<Def>,
    open: Option<WindowAggregate>,
    closed: Vec<WindowAggregate>,
    /// Start of the oldest window that may still receive records.
    watermark_ns: u64,
    stats: RollupStats,
    /// Records pushed and not yet added to the open window (see [`Batch`]).
    batch: Batch,
    hint: SizeHint,
    country_db: Option<Arc<CountryDb>>,
}

impl Rollup {
    pub fn new(config: RollupConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let attr_names = config
            .dimensions
            .iter()
            .map(|d| Arc::from(d.attribute_name(config.profile)))
            .collect();
        let def = Def {
            name: Arc::from(config.name.as_str()),
            metric: Arc::from(config.metric_name()),
            unit: Arc::from(config.value.unit()),
            attr_names,
            overflow_name: Arc::from(OVERFLOW_ATTRIBUTE),
            interval_ns: config.interval_secs.saturating_mul(1_000_000_000),
            default_dimensions: config.dimensions == DEFAULT_DIMENSIONS,
            src_country_from_addr: config.dimensions.contains(&Dimension::SrcAddr),
            dst_country_from_addr: config.dimensions.contains(&Dimension::DstAddr),
            hasher: key_hasher(),
            spare: Mutex::new(None),
            config,
        };
        Ok(Rollup {
            def: Arc::new(def),
            open: None,
            closed: Vec::new(),
            watermark_ns: 0,
            stats: RollupStats::default(),
            batch: Batch::default(),
            hint: SizeHint::default(),
            country_db: None,
        })
    }

    /// The country database for the countries looked up when windows are finished: windows
    /// opened from now on take it (windows already open keep theirs).
    pub fn set_country_db(&mut self, db: Option<Arc<CountryDb>>) {
        self.country_db = db;
    }

    /// Whether the records pushed need their countries (see [`RollupSet::needs_countries`]).
    fn needs_countries(&self) -> bool {
        self.def.config.dimensions.iter().any(|d| {
            matches!(d, Dimension::SrcCountry | Dimension::DstCountry)
                && !self.def.country_from_addr(d)
        })
    }

    pub fn config(&self) -> &RollupConfig {
        &self.def.config
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn stats(&self) -> &RollupStats {
        &self.stats
    }

    /// Keys held in the open window (never above `max_keys`). Records still in the batch
    /// (at most [`BATCH`], until [`Rollup::settle`]) are not counted yet.
    pub fn keys_tracked(&self) -> usize {
        self.open.as_ref().map_or(0, WindowAggregate::keys)
    }

    fn align(&self, t: u64) -> u64 {
        t - t % self.def.interval_ns
    }

    /// Add one record to the window of its receive time.
    #[inline]
    pub fn push(&mut self, e: &Enriched<'_>) {
        self.stats.records_in += 1;
        let r = e.record;
        let counted = match self.def.config.direction {
            Direction::Both => true,
            Direction::In => r.direction != Some(FlowDirection::Egress),
            Direction::Out => r.direction == Some(FlowDirection::Egress),
        };
        if !counted {
            self.stats.records_filtered += 1;
            return;
        }
        let raw = match self.def.config.value {
            ValueKind::Bytes => r.bytes,
            ValueKind::Packets => r.packets,
            ValueKind::Flows => 1,
        };
        let value = if self.def.config.sample_adjust {
            raw.saturating_mul(u64::from(e.sampling_rate))
        } else {
            raw
        };
        self.stats.value_in = self.stats.value_in.saturating_add(value);

        // Nearly every record falls in the open window: no division for those.
        let t = r.time_received_ns;
        let mut start = match &self.open {
            Some(w) if t >= w.start_ns && t - w.start_ns < self.def.interval_ns => w.start_ns,
            _ => self.align(t),
        };
        // The watermark is the open window's start: nothing older can be opened again.
        if start < self.watermark_ns {
            self.stats.late_records += 1;
            start = self.watermark_ns;
        }
        let opens_new = self.open.as_ref().is_none_or(|w| start > w.start_ns);
        if opens_new {
            self.settle();
            if let Some(w) = self.open.take() {
                self.close(w);
            }
            self.watermark_ns = start;
            self.open = Some(WindowAggregate::new(
                Arc::clone(&self.def),
                start,
                self.hint,
                self.country_db.clone(),
            ));
        }
        encode_key(&self.def, e, &mut self.batch.keys);
        // The hash is left to `settle` (see `Batch`).
        let pending = Pending {
            hash: 0,
            end: self.batch.keys.len(),
            value,
        };
        self.batch.pending.push(pending);
        if self.batch.pending.len() >= BATCH {
            self.settle();
        }
    }

    /// Add the batched records to the open window. Taking or flushing windows settles first;
    /// call it after a run of pushes so that [`Rollup::keys_tracked`] counts them.
    pub fn settle(&mut self) {
        // A record is batched only once its window is open, and closing it settles first.
        if let Some(w) = self.open.as_mut() {
            self.batch.hash(&self.def.hasher);
            w.add_batch(&self.batch.keys, &self.batch.pending);
        }
        self.batch.keys.clear();
        self.batch.pending.clear();
    }

    fn close(&mut self, w: WindowAggregate) {
        self.hint = SizeHint {
            keys: w.entries.len(),
            arena_bytes: w.arena.len(),
        };
        self.closed.push(w);
    }

    /// Close the open window if it ended at or before `now_ns`, and return every closed
    /// window, unfinished (for merging across workers). Records older than `now_ns`'s window
    /// arriving afterwards are late.
    pub fn take_closed(&mut self, now_ns: u64) -> Vec<WindowAggregate> {
        self.settle();
        if self
            .open
            .as_ref()
            .is_some_and(|w| w.end_time_unix_nano() <= now_ns)
            && let Some(w) = self.open.take()
        {
            self.close(w);
        }
        self.watermark_ns = self.watermark_ns.max(self.align(now_ns));
        std::mem::take(&mut self.closed)
    }

    /// Close and return every window, the open one included (end of input, shutdown).
    pub fn take_all(&mut self) -> Vec<WindowAggregate> {
        self.settle();
        if let Some(w) = self.open.take() {
            self.watermark_ns = w.end_time_unix_nano();
            self.close(w);
        }
        std::mem::take(&mut self.closed)
    }

    /// [`Rollup::take_closed`] and finish each window (single-instance use).
    pub fn flush(&mut self, now_ns: u64) -> Vec<WindowBatch> {
        let windows = self.take_closed(now_ns);
        self.finish(windows)
    }

    /// [`Rollup::take_all`] and finish each window.
    pub fn flush_all(&mut self) -> Vec<WindowBatch> {
        let windows = self.take_all();
        self.finish(windows)
    }

    /// Finish aggregates taken from this rollup (or merged into them), counting into its stats.
    pub fn finish(&mut self, windows: Vec<WindowAggregate>) -> Vec<WindowBatch> {
        windows
            .into_iter()
            .map(|w| w.finish(&mut self.stats))
            .collect()
    }
}

/// Several rollups fed the same records.
#[derive(Debug)]
pub struct RollupSet {
    rollups: Vec<Rollup>,
}

impl RollupSet {
    pub fn new(configs: &[RollupConfig]) -> Result<Self, ConfigError> {
        crate::config::validate_rollups(configs)?;
        Ok(RollupSet {
            rollups: configs
                .iter()
                .cloned()
                .map(Rollup::new)
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn rollups(&self) -> &[Rollup] {
        &self.rollups
    }

    pub fn rollups_mut(&mut self) -> &mut [Rollup] {
        &mut self.rollups
    }

    /// Whether any rollup keys on interface names.
    pub fn needs_interface_names(&self) -> bool {
        self.rollups.iter().any(|r| {
            r.config()
                .dimensions
                .iter()
                .any(|d| d.needs_interface_names())
        })
    }

    /// Whether any rollup keys on a country without the same side's address: only then do
    /// the records pushed need their countries ([`crate::Enricher::with_countries`]). The
    /// others look countries up for the series they emit.
    pub fn needs_countries(&self) -> bool {
        self.rollups.iter().any(Rollup::needs_countries)
    }

    /// The country database every rollup looks countries up in when finishing windows (see
    /// [`Rollup::set_country_db`]).
    pub fn set_country_db(&mut self, db: Option<Arc<CountryDb>>) {
        for r in &mut self.rollups {
            r.set_country_db(db.clone());
        }
    }

    /// The record fields the rollups read (see [`RecordFields`]): what a metrics-only
    /// pipeline has its decoder read.
    pub fn record_fields(&self) -> RecordFields {
        self.rollups
            .iter()
            .flat_map(|r| &r.config().dimensions)
            .fold(RecordFields::CORE, |set, d| set | d.record_fields())
    }

    #[inline(always)]
    pub fn push(&mut self, e: &Enriched<'_>) {
        for r in &mut self.rollups {
            r.push(e);
        }
    }

    /// [`Rollup::settle`] every rollup.
    pub fn settle(&mut self) {
        for r in &mut self.rollups {
            r.settle();
        }
    }

    /// Closed windows of every rollup, unfinished (see [`Rollup::take_closed`]).
    pub fn take_closed(&mut self, now_ns: u64) -> Vec<WindowAggregate> {
        self.rollups
            .iter_mut()
            .flat_map(|r| r.take_closed(now_ns))
            .collect()
    }

    pub fn flush(&mut self, now_ns: u64) -> Vec<WindowBatch> {
        self.rollups
            .iter_mut()
            .flat_map(|r| r.flush(now_ns))
            .collect()
    }

    pub fn flush_all(&mut self) -> Vec<WindowBatch> {
        self.rollups
            .iter_mut()
            .flat_map(Rollup::flush_all)
            .collect()
    }

    /// Counters of each rollup, by name.
    pub fn stats(&self) -> Vec<(&str, RollupStats)> {
        self.rollups.iter().map(|r| (r.name(), r.stats)).collect()
    }
}

// Key encoding: the dimensions' values in order, fixed-width where possible, so keys are
// compared and hashed as bytes and decoded back only for the emitted top-K.

const ADDR_NONE: u8 = 0;
const ADDR_V4: u8 = 4;
const ADDR_V6: u8 = 6;
const COUNTRY_UNKNOWN: [u8; 2] = [0, 0];
/// Application key tags: an IANA service (protocol, table index) or an exporter's name.
const APP_IANA: u8 = 0;
const APP_NAMED: u8 = 1;
const COUNTRY_PRIVATE: [u8; 2] = [0xff, 0xff];

fn put_addr(out: &mut Vec<u8>, a: Option<IpAddr>) {
    match a {
        None => out.push(ADDR_NONE),
        Some(IpAddr::V4(v4)) => {
            out.push(ADDR_V4);
            out.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            out.push(ADDR_V6);
            out.extend_from_slice(&v6.octets());
        }
    }
}

#[inline]
fn put_str(out: &mut Vec<u8>, s: &str) {
    match u8::try_from(s.len()) {
        Ok(len) => {
            out.push(len);
            out.extend_from_slice(s.as_bytes());
        }
        Err(_) => put_long_str(out, s),
    }
}

/// [`put_str`] of a name longer than 255 bytes: cut at a character boundary. Out of line, so
/// that the common case inlines where a key is written.
#[cold]
#[inline(never)]
fn put_long_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let bytes = s.as_bytes().get(..end).unwrap_or_default();
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

fn put_opt_u32(out: &mut Vec<u8>, v: Option<u32>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

fn put_country(out: &mut Vec<u8>, c: Country) {
    out.extend_from_slice(&match c {
        Country::Unknown => COUNTRY_UNKNOWN,
        Country::Private => COUNTRY_PRIVATE,
        Country::Iso(code) => code,
    });
}

/// A port as keyed: ports at or above `collapse_ports_from` become that port.
#[inline]
fn key_port(def: &Def, p: u16) -> u16 {
    match def.config.collapse_ports_from {
        Some(limit) if p >= limit => limit,
        _ => p,
    }
}

#[inline(always)]
fn encode_key(def: &Def, e: &Enriched<'_>, out: &mut Vec<u8>) {
    if def.default_dimensions {
        encode_default_key(def, e, out);
    } else {
        encode_any_key(def, e, out);
    }
}

/// [`encode_any_key`] for [`DEFAULT_DIMENSIONS`], in their order, written out: the loop's
/// dispatch per dimension is an indirect jump the processor mispredicts often enough to be a
/// sizeable share of the rollup's time. `default_key_equals_the_general_encoding` holds the
/// two to the same bytes.
#[inline]
fn encode_default_key(def: &Def, e: &Enriched<'_>, out: &mut Vec<u8>) {
    let r = e.record;
    put_str(out, e.device_name);
    // The fixed-size part is written in place: room for the longest is appended (a copy of a
    // constant length is a few moves), the fields are written into it and the unused end is
    // cut. A `Vec` write per field (capacity check, length update) cost about as much as the
    // fields; a stack buffer copied over afterwards read it back in 16-byte loads across the
    // fields' narrower stores, which cannot be forwarded (see `Batch`) and stalled.
    let start = out.len();
    out.extend_from_slice(&[0; FIXED_KEY_MAX]);
    let Some(buf) = out
        .get_mut(start..)
        .and_then(|b| <&mut [u8; FIXED_KEY_MAX]>::try_from(b).ok())
    else {
        return;
    };
    let mut n = addr_into(buf, 0, r.src_addr);
    n = addr_into(buf, n, r.dst_addr);
    let (src, dst) = (key_port(def, r.src_port), key_port(def, r.dst_port));
    let [s0, s1] = src.to_be_bytes();
    let [d0, d1] = dst.to_be_bytes();
    n = bytes_into(buf, n, &[s0, s1, d0, d1, r.ip_protocol]);
    match r.application_name.as_deref() {
        Some(name) => {
            n = bytes_into(buf, n, &[APP_NAMED]);
            out.truncate(start + n);
            put_str(out, name);
        }
        None => {
            let [a0, a1] = e.application.unwrap_or(u16::MAX).to_be_bytes();
            n = bytes_into(buf, n, &[APP_IANA, r.ip_protocol, a0, a1]);
            // The countries come from the addresses when the window is finished (`Def`).
            out.truncate(start + n);
        }
    }
}

/// The longest fixed-size part of a default key: two IPv6 addresses with their tags, ports,
/// protocol and an IANA application.
const FIXED_KEY_MAX: usize = 2 * 17 + 5 + 4;

/// `bytes` written into `buf` at `at`; returns the end. `buf` is sized for the longest key, so
/// nothing is ever cut (the `get_mut` only keeps the write in bounds).
#[inline(always)]
fn bytes_into(buf: &mut [u8; FIXED_KEY_MAX], at: usize, bytes: &[u8]) -> usize {
    let end = at + bytes.len();
    if let Some(dst) = buf.get_mut(at..end) {
        dst.copy_from_slice(bytes);
    }
    end
}

/// [`put_addr`] into a key buffer.
#[inline(always)]
fn addr_into(buf: &mut [u8; FIXED_KEY_MAX], at: usize, a: Option<IpAddr>) -> usize {
    match a {
        None => bytes_into(buf, at, &[ADDR_NONE]),
        Some(IpAddr::V4(v4)) => {
            let [a, b, c, d] = v4.octets();
            bytes_into(buf, at, &[ADDR_V4, a, b, c, d])
        }
        Some(IpAddr::V6(v6)) => {
            let end = bytes_into(buf, at, &[ADDR_V6]);
            bytes_into(buf, end, &v6.octets())
        }
    }
}

fn encode_any_key(def: &Def, e: &Enriched<'_>, out: &mut Vec<u8>) {
    let r = e.record;
    let port = |p: u16| key_port(def, p);
    for d in &def.config.dimensions {
        match d {
            Dimension::DeviceName => put_str(out, e.device_name),
            Dimension::ExporterAddress => put_addr(out, Some(e.device_addr)),
            Dimension::SrcAddr => put_addr(out, r.src_addr),
            Dimension::DstAddr => put_addr(out, r.dst_addr),
            Dimension::SrcPort => out.extend_from_slice(&port(r.src_port).to_be_bytes()),
            Dimension::DstPort => out.extend_from_slice(&port(r.dst_port).to_be_bytes()),
            Dimension::Transport => out.push(r.ip_protocol),
            Dimension::Application => match r.application_name.as_deref() {
                // The exporter's own name for the application (NBAR, App-ID) wins.
                Some(name) => {
                    out.push(APP_NAMED);
                    put_str(out, name);
                }
                None => {
                    out.push(APP_IANA);
                    out.push(r.ip_protocol);
                    out.extend_from_slice(&e.application.unwrap_or(u16::MAX).to_be_bytes());
                }
            },
            Dimension::SrcHost | Dimension::DstHost => {}
            // Looked up from the address when the window is finished (`Def`).
            d @ (Dimension::SrcCountry | Dimension::DstCountry) if def.country_from_addr(d) => {}
            Dimension::SrcCountry => put_country(out, e.src_country),
            Dimension::DstCountry => put_country(out, e.dst_country),
            Dimension::SrcAs => put_opt_u32(out, e.src_as),
            Dimension::DstAs => put_opt_u32(out, e.dst_as),
            Dimension::InIf => put_opt_u32(out, r.in_if),
            Dimension::OutIf => put_opt_u32(out, r.out_if),
            Dimension::InIfName => put_str(out, e.in_if_name.as_deref().unwrap_or("")),
            Dimension::OutIfName => put_str(out, e.out_if_name.as_deref().unwrap_or("")),
            Dimension::Vlan => put_opt_u32(out, r.vlan.map(u32::from)),
            Dimension::Tos => out.push(r.tos),
            Dimension::FirewallEvent => {
                put_opt_u32(out, r.firewall.and_then(|f| f.event).map(u32::from))
            }
            Dimension::NatEvent => put_opt_u32(out, r.nat.and_then(|n| n.event).map(u32::from)),
            Dimension::PostNatSrcAddr => put_addr(out, r.nat.and_then(|n| n.src_addr)),
            Dimension::PostNatDstAddr => put_addr(out, r.nat.and_then(|n| n.dst_addr)),
            Dimension::PostNatSrcPort => {
                put_opt_u32(out, r.nat.and_then(|n| n.src_port).map(u32::from))
            }
            Dimension::PostNatDstPort => {
                put_opt_u32(out, r.nat.and_then(|n| n.dst_port).map(u32::from))
            }
            Dimension::SrcNetName
            | Dimension::DstNetName
            | Dimension::SrcNetRole
            | Dimension::DstNetRole
            | Dimension::SrcNetSite
            | Dimension::DstNetSite
            | Dimension::SrcNetRegion
            | Dimension::DstNetRegion
            | Dimension::SrcNetTenant
            | Dimension::DstNetTenant => {
                let value = d.network_attribute().and_then(|(attr, dst)| {
                    let net = if dst { e.dst_net } else { e.src_net };
                    net.map(|n| attr.of(n))
                });
                put_str(out, value.unwrap_or(""));
            }
            Dimension::CustomStr(name) => put_custom(out, custom(r, name)),
            Dimension::CustomInt(name) => match custom(r, name) {
                Some(CustomValue::Unsigned(n)) => {
                    out.push(1);
                    out.extend_from_slice(&n.to_be_bytes());
                }
                _ => out.push(0),
            },
        }
    }
}

/// The first value of the configured field `name` the record carries.
fn custom<'r>(r: &'r FlowRecord, name: &str) -> Option<&'r CustomValue> {
    r.custom_fields
        .iter()
        .find(|f| &*f.name == name)
        .map(|f| &f.value)
}

const CUSTOM_NONE: u8 = 0;
const CUSTOM_STR: u8 = 1;
const CUSTOM_UINT: u8 = 2;
const CUSTOM_ADDR: u8 = 3;
const CUSTOM_MAC: u8 = 4;

fn put_custom(out: &mut Vec<u8>, v: Option<&CustomValue>) {
    match v {
        None => out.push(CUSTOM_NONE),
        Some(CustomValue::Str(s)) => {
            out.push(CUSTOM_STR);
            put_str(out, s);
        }
        Some(CustomValue::Unsigned(n)) => {
            out.push(CUSTOM_UINT);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Some(CustomValue::Addr(a)) => {
            out.push(CUSTOM_ADDR);
            put_addr(out, Some(*a));
        }
        Some(CustomValue::Mac(m)) => {
            out.push(CUSTOM_MAC);
            out.extend_from_slice(m);
        }
    }
}

/// Reads back what [`encode_key`] wrote. Keys are produced only by `encode_key`, but reads
/// are bounds-checked anyway: a short key decodes to empty values, never a panic.
struct KeyReader<'a> {
    buf: &'a [u8],
}

impl<'a> KeyReader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        match (self.buf.get(..n), self.buf.get(n..)) {
            (Some(head), Some(tail)) => {
                self.buf = tail;
                head
            }
            _ => {
                self.buf = &[];
                &[]
            }
        }
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        <[u8; 2]>::try_from(self.take(2)).map_or(0, u16::from_be_bytes)
    }
    fn u32(&mut self) -> u32 {
        <[u8; 4]>::try_from(self.take(4)).map_or(0, u32::from_be_bytes)
    }
    fn u64(&mut self) -> u64 {
        <[u8; 8]>::try_from(self.take(8)).map_or(0, u64::from_be_bytes)
    }
    fn opt_u32(&mut self) -> Option<u32> {
        (self.u8() == 1).then(|| self.u32())
    }
    fn addr(&mut self) -> Option<IpAddr> {
        match self.u8() {
            ADDR_V4 => <[u8; 4]>::try_from(self.take(4)).ok().map(IpAddr::from),
            ADDR_V6 => <[u8; 16]>::try_from(self.take(16)).ok().map(IpAddr::from),
            _ => None,
        }
    }
    fn str(&mut self) -> &'a str {
        let n = usize::from(self.u8());
        std::str::from_utf8(self.take(n)).unwrap_or("")
    }
}

/// An event code as its IANA name, else its number.
fn event_label(code: u32, name: impl Fn(u8) -> Option<&'static str>) -> AttrValue {
    match u8::try_from(code).ok().and_then(name) {
        Some(n) => AttrValue::Str(Arc::from(n)),
        None => AttrValue::Str(Arc::from(code.to_string())),
    }
}

/// The attributes of a key. Countries left out of the key (see [`Def`]) are looked up from
/// the key's addresses in `country_db`, failures counted in `geo_errors`.
fn decode_key(
    def: &Def,
    key: &[u8],
    country_db: Option<&CountryDb>,
    geo_errors: &mut u64,
) -> Vec<(Arc<str>, AttrValue)> {
    let mut k = KeyReader { buf: key };
    // The key's source and destination addresses, for the countries looked up (a country
    // dimension may come before its address).
    let (mut src_addr, mut dst_addr) = (None, None);
    let profile = def.config.profile;
    let s = |v: &str| AttrValue::Str(Arc::from(v));
    let num = |v: u32| match profile {
        Profile::Default => AttrValue::Int(i64::from(v)),
        Profile::Ktranslate => AttrValue::Str(Arc::from(v.to_string())),
    };
    let addr = |a: Option<IpAddr>| {
        AttrValue::Str(a.map_or_else(|| Arc::from(""), |a| Arc::from(a.to_string())))
    };
    let country = |c: &[u8]| match c {
        [0, 0] => s(""),
        [0xff, 0xff] => s("Private IP"),
        code => s(std::str::from_utf8(code).unwrap_or("")),
    };
    let mut attributes: Vec<(Arc<str>, AttrValue)> = def
        .config
        .dimensions
        .iter()
        .zip(&def.attr_names)
        .map(|(d, name)| {
            let v = match d {
                Dimension::DeviceName => s(k.str()),
                Dimension::ExporterAddress => addr(k.addr()),
                Dimension::SrcAddr => {
                    src_addr = k.addr();
                    addr(src_addr)
                }
                Dimension::DstAddr => {
                    dst_addr = k.addr();
                    addr(dst_addr)
                }
                Dimension::SrcPort | Dimension::DstPort => num(u32::from(k.u16())),
                Dimension::Transport => {
                    let p = k.u8();
                    match services::transport_name(p) {
                        Some(n) => s(n),
                        None => s(&p.to_string()),
                    }
                }
                Dimension::Application => match k.u8() {
                    APP_NAMED => s(k.str()),
                    _ => {
                        let proto = k.u8();
                        match k.u16() {
                            u16::MAX => s(""),
                            i => s(services::service_name_at(proto, i)),
                        }
                    }
                },
                Dimension::SrcHost | Dimension::DstHost => s(""),
                // Filled in below.
                d @ (Dimension::SrcCountry | Dimension::DstCountry) if def.country_from_addr(d) => {
                    s("")
                }
                Dimension::SrcCountry | Dimension::DstCountry => country(k.take(2)),
                Dimension::SrcAs
                | Dimension::DstAs
                | Dimension::InIf
                | Dimension::OutIf
                | Dimension::Vlan => num(k.opt_u32().unwrap_or(0)),
                Dimension::InIfName
                | Dimension::OutIfName
                | Dimension::SrcNetName
                | Dimension::DstNetName
                | Dimension::SrcNetRole
                | Dimension::DstNetRole
                | Dimension::SrcNetSite
                | Dimension::DstNetSite
                | Dimension::SrcNetRegion
                | Dimension::DstNetRegion
                | Dimension::SrcNetTenant
                | Dimension::DstNetTenant => s(k.str()),
                Dimension::Tos => num(u32::from(k.u8())),
                Dimension::FirewallEvent => match k.opt_u32() {
                    None => s(""),
                    Some(e) => event_label(e, Firewall::event_name),
                },
                Dimension::NatEvent => match k.opt_u32() {
                    None => s(""),
                    Some(e) => event_label(e, Nat::event_name),
                },
                Dimension::PostNatSrcAddr | Dimension::PostNatDstAddr => addr(k.addr()),
                Dimension::PostNatSrcPort | Dimension::PostNatDstPort => {
                    num(k.opt_u32().unwrap_or(0))
                }
                Dimension::CustomStr(_) => match k.u8() {
                    CUSTOM_STR => s(k.str()),
                    CUSTOM_UINT => s(&k.u64().to_string()),
                    CUSTOM_ADDR => addr(k.addr()),
                    CUSTOM_MAC => {
                        let m = <[u8; 6]>::try_from(k.take(6)).unwrap_or_default();
                        s(&CustomValue::Mac(m).to_string())
                    }
                    _ => s(""),
                },
                Dimension::CustomInt(_) => {
                    let n = if k.u8() == 1 { k.u64() } else { 0 };
                    match profile {
                        Profile::Default => AttrValue::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                        Profile::Ktranslate => AttrValue::Str(Arc::from(n.to_string())),
                    }
                }
            };
            (Arc::clone(name), v)
        })
        .collect();
    for (d, (_, v)) in def.config.dimensions.iter().zip(&mut attributes) {
        if def.country_from_addr(d) {
            let a = match d {
                Dimension::SrcCountry => src_addr,
                _ => dst_addr,
            };
            *v = s(address_country(country_db, a, geo_errors).as_str());
        }
    }
    attributes
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use flowtel_decode::FlowProtocol;

    use super::*;
    use crate::config::EnrichConfig;
    use crate::enrich::Enricher;

    /// An entry keeps a key of up to `INLINE_KEY` bytes itself and a longer one in the arena,
    /// and its place whole, beyond 4 GiB of arena too.
    #[test]
    fn entries_keep_their_keys() {
        let slot = Slot { value: 7, err: 1 };
        let mut arena = vec![0xee; 3];
        for len in [0, 1, INLINE_KEY - 1, INLINE_KEY, INLINE_KEY + 1, 300] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let before = arena.len();
            let e = Entry::new(9, &key, &mut arena, slot);
            assert_eq!((e.hash, e.slot, e.len()), (9, slot, len));
            assert_eq!(key_of(&arena, &e), key);
            assert_eq!(e.is_inline(), len <= INLINE_KEY);
            let grew = if len <= INLINE_KEY { 0 } else { len };
            assert_eq!(arena.len(), before + grew, "key of {len} bytes");
        }
        for (off, len) in [(5 << 32, 300), ((1 << 40) - 1, 4095)] {
            let mut e = Entry::new(9, &[], &mut arena, slot);
            e.place(off, len);
            assert_eq!((e.off(), e.len(), e.is_inline()), (off, len, false));
        }
        assert_eq!(std::mem::align_of::<Entry>(), 64);
    }

    /// `select_best` keeps the same entries as one selection by the full rank, however many
    /// tie on their sums.
    #[test]
    fn select_best_keeps_what_a_full_rank_selection_keeps() {
        use proptest::prelude::*;
        // Keys kept in the entry and in the arena (a long common prefix), tied or not.
        let key = (any::<bool>(), proptest::collection::vec(0u8..3, 0..4)).prop_map(|(long, k)| {
            let prefix = if long { INLINE_KEY } else { 0 };
            std::iter::repeat_n(7, prefix).chain(k).collect::<Vec<u8>>()
        });
        let entry = (0u64..4, 0u64..3, key);
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &(proptest::collection::vec(entry, 1..200), 1usize..200),
                |(raw, keep)| {
                    let mut arena = Vec::new();
                    let mut entries = Vec::new();
                    for (err, value, key) in &raw {
                        let slot = Slot {
                            value: *value,
                            err: *err,
                        };
                        entries.push(Entry::new(0, key, &mut arena, slot));
                    }
                    let kept = |v: &[Entry]| {
                        let mut k: Vec<(u64, u64, Vec<u8>)> = v
                            .iter()
                            .take(keep)
                            .map(|e| (e.slot.value, e.slot.err, key_of(&arena, e).to_vec()))
                            .collect();
                        k.sort();
                        k
                    };
                    let mut full = entries.clone();
                    if keep < full.len() {
                        full.select_nth_unstable_by(keep - 1, |a, b| rank(&arena, a, b));
                    }
                    select_best(&mut entries, &arena, keep);
                    prop_assert_eq!(kept(&entries), kept(&full));
                    Ok(())
                },
            )
            .unwrap();
    }

    /// Push one record of 1 byte received at `t` for each source port below `keys`: `keys`
    /// keys of the default rollup.
    fn push_ports(rollup: &mut Rollup, t: u64, keys: u16) {
        let exporter: SocketAddr = "192.0.2.1:2055".parse().unwrap();
        let mut enricher = Enricher::new(&EnrichConfig::default());
        for port in 0..keys {
            let mut r = FlowRecord::new(exporter, FlowProtocol::NetflowV9, t);
            r.src_port = port;
            r.bytes = 1;
            rollup.push(&enricher.enrich(&r, None));
        }
    }

    /// A finished window's allocations go to the next window of its rollup instance, and a
    /// merged-in window's to the next window of its own.
    #[test]
    fn the_next_window_takes_a_finished_windows_memory() {
        let interval = RollupConfig::default().interval_secs * 1_000_000_000;
        let t0 = 1_700_000_040 * 1_000_000_000;
        let mut stats = RollupStats::default();
        let mut a = Rollup::new(RollupConfig::default()).unwrap();
        let mut b = Rollup::new(RollupConfig::default()).unwrap();
        push_ports(&mut a, t0, 1000);
        push_ports(&mut b, t0, 1000);
        let (mut wa, mut wb) = (a.take_all(), b.take_all());
        let (wa, wb) = (wa.remove(0), wb.remove(0));
        let (ptr_a, ptr_b) = (wa.entries.as_ptr(), wb.entries.as_ptr());
        let mut merged = wa;
        merged.merge(wb).unwrap();
        assert!(
            b.def.spare.lock().unwrap().is_some(),
            "merged in, then dropped"
        );
        assert!(a.def.spare.lock().unwrap().is_none(), "not finished yet");
        let batch = merged.finish(&mut stats);
        assert_eq!(batch.points.iter().map(|p| p.value).sum::<u64>(), 2000);
        assert!(a.def.spare.lock().unwrap().is_some());
        push_ports(&mut a, t0 + interval, 1);
        push_ports(&mut b, t0 + interval, 1);
        assert!(a.def.spare.lock().unwrap().is_none());
        assert!(b.def.spare.lock().unwrap().is_none());
        let open = |r: &Rollup| r.open.as_ref().map(|w| w.entries.as_ptr());
        assert_eq!(open(&a), Some(ptr_a));
        assert_eq!(open(&b), Some(ptr_b));
    }

    /// After a compaction keeping more keys than `PREFETCH_FROM_KEYS` (its index rebuilt with
    /// the reads ahead), every kept key is found at its own entry.
    #[test]
    fn a_compaction_indexes_every_kept_key_again() {
        let t0 = 1_700_000_040 * 1_000_000_000;
        let mut r = Rollup::new(RollupConfig {
            max_keys: 20_000,
            ..RollupConfig::default()
        })
        .unwrap();
        push_ports(&mut r, t0, 20_001);
        r.settle();
        let w = r.open.as_ref().unwrap();
        assert_eq!(w.keys_evicted, 10_000);
        assert!(w.entries.len() > PREFETCH_FROM_KEYS);
        for (i, e) in w.entries.iter().enumerate() {
            assert_eq!(w.find(e.hash, key_of(&w.arena, e)), Some(i), "entry {i}");
        }
    }

    /// A merge is made in the side with the more room, whichever is merged into which.
    #[test]
    fn a_merge_keeps_the_larger_windows_memory() {
        let t0 = 1_700_000_040 * 1_000_000_000;
        let window = |keys: u16| {
            let mut rollup = Rollup::new(RollupConfig::default()).unwrap();
            push_ports(&mut rollup, t0, keys);
            let w = rollup.take_all().remove(0);
            (rollup, w)
        };
        let ((small, mut merged), (large, w)) = (window(10), window(1000));
        let large_entries = w.entries.as_ptr();
        merged.merge(w).unwrap();
        assert!(Arc::ptr_eq(&merged.def, &large.def));
        assert_eq!(merged.entries.as_ptr(), large_entries);
        assert_eq!((merged.keys(), merged.total()), (1000, 1010));
        assert!(
            small.def.spare.lock().unwrap().is_some(),
            "the smaller, dropped"
        );
    }

    /// A name is written as its length and its bytes, cut at 255 bytes on a character boundary.
    #[test]
    fn names_are_cut_at_255_bytes_on_a_character_boundary() {
        let put = |s: &str| {
            let mut out = vec![9];
            put_str(&mut out, s);
            out
        };
        assert_eq!(put("edge-1"), [&[9, 6][..], b"edge-1"].concat());
        let ascii = "a".repeat(300);
        assert_eq!(
            put(&ascii),
            [&[9, 255][..], &ascii.as_bytes()[..255]].concat()
        );
        // 254 ASCII bytes, then a 2-byte character across the 255th byte: cut before it.
        let across = format!("{}é", "a".repeat(254));
        assert_eq!(
            put(&across),
            [&[9, 254][..], &across.as_bytes()[..254]].concat()
        );
        let exact = format!("{}é", "a".repeat(253));
        assert_eq!(put(&exact), [&[9, 255][..], exact.as_bytes()].concat());
    }

    /// The written-out encoder of the default dimensions gives the general loop's bytes, for
    /// every kind of value those dimensions take.
    #[test]
    fn default_key_equals_the_general_encoding() {
        let exporter: SocketAddr = "192.0.2.1:2055".parse().unwrap();
        let addrs: [Option<IpAddr>; 4] = [
            None,
            Some("10.1.2.3".parse().unwrap()),
            Some("8.8.8.8".parse().unwrap()),
            Some("2606:4700::1111".parse().unwrap()),
        ];
        let mut records = Vec::new();
        for (i, src) in addrs.iter().enumerate() {
            for dst in &addrs {
                for (proto, sport, dport) in [(6, 51234, 443), (17, 53, 40000), (1, 0, 0)] {
                    let mut r = FlowRecord::new(exporter, FlowProtocol::NetflowV9, 0);
                    r.src_addr = *src;
                    r.dst_addr = *dst;
                    r.ip_protocol = proto;
                    r.src_port = sport;
                    r.dst_port = dport;
                    if i == 2 {
                        r.application_name = Some(Arc::from("ms-teams"));
                    }
                    records.push(r);
                }
            }
        }
        for collapse in [None, Some(32768)] {
            let config = RollupConfig {
                collapse_ports_from: collapse,
                ..RollupConfig::default()
            };
            let rollup = Rollup::new(config).unwrap();
            assert!(rollup.def.default_dimensions);
            let mut enricher = Enricher::new(&EnrichConfig::default());
            for r in &records {
                let e = enricher.enrich(r, None);
                let (mut fast, mut general) = (Vec::new(), Vec::new());
                encode_default_key(&rollup.def, &e, &mut fast);
                encode_any_key(&rollup.def, &e, &mut general);
                assert_eq!(fast, general, "{r:?} collapse {collapse:?}");
            }
        }
        let other = RollupConfig {
            dimensions: vec![Dimension::DeviceName, Dimension::SrcAddr],
            ..RollupConfig::default()
        };
        assert!(!Rollup::new(other).unwrap().def.default_dimensions);
    }
}
