//! Flow records inside a flow sample (sFlow v5 §"Flow Data Types" and §"Extended Flow Data").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ctx::raw_field;
use super::format;
use super::xdr::Xdr;
use crate::packet;
use crate::{FlowRecord, SflowBytes};

/// Values resolved once all records of a sample are read (records come in any order).
#[derive(Debug, Default)]
pub(crate) struct Lengths {
    frame_length: Option<u32>,
    /// The sampled header's IP length (IPv4 total length, IPv6 payload length + 40).
    ip_length_from_header: Option<u32>,
    ethernet_length: Option<u32>,
    ip_length: Option<u32>,
    switch_in_vlan: Option<u16>,
    switch_out_vlan: Option<u16>,
}

fn valid_vlan(v: u32) -> Option<u16> {
    u16::try_from(v).ok().filter(|v| (1..=4094).contains(v))
}

impl Lengths {
    /// Apply the precedence rules documented in the module doc.
    pub(crate) fn finish(&self, rec: &mut FlowRecord, bytes: SflowBytes) {
        let frame = self.frame_length.or(self.ethernet_length);
        let ip = self.ip_length_from_header.or(self.ip_length);
        rec.bytes = u64::from(
            match bytes {
                SflowBytes::Frame => frame.or(ip),
                SflowBytes::Ip => ip.or(frame),
            }
            .unwrap_or(0),
        );
        if let Some(v) = self.switch_in_vlan {
            rec.vlan = Some(v);
        } else if rec.vlan.is_none() {
            rec.vlan = self.switch_out_vlan;
        }
        crate::template::infer_etype(rec);
    }
}

/// Decode one flow record into `rec`; `None` when the record is shorter than its layout (the
/// caller counts it; whatever it had already set stays: the fields read were inside its
/// bounds). Unknown records are kept verbatim when `keep_unknown` is set.
pub(crate) fn record(
    keep_unknown: bool,
    data_format: u32,
    mut x: Xdr<'_>,
    rec: &mut FlowRecord,
    acc: &mut Lengths,
) -> Option<()> {
    match data_format {
        format::RAW_HEADER => raw_header(&mut x, rec, acc),
        format::ETHERNET => ethernet(&mut x, rec, acc),
        format::IPV4 => ipv4(&mut x, rec, acc),
        format::IPV6 => ipv6(&mut x, rec, acc),
        format::SWITCH => switch(&mut x, rec, acc),
        format::ROUTER => router(&mut x, rec),
        format::GATEWAY => gateway(&mut x, rec, keep_unknown),
        _ => {
            if keep_unknown {
                rec.unknown_fields.push(raw_field(data_format, x));
            }
            Some(())
        }
    }
}

/// Record 1, `sampled_header`: header_protocol, frame_length, stripped, header<>.
fn raw_header(x: &mut Xdr<'_>, rec: &mut FlowRecord, acc: &mut Lengths) -> Option<()> {
    let protocol = x.u32()?;
    let frame_length = x.u32()?;
    let _stripped = x.u32()?;
    let bytes = x.opaque()?;
    acc.frame_length = Some(frame_length);
    acc.ip_length_from_header = packet::parse(protocol, bytes, rec).ip_len;
    Some(())
}

fn mac(x: &mut Xdr<'_>) -> Option<[u8; 6]> {
    // `opaque mac[6]`: fixed-length opaque, padded to 8 bytes.
    let b = x.array::<8>()?;
    let mut m = [0; 6];
    m.copy_from_slice(b.get(..6)?);
    Some(m)
}

/// Record 2, `sampled_ethernet`: length, src_mac, dst_mac, type.
fn ethernet(x: &mut Xdr<'_>, rec: &mut FlowRecord, acc: &mut Lengths) -> Option<()> {
    let length = x.u32()?;
    let src = mac(x)?;
    let dst = mac(x)?;
    let _ethertype = x.u32()?;
    acc.ethernet_length = Some(length);
    rec.src_mac.get_or_insert(src);
    rec.dst_mac.get_or_insert(dst);
    Some(())
}

/// The common tail of records 3 and 4: ports, tcp_flags, tos/priority.
fn ip_tail(
    x: &mut Xdr<'_>,
    rec: &mut FlowRecord,
    protocol: u32,
    src: IpAddr,
    dst: IpAddr,
) -> Option<()> {
    let src_port = x.u32()?;
    let dst_port = x.u32()?;
    let tcp_flags = x.u32()?;
    let tos = x.u32()?;
    // Only when no sampled header already described the packet.
    if rec.src_addr.is_none() {
        rec.src_addr = Some(src);
        rec.dst_addr = Some(dst);
        rec.ip_protocol = u8::try_from(protocol).unwrap_or(u8::MAX);
        rec.src_port = u16::try_from(src_port).unwrap_or(u16::MAX);
        rec.dst_port = u16::try_from(dst_port).unwrap_or(u16::MAX);
        rec.tcp_flags = u16::try_from(tcp_flags).unwrap_or(u16::MAX);
        rec.tos = u8::try_from(tos).unwrap_or(u8::MAX);
    }
    Some(())
}

