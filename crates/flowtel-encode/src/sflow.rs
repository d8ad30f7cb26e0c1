//! sFlow v5 encoder: writes the structures the decoder reads (used by tests and by traffic
//! generators). Layouts follow sFlow v5 (sflow.org, July 2004) section by section; see the
//! decoder modules for the references.

use std::net::IpAddr;

use flowtel_decode::sflow::{VERSION, format};
use flowtel_decode::{EthernetCounters, InterfaceCounters, SflowInterface};

/// One sFlow v5 datagram (§"sample_datagram_v5").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Agent address; `None` writes the "unknown" address type.
    pub agent: Option<IpAddr>,
    pub sub_agent_id: u32,
    pub sequence: u32,
    pub uptime_ms: u32,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    Flow(FlowSample),
    Counters(CounterSample),
    Discard(DiscardSample),
    /// Any other sample, written verbatim (data_format = enterprise << 12 | format).
    Other {
        data_format: u32,
        data: Vec<u8>,
    },
}

/// A flow sample: compact (format 1) or expanded (format 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSample {
    pub expanded: bool,
    pub sequence: u32,
    pub source_id_type: u32,
    pub source_id_index: u32,
    pub sampling_rate: u32,
    pub sample_pool: u32,
    pub drops: u32,
    pub input: SflowInterface,
    pub output: SflowInterface,
    pub records: Vec<FlowData>,
}

/// A discarded packet sample (format 5, sFlow "Dropped Packet Notification Structures",
/// 2020): the source id is always expanded, the interfaces are ifIndex words (0 unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscardSample {
    pub sequence: u32,
    pub source_id_type: u32,
    pub source_id_index: u32,
    /// Notifications not sent (rate limit, lack of resources), total since the agent started.
    pub drops: u32,
    pub input: u32,
    pub output: u32,
    /// `drop_reason`: 0-15 ICMP unreachable codes, 256 unknown, 257 TTL exceeded, 258 ACL, ...
    pub reason: u32,
    /// The discarded packet's flow records (a sampled header, extended records).
    pub records: Vec<FlowData>,
}

/// One BGP AS path segment: type 1 AS_SET, 2 AS_SEQUENCE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsPathSegment {
    pub segment_type: u32,
    pub asns: Vec<u32>,
}

/// Flow records (§"Flow Data Types", §"Extended Flow Data").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowData {
    /// Record 1: header_protocol (1 Ethernet, 11 IPv4, 12 IPv6), frame_length, stripped, header.
    SampledHeader {
        protocol: u32,
        frame_length: u32,
        stripped: u32,
        header: Vec<u8>,
    },
    /// Record 2.
    Ethernet {
        length: u32,
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        ethertype: u32,
    },
    /// Record 3 (addresses must be IPv4) or 4 (IPv6), chosen by the source address.
    Ip {
        length: u32,
        protocol: u32,
        src: IpAddr,
        dst: IpAddr,
        src_port: u32,
        dst_port: u32,
        tcp_flags: u32,
        tos: u32,
    },
    /// Record 1001.
    Switch {
        src_vlan: u32,
        src_priority: u32,
        dst_vlan: u32,
        dst_priority: u32,
    },
    /// Record 1002.
    Router {
        next_hop: Option<IpAddr>,
        src_mask_len: u32,
        dst_mask_len: u32,
    },
    /// Record 1003.
    Gateway {
        next_hop: Option<IpAddr>,
        router_as: u32,
        src_as: u32,
        src_peer_as: u32,
        as_path: Vec<AsPathSegment>,
        communities: Vec<u32>,
        local_pref: u32,
    },
    /// Any other record, written verbatim.
    Other { data_format: u32, data: Vec<u8> },
}

/// A counter sample: compact (format 2) or expanded (format 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSample {
    pub expanded: bool,
    pub sequence: u32,
    pub source_id_type: u32,
    pub source_id_index: u32,
    pub records: Vec<CounterData>,
}

