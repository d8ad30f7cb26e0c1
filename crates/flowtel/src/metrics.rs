//! flowtel's own metrics: the table of definitions, and the families read from the daemon's
//! counters.
//!
//! Every metric the daemon exports about itself is one [`Def`] below (name, unit, kind, help),
//! listed in [`ALL`]; the README's metrics reference is checked against that list. [`families`]
//! fills the definitions with values at read time, for both `/metrics` and the OTLP
//! self-metrics (see [`crate::telemetry`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use flowtel_decode::{Budget, ErrorKind, FlowProtocol, Limit, StateKind};
use flowtel_rollup::RollupStats;
use flowtel_rollup::interfaces::{Baseline, Skip};

use crate::pipeline::stats::{DropReason, WorkerStats};
use crate::telemetry::{Family, Kind};

/// One metric's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Def {
    /// OpenTelemetry name, e.g. `flowtel.datagrams`.
    pub name: &'static str,
    /// UCUM unit, e.g. `By`, `{datagram}`.
    pub unit: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

impl Def {
    /// An empty family of this metric.
    pub fn family(&self) -> Family {
        Family::new(self.name, self.unit, self.kind, self.help)
    }

    /// A family of this metric with one unlabelled value.
    pub fn value(&self, v: u64) -> Family {
        self.family().with(vec![], v)
    }
}

macro_rules! defs {
    ($($id:ident = $name:literal, $unit:literal, $kind:ident, $help:literal;)*) => {
        $(pub const $id: Def = Def { name: $name, unit: $unit, kind: Kind::$kind, help: $help };)*
        /// Every metric of the daemon itself, in `/metrics` order.
        pub const ALL: &[Def] = &[$($id),*];
    };
}

