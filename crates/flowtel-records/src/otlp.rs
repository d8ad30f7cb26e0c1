//! Flow records as OTLP log records, named like the OpenTelemetry Collector's
//! `netflowreceiver`.
//!
//! One flow is one `LogRecord`: no body, no severity, `time_unix_nano` = flow end (the time
//! received when the exporter sent no flow times; the receiver stamps the flow start instead),
//! `observed_time_unix_nano` = time received. [`LogsBatch`] packs many into one
//! `ExportLogsServiceRequest` (one resource, one scope, both given by the caller);
//! [`crate::EncodedLogsBatch`] writes the same request's bytes directly, for the sink.
//!
//! # Attribute names
//!
//! The netflowreceiver's attributes come first, with its value formats: `source.address`,
//! `source.port`, `destination.address`, `destination.port`, `network.transport` (the IANA
//! keyword in lower case: `tcp`, `udp`, `icmp`, `ipv6-icmp`, ...), `network.type` (`ipv4`,
//! `ipv6`), then bytes, packets, flow type (`netflow_v5`, `netflow_v9`, `ipfix`, `sflow_5`),
//! sequence number, time received, start, end (Unix ns), sampling rate and sampler address.
//! The receiver has used two spellings of the flow-specific ones ([`AttributeNames`]):
//! `network.io.bytes` / `network.flow.*` in its first releases (the default here), and
//! `flow.io.bytes` / `flow.*` since, when it also added `flow.tcp_flags`, `flow.in_if`, ...
//! With [`AttributeNames::Flow`] those extended attributes are written exactly as the
//! receiver writes them (all of them, zeros included), so its queries keep working.
//!
//! Everything else is named after the OTel semantic conventions where they have a name
//! (`network.protocol.name` for the application) and under `flowtel.` otherwise, and is
//! written only when known:
//!
//! | attribute | value |
//! |---|---|
//! | `flowtel.exporter.name` | the device's configured name, else its address |
//! | `flowtel.exporter.address` | the datagram's source address, when it is not the sampler address (sFlow agents) |
//! | `flowtel.sampling.source` | where the sampling rate came from: `record`, `options`, `header`, `sample`, `config` |
//! | `network.protocol.name` | IANA service name of the service side (`https`, `domain`, ...) |
//! | `flowtel.flow.direction` | `ingress` / `egress` as the exporter reported it |
//! | `flowtel.in_interface.name`, `flowtel.out_interface.name` | from the exporter's options data |
//! | `flowtel.source.country`, `flowtel.destination.country` | ISO 3166-1 alpha-2, or `Private IP` |
//! | `flowtel.source.private`, `flowtel.destination.private` | the address is not globally reachable |
//! | `flowtel.source.asn`, `flowtel.destination.asn` | AS number: the exporter's, else the networks file's, else the ASN database's |
//! | `flowtel.source.network.name`, `.role`, `.site`, `.region`, `.tenant` (and `flowtel.destination.network.*`) | the address's network in the networks file (longest prefix) |
//!
//! and, with the default names only (the `flow.*` names carry them otherwise):
//! `flowtel.observation_domain.id`, `flowtel.in_interface.index`,
//! `flowtel.out_interface.index`, `flowtel.tcp.flags` (TCP flows), `flowtel.ip.tos`,
//! `flowtel.ip.dscp`, `flowtel.ip.ttl`, `flowtel.forwarding_status`, `flowtel.icmp.type` and
//! `flowtel.icmp.code` (ICMP flows), `flowtel.vlan.id`, `flowtel.source.mac`,
//! `flowtel.destination.mac` (`aa:bb:cc:dd:ee:ff`), `flowtel.next_hop.address`,
//! `flowtel.bgp.next_hop.address`, `flowtel.source.prefix_length`,
//! `flowtel.destination.prefix_length`, `flowtel.mpls.label` (top label).
//!
//! Addresses flowtel does not know are left out (the receiver writes `"invalid IP"`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

