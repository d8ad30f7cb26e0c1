//! Receive-side counters, kept per worker and summed when read.
//!
//! A worker accumulates a batch's counts in a local [`WorkerStats`] and merges it into its shared
//! copy once per batch (an uncontended mutex, locked only by that worker and by readers), so the
//! per-datagram path takes no lock. Labels are bounded: protocols and reasons are closed enums;
//! exporters are bounded by the exporter table (`MAX_EXPORTERS`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use std::sync::Arc;

use flowtel_decode::{DecoderStats, FlowProtocol};
use flowtel_rollup::{EnrichStats, RollupStats};

/// A worker pipeline's cumulative counters and current state sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineSnapshot {
    pub decoder: DecoderSnapshot,
    pub enrich: EnrichStats,
    /// Per rollup, in configuration order.
    pub rollups: Vec<(Arc<str>, RollupStats)>,
    /// Keys held by the rollups' open windows.
    pub keys_tracked: u64,
}

impl PipelineSnapshot {
    /// Sum of several workers' snapshots.
    pub fn add(&mut self, o: &PipelineSnapshot) {
        self.decoder.add(&o.decoder);
        self.enrich.merge(&o.enrich);
        for (name, s) in &o.rollups {
            match self.rollups.iter_mut().find(|(n, _)| n == name) {
                Some((_, mine)) => mine.merge(s),
                None => self.rollups.push((Arc::clone(name), *s)),
            }
        }
        self.keys_tracked += o.keys_tracked;
    }
}

/// A decoder's cumulative counters plus its current state sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecoderSnapshot {
    pub stats: DecoderStats,
    /// Templates currently known.
    pub templates: usize,
    /// Data sets waiting for their template.
    pub pending_sets: usize,
}

impl DecoderSnapshot {
    /// Sum of several workers' snapshots.
    pub fn add(&mut self, o: &DecoderSnapshot) {
        let (a, b) = (&mut self.stats, &o.stats);
        a.datagrams += b.datagrams;
        for (k, v) in &b.datagrams_by_protocol {
            *a.datagrams_by_protocol.entry(k).or_default() += v;
        }
        for (k, v) in &b.errors {
            *a.errors.entry(*k).or_default() += v;
        }
        for (k, v) in &b.records {
            *a.records.entry(k).or_default() += v;
        }
        a.options_records += b.options_records;
        a.templates_learnt += b.templates_learnt;
        a.templates_withdrawn += b.templates_withdrawn;
        a.pending_held += b.pending_held;
        a.pending_released += b.pending_released;
        a.pending_expired += b.pending_expired;
        a.pending_dropped += b.pending_dropped;
        for (k, v) in &b.limit_hits {
            *a.limit_hits.entry(*k).or_default() += v;
        }
        a.sampling_rate_unknown += b.sampling_rate_unknown;
        self.templates += o.templates;
        self.pending_sets += o.pending_sets;
    }
}

/// Exporters tracked for ownership and counters; beyond it datagrams are still decoded locally,
/// counted under `exporter="other"`.
pub const MAX_EXPORTERS: usize = 10_000;

/// The `protocol` label: a detected format or `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolLabel {
    NetflowV5,
    NetflowV9,
    Ipfix,
    SflowV5,
    Unknown,
}

impl ProtocolLabel {
    pub const ALL: [ProtocolLabel; 5] = [
        ProtocolLabel::NetflowV5,
        ProtocolLabel::NetflowV9,
        ProtocolLabel::Ipfix,
        ProtocolLabel::SflowV5,
        ProtocolLabel::Unknown,
    ];

    pub fn from_protocol(p: Option<FlowProtocol>) -> Self {
        match p {
            Some(FlowProtocol::NetflowV5) => ProtocolLabel::NetflowV5,
            Some(FlowProtocol::NetflowV9) => ProtocolLabel::NetflowV9,
            Some(FlowProtocol::Ipfix) => ProtocolLabel::Ipfix,
            Some(FlowProtocol::SflowV5) => ProtocolLabel::SflowV5,
            None => ProtocolLabel::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolLabel::NetflowV5 => "netflow_v5",
            ProtocolLabel::NetflowV9 => "netflow_v9",
            ProtocolLabel::Ipfix => "ipfix",
            ProtocolLabel::SflowV5 => "sflow_v5",
            ProtocolLabel::Unknown => "unknown",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a received datagram was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The owning worker's hand-over queue was full.
    HandoverQueueFull,
    /// Received after shutdown began.
    ShuttingDown,
}

impl DropReason {
    pub const ALL: [DropReason; 2] = [DropReason::HandoverQueueFull, DropReason::ShuttingDown];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::HandoverQueueFull => "handover_queue_full",
            DropReason::ShuttingDown => "shutting_down",
        }
    }
}

/// Datagrams and bytes of one protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub datagrams: u64,
    pub bytes: u64,
}

/// What one exporter sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExporterStats {
    pub by_protocol: [Count; 5],
    pub records: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
}

