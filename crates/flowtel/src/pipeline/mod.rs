//! The synchronous pipeline: decode, enrich and roll up one datagram at a time, and merge the
//! windows of several pipelines.
//!
//! One [`WorkerPipeline`] runs on every receive worker of the daemon (fed by the socket clock)
//! and in `flowtel run --pcap` (fed by capture timestamps): the same code path. Its rollups
//! produce unfinished [`WindowAggregate`]s; [`merge_windows`] merges the same window of every
//! worker and only then selects the top-K. sFlow counter samples and drop notifications go to
//! the worker's [`InterfaceMetrics`] (the previous sample of each interface stays with the
//! worker that owns the agent), whose windows of increases merge the same way
//! ([`Flushed::finish`]). No I/O, no async: the daemon's threads and tasks drive it.
//!
//! When a per-flow sink is configured, every enriched record is also collected
//! ([`WorkerPipeline::take_records`]) for the worker to hand to those sinks once per receive pass.
//! Without one (and with no rollup keyed on interface names, which reads the decoder's tables
//! while enriching), the decoder lends the records to the enricher and rollups as it reads them
//! (`Decoder::decode_streaming`), so that no record is built per flow.

pub mod select;
pub mod stats;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use flowtel_decode::prehash::ExporterKey;
use flowtel_decode::{
    Budget, DecodeOutput, Decoder, DecoderConfig, FlowRecord, FlowSink, RecordFields,
};
use flowtel_rollup::{
    AsnDb, CountryDb, EnrichConfig, EnrichedRecord, Enricher, InterfaceMetrics, InterfaceNames,
    InterfaceWindow, InterfacesConfig, Networks, RollupConfig, RollupSet, RollupStats,
    WindowAggregate, WindowBatch, merge_interface_windows,
};
use tracing::{error, warn};

use crate::config::Config;
use stats::{DecoderSnapshot, PipelineSnapshot, WorkerStats};

/// How often (in receive-time nanoseconds) a worker copies its decoder and rollup counters for
/// readers.
const SNAPSHOT_EVERY_NS: u64 = 250_000_000;

/// Interface names from the decoder's options data, for the enricher.
#[derive(Debug)]
pub struct DecoderNames<'a>(pub &'a Decoder);

impl InterfaceNames for DecoderNames<'_> {
    fn interface_name(
        &self,
        exporter: SocketAddr,
        observation_domain: u32,
        if_index: u32,
    ) -> Option<Arc<str>> {
        self.0
            .interface_name(exporter.ip(), observation_domain, if_index)
            .map(Arc::from)
    }
}

/// What every worker's pipeline is built from (GeoIP databases are read once and shared, and
/// the decoders share one budget, so the decoder limits hold over all workers together).
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    pub decoder: DecoderConfig,
    /// The decoder state limits every pipeline built from this spec shares.
    pub budget: Arc<Budget>,
    pub rollups: Vec<RollupConfig>,
    /// sFlow counter samples and drop notifications as metrics.
    pub interfaces: InterfacesConfig,
    /// The window of the interface metrics: the flush interval (the shortest rollup's).
    pub interval_secs: u64,
    /// Collect enriched records for per-flow sinks.
    pub records: bool,
    /// What a configuration reload replaces in running pipelines.
    pub live: Reloadable,
}

/// The part of a pipeline a configuration reload (SIGHUP) replaces between two datagrams:
/// enrichment (device names, sampling rates, GeoIP databases, networks file) and the per-flow
/// record selection. Decoder state and open rollup windows are kept.
#[derive(Debug, Clone)]
pub struct Reloadable {
    pub enrichment: EnrichConfig,
    pub country_db: Option<Arc<CountryDb>>,
    pub asn_db: Option<Arc<AsnDb>>,
    /// The networks file's table, and the file's modification time when it was read (the
    /// daemon reads the file again when that changes).
    pub networks: Option<LoadedNetworks>,
    /// Which records per-flow sinks get.
    pub selection: select::Selection,
}