defs! {
    DATAGRAMS = "flowtel.datagrams", "{datagram}", Counter,
        "UDP datagrams received, by exporter address and detected protocol.";
    RECEIVED = "flowtel.received", "By", Counter,
        "UDP payload bytes received, by exporter address and detected protocol.";
    RECORDS = "flowtel.records", "{record}", Counter, "Flow records decoded, by protocol.";
    COUNTER_RECORDS = "flowtel.counter_records", "{record}", Counter, "sFlow counter samples decoded.";
    DROP_RECORDS = "flowtel.drop_records", "{record}", Counter,
        "sFlow drop notifications (discarded-packet samples) decoded.";
    INTERFACES_TRACKED = "flowtel.interfaces.tracked", "{interface}", Gauge,
        "Interfaces and drop-notification sources whose previous sFlow sample is kept, over all workers.";
    INTERFACES_BASELINES = "flowtel.interfaces.baselines", "{sample}", Counter,
        "sFlow counter samples taken as a new starting point (no increase computed), by reason: new, agent_restart, counter_reset.";
    INTERFACES_SKIPPED = "flowtel.interfaces.skipped", "{sample}", Counter,
        "sFlow counter samples not used, by reason: out_of_order (reordered or repeated), table_full (interfaces.max_interfaces).";
    DECODE_ERRORS = "flowtel.decode.errors", "{error}", Counter,
        "Decode problems by reason; the rest of the datagram is still decoded where possible.";
    LIMIT_HITS = "flowtel.decode.limit_hits", "{event}", Counter,
        "Times a bound on exporter-controlled state refused something, by limit (counted here only).";
    DECODE_MEMORY = "flowtel.decode.memory", "By", Gauge,
        "Bytes of decoder state (templates, options data, pending data sets), over all workers.";
    DECODE_MEMORY_BUDGET = "flowtel.decode.memory.budget", "By", Gauge,
        "decoder.memory_budget_bytes: the most decoder state kept before the least recently used is evicted.";
    DECODE_EVICTIONS = "flowtel.decode.evictions", "{entry}", Counter,
        "Decoder state evicted, least recently used first, to stay within the memory budget, by kind.";
    SAMPLING_UNKNOWN = "flowtel.sampling.unknown", "{record}", Counter,
        "Flow records whose sampling rate could not be resolved (a default was applied).";
    TEMPLATES = "flowtel.templates", "{template}", Gauge, "Templates currently known, over all exporters.";
    TEMPLATES_LEARNT = "flowtel.templates.learnt", "{template}", Counter,
        "Templates and options templates learnt.";
    PENDING_SETS = "flowtel.pending.sets", "{set}", Gauge,
        "Data sets waiting for their template, over all workers.";
    PENDING_EXPIRED = "flowtel.pending.expired", "{set}", Counter,
        "Data sets discarded because their template never came.";
    PENDING_DROPPED = "flowtel.pending.dropped", "{set}", Counter,
        "Data sets discarded because the pending buffer was full (max_pending_sets, or a quarter of the memory budget).";
    EXPORTERS_ACTIVE = "flowtel.exporters.active", "{exporter}", Gauge,
        "Exporters in the ownership table that sent a datagram recently.";
    EXPORTERS_KNOWN = "flowtel.exporters.known", "{exporter}", Gauge, "Exporters in the ownership table.";
    HANDED_OVER = "flowtel.datagrams.handed_over", "{datagram}", Counter,
        "Datagrams passed to the worker that owns their exporter's templates.";
    DATAGRAMS_DROPPED = "flowtel.datagrams.dropped", "{datagram}", Counter,
        "Datagrams received but not decoded, by reason.";
    SOCKET_DROPS = "flowtel.socket.drops", "{datagram}", Counter,
        "Datagrams the kernel dropped because a socket's receive buffer was full (the drops of the \
         daemon's sockets in /proc/net/udp).";
    RECEIVE_ERRORS = "flowtel.receive.errors", "{error}", Counter, "Failed receive system calls.";
    RECEIVE_BATCHES = "flowtel.receive.batches", "{batch}", Counter,
        "Receive system calls (recvmmsg) that returned datagrams; datagrams per batch show how well wake-ups are shared.";
    RECEIVE_PAUSES = "flowtel.receive.pauses", "{pause}", Counter,
        "Pauses of a receive worker after a pass that emptied its sockets (receive_coalesce_us).";
    ROLLUP_KEYS = "flowtel.rollup.keys", "{key}", Gauge,
        "Keys held by the rollups' open windows, over all workers.";
    GEO_ERRORS = "flowtel.enrich.geo_errors", "{lookup}", Counter,
        "GeoIP country or ASN lookups that failed (corrupt database).";
    ROLLUP_RECORDS = "flowtel.rollup.records", "{record}", Counter, "Records pushed into each rollup.";
    ROLLUP_FILTERED = "flowtel.rollup.filtered", "{record}", Counter,
        "Records a rollup did not count because of its direction filter.";
    ROLLUP_LATE = "flowtel.rollup.late", "{record}", Counter,
        "Records older than the oldest open window, added to it (never dropped).";
    WINDOWS_EMITTED = "flowtel.windows.emitted", "{window}", Counter, "Windows handed to the sinks, by rollup.";
    SERIES_EMITTED = "flowtel.series.emitted", "{series}", Counter,
        "Points emitted (one per series per window, overflow included), by rollup.";
    ROLLUP_OVERFLOW = "flowtel.rollup.overflow", "{series}", Counter,
        "Series beyond top-K summed into the overflow series (otel.metric.overflow=true), by rollup.";
    ROLLUP_EVICTED = "flowtel.rollup.evicted", "{key}", Counter,
        "Keys evicted by the bounded key table (their value went to the overflow series), by rollup.";
    FLOW_RECORDS_SELECTED = "flowtel.flow_records.selected", "{record}", Counter,
        "Flow records handed to the per-flow sinks.";
    FLOW_RECORDS_SKIPPED = "flowtel.flow_records.skipped", "{record}", Counter,
        "Flow records the per-flow sinks did not get, by reason (rule: a flow_records rule; sample: flow_records.sample).";
    EXPORT_REQUESTS = "flowtel.export.requests", "{request}", Counter, "OTLP export requests answered OK.";
    EXPORT_FAILED = "flowtel.export.failed", "{request}", Counter,
        "Failed export attempts, by reason: the gRPC status the server answered, or timeout, connect, tls_handshake, transport.";
    EXPORT_RETRIES = "flowtel.export.retries", "{request}", Counter,
        "Export attempts made after a retryable failure.";
    EXPORT_POINTS_SENT = "flowtel.export.points.sent", "{point}", Counter, "Data points in requests answered OK.";
    EXPORT_POINTS_REJECTED = "flowtel.export.points.rejected", "{point}", Counter,
        "Data points the receiver rejected in a partial success.";
    EXPORT_POINTS_FAILED = "flowtel.export.points.failed", "{point}", Counter,
        "Data points given up on (non-retryable error).";
    EXPORT_WINDOWS_QUEUED = "flowtel.export.windows.queued", "{window}", Counter,
        "Windows accepted by the export queue.";
    EXPORT_WINDOWS_DROPPED = "flowtel.export.windows.dropped", "{window}", Counter,
        "Windows dropped before export, by reason.";
    EXPORT_POINTS_DROPPED = "flowtel.export.points.dropped", "{point}", Counter,
        "Data points in the windows dropped before export, by reason.";
    EXPORT_QUEUE_DEPTH = "flowtel.queue.depth", "{window}", Gauge, "Windows waiting in the export queue.";
    EXPORT_FAILING = "flowtel.export.failing", "1", Gauge,
        "1 while the OTLP endpoint fails (from the first failed attempt to the next success), else 0.";
    SINK_DELIVERED = "flowtel.sink.delivered", "{item}", Counter,
        "Items each sink delivered (a window of one rollup for metric sinks, a flow record for per-flow sinks).";
    SINK_DROPPED = "flowtel.sink.dropped", "{item}", Counter,
        "Items each sink dropped, by reason (queue_full, shutdown, failed).";
    SINK_QUEUE_DEPTH = "flowtel.sink.queue.depth", "{item}", Gauge, "Items waiting in each sink's queue.";
    SINK_QUEUE_CAPACITY = "flowtel.sink.queue.capacity", "{item}", Gauge, "The bound of each sink's queue.";
    SINK_FAILING = "flowtel.sink.failing", "1", Gauge, "1 while a sink's deliveries fail, else 0.";
    KAFKA_CONNECTED = "flowtel.kafka.connected", "1", Gauge,
        "1 while the Kafka brokers answer the kafka sink (its last metadata or produce request got an answer), else 0.";
    KAFKA_PARTITIONS = "flowtel.kafka.partitions", "{partition}", Gauge,
        "Partitions of the kafka sink's topic, from the last metadata refresh.";
    KAFKA_ERRORS = "flowtel.kafka.errors", "{error}", Counter,
        "Failed Kafka requests (connect, metadata, produce) by reason: connect, tls_handshake, auth, unknown_topic, timeout, transport, broker, rejected.";
    KAFKA_PRODUCE_REQUESTS = "flowtel.kafka.produce.requests", "{request}", Counter,
        "Produce requests acknowledged by the partition leaders (acks=all).";
    KAFKA_PRODUCE_TIME = "flowtel.kafka.produce.time", "us", Counter,
        "Time from sending each acknowledged produce request to its acknowledgement, summed; divided by flowtel.kafka.produce.requests it is the mean produce latency.";
    KAFKA_PRODUCED_RECORDS = "flowtel.kafka.produced.records", "{record}", Counter,
        "Records acknowledged by the brokers.";
    KAFKA_PRODUCED_BYTES = "flowtel.kafka.produced.bytes", "By", Counter,
        "Key and value bytes of the acknowledged records, before compression.";
}

