//! The normalized flow record every wire format decodes into.
//!
//! One [`FlowRecord`] is one flow (NetFlow/IPFIX data record, or one direction of an RFC 5103
//! biflow record) or one sFlow flow sample. Bytes and packets are exactly what the exporter sent;
//! sampling correction is the rollup's job, using [`FlowRecord::sampling_rate`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::Serialize;

/// Which wire format a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowProtocol {
    NetflowV5,
    NetflowV9,
    Ipfix,
    SflowV5,
}

impl FlowProtocol {
    /// Every protocol, in a fixed order.
    pub const ALL: [FlowProtocol; 4] = [
        FlowProtocol::NetflowV5,
        FlowProtocol::NetflowV9,
        FlowProtocol::Ipfix,
        FlowProtocol::SflowV5,
    ];

    /// The `protocol` label of a datagram whose format was (or was not) recognised:
    /// [`FlowProtocol::as_str`], or `unknown`.
    pub const fn label(protocol: Option<FlowProtocol>) -> &'static str {
        match protocol {
            Some(p) => p.as_str(),
            None => "unknown",
        }
    }

    /// The stable lower-case name used in JSON output and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlowProtocol::NetflowV5 => "netflow_v5",
            FlowProtocol::NetflowV9 => "netflow_v9",
            FlowProtocol::Ipfix => "ipfix",
            FlowProtocol::SflowV5 => "sflow_v5",
        }
    }
}

/// Flow direction as reported by the exporter (IPFIX IE 61 `flowDirection`, NetFlow v9 type 61).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowDirection {
    Ingress,
    Egress,
}

/// Where [`FlowRecord::sampling_rate`] was resolved from, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingSource {
    /// No rate is known for this record.
    #[default]
    Unknown,
    /// A sampling IE in the data record itself (e.g. Huawei NetStream).
    Record,
    /// Options data keyed by (exporter, domain, sampler id).
    Options,
    /// The NetFlow v5 header's sampling_interval.
    Header,
    /// The sFlow flow sample's sampling_rate.
    Sample,
}