use flowtel_rollup::EnrichedRecord;

use crate::json::{write_ip, write_mac};
use crate::message::{addr_from_bytes, fill_message};
use crate::names::{iana_keyword_lower, network_type};
use crate::proto::FlowMessage;
use crate::proto::flow_message::FlowType;
use crate::{direction_name, sampling_source_name};

/// Which spelling of the netflowreceiver's flow attributes to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AttributeNames {
    /// `network.io.bytes`, `network.io.packets`, `network.flow.type`,
    /// `network.flow.sequence_num`, `network.flow.time_received`, `network.flow.start`,
    /// `network.flow.end`, `network.flow.sampling_rate`, `network.flow.sampler_address`: the
    /// receiver's first releases; further attributes under `flowtel.`.
    #[default]
    NetworkFlow,
    /// `flow.io.bytes`, `flow.io.packets`, `flow.type`, ... and the receiver's extended
    /// attributes (`flow.tcp_flags`, `flow.in_if`, `flow.src_mac`, ...): its later releases.
    Flow,
}

impl AttributeNames {
    /// The configuration spelling: `network.flow` or `flow`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AttributeNames::NetworkFlow => "network.flow",
            AttributeNames::Flow => "flow",
        }
    }
}

impl fmt::Display for AttributeNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown [`AttributeNames`] spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAttributeNames(pub String);

impl fmt::Display for UnknownAttributeNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown attribute names {:?}: expected \"network.flow\" or \"flow\"",
            self.0
        )
    }
}

impl std::error::Error for UnknownAttributeNames {}

impl FromStr for AttributeNames {
    type Err = UnknownAttributeNames;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "network.flow" => Ok(AttributeNames::NetworkFlow),
            "flow" => Ok(AttributeNames::Flow),
            other => Err(UnknownAttributeNames(other.to_owned())),
        }
    }
}

/// The names of the receiver's core flow attributes in one spelling.
struct CoreNames {
    bytes: &'static str,
    packets: &'static str,
    flow_type: &'static str,
    sequence_num: &'static str,
    time_received: &'static str,
    start: &'static str,
    end: &'static str,
    sampling_rate: &'static str,
    sampler_address: &'static str,
}

const NETWORK_FLOW: CoreNames = CoreNames {
    bytes: "network.io.bytes",
    packets: "network.io.packets",
    flow_type: "network.flow.type",
    sequence_num: "network.flow.sequence_num",
    time_received: "network.flow.time_received",
    start: "network.flow.start",
    end: "network.flow.end",
    sampling_rate: "network.flow.sampling_rate",
    sampler_address: "network.flow.sampler_address",
};

const FLOW: CoreNames = CoreNames {
    bytes: "flow.io.bytes",
    packets: "flow.io.packets",
    flow_type: "flow.type",
    sequence_num: "flow.sequence_num",
    time_received: "flow.time_received",
    start: "flow.start",
    end: "flow.end",
    sampling_rate: "flow.sampling_rate",
    sampler_address: "flow.sampler_address",
};

/// IP protocol numbers of ICMP and ICMPv6, TCP.
const ICMP: u32 = 1;
const ICMPV6: u32 = 58;
const TCP: u32 = 6;

/// The netflowreceiver's `flow.type` value.
fn flow_type_value(value: i32) -> &'static str {
    match FlowType::try_from(value) {
        Ok(FlowType::Sflow5) => "sflow_5",
        Ok(FlowType::NetflowV5) => "netflow_v5",
        Ok(FlowType::NetflowV9) => "netflow_v9",
        Ok(FlowType::Ipfix) => "ipfix",
        Ok(FlowType::Flowunknown) | Err(_) => "unknown",
    }
}

