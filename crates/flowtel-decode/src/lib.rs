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
//! [`Decoder::decode`] appends a datagram's records to a [`DecodeOutput`];
//! [`Decoder::decode_streaming`] lends them to a [`FlowSink`] as they are read instead, reusing
//! the records of common templates from one data set to the next (a metrics-only pipeline that
//! sums records into windows need not own them).
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
//! # Integers, times, repeated fields
//!
//! Integer elements are read whatever their length (reduced size, RFC 7011 §6.2, and longer
//! than the abstract type): a value that does not fit its field leaves it unset and is counted
//! in [`DecoderStats::fields_out_of_range`]. NetFlow v5/v9 uptimes (FIRST/LAST_SWITCHED) are
//! dated by a signed 32-bit difference from the header's sysUpTime, so records a few ms ahead of
//! the header or across the counter's wrap get the right time. A field repeated in one template
//! is read from its last occurrence (RFC 7011 §8: the Metering Process's order; SRv6 exporters
//! repeat the inner packet's fields after the outer header's, and pmacct reads the last); earlier
//! ones are kept raw for `flowtel decode` only. A configured field (`fields`) is read at every
//! occurrence.
//!
//! ICMP/ICMPv6 records leave the decoder with `icmp_type` / `icmp_code` and ports 0 whatever the
//! protocol: NetFlow's `type << 8 | code` destination port (v5, and v9/IPFIX without ICMP
//! elements) is read into the ICMP fields.
//!
//! # Sampled packets (IPFIX packet sections)
//!
//! Records that carry the sampled packet instead of flow fields (RFC 7133 IE 315
//! `dataLinkFrameSection`: Juniper inline monitoring, Cisco, Nokia; RFC 5477 IE 313/314) are
//! read by the parser of sFlow's sampled header (`packet`: Ethernet, 802.1Q/QinQ, MPLS,
//! Ethernet pseudowires with or without control word, IPv4, IPv6 with extension headers and
//! the SRv6 routing header, TCP/UDP/SCTP/ICMP). Bytes are IE 312 `dataLinkFrameSize` or the IP
//! length (see [`SflowBytes`], which applies to both), packets 1 when no counter is present.
//! Tunnels are reported by their outer header. With QinQ, `vlan` is the outer (service) tag
//! and `inner_vlan` the customer tag.
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
//! # Options data: applications
//!
//! Options records scoped by IE 95 applicationId announcing IE 96 applicationName (RFC 6759,
//! Cisco NBAR) name applications per (exporter, domain): data records carrying an
//! applicationId get [`FlowRecord::application_name`] (shared, not copied), and
//! [`Decoder::application_name`] answers for any id.
//!
//! # Biflows and firewall connections
//!
//! RFC 5103 reverse elements (PEN 29305) turn one record into two: the forward record and,
//! when its reverse counters are not both zero, a reverse record with swapped addresses,
//! ports, interfaces, AS numbers, prefix lengths, MACs, VLANs and post-NAT endpoints, to which
//! every reverse element with a forward meaning (counters, TCP flags, ToS, TTL, times, ...) is
//! applied. Cisco ASA/FTD NSEL records carry no octetDeltaCount but `initiatorOctets` /
//! `responderOctets` (IE 231/232, NF_F_FWD/REV_FLOW_DELTA_BYTES, delta counts since the
//! connection's previous event) and `initiatorPackets` / `responderPackets` (298/299): the
//! initiator's counters are the forward record's (source to destination), the responder's a
//! reverse record's (destination back to source), so each byte is counted once, towards the
//! side that received it. The firewall event (IE 233, NF_F_FW_EVENT) and the NSEL fields are in
//! [`FlowRecord::firewall`], NAT elements (225-228, 281/282, 230) in [`FlowRecord::nat`].
//!
//! # Configured fields
//!
//! [`DecoderConfig::fields`] maps (enterprise, id) to a name and a [`FieldKind`]; those
//! elements are read into [`FlowRecord::custom_fields`] (rollup dimensions `custom_str.NAME`,
//! `custom_int.NAME`). The mapping is compiled into the templates: with none configured, no
//! record allocates for it.
//!
//! # sFlow drop notifications
//!
//! sFlow discarded-packet samples become [`DropRecord`]s in [`DecodeOutput::drops`] (reason,
//! interfaces, the dropped packet's flow fields), counted in
//! [`DecoderStats::drop_notifications`]; they are never flow records.
//!
//! # Element names
//!
//! [`iana`] names elements from IANA's registry (a table generated by
//! `scripts/gen-iana-ies.py`) and renders values by data type, for `flowtel decode`; with
//! [`DecoderConfig::keep_unknown_fields`], [`DatagramReport::templates`] lists the templates a
//! datagram defines.
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
    CounterRecord, CustomField, CustomValue, DropReason, DropRecord, EthernetCounters, Firewall,
    FlowDirection, FlowProtocol, FlowRecord, InterfaceCounters, MplsLabels, Nat, RawField,
    SamplingSource, SflowInterface, SflowSample,
};

