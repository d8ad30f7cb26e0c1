//! [`EnrichedRecord`] to [`FlowMessage`]: the one place that reads a record's fields. The
//! JSON and OTLP encodings render the message, so a new field is one line here plus, where it
//! has a name of its own there, one line in each encoding.

use std::net::IpAddr;

use flowtel_decode::{FlowDirection, FlowProtocol, FlowRecord, SamplingSource as Source};
use flowtel_rollup::{Country, EnrichedRecord};

use crate::proto::FlowMessage;
use crate::proto::flow_message::{Direction, FlowType, SamplingSource};

/// EtherType of IPv4 and IPv6 (IEEE 802 numbers, RFC 7042 appendix B).
pub const ETYPE_IPV4: u32 = 0x0800;
pub const ETYPE_IPV6: u32 = 0x86dd;

/// `record` as a new message.
pub fn to_message(record: &EnrichedRecord) -> FlowMessage {
    let mut message = FlowMessage::default();
    fill_message(&mut message, record);
    message
}

/// Overwrite every field of `message` from `record`, reusing the message's buffers: once they
/// have grown, filling allocates nothing.
///
/// The destructuring below names every field of the schema, so a field added to
/// `flow.proto` does not compile until it is mapped here (to 0 / empty when flowtel does not
/// know it).
pub fn fill_message(message: &mut FlowMessage, record: &EnrichedRecord) {
    let r: &FlowRecord = &record.record;
    let FlowMessage {
        r#type,
        time_received_ns,
        sequence_num,
        sampling_rate,
        sampler_address,
        time_flow_start_ns,
        time_flow_end_ns,
        bytes,
        packets,
        src_addr,
        dst_addr,
        etype,
        proto,
        src_port,
        dst_port,
        in_if,
        out_if,
        src_mac,
        dst_mac,
        src_vlan,
        dst_vlan,
        vlan_id,
        ip_tos,
        forwarding_status,
        ip_ttl,
        ip_flags,
        tcp_flags,
        icmp_type,
        icmp_code,
        ipv6_flow_label,
        fragment_id,
        fragment_offset,
        src_as,
        dst_as,
        next_hop,
        next_hop_as,
        src_net,
        dst_net,
        bgp_next_hop,
        bgp_communities,
        as_path,
        mpls_ttl,
        mpls_label,
        mpls_ip,
        observation_domain_id,
        observation_point_id,
        layer_stack,
        layer_size,
        ipv6_routing_header_addresses,
        ipv6_routing_header_seg_left,
        device_name,
        exporter_address,
        exporter_port,
        sampling_source,
        direction,
        in_if_name,
        out_if_name,
        application,
        src_country,
        dst_country,
        src_private,
        dst_private,
        src_as_resolved,
        dst_as_resolved,
        src_net_name,
        dst_net_name,
        src_net_role,
        dst_net_role,
        src_net_site,
        dst_net_site,
        src_net_region,
        dst_net_region,
        src_net_tenant,
        dst_net_tenant,
    } = message;

    // goflow2's fields (goflow2 pb/flow.proto numbers and meanings). Those set to 0 / empty
    // are not decoded (layer stacks, MPLS TTLs and addresses, IPv6 routing headers): when
    // `FlowRecord` gains one, its line here is all the protobuf, JSON and `flow.*` OTLP
    // encodings need (they render this message); the default OTLP names list the ones they
    // write in `otlp::write_attributes`.
    *r#type = flow_type(r.flow_protocol) as i32;
    *time_received_ns = r.time_received_ns;
    *sequence_num = r.sequence_num;
    *sampling_rate = u64::from(record.sampling_rate);
    set_addr(sampler_address, Some(record.device_addr.to_canonical()));
    *time_flow_start_ns = r.flow_start_ns.unwrap_or(r.time_received_ns);
    *time_flow_end_ns = r.flow_end_ns.unwrap_or(r.time_received_ns);
    *bytes = r.bytes;
    *packets = r.packets;
    set_addr(src_addr, r.src_addr);
    set_addr(dst_addr, r.dst_addr);
    *etype = r
        .etype
        .map_or_else(|| ip_etype(r.src_addr.or(r.dst_addr)), u32::from);
    *proto = u32::from(r.ip_protocol);
    *src_port = u32::from(r.src_port);
    *dst_port = u32::from(r.dst_port);
    *in_if = r.in_if.unwrap_or(0);
    *out_if = r.out_if.unwrap_or(0);
    *src_mac = r.src_mac.map_or(0, mac_u64);
    *dst_mac = r.dst_mac.map_or(0, mac_u64);
    *src_vlan = r.src_vlan.map_or(0, u32::from);
    *dst_vlan = r.dst_vlan.map_or(0, u32::from);
    *vlan_id = r.vlan.map_or(0, u32::from);
    *ip_tos = u32::from(r.tos);
    *forwarding_status = r.forwarding_status.map_or(0, u32::from);
    *ip_ttl = r.ip_ttl.map_or(0, u32::from);
    *ip_flags = r.ip_flags.map_or(0, u32::from);
    *tcp_flags = u32::from(r.tcp_flags);
    *icmp_type = r.icmp_type.map_or(0, u32::from);
    *icmp_code = r.icmp_code.map_or(0, u32::from);
    *ipv6_flow_label = r.ipv6_flow_label.unwrap_or(0);
    *fragment_id = r.fragment_id.unwrap_or(0);
    *fragment_offset = r.fragment_offset.map_or(0, u32::from);
    *src_as = r.src_as.unwrap_or(0);
    *dst_as = r.dst_as.unwrap_or(0);
    set_addr(next_hop, r.next_hop);
    *next_hop_as = r.next_hop_as.unwrap_or(0);
    *src_net = r.src_prefix_len.map_or(0, u32::from);
    *dst_net = r.dst_prefix_len.map_or(0, u32::from);
    set_addr(bgp_next_hop, r.bgp_next_hop);
    set_slice(bgp_communities, &r.bgp_communities);
    set_slice(as_path, &r.as_path);
    mpls_ttl.clear();
    mpls_label.clear();
    if r.mpls_labels.is_empty() {
        mpls_label.extend(r.mpls_top_label);
    } else {
        mpls_label.extend_from_slice(r.mpls_labels.as_slice());
    }
    mpls_ip.clear();
    *observation_domain_id = r.observation_domain;
    // goflow2's field is 32-bit; IPFIX IE 138 is 64-bit (values beyond 32 bits are rare).
    *observation_point_id = r
        .observation_point_id
        .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX));
    layer_stack.clear();
    layer_size.clear();
    ipv6_routing_header_addresses.clear();
    *ipv6_routing_header_seg_left = 0;

    // flowtel's fields (1000 and above).
    set_str(device_name, &record.device_name);
    set_addr(exporter_address, Some(r.exporter.ip().to_canonical()));
    *exporter_port = u32::from(r.exporter.port());
    *sampling_source = resolved_source(record) as i32;
    *direction = match r.direction {
        None => Direction::Unknown,
        Some(FlowDirection::Ingress) => Direction::Ingress,
        Some(FlowDirection::Egress) => Direction::Egress,
    } as i32;
    set_str(in_if_name, record.in_if_name.as_deref().unwrap_or(""));
    set_str(out_if_name, record.out_if_name.as_deref().unwrap_or(""));
    set_str(application, record.application.unwrap_or(""));
    set_str(src_country, record.src_country.as_str());
    set_str(dst_country, record.dst_country.as_str());
    *src_private = record.src_country == Country::Private;
    *dst_private = record.dst_country == Country::Private;
    *src_as_resolved = record.src_as.unwrap_or(0);
    *dst_as_resolved = record.dst_as.unwrap_or(0);
    let (src, dst) = (record.src_net.as_deref(), record.dst_net.as_deref());
    set_str(src_net_name, src.map_or("", |n| &n.name));
    set_str(dst_net_name, dst.map_or("", |n| &n.name));
    set_str(src_net_role, src.map_or("", |n| &n.role));
    set_str(dst_net_role, dst.map_or("", |n| &n.role));
    set_str(src_net_site, src.map_or("", |n| &n.site));
    set_str(dst_net_site, dst.map_or("", |n| &n.site));
    set_str(src_net_region, src.map_or("", |n| &n.region));
    set_str(dst_net_region, dst.map_or("", |n| &n.region));
    set_str(src_net_tenant, src.map_or("", |n| &n.tenant));
    set_str(dst_net_tenant, dst.map_or("", |n| &n.tenant));
}

