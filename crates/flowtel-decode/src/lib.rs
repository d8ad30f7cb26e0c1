//! Wire formats -> [`FlowRecord`].
//!
//! `flowtel-decode` turns one UDP datagram from a flow exporter into normalized
//! [`FlowRecord`]s. It auto-detects NetFlow v5, NetFlow v9 (RFC 3954), IPFIX (RFC 7011) and
//! sFlow v5 from the datagram header, keeps the per-exporter state those formats need
//! (templates, options data such as sampling rates and interface names) and never panics on
//! any input: every problem becomes a counted, typed error.
//!
//! The crate has no async runtime and does no I/O. Capture files are read by `flowtel-pcap`;
//! the wire encoders (the inverse of this crate, for generators and tests) are `flowtel-encode`.
//!
//! # Format detection
//!
//! The first 16 bits are the version: 5 NetFlow v5, 9 NetFlow v9, 10 IPFIX. sFlow v5 starts
//! with a 32-bit version 5 (`00 00 00 05`), which never collides with NetFlow v5 (`00 05`).
//! Anything else is [`ErrorKind::UnsupportedVersion`].
//!
//! # Templates (NetFlow v9, IPFIX)
//!
//! Templates are scoped by (exporter address, protocol version, NetFlow v9 source id or
//! IPFIX observation domain, template id) — RFC 3954 §5.1 and RFC 7011 §3.1 make the
//! template id unique only within a source id / observation domain, and one address can
//! send several (pmacct corpus test 102). With [`DecoderConfig::scope_includes_port`] the
//! exporter's UDP source port is part of the scope too. Headers and template records are
//! parsed with nom, whose types never leave the crate. A template is compiled once into a
//! flat plan (one `(length, slot)` step per field, see `template.rs`); data records are read
//! with bounds-checked slice reads into the output record, without allocation per record.
//! Re-sending an identical template changes nothing; a different definition under the same
//! id replaces the old one (RFC 7011 §8, RFC 3954 §5.2, exporter reboot). IPFIX withdrawals
//! (field count 0) remove one template, or all data / options templates for the reserved
//! ids 2 / 3 (RFC 7011 §8.1). Variable-length fields use the 1- or 3-byte length prefix
//! (RFC 7011 §7); integers may use reduced-size encoding (RFC 7011 §6.2); enterprise
//! elements carry their PEN (RFC 7011 §3.2). Unknown elements are skipped by length and
//! kept in [`FlowRecord::unknown_fields`] only when [`DecoderConfig::keep_unknown_fields`].
//!
//! # Order independence and the pending buffer
//!
//! Sets are applied in datagram order, but a data set whose template is not yet known is
//! deferred to the end of the datagram, so a template later in the same datagram is used
//! (Juniper MX sends data before its template). If the template is still unknown, the set is
//! copied into a bounded pending buffer and decoded when a later datagram brings the
//! template ([`DecoderStats::pending_released`]), or discarded when it waited longer than
//! [`DecoderConfig::pending_timeout_ns`] of receive time (`pending_expired`) or when the
//! buffer is full (oldest first, `pending_dropped`). A missing template only affects its own
//! set: the other sets of the datagram are decoded.
//!
//! # Sampling
//!
//! [`FlowRecord::sampling_rate`] is resolved, in order, from: the record itself (IE 34
//! samplingInterval, 50 samplerRandomInterval, 305/306 samplingPacketInterval/Space,
//! 309/310 samplingSize/Population — Huawei NetStream); options data of the same template
//! scope keyed by the record's sampler id (IE 48 samplerId / FLOW_SAMPLER_ID, 302
//! selectorId), falling back to the scope's rate learnt without a sampler id; the NetFlow v5
//! header's `sampling_interval` (low 14 bits); otherwise it stays `None` and is counted in
//! [`DecoderStats::sampling_rate_unknown`]. Bytes and packets are never multiplied here.
//!
//! # Options data
//!
//! Besides sampling rates, options records give the exporter's systemInitTimeMilliseconds
//! (IE 160, for IPFIX IE 21/22 uptimes) and names kept per (exporter address, domain):
//! interface names/descriptions (IE 82/83 keyed by IE 10 or the v9 Interface scope) and VRF
//! names (IE 236 keyed by IE 234/235), see [`Decoder::interface_name`] and
//! [`Decoder::vrf_name`].
//!
//! # Biflows
//!
//! RFC 5103 reverse counters (PEN 29305, IE 1/2/85/86) turn one record into two: the forward
//! record and, when its reverse counters are not both zero, a reverse record with swapped
//! addresses, ports, interfaces, AS numbers, prefix lengths and MACs.
//!
//! # Limits
//!
//! Everything an exporter controls is bounded by [`DecoderConfig`]: template scopes tracked
//! (`max_exporters`; a new scope is refused), templates per scope, fields per template,
//! pending sets (over all exporters) and options entries per scope
//! (`max_templates_per_exporter * 16`). Each refusal is counted in
//! [`DecoderStats::limit_hits`] (and, when it loses data of the datagram, reported as an
//! error).
//! The pending buffer holds copies of the waiting sets, so its memory is at most
//! `max_pending_sets` times the largest set (64 KiB).

