//! Datagram builders for tests, benches and fuzz targets (included with `#[path]`). NetFlow v9
//! and IPFIX messages are written by the public encoder ([`MessageWriter`]); what stays here is
//! test-specific: one set per call, fixed header values, the [`FLOW4`] template and its records,
//! and NetFlow v5 datagrams from raw record fields.
#![allow(dead_code)]

pub use flowtel_decode::encode::FieldSpec as F;
use flowtel_decode::encode::{ExportVersion, MessageHeader, MessageWriter};

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

/// A NetFlow v5 datagram: header (count, sys_uptime, unix_secs/nsecs, sequence, engine,
/// sampling_interval) then 48-byte records.
pub fn v5(sys_uptime: u32, unix_secs: u32, sampling_interval: u16, recs: &[V5Rec]) -> Vec<u8> {
    let mut d = Vec::with_capacity(24 + 48 * recs.len());
    d.extend_from_slice(&5u16.to_be_bytes());
    d.extend_from_slice(&(recs.len() as u16).to_be_bytes());
    d.extend_from_slice(&sys_uptime.to_be_bytes());
    d.extend_from_slice(&unix_secs.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    d.extend_from_slice(&1u32.to_be_bytes());
    d.push(1);
    d.push(2);
    d.extend_from_slice(&sampling_interval.to_be_bytes());
    for r in recs {
        d.extend_from_slice(&r.src);
        d.extend_from_slice(&r.dst);
        d.extend_from_slice(&r.next_hop);
        d.extend_from_slice(&r.input.to_be_bytes());
        d.extend_from_slice(&r.output.to_be_bytes());
        d.extend_from_slice(&r.packets.to_be_bytes());
        d.extend_from_slice(&r.bytes.to_be_bytes());
        d.extend_from_slice(&r.first.to_be_bytes());
        d.extend_from_slice(&r.last.to_be_bytes());
        d.extend_from_slice(&r.sport.to_be_bytes());
        d.extend_from_slice(&r.dport.to_be_bytes());
        d.push(0);
        d.push(r.tcp_flags);
        d.push(r.proto);
        d.push(r.tos);
        d.extend_from_slice(&r.src_as.to_be_bytes());
        d.extend_from_slice(&r.dst_as.to_be_bytes());
        d.push(r.src_mask);
        d.push(r.dst_mask);
        d.extend_from_slice(&[0, 0]);
    }
    d
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