/// One normalized flow.
///
/// Times are Unix nanoseconds. Optional fields are `None` when the exporter did not send them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRecord {
    /// UDP source address of the datagram.
    pub exporter: SocketAddr,
    /// sFlow agent address from the datagram header (the device's own identity); `None` for
    /// NetFlow/IPFIX.
    pub agent: Option<IpAddr>,
    pub flow_protocol: FlowProtocol,
    /// IPFIX observation domain, NetFlow v9 source id, NetFlow v5 engine type/id
    /// (`engine_type << 8 | engine_id`), sFlow sub-agent id.
    pub observation_domain: u32,
    /// The export header's sequence number: NetFlow v5 flows seen before the packet, NetFlow
    /// v9 export packets (RFC 3954 §5.1), IPFIX data records before the message (RFC 7011
    /// §3.1), sFlow datagram sequence number. Lets a consumer spot lost export packets.
    pub sequence_num: u32,
    pub time_received_ns: u64,
    pub flow_start_ns: Option<u64>,
    pub flow_end_ns: Option<u64>,
    pub src_addr: Option<IpAddr>,
    pub dst_addr: Option<IpAddr>,
    pub src_port: u16,
    pub dst_port: u16,
    pub ip_protocol: u8,
    pub tcp_flags: u16,
    pub tos: u8,
    /// Octets as the exporter counted them (not sampling-corrected).
    pub bytes: u64,
    /// Packets as the exporter counted them (not sampling-corrected).
    pub packets: u64,
    pub in_if: Option<u32>,
    pub out_if: Option<u32>,
    pub direction: Option<FlowDirection>,
    pub src_as: Option<u32>,
    pub dst_as: Option<u32>,
    pub next_hop: Option<IpAddr>,
    pub bgp_next_hop: Option<IpAddr>,
    pub src_prefix_len: Option<u8>,
    pub dst_prefix_len: Option<u8>,
    pub vlan: Option<u16>,
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    pub mpls_top_label: Option<u32>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    /// EtherType of the flow's network layer (0x0800 IPv4, 0x86dd IPv6): IE 256 ethernetType,
    /// the sampled frame, IE 60 ipVersion, else inferred from the address family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etype: Option<u16>,
    /// IP TTL / hop limit: IE 192 ipTTL, else 52 minimumTTL, else 53 maximumTTL; the sampled
    /// packet's header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_ttl: Option<u8>,
    /// IPv4 flags (3 bits: reserved, DF = 2, MF = 1): IE 197 fragmentFlags, the sampled
    /// IPv4 header; for IPv6 the fragment header's M flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_flags: Option<u8>,
    /// IE 54 fragmentIdentification, the sampled IPv4 header or IPv6 fragment header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_id: Option<u32>,
    /// Fragment offset in 8-octet units: IE 88 fragmentOffset, the sampled header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_offset: Option<u16>,
    /// IE 31 flowLabelIPv6, the sampled IPv6 header (20 bits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_flow_label: Option<u32>,
    /// IE 89 forwardingStatus (RFC 7270: status in the top two bits, 01 forwarded, 10
    /// dropped, 11 consumed; reason code in the low six).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarding_status: Option<u8>,
    /// VLAN on the ingress side: IE 58 vlanId, sFlow extended switch `src_vlan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_vlan: Option<u16>,
    /// VLAN on the egress side: IE 59 postVlanId, sFlow extended switch `dst_vlan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_vlan: Option<u16>,
    /// With QinQ, the inner (customer, IEEE 802.1ad C-TAG) VLAN: IE 245
    /// dot1qCustomerVlanId, the sampled frame's second tag. `vlan` is the outer one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner_vlan: Option<u16>,
    /// The MPLS label stack, top first: IE 70-79 mplsTopLabelStackSection /
    /// mplsLabelStackSection2-10, the sampled frame. Up to [`MplsLabels::CAPACITY`] labels.
    #[serde(skip_serializing_if = "MplsLabels::is_empty")]
    pub mpls_labels: MplsLabels,
    /// First AS of the path to the destination: IE 128 bgpNextAdjacentAsNumber, the first AS
    /// of the sFlow extended gateway's destination AS path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop_as: Option<u32>,
    /// IE 138 observationPointId.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation_point_id: Option<u64>,
    /// IE 95 applicationId (RFC 6759: classification engine id in the first octet, then
    /// the selector id), as a big-endian number of up to 8 octets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_id: Option<u64>,
    /// The application's name (IE 96 applicationName) the exporter announced for
    /// `application_id` in options data, e.g. Cisco NBAR's `ssl`; shared with the decoder's
    /// table (no allocation per record).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_name: Option<Arc<str>>,
    /// Address translation (IE 225-228, 281/282, 230; Cisco ASA 8.4's 40001-40004).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat: Option<Nat>,
    /// Firewall event and Cisco NSEL fields (IE 233, 148, 323; v9 33000-33002, 40005).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Firewall>,
    /// Fields mapped by [`crate::DecoderConfig::fields`] (`decoder.fields:`), in template
    /// order. Empty, and never allocated, when no mapping is configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<CustomField>,
    pub sampler_id: Option<u64>,
    /// The resolved 1-in-N sampling rate; `None` when unknown.
    pub sampling_rate: Option<u32>,
    pub sampling_source: SamplingSource,
    /// sFlow flow-sample details with no NetFlow equivalent (sequence, sample pool, drops,
    /// interface encodings); `None` for NetFlow/IPFIX.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sflow: Option<SflowSample>,
    /// BGP AS path to the destination (sFlow extended gateway), flattened over its segments.
    /// Kept only with [`crate::DecoderConfig::keep_unknown_fields`], so it never allocates on
    /// the hot path.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub as_path: Vec<u32>,
    /// BGP communities (sFlow extended gateway); kept like [`FlowRecord::as_path`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bgp_communities: Vec<u32>,
    /// Fields flowtel does not map, kept only when [`crate::DecoderConfig::keep_unknown_fields`]
    /// is set (for `flowtel decode`). Empty otherwise, and then it never allocates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_fields: Vec<RawField>,
}