/// One flow as an OTLP log record.
pub fn log_record(message: &FlowMessage, names: AttributeNames) -> LogRecord {
    let mut attributes = Vec::with_capacity(match names {
        AttributeNames::NetworkFlow => 36,
        AttributeNames::Flow => 52,
    });
    push_attributes(message, names, &mut attributes);
    LogRecord {
        time_unix_nano: message.time_flow_end_ns,
        observed_time_unix_nano: message.time_received_ns,
        attributes,
        ..LogRecord::default()
    }
}

/// Append the attributes of `message` (see the module documentation) to `out`.
pub fn push_attributes(message: &FlowMessage, names: AttributeNames, out: &mut Vec<KeyValue>) {
    write_attributes(message, names, &mut Attrs::new(out));
}

/// Where attributes go: OTLP `KeyValue`s ([`Attrs`]) or their wire encoding
/// ([`crate::otlp_wire`]). Both receive exactly the same calls, so both forms hold the same
/// attributes in the same order.
pub(crate) trait AttributeSink {
    fn int(&mut self, key: &str, value: i64);
    fn bool(&mut self, key: &str, value: bool);
    fn str(&mut self, key: &str, value: &str);
    /// An address from 4 or 16 bytes, as text.
    fn ip(&mut self, key: &str, addr: IpAddr);
    /// A MAC address from the low 48 bits, `aa:bb:cc:dd:ee:ff`.
    fn mac(&mut self, key: &str, mac: u64);
}

