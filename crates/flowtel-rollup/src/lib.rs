//! FlowRecord -> windowed, sampling-corrected metric series.
//!
//! Plain `push()` / `flush()`; no I/O, no async, deterministic for a given input and clock.
//! The pipeline is [`Enricher::enrich`] (one per record) then [`RollupSet::push`] (every
//! configured [`RollupConfig`] sees every record), and [`RollupSet::take_closed`] /
//! [`RollupSet::flush`] on a timer.
//!
//! # Values
//!
//! A rollup sums bytes, packets or flows of the records matching its direction (`in` =
//! ingress or unmarked, `out` = egress, `both`). With `sample_adjust` (the default, and
//! ktranslate's `s_sum`) each value is multiplied by the record's sampling rate; a record
//! without one uses the per-exporter configured rate, else the configured default, else 1,
//! and is counted in [`EnrichStats::unknown_sampling_rate`].
//!
//! # Windows and late records
//!
//! Windows are aligned to multiples of the interval in Unix time (`[k·I, (k+1)·I)`) and
//! keyed on the record's receive time (`FlowRecord::time_received_ns`: the socket clock in
//! the daemon, the capture timestamp offline), not the exporter's flow times, whose clocks
//! and active timeouts vary. Each rollup instance keeps one window open. A record of a later
//! window closes it; [`Rollup::take_closed`] closes it once the clock passes its end. A
//! record older than the open window (or than a window already closed by the clock) is
//! **late**: it is added to the oldest window still open and counted in
//! [`RollupStats::late_records`]. Late data is never dropped and never re-opens an emitted
//! window, so every window is emitted exactly once and totals over time stay exact.
//!
//! # Top-K, overflow and exact totals
//!
//! At the end of a window the `top_k` keys by value become series; all other keys are summed
//! into one overflow series whose only attribute is `otel.metric.overflow=true` (the
//! OpenTelemetry SDK's cardinality-limit convention). The emitted values, overflow included,
//! always add up to the window's exact sampling-corrected total, and a window has at most
//! `top_k + 1` points, one per series.
//!
//! # Bounded memory: batched Space-Saving
//!
//! A window tracks at most `max_keys` distinct keys. When a new key arrives at the cap, the
//! table is compacted: the better-ranked half of the keys is kept and the rest evicted (their
//! value stays in the window total, so it lands in the overflow series). The largest evicted
//! estimate becomes the window's *floor*, and every key inserted afterwards carries it as its
//! error bound, as in Space-Saving (Metwally et al., 2005): keys are ranked by value + error,
//! so a key heavier than the floor cannot be lost from the top-K, while each emitted value is
//! still the exact amount counted under that key (a lower bound of its true value). Totals
//! stay exact; only the choice of top-K becomes approximate, counted in
//! [`RollupStats::keys_evicted`] and [`RollupStats::windows_approximated`]. Compaction is
//! O(n) every n/2 inserts, amortised O(1) per record. Selection breaks ties on the key bytes,
//! so output does not depend on hash order.
//!
//! # Merging workers
//!
//! Per-core workers each run their own [`RollupSet`]. At flush the daemon takes each worker's
//! [`WindowAggregate`]s with [`RollupSet::take_closed`], merges those of the same rollup and
//! window with [`WindowAggregate::merge`] (counts add; error bounds follow mergeable
//! Space-Saving) and then calls [`WindowAggregate::finish`] once, so top-K is chosen over the
//! merged window.
//!
//! # Per-record cost
//!
//! The push path allocates nothing once a device has been seen. [`Enriched::device_name`]
//! borrows the enricher's per-device cache (no `Arc` clone per record), resolved once per run
//! of records from one device with [`Enricher::enrich_each`]; countries, services and
//! transports are `Copy` codes or `&'static str`; GeoIP answers are cached per address in a
//! bounded direct-mapped table per database (a MaxMind lookup costs as much as the rest of
//! the record). A country keyed with its address is not looked up per record at all, but for
//! the emitted series ([`RollupSet::needs_countries`]). A rollup encodes the record's key
//! into one reusable buffer, hashes it once (foldhash, seeded at random once per process, so
//! workers agree on hashes when merging) and looks it up in an open-addressing index of its
//! own (`index.rs`: 8-byte slots, each a 32-bit hash tag and an entry's position) into the
//! window's entries: a new key's entry is appended to one vector, in order, rather than boxed
//! or written into a bucket at random, with the key's bytes in the entry (one cache line) when
//! they fit in 36 and appended to one byte arena otherwise; compaction rebuilds both with the
//! kept keys. The lookups are batched ([`rollup::BATCH`] records, across datagrams; taking
//! windows settles first, and so does [`RollupSet::settle`]); once a window outgrows the
//! core's caches, a batch's index slots, then its entries (and a long key's bytes), are read
//! in passes of independent loads before the adds, so that the whole batch's cache misses are
//! under way at once.
//! A new window reserves the previous window's key count and arena size, so a steady key
//! stream does not regrow the table every interval. Attribute strings are built only for the
//! emitted top-K at [`WindowAggregate::finish`].
//! `examples/push_profile.rs` is a fixed workload for `valgrind --tool=callgrind`.
//!
//! # Dimensions and attributes
//!
//! Ports, transport and application are kept for port-less traffic (ICMP gets ports 0 and
//! its own series, where ktranslate drops rows with a `0` dimension). Ports at or above
//! `collapse_ports_from` (off by default) are reported as that value. The application is the
//! IANA service name of the flow's service side, taken to be the lower port (see
//! [`services::application`]). Countries are `Private IP` for addresses that are not
//! globally reachable ([`special`]), else the GeoIP ISO code, else empty. Attribute names and
//! value types follow the rollup's [`Profile`]: integer ports in the default profile (OTel
//! semantic conventions), strings in the ktranslate profile; Prometheus renders both as the
//! same label value.

mod addr_cache;
pub mod config;
pub mod enrich;
pub mod geo;
mod index;
pub mod interfaces;
pub mod networks;
pub mod rollup;
pub mod services;
pub mod spec;
pub mod special;

pub use config::{
    ConfigError, Dimension, Direction, EnrichConfig, PipelineConfig, Profile, RollupConfig,
    SamplingConfig, ValueKind,
};
pub use enrich::{Country, EnrichStats, Enriched, EnrichedRecord, Enricher, InterfaceNames};
pub use flowtel_series::{AttrValue, Point, PointKind, WindowBatch};
pub use geo::{AsnDb, CountryDb, GeoError};
pub use interfaces::{
    InterfaceMetrics, InterfaceStats, InterfaceWindow, InterfacesConfig, merge_interface_windows,
};
pub use networks::{Network, Networks, NetworksError};
pub use rollup::{MergeError, OVERFLOW_ATTRIBUTE, Rollup, RollupSet, RollupStats, WindowAggregate};
pub use spec::{SpecError, parse_spec, parse_specs};
