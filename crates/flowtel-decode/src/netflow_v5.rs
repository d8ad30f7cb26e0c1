//! NetFlow v5: a 24-byte header and fixed 48-byte records.
//!
//! Layout from Cisco's "NetFlow Export Datagram Format" (v5 header and flow record tables).
//! Times: the header carries the exporter's uptime (`sys_uptime`, ms) and wall clock
//! (`unix_secs`, `unix_nsecs`); a record's `first`/`last` are uptimes, so
//! `start = export_time - (sys_uptime - first)`, the difference taken as a signed 32-bit
//! number of milliseconds: a record may end a few ms *after* the header's uptime (exporters
//! stamp the header before the last records), and the uptime counter wraps every 2^32 ms
//! (about 49.7 days), so a wrapping unsigned difference would date such records 49.7 days
//! in the past. See [`crate::template::uptime_to_unix_ns`].
//! `sampling_interval`: top 2 bits are the sampling mode, low 14 bits the 1-in-N interval.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use nom::number::complete::{be_u8, be_u16, be_u32};
use nom::{IResult, Parser};

use crate::error::{DecodeError, ErrorKind};
use crate::record::{FlowProtocol, FlowRecord, SamplingSource};
use crate::template::{finish_common, uptime_to_unix_ns};

pub(crate) const HEADER_LEN: usize = 24;
pub(crate) const RECORD_LEN: usize = 48;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    count: u16,
    sys_uptime_ms: u32,
    unix_secs: u32,
    unix_nsecs: u32,
    /// Flows seen before this packet (Cisco's "flow_sequence").
    sequence: u32,
    engine_type: u8,
    engine_id: u8,
    sampling_interval: u16,
}

fn header(i: &[u8]) -> IResult<&[u8], Header> {
    let (i, (_version, count, sys_uptime_ms, unix_secs, unix_nsecs, sequence)) =
        (be_u16, be_u16, be_u32, be_u32, be_u32, be_u32).parse(i)?;
    let (i, (engine_type, engine_id, sampling_interval)) = (be_u8, be_u8, be_u16).parse(i)?;
    Ok((
        i,
        Header {
            count,
            sys_uptime_ms,
            unix_secs,
            unix_nsecs,
            sequence,
            engine_type,
            engine_id,
            sampling_interval,
        },
    ))
}

fn be16(r: &[u8; RECORD_LEN], at: usize) -> u16 {
    u16::from_be_bytes([r[at], r[at + 1]])
}

fn be32(r: &[u8; RECORD_LEN], at: usize) -> u32 {
    u32::from_be_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]])
}

fn v4(r: &[u8; RECORD_LEN], at: usize) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::from(be32(r, at))))
}

/// Decode a v5 datagram, appending its records to `out`. Returns the records appended.
pub(crate) fn decode(
    exporter: SocketAddr,
    datagram: &[u8],
    received_ns: u64,
    out: &mut Vec<FlowRecord>,
    errors: &mut Vec<DecodeError>,
    sampling_unknown: &mut u64,
) -> usize {
    let Ok((_, h)) = header(datagram) else {
        errors.push(DecodeError::new(
            ErrorKind::Truncated,
            0,
            "netflow v5 header",
        ));
        return 0;
    };
    let export_ns = u64::from(h.unix_secs) * 1_000_000_000 + u64::from(h.unix_nsecs);
    let rate = u32::from(h.sampling_interval & 0x3FFF);
    let mut base = FlowRecord::new(exporter, FlowProtocol::NetflowV5, received_ns);
    base.observation_domain = u32::from(h.engine_type) << 8 | u32::from(h.engine_id);
    if rate > 0 {
        base.sampling_rate = Some(rate);
        base.sampling_source = SamplingSource::Header;
    }
    let body = datagram.get(HEADER_LEN..).unwrap_or_default();
    let mut records = body.chunks_exact(RECORD_LEN);
    let mut n = 0usize;
    for chunk in records.by_ref().take(usize::from(h.count)) {
        let Ok(r) = <&[u8; RECORD_LEN]>::try_from(chunk) else {
            break;
        };
        let at = |t: u32| Some(uptime_to_unix_ns(export_ns, h.sys_uptime_ms, t));
        // Built in place in the output (a FlowRecord is a few hundred bytes: no move).
        let len = out.len();
        out.resize_with(len + 1, || {
            FlowRecord::new(exporter, FlowProtocol::NetflowV5, received_ns)
        });
        let Some(rec) = out.last_mut() else { break };
        rec.observation_domain = base.observation_domain;
        rec.sequence_num = h.sequence;
        rec.sampling_rate = base.sampling_rate;
        rec.sampling_source = base.sampling_source;
        rec.src_addr = v4(r, 0);
        rec.dst_addr = v4(r, 4);
        rec.next_hop = v4(r, 8);
        rec.in_if = Some(u32::from(be16(r, 12)));
        rec.out_if = Some(u32::from(be16(r, 14)));
        rec.packets = u64::from(be32(r, 16));
        rec.bytes = u64::from(be32(r, 20));
        rec.flow_start_ns = at(be32(r, 24));
        rec.flow_end_ns = at(be32(r, 28));
        rec.src_port = be16(r, 32);
        rec.dst_port = be16(r, 34);
        rec.tcp_flags = u16::from(r[37]);
        rec.ip_protocol = r[38];
        rec.tos = r[39];
        rec.src_as = Some(u32::from(be16(r, 40)));
        rec.dst_as = Some(u32::from(be16(r, 42)));
        rec.src_prefix_len = Some(r[44]);
        rec.dst_prefix_len = Some(r[45]);
        finish_common(rec);
        n += 1;
    }
    if n < usize::from(h.count) {
        errors.push(DecodeError::new(
            ErrorKind::Truncated,
            HEADER_LEN + n * RECORD_LEN,
            "netflow v5 record",
        ));
    }
    if rate == 0 {
        *sampling_unknown += n as u64;
    }
    n
}