/// The attribute rules of the module documentation, over any [`AttributeSink`].
pub(crate) fn write_attributes(
    message: &FlowMessage,
    names: AttributeNames,
    sink: &mut impl AttributeSink,
) {
    let m = message;
    let mut a = Rules { sink };
    let core = match names {
        AttributeNames::NetworkFlow => &NETWORK_FLOW,
        AttributeNames::Flow => &FLOW,
    };

    // The netflowreceiver's attributes.
    a.addr("source.address", &m.src_addr);
    a.int("source.port", m.src_port);
    a.addr("destination.address", &m.dst_addr);
    a.int("destination.port", m.dst_port);
    a.sink.str("network.transport", transport_name(m.proto));
    a.sink.str("network.type", network_type(m.etype));
    a.int(core.bytes, m.bytes);
    a.int(core.packets, m.packets);
    a.sink.str(core.flow_type, flow_type_value(m.r#type));
    a.int(core.sequence_num, m.sequence_num);
    a.int(core.time_received, m.time_received_ns);
    a.int(core.start, m.time_flow_start_ns);
    a.int(core.end, m.time_flow_end_ns);
    a.int(core.sampling_rate, m.sampling_rate);
    a.addr(core.sampler_address, &m.sampler_address);

    match names {
        AttributeNames::Flow => {
            // The receiver's extended attributes, every one, as it writes them.
            a.int("flow.tcp_flags", m.tcp_flags);
            a.int("flow.in_if", m.in_if);
            a.int("flow.out_if", m.out_if);
            a.int("flow.ip_tos", m.ip_tos);
            a.int("flow.ip_ttl", m.ip_ttl);
            a.int("flow.ip_flags", m.ip_flags);
            a.int("flow.fragment_id", m.fragment_id);
            a.int("flow.fragment_offset", m.fragment_offset);
            a.int("flow.ipv6_flow_label", m.ipv6_flow_label);
            a.int("flow.icmp_type", m.icmp_type);
            a.int("flow.icmp_code", m.icmp_code);
            a.sink.mac("flow.src_mac", m.src_mac);
            a.sink.mac("flow.dst_mac", m.dst_mac);
            a.int("flow.src_vlan", m.src_vlan);
            a.int("flow.dst_vlan", m.dst_vlan);
            a.int("flow.vlan_id", m.vlan_id);
            a.addr("flow.next_hop", &m.next_hop);
            a.int("flow.next_hop_as", m.next_hop_as);
            a.int("flow.src_as", m.src_as);
            a.int("flow.dst_as", m.dst_as);
            a.addr("flow.bgp_next_hop", &m.bgp_next_hop);
            a.int("flow.src_net", m.src_net);
            a.int("flow.dst_net", m.dst_net);
            a.int("flow.forwarding_status", m.forwarding_status);
            a.int("flow.observation_domain_id", m.observation_domain_id);
            a.int("flow.observation_point_id", m.observation_point_id);
        }
        AttributeNames::NetworkFlow => {
            // The same facts under flowtel's names, only when known.
            a.int("flowtel.observation_domain.id", m.observation_domain_id);
            a.nonzero("flowtel.in_interface.index", m.in_if);
            a.nonzero("flowtel.out_interface.index", m.out_if);
            if m.proto == TCP {
                a.int("flowtel.tcp.flags", m.tcp_flags);
            }
            a.int("flowtel.ip.tos", m.ip_tos);
            a.int("flowtel.ip.dscp", m.ip_tos >> 2);
            a.nonzero("flowtel.ip.ttl", m.ip_ttl);
            a.nonzero("flowtel.forwarding_status", m.forwarding_status);
            if m.proto == ICMP || m.proto == ICMPV6 {
                a.int("flowtel.icmp.type", m.icmp_type);
                a.int("flowtel.icmp.code", m.icmp_code);
            }
            a.nonzero("flowtel.vlan.id", m.vlan_id);
            if m.src_mac != 0 {
                a.sink.mac("flowtel.source.mac", m.src_mac);
            }
            if m.dst_mac != 0 {
                a.sink.mac("flowtel.destination.mac", m.dst_mac);
            }
            a.addr("flowtel.next_hop.address", &m.next_hop);
            a.addr("flowtel.bgp.next_hop.address", &m.bgp_next_hop);
            a.nonzero("flowtel.source.prefix_length", m.src_net);
            a.nonzero("flowtel.destination.prefix_length", m.dst_net);
            if let Some(label) = m.mpls_label.first() {
                a.int("flowtel.mpls.label", *label);
            }
        }
    }

    // flowtel's enrichment, in both spellings.
    a.text("flowtel.exporter.name", &m.device_name);
    if m.exporter_address != m.sampler_address {
        a.addr("flowtel.exporter.address", &m.exporter_address);
    }
    a.sink.str(
        "flowtel.sampling.source",
        sampling_source_name(m.sampling_source),
    );
    a.text("network.protocol.name", &m.application);
    a.text("flowtel.flow.direction", direction_name(m.direction));
    a.text("flowtel.in_interface.name", &m.in_if_name);
    a.text("flowtel.out_interface.name", &m.out_if_name);
    a.text("flowtel.source.country", &m.src_country);
    a.text("flowtel.destination.country", &m.dst_country);
    if !m.src_addr.is_empty() {
        a.sink.bool("flowtel.source.private", m.src_private);
    }
    if !m.dst_addr.is_empty() {
        a.sink.bool("flowtel.destination.private", m.dst_private);
    }
    a.nonzero("flowtel.source.asn", m.src_as_resolved);
    a.nonzero("flowtel.destination.asn", m.dst_as_resolved);
    a.text("flowtel.source.network.name", &m.src_net_name);
    a.text("flowtel.destination.network.name", &m.dst_net_name);
    a.text("flowtel.source.network.role", &m.src_net_role);
    a.text("flowtel.destination.network.role", &m.dst_net_role);
    a.text("flowtel.source.network.site", &m.src_net_site);
    a.text("flowtel.destination.network.site", &m.dst_net_site);
    a.text("flowtel.source.network.region", &m.src_net_region);
    a.text("flowtel.destination.network.region", &m.dst_net_region);
    a.text("flowtel.source.network.tenant", &m.src_net_tenant);
    a.text("flowtel.destination.network.tenant", &m.dst_net_tenant);
}

/// The netflowreceiver's `network.transport`: the IANA keyword in lower case, `unknown`
/// beyond the registry.
fn transport_name(protocol: u32) -> &'static str {
    iana_keyword_lower(protocol).unwrap_or("unknown")
}

/// The value rules shared by every attribute: integers as OTLP's signed 64 bits, optional
/// values left out.
struct Rules<'s, S> {
    sink: &'s mut S,
}