impl ExporterStats {
    pub fn datagrams(&self) -> u64 {
        self.by_protocol.iter().map(|c| c.datagrams).sum()
    }

    fn merge(&mut self, other: &ExporterStats) {
        for (a, b) in self.by_protocol.iter_mut().zip(other.by_protocol.iter()) {
            a.datagrams += b.datagrams;
            a.bytes += b.bytes;
        }
        self.records += other.records;
        if self.first_seen_ns == 0
            || (other.first_seen_ns != 0 && other.first_seen_ns < self.first_seen_ns)
        {
            self.first_seen_ns = other.first_seen_ns;
        }
        self.last_seen_ns = self.last_seen_ns.max(other.last_seen_ns);
    }
}

/// Counters of one worker (or, summed, of the process).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Per exporter address; `None` = over the exporter table's capacity.
    pub exporters: HashMap<Option<IpAddr>, ExporterStats>,
    /// Flow records decoded, per protocol.
    pub records: [u64; 5],
    /// sFlow counter records decoded.
    pub counter_records: u64,
    /// The worker's pipeline counters (latest snapshot, cumulative).
    pub snapshot: Option<PipelineSnapshot>,
    /// Datagrams handed to the worker that owns their exporter.
    pub handed_over: u64,
    /// Datagrams not decoded, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Receive system-call errors.
    pub recv_errors: u64,
    /// Kernel drops on this worker's sockets (SO_RXQ_OVFL, cumulative).
    pub socket_drops: u64,
}

impl WorkerStats {
    /// Count one decoded datagram.
    pub fn count_datagram(
        &mut self,
        exporter: Option<IpAddr>,
        protocol: ProtocolLabel,
        bytes: usize,
        records: usize,
        now_ns: u64,
    ) {
        let e = self.exporters.entry(exporter).or_default();
        let c = &mut e.by_protocol[protocol.index()];
        c.datagrams += 1;
        c.bytes += bytes as u64;
        e.records += records as u64;
        if e.first_seen_ns == 0 {
            e.first_seen_ns = now_ns;
        }
        e.last_seen_ns = e.last_seen_ns.max(now_ns);
        self.records[protocol.index()] += records as u64;
    }

    pub fn count_drop(&mut self, reason: DropReason) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    /// Add `other` into `self`. `socket_drops` is a cumulative gauge per socket, so it is
    /// summed too (each worker reports its own sockets).
    pub fn merge(&mut self, other: &WorkerStats) {
        for (k, v) in &other.exporters {
            self.exporters.entry(*k).or_default().merge(v);
        }
        for (a, b) in self.records.iter_mut().zip(other.records.iter()) {
            *a += b;
        }
        self.counter_records += other.counter_records;
        if let Some(o) = &other.snapshot {
            self.snapshot.get_or_insert_with(Default::default).add(o);
        }
        self.handed_over += other.handed_over;
        for (k, v) in &other.dropped {
            *self.dropped.entry(*k).or_default() += v;
        }
        self.recv_errors += other.recv_errors;
        self.socket_drops += other.socket_drops;
    }

    /// Move a worker's batch delta into its shared copy; the delta keeps its allocations.
    /// `socket_drops` and `decoder` are cumulative snapshots: the latest replaces.
    pub fn drain_into(&mut self, shared: &mut WorkerStats) {
        let socket_drops = std::mem::take(&mut self.socket_drops);
        let snapshot = self.snapshot.take();
        shared.merge(self);
        if socket_drops > 0 {
            shared.socket_drops = socket_drops;
        }
        if snapshot.is_some() {
            shared.snapshot = snapshot;
        }
        self.exporters.clear();
        self.records = [0; 5];
        self.counter_records = 0;
        self.handed_over = 0;
        self.dropped.clear();
        self.recv_errors = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_adds_counts_and_replaces_the_socket_drop_gauge() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut shared = WorkerStats::default();
        let mut delta = WorkerStats::default();
        delta.count_datagram(Some(ip), ProtocolLabel::Ipfix, 100, 3, 5);
        delta.socket_drops = 7;
        delta.drain_into(&mut shared);
        delta.count_datagram(Some(ip), ProtocolLabel::Ipfix, 50, 2, 9);
        delta.count_drop(DropReason::HandoverQueueFull);
        delta.socket_drops = 9;
        delta.drain_into(&mut shared);
        let e = &shared.exporters[&Some(ip)];
        assert_eq!(
            e.by_protocol[ProtocolLabel::Ipfix.index()],
            Count {
                datagrams: 2,
                bytes: 150
            }
        );
        assert_eq!((e.first_seen_ns, e.last_seen_ns, e.records), (5, 9, 5));
        assert_eq!(shared.socket_drops, 9);
        assert_eq!(shared.dropped[&DropReason::HandoverQueueFull], 1);
        assert_eq!(shared.records[ProtocolLabel::Ipfix.index()], 5);
        assert!(delta.exporters.is_empty());
    }
}