/// The `exporter` label: the address, or `other` beyond the tracked exporters.
pub fn exporter_label(ip: &Option<IpAddr>) -> String {
    ip.map_or_else(|| "other".to_owned(), |ip| ip.to_string())
}

/// What the receive side's families are read from.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// Every worker's counters, summed.
    pub totals: &'a WorkerStats,
    /// Rollup counters of the flush loop's finishing of merged windows.
    pub finished: &'a BTreeMap<Arc<str>, RollupStats>,
    /// Exporters in the ownership table.
    pub exporters_known: u64,
    /// Exporters whose last datagram is more recent than this (Unix ns) are active.
    pub active_since_ns: u64,
    /// The decoder state limits the workers share: live, daemon-wide usage.
    pub budget: &'a Budget,
}

/// The receive side's families: datagrams, decoding, exporters, rollups.
pub fn families(i: &Inputs<'_>) -> Vec<Family> {
    let t = i.totals;
    let mut datagrams = DATAGRAMS.family();
    let mut received = RECEIVED.family();
    let mut exporters: Vec<_> = t
        .exporters
        .iter()
        .map(|(k, e)| (k.map(|k| k.ip()), e))
        .collect();
    exporters.sort_by_key(|(ip, _)| *ip);
    let mut active = 0u64;
    for (ip, e) in exporters {
        for (p, c) in e.by_protocol.iter() {
            if c.datagrams == 0 {
                continue;
            }
            let labels = vec![
                ("exporter", exporter_label(&ip)),
                ("protocol", FlowProtocol::label(p).to_owned()),
            ];
            datagrams.push(labels.clone(), c.datagrams);
            received.push(labels, c.bytes);
        }
        // `other` (beyond the ownership table) is not an exporter: active never exceeds known.
        if ip.is_some() && e.last_seen_ns > i.active_since_ns {
            active += 1;
        }
    }
    let mut records = RECORDS.family();
    let by_protocol = t.by_protocol();
    for p in FlowProtocol::ALL {
        records.push(
            vec![("protocol", p.as_str().to_owned())],
            by_protocol.get(Some(p)).records,
        );
    }
    let snap = t.snapshot.clone().unwrap_or_default();
    let d = &snap.decoder;
    let mut errors = DECODE_ERRORS.family();
    // Refusals by a limit are counted once, in `limit_hits`.
    for k in ErrorKind::ALL.iter().filter(|k| k.limit().is_none()) {
        errors.push(
            vec![("reason", k.as_str().to_owned())],
            d.stats.errors.get(k).copied().unwrap_or(0),
        );
    }
    let mut limits = LIMIT_HITS.family();
    for l in Limit::ALL {
        limits.push(
            vec![("limit", l.as_str().to_owned())],
            d.stats.limit_hits.get(l).copied().unwrap_or(0),
        );
    }
    let mut evictions = DECODE_EVICTIONS.family();
    for k in StateKind::ALL {
        evictions.push(
            vec![("kind", k.as_str().to_owned())],
            d.stats.evictions_for(*k),
        );
    }
    let mut dropped = DATAGRAMS_DROPPED.family();
    for r in DropReason::ALL {
        dropped.push(
            vec![("reason", r.as_str().to_owned())],
            t.dropped.get(&r).copied().unwrap_or(0),
        );
    }
    let ifs = &snap.interfaces;
    let mut baselines = INTERFACES_BASELINES.family();
    for b in Baseline::ALL {
        baselines.push(vec![("reason", b.as_str().to_owned())], ifs.baselines(b));
    }
    let mut skipped = INTERFACES_SKIPPED.family();
    for k in Skip::ALL {
        skipped.push(vec![("reason", k.as_str().to_owned())], ifs.skipped(k));
    }
    let mut out = vec![
        datagrams,
        received,
        records,
        COUNTER_RECORDS.value(t.counter_records),
        DROP_RECORDS.value(t.drop_records),
        INTERFACES_TRACKED.value(ifs.tracked),
        baselines,
        skipped,
        errors,
        limits,
        DECODE_MEMORY.value(i.budget.memory_bytes() as u64),
        DECODE_MEMORY_BUDGET.value(i.budget.memory_limit() as u64),
        evictions,
        SAMPLING_UNKNOWN.value(snap.enrich.unknown_sampling_rate),
        TEMPLATES.value(d.templates as u64),
        TEMPLATES_LEARNT.value(d.stats.templates_learnt),
        PENDING_SETS.value(i.budget.pending_sets() as u64),
        PENDING_EXPIRED.value(d.stats.pending_expired),
        PENDING_DROPPED.value(d.stats.pending_dropped),
        EXPORTERS_ACTIVE.value(active),
        EXPORTERS_KNOWN.value(i.exporters_known),
        HANDED_OVER.value(t.handed_over),
        dropped,
        SOCKET_DROPS.value(t.socket_drops),
        RECEIVE_ERRORS.value(t.recv_errors),
        RECEIVE_BATCHES.value(t.recv_batches),
        RECEIVE_PAUSES.value(t.recv_pauses),
        ROLLUP_KEYS.value(snap.keys_tracked),
        // Per record in the workers, and per emitted series for the countries the rollups
        // look up when they finish a window.
        GEO_ERRORS.value(
            snap.enrich.geo_lookup_errors
                + snap.enrich.asn_lookup_errors
                + i.finished
                    .values()
                    .map(|s| s.geo_lookup_errors)
                    .sum::<u64>(),
        ),
        FLOW_RECORDS_SELECTED.value(t.flow_records_selected),
        FLOW_RECORDS_SKIPPED
            .family()
            .with(vec![("reason", "rule".to_owned())], t.flow_records_filtered)
            .with(
                vec![("reason", "sample".to_owned())],
                t.flow_records_sampled_out,
            ),
    ];
    out.extend(rollup_families(&snap.rollups, i.finished));
    out
}