pub mod iana;
pub mod link;
pub mod sflow;

mod budget;
mod cost;
mod error;
mod ie;
mod ipfix;
mod memory;
mod netflow_v5;
mod netflow_v9;
mod options;
mod packet;
mod pending;
pub mod prehash;
mod record_fields;
mod scope;
mod sets;
mod stats;
mod template;

pub use budget::{Budget, PENDING_SHARE_DIVISOR};
pub use error::{DecodeError, ErrorKind};
pub use record_fields::RecordFields;
pub use stats::{DecoderStats, Limit, ProtocolCount, ProtocolCounts, StateKind};

use prehash::PrehashedMap;
use scope::Meta;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

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
    /// Data sets held while waiting for their template, over all exporters (and over every
    /// decoder sharing a [`Budget`]).
    pub max_pending_sets: usize,
    /// Bytes of decoder state (templates, options data, pending data sets) kept at once, over
    /// every decoder sharing a [`Budget`]; beyond it the least recently used state is evicted.
    /// Pending data sets take at most a quarter of it.
    pub memory_budget_bytes: usize,
    /// How long a pending data set waits for its template, in nanoseconds of receive time.
    pub pending_timeout_ns: u64,
    /// Which length a record made of one sampled packet counts as its bytes (sFlow flow
    /// samples, IPFIX packet sections): see [`SflowBytes`].
    pub sflow_bytes: SflowBytes,
    /// NetFlow v9 / IPFIX elements read into [`FlowRecord::custom_fields`] under a name
    /// (`decoder.fields:`). A mapped element is read only this way (its built-in meaning,
    /// if any, is replaced). Empty by default: records then never allocate for them.
    pub fields: Vec<FieldMapping>,
    /// Which record fields NetFlow v9 / IPFIX data records are read into: every field by
    /// default; a metrics-only pipeline names the groups its rollups use (see
    /// [`RecordFields`]). Unknown fields are kept (`keep_unknown_fields`) only with
    /// [`RecordFields::OTHER`].
    pub record_fields: RecordFields,
}

/// One configured element: (enterprise, id) read as `kind` under `name`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// Private Enterprise Number (RFC 7011 §3.2); 0 for IANA elements and NetFlow v9 types.
    #[serde(default)]
    pub enterprise: u32,
    /// The element id (without the enterprise bit) or NetFlow v9 field type.
    pub id: u16,
    /// The name the value is known by: a rollup dimension `custom_str.NAME` /
    /// `custom_int.NAME` and a flow attribute. Letters, digits, `_`, `-` and `.`.
    pub name: Arc<str>,
    #[serde(rename = "type")]
    pub kind: FieldKind,
}

/// How a configured element's bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    /// UTF-8 text (RFC 7011 §6.1.6), NUL padding and trailing spaces removed; invalid
    /// sequences replaced.
    String,
    /// A big-endian unsigned integer of any length whose value fits 64 bits.
    Unsigned,
    /// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
    Address,
    /// A 6-byte MAC address.
    Mac,
}

/// Why a `decoder.fields` list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsError {
    #[error("field name {0:?} must be 1-64 letters, digits, '_', '-' or '.'")]
    Name(String),
    #[error("field name {0:?} is used twice")]
    DuplicateName(String),
    #[error("element (enterprise {0}, id {1}) is mapped twice")]
    DuplicateElement(u32, u16),
}

