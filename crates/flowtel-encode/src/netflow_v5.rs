//! NetFlow v5 export packets (Cisco's fixed format: a 24-byte header and up to 30 records of 48
//! bytes; there is no RFC, the layout is Cisco's "NetFlow Export Datagram Format").

use std::net::IpAddr;

use flowtel_decode::FlowRecord;

/// Records a v5 packet may carry.
pub const V5_MAX_RECORDS: usize = 30;

/// One simulated NetFlow v5 exporter: engine type/id, header sampling interval, flow sequence.
///
/// v5 carries IPv4 only: records without two IPv4 addresses are skipped. Counters are 32-bit
/// and saturate; AS numbers above 65535 are written as 23456 (AS_TRANS, RFC 6793 §9); interfaces
/// above 65535 as 0. Times are sysUptime offsets: the header's `unix_nsecs` is 0 and its
/// sysUptime is taken at the whole second, so millisecond flow times round-trip exactly.
#[derive(Debug)]
pub struct V5Exporter {
    engine_type: u8,
    engine_id: u8,
    /// 1-in-N sampling (low 14 bits of the header field); 0 = not sampled / unknown.
    sampling_interval: u16,
    boot_unix_ms: u64,
    /// Flows sent before the next packet (the header's flow_sequence).
    flow_sequence: u32,
}

impl V5Exporter {
    pub fn new(engine_type: u8, engine_id: u8, sampling_interval: u16, boot_unix_ms: u64) -> Self {
        V5Exporter {
            engine_type,
            engine_id,
            sampling_interval: sampling_interval & 0x3fff,
            boot_unix_ms,
            flow_sequence: 0,
        }
    }

    /// One packet at `now_unix_ms` with the first [`V5_MAX_RECORDS`] IPv4 records of `flows`.
    pub fn datagram(&mut self, now_unix_ms: u64, flows: &[FlowRecord]) -> Vec<u8> {
        let secs = now_unix_ms / 1000;
        let export_ms = secs * 1000;
        let uptime = |ms: u64| ms.wrapping_sub(self.boot_unix_ms) as u32;
        let v4 = |a: Option<IpAddr>| match a {
            Some(IpAddr::V4(a)) => Some(a.octets()),
            _ => None,
        };
        let records: Vec<_> = flows
            .iter()
            .filter_map(|r| Some((r, v4(r.src_addr)?, v4(r.dst_addr)?)))
            .take(V5_MAX_RECORDS)
            .collect();
        let mut out = Vec::with_capacity(24 + 48 * records.len());
        out.extend_from_slice(&5u16.to_be_bytes());
        out.extend_from_slice(&(records.len() as u16).to_be_bytes());
        out.extend_from_slice(&uptime(export_ms).to_be_bytes());
        out.extend_from_slice(&u32::try_from(secs).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&self.flow_sequence.to_be_bytes());
        out.extend_from_slice(&[self.engine_type, self.engine_id]);
        // Mode 01 (deterministic) when sampled, in the top two bits.
        let mode = if self.sampling_interval > 1 {
            0x4000
        } else {
            0
        };
        out.extend_from_slice(&(mode | self.sampling_interval).to_be_bytes());
        let u16_or = |v: Option<u32>, or: u16| v.map_or(0, |v| u16::try_from(v).unwrap_or(or));
        let ms = |ns: Option<u64>| ns.map_or(export_ms, |ns| (ns / 1_000_000).min(export_ms));
        for (r, src, dst) in &records {
            out.extend_from_slice(src);
            out.extend_from_slice(dst);
            out.extend_from_slice(&v4(r.next_hop).unwrap_or_default());
            out.extend_from_slice(&u16_or(r.in_if, 0).to_be_bytes());
            out.extend_from_slice(&u16_or(r.out_if, 0).to_be_bytes());
            out.extend_from_slice(&u32::try_from(r.packets).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(&u32::try_from(r.bytes).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(&uptime(ms(r.flow_start_ns)).to_be_bytes());
            out.extend_from_slice(&uptime(ms(r.flow_end_ns)).to_be_bytes());
            let (src_port, dst_port) = crate::flow::wire_ports(r);
            out.extend_from_slice(&src_port.to_be_bytes());
            out.extend_from_slice(&dst_port.to_be_bytes());
            out.extend_from_slice(&[0, r.tcp_flags as u8, r.ip_protocol, r.tos]);
            out.extend_from_slice(&u16_or(r.src_as, 23_456).to_be_bytes());
            out.extend_from_slice(&u16_or(r.dst_as, 23_456).to_be_bytes());
            out.push(r.src_prefix_len.unwrap_or(0));
            out.push(r.dst_prefix_len.unwrap_or(0));
            out.extend_from_slice(&[0, 0]);
        }
        self.flow_sequence = self.flow_sequence.wrapping_add(records.len() as u32);
        out
    }
}