/// Network address translation of a flow (RFC 8158 / RFC 5102 NAT elements, Cisco NEL/NSEL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Nat {
    /// IE 225 postNATSourceIPv4Address, 281 postNATSourceIPv6Address (v9 40001 on ASA 8.4).
    pub src_addr: Option<IpAddr>,
    /// IE 226 postNATDestinationIPv4Address, 282 postNATDestinationIPv6Address (v9 40002).
    pub dst_addr: Option<IpAddr>,
    /// IE 227 postNAPTSourceTransportPort (v9 40003).
    pub src_port: Option<u16>,
    /// IE 228 postNAPTDestinationTransportPort (v9 40004).
    pub dst_port: Option<u16>,
    /// IE 230 natEvent (IANA "NAT Event Type": 4 NAT44 session create, 5 delete, ...).
    pub event: Option<u8>,
}

impl Nat {
    /// The IANA name of a natEvent value, lower-case with underscores.
    pub const fn event_name(event: u8) -> Option<&'static str> {
        Some(match event {
            1 => "nat_translation_create",
            2 => "nat_translation_delete",
            3 => "nat_addresses_exhausted",
            4 => "nat44_session_create",
            5 => "nat44_session_delete",
            6 => "nat64_session_create",
            7 => "nat64_session_delete",
            8 => "nat44_bib_create",
            9 => "nat44_bib_delete",
            10 => "nat64_bib_create",
            11 => "nat64_bib_delete",
            12 => "nat_ports_exhausted",
            13 => "quota_exceeded",
            14 => "address_binding_create",
            15 => "address_binding_delete",
            16 => "port_block_allocation",
            17 => "port_block_deallocation",
            18 => "threshold_reached",
            _ => return None,
        })
    }
}

/// Firewall events: IPFIX IE 233 firewallEvent and Cisco ASA/FTD NSEL (Cisco "ASA NetFlow
/// Implementation Guide"). The ACL ids (NF_F_INGRESS/EGRESS_ACL_ID, v9 33000/33001) stay
/// unmapped (`flowtel decode` shows them by name). NSEL's byte counters (IE 231/232 initiator/responderOctets,
/// 298/299 packets) are not here: they are the forward and reverse records' counters (see
/// [`crate`] "Biflows and firewall connections").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Firewall {
    /// IE 233 firewallEvent / NF_F_FW_EVENT (v9 40005 on ASA 8.4): 1 created, 2 deleted,
    /// 3 denied, 4 alert, 5 update.
    pub event: Option<u8>,
    /// NF_F_FW_EXT_EVENT (v9 33002): the reason, e.g. 1001 denied by ingress ACL, 2000+
    /// teardown reasons.
    pub ext_event: Option<u16>,
    /// IE 148 flowId / NF_F_CONN_ID: the firewall's connection id.
    pub flow_id: Option<u64>,
    /// IE 323 observationTimeMilliseconds / NF_F_EVENT_TIME_MSEC: when the event happened,
    /// Unix milliseconds.
    pub event_time_ms: Option<u64>,
}

impl Firewall {
    /// The IANA name of a firewallEvent value, lower-case.
    pub const fn event_name(event: u8) -> Option<&'static str> {
        Some(match event {
            0 => "ignore",
            1 => "created",
            2 => "deleted",
            3 => "denied",
            4 => "alert",
            5 => "update",
            _ => return None,
        })
    }
}

/// A field mapped by configuration (`decoder.fields:`): its configured name and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomField {
    /// The configured name, shared with the configuration.
    pub name: Arc<str>,
    pub value: CustomValue,
}

/// A configured field's value, of the configured [`crate::FieldKind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum CustomValue {
    Str(Box<str>),
    Unsigned(u64),
    Addr(IpAddr),
    #[serde(serialize_with = "crate::record::mac_str")]
    Mac([u8; 6]),
}

impl std::fmt::Display for CustomValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CustomValue::Str(s) => f.write_str(s),
            CustomValue::Unsigned(n) => write!(f, "{n}"),
            CustomValue::Addr(a) => write!(f, "{a}"),
            CustomValue::Mac([a, b, c, d, e, g]) => {
                write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
            }
        }
    }
}

pub(crate) fn mac_str<S: serde::Serializer>(m: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&CustomValue::Mac(*m))
}