impl Reloadable {
    /// Read the GeoIP databases and compile the record rules of `config`.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).with_context(|| format!("cannot read GeoIP database {}", p.display()))
        };
        let country_db = match &config.enrichment.geoip_country_db {
            Some(p) => Some(Arc::new(
                CountryDb::from_bytes(read(p)?)
                    .with_context(|| format!("invalid GeoIP database {}", p.display()))?,
            )),
            None => None,
        };
        let asn_db = match &config.enrichment.geoip_asn_db {
            Some(p) => Some(Arc::new(
                AsnDb::from_bytes(read(p)?)
                    .with_context(|| format!("invalid ASN database {}", p.display()))?,
            )),
            None => None,
        };
        let networks = match &config.enrichment.networks_file {
            Some(p) => Some(LoadedNetworks::load(p)?),
            None => None,
        };
        Ok(Reloadable {
            enrichment: config.enrichment.clone(),
            country_db,
            asn_db,
            networks,
            selection: select::Selection::new(
                &config.flow_records.rules,
                config.flow_records.sample,
            )
            .map_err(|e| anyhow::anyhow!("flow_records.rules: {e}"))?,
        })
    }

    fn enricher(&self, interface_names: bool) -> Enricher {
        let mut enricher = Enricher::new(&self.enrichment).with_interface_names(interface_names);
        if let Some(db) = &self.country_db {
            enricher = enricher.with_country_db(Arc::clone(db));
        }
        if let Some(db) = &self.asn_db {
            enricher = enricher.with_asn_db(Arc::clone(db));
        }
        if let Some(n) = &self.networks {
            enricher = enricher.with_networks(Arc::clone(&n.table));
        }
        enricher
    }
}

/// A networks file as read: its table and the modification time it had.
#[derive(Debug, Clone)]
pub struct LoadedNetworks {
    pub path: std::path::PathBuf,
    pub table: Arc<Networks>,
    pub modified: Option<std::time::SystemTime>,
}

impl LoadedNetworks {
    /// Read and check the networks file at `path`.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        // The time is taken before reading, so a change during the read is seen next time.
        let modified = modified(path);
        let table = Networks::load(path)?;
        Ok(LoadedNetworks {
            path: path.to_owned(),
            table: Arc::new(table),
            modified,
        })
    }

    /// Whether the file's modification time differs from the one it had when read (a file
    /// that has gone missing counts as changed, so that the failure to read it is reported).
    pub fn changed(&self) -> bool {
        modified(&self.path) != self.modified
    }
}

fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl PipelineSpec {
    /// Read the GeoIP databases once; every worker shares them.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let decoder = config.decoder.to_decoder_config();
        Ok(PipelineSpec {
            budget: Arc::new(Budget::new(&decoder)),
            decoder,
            rollups: config.rollups.clone(),
            interfaces: config.interfaces.clone(),
            interval_secs: config.flush_interval_secs(),
            records: false,
            live: Reloadable::from_config(config)?,
        })
    }
}

impl PipelineSpec {
    /// The record fields the decoder reads: every field when per-flow sinks take the records
    /// (or the decoder keeps unknown fields), else only those the rollups and the interface
    /// name lookup use. The rollups' series are the same either way (`tests/record_fields.rs`).
    fn record_fields(&self, rollups: &RollupSet) -> RecordFields {
        if self.records || self.decoder.keep_unknown_fields {
            return self.decoder.record_fields;
        }
        let names = if rollups.needs_interface_names() {
            RecordFields::INTERFACES
        } else {
            RecordFields::CORE
        };
        rollups.record_fields() | names
    }
}

/// Decoder, enricher, rollups and reusable buffers of one worker.
#[derive(Debug)]
pub struct WorkerPipeline {
    decoder: Decoder,
    out: DecodeOutput,
    enricher: Enricher,
    rollups: RollupSet,
    interfaces: InterfaceMetrics,
    interface_names: bool,
    /// Whether records get their countries: for per-flow sinks, or a rollup keying a country
    /// without its address (the others look countries up when their windows finish).
    countries: bool,
    last_snapshot_ns: u64,
    /// Enriched records collected for per-flow sinks (only with [`PipelineSpec::records`]).
    records: Option<Vec<EnrichedRecord>>,
    selection: select::Selection,
    strangers: Strangers,
}

/// The first datagram of each exporter and reason that is not a flow export is logged, with
/// what it looked like, so a device pointed at the wrong port shows up in the logs; at most
/// [`Strangers::LINES_PER_MINUTE`] lines a minute per worker, and a bounded memory of what was
/// already logged.
#[derive(Debug, Default)]
struct Strangers {
    seen: std::collections::HashSet<(IpAddr, &'static str)>,
    minute_start_ns: u64,
    lines: u32,
}

impl Strangers {
    const LINES_PER_MINUTE: u32 = 10;
    const REMEMBERED: usize = 4096;

