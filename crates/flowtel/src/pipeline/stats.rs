//! Receive-side counters, kept per worker and summed when read.
//!
//! A worker accumulates a batch's counts in a local [`WorkerStats`] and merges it into its shared
//! copy once per batch (an uncontended mutex, locked only by that worker and by readers), so the
//! per-datagram path takes no lock. Labels are bounded: protocols and reasons are closed enums;
//! exporters are bounded by the exporter table (`decoder.max_exporters`).

use std::collections::BTreeMap;

use std::sync::Arc;

use flowtel_decode::prehash::{ExporterKey, PrehashedMap};
use flowtel_decode::{DatagramReport, DecoderStats, ProtocolCounts};
use flowtel_rollup::{EnrichStats, InterfaceStats, RollupStats};

/// A worker pipeline's cumulative counters and current state sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineSnapshot {
    pub decoder: DecoderSnapshot,
    pub enrich: EnrichStats,
    /// Per rollup, in configuration order.
    pub rollups: Vec<(Arc<str>, RollupStats)>,
    /// Keys held by the rollups' open windows.
    pub keys_tracked: u64,
    /// sFlow interface counters and drop notifications.
    pub interfaces: InterfaceStats,
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
        self.interfaces.merge(&o.interfaces);
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
        self.stats.merge(&o.stats);
        self.templates += o.templates;
        self.pending_sets += o.pending_sets;
    }
}

/// Why a received datagram was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The owning worker's hand-over queue was full.
    HandoverQueueFull,
    /// The exporter matched a `deny` prefix of the access rules.
    ExporterDenied,
    /// Allow lists apply to the listen address and the exporter matched none.
    ExporterNotAllowed,
}

impl DropReason {
    pub const ALL: [DropReason; 3] = [
        DropReason::HandoverQueueFull,
        DropReason::ExporterDenied,
        DropReason::ExporterNotAllowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::HandoverQueueFull => "handover_queue_full",
            DropReason::ExporterDenied => "exporter_denied",
            DropReason::ExporterNotAllowed => "exporter_not_allowed",
        }
    }
}

/// What one exporter sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExporterStats {
    /// Datagrams, bytes and records per protocol.
    pub by_protocol: ProtocolCounts,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
}

impl ExporterStats {
    pub fn datagrams(&self) -> u64 {
        self.by_protocol.total().datagrams
    }

    pub fn records(&self) -> u64 {
        self.by_protocol.total().records
    }

    fn merge(&mut self, other: &ExporterStats) {
        self.by_protocol.merge(&other.by_protocol);
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
    pub exporters: PrehashedMap<Option<ExporterKey>, ExporterStats>,
    /// sFlow counter records decoded.
    pub counter_records: u64,
    /// sFlow drop notifications decoded.
    pub drop_records: u64,
    /// The worker's pipeline counters (latest snapshot, cumulative).
    pub snapshot: Option<PipelineSnapshot>,
    /// Datagrams handed to the worker that owns their exporter.
    pub handed_over: u64,
    /// Datagrams not decoded, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Receive system-call errors.
    pub recv_errors: u64,
    /// Receive system calls (`recvmmsg`) that returned datagrams.
    pub recv_batches: u64,
    /// Pauses after a receive pass that emptied the sockets (`daemon::coalesce`).
    pub recv_pauses: u64,
    /// Flow records handed to the per-flow sinks.
    pub flow_records_selected: u64,
    /// Flow records a `flow_records` rule kept from the per-flow sinks.
    pub flow_records_filtered: u64,
    /// Flow records `flow_records.sample` left out.
    pub flow_records_sampled_out: u64,
    /// Kernel drops on the daemon's sockets (cumulative): read from the kernel's UDP tables
    /// when the workers' counters are summed (`daemon::Shared::totals`), not by the workers.
    pub socket_drops: u64,
}

impl WorkerStats {
    /// Count one decoded datagram of `bytes` bytes.
    pub fn count_datagram(
        &mut self,
        exporter: Option<ExporterKey>,
        report: &DatagramReport,
        bytes: usize,
        now_ns: u64,
    ) {
        let e = self.exporters.entry(exporter).or_default();
        e.by_protocol.add(report, bytes);
        if e.first_seen_ns == 0 {
            e.first_seen_ns = now_ns;
        }
        e.last_seen_ns = e.last_seen_ns.max(now_ns);
    }

    /// Every exporter's counts, summed (the `protocol`-only metrics).
    pub fn by_protocol(&self) -> ProtocolCounts {
        let mut all = ProtocolCounts::default();
        for e in self.exporters.values() {
            all.merge(&e.by_protocol);
        }
        all
    }

    pub fn count_drop(&mut self, reason: DropReason) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    /// Add `other` into `self` (`socket_drops` is not a worker's: see the field).
    pub fn merge(&mut self, other: &WorkerStats) {
        for (k, v) in &other.exporters {
            self.exporters.entry(*k).or_default().merge(v);
        }
        self.counter_records += other.counter_records;
        self.drop_records += other.drop_records;
        if let Some(o) = &other.snapshot {
            self.snapshot.get_or_insert_with(Default::default).add(o);
        }
        self.handed_over += other.handed_over;
        for (k, v) in &other.dropped {
            *self.dropped.entry(*k).or_default() += v;
        }
        self.recv_errors += other.recv_errors;
        self.recv_batches += other.recv_batches;
        self.recv_pauses += other.recv_pauses;
        self.flow_records_selected += other.flow_records_selected;
        self.flow_records_filtered += other.flow_records_filtered;
        self.flow_records_sampled_out += other.flow_records_sampled_out;
    }

    /// Move a worker's batch delta into its shared copy; the delta keeps its allocations.
    /// `snapshot` is a cumulative snapshot: the latest replaces.
    pub fn drain_into(&mut self, shared: &mut WorkerStats) {
        let snapshot = self.snapshot.take();
        shared.merge(self);
        if snapshot.is_some() {
            shared.snapshot = snapshot;
        }
        self.exporters.clear();
        self.counter_records = 0;
        self.drop_records = 0;
        self.handed_over = 0;
        self.dropped.clear();
        self.recv_errors = 0;
        self.recv_batches = 0;
        self.recv_pauses = 0;
        self.flow_records_selected = 0;
        self.flow_records_filtered = 0;
        self.flow_records_sampled_out = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtel_decode::FlowProtocol;

    #[test]
    fn drain_adds_counts() {
        let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let report = |records| DatagramReport {
            protocol: Some(FlowProtocol::Ipfix),
            records,
            ..DatagramReport::default()
        };
        let mut shared = WorkerStats::default();
        let mut delta = WorkerStats::default();
        delta.count_datagram(Some(ExporterKey::new(ip)), &report(3), 100, 5);
        delta.drain_into(&mut shared);
        delta.count_datagram(Some(ExporterKey::new(ip)), &report(2), 50, 9);
        delta.count_drop(DropReason::HandoverQueueFull);
        delta.drain_into(&mut shared);
        let e = &shared.exporters[&Some(ExporterKey::new(ip))];
        let ipfix = e.by_protocol.get(Some(FlowProtocol::Ipfix));
        assert_eq!((ipfix.datagrams, ipfix.bytes, ipfix.records), (2, 150, 5));
        assert_eq!((e.first_seen_ns, e.last_seen_ns), (5, 9));
        assert_eq!(shared.dropped[&DropReason::HandoverQueueFull], 1);
        assert_eq!(
            shared.by_protocol().get(Some(FlowProtocol::Ipfix)).records,
            5
        );
        assert!(delta.exporters.is_empty());
    }
}
