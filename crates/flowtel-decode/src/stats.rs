//! Cumulative decoder counters.

use std::collections::BTreeMap;

use crate::{DatagramReport, ErrorKind, FlowProtocol};

/// A bound on exporter-controlled state (see [`crate::DecoderConfig`]). Closed set: used as a
/// metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Limit {
    /// `max_exporters`: a new template scope was refused.
    Exporters,
    /// `max_templates_per_exporter`: a new template was refused.
    TemplatesPerExporter,
    /// `max_fields_per_template`: a template was refused.
    FieldsPerTemplate,
    /// Options-derived entries (sampler rates, interface and VRF names) per exporter scope: a
    /// new entry was refused. The bound is `max_templates_per_exporter * 16`.
    OptionsEntries,
    /// `memory_budget_bytes`: new state (a template, options data, a pending set) was refused
    /// because the budget was full of state in use (evicting the least recently used state
    /// did not make room).
    MemoryBudget,
}

impl Limit {
    /// Every limit, for pre-registering counters.
    pub const ALL: &'static [Limit] = &[
        Limit::Exporters,
        Limit::TemplatesPerExporter,
        Limit::FieldsPerTemplate,
        Limit::OptionsEntries,
        Limit::MemoryBudget,
    ];

    /// Stable snake_case name, used as the `limit` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Limit::Exporters => "exporters",
            Limit::TemplatesPerExporter => "templates_per_exporter",
            Limit::FieldsPerTemplate => "fields_per_template",
            Limit::OptionsEntries => "options_entries",
            Limit::MemoryBudget => "memory_budget",
        }
    }
}

/// A kind of decoder state the memory budget evicts. Closed set: used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StateKind {
    /// A template or options template.
    Template,
    /// The options state of a scope (sampling rates, system init time) or the names of an
    /// (exporter, domain) (interfaces, VRFs, applications).
    Options,
    /// A data set waiting for its template.
    Pending,
}

impl StateKind {
    pub const ALL: &'static [StateKind] =
        &[StateKind::Template, StateKind::Options, StateKind::Pending];

    /// Stable snake_case name, used as the `kind` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            StateKind::Template => "template",
            StateKind::Options => "options",
            StateKind::Pending => "pending",
        }
    }
}

/// Counters a [`crate::Decoder`] keeps since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Datagrams passed to [`crate::Decoder::decode`]. Per-protocol counts are not kept here:
    /// callers add each [`crate::DatagramReport`] to a [`ProtocolCounts`] of the grouping they
    /// need (per capture, per exporter).
    pub datagrams: u64,
    /// Errors by reason (each [`crate::DecodeError`] reported once).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Options data records applied (sampling rates, interface/VRF names).
    pub options_records: u64,
    /// Templates and options templates learnt: new ids and changed definitions of an existing
    /// id (RFC 7011 §8 reuse). Periodic re-sends of an identical template are not counted.
    pub templates_learnt: u64,
    /// Templates removed by an IPFIX withdrawal (RFC 7011 §8.1), one per template removed.
    pub templates_withdrawn: u64,
    /// Data sets put in the pending buffer to wait for their template.
    pub pending_held: u64,
    /// Pending data sets decoded once their template arrived.
    pub pending_released: u64,
    /// Pending data sets discarded because their template did not arrive in time.
    pub pending_expired: u64,
    /// Pending data sets discarded because the buffer was full: `max_pending_sets` sets, or
    /// the pending share of the memory budget, over every decoder sharing the budget (this
    /// decoder's oldest first; the new set when it holds none).
    pub pending_dropped: u64,
    /// Times each limit refused something (each refusal counted here only, even when it is
    /// also reported as an error of its datagram).
    pub limit_hits: BTreeMap<Limit, u64>,
    /// State evicted, least recently used first, to make room in the memory budget, by kind.
    pub evictions: BTreeMap<StateKind, u64>,
    /// Flow records whose sampling rate could not be resolved.
    pub sampling_rate_unknown: u64,
    /// Integer fields whose value did not fit the record's field (a protocol above 255, a
    /// 16-byte counter above 2^64 - 1): the field was left unset, the record kept. Only fields
    /// that are read count (see [`crate::RecordFields`]).
    pub fields_out_of_range: u64,
    /// sFlow discarded-packet samples decoded (packets the agents report they dropped).
    pub drop_notifications: u64,
}