/// Counter records (§"Counter Data Types").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterData {
    /// Record 1, generic interface counters.
    Interface(InterfaceCounters),
    /// Record 2, ethernet interface counters.
    Ethernet(EthernetCounters),
    /// Record 1005, the port name (`string name<255>`).
    PortName(String),
    /// Any other record, written verbatim.
    Other { data_format: u32, data: Vec<u8> },
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn len32(n: usize) -> u32 {
    // Encoded structures come from in-memory values far below 4 GiB.
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_opaque(out: &mut Vec<u8>, data: &[u8]) {
    put32(out, len32(data.len()));
    out.extend_from_slice(data);
    pad(out);
}

fn put_address(out: &mut Vec<u8>, a: Option<IpAddr>) {
    match a {
        None => put32(out, 0),
        Some(IpAddr::V4(v4)) => {
            put32(out, 1);
            out.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            put32(out, 2);
            out.extend_from_slice(&v6.octets());
        }
    }
}

/// Write `data_format`, then a length placeholder, the body from `body`, and patch the length.
fn put_record(out: &mut Vec<u8>, data_format: u32, body: impl FnOnce(&mut Vec<u8>)) {
    put32(out, data_format);
    let at = out.len();
    put32(out, 0);
    body(out);
    // The length counts the data, not the XDR padding after it.
    let len = len32(out.len() - at - 4).to_be_bytes();
    if let Some(slot) = out.get_mut(at..at + 4) {
        slot.copy_from_slice(&len);
    }
    pad(out);
}

fn put_mac(out: &mut Vec<u8>, mac: &[u8; 6]) {
    out.extend_from_slice(mac);
    out.extend_from_slice(&[0, 0]);
}

impl Datagram {
    /// Append the XDR encoding of this datagram to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put32(out, VERSION);
        put_address(out, self.agent);
        put32(out, self.sub_agent_id);
        put32(out, self.sequence);
        put32(out, self.uptime_ms);
        put32(out, len32(self.samples.len()));
        for s in &self.samples {
            s.encode(out);
        }
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1400);
        self.encode(&mut out);
        out
    }
}

impl Sample {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Sample::Flow(f) => f.encode(out),
            Sample::Counters(c) => c.encode(out),
            Sample::Discard(d) => d.encode(out),
            Sample::Other { data_format, data } => {
                put_record(out, *data_format, |o| o.extend_from_slice(data))
            }
        }
    }
}

fn put_source(out: &mut Vec<u8>, expanded: bool, kind: u32, index: u32) {
    if expanded {
        put32(out, kind);
        put32(out, index);
    } else {
        put32(out, (kind << 24) | (index & 0x00ff_ffff));
    }
}

fn put_interface(out: &mut Vec<u8>, expanded: bool, i: SflowInterface) {
    if expanded {
        let (format, value) = i.to_expanded();
        put32(out, format);
        put32(out, value);
    } else {
        put32(out, i.to_compact());
    }
}

impl FlowSample {
    fn encode(&self, out: &mut Vec<u8>) {
        let data_format = if self.expanded {
            format::FLOW_SAMPLE_EXPANDED
        } else {
            format::FLOW_SAMPLE
        };
        put_record(out, data_format, |o| {
            put32(o, self.sequence);
            put_source(o, self.expanded, self.source_id_type, self.source_id_index);
            put32(o, self.sampling_rate);
            put32(o, self.sample_pool);
            put32(o, self.drops);
            put_interface(o, self.expanded, self.input);
            put_interface(o, self.expanded, self.output);
            put32(o, len32(self.records.len()));
            for r in &self.records {
                r.encode(o);
            }
        });
    }
}

impl DiscardSample {
    fn encode(&self, out: &mut Vec<u8>) {
        put_record(out, format::DISCARDED_PACKET, |o| {
            put32(o, self.sequence);
            put_source(o, true, self.source_id_type, self.source_id_index);
            for v in [self.drops, self.input, self.output, self.reason] {
                put32(o, v);
            }
            put32(o, len32(self.records.len()));
            for r in &self.records {
                r.encode(o);
            }
        });
    }
}