/// An MPLS label stack, top first, stored inline (no allocation): at most
/// [`MplsLabels::CAPACITY`] labels, deeper ones are not kept. Serialized as a list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MplsLabels {
    len: u8,
    labels: [u32; MplsLabels::CAPACITY],
}

impl MplsLabels {
    /// Labels kept per record.
    pub const CAPACITY: usize = 6;
    pub const EMPTY: MplsLabels = MplsLabels {
        len: 0,
        labels: [0; MplsLabels::CAPACITY],
    };

    /// Append a label below the others; false when the stack is full.
    pub fn push(&mut self, label: u32) -> bool {
        match self.labels.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = label;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Set the label at `depth` (0 = top), as IPFIX IE 70 + depth carries it; the labels
    /// above it that were not given are 0.
    pub fn set(&mut self, depth: usize, label: u32) {
        if let Some(slot) = self.labels.get_mut(depth) {
            *slot = label;
            self.len = self.len.max(depth as u8 + 1);
        }
    }

    pub fn as_slice(&self) -> &[u32] {
        self.labels.get(..usize::from(self.len)).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
}

impl std::fmt::Debug for MplsLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Serialize for MplsLabels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.as_slice())
    }
}

/// An information element flowtel does not map, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawField {
    /// Private Enterprise Number; 0 for IANA elements and NetFlow v9.
    pub enterprise: u32,
    pub id: u16,
    #[serde(serialize_with = "crate::record::hex")]
    pub value: Vec<u8>,
}

pub(crate) fn hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use std::fmt::Write;
    let mut out = String::with_capacity(v.len() * 2);
    for b in v {
        let _ = write!(out, "{b:02x}");
    }
    s.serialize_str(&out)
}

impl FlowRecord {
    /// An empty record for `exporter`; decoders fill in what the wire carries.
    pub fn new(exporter: SocketAddr, flow_protocol: FlowProtocol, time_received_ns: u64) -> Self {
        FlowRecord {
            exporter,
            agent: None,
            flow_protocol,
            observation_domain: 0,
            sequence_num: 0,
            time_received_ns,
            flow_start_ns: None,
            flow_end_ns: None,
            src_addr: None,
            dst_addr: None,
            src_port: 0,
            dst_port: 0,
            ip_protocol: 0,
            tcp_flags: 0,
            tos: 0,
            bytes: 0,
            packets: 0,
            in_if: None,
            out_if: None,
            direction: None,
            src_as: None,
            dst_as: None,
            next_hop: None,
            bgp_next_hop: None,
            src_prefix_len: None,
            dst_prefix_len: None,
            vlan: None,
            src_mac: None,
            dst_mac: None,
            mpls_top_label: None,
            icmp_type: None,
            icmp_code: None,
            etype: None,
            ip_ttl: None,
            ip_flags: None,
            fragment_id: None,
            fragment_offset: None,
            ipv6_flow_label: None,
            forwarding_status: None,
            src_vlan: None,
            dst_vlan: None,
            inner_vlan: None,
            mpls_labels: MplsLabels::EMPTY,
            next_hop_as: None,
            observation_point_id: None,
            application_id: None,
            application_name: None,
            nat: None,
            firewall: None,
            custom_fields: Vec::new(),
            sampler_id: None,
            sampling_rate: None,
            sampling_source: SamplingSource::Unknown,
            sflow: None,
            as_path: Vec::new(),
            bgp_communities: Vec::new(),
            unknown_fields: Vec::new(),
        }
    }
}

/// Interface counters from an sFlow counter sample (generic interface counters, sFlow v5
/// counter record 1, optionally with ethernet counters, record 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CounterRecord {
    /// UDP source address of the datagram.
    pub exporter: SocketAddr,
    /// sFlow agent address (the device's identity).
    pub agent: IpAddr,
    pub sub_agent_id: u32,
    pub time_received_ns: u64,
    /// Agent uptime in milliseconds when the datagram was sent (the datagram header's): a
    /// value lower than the previous sample's means the agent restarted and its counters may
    /// have started again.
    pub uptime_ms: u32,
    /// Counter sample sequence number.
    pub sequence: u32,
    /// Source id of the sample (type << 24 | index in the compact form).
    pub source_id: u32,
    /// Counter record 1; serialized inline, as the counter record's own fields.
    #[serde(flatten)]
    pub interface: InterfaceCounters,
    /// Ethernet counters (counter record 2) when the sample carried them.
    pub ethernet: Option<EthernetCounters>,
    /// The interface's name (port name, counter record 1005, as hsflowd and Open vSwitch send
    /// it) when the sample carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Box<str>>,
}

