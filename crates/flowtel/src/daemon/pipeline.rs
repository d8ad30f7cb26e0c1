//! One worker's synchronous pipeline: decode, enrich and roll up one datagram at a time.
//!
//! This is the same decode -> enrich -> rollup sequence as the offline pipeline, fed by the
//! socket clock instead of capture timestamps. The worker's rollups produce unfinished
//! [`WindowAggregate`]s; the flush loop merges the same window of every worker and only then
//! selects the top-K (see [`super::merge_windows`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig};
use flowtel_rollup::{
    AsnDb, CountryDb, EnrichConfig, Enricher, InterfaceNames, RollupConfig, RollupSet,
    WindowAggregate,
};

use super::stats::{DecoderSnapshot, PipelineSnapshot, ProtocolLabel, WorkerStats};

/// How often (in receive-time nanoseconds) a worker copies its decoder and rollup counters for
/// readers.
const SNAPSHOT_EVERY_NS: u64 = 250_000_000;

/// Interface names from the decoder's options data, for the enricher.
struct DecoderNames<'a>(&'a Decoder);

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

/// What every worker's pipeline is built from (GeoIP databases are read once and shared).
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    pub decoder: DecoderConfig,
    pub enrichment: EnrichConfig,
    pub rollups: Vec<RollupConfig>,
    pub country_db: Option<Arc<CountryDb>>,
    pub asn_db: Option<Arc<AsnDb>>,
}

/// Decoder, enricher, rollups and reusable buffers of one worker.
#[derive(Debug)]
pub struct WorkerPipeline {
    decoder: Decoder,
    out: DecodeOutput,
    enricher: Enricher,
    rollups: RollupSet,
    interface_names: bool,
    last_snapshot_ns: u64,
}

impl WorkerPipeline {
    pub fn new(spec: &PipelineSpec) -> anyhow::Result<Self> {
        let rollups = RollupSet::new(&spec.rollups)?;
        let interface_names = rollups.needs_interface_names();
        let mut enricher = Enricher::new(&spec.enrichment).with_interface_names(interface_names);
        if let Some(db) = &spec.country_db {
            enricher = enricher.with_country_db(Arc::clone(db));
        }
        if let Some(db) = &spec.asn_db {
            enricher = enricher.with_asn_db(Arc::clone(db));
        }
        Ok(WorkerPipeline {
            decoder: Decoder::new(spec.decoder.clone()),
            out: DecodeOutput::default(),
            enricher,
            rollups,
            interface_names,
            last_snapshot_ns: 0,
        })
    }

    /// Decode one datagram, roll its records up and count it. `exporter_label` is `None` when
    /// the exporter table is full (counted under `exporter="other"`).
    pub fn process(
        &mut self,
        from: SocketAddr,
        exporter_label: Option<IpAddr>,
        datagram: &[u8],
        now_ns: u64,
        stats: &mut WorkerStats,
    ) {
        self.out.clear();
        let report = self.decoder.decode(from, datagram, now_ns, &mut self.out);
        stats.count_datagram(
            exporter_label,
            ProtocolLabel::from_protocol(report.protocol),
            datagram.len(),
            report.records,
            now_ns,
        );
        stats.counter_records += report.counters as u64;
        let names = DecoderNames(&self.decoder);
        let names: Option<&dyn InterfaceNames> = if self.interface_names {
            Some(&names)
        } else {
            None
        };
        for record in &self.out.flows {
            let e = self.enricher.enrich(record, names);
            self.rollups.push(&e);
        }
        if now_ns.saturating_sub(self.last_snapshot_ns) >= SNAPSHOT_EVERY_NS {
            self.snapshot(stats, now_ns);
        }
    }

    fn snapshot(&mut self, stats: &mut WorkerStats, now_ns: u64) {
        self.last_snapshot_ns = now_ns;
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
        });
    }

    /// The windows closed at `now_ns` (every window, the open one included, with `last`),
    /// unfinished, for merging with the other workers'.
    pub fn flush(
        &mut self,
        now_ns: u64,
        last: bool,
        stats: &mut WorkerStats,
    ) -> Vec<WindowAggregate> {
        let windows = if last {
            self.rollups
                .rollups_mut()
                .iter_mut()
                .flat_map(|r| r.take_all())
                .collect()
        } else {
            self.rollups.take_closed(now_ns)
        };
        self.snapshot(stats, now_ns);
        windows
    }
}