impl FlowData {
    fn encode(&self, out: &mut Vec<u8>) {
        use format as f;
        match self {
            FlowData::SampledHeader {
                protocol,
                frame_length,
                stripped,
                header,
            } => put_record(out, f::RAW_HEADER, |o| {
                put32(o, *protocol);
                put32(o, *frame_length);
                put32(o, *stripped);
                put_opaque(o, header);
            }),
            FlowData::Ethernet {
                length,
                src_mac,
                dst_mac,
                ethertype,
            } => put_record(out, f::ETHERNET, |o| {
                put32(o, *length);
                put_mac(o, src_mac);
                put_mac(o, dst_mac);
                put32(o, *ethertype);
            }),
            FlowData::Ip {
                length,
                protocol,
                src,
                dst,
                src_port,
                dst_port,
                tcp_flags,
                tos,
            } => {
                let v6 = src.is_ipv6();
                put_record(out, if v6 { f::IPV6 } else { f::IPV4 }, |o| {
                    put32(o, *length);
                    put32(o, *protocol);
                    for a in [src, dst] {
                        match (a, v6) {
                            (IpAddr::V4(a), false) => o.extend_from_slice(&a.octets()),
                            (IpAddr::V6(a), true) => o.extend_from_slice(&a.octets()),
                            (IpAddr::V4(a), true) => {
                                o.extend_from_slice(&a.to_ipv6_mapped().octets())
                            }
                            (IpAddr::V6(_), false) => o.extend_from_slice(&[0; 4]),
                        }
                    }
                    put32(o, *src_port);
                    put32(o, *dst_port);
                    put32(o, *tcp_flags);
                    put32(o, *tos);
                })
            }
            FlowData::Switch {
                src_vlan,
                src_priority,
                dst_vlan,
                dst_priority,
            } => put_record(out, f::SWITCH, |o| {
                put32(o, *src_vlan);
                put32(o, *src_priority);
                put32(o, *dst_vlan);
                put32(o, *dst_priority);
            }),
            FlowData::Router {
                next_hop,
                src_mask_len,
                dst_mask_len,
            } => put_record(out, f::ROUTER, |o| {
                put_address(o, *next_hop);
                put32(o, *src_mask_len);
                put32(o, *dst_mask_len);
            }),
            FlowData::Gateway {
                next_hop,
                router_as,
                src_as,
                src_peer_as,
                as_path,
                communities,
                local_pref,
            } => put_record(out, f::GATEWAY, |o| {
                put_address(o, *next_hop);
                put32(o, *router_as);
                put32(o, *src_as);
                put32(o, *src_peer_as);
                put32(o, len32(as_path.len()));
                for seg in as_path {
                    put32(o, seg.segment_type);
                    put32(o, len32(seg.asns.len()));
                    for a in &seg.asns {
                        put32(o, *a);
                    }
                }
                put32(o, len32(communities.len()));
                for c in communities {
                    put32(o, *c);
                }
                put32(o, *local_pref);
            }),
            FlowData::Other { data_format, data } => {
                put_record(out, *data_format, |o| o.extend_from_slice(data))
            }
        }
    }
}

impl CounterSample {
    fn encode(&self, out: &mut Vec<u8>) {
        let data_format = if self.expanded {
            format::COUNTER_SAMPLE_EXPANDED
        } else {
            format::COUNTER_SAMPLE
        };
        put_record(out, data_format, |o| {
            put32(o, self.sequence);
            put_source(o, self.expanded, self.source_id_type, self.source_id_index);
            put32(o, len32(self.records.len()));
            for r in &self.records {
                r.encode(o);
            }
        });
    }
}

impl CounterData {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            CounterData::Interface(c) => put_record(out, format::GENERIC_INTERFACE, |o| {
                put32(o, c.if_index);
                put32(o, c.if_type);
                put64(o, c.if_speed);
                put32(o, c.if_direction);
                put32(o, c.if_status);
                put64(o, c.in_octets);
                for v in [
                    c.in_ucast_pkts,
                    c.in_multicast_pkts,
                    c.in_broadcast_pkts,
                    c.in_discards,
                    c.in_errors,
                    c.in_unknown_protos,
                ] {
                    put32(o, v);
                }
                put64(o, c.out_octets);
                for v in [
                    c.out_ucast_pkts,
                    c.out_multicast_pkts,
                    c.out_broadcast_pkts,
                    c.out_discards,
                    c.out_errors,
                    c.promiscuous_mode,
                ] {
                    put32(o, v);
                }
            }),
            CounterData::Ethernet(e) => put_record(out, format::ETHERNET_INTERFACE, |o| {
                for v in [
                    e.alignment_errors,
                    e.fcs_errors,
                    e.single_collision_frames,
                    e.multiple_collision_frames,
                    e.sqe_test_errors,
                    e.deferred_transmissions,
                    e.late_collisions,
                    e.excessive_collisions,
                    e.internal_mac_transmit_errors,
                    e.carrier_sense_errors,
                    e.frame_too_longs,
                    e.internal_mac_receive_errors,
                    e.symbol_errors,
                ] {
                    put32(o, v);
                }
            }),
            CounterData::PortName(name) => {
                put_record(out, format::PORT_NAME, |o| put_opaque(o, name.as_bytes()))
            }
            CounterData::Other { data_format, data } => {
                put_record(out, *data_format, |o| o.extend_from_slice(data))
            }
        }
    }
}