/// sFlow v5 generic interface counters (counter record 1, RFC 2233 ifTable/ifXTable values).
/// The decoder reads them into [`CounterRecord::interface`]; the sFlow encoder writes them
/// (`sflow::CounterData::Interface`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct InterfaceCounters {
    pub if_index: u32,
    pub if_type: u32,
    pub if_speed: u64,
    /// ifDirection: 0 unknown, 1 full-duplex, 2 half-duplex, 3 in, 4 out.
    pub if_direction: u32,
    /// ifAdminStatus (bit 0) and ifOperStatus (bit 1).
    pub if_status: u32,
    pub in_octets: u64,
    pub in_ucast_pkts: u32,
    pub in_multicast_pkts: u32,
    pub in_broadcast_pkts: u32,
    pub in_discards: u32,
    pub in_errors: u32,
    pub in_unknown_protos: u32,
    pub out_octets: u64,
    pub out_ucast_pkts: u32,
    pub out_multicast_pkts: u32,
    pub out_broadcast_pkts: u32,
    pub out_discards: u32,
    pub out_errors: u32,
    pub promiscuous_mode: u32,
}

/// sFlow v5 ethernet interface counters (counter record 2, dot3 statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EthernetCounters {
    pub alignment_errors: u32,
    pub fcs_errors: u32,
    pub single_collision_frames: u32,
    pub multiple_collision_frames: u32,
    pub sqe_test_errors: u32,
    pub deferred_transmissions: u32,
    pub late_collisions: u32,
    pub excessive_collisions: u32,
    pub internal_mac_transmit_errors: u32,
    pub carrier_sense_errors: u32,
    pub frame_too_longs: u32,
    pub internal_mac_receive_errors: u32,
    pub symbol_errors: u32,
}

/// A packet an sFlow agent reports it dropped: one discarded-packet sample (sFlow "Dropped
/// Packet Notification Structures", sflow.org 2020: enterprise 0, format 5), as hsflowd's
/// drop monitor and Linux switches (via devlink traps) send them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DropRecord {
    /// UDP source address of the datagram.
    pub exporter: SocketAddr,
    /// sFlow agent address (the device's identity).
    pub agent: Option<IpAddr>,
    pub sub_agent_id: u32,
    pub time_received_ns: u64,
    /// Discard sample sequence number (per data source).
    pub sequence: u32,
    /// Data source type (0 ifIndex) and index.
    pub source_id_type: u32,
    pub source_id_index: u32,
    /// Discard notifications the agent did not send (rate limit, lack of resources): a total
    /// since the agent was last reset, not a count since the previous notification.
    pub drops: u32,
    /// The ifIndex the packet came in on, when known.
    pub in_if: Option<u32>,
    /// The ifIndex it would have gone out on, when known.
    pub out_if: Option<u32>,
    pub reason: DropReason,
    /// The dropped packet's flow fields, read from the notification's flow records exactly as
    /// a flow sample's (sampled header: addresses, ports, protocol, VLAN, MACs...): `packets` 1,
    /// `bytes` as [`crate::SflowBytes`] says, no sampling rate (a drop is reported, not
    /// sampled).
    pub packet: FlowRecord,
    /// Extended egress queue (flow record 1036): the queue the packet was selected for.
    pub egress_queue: Option<u32>,
    /// Extended function (1038): the software function that dropped it (Linux kernel symbol).
    pub function: Option<Box<str>>,
    /// Extended hardware trap (1041): devlink trap group and trap name.
    pub hw_trap_group: Option<Box<str>>,
    pub hw_trap: Option<Box<str>>,
    /// Extended Linux drop reason (1042): the kernel's `SKB_DROP_REASON_*` name.
    pub linux_reason: Option<Box<str>>,
}

/// Why an sFlow agent dropped a packet (the `drop_reason` of the sFlow drop notification
/// structures): 0-15 are the ICMP destination-unreachable codes (RFC 1812), 256 on the
/// reasons of Linux's drop monitor and devlink traps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct DropReason(pub u32);