/// Record 3, `sampled_ipv4`.
fn ipv4(x: &mut Xdr<'_>, rec: &mut FlowRecord, acc: &mut Lengths) -> Option<()> {
    let length = x.u32()?;
    let protocol = x.u32()?;
    let src = IpAddr::V4(Ipv4Addr::from(x.array::<4>()?));
    let dst = IpAddr::V4(Ipv4Addr::from(x.array::<4>()?));
    ip_tail(x, rec, protocol, src, dst)?;
    acc.ip_length = Some(length);
    Some(())
}

/// Record 4, `sampled_ipv6`.
fn ipv6(x: &mut Xdr<'_>, rec: &mut FlowRecord, acc: &mut Lengths) -> Option<()> {
    let length = x.u32()?;
    let protocol = x.u32()?;
    let src = IpAddr::V6(Ipv6Addr::from(x.array::<16>()?));
    let dst = IpAddr::V6(Ipv6Addr::from(x.array::<16>()?));
    ip_tail(x, rec, protocol, src, dst)?;
    acc.ip_length = Some(length);
    Some(())
}

/// Record 1001, `extended_switch`: src_vlan, src_priority, dst_vlan, dst_priority.
fn switch(x: &mut Xdr<'_>, rec: &mut FlowRecord, acc: &mut Lengths) -> Option<()> {
    let src_vlan = x.u32()?;
    let _src_priority = x.u32()?;
    let dst_vlan = x.u32()?;
    let _dst_priority = x.u32()?;
    acc.switch_in_vlan = valid_vlan(src_vlan);
    acc.switch_out_vlan = valid_vlan(dst_vlan);
    rec.src_vlan = acc.switch_in_vlan;
    rec.dst_vlan = acc.switch_out_vlan;
    Some(())
}

fn prefix_len(v: u32) -> Option<u8> {
    u8::try_from(v).ok().filter(|l| *l <= 128)
}

/// Record 1002, `extended_router`: nexthop, src_mask_len, dst_mask_len.
fn router(x: &mut Xdr<'_>, rec: &mut FlowRecord) -> Option<()> {
    let next_hop = x.address()?;
    let src_mask = x.u32()?;
    let dst_mask = x.u32()?;
    rec.next_hop = next_hop;
    rec.src_prefix_len = prefix_len(src_mask);
    rec.dst_prefix_len = prefix_len(dst_mask);
    Some(())
}

/// Record 1003, `extended_gateway`: nexthop, as, src_as, src_peer_as, dst_as_path<>
/// (segments of type 1 AS_SET / 2 AS_SEQUENCE), communities<>, localpref.
///
/// sFlow v5 §"Extended Gateway Data": `as` is the router's own AS; `src_as` is the AS of the
/// source, 0 when the source is in the router's own AS (a locally originated route), and an
/// empty destination path means the destination is in the router's own AS. So `src_as` 0 and
/// an empty path both give the router's AS, as sflowtool and goflow2 read them. `next_hop_as`
/// is the first AS of the path (the neighbour the traffic goes to).
fn gateway(x: &mut Xdr<'_>, rec: &mut FlowRecord, keep: bool) -> Option<()> {
    let next_hop = x.address()?;
    let router_as = x.u32()?;
    let src_as = x.u32()?;
    let _src_peer_as = x.u32()?;
    let segments = x.u32()?;
    let mut first = None;
    let mut last = None;
    // Each segment is at least 8 bytes: the counts cannot outrun the record.
    for _ in 0..segments {
        let _segment_type = x.u32()?;
        let n = x.u32()?;
        for _ in 0..n {
            let asn = x.u32()?;
            first.get_or_insert(asn);
            last = Some(asn);
            if keep {
                rec.as_path.push(asn);
            }
        }
    }
    let communities = x.u32()?;
    for _ in 0..communities {
        let c = x.u32()?;
        if keep {
            rec.bgp_communities.push(c);
        }
    }
    let _local_pref = x.u32()?;
    rec.bgp_next_hop = next_hop;
    rec.src_as = Some(if src_as == 0 { router_as } else { src_as });
    rec.dst_as = Some(last.unwrap_or(router_as));
    rec.next_hop_as = first;
    Some(())
}