pub mod record;

pub use record::{
    CounterRecord, EthernetCounters, FlowDirection, FlowProtocol, FlowRecord, InterfaceCounters,
    RawField, SamplingSource, SflowInterface, SflowSample,
};

pub mod link;
pub mod sflow;

mod error;
mod ie;
mod ipfix;
mod netflow_v5;
mod netflow_v9;
mod options;
mod pending;
mod scope;
mod sets;
mod stats;
mod template;

pub use error::{DecodeError, ErrorKind};
pub use stats::{DecoderStats, Limit, ProtocolCount, ProtocolCounts};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Limits and options for a [`Decoder`]. Every limit bounds state an exporter controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Include the exporter's UDP source port in the template scope (default: address only).
    pub scope_includes_port: bool,
    /// Keep unmapped fields in [`FlowRecord::unknown_fields`] (used by `flowtel decode`).
    pub keep_unknown_fields: bool,
    /// Exporters (template scopes) tracked at once.
    pub max_exporters: usize,
    /// Templates per exporter scope.
    pub max_templates_per_exporter: usize,
    /// Fields per template.
    pub max_fields_per_template: usize,
    /// Data sets held while waiting for their template, over all exporters.
    pub max_pending_sets: usize,
    /// How long a pending data set waits for its template, in nanoseconds of receive time.
    pub pending_timeout_ns: u64,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            scope_includes_port: false,
            keep_unknown_fields: false,
            max_exporters: 10_000,
            max_templates_per_exporter: 1_024,
            max_fields_per_template: 256,
            max_pending_sets: 4_096,
            pending_timeout_ns: 60_000_000_000,
        }
    }
}

/// Where [`Decoder::decode`] appends what it decodes. Reuse one across datagrams (call
/// [`DecodeOutput::clear`]) so the hot path does not allocate.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DecodeOutput {
    /// Flow records (NetFlow/IPFIX data records, sFlow flow samples).
    pub flows: Vec<FlowRecord>,
    /// Interface counters (sFlow counter samples).
    pub counters: Vec<CounterRecord>,
}

impl DecodeOutput {
    pub fn clear(&mut self) {
        self.flows.clear();
        self.counters.clear();
    }
}

/// What one datagram produced besides its records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DatagramReport {
    /// The detected format; `None` when the header was not recognised.
    pub protocol: Option<FlowProtocol>,
    /// Flow records appended to the output (including records released from the pending buffer).
    pub records: usize,
    /// Counter records appended to the output.
    pub counters: usize,
    /// Problems found; the rest of the datagram was still decoded where possible.
    pub errors: Vec<DecodeError>,
    /// Data sets held until their template arrives (NetFlow v9 / IPFIX).
    pub held: HeldSets,
}

/// The data sets of one datagram held in the pending buffer, and the first few template ids
/// they wait for (a fixed array: nothing is allocated per datagram).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeldSets {
    /// Data sets held.
    pub sets: usize,
    ids: [u16; HeldSets::MAX_IDS],
    distinct: u8,
}

impl HeldSets {
    /// Distinct template ids kept per datagram; further ones are counted in `sets` only.
    pub const MAX_IDS: usize = 4;

    pub(crate) fn add(&mut self, template_id: u16) {
        self.sets += 1;
        let n = usize::from(self.distinct);
        if self.template_ids().contains(&template_id) {
            return;
        }
        if let Some(slot) = self.ids.get_mut(n) {
            *slot = template_id;
            self.distinct += 1;
        }
    }