impl From<DropReason> for String {
    fn from(r: DropReason) -> String {
        r.to_string()
    }
}

impl std::fmt::Display for DropReason {
    /// The reason's name, else its number.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl DropReason {
    /// The reason's name in the sFlow drop notification structures (and sflowtool), e.g.
    /// `acl`, `ttl_exceeded`, `no_buffer_space`; `None` for a code it does not define.
    pub fn name(self) -> Option<&'static str> {
        let i = match self.0 {
            0..=15 => self.0 as usize,
            256..=371 => (self.0 - 256) as usize + 16,
            _ => return None,
        };
        DROP_REASONS.get(i).copied()
    }
}

/// Codes 0-15, then 256-371, in order.
const DROP_REASONS: [&str; 132] = [
    "net_unreachable",
    "host_unreachable",
    "protocol_unreachable",
    "port_unreachable",
    "frag_needed",
    "src_route_failed",
    "dst_net_unknown",
    "dst_host_unknown",
    "src_host_isolated",
    "dst_net_prohibited",
    "dst_host_prohibited",
    "dst_net_tos_unreachable",
    "dst_host_tos_unreachable",
    "comm_admin_prohibited",
    "host_precedence_violation",
    "precedence_cutoff",
    "unknown",
    "ttl_exceeded",
    "acl",
    "no_buffer_space",
    "red",
    "traffic_shaping",
    "pkt_too_big",
    "src_mac_is_multicast",
    "vlan_tag_mismatch",
    "ingress_vlan_filter",
    "ingress_spanning_tree_filter",
    "port_list_is_empty",
    "port_loopback_filter",
    "blackhole_route",
    "non_ip",
    "uc_dip_over_mc_dmac",
    "dip_is_loopback_address",
    "sip_is_mc",
    "sip_is_loopback_address",
    "ip_header_corrupted",
    "ipv4_sip_is_limited_bc",
    "ipv6_mc_dip_reserved_scope",
    "ipv6_mc_dip_interface_local_scope",
    "unresolved_neigh",
    "mc_reverse_path_forwarding",
    "non_routable_packet",
    "decap_error",
    "overlay_smac_is_mc",
    "unknown_l2",
    "unknown_l3",
    "unknown_l3_exception",
    "unknown_buffer",
    "unknown_tunnel",
    "unknown_l4",
    "sip_is_unspecified",
    "mlag_port_isolation",
    "blackhole_arp_neigh",
    "src_mac_is_dmac",
    "dmac_is_reserved",
    "sip_is_class_e",
    "mc_dmac_mismatch",
    "sip_is_dip",
    "dip_is_local_network",
    "dip_is_link_local",
    "overlay_smac_is_dmac",
    "egress_vlan_filter",
    "uc_reverse_path_forwarding",
    "split_horizon",
    "locked_port",
    "dmac_filter",
    "blackhole_nexthop",
    "vxlan_parsing",
    "llc_snap_parsing",
    "vlan_parsing",
    "pppoe_ppp_parsing",
    "mpls_parsing",
    "arp_parsing",
    "ip_1_parsing",
    "ip_n_parsing",
    "gre_parsing",
    "udp_parsing",
    "tcp_parsing",
    "ipsec_parsing",
    "sctp_parsing",
    "dccp_parsing",
    "gtp_parsing",
    "esp_parsing",
    "unknown_parsing",
    "pkt_too_small",
    "unhandled_proto",
    "ipv6disabled",
    "invalid_proto",
    "ip_noproto",
    "skb_csum",
    "skb_ucopy_fault",
    "dev_ready",
    "dev_hdr",
    "dup_frag",
    "skb_gso_seg",
    "reverse_path_forwarding",
    "icmp_parsing",
    "tcp_md5notfound",
    "tcp_md5unexpected",
    "tcp_md5failure",
    "tcp_flags",
    "tcp_zerowindow",
    "tcp_old_data",
    "tcp_overwindow",
    "tcp_ofomerge",
    "tcp_rfc7323_paws",
    "tcp_invalid_sequence",
    "tcp_reset",
    "tcp_invalid_syn",
    "tcp_close",
    "tcp_fastopen",
    "tcp_old_ack",
    "tcp_too_old_ack",
    "tcp_ack_unsent_data",
    "tcp_ofo_queue_prune",
    "tcp_ofo_drop",
    "tcp_minttl",
    "ipv6_bad_exthdr",
    "ipv6_ndisc_frag",
    "ipv6_ndisc_hop_limit",
    "ipv6_ndisc_bad_code",
    "ipv6_ndisc_bad_options",
    "ipv6_ndisc_ns_otherhost",
    "tap_filter",
    "tap_txfilter",
    "tc_ingress",
    "tc_egress",
    "xdp",
    "cpu_backlog",
    "bpf_cgroup_egress",
    "xfrm_policy",
    "socket_filter",
];