/// goflow2's `FlowType` of a wire format.
pub fn flow_type(protocol: FlowProtocol) -> FlowType {
    match protocol {
        FlowProtocol::NetflowV5 => FlowType::NetflowV5,
        FlowProtocol::NetflowV9 => FlowType::NetflowV9,
        FlowProtocol::Ipfix => FlowType::Ipfix,
        FlowProtocol::SflowV5 => FlowType::Sflow5,
    }
}

/// Where the record's sampling rate came from: the decoder's source when the exporter sent a
/// rate, else flowtel's configuration (the enricher's fallback).
fn resolved_source(record: &EnrichedRecord) -> SamplingSource {
    if !record.rate_known {
        return SamplingSource::Config;
    }
    match record.record.sampling_source {
        Source::Record => SamplingSource::Record,
        Source::Options => SamplingSource::Options,
        Source::Header => SamplingSource::Header,
        Source::Sample => SamplingSource::Sample,
        // A rate without a source is the record's own (the decoder sets both together).
        Source::Unknown => SamplingSource::Record,
    }
}

/// The EtherType of the flow's network layer, from its addresses' family.
fn ip_etype(addr: Option<IpAddr>) -> u32 {
    match addr {
        Some(IpAddr::V4(_)) => ETYPE_IPV4,
        Some(IpAddr::V6(_)) => ETYPE_IPV6,
        None => 0,
    }
}

/// A MAC address in the low 48 bits of a u64, as goflow2 carries it.
pub fn mac_u64(mac: [u8; 6]) -> u64 {
    let [a, b, c, d, e, f] = mac;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
}

/// An address as 4 or 16 network-order bytes, empty when unknown.
fn set_addr(out: &mut Vec<u8>, addr: Option<IpAddr>) {
    out.clear();
    match addr {
        Some(IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
        Some(IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
        None => {}
    }
}

fn set_str(out: &mut String, value: &str) {
    out.clear();
    out.push_str(value);
}

fn set_slice(out: &mut Vec<u32>, values: &[u32]) {
    out.clear();
    out.extend_from_slice(values);
}

/// The address in 4 or 16 bytes, as [`fill_message`] writes it; `None` for any other length.
pub fn addr_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::from(v6))
    } else {
        None
    }
}