impl DecoderStats {
    /// Count a datagram's error; a refusal by a limit is counted by [`Self::count_limit`]
    /// where it happens, not again here.
    pub(crate) fn count_error(&mut self, kind: ErrorKind) {
        if kind.limit().is_none() {
            *self.errors.entry(kind).or_default() += 1;
        }
    }

    pub(crate) fn count_evictions(&mut self, kind: StateKind, n: u64) {
        if n > 0 {
            *self.evictions.entry(kind).or_default() += n;
        }
    }

    /// State of `kind` evicted.
    pub fn evictions_for(&self, kind: StateKind) -> u64 {
        self.evictions.get(&kind).copied().unwrap_or(0)
    }

    pub(crate) fn count_limit(&mut self, limit: Limit) {
        *self.limit_hits.entry(limit).or_default() += 1;
    }

    /// Errors counted for `kind`.
    pub fn errors_for(&self, kind: ErrorKind) -> u64 {
        self.errors.get(&kind).copied().unwrap_or(0)
    }

    /// Times `limit` was hit.
    pub fn limit_hits_for(&self, limit: Limit) -> u64 {
        self.limit_hits.get(&limit).copied().unwrap_or(0)
    }

    /// Total errors over all reasons (refusals by a limit are in `limit_hits`).
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Add another decoder's counters.
    pub fn merge(&mut self, b: &DecoderStats) {
        self.datagrams += b.datagrams;
        for (k, v) in &b.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        self.options_records += b.options_records;
        self.templates_learnt += b.templates_learnt;
        self.templates_withdrawn += b.templates_withdrawn;
        self.pending_held += b.pending_held;
        self.pending_released += b.pending_released;
        self.pending_expired += b.pending_expired;
        self.pending_dropped += b.pending_dropped;
        for (k, v) in &b.limit_hits {
            *self.limit_hits.entry(*k).or_default() += v;
        }
        for (k, v) in &b.evictions {
            *self.evictions.entry(*k).or_default() += v;
        }
        self.sampling_rate_unknown += b.sampling_rate_unknown;
        self.fields_out_of_range += b.fields_out_of_range;
        self.drop_notifications += b.drop_notifications;
    }
}

/// Datagrams, payload bytes and flow records of one protocol (or of unrecognised datagrams).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtocolCount {
    pub datagrams: u64,
    pub bytes: u64,
    pub records: u64,
}

/// Counts per detected protocol, plus unrecognised datagrams: the one way datagrams are
/// counted by protocol, whatever the grouping (a capture in `flowtel decode`, an exporter in the
/// daemon). Fed with [`ProtocolCounts::add`] from each datagram's [`DatagramReport`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtocolCounts {
    counts: [ProtocolCount; 5],
}

impl ProtocolCounts {
    fn index(protocol: Option<FlowProtocol>) -> usize {
        match protocol {
            Some(FlowProtocol::NetflowV5) => 0,
            Some(FlowProtocol::NetflowV9) => 1,
            Some(FlowProtocol::Ipfix) => 2,
            Some(FlowProtocol::SflowV5) => 3,
            None => 4,
        }
    }

    /// Count one decoded datagram of `bytes` bytes.
    pub fn add(&mut self, report: &DatagramReport, bytes: usize) {
        let c = &mut self.counts[Self::index(report.protocol)];
        c.datagrams += 1;
        c.bytes += bytes as u64;
        c.records += report.records as u64;
    }

    /// The counts of `protocol` (`None`: unrecognised datagrams).
    pub fn get(&self, protocol: Option<FlowProtocol>) -> ProtocolCount {
        self.counts[Self::index(protocol)]
    }

    /// Every protocol then `None`, with its counts.
    pub fn iter(&self) -> impl Iterator<Item = (Option<FlowProtocol>, ProtocolCount)> + '_ {
        FlowProtocol::ALL
            .into_iter()
            .map(Some)
            .chain([None])
            .map(|p| (p, self.get(p)))
    }

    /// Sums over every protocol.
    pub fn total(&self) -> ProtocolCount {
        self.counts
            .iter()
            .fold(ProtocolCount::default(), |a, c| ProtocolCount {
                datagrams: a.datagrams + c.datagrams,
                bytes: a.bytes + c.bytes,
                records: a.records + c.records,
            })
    }

    /// Add another set of counts.
    pub fn merge(&mut self, other: &ProtocolCounts) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            a.datagrams += b.datagrams;
            a.bytes += b.bytes;
            a.records += b.records;
        }
    }
}