/// Check a `decoder.fields` list: valid, distinct names and elements mapped once.
pub fn validate_fields(fields: &[FieldMapping]) -> Result<(), FieldsError> {
    for (i, f) in fields.iter().enumerate() {
        let ok = (1..=64).contains(&f.name.len())
            && f.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(FieldsError::Name(f.name.to_string()));
        }
        let before = fields.get(..i).unwrap_or_default();
        if before.iter().any(|b| b.name == f.name) {
            return Err(FieldsError::DuplicateName(f.name.to_string()));
        }
        if before
            .iter()
            .any(|b| (b.enterprise, b.id) == (f.enterprise, f.id))
        {
            return Err(FieldsError::DuplicateElement(f.enterprise, f.id));
        }
    }
    Ok(())
}

/// The byte count of a sampled packet (an sFlow flow sample, or an IPFIX / NetFlow v9 record
/// carrying IE 313 / 315 packet sections instead of counters).
///
/// sFlow reports the sampled frame's length at layer 2 (Ethernet header and FCS included:
/// 18-22 bytes more per packet than the IP length), NetFlow and IPFIX octet counters count
/// layer 3 (IP header and payload). `Frame` (the default) keeps what the agent reports, as
/// sflowtool, goflow2 and tshark do, so totals match theirs and the interface counters;
/// `Ip` counts the IP length read from the sampled header (IPv4 total length, IPv6 payload
/// length + 40), so sFlow and NetFlow totals of the same traffic agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SflowBytes {
    /// sFlow `frame_length` (sampled header), else the ethernet record's length, else the
    /// IP length; IPFIX IE 312 `dataLinkFrameSize`, else the IP length.
    #[default]
    Frame,
    /// The IP length from the sampled header (else the sampled IPv4/IPv6 record's length),
    /// else the frame length for packets that are not IP.
    Ip,
}

impl std::str::FromStr for SflowBytes {
    type Err = String;

    /// `frame` or `ip`, the configuration's spelling.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "frame" => Ok(SflowBytes::Frame),
            "ip" => Ok(SflowBytes::Ip),
            other => Err(format!("expected frame or ip, got {other:?}")),
        }
    }
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
            memory_budget_bytes: 128 << 20,
            pending_timeout_ns: 60_000_000_000,
            sflow_bytes: SflowBytes::Frame,
            fields: Vec::new(),
            record_fields: RecordFields::ALL,
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
    /// Packets the agents report they dropped (sFlow discarded-packet samples).
    pub drops: Vec<DropRecord>,
}

impl DecodeOutput {
    pub fn clear(&mut self) {
        self.flows.clear();
        self.counters.clear();
        self.drops.clear();
    }
}

/// The records [`Decoder::decode_streaming`] reads in place: records read with a core or a
/// wide layout go into these, kept from one data set and one message to the next, and are
/// lent to the sink [`STREAM_CHUNK`] at a time (see [`Streamed::lend`]). Only those readers
/// write them.
#[derive(Debug, Default)]
pub(crate) struct Streamed {
    records: Vec<FlowRecord>,
    /// The first `len` of `records` are read and not yet lent.
    len: usize,
    /// A record was read with a wide layout since the last lend: the records are emptied of
    /// that layout's fields when they are lent (`template::clear_wide`), so that `next`
    /// empties the core layout's only and the metrics-only path, whose templates have core
    /// layouts, pays nothing per record for it.
    pub(crate) wide: bool,
}

impl Streamed {
    /// The place for the next record, after lending the chunk when it is full: emptied of
    /// what reading the last record there set (`template::clear_core`) and stamped with the
    /// message's origin. [`Streamed::read`] counts it once it is read. Always `Some`.
    /// Inlined into each layout's reading loop: a call per record costs more than the rest.
    #[inline(always)]
    pub(crate) fn next(&mut self, sink: &mut dyn FlowSink, meta: &Meta) -> Option<&mut FlowRecord> {
        if self.len >= STREAM_CHUNK {
            self.lend(sink);
        }
        let i = self.len;
        match self.records.get_mut(i) {
            Some(rec) => {
                template::clear_core(rec);
                rec.exporter = meta.exporter;
                rec.flow_protocol = meta.protocol;
                rec.time_received_ns = meta.received_ns;
            }
            None => self.records.push(FlowRecord::new(
                meta.exporter,
                meta.protocol,
                meta.received_ns,
            )),
        }
        self.records.get_mut(i)
    }

