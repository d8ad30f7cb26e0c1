//! Datagram builders for tests, benches and fuzz targets (included with `#[path]`). NetFlow v9
//! and IPFIX messages are written by the public encoder ([`MessageWriter`]); what stays here is
//! test-specific: one set per call, fixed header values, the [`FLOW4`] template and its records,
//! and NetFlow v5 records as raw fields (written by [`V5Exporter`]).
#![allow(dead_code)]

pub use flowtel_encode::FieldSpec as F;
use std::net::IpAddr;

use flowtel_decode::{FlowProtocol, FlowRecord};
use flowtel_encode::{ExportVersion, MessageHeader, MessageWriter, V5Exporter};

/// An IANA (or NetFlow v9) field of `len` bytes.
pub const fn f(id: u16, len: u16) -> F {
    F::new(id, len)
}

/// Enterprise `pen`'s field `id` of `len` bytes.
pub const fn fe(pen: u32, id: u16, len: u16) -> F {
    F::enterprise(id, len, pen)
}

/// One NetFlow v5 record (Cisco v5 flow record layout).
#[derive(Debug, Clone, Copy, Default)]
pub struct V5Rec {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub next_hop: [u8; 4],
    pub input: u16,
    pub output: u16,
    pub packets: u32,
    pub bytes: u32,
    pub first: u32,
    pub last: u32,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub proto: u8,
    pub tos: u8,
    pub src_as: u16,
    pub dst_as: u16,
    pub src_mask: u8,
    pub dst_mask: u8,
}

/// A NetFlow v5 datagram written by the public [`V5Exporter`] (engine type 1, id 2) at
/// `unix_secs` with the header's `sys_uptime` (ms) and sampling word (mode in the top two bits,
/// set when the interval is above 1); record times are sysUptime offsets no later than
/// `sys_uptime`.
pub fn v5(sys_uptime: u32, unix_secs: u32, sampling_interval: u16, recs: &[V5Rec]) -> Vec<u8> {
    let now_ms = u64::from(unix_secs) * 1000;
    let boot_ms = now_ms.saturating_sub(u64::from(sys_uptime));
    let at = |uptime: u32| Some((boot_ms + u64::from(uptime)) * 1_000_000);
    let flows: Vec<FlowRecord> = recs
        .iter()
        .map(|r| {
            let mut flow =
                FlowRecord::new(([192, 0, 2, 1], 2055).into(), FlowProtocol::NetflowV5, 0);
            flow.src_addr = Some(IpAddr::from(r.src));
            flow.dst_addr = Some(IpAddr::from(r.dst));
            flow.next_hop = Some(IpAddr::from(r.next_hop));
            flow.in_if = Some(u32::from(r.input));
            flow.out_if = Some(u32::from(r.output));
            flow.packets = u64::from(r.packets);
            flow.bytes = u64::from(r.bytes);
            flow.flow_start_ns = at(r.first);
            flow.flow_end_ns = at(r.last);
            flow.src_port = r.sport;
            flow.dst_port = r.dport;
            flow.tcp_flags = u16::from(r.tcp_flags);
            flow.ip_protocol = r.proto;
            flow.tos = r.tos;
            flow.src_as = Some(u32::from(r.src_as));
            flow.dst_as = Some(u32::from(r.dst_as));
            flow.src_prefix_len = Some(r.src_mask);
            flow.dst_prefix_len = Some(r.dst_mask);
            flow
        })
        .collect();
    V5Exporter::new(1, 2, sampling_interval & 0x3fff, boot_ms).datagram(now_ms, &flows)
}

/// A NetFlow v9 (RFC 3954) or IPFIX (RFC 7011) message under construction: the public
/// [`MessageWriter`] with every call in a set of its own and sequence number 7.
#[derive(Debug, Clone)]
pub struct Msg(MessageWriter);

impl Msg {
    fn new(version: ExportVersion, domain: u32, export_time_secs: u32, sys_uptime_ms: u32) -> Msg {
        Msg(MessageWriter::new(
            version,
            MessageHeader {
                export_time_secs,
                sys_uptime_ms,
                sequence: 7,
                domain,
            },
        ))
    }

    pub fn v9(source_id: u32, sys_uptime_ms: u32, unix_secs: u32) -> Msg {
        Msg::new(
            ExportVersion::NetflowV9,
            source_id,
            unix_secs,
            sys_uptime_ms,
        )
    }

    pub fn ipfix(domain: u32, export_time: u32) -> Msg {
        Msg::new(ExportVersion::Ipfix, domain, export_time, 0)
    }

    /// A template set (v9 flowset 0, IPFIX set 2) holding one template.
    pub fn template(&mut self, id: u16, fields: &[F]) -> &mut Msg {
        self.0.end_set();
        self.0.template(id, fields);
        self
    }

    /// An options template set (v9 flowset 1, IPFIX set 3) holding one options template.
    pub fn options_template(&mut self, id: u16, scope: &[F], fields: &[F]) -> &mut Msg {
        self.0.end_set();
        self.0.options_template(id, scope, fields);
        self
    }

    /// An IPFIX template withdrawal (RFC 7011 §8.1) in a template (or options) set.
    pub fn withdraw(&mut self, id: u16, options: bool) -> &mut Msg {
        self.0.end_set();
        if options {
            self.0.withdraw_options_template(id);
        } else {
            self.0.withdraw_template(id);
        }
        self
    }

    /// A data set for template `id` holding `records` (each already encoded).
    pub fn data(&mut self, id: u16, records: &[Vec<u8>]) -> &mut Msg {
        self.0.end_set();
        for r in records {
            self.0.data_record(id, r);
        }
        self
    }

    /// Raw set bytes (for malformed-input tests).
    pub fn raw_set(&mut self, id: u16, body: &[u8]) -> &mut Msg {
        self.0.raw_set(id, body);
        self
    }

    pub fn build(&self) -> Vec<u8> {
        self.0.clone().finish()
    }
}

/// Concatenate field values into one record.
pub fn rec(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A common IPv4 5-tuple flow template (IANA IEs): 8 src, 12 dst, 7 sport, 11 dport, 4 proto,
/// 1 octetDeltaCount (8 bytes), 2 packetDeltaCount (8 bytes), 10/14 interfaces,
/// 152/153 flowStart/EndMilliseconds.
pub const FLOW4: &[F] = &[
    f(8, 4),
    f(12, 4),
    f(7, 2),
    f(11, 2),
    f(4, 1),
    f(1, 8),
    f(2, 8),
    f(10, 4),
    f(14, 4),
    f(152, 8),
    f(153, 8),
];

/// A record for [`FLOW4`].
#[allow(clippy::too_many_arguments)]
pub fn flow4(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    proto: u8,
    bytes: u64,
    packets: u64,
) -> Vec<u8> {
    rec(&[
        &src,
        &dst,
        &sport.to_be_bytes(),
        &dport.to_be_bytes(),
        &[proto],
        &bytes.to_be_bytes(),
        &packets.to_be_bytes(),
        &3u32.to_be_bytes(),
        &4u32.to_be_bytes(),
        &1_700_000_000_000u64.to_be_bytes(),
        &1_700_000_001_000u64.to_be_bytes(),
    ])
}