/// Per-sample details of an sFlow v5 flow sample (sFlow v5 §"Flow sample").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SflowSample {
    /// Datagram sequence number (per agent and sub-agent).
    pub datagram_sequence: u32,
    /// Agent uptime in milliseconds when the datagram was sent.
    pub uptime_ms: u32,
    /// Flow sample sequence number (per data source).
    pub sequence: u32,
    /// Data source type: 0 ifIndex, 1 smonVlanDataSource, 2 entPhysicalEntry.
    pub source_id_type: u32,
    /// Data source index (e.g. the ifIndex of the sampling interface).
    pub source_id_index: u32,
    /// Packets that could have been sampled (sampled or not) since the source started.
    pub sample_pool: u32,
    /// Packets the agent dropped for lack of resources.
    pub drops: u32,
    pub input: SflowInterface,
    pub output: SflowInterface,
}

/// An sFlow v5 `interface` value, compact (2-bit format + 30-bit value) or expanded
/// (format and value words) (sFlow v5 §"Flow sample", `interface` / `interface_expanded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SflowInterface {
    /// Format 0: an ifIndex; 0 means unknown.
    Index(u32),
    /// Format 0 with the value 0x3FFFFFFF: the packet came from or went to the agent itself.
    Internal,
    /// Format 1: the packet was dropped; the value is the reason (ICMP unreachable codes,
    /// 256 unknown, 257 TTL exceeded, 258 ACL, 259 no buffer space, 260 RED, ...).
    Discarded(u32),
    /// Format 2: the packet went to several interfaces; the value is their count (0 unknown).
    Multiple(u32),
    /// A format this version of the spec does not define.
    Unknown { format: u32, value: u32 },
}

impl SflowInterface {
    /// The value "internal to the agent" in the ifIndex format.
    pub const INTERNAL: u32 = 0x3fff_ffff;

    /// The ifIndex to report as `in_if` / `out_if`: only a known, real interface.
    pub const fn if_index(self) -> Option<u32> {
        match self {
            SflowInterface::Index(0) => None,
            SflowInterface::Index(i) => Some(i),
            _ => None,
        }
    }

    /// From the expanded encoding's `format` and `value` words.
    pub const fn from_expanded(format: u32, value: u32) -> Self {
        match format {
            0 if value == Self::INTERNAL => SflowInterface::Internal,
            0 => SflowInterface::Index(value),
            1 => SflowInterface::Discarded(value),
            2 => SflowInterface::Multiple(value),
            _ => SflowInterface::Unknown { format, value },
        }
    }

    /// From the compact encoding: the top 2 bits are the format, the low 30 the value.
    pub const fn from_compact(word: u32) -> Self {
        Self::from_expanded(word >> 30, word & 0x3fff_ffff)
    }

    /// The expanded encoding's `(format, value)`.
    pub const fn to_expanded(self) -> (u32, u32) {
        match self {
            SflowInterface::Index(i) => (0, i),
            SflowInterface::Internal => (0, Self::INTERNAL),
            SflowInterface::Discarded(r) => (1, r),
            SflowInterface::Multiple(n) => (2, n),
            SflowInterface::Unknown { format, value } => (format, value),
        }
    }

    /// The compact encoding (values above 30 bits are truncated: use the expanded form).
    pub const fn to_compact(self) -> u32 {
        let (format, value) = self.to_expanded();
        (format << 30) | (value & 0x3fff_ffff)
    }
}