    /// The record [`Streamed::next`] gave was read: lend it with the chunk.
    #[inline]
    pub(crate) fn read(&mut self) {
        self.len += 1;
    }

    /// Lend the records read and not yet lent to `sink`: when the chunk is full, before
    /// records made another way ([`Streamed::hand_over`]), and at the end of the message.
    #[inline]
    pub(crate) fn lend(&mut self, sink: &mut dyn FlowSink) {
        let n = std::mem::take(&mut self.len);
        if let Some(made) = self.records.get(..n).filter(|m| !m.is_empty()) {
            sink.flows(made);
        }
        if std::mem::take(&mut self.wide) {
            // Every place, the one of a record whose reading failed too.
            self.records.iter_mut().for_each(template::clear_wide);
        }
    }

    /// Hand the records of `flows` from `first` on to `sink` and remove them, after the
    /// records read here before them (so that the sink sees the message's order).
    pub(crate) fn hand_over(
        &mut self,
        flows: &mut Vec<FlowRecord>,
        first: usize,
        sink: &mut dyn FlowSink,
    ) {
        self.lend(sink);
        if let Some(made) = flows.get(first..).filter(|m| !m.is_empty()) {
            sink.flows(made);
        }
        flows.truncate(first);
    }
}

/// Takes a datagram's flow records as [`Decoder::decode_streaming`] decodes them, a run at a
/// time, in the order the datagram carries them.
pub trait FlowSink {
    /// The next decoded records (never none). They are only lent: the decoder reads the next
    /// ones into the same places.
    fn flows(&mut self, records: &[FlowRecord]);
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
    /// Drop records (sFlow discarded-packet samples) appended to the output.
    pub drops: usize,
    /// Problems found; the rest of the datagram was still decoded where possible.
    pub errors: Vec<DecodeError>,
    /// Templates and options templates this datagram defined or changed, field by field; only
    /// filled with [`DecoderConfig::keep_unknown_fields`] (for `flowtel decode`).
    pub templates: Vec<TemplateReport>,
    /// Data sets held until their template arrives (NetFlow v9 / IPFIX).
    pub held: HeldSets,
}

/// A template (or options template) as the exporter defined it (RFC 7011 §3.4, RFC 3954
/// §5.2): what [`DatagramReport::templates`] lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TemplateReport {
    /// Observation domain / source id.
    pub domain: u32,
    pub id: u16,
    pub options: bool,
    pub fields: Vec<TemplateFieldReport>,
}

/// One field specifier of a [`TemplateReport`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TemplateFieldReport {
    /// Private Enterprise Number; 0 for IANA elements and NetFlow v9 types.
    pub enterprise: u32,
    pub id: u16,
    /// Length in bytes; 65535 means variable length (RFC 7011 §7).
    pub length: u16,
    /// NetFlow v9 options scope field (its id is a scope type: 1 system, 2 interface, ...).
    pub scope: bool,
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
    scopes: PrehashedMap<scope::ScopeKey, scope::Scope>,
    names: PrehashedMap<scope::NamesKey, options::Names>,
    /// [`prehash::exporter_hash`] of the datagram being decoded.
    exporter_hash: u64,
    pending: pending::Pending,
    /// The limits shared with the other decoders of the process.
    budget: Arc<Budget>,
    /// Bytes this decoder has charged to the budget.
    memory: usize,
    /// [`Budget::reclaim_requests`] last answered.
    reclaim_seen: u64,
    /// This decoder asked the others for room since [`Decoder::take_reclaim_request`].
    reclaim_asked: bool,
    /// Reused by eviction: (last use, bytes) of every candidate.
    evict_scratch: Vec<(u64, usize)>,
    /// Reused per datagram: data sets waiting for a template later in the datagram.
    deferred: Vec<(usize, usize, u16)>,
    /// Reused per datagram: templates learnt, to release pending sets.
    learnt: Vec<(scope::ScopeKey, u16)>,
    /// Reused by [`Decoder::decode_streaming`]: the records of a message's data sets read
    /// with a core or a wide layout, at most [`STREAM_CHUNK`] at a time.
    streamed: Streamed,
}