    fn note(&mut self, from: SocketAddr, reason: &'static str, datagram: &[u8], now_ns: u64) {
        if self.seen.contains(&(from.ip(), reason)) {
            return;
        }
        if now_ns.saturating_sub(self.minute_start_ns) >= 60_000_000_000 {
            self.minute_start_ns = now_ns;
            self.lines = 0;
        }
        if self.lines >= Self::LINES_PER_MINUTE {
            return;
        }
        if self.seen.len() >= Self::REMEMBERED {
            self.seen.clear();
        }
        self.seen.insert((from.ip(), reason));
        self.lines += 1;
        let head: String = datagram
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        let text = datagram.iter().take(64).all(|b| {
            b.is_ascii_graphic() || *b == b' ' || *b == b'\n' || *b == b'\r' || *b == b'\t'
        });
        warn!(
            exporter = %from,
            reason,
            bytes = datagram.len(),
            first_bytes = %head,
            looks_like = if text { "text" } else { "binary" },
            "not a NetFlow v5/v9, IPFIX or sFlow v5 datagram (first of this exporter; counted in flowtel_decode_errors_total)"
        );
    }
}

impl WorkerPipeline {
    pub fn new(spec: &PipelineSpec) -> anyhow::Result<Self> {
        let mut rollups = RollupSet::new(&spec.rollups)?;
        rollups.set_country_db(spec.live.country_db.clone());
        let interface_names = spec.records || rollups.needs_interface_names();
        let countries = spec.records || rollups.needs_countries();
        let enricher = spec
            .live
            .enricher(interface_names)
            .with_countries(countries);
        let mut decoder = spec.decoder.clone();
        decoder.record_fields = spec.record_fields(&rollups);
        Ok(WorkerPipeline {
            decoder: Decoder::with_budget(decoder, Arc::clone(&spec.budget)),
            out: DecodeOutput::default(),
            enricher,
            rollups,
            interfaces: InterfaceMetrics::new(&spec.interfaces, spec.interval_secs),
            interface_names,
            countries,
            last_snapshot_ns: 0,
            records: spec.records.then(Vec::new),
            selection: spec.live.selection.clone(),
            strangers: Strangers::default(),
        })
    }

    /// The record fields this pipeline's decoder reads (see [`PipelineSpec`]'s choice).
    pub fn record_fields(&self) -> RecordFields {
        self.decoder.config().record_fields
    }

    /// Replace enrichment and record selection (a configuration reload). Counters carry on.
    pub fn reload(&mut self, live: &Reloadable) {
        let stats = *self.enricher.stats();
        self.enricher = live
            .enricher(self.interface_names)
            .with_countries(self.countries)
            .with_stats(stats);
        self.rollups.set_country_db(live.country_db.clone());
        self.selection = live.selection.clone();
    }