/// A synthetic sampled packet: Ethernet (optionally one 802.1Q tag), IPv4 or IPv6 (by
/// `src_addr`), and TCP, UDP or ICMP/ICMPv6 (by `ip_protocol`). [`PacketHeader::to_bytes`]
/// writes its headers as an agent would put them in a raw packet header record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub vlan: Option<u16>,
    pub src_addr: IpAddr,
    pub dst_addr: IpAddr,
    pub ip_protocol: u8,
    pub tos: u8,
    /// TCP/UDP ports; for ICMP, `src_port` is unused and `dst_port` is `type << 8 | code`.
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    /// Length of the IP packet (IPv4 total length; IPv6 payload length + 40).
    pub ip_length: u16,
}

impl PacketHeader {
    /// The frame length an agent would report: MAC header (+ tag) + IP length + 4-byte FCS.
    pub fn frame_length(&self) -> u32 {
        let tag = if self.vlan.is_some() { 4 } else { 0 };
        14 + tag + u32::from(self.ip_length) + 4
    }

    /// The headers (no payload), truncated to `max_len` bytes like an agent's header cut.
    pub fn to_bytes(&self, max_len: usize) -> Vec<u8> {
        let mut o = Vec::with_capacity(96);
        o.extend_from_slice(&self.dst_mac);
        o.extend_from_slice(&self.src_mac);
        if let Some(v) = self.vlan {
            o.extend_from_slice(&0x8100u16.to_be_bytes());
            o.extend_from_slice(&(v & 0x0fff).to_be_bytes());
        }
        match (self.src_addr, self.dst_addr) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                o.extend_from_slice(&0x0800u16.to_be_bytes());
                o.extend_from_slice(&[0x45, self.tos]);
                o.extend_from_slice(&self.ip_length.to_be_bytes());
                o.extend_from_slice(&[0, 0, 0x40, 0, 64, self.ip_protocol, 0, 0]);
                o.extend_from_slice(&s.octets());
                o.extend_from_slice(&d.octets());
            }
            (s, d) => {
                let to6 = |a: IpAddr| match a {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                };
                o.extend_from_slice(&0x86ddu16.to_be_bytes());
                o.push(0x60 | (self.tos >> 4));
                o.extend_from_slice(&[self.tos << 4, 0, 0]);
                o.extend_from_slice(&self.ip_length.saturating_sub(40).to_be_bytes());
                o.extend_from_slice(&[self.ip_protocol, 64]);
                o.extend_from_slice(&to6(s).octets());
                o.extend_from_slice(&to6(d).octets());
            }
        }
        match self.ip_protocol {
            6 => {
                o.extend_from_slice(&self.src_port.to_be_bytes());
                o.extend_from_slice(&self.dst_port.to_be_bytes());
                o.extend_from_slice(&[0; 8]);
                o.extend_from_slice(&[0x50, self.tcp_flags, 0xff, 0xff, 0, 0, 0, 0]);
            }
            17 => {
                o.extend_from_slice(&self.src_port.to_be_bytes());
                o.extend_from_slice(&self.dst_port.to_be_bytes());
                o.extend_from_slice(&self.ip_length.saturating_sub(20).to_be_bytes());
                o.extend_from_slice(&[0, 0]);
            }
            1 | 58 => {
                o.extend_from_slice(&self.dst_port.to_be_bytes());
                o.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            }
            _ => {}
        }
        o.truncate(max_len);
        o
    }
}