/// Records [`Decoder::decode_streaming`] reads before handing them over: a bound on the
/// reused records (640 bytes each) that keeps them in the first-level cache.
pub(crate) const STREAM_CHUNK: usize = 32;

impl Decoder {
    /// A decoder with its own [`Budget`] (the limits of `config` apply to it alone).
    pub fn new(config: DecoderConfig) -> Self {
        let budget = Arc::new(Budget::new(&config));
        Self::with_budget(config, budget)
    }

    /// A decoder sharing `budget` (made from the same configuration) with others: memory,
    /// template scopes and pending sets are bounded over all of them together.
    pub fn with_budget(config: DecoderConfig, budget: Arc<Budget>) -> Self {
        budget.join();
        Decoder {
            config,
            stats: DecoderStats::default(),
            scopes: PrehashedMap::default(),
            names: PrehashedMap::default(),
            exporter_hash: 0,
            pending: pending::Pending::default(),
            reclaim_seen: budget.reclaim_requests(),
            budget,
            memory: 0,
            reclaim_asked: false,
            evict_scratch: Vec::new(),
            deferred: Vec::new(),
            learnt: Vec::new(),
            streamed: Streamed::default(),
        }
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// The limits this decoder shares.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Bytes of state this decoder holds (its part of [`Budget::memory_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        self.memory
    }

    /// Housekeeping without a datagram, for a caller to run on a timer (the daemon's workers
    /// do every second and when another decoder asks for room): expire pending data sets that
    /// waited longer than the timeout at `now_ns`, and give memory back when other decoders
    /// sharing the budget asked for room and this one holds more than its share.
    pub fn maintain(&mut self, now_ns: u64) {
        self.expire_pending(now_ns);
        self.answer_reclaim(now_ns);
    }

    /// Whether this decoder asked the others for room since the last call: a caller that
    /// drives decoders on several threads wakes the idle ones to run [`Decoder::maintain`].
    pub fn take_reclaim_request(&mut self) -> bool {
        std::mem::take(&mut self.reclaim_asked)
    }

    fn expire_pending(&mut self, now_ns: u64) {
        let (sets, bytes) = self.pending.expire(now_ns, self.config.pending_timeout_ns);
        if sets > 0 {
            self.budget.credit_pending(sets, bytes);
            self.credit(bytes);
            self.stats.pending_expired += sets as u64;
        }
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
        let hash = prehash::exporter_hash(exporter.ip());
        self.decode_prehashed(exporter, hash, datagram, received_ns, out)
    }

    /// [`Decoder::decode`] with the exporter address already hashed by the caller
    /// (`exporter_hash` = [`prehash::exporter_hash`]`(exporter.ip())`), which reuses that hash
    /// for its own tables: a receive worker hashes the address once per datagram.
    pub fn decode_prehashed(
        &mut self,
        exporter: SocketAddr,
        exporter_hash: u64,
        datagram: &[u8],
        received_ns: u64,
        out: &mut DecodeOutput,
    ) -> DatagramReport {
        self.decode_to(
            exporter,
            exporter_hash,
            datagram,
            received_ns,
            out,
            &mut None,
        )
    }

    /// [`Decoder::decode_prehashed`] handing every flow record to `sink` in order instead of
    /// appending it to `out` (which still gets the counter and drop records).
    ///
    /// Records read with a compiled core layout (see `template::CoreLayout`: the common
    /// NetFlow v9 and IPFIX templates once the record fields are narrowed to what the rollups
    /// read) or wide layout (`template::WideLayout`: common router templates with every field
    /// read) are read into records the decoder keeps from one data set to the next, set back
    /// to empty only in the fields that reading can set, and handed over `STREAM_CHUNK` (32) at
    /// a time, across the message's data sets: a metrics-only pipeline neither builds a whole
    /// record per flow nor drops one, and the sink is called about once per message rather
    /// than once per set (softflowd starts a set whenever the record's template changes).
    /// The records are the ones `decode_prehashed` makes (`tests/properties.rs` holds the two
    /// to the same records, reports and counters).
    pub fn decode_streaming(
        &mut self,
        exporter: SocketAddr,
        exporter_hash: u64,
        datagram: &[u8],
        received_ns: u64,
        out: &mut DecodeOutput,
        sink: &mut dyn FlowSink,
    ) -> DatagramReport {
        self.decode_to(
            exporter,
            exporter_hash,
            datagram,
            received_ns,
            out,
            &mut Some(sink),
        )
    }