    /// Decode one datagram from `from`, roll its records up and count it. `exporter` is `from`'s
    /// address with the hash taken when the datagram arrived (the decoder reuses it);
    /// `tracked` is false when the exporter table is full (counted under `exporter="other"`).
    pub fn process(
        &mut self,
        from: SocketAddr,
        exporter: ExporterKey,
        tracked: bool,
        datagram: &[u8],
        now_ns: u64,
        stats: &mut WorkerStats,
    ) {
        self.out.clear();
        let report = if self.records.is_none() && !self.interface_names {
            // Metrics only: each record goes to the rollups as it is read (see
            // `Decoder::decode_streaming`); `out` keeps the counter and drop records.
            let mut sink = RollupSink {
                enricher: &mut self.enricher,
                rollups: &mut self.rollups,
            };
            self.decoder.decode_streaming(
                from,
                exporter.hash(),
                datagram,
                now_ns,
                &mut self.out,
                &mut sink,
            )
        } else {
            self.decoder
                .decode_prehashed(from, exporter.hash(), datagram, now_ns, &mut self.out)
        };
        stats.count_datagram(tracked.then_some(exporter), &report, datagram.len(), now_ns);
        if report.protocol.is_none()
            && let Some(e) = report.errors.first()
        {
            self.strangers.note(from, e.kind.as_str(), datagram, now_ns);
        }
        stats.counter_records += report.counters as u64;
        stats.drop_records += report.drops as u64;
        for c in &self.out.counters {
            let agent = Some(c.agent).filter(|a| !a.is_unspecified());
            let device = self.enricher.device(agent.unwrap_or(c.exporter.ip()));
            self.interfaces.push_counters(c, &device);
        }
        for d in &self.out.drops {
            let device = self.enricher.device(d.agent.unwrap_or(d.exporter.ip()));
            self.interfaces.push_drop(d, &device);
        }
        let names = DecoderNames(&self.decoder);
        let names: Option<&dyn InterfaceNames> = if self.interface_names {
            Some(&names)
        } else {
            None
        };
        let (rollups, records, selection) =
            (&mut self.rollups, &mut self.records, &mut self.selection);
        self.enricher.enrich_each(&self.out.flows, names, |e| {
            rollups.push(e);
            if let Some(records) = records {
                match selection.select(e) {
                    select::Verdict::Keep(factor) => {
                        let mut r = e.to_record();
                        if factor > 1 {
                            r.sampling_rate = r.sampling_rate.saturating_mul(factor);
                            r.record.sampling_rate =
                                r.record.sampling_rate.map(|s| s.saturating_mul(factor));
                        }
                        stats.flow_records_selected += 1;
                        records.push(r);
                    }
                    select::Verdict::Filtered => stats.flow_records_filtered += 1,
                    select::Verdict::SampledOut => stats.flow_records_sampled_out += 1,
                }
            }
        });
        if now_ns.saturating_sub(self.last_snapshot_ns) >= SNAPSHOT_EVERY_NS {
            self.snapshot(stats, now_ns);
        }
    }

    /// Decoder housekeeping with no datagram (a timer, or another worker asking for room):
    /// pending sets expire on time and memory goes back to the shared budget when asked; the
    /// counters are copied for readers.
    pub fn maintain(&mut self, now_ns: u64, stats: &mut WorkerStats) {
        self.decoder.maintain(now_ns);
        if now_ns.saturating_sub(self.last_snapshot_ns) >= SNAPSHOT_EVERY_NS {
            self.snapshot(stats, now_ns);
        }
    }

    /// Whether this pipeline's decoder asked the other workers' decoders for room since the last
    /// call (see [`flowtel_decode::Decoder::take_reclaim_request`]).
    pub fn take_reclaim_request(&mut self) -> bool {
        self.decoder.take_reclaim_request()
    }

    fn snapshot(&mut self, stats: &mut WorkerStats, now_ns: u64) {
        self.last_snapshot_ns = now_ns;
        // The rollups' batches span datagrams (see `Rollup::settle`); added now, the
        // published key counts include every record taken so far.
        self.rollups.settle();
        stats.snapshot = Some(PipelineSnapshot {
            decoder: DecoderSnapshot {
                stats: self.decoder.stats().clone(),
                templates: self.decoder.template_count(),
                pending_sets: self.decoder.pending_sets(),
            },
            enrich: *self.enricher.stats(),
            rollups: self
                .rollups
                .stats()
                .into_iter()
                .map(|(name, s)| (Arc::from(name), s))
                .collect(),
            keys_tracked: self
                .rollups
                .rollups()
                .iter()
                .map(|r| r.keys_tracked() as u64)
                .sum(),
            interfaces: self.interfaces.stats(),
        });
    }

    /// The windows closed at `now_ns` (every window, the open one included, with `last`),
    /// unfinished, for merging with the other workers'.
    pub fn flush(&mut self, now_ns: u64, last: bool, stats: &mut WorkerStats) -> Flushed {
        let flushed = if last {
            Flushed {
                rollups: self
                    .rollups
                    .rollups_mut()
                    .iter_mut()
                    .flat_map(|r| r.take_all())
                    .collect(),
                interfaces: self.interfaces.take_all(),
            }
        } else {
            Flushed {
                rollups: self.rollups.take_closed(now_ns),
                interfaces: self.interfaces.take_closed(now_ns),
            }
        };
        self.snapshot(stats, now_ns);
        flushed
    }