impl<S: AttributeSink> Rules<'_, S> {
    #[inline(always)]
    fn int(&mut self, key: &str, value: impl Into<u64>) {
        // OTLP integers are signed; no flow field comes near 2^63 (the receiver casts the
        // same way).
        self.sink.int(key, value.into() as i64);
    }

    #[inline(always)]
    fn nonzero(&mut self, key: &str, value: impl Into<u64>) {
        let value = value.into();
        if value != 0 {
            self.sink.int(key, value as i64);
        }
    }

    /// A string attribute, left out when empty.
    #[inline(always)]
    fn text(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.sink.str(key, value);
        }
    }

    /// An address attribute, left out when unknown.
    #[inline(always)]
    fn addr(&mut self, key: &str, bytes: &[u8]) {
        if let Some(addr) = addr_from_bytes(bytes) {
            self.sink.ip(key, addr);
        }
    }
}

/// Attributes as OTLP `KeyValue`s.
struct Attrs<'a> {
    out: &'a mut Vec<KeyValue>,
}

impl<'a> Attrs<'a> {
    fn new(out: &'a mut Vec<KeyValue>) -> Self {
        Attrs { out }
    }

    fn push(&mut self, key: &str, value: Value) {
        self.out.push(KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            key_strindex: 0,
        });
    }
}

impl AttributeSink for Attrs<'_> {
    fn int(&mut self, key: &str, value: i64) {
        self.push(key, Value::IntValue(value));
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.push(key, Value::BoolValue(value));
    }

    fn str(&mut self, key: &str, value: &str) {
        self.push(key, Value::StringValue(value.to_owned()));
    }

    fn ip(&mut self, key: &str, addr: IpAddr) {
        let mut s = String::with_capacity(15);
        write_ip(&mut s, addr);
        self.push(key, Value::StringValue(s));
    }

    fn mac(&mut self, key: &str, mac: u64) {
        let mut s = String::with_capacity(17);
        write_mac(&mut s, mac);
        self.push(key, Value::StringValue(s));
    }
}

/// Collects log records into one `ExportLogsServiceRequest`: one `ResourceLogs` with the
/// caller's resource, one `ScopeLogs` with the caller's scope, the records in push order.
#[derive(Debug, Clone)]
pub struct LogsBatch {
    resource: Resource,
    scope: InstrumentationScope,
    names: AttributeNames,
    records: Vec<LogRecord>,
    scratch: FlowMessage,
}

impl LogsBatch {
    pub fn new(resource: Resource, scope: InstrumentationScope, names: AttributeNames) -> Self {
        LogsBatch {
            resource,
            scope,
            names,
            records: Vec::new(),
            scratch: FlowMessage::default(),
        }
    }

    /// Add one record.
    pub fn push(&mut self, record: &EnrichedRecord) {
        fill_message(&mut self.scratch, record);
        self.records.push(log_record(&self.scratch, self.names));
    }

    /// Add one record already in schema form.
    pub fn push_message(&mut self, message: &FlowMessage) {
        self.records.push(log_record(message, self.names));
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The request holding every record pushed since the last call; the batch is left empty
    /// (and keeps its resource and scope).
    pub fn take(&mut self) -> ExportLogsServiceRequest {
        let records = std::mem::take(&mut self.records);
        logs_request(self.resource.clone(), self.scope.clone(), records)
    }
}

/// One request: one resource, one scope, `records`.
pub fn logs_request(
    resource: Resource,
    scope: InstrumentationScope,
    records: Vec<LogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}