    /// The template ids waited for, in the order first seen (at most [`Self::MAX_IDS`]).
    pub fn template_ids(&self) -> &[u16] {
        self.ids
            .get(..usize::from(self.distinct))
            .unwrap_or_default()
    }
}

/// The stateful decoder: one per receive worker (or per capture).
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    stats: DecoderStats,
    scopes: HashMap<scope::ScopeKey, scope::Scope>,
    names: HashMap<(IpAddr, u32), options::Names>,
    pending: pending::Pending,
    /// Reused per datagram: data sets waiting for a template later in the datagram.
    deferred: Vec<(usize, usize, u16)>,
    /// Reused per datagram: templates learnt, to release pending sets.
    learnt: Vec<(scope::ScopeKey, u16)>,
}

impl Decoder {
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            stats: DecoderStats::default(),
            scopes: HashMap::new(),
            names: HashMap::new(),
            pending: pending::Pending::default(),
            deferred: Vec::new(),
            learnt: Vec::new(),
        }
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Cumulative counters since the decoder was created.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Decode one datagram received from `exporter` at `received_ns` (Unix nanoseconds),
    /// appending its records to `out` (which is not cleared).
    pub fn decode(
        &mut self,
        exporter: SocketAddr,
        datagram: &[u8],
        received_ns: u64,
        out: &mut DecodeOutput,
    ) -> DatagramReport {
        let mut report = DatagramReport::default();
        self.stats.datagrams += 1;
        let expired = self
            .pending
            .expire(received_ns, self.config.pending_timeout_ns);
        self.stats.pending_expired += expired;
        match datagram {
            [0, 0, 0, 5, ..] => {
                report.protocol = Some(FlowProtocol::SflowV5);
                sflow::decode(
                    &self.config,
                    exporter,
                    datagram,
                    received_ns,
                    out,
                    &mut report,
                    &mut self.stats.sampling_rate_unknown,
                );
            }
            [0, 5, ..] => {
                report.protocol = Some(FlowProtocol::NetflowV5);
                report.records = netflow_v5::decode(
                    exporter,
                    datagram,
                    received_ns,
                    &mut out.flows,
                    &mut report.errors,
                    &mut self.stats.sampling_rate_unknown,
                );
            }
            [0, 9, ..] => {
                report.protocol = Some(FlowProtocol::NetflowV9);
                self.decode_v9(exporter, datagram, received_ns, out, &mut report);
                self.release_pending(out, &mut report);
            }
            [0, 10, ..] => {
                report.protocol = Some(FlowProtocol::Ipfix);
                self.decode_ipfix(exporter, datagram, received_ns, out, &mut report);
                self.release_pending(out, &mut report);
            }
            _ => {
                let kind = if datagram.len() < 2 {
                    ErrorKind::Truncated
                } else {
                    ErrorKind::UnsupportedVersion
                };
                report
                    .errors
                    .push(DecodeError::new(kind, 0, "datagram header"));
            }
        }
        for e in &report.errors {
            self.stats.count_error(e.kind);
        }
        report
    }

    /// The interface name (IE 82 interfaceName) `exporter` announced in options data for
    /// `if_index` in observation domain / source id `domain`.
    pub fn interface_name(&self, exporter: IpAddr, domain: u32, if_index: u32) -> Option<&str> {
        self.names
            .get(&(exporter, domain))?
            .if_names
            .get(&if_index)
            .map(|s| &**s)
    }

    /// The interface description (IE 83 interfaceDescription) for `if_index`.
    pub fn interface_description(
        &self,
        exporter: IpAddr,
        domain: u32,
        if_index: u32,
    ) -> Option<&str> {
        self.names
            .get(&(exporter, domain))?
            .if_descriptions
            .get(&if_index)
            .map(|s| &**s)
    }

    /// The VRF name (IE 236 VRFname) announced for `vrf_id` (IE 234/235).
    pub fn vrf_name(&self, exporter: IpAddr, domain: u32, vrf_id: u32) -> Option<&str> {
        self.names
            .get(&(exporter, domain))?
            .vrf_names
            .get(&vrf_id)
            .map(|s| &**s)
    }

    /// Templates currently known, over all exporters.
    pub fn template_count(&self) -> usize {
        self.scopes.values().map(|s| s.templates.len()).sum()
    }

    /// Data sets currently held waiting for their template.
    pub fn pending_sets(&self) -> usize {
        self.pending.len()
    }
}
