//! Builders for NetFlow v5, NetFlow v9 and IPFIX datagrams, used by tests, benches and fuzz
//! targets (included with `#[path]`). They write exactly the layouts the RFCs specify so the
//! decoder can be checked against known values.
#![allow(dead_code)]

/// A field specifier: IANA element `id` of `len` bytes, or enterprise `pen`'s when non-zero.
#[derive(Debug, Clone, Copy)]
pub struct F {
    pub id: u16,
    pub len: u16,
    pub pen: u32,
}

pub const fn f(id: u16, len: u16) -> F {
    F { id, len, pen: 0 }
}

pub const fn fe(pen: u32, id: u16, len: u16) -> F {
    F { id, len, pen }
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

/// A NetFlow v9 (RFC 3954) or IPFIX (RFC 7011) message under construction.
#[derive(Debug, Clone)]
pub struct Msg {
    ipfix: bool,
    domain: u32,
    time_secs: u32,
    sys_uptime_ms: u32,
    sets: Vec<u8>,
    records: u16,
}

impl Msg {
    pub fn v9(source_id: u32, sys_uptime_ms: u32, unix_secs: u32) -> Msg {
        Msg {
            ipfix: false,
            domain: source_id,
            time_secs: unix_secs,
            sys_uptime_ms,
            sets: Vec::new(),
            records: 0,
        }
    }

    pub fn ipfix(domain: u32, export_time: u32) -> Msg {
        Msg {
            ipfix: true,
            domain,
            time_secs: export_time,
            sys_uptime_ms: 0,
            sets: Vec::new(),
            records: 0,
        }
    }

    fn set(&mut self, id: u16, body: &[u8]) -> &mut Msg {
        self.sets.extend_from_slice(&id.to_be_bytes());
        self.sets
            .extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        self.sets.extend_from_slice(body);
        self
    }

    fn spec(out: &mut Vec<u8>, field: &F) {
        if field.pen != 0 {
            out.extend_from_slice(&(field.id | 0x8000).to_be_bytes());
            out.extend_from_slice(&field.len.to_be_bytes());
            out.extend_from_slice(&field.pen.to_be_bytes());
        } else {
            out.extend_from_slice(&field.id.to_be_bytes());
            out.extend_from_slice(&field.len.to_be_bytes());
        }
    }

    /// A template set (v9 flowset 0, IPFIX set 2) holding one template.
    pub fn template(&mut self, id: u16, fields: &[F]) -> &mut Msg {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for x in fields {
            Self::spec(&mut b, x);
        }
        self.records += 1;
        self.set(if self.ipfix { 2 } else { 0 }, &b)
    }

    /// An options template set (v9 flowset 1, IPFIX set 3). For v9, scope fields are
    /// (scope type, length) pairs.
    pub fn options_template(&mut self, id: u16, scope: &[F], fields: &[F]) -> &mut Msg {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        if self.ipfix {
            b.extend_from_slice(&((scope.len() + fields.len()) as u16).to_be_bytes());
            b.extend_from_slice(&(scope.len() as u16).to_be_bytes());
        } else {
            b.extend_from_slice(&((scope.len() * 4) as u16).to_be_bytes());
            b.extend_from_slice(&((fields.len() * 4) as u16).to_be_bytes());
        }
        for x in scope.iter().chain(fields) {
            Self::spec(&mut b, x);
        }
        // Pad to 4 bytes (RFC 3954 §6.1).
        while b.len() % 4 != 0 {
            b.push(0);
        }
        self.records += 1;
        self.set(if self.ipfix { 3 } else { 1 }, &b)
    }

    /// An IPFIX template withdrawal (RFC 7011 §8.1) in a template (or options) set.
    pub fn withdraw(&mut self, id: u16, options: bool) -> &mut Msg {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        self.set(if options { 3 } else { 2 }, &b)
    }

    /// A data set for template `id` holding `records` (each already encoded).
    pub fn data(&mut self, id: u16, records: &[Vec<u8>]) -> &mut Msg {
        let b: Vec<u8> = records.concat();
        self.records += records.len() as u16;
        self.set(id, &b)
    }

    /// Raw set bytes (for malformed-input tests).
    pub fn raw_set(&mut self, id: u16, body: &[u8]) -> &mut Msg {
        self.set(id, body)
    }

    pub fn build(&self) -> Vec<u8> {
        let mut d = Vec::new();
        if self.ipfix {
            d.extend_from_slice(&10u16.to_be_bytes());
            d.extend_from_slice(&((16 + self.sets.len()) as u16).to_be_bytes());
            d.extend_from_slice(&self.time_secs.to_be_bytes());
            d.extend_from_slice(&7u32.to_be_bytes());
            d.extend_from_slice(&self.domain.to_be_bytes());
        } else {
            d.extend_from_slice(&9u16.to_be_bytes());
            d.extend_from_slice(&self.records.to_be_bytes());
            d.extend_from_slice(&self.sys_uptime_ms.to_be_bytes());
            d.extend_from_slice(&self.time_secs.to_be_bytes());
            d.extend_from_slice(&7u32.to_be_bytes());
            d.extend_from_slice(&self.domain.to_be_bytes());
        }
        d.extend_from_slice(&self.sets);
        d
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