/// `flowtel.rollup.*`: per rollup, from the workers (records in) and the flush loop (windows).
fn rollup_families(
    workers: &[(Arc<str>, RollupStats)],
    finished: &BTreeMap<Arc<str>, RollupStats>,
) -> Vec<Family> {
    let (mut records, mut filtered, mut late) = (
        ROLLUP_RECORDS.family(),
        ROLLUP_FILTERED.family(),
        ROLLUP_LATE.family(),
    );
    for (name, s) in workers {
        let l = || vec![("rollup", name.to_string())];
        records.push(l(), s.records_in);
        filtered.push(l(), s.records_filtered);
        late.push(l(), s.late_records);
    }
    let (mut windows, mut series, mut overflow, mut evicted) = (
        WINDOWS_EMITTED.family(),
        SERIES_EMITTED.family(),
        ROLLUP_OVERFLOW.family(),
        ROLLUP_EVICTED.family(),
    );
    for (name, s) in finished {
        let l = || vec![("rollup", name.to_string())];
        windows.push(l(), s.windows_emitted);
        series.push(l(), s.points_emitted);
        overflow.push(l(), s.keys_overflowed);
        evicted.push(l(), s.keys_evicted);
    }
    vec![records, filtered, late, windows, series, overflow, evicted]
}