    /// The enriched records collected since the last call (empty without
    /// [`PipelineSpec::records`]).
    pub fn take_records(&mut self) -> Vec<EnrichedRecord> {
        match &mut self.records {
            Some(r) => std::mem::replace(r, Vec::with_capacity(r.capacity())),
            None => Vec::new(),
        }
    }
}

/// Enriches the records a metrics-only pipeline's decoder hands over and adds them to the
/// rollups.
struct RollupSink<'p> {
    enricher: &'p mut Enricher,
    rollups: &'p mut RollupSet,
}

impl FlowSink for RollupSink<'_> {
    fn flows(&mut self, records: &[FlowRecord]) {
        let rollups = &mut *self.rollups;
        self.enricher
            .enrich_each(records, None, |e| rollups.push(e));
    }
}

/// What one or several workers' pipelines give at a flush: closed windows, unfinished.
#[derive(Debug, Default)]
pub struct Flushed {
    pub rollups: Vec<WindowAggregate>,
    pub interfaces: Vec<InterfaceWindow>,
}

impl Flushed {
    pub fn is_empty(&self) -> bool {
        self.rollups.is_empty() && self.interfaces.is_empty()
    }

    /// Add another worker's windows.
    pub fn extend(&mut self, other: Flushed) {
        self.rollups.extend(other.rollups);
        self.interfaces.extend(other.interfaces);
    }

    /// Merge and finish: the rollups' windows ([`merge_windows`]), then the interface
    /// metrics' (one batch per window).
    pub fn finish(self, finished: &mut BTreeMap<Arc<str>, RollupStats>) -> Vec<WindowBatch> {
        let mut out = merge_windows(self.rollups, finished);
        out.extend(merge_interface_windows(self.interfaces));
        out
    }
}

/// Merge the same window of every worker, then finish each (top-K over the merged window).
/// Output order: window start, then rollup name. `finished` accumulates each rollup's counters.
pub fn merge_windows(
    aggregates: Vec<WindowAggregate>,
    finished: &mut BTreeMap<Arc<str>, RollupStats>,
) -> Vec<WindowBatch> {
    let mut groups: BTreeMap<(u64, String), WindowAggregate> = BTreeMap::new();
    for a in aggregates {
        let key = (a.start_time_unix_nano(), a.rollup().to_owned());
        match groups.remove(&key) {
            None => {
                groups.insert(key, a);
            }
            Some(mut merged) => {
                if let Err(e) = merged.merge(a) {
                    // Same key means same rollup and window: a bug, never input.
                    error!(error = %e, "cannot merge worker windows");
                }
                groups.insert(key, merged);
            }
        }
    }
    groups
        .into_iter()
        .map(|((_, name), a)| {
            let stats = finished.entry(Arc::from(name.as_str())).or_default();
            a.finish(stats)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtel_encode::{ExportVersion, FieldSpec, MessageHeader, MessageWriter};

    /// The rollups batch their records; a datagram's are all added by the time the worker's
    /// counters are read, so the keys gauge counts them.
    #[test]
    fn the_keys_gauge_counts_every_record_of_the_datagram() {
        let spec = PipelineSpec::from_config(&Config::default()).unwrap();
        let mut p = WorkerPipeline::new(&spec).unwrap();
        // IPFIX: source and destination IPv4 address, ports, protocol, octets (RFC 7012).
        let fields = [
            FieldSpec::new(8, 4),
            FieldSpec::new(12, 4),
            FieldSpec::new(7, 2),
            FieldSpec::new(11, 2),
            FieldSpec::new(4, 1),
            FieldSpec::new(1, 8),
        ];
        let mut w = MessageWriter::new(ExportVersion::Ipfix, MessageHeader::default());
        w.template(256, &fields);
        for n in 0..5u16 {
            let mut r = vec![10, 0, 0, 1, 198, 51, 100, 7];
            r.extend((40_000 + n).to_be_bytes());
            r.extend(443u16.to_be_bytes());
            r.push(6);
            r.extend(1500u64.to_be_bytes());
            w.data_record(256, &r);
        }
        let from: SocketAddr = "192.0.2.7:4739".parse().unwrap();
        let mut stats = WorkerStats::default();
        let now_ns = 1_700_000_000_000_000_000;
        p.process(
            from,
            ExporterKey::new(from.ip()),
            true,
            &w.finish(),
            now_ns,
            &mut stats,
        );
        let snapshot = stats.snapshot.expect("the first datagram takes a snapshot");
        assert_eq!(snapshot.keys_tracked, 5);
    }
}
