//! sFlow v5 (sflow.org, "sFlow Version 5", July 2004): datagrams ->
//! [`FlowRecord`](crate::FlowRecord)s and [`CounterRecord`](crate::CounterRecord)s, and an encoder
//! that writes them.
//!
//! # Decoding
//!
//! sFlow is XDR (RFC 4506): big-endian 32-bit words, variable-length opaques padded to 4 bytes.
//! Every sample and every record carries its own length, so the decoder reads each one through a
//! sub-cursor bounded by that length (`xdr::Xdr`): a record can never read into its neighbour,
//! unknown samples and records (any enterprise other than 0, or a format flowtel does not map) are
//! skipped by their length, and a length that runs past its container is a counted
//! [`ErrorKind::SflowBadLength`](crate::ErrorKind::SflowBadLength) that skips that sample or record
//! only. There is no per-exporter state, so no limit is needed beyond the datagram itself.
//!
//! The hot path allocates nothing per sample: records are pushed into the caller's reused
//! [`crate::DecodeOutput`], the sampled header is parsed in place (`header` module), and the only
//! vectors on a record (AS path, communities, unknown records) are filled only when
//! [`crate::DecoderConfig::keep_unknown_fields`] is set (as `flowtel decode` does).
//!
//! # One record per flow sample
//!
//! Each flow sample (format 1) and expanded flow sample (format 3) becomes exactly one
//! [`FlowRecord`](crate::FlowRecord) with `packets = 1`, `sampling_rate = Some(sampling_rate)` and
//! [`SamplingSource::Sample`](crate::SamplingSource::Sample), so the rollup multiplies bytes and
//! packets by the rate. `bytes` is the sampled packet's length **as the agent reports it**:
//!
//! - raw packet header (record 1): `frame_length`, i.e. for Ethernet the whole frame including
//!   the MAC header and FCS (for header protocol IPv4/IPv6 it is the IP packet length);
//! - otherwise ethernet frame data (record 2) `length`, else IPv4/IPv6 data (records 3/4)
//!   `length` (the IP packet length).
//!
//! Frame length rather than IP length because it is the quantity sFlow defines and every agent
//! fills in, even for non-IP frames and when the header is cut before the IP total-length field; it
//! is what sflowtool, goflow2, Akvorado and tshark (`sflow_245.header.frame_length`) report, so
//! flowtel's totals match theirs (and sum(bytes x rate) equals tshark's sum(frame_length x
//! sampling_rate)). It counts 18-22 more bytes per packet than a NetFlow exporter's layer-3 octets
//! would; the interface counters (ifInOctets) count the same way. With
//! [`DecoderConfig::sflow_bytes`](crate::DecoderConfig::sflow_bytes) = `Ip`, bytes are the IP
//! length read from the sampled header (IPv4 total length, IPv6 payload length + 40), else the
//! IPv4/IPv6 record's length, else the frame length (non-IP frames): the layer NetFlow counts.
//!
//! Fields come from the records present, whatever their order: the raw header is authoritative for
//! addresses, ports, protocol, ToS, TTL, fragment fields, flow label, MACs, VLANs and MPLS labels
//! (the header is parsed by the shared `packet` module, as IPFIX packet sections are); records
//! 2-4 only fill what no header provided. `vlan` is the extended switch record's incoming VLAN when
//! valid (1..=4094), else the header's outer tag (with QinQ the service tag; the customer tag is
//! `inner_vlan`), else the switch record's outgoing VLAN; the switch record's VLANs are also
//! `src_vlan` / `dst_vlan`. Extended router (1002) gives `next_hop` and the prefix lengths;
//! extended gateway (1003) gives `bgp_next_hop`, `src_as` (its `src_as` word, or the router's own
//! `as` when that is 0: the source is in the router's AS), `dst_as` (the last AS of the destination
//! AS path, or the router's own AS when the path is empty) and `next_hop_as` (the path's first
//! AS). `in_if` / `out_if` are set only for a real ifIndex;
//! the discard, "internal" and multiple-interface encodings stay visible in
//! [`FlowRecord::sflow`](crate::FlowRecord::sflow).
//!
//! The agent address from the datagram header is [`FlowRecord::agent`](crate::FlowRecord::agent)
//! (the device's identity for enrichment); the UDP source stays in `exporter`. The sub-agent id is
//! the `observation_domain`.
//!
//! # Counter samples
//!
//! Counter samples (format 2) and expanded counter samples (format 4) that carry generic interface
//! counters (record 1) become one [`CounterRecord`](crate::CounterRecord), with the ethernet
//! counters (record 2) and the port name (record 1005) attached when present. Samples without generic interface counters (host,
//! CPU, enterprise structures) are skipped.
//!
//! # Drop notifications
//!
//! Discarded-packet samples (format 5, sFlow "Dropped Packet Notification Structures",
//! 2020: sequence, expanded source id, drops, input and output ifIndex, reason, flow records)
//! become one [`DropRecord`](crate::DropRecord) each, in `DecodeOutput::drops`: the reason,
//! the interfaces, and the dropped packet's flow fields read from its flow records like a flow
//! sample's (plus the egress queue, function, hardware trap and Linux reason records). They are
//! counted in [`DecoderStats::drop_notifications`](crate::DecoderStats::drop_notifications)
//! and never become flow records (a dropped packet carried no traffic).
//!
//! # Encoding
//!
//! `flowtel_encode::sflow` writes the same structures (flow samples with any of the records
//! above, counter samples with interface and ethernet counters, both compact and expanded forms);
//! the round-trip tests decode what it writes and compare field by field.

mod counters;
mod ctx;
mod datagram;
mod flow;
mod samples;
mod xdr;

pub use crate::record::InterfaceCounters;

pub(crate) use datagram::decode;

/// The first word of an sFlow v5 datagram. NetFlow and IPFIX put a 16-bit version (5, 9, 10)
/// first, so their first 32-bit word is never 5: `[0, 0, 0, 5, ..]` selects sFlow.
pub const VERSION: u32 = 5;

/// Standard (enterprise 0) sample formats (sFlow v5 §"sample_record").
pub mod format {
    pub const FLOW_SAMPLE: u32 = 1;
    pub const COUNTER_SAMPLE: u32 = 2;
    pub const FLOW_SAMPLE_EXPANDED: u32 = 3;
    pub const COUNTER_SAMPLE_EXPANDED: u32 = 4;
    /// Discarded packet (sFlow "Dropped Packet Notification Structures", 2020).
    pub const DISCARDED_PACKET: u32 = 5;

    pub const RAW_HEADER: u32 = 1;
    pub const ETHERNET: u32 = 2;
    pub const IPV4: u32 = 3;
    pub const IPV6: u32 = 4;
    pub const SWITCH: u32 = 1001;
    pub const ROUTER: u32 = 1002;
    pub const GATEWAY: u32 = 1003;
    pub const EGRESS_QUEUE: u32 = 1036;
    pub const FUNCTION: u32 = 1038;
    pub const HW_TRAP: u32 = 1041;
    pub const LINUX_REASON: u32 = 1042;

    pub const GENERIC_INTERFACE: u32 = 1;
    pub const ETHERNET_INTERFACE: u32 = 2;
    /// Port name (`string name<255>`), sFlow "Port NAME structure".
    pub const PORT_NAME: u32 = 1005;
}
