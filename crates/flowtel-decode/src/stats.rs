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
    /// `max_pending_sets`: the oldest pending data set was dropped to make room.
    PendingSets,
    /// Options-derived entries (sampler rates, interface and VRF names) per exporter scope: a
    /// new entry was refused. The bound is `max_templates_per_exporter * 16`.
    OptionsEntries,
}

impl Limit {
    /// Every limit, for pre-registering counters.
    pub const ALL: &'static [Limit] = &[
        Limit::Exporters,
        Limit::TemplatesPerExporter,
        Limit::FieldsPerTemplate,
        Limit::PendingSets,
        Limit::OptionsEntries,
    ];

    /// Stable snake_case name, used as the `limit` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Limit::Exporters => "exporters",
            Limit::TemplatesPerExporter => "templates_per_exporter",
            Limit::FieldsPerTemplate => "fields_per_template",
            Limit::PendingSets => "pending_sets",
            Limit::OptionsEntries => "options_entries",
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
    /// Pending data sets discarded because the buffer was full (oldest first).
    pub pending_dropped: u64,
    /// Times each limit refused something.
    pub limit_hits: BTreeMap<Limit, u64>,
    /// Flow records whose sampling rate could not be resolved.
    pub sampling_rate_unknown: u64,
    /// Integer fields whose value did not fit the record's field (a protocol above 255, a
    /// 16-byte counter above 2^64 - 1): the field was left unset, the record kept.
    pub fields_out_of_range: u64,
    /// sFlow discarded-packet samples decoded (packets the agents report they dropped).
    pub drop_notifications: u64,
}

impl DecoderStats {
    pub(crate) fn count_error(&mut self, kind: ErrorKind) {
        *self.errors.entry(kind).or_default() += 1;
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

    /// Total errors over all reasons.
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
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