    fn decode_to(
        &mut self,
        exporter: SocketAddr,
        exporter_hash: u64,
        datagram: &[u8],
        received_ns: u64,
        out: &mut DecodeOutput,
        sink: &mut Option<&mut dyn FlowSink>,
    ) -> DatagramReport {
        self.exporter_hash = exporter_hash;
        let first = out.flows.len();
        let mut report = DatagramReport::default();
        self.stats.datagrams += 1;
        self.expire_pending(received_ns);
        self.answer_reclaim(received_ns);
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
                self.decode_v9(exporter, datagram, received_ns, out, sink, &mut report);
                self.release_pending(out, sink, &mut report);
            }
            [0, 10, ..] => {
                report.protocol = Some(FlowProtocol::Ipfix);
                self.decode_ipfix(exporter, datagram, received_ns, out, sink, &mut report);
                self.release_pending(out, sink, &mut report);
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
        // What is left of the message's streamed records, and NetFlow v5 and sFlow records
        // (NetFlow v9 and IPFIX ones went to the sink as read).
        if let Some(sink) = sink.as_deref_mut() {
            self.streamed.hand_over(&mut out.flows, first, sink);
        }
        self.stats.drop_notifications += report.drops as u64;
        for e in &report.errors {
            self.stats.count_error(e.kind);
        }
        report
    }

    /// The interface name (IE 82 interfaceName) `exporter` announced in options data for
    /// `if_index` in observation domain / source id `domain`.
    pub fn interface_name(&self, exporter: IpAddr, domain: u32, if_index: u32) -> Option<&str> {
        self.names
            .get(&scope::NamesKey::new(
                exporter,
                prehash::exporter_hash(exporter),
                domain,
            ))?
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
            .get(&scope::NamesKey::new(
                exporter,
                prehash::exporter_hash(exporter),
                domain,
            ))?
            .if_descriptions
            .get(&if_index)
            .map(|s| &**s)
    }

    /// The application name (IE 96 applicationName) `exporter` announced in options data for
    /// `application_id` (IE 95, see [`FlowRecord::application_id`]) in domain `domain`.
    pub fn application_name(
        &self,
        exporter: IpAddr,
        domain: u32,
        application_id: u64,
    ) -> Option<&str> {
        self.names
            .get(&scope::NamesKey::new(
                exporter,
                prehash::exporter_hash(exporter),
                domain,
            ))?
            .app_names
            .get(&application_id)
            .map(|s| &**s)
    }

    /// The VRF name (IE 236 VRFname) announced for `vrf_id` (IE 234/235).
    pub fn vrf_name(&self, exporter: IpAddr, domain: u32, vrf_id: u32) -> Option<&str> {
        self.names
            .get(&scope::NamesKey::new(
                exporter,
                prehash::exporter_hash(exporter),
                domain,
            ))?
            .vrf_names
            .get(&vrf_id)
            .map(|s| &**s)
    }

    /// Templates currently known, over all exporters.
    pub fn template_count(&self) -> usize {
        self.scopes.values().map(|s| s.templates.len()).sum()
    }

    /// Template scopes (exporter, version, domain) currently known.
    pub fn scope_count(&self) -> usize {
        self.scopes.len()
    }

    /// Data sets currently held waiting for their template.
    pub fn pending_sets(&self) -> usize {
        self.pending.len()
    }
}

impl Drop for Decoder {
    /// Give everything this decoder holds back to the shared budget.
    fn drop(&mut self) {
        self.budget
            .credit_pending(self.pending.len(), self.pending.bytes());
        for _ in 0..self.scopes.len() {
            self.budget.credit_scope();
        }
        self.budget.credit_memory(self.memory);
        self.budget.leave();
    }
}
